package oidcop

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// SessionAccounts is what the hosted pages' bridge needs from accounts:
// the account behind a session, and recording which clients a session
// signed into (they get a back-channel logout when it ends).
type SessionAccounts interface {
	AccountOfPerson(ctx context.Context, personID string) (*auth.Account, error)
	AddSessionClient(ctx context.Context, sessionID, clientID string) error
}

// Login connects the hosted sign-in pages to the provider: it finishes an
// authorization request with a session, decides whether a live session
// answers a request without showing a page (single sign-on, prompt=none,
// max_age), and records consent.
type Login struct {
	P        *Provider
	Accounts SessionAccounts
	Log      *slog.Logger
	// Clock is for max_age; nil is the system clock.
	Clock onramp.Clock
}

func (l *Login) now() time.Time {
	if l.Clock == nil {
		return time.Now()
	}
	return l.Clock.Now()
}

// grant makes the provider's view of a session.
func (l *Login) grant(ctx context.Context, ses *auth.Session) (SessionGrant, error) {
	acc, err := l.Accounts.AccountOfPerson(ctx, ses.PersonID)
	if err != nil {
		return SessionGrant{}, err
	}
	return SessionGrant{Subject: acc.Subject, SessionID: ses.ID, AuthTime: ses.AuthTime, AMR: ses.AMR}, nil
}

// FinishLogin is called by a page that has just signed the person in.
func (l *Login) FinishLogin(w http.ResponseWriter, r *http.Request, authRequestID string, g *auth.Grant) {
	sg := SessionGrant{Subject: g.Account.Subject, SessionID: g.Session.ID, AuthTime: g.Session.AuthTime, AMR: g.Session.AMR}
	l.finish(w, r, authRequestID, sg)
}

// finish marks the request done and sends the browser on to the client;
// a client that is not first-party and has no consent yet goes to the
// consent page first.
func (l *Login) finish(w http.ResponseWriter, r *http.Request, authRequestID string, sg SessionGrant) {
	ctx := r.Context()
	ar, err := l.P.oauth.AuthRequest(ctx, authRequestID)
	if err != nil {
		l.fail(w, r, err)
		return
	}
	need, err := l.P.oauth.ConsentRequired(ctx, auth.ConsentParams{Subject: sg.Subject, ClientID: ar.ClientID, Scopes: ar.Scopes})
	if err != nil {
		l.fail(w, r, err)
		return
	}
	// prompt=consent asks again even after consent was given (OIDC Core
	// §3.1.2.1); first-party clients have no consent screen to show.
	if !need && slices.Contains(ar.Prompt, "consent") {
		c, err := l.P.oauth.Client(ctx, ar.ClientID)
		if err != nil {
			l.fail(w, r, err)
			return
		}
		need = !c.FirstParty
	}
	if need {
		if slices.Contains(ar.Prompt, "none") {
			l.failRequest(w, r, authRequestID, ConsentRequired)
			return
		}
		q := url.Values{"authRequest": {authRequestID}}
		if ar.UILocales != "" {
			q.Set("ui_locales", ar.UILocales)
		}
		http.Redirect(w, r, "/auth/consent?"+q.Encode(), http.StatusSeeOther)
		return
	}
	l.complete(w, r, ar, sg)
}

// complete gives the request to the session and sends the browser on to
// the client with its code.
func (l *Login) complete(w http.ResponseWriter, r *http.Request, ar *auth.AuthRequest, sg SessionGrant) {
	// oauth.authorized's audit entry names the browser's address.
	ctx := auth.WithRequestInfo(r.Context(), l.P.requestInfo(r))
	if err := l.Accounts.AddSessionClient(ctx, sg.SessionID, ar.ClientID); err != nil {
		l.fail(w, r, err)
		return
	}
	if err := l.P.FinishAuthRequest(ctx, w, r, ar.ID, sg); err != nil {
		l.fail(w, r, err)
	}
}

