package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/identity"
)

// The account page (who am I, where am I signed in) and the owner setup
// page of the first start.

// accountView is what the account page shows.
type accountView struct {
	Name          string
	Email         string
	EmailVerified bool
	Subject       string
	Role          string
	// HasPassword makes the password form ask for the current one.
	HasPassword bool
	Sessions    []sessionView
	// Connections are the upstream providers the account signs in with.
	Connections []connectionView
}

type sessionView struct {
	ID, IP, UserAgent     string
	Current               bool
	Created, CreatedISO   string
	LastSeen, LastSeenISO string
}

// signedInSession returns the browser's live session, or redirects to the
// sign-in page (coming back here afterwards).
func (s *Server) signedInSession(w http.ResponseWriter, r *http.Request) (*auth.Session, bool) {
	ses, err := s.Accounts.CheckSession(r.Context(), s.sessionSecret(r))
	if err == nil {
		return ses, true
	}
	if onramp.ErrorCode(err) != onramp.EUNAUTHORIZED {
		s.pageError(w, r, err)
		return nil, false
	}
	q := url.Values{"return_to": {r.URL.Path}}
	if ui := r.FormValue("ui_locales"); ui != "" {
		q.Set("ui_locales", ui)
	}
	http.Redirect(w, r, "/auth/sign-in?"+q.Encode(), http.StatusSeeOther)
	return nil, false
}

func (s *Server) accountPage(w http.ResponseWriter, r *http.Request) {
	ses, ok := s.signedInSession(w, r)
	if !ok {
		return
	}
	notice := ""
	if k := accountNotices[r.URL.Query().Get("saved")]; k != "" {
		notice = s.pages.newView(r, "title_account").T[k]
	}
	s.showAccount(w, r, ses, http.StatusOK, nil, notice)
}

// accountNotices are the confirmations a form of the account page
// redirects to (?saved=…); only these keys show anything.
var accountNotices = map[string]string{"password": "password_changed_notice", "profile": "profile_saved_notice"}

// showAccount renders the account page of ses, with a form's error or a
// notice.
func (s *Server) showAccount(w http.ResponseWriter, r *http.Request, ses *auth.Session, status int, formErr error, notice string) {
	ctx := r.Context()
	acc, err := s.Accounts.AccountOfPerson(ctx, ses.PersonID)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	av := &accountView{Email: acc.PrimaryEmail, Subject: acc.Subject}
	if prof, err := s.Identity.Person(ctx, ses.PersonID); err == nil {
		av.Name = displayName(prof.Person.Traits)
		for _, id := range prof.Identifiers {
			if id.Type == identity.Email && id.Value == acc.PrimaryEmail {
				av.EmailVerified = id.Verified
			}
		}
	} else if !identity.IsNotFound(err) {
		s.pageError(w, r, err)
		return
	}
	if st, err := s.Accounts.StaffOf(ctx, ses.PersonID); err == nil {
		av.Role = st.Role
	}
	if av.HasPassword, err = s.Accounts.HasPassword(ctx, ses.PersonID); err != nil {
		s.pageError(w, r, err)
		return
	}
	if av.Connections, err = s.connections(ctx, ses.PersonID); err != nil {
		s.pageError(w, r, err)
		return
	}
	sessions, err := s.Accounts.Sessions(ctx, ses.PersonID)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	for _, x := range sessions {
		av.Sessions = append(av.Sessions, sessionView{
			ID: x.ID, IP: x.IP, UserAgent: x.UserAgent, Current: x.ID == ses.ID,
			Created: x.CreatedAt.Format("2006-01-02 15:04 MST"), CreatedISO: x.CreatedAt.Format(time.RFC3339),
			LastSeen: x.LastSeenAt.Format("2006-01-02 15:04 MST"), LastSeenISO: x.LastSeenAt.Format(time.RFC3339),
		})
	}
	v := s.pages.newView(r, "title_account")
	v.Wide, v.Account, v.CSRF, v.Notice = true, av, s.Accounts.CSRFToken(ses.ID), notice
	v.values["name"] = av.Name
	if formErr != nil {
		v.addError(formErr)
		status = pageStatus(w, formErr)
		if n := r.PostFormValue("name"); n != "" {
			v.values["name"] = n
		}
	}
	s.render(w, r, status, "account", v)
}

// accountFormFailed shows the account page again with a form's error;
// internal errors get the error page.
func (s *Server) accountFormFailed(w http.ResponseWriter, r *http.Request, ses *auth.Session, err error) {
	if onramp.ErrorCode(err) == onramp.EINTERNAL {
		s.pageError(w, r, err)
		return
	}
	s.showAccount(w, r, ses, 0, err, "")
}

