package httpapi

import (
	"encoding/json"
	"html/template"
	"net/http"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/web"
)

// The second-factor and passkey pages: the "mfa" step of a sign-in, the
// account pages for the authenticator app, recovery codes and passkeys,
// and the JSON endpoints passkey.js posts the WebAuthn ceremonies to. As
// everywhere in httpapi, the rules are auth.Accounts'; these handlers move
// values in and pages, cookies and redirects out.

func (s *Server) mfaPageRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /auth/assets/passkey.js", s.passkeyJS)
	m.HandleFunc("GET /auth/mfa", s.mfaStepPage)
	m.HandleFunc("POST /auth/mfa", s.guardPost(s.mfaStepPost))
	m.HandleFunc("POST /auth/passkey/options", s.guardJSON(s.passkeyLoginOptions))
	m.HandleFunc("POST /auth/passkey", s.guardJSON(s.passkeyLoginFinish))
	m.HandleFunc("POST /auth/passkey/continue", s.guardPost(s.passkeyContinue))
	m.HandleFunc("GET /account/mfa", s.accountMFAPage)
	m.HandleFunc("POST /account/mfa/totp", s.guardPost(s.totpEnrollPost))
	m.HandleFunc("POST /account/mfa/totp/confirm", s.guardPost(s.totpConfirmPost))
	m.HandleFunc("POST /account/mfa/totp/disable", s.guardPost(s.totpDisablePost))
	m.HandleFunc("POST /account/mfa/recovery-codes", s.guardPost(s.recoveryCodesPost))
	m.HandleFunc("GET /account/passkeys", s.accountPasskeysPage)
	m.HandleFunc("POST /account/passkeys/options", s.guardJSON(s.passkeyRegisterOptions))
	m.HandleFunc("POST /account/passkeys", s.guardJSON(s.passkeyRegisterFinish))
	m.HandleFunc("POST /account/passkeys/{id}/rename", s.guardPost(s.passkeyRenamePost))
	m.HandleFunc("POST /account/passkeys/{id}/remove", s.guardPost(s.passkeyRemovePost))
	m.HandleFunc("POST "+flowsPath+"/{id}/mfa", s.flowSecondFactor)
}

// flowSecondFactor is the headless API's second step: a code from the
// app or a recovery code, for a flow on the "mfa" step.
func (s *Server) flowSecondFactor(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Code string `json:"code"`
	}
	ref, ok := s.flowCall(w, r, &in, false)
	if !ok {
		return
	}
	step, err := s.Accounts.VerifySecondFactor(r.Context(), auth.SecondFactorParams{FlowRef: ref, Code: in.Code, Info: s.requestInfo(r)})
	s.stepAnswer(w, r, ref, step, err)
}

// passkeyJS serves the pages' only script.
func (s *Server) passkeyJS(w http.ResponseWriter, r *http.Request) {
	b, err := web.Assets.ReadFile("auth/static/passkey.js")
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b)
}

// guardJSON is guardPost for the JSON endpoints of passkey.js: the body
// limit and the cross-origin check. The CSRF token comes in the
// X-Onramp-CSRF header; each handler checks it once it knows the binding
// (checkJSONCSRF).
func (s *Server) guardJSON(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
		if err := s.cop.Check(r); err != nil {
			s.rejectJSONCSRF(w, r, "", "cross-origin")
			return
		}
		h(w, r)
	}
}

func (s *Server) checkJSONCSRF(w http.ResponseWriter, r *http.Request, bindTo, personID string) bool {
	if bindTo != "" && s.Accounts.CheckCSRF(bindTo, r.Header.Get(csrfHeader)) {
		return true
	}
	reason := "wrong_token"
	switch {
	case bindTo == "":
		reason = "no_binding"
	case r.Header.Get(csrfHeader) == "":
		reason = "missing_token"
	}
	s.rejectJSONCSRF(w, r, personID, reason)
	return false
}

// rejectJSONCSRF is rejectCSRF for the JSON endpoints: the same audit
// row, a problem document instead of a page.
func (s *Server) rejectJSONCSRF(w http.ResponseWriter, r *http.Request, personID, reason string) {
	s.auditCSRF(r, personID, reason)
	s.writeError(w, r, onramp.Errorf(onramp.EFORBIDDEN, "The request must come from this site's page and carry its CSRF token in %s.", csrfHeader))
}

// The sign-in's second step.

