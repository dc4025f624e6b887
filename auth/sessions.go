package auth

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/onramp-dev/onramp"
)

// sessionCache remembers live sessions by secret hash for ttl. The node
// that revokes a session drops it at once; other nodes see a revocation
// within ttl (documented in docs/auth.md).
type sessionCache struct {
	ttl     time.Duration
	mu      sync.Mutex
	entries map[string]cachedSession
}

type cachedSession struct {
	s     *Session
	until time.Time
}

func newSessionCache(ttl time.Duration) *sessionCache {
	return &sessionCache{ttl: ttl, entries: map[string]cachedSession{}}
}

func (c *sessionCache) get(hash string, now time.Time) *Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[hash]
	if !ok || now.After(e.until) {
		return nil
	}
	return e.s
}

func (c *sessionCache) put(hash string, s *Session, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// A bound on memory: when full, start over (sessions refill on use).
	if len(c.entries) > 100_000 {
		clear(c.entries)
	}
	c.entries[hash] = cachedSession{s: s, until: now.Add(c.ttl)}
}

func (c *sessionCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
}

func (c *sessionCache) forget(sessionID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for h, e := range c.entries {
		if e.s.ID == sessionID {
			delete(c.entries, h)
		}
	}
}

// SessionSecretHash is the stored form of a session cookie's secret
// (Session.SecretHash). Tools that seed sessions straight into the store,
// such as onramp bench auth, make it with this.
func SessionSecretHash(secret string) string { return hashToken(secret) }

var errNoSession = onramp.Errorf(onramp.EUNAUTHORIZED, "You are not signed in, or your session has ended.")

// CheckSession returns the live session whose cookie secret this is.
func (s *Accounts) CheckSession(ctx context.Context, secret string) (*Session, error) {
	if secret == "" {
		return nil, errNoSession
	}
	now := s.cfg.Clock.Now()
	hash := hashToken(secret)
	if ses := s.sessions.get(hash, now); ses != nil {
		if live(ses, now) {
			return ses, nil
		}
		return nil, errNoSession
	}
	ses, err := s.cfg.Read.SessionBySecretHash(ctx, hash)
	if onramp.ErrorCode(err) == onramp.ENOTFOUND {
		return nil, errNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("auth: session: %w", err)
	}
	if !live(ses, now) {
		return nil, errNoSession
	}
	// Idle expiry moves on use, written at most once a minute.
	if now.Sub(ses.LastSeenAt) > time.Minute {
		idle := now.Add(s.cfg.SessionIdle)
		if idle.After(ses.ExpiresAt) {
			idle = ses.ExpiresAt
		}
		if err := s.cfg.InTx(ctx, func(st TxStore) error { return st.TouchSession(ctx, ses.ID, now, idle) }); err != nil {
			return nil, fmt.Errorf("auth: session: %w", err)
		}
		ses.LastSeenAt, ses.IdleExpiresAt = now, idle
	}
	s.sessions.put(hash, ses, now)
	return ses, nil
}

func live(ses *Session, now time.Time) bool {
	return ses.RevokedAt == nil && now.Before(ses.ExpiresAt) && now.Before(ses.IdleExpiresAt)
}

// Sessions lists a person's sessions, live ones first by last use.
func (s *Accounts) Sessions(ctx context.Context, personID string) ([]*Session, error) {
	out, err := s.cfg.Read.SessionsOf(ctx, personID, false)
	if err != nil {
		return nil, fmt.Errorf("auth: sessions: %w", err)
	}
	return out, nil
}

// RevokeSessionParams names a session to end and who ends it.
type RevokeSessionParams struct {
	SessionID string
	// PersonID, if set, must own the session (a person revoking their own
	// sessions on the account page).
	PersonID string
	Actor    AuditEntry // ActorType/ActorID/IP/UserAgent of who revoked it
	Reason   string     // "self", "staff", "logout", "password_changed"
}

// RevokeSession ends a session and queues back-channel logouts to every
// client it signed into.
func (s *Accounts) RevokeSession(ctx context.Context, p RevokeSessionParams) error {
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		ses, err := st.SessionByID(ctx, p.SessionID)
		if err != nil {
			return err
		}
		if p.PersonID != "" && ses.PersonID != p.PersonID {
			return onramp.Errorf(onramp.ENOTFOUND, "No such session.")
		}
		return s.endSession(ctx, st, ses, p.Reason, p.Actor)
	})
	if err != nil {
		return fmt.Errorf("auth: revoke session: %w", err)
	}
	s.sessions.forget(p.SessionID)
	return nil
}

// SignOut ends the session whose cookie secret this is. It answers the
// ended session (nil when there was none live).
func (s *Accounts) SignOut(ctx context.Context, secret string, info RequestInfo) (*Session, error) {
	if secret == "" {
		return nil, nil
	}
	var ended *Session
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		ses, err := st.SessionBySecretHash(ctx, hashToken(secret))
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			return nil
		}
		if err != nil {
			return err
		}
		if ses.RevokedAt != nil {
			return nil
		}
		ended = ses
		return s.endSession(ctx, st, ses, "logout", AuditEntry{ActorType: ActorPerson, ActorID: ses.PersonID, IP: info.IP, UserAgent: info.UserAgent})
	})
	if err != nil {
		return nil, fmt.Errorf("auth: sign out: %w", err)
	}
	if ended != nil {
		s.sessions.forget(ended.ID)
	}
	return ended, nil
}

