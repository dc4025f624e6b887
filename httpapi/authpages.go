package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// Login finishes an OIDC authorization request once a hosted page has
// signed the person in: the OIDC provider marks the request done with the
// grant's session and answers the browser (a redirect back to the client
// with a code, or the provider's error page). Pages call it only when the
// finished flow was started for an auth request.
type Login interface {
	FinishLogin(w http.ResponseWriter, r *http.Request, authRequestID string, g *auth.Grant)
}

// LoginOrigins is optionally implemented by a Login: the origins of the
// client's redirect URIs, which the sign-in pages of that auth request add
// to their CSP form-action (Chrome applies form-action to the redirect
// chain after a form post, and the chain ends at the client).
type LoginOrigins interface {
	FormActionOrigins(ctx context.Context, authRequestID string) []string
}

// The hosted sign-in pages: thin handlers over auth.Accounts. Every
// decision (what to send, whether a code is right, what an answer may
// reveal, limits) is the Accounts'; these only move form values in and
// pages, cookies and redirects out.

func (s *Server) authPageRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /auth/assets/auth.css", s.authCSS)
	m.HandleFunc("GET /auth/theme/{file}", s.themeCSS)
	m.HandleFunc("GET /auth/sign-in", s.signInPage)
	m.HandleFunc("POST /auth/sign-in", s.guardPost(s.signInPost))
	m.HandleFunc("GET /auth/sign-up", s.signUpPage)
	m.HandleFunc("POST /auth/sign-up", s.guardPost(s.signUpPost))
	m.HandleFunc("GET /auth/verify", s.verifyPage)
	m.HandleFunc("POST /auth/verify", s.guardPost(s.verifyPost))
	m.HandleFunc("GET /auth/magic/{token}", s.magicPage)
	m.HandleFunc("POST /auth/magic/{token}", s.guardPost(s.magicPost))
	m.HandleFunc("POST /auth/sign-out", s.guardPost(s.signOutPost))
	m.HandleFunc("GET /auth/recover", s.recoverPage)
	m.HandleFunc("POST /auth/recover", s.guardPost(s.recoverPost))
	m.HandleFunc("GET /auth/recover/password", s.newPasswordPage)
	m.HandleFunc("POST /auth/recover/password", s.guardPost(s.newPasswordPost))
	m.HandleFunc("GET /setup/owner", s.setupPage)
	m.HandleFunc("POST /setup/owner", s.guardPost(s.setupPost))
	m.HandleFunc("GET /auth/invite", s.invitePage)
	m.HandleFunc("POST /auth/invite", s.guardPost(s.invitePost))
	m.HandleFunc("GET /account", s.accountPage)
	m.HandleFunc("POST /account/sessions/{id}/revoke", s.guardPost(s.revokeSessionPost))
	m.HandleFunc("POST /account/password", s.guardPost(s.changePasswordPost))
	m.HandleFunc("POST /account/profile", s.guardPost(s.profilePost))
}

// startFlow opens a flow for a sign-in or sign-up page and hands the
// browser its cookie. The flow carries the OIDC auth request through to
// Complete, and the tracking id the SDK put on the link (onramp_aid), so
// the visitor's earlier browsing joins the account once the email is
// proven. It is deferred: showing the page writes nothing, the cookie
// carries the flow until a step stores it (auth.StartFlowParams.Deferred).
func (s *Server) startFlow(w http.ResponseWriter, r *http.Request, kind, authRequest string) (*auth.Flow, string, error) {
	f, ref, err := s.Accounts.StartFlow(r.Context(), auth.StartFlowParams{
		Kind: kind, AuthRequestID: authRequest, AnonymousID: anonymousIDOf(r), Info: s.requestInfo(r),
		Lang: s.pages.lang(r), Deferred: true,
	})
	if err != nil {
		return nil, "", err
	}
	s.setFlowCookie(w, ref)
	return f, ref, nil
}

// anonymousIDOf is the browser's tracking id: the onramp_aid parameter
// the SDK adds to sign-in links, else the SDK's own cookie, which reaches
// Onramp's pages when they are served on a subdomain that shares the
// cookie's domain (docs/sdk.md, Sharing the anonymous id), else Segment's.
func anonymousIDOf(r *http.Request) string {
	if a := r.FormValue("onramp_aid"); a != "" {
		return a
	}
	return anonymousCookie(r)
}