func (s *Server) mfaStepPage(w http.ResponseWriter, r *http.Request) {
	s.showMFAStep(w, r, http.StatusOK, nil)
}

// showMFAStep renders the code page of a flow on the "mfa" step; any other
// flow goes back to sign-in.
func (s *Server) showMFAStep(w http.ResponseWriter, r *http.Request, status int, err error) {
	ref, _ := flowRef(r)
	f, ferr := s.Accounts.Flow(r.Context(), ref)
	if ferr != nil || f.Step != auth.StepMFA {
		v := s.pages.newView(r, "title_sign_in")
		http.Redirect(w, r, v.Link("/auth/sign-in"), http.StatusSeeOther)
		return
	}
	v := s.pages.newView(r, "title_mfa")
	v.AuthRequest, v.CSRF = f.AuthRequestID, s.Accounts.CSRFToken(f.ID)
	if err != nil {
		v.addError(err)
		status = pageStatus(w, err)
	}
	s.render(w, r, status, "mfa", v)
}

func (s *Server) mfaStepPost(w http.ResponseWriter, r *http.Request) {
	ref, ok := s.postedFlow(w, r)
	if !ok {
		return
	}
	step, err := s.Accounts.VerifySecondFactor(r.Context(), auth.SecondFactorParams{FlowRef: ref, Code: r.PostFormValue("code"), Info: s.requestInfo(r)})
	switch code := onramp.ErrorCode(err); {
	case err == nil:
		s.afterStep(w, r, ref, step)
	case code == onramp.EINTERNAL:
		s.pageError(w, r, err)
	case code == onramp.ENOTFOUND:
		s.formAgain(w, r, "sign_in", "title_sign_in", auth.FlowSignIn, err)
	default:
		s.showMFAStep(w, r, 0, err)
	}
}

// Passkey sign-in: options and the authenticator's answer as JSON, then
// the continue form (a normal post) finishes like any other sign-in.

func (s *Server) passkeyLoginOptions(w http.ResponseWriter, r *http.Request) {
	ref, id := flowRef(r)
	if !s.checkJSONCSRF(w, r, id, "") {
		return
	}
	opts, err := s.Accounts.BeginPasskeyLogin(r.Context(), auth.PasskeyLoginParams{FlowRef: ref, Info: s.requestInfo(r)})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, opts)
}

func (s *Server) passkeyLoginFinish(w http.ResponseWriter, r *http.Request) {
	ref, id := flowRef(r)
	if !s.checkJSONCSRF(w, r, id, "") {
		return
	}
	var cred json.RawMessage
	if err := decodeJSON(w, r, &cred); err != nil {
		s.writeError(w, r, err)
		return
	}
	step, err := s.Accounts.FinishPasskeyLogin(r.Context(), auth.FinishPasskeyLoginParams{FlowRef: ref, Response: cred, Info: s.requestInfo(r)})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"next": step.Next})
}

// passkeyContinue carries the browser on from a passkey sign-in: a new
// session (or the client's redirect), or the second-factor page.
func (s *Server) passkeyContinue(w http.ResponseWriter, r *http.Request) {
	ref, ok := s.postedFlow(w, r)
	if !ok {
		return
	}
	f, err := s.Accounts.Flow(r.Context(), ref)
	if err != nil {
		s.formAgain(w, r, "sign_in", "title_sign_in", auth.FlowSignIn, err)
		return
	}
	if f.Step != auth.StepDone && f.Step != auth.StepMFA {
		v := s.pages.newView(r, "title_sign_in")
		http.Redirect(w, r, v.Link("/auth/sign-in"), http.StatusSeeOther)
		return
	}
	s.afterStep(w, r, ref, &auth.Step{FlowID: f.ID, Next: f.Step, Email: f.Email})
}

// The account's authenticator app and recovery codes.

// mfaView is what the two-step page shows: the app's state, a setup in
// progress, or recovery codes shown this once.
type mfaView struct {
	TOTP          bool
	CodesLeft     int
	Secret        string
	QR            template.URL // a PNG data: URL made by auth, not input
	OTPAuthURL    string
	RecoveryCodes []string
}

func (s *Server) accountMFAPage(w http.ResponseWriter, r *http.Request) {
	ses, ok := s.signedInSession(w, r)
	if !ok {
		return
	}
	s.showAccountMFA(w, r, ses, http.StatusOK, &mfaView{}, nil, "")
}