// EndSessionByID ends a session named by its public id (OIDC end_session
// with a valid id_token_hint).
func (s *Accounts) EndSessionByID(ctx context.Context, sessionID string, info RequestInfo) error {
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		ses, err := st.SessionByID(ctx, sessionID)
		if err != nil || ses.RevokedAt != nil {
			return err
		}
		return s.endSession(ctx, st, ses, "logout", AuditEntry{ActorType: ActorPerson, ActorID: ses.PersonID, IP: info.IP, UserAgent: info.UserAgent})
	})
	if err != nil && onramp.ErrorCode(err) != onramp.ENOTFOUND {
		return fmt.Errorf("auth: end session: %w", err)
	}
	s.sessions.forget(sessionID)
	return nil
}

// BackchannelLogout is the payload of a back-channel logout job.
type BackchannelLogout struct {
	ClientID  string `json:"client_id"`
	Subject   string `json:"subject"`
	SessionID string `json:"session_id"`
}

func (s *Accounts) endSession(ctx context.Context, st TxStore, ses *Session, reason string, actor AuditEntry) error {
	now := s.cfg.Clock.Now()
	done, err := st.RevokeSession(ctx, ses.ID, now, reason)
	if err != nil || !done {
		return err
	}
	acc, err := st.AccountOf(ctx, []string{ses.PersonID})
	if err != nil {
		return err
	}
	clients, err := st.SessionClients(ctx, ses.ID)
	if err != nil {
		return err
	}
	for _, c := range clients {
		if err := s.enqueueJSON(ctx, st, JobBackchannelLogout, BackchannelLogout{ClientID: c, Subject: acc.Subject, SessionID: ses.ID}); err != nil {
			return err
		}
	}
	action, event := "session.revoked", "auth.session_revoked"
	if reason == "logout" {
		action, event = "auth.logged_out", "auth.logged_out"
	}
	actor.Action, actor.PersonID, actor.SessionID = action, ses.PersonID, ses.ID
	actor.Detail = jsonDetail(map[string]any{"reason": reason, "clients": clients})
	if err := s.record(ctx, st, actor); err != nil {
		return err
	}
	return s.timeline(ctx, st, TimelineEvent{Event: event, Subject: acc.Subject, Properties: map[string]any{"session_id": ses.ID, "by": reason}})
}

// newSession makes a session for personID with a fresh id and secret: a
// new session id at every sign-in, so a planted cookie is never upgraded.
func (s *Accounts) newSession(ctx context.Context, st TxStore, personID string, amr []string, staff bool, info RequestInfo) (*Session, string, error) {
	now := s.cfg.Clock.Now()
	life := s.cfg.SessionLifetime
	if staff {
		life = s.cfg.StaffLifetime
	}
	secret := onramp.NewSecret("ses")
	ses := &Session{
		ID: onramp.NewID("ses"), SecretHash: hashToken(secret), PersonID: personID, AAL: aalOf(amr), AMR: amr,
		AuthTime: now, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(life),
		IdleExpiresAt: min64(now.Add(s.cfg.SessionIdle), now.Add(life)), IP: info.IP, UserAgent: info.UserAgent,
	}
	if err := st.CreateSession(ctx, ses); err != nil {
		return nil, "", fmt.Errorf("auth: new session: %w", err)
	}
	return ses, secret, nil
}

func min64(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// AddSessionClient records that a session signed into an OIDC client, so
// logging out reaches it.
func (s *Accounts) AddSessionClient(ctx context.Context, sessionID, clientID string) error {
	return s.cfg.InTx(ctx, func(st TxStore) error {
		return st.AddSessionClient(ctx, sessionID, clientID, s.cfg.Clock.Now())
	})
}

// ReplaceSession deals with the session cookie a browser had before a
// sign-in made g. A session of the same person is replaced: the clients
// it signed into move to the new session (so a later logout still reaches
// them) and it ends quietly, without back-channel logouts; signing in
// again at one site must not sign the person out of the others. Someone
// else's session (perhaps planted: session fixation) is ended like a
// sign-out.
func (s *Accounts) ReplaceSession(ctx context.Context, oldSecret string, g *Grant, info RequestInfo) error {
	if oldSecret == "" || oldSecret == g.Secret {
		return nil
	}
	var ended string
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		old, err := st.SessionBySecretHash(ctx, hashToken(oldSecret))
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			return nil
		}
		if err != nil || old.RevokedAt != nil {
			return err
		}
		ended = old.ID
		if old.PersonID != g.Session.PersonID {
			return s.endSession(ctx, st, old, "logout", AuditEntry{ActorType: ActorPerson, ActorID: old.PersonID, IP: info.IP, UserAgent: info.UserAgent})
		}
		clients, err := st.SessionClients(ctx, old.ID)
		if err != nil {
			return err
		}
		now := s.cfg.Clock.Now()
		for _, c := range clients {
			if err := st.AddSessionClient(ctx, g.Session.ID, c, now); err != nil {
				return err
			}
		}
		_, err = st.RevokeSession(ctx, old.ID, now, "replaced")
		return err
	})
	if err != nil {
		return fmt.Errorf("auth: replace session: %w", err)
	}
	if ended != "" {
		s.sessions.forget(ended)
	}
	return nil
}
