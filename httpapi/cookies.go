package httpapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// Cookies of the hosted pages. None has a Domain attribute: single
// sign-on across sites is OIDC redirects to this origin, not shared
// cookies, so every cookie stays host-only.
const (
	// flowCookie holds "<flow id>.<secret>" of the sign-in in progress.
	flowCookie = "onramp_flow"
	// formCookie is a random nonce that binds the CSRF token of forms
	// that have neither a flow nor a session (the magic-link and
	// owner-setup pages).
	formCookie     = "onramp_form"
	sessionCookie  = "onramp_session"
	flowCookieLife = 30 * time.Minute
)

// secureCookies reports whether Onramp is reached over https, which makes
// the session cookie __Host- prefixed and every cookie Secure.
func (s *Server) secureCookies() bool {
	return strings.HasPrefix(s.PublicURL, "https://")
}

// sessionCookieName is onramp_session, or __Host-onramp_session on
// https: the prefix makes browsers refuse the cookie unless it is Secure,
// host-only and Path=/, so a sibling subdomain cannot plant one.
func (s *Server) sessionCookieName() string {
	if s.secureCookies() {
		return "__Host-" + sessionCookie
	}
	return sessionCookie
}

func (s *Server) setCookie(w http.ResponseWriter, name, value string, expires time.Time) {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: s.secureCookies(), SameSite: http.SameSiteLaxMode}
	if expires.IsZero() {
		c.MaxAge = -1
	} else {
		c.Expires = expires
		c.MaxAge = int(time.Until(expires).Seconds())
		if c.MaxAge <= 0 {
			c.MaxAge = -1
		}
	}
	http.SetCookie(w, c)
}

func (s *Server) clearCookie(w http.ResponseWriter, name string) {
	s.setCookie(w, name, "", time.Time{})
}

func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil || len(c.Value) > 512 {
		return ""
	}
	return c.Value
}

// flowRef is the browser's flow reference, and its flow id (the CSRF
// binding of the flow's forms).
func flowRef(r *http.Request) (ref, id string) {
	ref = cookieValue(r, flowCookie)
	id, _, ok := strings.Cut(ref, ".")
	if !ok {
		return "", ""
	}
	return ref, id
}

func (s *Server) sessionSecret(r *http.Request) string {
	return cookieValue(r, s.sessionCookieName())
}

func (s *Server) setFlowCookie(w http.ResponseWriter, ref string) {
	s.setCookie(w, flowCookie, ref, s.Clock.Now().Add(flowCookieLife))
}

// setSessionCookie gives the browser the session of a finished sign-in.
// It lasts as long as the session's absolute lifetime; the server ends it
// earlier on idle or revoke.
func (s *Server) setSessionCookie(w http.ResponseWriter, g *auth.Grant) {
	s.setCookie(w, s.sessionCookieName(), g.Secret, g.Session.ExpiresAt)
}

// formNonce returns the browser's form nonce, making one when it has
// none, for pages that bind their CSRF token to it.
func (s *Server) formNonce(w http.ResponseWriter, r *http.Request) string {
	if n := cookieValue(r, formCookie); len(n) >= 20 {
		return n
	}
	n := onramp.NewSecret("frm")
	s.setCookie(w, formCookie, n, s.Clock.Now().Add(flowCookieLife))
	return n
}

// formBinding is what the CSRF token of a nonce-bound form is bound to.
func formBinding(nonce string) string { return "form:" + nonce }

// RequestInfo is the request's client IP (behind trusted proxies, the
// forwarded one) and user agent, as the audit log records them.
func (s *Server) RequestInfo(r *http.Request) auth.RequestInfo { return s.requestInfo(r) }

func (s *Server) requestInfo(r *http.Request) auth.RequestInfo {
	ua := r.UserAgent()
	if len(ua) > 400 {
		ua = ua[:400]
	}
	return auth.RequestInfo{IP: s.clientIP(r), UserAgent: ua}
}

const maxFormBody = 64 << 10

// guardPost wraps the POST handlers of the hosted pages with the first
// CSRF layer, http.CrossOriginProtection (Sec-Fetch-Site, else Origin
// against Host), and reads the form within a size limit. The second layer,
// the form's csrf field, is checked by each handler once it knows what the
// form is bound to (checkCSRF).
func (s *Server) guardPost(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
		if err := s.cop.Check(r); err != nil {
			s.rejectCSRF(w, r, "", "cross-origin")
			return
		}
		if err := r.ParseForm(); err != nil {
			s.renderMessage(w, r, http.StatusBadRequest, "title_error", "The form could not be read.", "", "")
			return
		}
		h(w, r)
	}
}

// checkCSRF checks the form's csrf field against the token of bindTo (a
// flow id, a session id, or a form nonce binding) and answers 403 itself
// when it is missing or wrong.
func (s *Server) checkCSRF(w http.ResponseWriter, r *http.Request, bindTo, personID string) bool {
	if bindTo != "" && s.Accounts.CheckCSRF(bindTo, r.PostFormValue("csrf")) {
		return true
	}
	reason := "wrong_token"
	if r.PostFormValue("csrf") == "" {
		reason = "missing_token"
	}
	if bindTo == "" {
		reason = "no_binding"
	}
	s.rejectCSRF(w, r, personID, reason)
	return false
}

// rejectCSRF answers a forged or stale form: 403, an audit row, and
// nothing else changed.
func (s *Server) rejectCSRF(w http.ResponseWriter, r *http.Request, personID, reason string) {
	s.auditCSRF(r, personID, reason)
	v := s.pages.newView(r, "title_forbidden")
	s.renderMessage(w, r, http.StatusForbidden, "title_forbidden", v.T["csrf_body"], v.Link(restartPath(r.URL.Path)), "link_reload")
}

// restartPath is the page to start again from after a refused form.
func restartPath(path string) string {
	switch {
	case strings.HasPrefix(path, "/auth/sign-up"):
		return "/auth/sign-up"
	case strings.HasPrefix(path, "/account"), path == "/auth/sign-out":
		return "/account"
	}
	return "/auth/sign-in"
}

// SessionIDOf is the id of the browser's live session, or "" (the OIDC
// provider binds its callback to the browser that signed in).
func (s *Server) SessionIDOf(r *http.Request) string {
	ses, err := s.Accounts.CheckSession(r.Context(), s.sessionSecret(r))
	if err != nil {
		return ""
	}
	return ses.ID
}

// auditCSRF writes the audit row of a refused forged request, at the
// bounded rate Accounts.RecordRefusal allows per IP.
func (s *Server) auditCSRF(r *http.Request, personID, reason string) {
	if s.Accounts == nil {
		return
	}
	info := s.requestInfo(r)
	e := auth.AuditEntry{ActorType: auth.ActorAnonymous, Action: "csrf.rejected", Outcome: auth.OutcomeDenied, PersonID: personID,
		IP: info.IP, UserAgent: info.UserAgent, Detail: jsonDetail(map[string]string{"path": r.URL.Path, "reason": reason})}
	if personID != "" {
		e.ActorType, e.ActorID = auth.ActorPerson, personID
	}
	if _, err := s.Accounts.RecordRefusal(r.Context(), e); err != nil {
		s.log.WarnContext(r.Context(), "audit csrf rejection", "err", err, "request_id", requestID(r.Context()))
	}
}