// showAccountMFA renders the two-step page. err, if any, is shown at the
// field errField.
func (s *Server) showAccountMFA(w http.ResponseWriter, r *http.Request, ses *auth.Session, status int, mv *mfaView, err error, errField string) {
	st, serr := s.Accounts.MFA(r.Context(), ses.PersonID)
	if serr != nil {
		s.pageError(w, r, serr)
		return
	}
	mv.TOTP, mv.CodesLeft = st.TOTP, st.RecoveryCodesLeft
	if !mv.TOTP && mv.RecoveryCodes == nil && mv.Secret == "" {
		// A setup begun and not confirmed goes on where it was.
		enr, perr := s.Accounts.PendingTOTP(r.Context(), ses.PersonID)
		switch onramp.ErrorCode(perr) {
		case "":
			mv.Secret, mv.QR, mv.OTPAuthURL = enr.Secret, template.URL(enr.QR), enr.URL
		case onramp.ENOTFOUND:
		default:
			s.pageError(w, r, perr)
			return
		}
	}
	v := s.pages.newView(r, "title_mfa_account")
	v.MFA, v.CSRF = mv, s.Accounts.CSRFToken(ses.ID)
	if err != nil {
		v.addError(err)
		v.Errors[len(v.Errors)-1].Field = errField
		status = pageStatus(w, err)
	}
	s.render(w, r, status, "account_mfa", v)
}

// accountPost checks a signed-in account form: a live session and the
// form's CSRF token bound to it.
func (s *Server) accountPost(w http.ResponseWriter, r *http.Request) (*auth.Session, bool) {
	ses, ok := s.signedInSession(w, r)
	if !ok || !s.checkCSRF(w, r, ses.ID, ses.PersonID) {
		return nil, false
	}
	return ses, true
}

func (s *Server) totpEnrollPost(w http.ResponseWriter, r *http.Request) {
	ses, ok := s.accountPost(w, r)
	if !ok {
		return
	}
	if _, err := s.Accounts.EnrollTOTP(r.Context(), auth.SessionParams{Session: ses, Info: s.requestInfo(r)}); err != nil {
		s.showAccountMFA(w, r, ses, 0, &mfaView{}, err, "")
		return
	}
	// The page shows the setup waiting for its first code.
	http.Redirect(w, r, "/account/mfa", http.StatusSeeOther)
}

func (s *Server) totpConfirmPost(w http.ResponseWriter, r *http.Request) {
	ses, ok := s.accountPost(w, r)
	if !ok {
		return
	}
	done, err := s.Accounts.ConfirmTOTP(r.Context(), auth.FactorCodeParams{Session: ses, Code: r.PostFormValue("code"), Info: s.requestInfo(r)})
	if err != nil {
		// The setup goes on with the same secret: a mistyped code must not
		// make the person scan a new QR code.
		s.showAccountMFA(w, r, ses, 0, &mfaView{}, err, "code")
		return
	}
	// The session was rotated: the page carries the new one's CSRF token.
	s.setSessionCookie(w, done.Grant)
	s.showAccountMFA(w, r, done.Grant.Session, http.StatusOK, &mfaView{RecoveryCodes: done.RecoveryCodes}, nil, "")
}

func (s *Server) totpDisablePost(w http.ResponseWriter, r *http.Request) {
	ses, ok := s.accountPost(w, r)
	if !ok {
		return
	}
	g, err := s.Accounts.DisableTOTP(r.Context(), auth.FactorCodeParams{Session: ses, Code: r.PostFormValue("code"), Info: s.requestInfo(r)})
	if err != nil {
		s.showAccountMFA(w, r, ses, 0, &mfaView{}, err, "disable-code")
		return
	}
	s.setSessionCookie(w, g)
	http.Redirect(w, r, "/account/mfa", http.StatusSeeOther)
}

func (s *Server) recoveryCodesPost(w http.ResponseWriter, r *http.Request) {
	ses, ok := s.accountPost(w, r)
	if !ok {
		return
	}
	codes, err := s.Accounts.RegenerateRecoveryCodes(r.Context(), auth.FactorCodeParams{Session: ses, Code: r.PostFormValue("code"), Info: s.requestInfo(r)})
	if err != nil {
		s.showAccountMFA(w, r, ses, 0, &mfaView{}, err, "regen-code")
		return
	}
	s.showAccountMFA(w, r, ses, http.StatusOK, &mfaView{RecoveryCodes: codes}, nil, "")
}

// The account's passkeys.

type passkeyView struct {
	ID, Name              string
	Created, CreatedISO   string
	LastUsed, LastUsedISO string
	Synced                bool
}

