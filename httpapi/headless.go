package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// The headless JSON API: the hosted pages' flows for sites that bring
// their own forms (JAMstack sites calling from the browser). It is called
// cross-origin, with CORS for the origins of the flow's client's property
// only and never with credentials: no cookie is read or set, and the flow
// secret travels in "Authorization: Flow <flow_secret>". With no ambient
// credential there is nothing for another site to forge, so there is no
// CSRF token. Every rule (limits, same answers, codes) is auth.Accounts'.
// A finished flow answers a continue URL; the browser's top-level
// navigation there (/auth/continue) gets the session cookie first-party
// on Onramp's origin and finishes the OIDC request at the client.

// AuthRequester is optionally implemented by a Login: it checks and
// stores an OIDC authorization request from /oauth/authorize's parameters
// exactly as the provider's authorize endpoint does. The headless API
// needs it to start flows.
type AuthRequester interface {
	CreateAuthRequest(ctx context.Context, params url.Values, anonymousID string) (*auth.AuthRequest, error)
}

const (
	flowsPath = "/api/auth/flows"
	// maxHeadlessBody bounds a step's body: an email, a password, a name.
	maxHeadlessBody = 16 << 10
)

func (s *Server) headlessRoutes(m *http.ServeMux) {
	m.HandleFunc("POST "+flowsPath, s.startHeadlessFlow)
	m.HandleFunc("OPTIONS "+flowsPath, s.headlessPreflight)
	m.HandleFunc("POST "+flowsPath+"/{id}/password", s.flowPassword)
	m.HandleFunc("POST "+flowsPath+"/{id}/code/send", s.flowSendCode)
	m.HandleFunc("POST "+flowsPath+"/{id}/code/verify", s.flowVerifyCode)
	m.HandleFunc("POST "+flowsPath+"/{id}/signup", s.flowSignUp)
	m.HandleFunc("POST "+flowsPath+"/{id}/resend", s.flowResend)
	m.HandleFunc("POST "+flowsPath+"/{id}/recover", s.flowRecover)
	m.HandleFunc("POST "+flowsPath+"/{id}/new-password", s.flowNewPassword)
	m.HandleFunc("POST "+flowsPath+"/{id}/passkey/options", s.flowPasskeyOptions)
	m.HandleFunc("POST "+flowsPath+"/{id}/passkey", s.flowPasskey)
	m.HandleFunc("OPTIONS "+flowsPath+"/{id}/{step...}", s.headlessPreflight)
	m.HandleFunc("GET /auth/continue", s.continuePage)
	m.HandleFunc("GET /.well-known/webauthn", s.relatedOrigins)
}

// nextSteps are the steps a new flow offers, as paths under the flow
// (a sign-in offers "passkey/options" too when the server has passkeys).
var nextSteps = map[string][]string{
	auth.FlowSignIn:   {"password", "code/send"},
	auth.FlowSignUp:   {"signup"},
	auth.FlowRecovery: {"recover"},
}

// startFlowInput is /oauth/authorize's parameters, as JSON.
type startFlowInput struct {
	ClientID            string `json:"client_id"`
	RedirectURI         string `json:"redirect_uri"`
	ResponseType        string `json:"response_type"`
	Scope               string `json:"scope"`
	State               string `json:"state"`
	Nonce               string `json:"nonce"`
	CodeChallenge       string `json:"code_challenge"`
	CodeChallengeMethod string `json:"code_challenge_method"`
	AnonymousID         string `json:"anonymous_id"`
	// UILocales picks the language of the flow's emails, as on
	// /oauth/authorize; without it the request's Accept-Language does.
	UILocales string `json:"ui_locales"`
	// Kind is signin (the default), signup or recovery.
	Kind string `json:"kind"`
}