// ResumeLogin answers an authorization request from the browser's live
// session without showing the sign-in page, when the request allows it:
// that is what signs a person into a second property without typing. It
// reports false when the page must ask (no session, prompt=login, an
// auth_time older than max_age, a hint naming someone else). With
// prompt=none it never shows a page: it answers login_required instead.
func (l *Login) ResumeLogin(w http.ResponseWriter, r *http.Request, authRequestID string, ses *auth.Session) bool {
	ctx := r.Context()
	ar, err := l.P.oauth.AuthRequest(ctx, authRequestID)
	if err != nil {
		return false // the page shows the request's error when it uses it
	}
	none := slices.Contains(ar.Prompt, "none")
	usable := ses != nil && !slices.Contains(ar.Prompt, "login")
	var sg SessionGrant
	if usable {
		sg, err = l.grant(ctx, ses)
		usable = err == nil
	}
	if usable && ar.MaxAge != nil && l.now().Sub(sg.AuthTime) > time.Duration(*ar.MaxAge)*time.Second {
		usable = false
	}
	if usable && ar.HintSubject != "" && ar.HintSubject != sg.Subject {
		usable = false
	}
	switch {
	case usable:
		l.finish(w, r, authRequestID, sg)
		return true
	case none:
		l.failRequest(w, r, authRequestID, LoginRequired)
		return true
	default:
		return false
	}
}

// Consent names an authorization request's client's property and the
// scopes it asks for, for the consent page.
func (l *Login) Consent(ctx context.Context, authRequestID string) (string, []string, error) {
	ar, err := l.P.oauth.AuthRequest(ctx, authRequestID)
	if err != nil {
		return "", nil, err
	}
	c, err := l.P.oauth.Client(ctx, ar.ClientID)
	if err != nil {
		return "", nil, err
	}
	return c.PropertyID, ar.Scopes, nil
}

// Decide records the person's answer on the consent page: allow grants
// the request's scopes to the client and finishes the request; deny
// answers the client access_denied.
func (l *Login) Decide(w http.ResponseWriter, r *http.Request, authRequestID string, ses *auth.Session, allow bool) {
	ctx := r.Context()
	if !allow {
		l.failRequest(w, r, authRequestID, AccessDenied)
		return
	}
	ar, err := l.P.oauth.AuthRequest(ctx, authRequestID)
	if err != nil {
		l.fail(w, r, err)
		return
	}
	sg, err := l.grant(ctx, ses)
	if err != nil {
		l.fail(w, r, err)
		return
	}
	if err := l.P.oauth.GrantConsent(auth.WithRequestInfo(ctx, l.P.requestInfo(r)), auth.ConsentParams{Subject: sg.Subject, ClientID: ar.ClientID, Scopes: ar.Scopes}); err != nil {
		l.fail(w, r, err)
		return
	}
	l.complete(w, r, ar, sg)
}

// FormActionOrigins are the origins of the request's client's redirect
// URIs (the pages add them to their CSP form-action).
func (l *Login) FormActionOrigins(ctx context.Context, authRequestID string) []string {
	ar, err := l.P.oauth.AuthRequest(ctx, authRequestID)
	if err != nil {
		return nil
	}
	c, err := l.P.oauth.Client(ctx, ar.ClientID)
	if err != nil {
		return nil
	}
	var out []string
	for _, u := range c.RedirectURIs {
		if p, err := url.Parse(u); err == nil && p.Scheme != "" && p.Host != "" {
			o := p.Scheme + "://" + p.Host
			if !slices.Contains(out, o) {
				out = append(out, o)
			}
		}
	}
	return out
}

func (l *Login) failRequest(w http.ResponseWriter, r *http.Request, authRequestID string, f Failure) {
	if err := l.P.FailAuthRequest(r.Context(), w, r, authRequestID, f); err != nil {
		l.fail(w, r, err)
	}
}

// fail answers an error that cannot go back to the client (the request is
// unknown or expired): a plain page, never a redirect.
func (l *Login) fail(w http.ResponseWriter, r *http.Request, err error) {
	if onramp.ErrorCode(err) == onramp.EINTERNAL && l.Log != nil {
		l.Log.ErrorContext(r.Context(), "finish sign-in", "err", err)
	}
	status := http.StatusBadRequest
	if onramp.ErrorCode(err) == onramp.EINTERNAL {
		status = http.StatusInternalServerError
	}
	http.Error(w, "This sign-in request cannot continue: "+onramp.ErrorMessage(err)+" Go back to the site and sign in again.", status)
}

// CreateAuthRequest stores an authorization request from /oauth/authorize's
// parameters, checked as that endpoint checks them, for the headless API
// (Provider.CreateAuthRequest).
func (l *Login) CreateAuthRequest(ctx context.Context, params url.Values, anonymousID string) (*auth.AuthRequest, error) {
	return l.P.CreateAuthRequest(ctx, params, anonymousID)
}