func (s *Server) accountPasskeysPage(w http.ResponseWriter, r *http.Request) {
	ses, ok := s.signedInSession(w, r)
	if !ok {
		return
	}
	s.showPasskeys(w, r, ses, http.StatusOK, nil)
}

func (s *Server) showPasskeys(w http.ResponseWriter, r *http.Request, ses *auth.Session, status int, err error) {
	keys, kerr := s.Accounts.Passkeys(r.Context(), ses.PersonID)
	if kerr != nil {
		s.pageError(w, r, kerr)
		return
	}
	v := s.pages.newView(r, "title_passkeys")
	v.Wide, v.CSRF, v.Passkeys = true, s.Accounts.CSRFToken(ses.ID), s.Accounts.PasskeysAvailable()
	for _, k := range keys {
		pv := passkeyView{ID: k.ID, Name: k.Name, Synced: k.Synced(), Created: k.CreatedAt.Format("2006-01-02 15:04 MST"), CreatedISO: k.CreatedAt.Format(time.RFC3339)}
		if k.LastUsedAt != nil {
			pv.LastUsed, pv.LastUsedISO = k.LastUsedAt.Format("2006-01-02 15:04 MST"), k.LastUsedAt.Format(time.RFC3339)
		}
		v.PasskeyList = append(v.PasskeyList, pv)
	}
	if r.URL.Query().Get("added") == "1" {
		v.Notice = v.T["passkey_added"]
	}
	if err != nil {
		v.addError(err)
		status = pageStatus(w, err)
	}
	s.render(w, r, status, "account_passkeys", v)
}

// jsonSession is the live session of a JSON call from an account page,
// with its CSRF header checked; it answers the problem itself otherwise.
func (s *Server) jsonSession(w http.ResponseWriter, r *http.Request) (*auth.Session, bool) {
	ses, err := s.Accounts.CheckSession(r.Context(), s.sessionSecret(r))
	if err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	if !s.checkJSONCSRF(w, r, ses.ID, ses.PersonID) {
		return nil, false
	}
	return ses, true
}

func (s *Server) passkeyRegisterOptions(w http.ResponseWriter, r *http.Request) {
	ses, ok := s.jsonSession(w, r)
	if !ok {
		return
	}
	c, err := s.Accounts.BeginPasskeyRegistration(r.Context(), auth.SessionParams{Session: ses, Info: s.requestInfo(r)})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) passkeyRegisterFinish(w http.ResponseWriter, r *http.Request) {
	ses, ok := s.jsonSession(w, r)
	if !ok {
		return
	}
	var body struct {
		Ceremony   string          `json:"ceremony"`
		Name       string          `json:"name"`
		Credential json.RawMessage `json:"credential"`
	}
	if err := decodeJSON(w, r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	added, err := s.Accounts.FinishPasskeyRegistration(r.Context(), auth.FinishPasskeyRegistrationParams{
		Session: ses, Ref: body.Ceremony, Name: body.Name, Response: body.Credential, Info: s.requestInfo(r),
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Adding a factor rotates the session: the answer carries the new cookie.
	s.setSessionCookie(w, added.Grant)
	writeJSON(w, http.StatusOK, map[string]any{"passkey": added.Passkey, "next": "/account/passkeys?added=1"})
}

func (s *Server) passkeyRenamePost(w http.ResponseWriter, r *http.Request) {
	ses, ok := s.accountPost(w, r)
	if !ok {
		return
	}
	err := s.Accounts.RenamePasskey(r.Context(), auth.PasskeyParams{Session: ses, ID: r.PathValue("id"), Name: r.PostFormValue("name"), Info: s.requestInfo(r)})
	if err != nil {
		s.showPasskeys(w, r, ses, 0, err)
		return
	}
	http.Redirect(w, r, "/account/passkeys", http.StatusSeeOther)
}

func (s *Server) passkeyRemovePost(w http.ResponseWriter, r *http.Request) {
	ses, ok := s.accountPost(w, r)
	if !ok {
		return
	}
	g, err := s.Accounts.RemovePasskey(r.Context(), auth.PasskeyParams{Session: ses, ID: r.PathValue("id"), Info: s.requestInfo(r)})
	if err != nil {
		s.showPasskeys(w, r, ses, 0, err)
		return
	}
	s.setSessionCookie(w, g)
	http.Redirect(w, r, "/account/passkeys", http.StatusSeeOther)
}