// changePasswordPost changes the password and hands the browser the
// rotated session: its old cookie is dead, like every other session of
// the person.
func (s *Server) changePasswordPost(w http.ResponseWriter, r *http.Request) {
	ses, ok := s.signedInSession(w, r)
	if !ok {
		return
	}
	if !s.checkCSRF(w, r, ses.ID, ses.PersonID) {
		return
	}
	g, err := s.Accounts.ChangePassword(r.Context(), auth.ChangePasswordParams{
		Session: ses, Current: r.PostFormValue("current_password"), New: r.PostFormValue("new_password"), Info: s.requestInfo(r),
	})
	if err != nil {
		s.accountFormFailed(w, r, ses, err)
		return
	}
	s.setSessionCookie(w, g)
	http.Redirect(w, r, "/account?saved=password", http.StatusSeeOther)
}

func (s *Server) profilePost(w http.ResponseWriter, r *http.Request) {
	ses, ok := s.signedInSession(w, r)
	if !ok {
		return
	}
	if !s.checkCSRF(w, r, ses.ID, ses.PersonID) {
		return
	}
	if err := s.Accounts.UpdateProfile(r.Context(), auth.UpdateProfileParams{Session: ses, Name: r.PostFormValue("name"), Info: s.requestInfo(r)}); err != nil {
		s.accountFormFailed(w, r, ses, err)
		return
	}
	http.Redirect(w, r, "/account?saved=profile", http.StatusSeeOther)
}

// displayName is the name a person's traits give: name, else first and
// last name (Segment's reserved traits).
func displayName(traits json.RawMessage) string {
	var t struct {
		Name      any `json:"name"`
		FirstName any `json:"firstName"`
		LastName  any `json:"lastName"`
	}
	if json.Unmarshal(traits, &t) != nil {
		return ""
	}
	str := func(v any) string { s, _ := v.(string); return strings.TrimSpace(s) }
	if n := str(t.Name); n != "" {
		return n
	}
	return strings.TrimSpace(str(t.FirstName) + " " + str(t.LastName))
}

func (s *Server) revokeSessionPost(w http.ResponseWriter, r *http.Request) {
	ses, ok := s.signedInSession(w, r)
	if !ok {
		return
	}
	if !s.checkCSRF(w, r, ses.ID, ses.PersonID) {
		return
	}
	info := s.requestInfo(r)
	target := r.PathValue("id")
	err := s.Accounts.RevokeSession(r.Context(), auth.RevokeSessionParams{
		SessionID: target, PersonID: ses.PersonID, Reason: "self",
		Actor: auth.AuditEntry{ActorType: auth.ActorPerson, ActorID: ses.PersonID, SessionID: ses.ID, IP: info.IP, UserAgent: info.UserAgent},
	})
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	if target == ses.ID {
		s.clearCookie(w, s.sessionCookieName())
		http.Redirect(w, r, "/auth/sign-in", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

// setupPage shows the owner form for a live first-start link.
func (s *Server) setupPage(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	if err := s.Accounts.CheckOwnerLink(r.Context(), token); err != nil {
		s.pageError(w, r, err)
		return
	}
	v := s.pages.newView(r, "title_setup")
	if v.ReturnTo == "" {
		// The owner's first stop is the console.
		v.ReturnTo = "/admin"
	}
	v.Token = token
	v.CSRF = s.Accounts.CSRFToken(formBinding(s.formNonce(w, r)))
	s.render(w, r, http.StatusOK, "setup", v)
}

func (s *Server) setupPost(w http.ResponseWriter, r *http.Request) {
	if !s.checkCSRF(w, r, nonceBinding(r), "") {
		return
	}
	token := r.PostFormValue("token")
	g, err := s.Accounts.ClaimOwner(r.Context(), auth.ClaimOwnerParams{
		Token: token, Email: r.PostFormValue("email"), Password: r.PostFormValue("password"), Info: s.requestInfo(r),
	})
	if err != nil {
		if code := onramp.ErrorCode(err); code == onramp.EINTERNAL || code == onramp.EFORBIDDEN {
			s.pageError(w, r, err)
			return
		}
		v := s.pages.newView(r, "title_setup")
		v.addError(err)
		v.values["email"] = r.PostFormValue("email")
		v.Token, v.CSRF = token, s.Accounts.CSRFToken(nonceBinding(r))
		s.render(w, r, pageStatus(w, err), "setup", v)
		return
	}
	s.signedIn(w, r, g)
}