// anonymousCookie is the tracking id from the browser's own cookie. Only
// it may unlock a pre-filled form: a link parameter can be copied, and
// whoever holds someone's link must not see their email or name.
func anonymousCookie(r *http.Request) string {
	for _, name := range []string{"onramp_anon_id", "ajs_anonymous_id"} {
		if c, err := r.Cookie(name); err == nil && c.Value != "" {
			// analytics.js stores the id JSON-quoted.
			v, err := url.QueryUnescape(c.Value)
			if err != nil {
				v = c.Value
			}
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

func authRequestParam(r *http.Request) string {
	a := r.FormValue("authRequest")
	if len(a) > 200 {
		return ""
	}
	return a
}

// useRequestLocales lets the ui_locales of the OIDC request a page works
// for choose its language when the URL has none: /oauth/authorize sends
// the browser here with only the request's id (op builds that URL from
// the id alone), and the pages' links and forms carry ui_locales on
// from here.
func (s *Server) useRequestLocales(r *http.Request) {
	id := authRequestParam(r)
	if id == "" || s.OAuth == nil || r.FormValue("ui_locales") != "" {
		return
	}
	ar, err := s.OAuth.AuthRequest(r.Context(), id)
	if err != nil || ar.UILocales == "" {
		return
	}
	r.Form.Set("ui_locales", ar.UILocales)
}

func (s *Server) flowPage(w http.ResponseWriter, r *http.Request, kind, page, titleKey string) {
	v := s.pages.newView(r, titleKey)
	v.AuthRequest = authRequestParam(r)
	f, _, err := s.startFlow(w, r, kind, v.AuthRequest)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	v.CSRF = s.Accounts.CSRFToken(f.ID)
	s.render(w, r, http.StatusOK, page, v)
}

// signInPage first lets a live session answer an OIDC request without a
// page (single sign-on across properties, prompt=none); otherwise it asks.
func (s *Server) signInPage(w http.ResponseWriter, r *http.Request) {
	s.useRequestLocales(r)
	if ar := authRequestParam(r); ar != "" {
		if lr, ok := s.Login.(LoginResumer); ok {
			ses, _ := s.Accounts.CheckSession(r.Context(), s.sessionSecret(r))
			if lr.ResumeLogin(w, r, ar, ses) {
				return
			}
		}
	}
	s.flowPage(w, r, auth.FlowSignIn, "sign_in", "title_sign_in")
}

// signUpPage asks only for what is not known. In a browser whose own
// tracking cookie already belongs to someone, their email and a known
// name are not asked again: the page says "Signing up as …" with a "Not
// you?" link to a blank sign-up (as=new), and the form posts as=known
// instead of those fields. Accounts.Prefill decides whether the browser is
// recognised, and shows nothing to anyone else.
func (s *Server) signUpPage(w http.ResponseWriter, r *http.Request) {
	s.useRequestLocales(r)
	v := s.pages.newView(r, "title_sign_up")
	v.AuthRequest = authRequestParam(r)
	f, ref, err := s.startFlow(w, r, auth.FlowSignUp, v.AuthRequest)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	if r.FormValue("as") != "new" {
		s.showKnown(r, v, ref)
	}
	v.CSRF = s.Accounts.CSRFToken(f.ID)
	s.render(w, r, http.StatusOK, "sign_up", v)
}

// showKnown puts what the recognised browser's person is known by on the
// sign-up page. The cookie is the browser's own; a link's onramp_aid
// never recognises anyone (auth.PrefillParams).
func (s *Server) showKnown(r *http.Request, v *view, ref string) {
	p, err := s.Accounts.Prefill(r.Context(), auth.PrefillParams{FlowRef: ref, CookieAnonymousID: anonymousCookie(r)})
	if err != nil || p == nil {
		return
	}
	notYou := v.Link("/auth/sign-up")
	if strings.Contains(notYou, "?") {
		notYou += "&as=new"
	} else {
		notYou += "?as=new"
	}
	v.Known = &knownView{Name: p.Name, Email: p.Email, NotYou: notYou}
}

// postedFlow checks the CSRF token of a flow's form and returns the flow
// reference. A browser without a flow cookie (expired, or a forged post)
// has nothing to bind the form to, which is a CSRF refusal too.
func (s *Server) postedFlow(w http.ResponseWriter, r *http.Request) (string, bool) {
	ref, id := flowRef(r)
	if !s.checkCSRF(w, r, id, "") {
		return "", false
	}
	return ref, true
}

// formAgain shows a flow's form again with err. A flow that has expired
// is replaced, so the visitor can simply submit again.
func (s *Server) formAgain(w http.ResponseWriter, r *http.Request, page, titleKey, kind string, err error, keep ...string) {
	if onramp.ErrorCode(err) == onramp.EINTERNAL {
		s.pageError(w, r, err)
		return
	}
	v := s.pages.newView(r, titleKey)
	v.addError(err)
	for _, k := range keep {
		v.values[k] = r.PostFormValue(k)
	}
	ref, id := flowRef(r)
	if onramp.ErrorCode(err) == onramp.ENOTFOUND || ref == "" {
		f, newRef, ferr := s.startFlow(w, r, kind, "")
		if ferr != nil {
			s.pageError(w, r, ferr)
			return
		}
		id, ref = f.ID, newRef
	} else if f, ferr := s.Accounts.Flow(r.Context(), ref); ferr == nil {
		v.AuthRequest = f.AuthRequestID
	}
	if page == "sign_up" && r.PostFormValue("as") == "known" {
		// The recognised form again, as long as the browser still is.
		s.showKnown(r, v, ref)
	}
	v.CSRF = s.Accounts.CSRFToken(id)
	s.render(w, r, pageStatus(w, err), page, v)
}

func (s *Server) signInPost(w http.ResponseWriter, r *http.Request) {
	ref, ok := s.postedFlow(w, r)
	if !ok {
		return
	}
	ctx, info, email := r.Context(), s.requestInfo(r), r.PostFormValue("email")
	if r.PostFormValue("action") == "code" {
		if _, err := s.Accounts.SendEmailCode(ctx, auth.SendCodeParams{FlowRef: ref, Email: email, Info: info}); err != nil {
			s.formAgain(w, r, "sign_in", "title_sign_in", auth.FlowSignIn, err, "email")
			return
		}
		s.toVerify(w, r)
		return
	}
	step, g, err := s.Accounts.SignInPasswordSession(ctx, auth.PasswordParams{FlowRef: ref, Email: email, Password: r.PostFormValue("password"), Info: info})
	if err != nil {
		s.formAgain(w, r, "sign_in", "title_sign_in", auth.FlowSignIn, err, "email")
		return
	}
	if g != nil {
		s.signedIn(w, r, g)
		return
	}
	s.afterStep(w, r, ref, step)
}

func (s *Server) signUpPost(w http.ResponseWriter, r *http.Request) {
	ref, ok := s.postedFlow(w, r)
	if !ok {
		return
	}
	p := auth.SignUpParams{
		FlowRef: ref, Email: r.PostFormValue("email"), Password: r.PostFormValue("password"), Traits: nameTraits(r.PostFormValue("name")), Info: s.requestInfo(r),
	}
	if r.PostFormValue("as") == "known" {
		// The form left out what the browser's person is known by; the
		// Accounts take it from that person again, by the same cookie.
		p.CookieAnonymousID = anonymousCookie(r)
	}
	_, err := s.Accounts.SignUp(r.Context(), p)
	if err != nil {
		s.formAgain(w, r, "sign_up", "title_sign_up", auth.FlowSignUp, err, "email", "name")
		return
	}
	s.toVerify(w, r)
}

// nameTraits are the traits a sign-up form sets. Only what the visitor
// typed becomes a trait: an empty name must not blank the name Onramp
// already knows.
func nameTraits(name string) json.RawMessage {
	name = strings.TrimSpace(name)
	if name == "" {
		return nil
	}
	raw, _ := json.Marshal(map[string]string{"name": name})
	return raw
}

// toVerify sends the browser to the code page, keeping return_to and the
// language.
func (s *Server) toVerify(w http.ResponseWriter, r *http.Request) {
	v := s.pages.newView(r, "title_verify")
	http.Redirect(w, r, v.Link("/auth/verify"), http.StatusSeeOther)
}

func (s *Server) verifyPage(w http.ResponseWriter, r *http.Request) {
	s.showVerify(w, r, http.StatusOK, nil, "")
}

// showVerify renders the code page of the browser's flow; without a flow
// waiting for a code it goes back to sign-in.
func (s *Server) showVerify(w http.ResponseWriter, r *http.Request, status int, err error, notice string) {
	ref, _ := flowRef(r)
	f, ferr := s.Accounts.Flow(r.Context(), ref)
	if ferr != nil || f.Step != auth.StepVerifyEmail {
		v := s.pages.newView(r, "title_sign_in")
		http.Redirect(w, r, v.Link("/auth/sign-in"), http.StatusSeeOther)
		return
	}
	v := s.pages.newView(r, "title_verify")
	v.AuthRequest, v.CSRF, v.Notice = f.AuthRequestID, s.Accounts.CSRFToken(f.ID), notice
	v.Intro = strings.ReplaceAll(v.T["verify_intro"], "{email}", f.Email)
	if provider := s.Accounts.UpstreamLinkPending(f); provider != "" {
		// Say why a code is asked for after the provider said yes.
		v.Intro = strings.ReplaceAll(strings.ReplaceAll(v.T["verify_intro_link"], "{email}", f.Email), "{provider}", provider)
	}
	if err != nil {
		v.addError(err)
		status = pageStatus(w, err)
	}
	s.render(w, r, status, "verify", v)
}

func (s *Server) verifyPost(w http.ResponseWriter, r *http.Request) {
	ref, ok := s.postedFlow(w, r)
	if !ok {
		return
	}
	ctx, info := r.Context(), s.requestInfo(r)
	if r.PostFormValue("action") == "resend" {
		if _, err := s.Accounts.ResendCode(ctx, auth.ResendParams{FlowRef: ref, Info: info}); err != nil {
			s.verifyFailed(w, r, err)
			return
		}
		v := s.pages.newView(r, "title_verify")
		s.showVerify(w, r, http.StatusOK, nil, v.T["code_sent_again"])
		return
	}
	step, err := s.Accounts.VerifyEmailCode(ctx, auth.VerifyCodeParams{FlowRef: ref, Code: r.PostFormValue("code"), Info: info})
	if err != nil {
		s.verifyFailed(w, r, err)
		return
	}
	s.afterStep(w, r, ref, step)
}

func (s *Server) verifyFailed(w http.ResponseWriter, r *http.Request, err error) {
	switch onramp.ErrorCode(err) {
	case onramp.EINTERNAL:
		s.pageError(w, r, err)
	case onramp.ENOTFOUND:
		// The flow expired (or a link opened elsewhere took it over).
		s.formAgain(w, r, "sign_in", "title_sign_in", auth.FlowSignIn, err)
	default:
		s.showVerify(w, r, 0, err, "")
	}
}

// afterStep moves on from a step: to the code page, to the second-factor
// page, or, once the flow is done, to a new session.
func (s *Server) afterStep(w http.ResponseWriter, r *http.Request, ref string, step *auth.Step) {
	if step.Next == auth.StepMFA {
		v := s.pages.newView(r, "title_mfa")
		http.Redirect(w, r, v.Link("/auth/mfa"), http.StatusSeeOther)
		return
	}
	if step.Next == auth.StepNewPassword {
		v := s.pages.newView(r, "title_new_password")
		http.Redirect(w, r, v.Link("/auth/recover/password"), http.StatusSeeOther)
		return
	}
	if step.Next != auth.StepDone {
		s.toVerify(w, r)
		return
	}
	g, err := s.Accounts.Complete(r.Context(), ref, s.requestInfo(r))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.signedIn(w, r, g)
}

// signedIn hands the browser its new session. A session cookie the
// browser already had is replaced (Accounts.ReplaceSession): someone
// else's (perhaps planted) is ended, so a fixed value never becomes a
// signed-in session; the same person's hands its clients on. Then the OIDC
// request the flow was for is finished, or the browser goes to return_to
// or the account page.
func (s *Server) signedIn(w http.ResponseWriter, r *http.Request, g *auth.Grant) {
	if err := s.Accounts.ReplaceSession(r.Context(), s.sessionSecret(r), g, s.requestInfo(r)); err != nil {
		s.log.WarnContext(r.Context(), "end the previous session", "err", err, "request_id", requestID(r.Context()))
	}
	s.setSessionCookie(w, g)
	s.clearCookie(w, flowCookie)
	if g.AuthRequestID != "" && s.Login != nil {
		s.Login.FinishLogin(w, r, g.AuthRequestID, g)
		return
	}
	to := safeReturnTo(r.FormValue("return_to"))
	if to == "" {
		to = "/account"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// magicPage only shows a Continue button: mail scanners fetch the links
// in emails, and a GET that spent the token would sign the scanner in and
// leave the person with a dead link.
func (s *Server) magicPage(w http.ResponseWriter, r *http.Request) {
	v := s.pages.newView(r, "title_magic")
	v.Action = "/auth/magic/" + url.PathEscape(r.PathValue("token"))
	v.CSRF = s.Accounts.CSRFToken(formBinding(s.formNonce(w, r)))
	s.render(w, r, http.StatusOK, "magic", v)
}

func (s *Server) magicPost(w http.ResponseWriter, r *http.Request) {
	if !s.checkCSRF(w, r, nonceBinding(r), "") {
		return
	}
	ctx, info := r.Context(), s.requestInfo(r)
	step, ref, err := s.Accounts.RedeemLink(ctx, auth.LinkParams{Token: r.PathValue("token"), Info: info})
	if err != nil {
		if onramp.ErrorCode(err) == onramp.EINTERNAL {
			s.pageError(w, r, err)
			return
		}
		v := s.pages.newView(r, "title_magic")
		v.addError(err)
		s.renderMessage(w, r, pageStatus(w, err), "title_magic", v.Errors[0].Message, v.Link("/auth/sign-in"), "link_sign_in_again")
		return
	}
	if step.Next != auth.StepDone {
		// The flow goes on in this browser (a second factor, a new
		// password): it holds the flow's fresh secret from now on.
		s.setFlowCookie(w, ref)
	}
	s.afterStep(w, r, ref, step)
}

// nonceBinding is the CSRF binding of a nonce-bound form, "" when the
// browser has no nonce cookie.
func nonceBinding(r *http.Request) string {
	if n := cookieValue(r, formCookie); len(n) >= 20 {
		return formBinding(n)
	}
	return ""
}

func (s *Server) signOutPost(w http.ResponseWriter, r *http.Request) {
	secret := s.sessionSecret(r)
	ses, err := s.Accounts.CheckSession(r.Context(), secret)
	if err != nil {
		// Nothing live to end: just drop whatever cookie is left.
		s.clearCookie(w, s.sessionCookieName())
		http.Redirect(w, r, "/auth/sign-in", http.StatusSeeOther)
		return
	}
	if !s.checkCSRF(w, r, ses.ID, ses.PersonID) {
		return
	}
	if _, err := s.Accounts.SignOut(r.Context(), secret, s.requestInfo(r)); err != nil {
		s.pageError(w, r, err)
		return
	}
	s.clearCookie(w, s.sessionCookieName())
	v := s.pages.newView(r, "title_signed_out")
	s.renderMessage(w, r, http.StatusOK, "title_signed_out", v.T["signed_out_body"], v.Link("/auth/sign-in"), "link_sign_in_again")
}

// pageError shows an error that has no form to go back to. Internal
// errors are logged with the request id and shown only as "something went
// wrong".
func (s *Server) pageError(w http.ResponseWriter, r *http.Request, err error) {
	status := pageStatus(w, err)
	v := s.pages.newView(r, "title_error")
	msg := v.T["error_body"]
	if status >= 500 {
		s.log.ErrorContext(r.Context(), "page failed", "err", err, "path", r.URL.Path, "request_id", requestID(r.Context()))
	} else {
		v.addError(err)
		msg = v.Errors[0].Message
	}
	s.renderMessage(w, r, status, "title_error", msg, v.Link(restartPath(r.URL.Path)), "link_reload")
}

func jsonDetail(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