type startFlowAnswer struct {
	FlowID     string    `json:"flow_id"`
	FlowSecret string    `json:"flow_secret"`
	Next       []string  `json:"next"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// startHeadlessFlow serves POST /api/auth/flows: an auth request checked
// as /oauth/authorize checks it, and a flow that signs in for it.
func (s *Server) startHeadlessFlow(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	var in startFlowInput
	if err := decodeJSONBody(w, r, &in, maxHeadlessBody, false); err != nil {
		// The client is not known yet: CORS as the preflight answered it.
		s.allowFlowOrigin(w, r, "")
		s.writeError(w, r, err)
		return
	}
	ctx, info := r.Context(), s.requestInfo(r)
	corsClient := in.ClientID
	if _, err := s.clientProperty(ctx, corsClient); err != nil {
		// An unknown client: CORS as the preflight answered it, and the
		// authorization checks below say what is wrong.
		corsClient = ""
	}
	if !s.allowFlowOrigin(w, r, corsClient) {
		s.refuseOrigin(w, r)
		return
	}
	requester, ok := s.Login.(AuthRequester)
	if !ok || s.Accounts == nil {
		s.writeError(w, r, onramp.Errorf(onramp.ENOTFOUND, "The OpenID Connect provider is not configured on this server."))
		return
	}
	if in.Kind == "" {
		in.Kind = auth.FlowSignIn
	}
	next, ok := nextSteps[in.Kind]
	if !ok {
		s.writeError(w, r, onramp.Errorf(onramp.EINVALID, "kind must be signin, signup or recovery."))
		return
	}
	if in.Kind == auth.FlowSignIn && s.Accounts.PasskeysAvailable() {
		next = append(slices.Clone(next), "passkey/options")
	}
	if err := s.Accounts.CheckLimits(ctx, info); err != nil {
		s.writeError(w, r, err)
		return
	}
	params := url.Values{}
	for k, v := range map[string]string{
		"client_id": in.ClientID, "redirect_uri": in.RedirectURI, "response_type": in.ResponseType, "scope": in.Scope,
		"state": in.State, "nonce": in.Nonce, "code_challenge": in.CodeChallenge, "code_challenge_method": in.CodeChallengeMethod,
	} {
		if v != "" {
			params.Set(k, v)
		}
	}
	ar, err := requester.CreateAuthRequest(ctx, params, in.AnonymousID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f, ref, err := s.Accounts.StartFlow(ctx, auth.StartFlowParams{
		Kind: in.Kind, AuthRequestID: ar.ID, ClientID: ar.ClientID, AnonymousID: in.AnonymousID, Info: info,
		Lang: s.pages.langOf(in.UILocales, r.Header.Get("Accept-Language")),
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, startFlowAnswer{FlowID: f.ID, FlowSecret: ref, Next: next, ExpiresAt: f.ExpiresAt})
}

// flowCall is what every step does first: CORS for the flow's client, the
// body, and the flow secret of the flow the path names. It answers the
// request itself and reports false when it cannot go on.
func (s *Server) flowCall(w http.ResponseWriter, r *http.Request, in any, optional bool) (string, bool) {
	noStore(w)
	id := r.PathValue("id")
	clientID, err := s.Accounts.FlowClient(r.Context(), id)
	switch {
	case err == nil && clientID == "":
		// A hosted page's flow: not this API's.
		err = onramp.Errorf(onramp.ENOTFOUND, "This sign-in attempt has expired. Please start again.")
	case onramp.ErrorCode(err) == onramp.EINTERNAL:
		s.writeError(w, r, err)
		return "", false
	}
	if err != nil {
		// Unknown or gone: the answer says so to any property's origin.
		s.allowFlowOrigin(w, r, "")
		s.writeError(w, r, err)
		return "", false
	}
	if !s.allowFlowOrigin(w, r, clientID) {
		s.refuseOrigin(w, r)
		return "", false
	}
	scheme, ref, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	ref = strings.TrimSpace(ref)
	if !strings.EqualFold(scheme, "Flow") || ref == "" {
		s.writeError(w, r, onramp.Errorf(onramp.EUNAUTHORIZED, "Send the flow_secret of POST /api/auth/flows as \"Authorization: Flow <flow_secret>\"."))
		return "", false
	}
	if refID, _, _ := strings.Cut(ref, "."); refID != id {
		s.writeError(w, r, onramp.Errorf(onramp.EUNAUTHORIZED, "The Authorization header holds the secret of another flow."))
		return "", false
	}
	if err := decodeJSONBody(w, r, in, maxHeadlessBody, optional); err != nil {
		s.writeError(w, r, err)
		return "", false
	}
	return ref, true
}

// stepAnswer answers a step: the Step, a problem, or, once the flow is
// proven, a continue URL with a fresh ticket.
func (s *Server) stepAnswer(w http.ResponseWriter, r *http.Request, ref string, step *auth.Step, err error) {
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if step.Next != auth.StepDone {
		writeJSON(w, http.StatusOK, step)
		return
	}
	ticket, err := s.Accounts.IssueTicket(r.Context(), ref)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "complete", "continue_url": s.issuer() + "/auth/continue?ticket=" + url.QueryEscape(ticket)})
}

func (s *Server) flowPassword(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	ref, ok := s.flowCall(w, r, &in, false)
	if !ok {
		return
	}
	step, err := s.Accounts.SignInPassword(r.Context(), auth.PasswordParams{FlowRef: ref, Email: in.Email, Password: in.Password, Info: s.requestInfo(r)})
	s.stepAnswer(w, r, ref, step, err)
}

func (s *Server) flowSendCode(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Email string `json:"email"`
	}
	ref, ok := s.flowCall(w, r, &in, false)
	if !ok {
		return
	}
	step, err := s.Accounts.SendEmailCode(r.Context(), auth.SendCodeParams{FlowRef: ref, Email: in.Email, Info: s.requestInfo(r)})
	s.stepAnswer(w, r, ref, step, err)
}

func (s *Server) flowVerifyCode(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Code string `json:"code"`
	}
	ref, ok := s.flowCall(w, r, &in, false)
	if !ok {
		return
	}
	step, err := s.Accounts.VerifyEmailCode(r.Context(), auth.VerifyCodeParams{FlowRef: ref, Code: in.Code, Info: s.requestInfo(r)})
	s.stepAnswer(w, r, ref, step, err)
}

func (s *Server) flowSignUp(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Email    string `json:"email"`
		Password string `json:"password"`
		Name     string `json:"name"`
	}
	ref, ok := s.flowCall(w, r, &in, false)
	if !ok {
		return
	}
	step, err := s.Accounts.SignUp(r.Context(), auth.SignUpParams{FlowRef: ref, Email: in.Email, Password: in.Password, Traits: nameTraits(in.Name), Info: s.requestInfo(r)})
	s.stepAnswer(w, r, ref, step, err)
}

func (s *Server) flowResend(w http.ResponseWriter, r *http.Request) {
	var in struct{}
	ref, ok := s.flowCall(w, r, &in, true)
	if !ok {
		return
	}
	step, err := s.Accounts.ResendCode(r.Context(), auth.ResendParams{FlowRef: ref, Info: s.requestInfo(r)})
	s.stepAnswer(w, r, ref, step, err)
}

// flowRecover starts a password recovery: the email gets a code and link
// when it has an account, the note on how to sign up otherwise, and the
// answer is the same.
func (s *Server) flowRecover(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Email string `json:"email"`
	}
	ref, ok := s.flowCall(w, r, &in, false)
	if !ok {
		return
	}
	step, err := s.Accounts.StartRecovery(r.Context(), auth.RecoveryParams{FlowRef: ref, Email: in.Email, Info: s.requestInfo(r)})
	s.stepAnswer(w, r, ref, step, err)
}

// flowNewPassword sets the new password of a proven recovery flow; the
// browser gets its session through the continue URL, like every sign-in
// of this API.
func (s *Server) flowNewPassword(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Password string `json:"password"`
	}
	ref, ok := s.flowCall(w, r, &in, false)
	if !ok {
		return
	}
	step, err := s.Accounts.ResetPasswordForTicket(r.Context(), auth.ResetPasswordParams{FlowRef: ref, Password: in.Password, Info: s.requestInfo(r)})
	s.stepAnswer(w, r, ref, step, err)
}

// flowPasskeyOptions begins a passkey sign-in on the site's page: the
// options for navigator.credentials.get, bound to the calling origin
// (which flowCall has checked is one of the client's property).
func (s *Server) flowPasskeyOptions(w http.ResponseWriter, r *http.Request) {
	var in struct{}
	ref, ok := s.flowCall(w, r, &in, true)
	if !ok {
		return
	}
	opts, err := s.Accounts.BeginPasskeyLogin(r.Context(), auth.PasskeyLoginParams{FlowRef: ref, Origin: r.Header.Get("Origin"), Info: s.requestInfo(r)})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, opts)
}

// flowPasskey finishes a passkey sign-in with the authenticator's answer
// (the PublicKeyCredential's JSON).
func (s *Server) flowPasskey(w http.ResponseWriter, r *http.Request) {
	var cred json.RawMessage
	ref, ok := s.flowCall(w, r, &cred, false)
	if !ok {
		return
	}
	step, err := s.Accounts.FinishPasskeyLogin(r.Context(), auth.FinishPasskeyLoginParams{FlowRef: ref, Response: cred, Info: s.requestInfo(r)})
	s.stepAnswer(w, r, ref, step, err)
}

// relatedOrigins serves /.well-known/webauthn: the properties' origins,
// from which browsers let pages use passkeys of Onramp's relying party id
// (the headless API's passkey steps). Browsers fetch it themselves,
// without credentials, and it names only origins the properties list.
func (s *Server) relatedOrigins(w http.ResponseWriter, r *http.Request) {
	if s.Accounts == nil || !s.Accounts.PasskeysAvailable() {
		s.writeError(w, r, onramp.Errorf(onramp.ENOTFOUND, "Passkeys are not available on this server."))
		return
	}
	var origins []string
	if s.Properties != nil {
		ps, err := s.Properties.List(r.Context())
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		for _, p := range ps {
			origins = append(origins, p.Origins...)
		}
	}
	doc, err := s.Accounts.RelatedOrigins(origins)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, doc)
}

// continuePage serves GET /auth/continue?ticket=…: the browser arrives by
// a top-level navigation from the site, gets its session cookie here,
// first-party, and goes on to the client with a code, through the same
// bridge as the hosted pages (signedIn → Login.FinishLogin).
func (s *Server) continuePage(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	w.Header().Set("Referrer-Policy", "no-referrer")
	g, err := s.Accounts.RedeemTicket(r.Context(), r.URL.Query().Get("ticket"), s.requestInfo(r))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.signedIn(w, r, g)
}

// allowFlowOrigin adds the CORS headers when the request's Origin may call
// for clientID: an origin of the client's property, or, before the client
// is known (clientID ""), of any property. Credentials are never allowed.
// It reports whether the origin may call (true without an Origin: a
// server-side caller).
func (s *Server) allowFlowOrigin(w http.ResponseWriter, r *http.Request, clientID string) bool {
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if !s.flowOriginAllowed(r.Context(), origin, clientID) {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", "Retry-After, X-Request-Id, WWW-Authenticate")
	return true
}

func (s *Server) flowOriginAllowed(ctx context.Context, origin, clientID string) bool {
	if s.Properties == nil {
		return false
	}
	if clientID != "" {
		p, err := s.clientProperty(ctx, clientID)
		return err == nil && p.AllowsOrigin(origin)
	}
	ps, err := s.Properties.List(ctx)
	if err != nil {
		return false
	}
	for _, p := range ps {
		if p.AllowsOrigin(origin) {
			return true
		}
	}
	return false
}

// refuseOrigin answers a browser on an origin the flow's client does not
// list: 403, without CORS headers (so the page cannot read even that),
// and nothing done.
func (s *Server) refuseOrigin(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, onramp.Errorf(onramp.EFORBIDDEN, "This origin may not sign in for this client; add it to the origins of the client's property."))
}

// headlessPreflight answers CORS preflights of the headless API: for a
// step, the origins of the flow's client's property; for a new flow,
// whose client is in the body, those of any property (the real request is
// checked against its client).
func (s *Server) headlessPreflight(w http.ResponseWriter, r *http.Request) {
	clientID := ""
	if id := r.PathValue("id"); id != "" && s.Accounts != nil {
		clientID, _ = s.Accounts.FlowClient(r.Context(), id)
	}
	if s.allowFlowOrigin(w, r, clientID) && r.Header.Get("Origin") != "" {
		h := w.Header()
		h.Del("Access-Control-Expose-Headers")
		h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id")
		h.Set("Access-Control-Max-Age", "600")
	}
	w.WriteHeader(http.StatusNoContent)
}

// issuer is Onramp's public URL, where the continue URL points.
func (s *Server) issuer() string {
	if s.OAuth != nil {
		return s.OAuth.Issuer()
	}
	return strings.TrimRight(s.PublicURL, "/")
}

// noStore keeps flow secrets and tickets out of caches.
func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
}
