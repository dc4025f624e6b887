package auth

import (
	"context"
	"sync/atomic"

	"github.com/onramp-dev/onramp"
)

// OAuthEvent is a security-relevant OAuth happening: a sign-in given to a
// client, consent, a replayed code, a reused refresh token.
type OAuthEvent struct {
	Action    string // oauth.authorized, oauth.consent_granted, oauth.code_replayed, auth.refresh_token_reused
	Outcome   string
	Subject   string
	ClientID  string
	SessionID string
	Detail    map[string]any
	// Timeline, if set, is also put on the person's timeline.
	Timeline string
}

// requestInfoKey carries the RequestInfo of the HTTP request behind an
// OAuth call, for the audit entries the call writes.
type requestInfoKey struct{}

// WithRequestInfo names where the OAuth calls made with ctx came from (the
// browser or the relying party's server): RecordOAuth writes it into the
// audit entry, which must say from which IP an action came.
func WithRequestInfo(ctx context.Context, info RequestInfo) context.Context {
	return context.WithValue(ctx, requestInfoKey{}, info)
}

// RequestInfoFrom is the RequestInfo WithRequestInfo put in ctx, or zero.
func RequestInfoFrom(ctx context.Context) RequestInfo {
	i, _ := ctx.Value(requestInfoKey{}).(RequestInfo)
	return i
}

// OAuthRecorder writes OAuth events to the audit log (and timeline). The
// OAuth tables live beside the account tables but OAuth rules do not see
// the audit log, so the account rules record for them.
type OAuthRecorder interface {
	RecordOAuth(ctx context.Context, e OAuthEvent)
}

// oauthRecorder holds the recorder set at wiring time.
type oauthRecorder struct{ r atomic.Pointer[OAuthRecorder] }

// SetRecorder makes r record OAuth events. Call it while wiring.
func (o *OAuth) SetRecorder(r OAuthRecorder) { o.recorder.r.Store(&r) }

func (o *OAuth) record(ctx context.Context, e OAuthEvent) {
	if r := o.recorder.r.Load(); r != nil {
		(*r).RecordOAuth(ctx, e)
	}
}

// RecordOAuth writes an OAuth event: one audit row about the subject's
// person (with the IP and user agent of WithRequestInfo), and a timeline
// event when the event asks for one. Failures are
// logged, not returned: the OAuth answer has been decided already.
func (s *Accounts) RecordOAuth(ctx context.Context, e OAuthEvent) {
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		info := RequestInfoFrom(ctx)
		entry := AuditEntry{ActorType: ActorClient, ActorID: e.ClientID, Action: e.Action, Outcome: e.Outcome, ClientID: e.ClientID, SessionID: e.SessionID,
			IP: info.IP, UserAgent: info.UserAgent, Detail: jsonDetail(e.Detail)}
		acc, err := st.AccountBySubject(ctx, e.Subject)
		switch {
		case err == nil:
			entry.PersonID = acc.PersonID
		case onramp.ErrorCode(err) != onramp.ENOTFOUND:
			return err
		}
		if err := s.record(ctx, st, entry); err != nil {
			return err
		}
		if e.Timeline == "" || acc == nil {
			return nil
		}
		props := map[string]any{"client_id": e.ClientID}
		for k, v := range e.Detail {
			props[k] = v
		}
		return s.timeline(ctx, st, TimelineEvent{Event: e.Timeline, Subject: e.Subject, Properties: props})
	})
	if err != nil {
		s.cfg.Log.ErrorContext(ctx, "auth: record oauth event", "action", e.Action, "err", err)
	}
}
