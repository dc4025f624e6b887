package httpapi

import (
	"net/http"
	"strings"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// Password recovery pages: ask for the email, prove it on the code page
// (/auth/verify) or by the emailed link (/auth/magic/{token}), then take
// the new password. What is sent and to whom, limits, and what a reset
// ends are Accounts.StartRecovery and ResetPassword.

func (s *Server) recoverPage(w http.ResponseWriter, r *http.Request) {
	s.flowPage(w, r, auth.FlowRecovery, "recover", "title_recover")
}

func (s *Server) recoverPost(w http.ResponseWriter, r *http.Request) {
	ref, ok := s.postedFlow(w, r)
	if !ok {
		return
	}
	_, err := s.Accounts.StartRecovery(r.Context(), auth.RecoveryParams{FlowRef: ref, Email: r.PostFormValue("email"), Info: s.requestInfo(r)})
	if err != nil {
		s.formAgain(w, r, "recover", "title_recover", auth.FlowRecovery, err, "email")
		return
	}
	s.toVerify(w, r)
}

func (s *Server) newPasswordPage(w http.ResponseWriter, r *http.Request) {
	s.showNewPassword(w, r, http.StatusOK, nil)
}

// showNewPassword renders the new-password form of the browser's proven
// recovery flow; any other flow starts recovery over.
func (s *Server) showNewPassword(w http.ResponseWriter, r *http.Request, status int, err error) {
	ref, _ := flowRef(r)
	f, ferr := s.Accounts.Flow(r.Context(), ref)
	if ferr != nil || f.Kind != auth.FlowRecovery || f.Step != auth.StepNewPassword {
		v := s.pages.newView(r, "title_recover")
		http.Redirect(w, r, v.Link("/auth/recover"), http.StatusSeeOther)
		return
	}
	v := s.pages.newView(r, "title_new_password")
	v.AuthRequest, v.CSRF = f.AuthRequestID, s.Accounts.CSRFToken(f.ID)
	v.Intro = strings.ReplaceAll(v.T["recover_new_intro"], "{email}", f.Email)
	v.values["email"] = f.Email
	if err != nil {
		v.addError(err)
		status = pageStatus(w, err)
	}
	s.render(w, r, status, "new_password", v)
}

func (s *Server) newPasswordPost(w http.ResponseWriter, r *http.Request) {
	ref, ok := s.postedFlow(w, r)
	if !ok {
		return
	}
	step, g, err := s.Accounts.ResetPassword(r.Context(), auth.ResetPasswordParams{FlowRef: ref, Password: r.PostFormValue("password"), Info: s.requestInfo(r)})
	switch {
	case onramp.ErrorCode(err) == onramp.EINTERNAL:
		s.pageError(w, r, err)
	case err != nil:
		s.showNewPassword(w, r, 0, err)
	case g != nil:
		s.signedIn(w, r, g)
	default:
		s.afterStep(w, r, ref, step)
	}
}
