package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/onramp-dev/onramp/auth"
)

// LoginResumer is optionally implemented by a Login: before the sign-in
// page of an OIDC request is shown, it may answer the request from the
// browser's live session (ses, nil when there is none) and report true.
type LoginResumer interface {
	ResumeLogin(w http.ResponseWriter, r *http.Request, authRequestID string, ses *auth.Session) bool
}

// Consenter is optionally implemented by a Login: the consent page of a
// client that is not first-party.
type Consenter interface {
	// Consent names the request's client's property and the scopes asked.
	Consent(ctx context.Context, authRequestID string) (propertyID string, scopes []string, err error)
	// Decide records the answer and sends the browser on.
	Decide(w http.ResponseWriter, r *http.Request, authRequestID string, ses *auth.Session, allow bool)
}

// logoutView carries an RP-initiated logout's way back.
type logoutView struct {
	ClientID, RedirectURI, State string
}

func (s *Server) oidcPageRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /auth/consent", s.consentPage)
	m.HandleFunc("POST /auth/consent", s.guardPost(s.consentPost))
	m.HandleFunc("GET /auth/logout", s.logoutPage)
	m.HandleFunc("POST /auth/logout", s.guardPost(s.logoutPost))
	m.HandleFunc("GET /auth/logged-out", s.loggedOutPage)
}

func (s *Server) consentPage(w http.ResponseWriter, r *http.Request) {
	ses, ok := s.signedInSession(w, r)
	if !ok {
		return
	}
	c, ok := s.Login.(Consenter)
	ar := authRequestParam(r)
	if !ok || ar == "" {
		http.NotFound(w, r)
		return
	}
	propertyID, scopes, err := c.Consent(r.Context(), ar)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	name := propertyID
	if p, err := s.Properties.Get(r.Context(), propertyID); err == nil {
		name = p.Name
	}
	s.useRequestLocales(r)
	v := s.pages.newView(r, "title_consent")
	v.AuthRequest = ar
	v.Intro = strings.ReplaceAll(v.T["consent_intro"], "{client}", name)
	for _, sc := range scopes {
		if words, ok := v.T["scope_"+sc]; ok {
			v.Scopes = append(v.Scopes, words)
		} else {
			v.Scopes = append(v.Scopes, sc)
		}
	}
	v.CSRF = s.Accounts.CSRFToken(ses.ID)
	s.render(w, r, http.StatusOK, "consent", v)
}

func (s *Server) consentPost(w http.ResponseWriter, r *http.Request) {
	ses, ok := s.signedInSession(w, r)
	if !ok {
		return
	}
	if !s.checkCSRF(w, r, ses.ID, ses.PersonID) {
		return
	}
	c, ok := s.Login.(Consenter)
	ar := authRequestParam(r)
	if !ok || ar == "" {
		http.NotFound(w, r)
		return
	}
	c.Decide(w, r, ar, ses, r.PostFormValue("decision") == "allow")
}

// logoutPage asks before ending the session: /oauth/end_session without
// an id_token_hint comes here, and a logout that any site could trigger
// by a link would be a CSRF.
func (s *Server) logoutPage(w http.ResponseWriter, r *http.Request) {
	ses, err := s.Accounts.CheckSession(r.Context(), s.sessionSecret(r))
	if err != nil {
		// Nothing to end: go where the site asked, if it may.
		http.Redirect(w, r, s.afterLogout(r.Context(), r.FormValue("client_id"), r.FormValue("post_logout_redirect_uri"), r.FormValue("state")), http.StatusSeeOther)
		return
	}
	v := s.pages.newView(r, "title_logout")
	v.Logout = &logoutView{ClientID: r.FormValue("client_id"), RedirectURI: r.FormValue("post_logout_redirect_uri"), State: r.FormValue("state")}
	v.CSRF = s.Accounts.CSRFToken(ses.ID)
	s.render(w, r, http.StatusOK, "logout", v)
}

func (s *Server) logoutPost(w http.ResponseWriter, r *http.Request) {
	secret := s.sessionSecret(r)
	if ses, err := s.Accounts.CheckSession(r.Context(), secret); err == nil {
		if !s.checkCSRF(w, r, ses.ID, ses.PersonID) {
			return
		}
		if _, err := s.Accounts.SignOut(r.Context(), secret, s.requestInfo(r)); err != nil {
			s.pageError(w, r, err)
			return
		}
	}
	s.clearCookie(w, s.sessionCookieName())
	http.Redirect(w, r, s.afterLogout(r.Context(), r.PostFormValue("client_id"), r.PostFormValue("post_logout_redirect_uri"), r.PostFormValue("state")), http.StatusSeeOther)
}

// afterLogout is where a logout ends: the client's registered
// post-logout URI (exactly matched, with state), else our own page. Never
// a URI the client did not register: no open redirect.
func (s *Server) afterLogout(ctx context.Context, clientID, uri, state string) string {
	if clientID == "" || uri == "" || s.OAuth == nil {
		return "/auth/logged-out"
	}
	ok, err := s.OAuth.CheckPostLogoutRedirect(ctx, clientID, uri)
	if err != nil {
		return "/auth/logged-out"
	}
	if state != "" {
		u, err := url.Parse(ok)
		if err != nil {
			return "/auth/logged-out"
		}
		q := u.Query()
		q.Set("state", state)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return ok
}

func (s *Server) loggedOutPage(w http.ResponseWriter, r *http.Request) {
	v := s.pages.newView(r, "title_logged_out")
	s.renderMessage(w, r, http.StatusOK, "title_logged_out", v.T["logged_out_body"], v.Link("/auth/sign-in"), "link_sign_in_again")
}
