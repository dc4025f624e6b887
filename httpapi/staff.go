package httpapi

import (
	"net/http"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// auditActor is the caller of an administrative API call as the audit
// log names them: the API token or the staff member (with their session),
// with IP and user agent.
func (s *Server) auditActor(r *http.Request) auth.AuditEntry {
	info := s.requestInfo(r)
	e := auth.AuditEntry{IP: info.IP, UserAgent: info.UserAgent}
	switch p := principalOf(r); {
	case p == nil:
		e.ActorType = auth.ActorAnonymous
	case p.Token != nil:
		e.ActorType, e.ActorID = auth.ActorToken, p.Token.ID
	case p.Session != nil:
		e.ActorType, e.ActorID, e.SessionID = auth.ActorStaff, p.Session.PersonID, p.Session.ID
	}
	return e
}

func (s *Server) listStaff(w http.ResponseWriter, r *http.Request) {
	ms, err := s.Accounts.ListStaff(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": ms})
}

func (s *Server) addStaff(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Email string `json:"email"`
		Role  string `json:"role"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	m, inv, err := s.Accounts.AddStaff(r.Context(), auth.AddStaffParams{Email: in.Email, Role: in.Role, Actor: s.auditActor(r)}, callerRole(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if inv != nil {
		writeJSON(w, http.StatusAccepted, map[string]any{"invited": inv})
		return
	}
	writeJSON(w, http.StatusCreated, m)
}

func (s *Server) setStaffRole(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Role string `json:"role"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	id := r.PathValue("person_id")
	if _, err := s.Accounts.StaffOf(r.Context(), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.Accounts.SetStaff(r.Context(), auth.SetStaffParams{PersonID: id, Role: in.Role, Actor: s.auditActor(r)}, callerRole(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeStaffMember(w, r, id)
}

func (s *Server) writeStaffMember(w http.ResponseWriter, r *http.Request, personID string) {
	ms, err := s.Accounts.ListStaff(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for _, m := range ms {
		if m.PersonID == personID {
			writeJSON(w, http.StatusOK, m)
			return
		}
	}
	s.writeError(w, r, onramp.Errorf(onramp.ENOTFOUND, "No staff member %q.", personID))
}

func (s *Server) removeStaff(w http.ResponseWriter, r *http.Request) {
	if err := s.Accounts.RemoveStaff(r.Context(), auth.RemoveStaffParams{PersonID: r.PathValue("person_id"), Actor: s.auditActor(r)}, callerRole(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// personSessions lists a person's sessions for staff who may end them.
func (s *Server) personSessions(w http.ResponseWriter, r *http.Request) {
	ss, err := s.Accounts.Sessions(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": ss})
}

// revokeSession ends anyone's session (support helping a person who lost
// a device), audited as session.revoked with the staff actor.
func (s *Server) revokeSession(w http.ResponseWriter, r *http.Request) {
	if err := s.Accounts.RevokeSession(r.Context(), auth.RevokeSessionParams{SessionID: r.PathValue("id"), Actor: s.auditActor(r), Reason: "staff"}); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// audit records an administrative action right after it succeeded (the
// property, token and people rules live outside the account store's
// transactions), with the caller, IP and user agent. e carries the action
// and what it was about. The action has happened by then, so a failure to
// record is logged rather than answered.
func (s *Server) audit(r *http.Request, e auth.AuditEntry) {
	if s.Accounts == nil {
		return
	}
	a := s.auditActor(r)
	e.ActorType, e.ActorID, e.IP, e.UserAgent = a.ActorType, a.ActorID, a.IP, a.UserAgent
	if err := s.Accounts.Record(r.Context(), e); err != nil {
		s.log.ErrorContext(r.Context(), "audit of an administrative action", "action", e.Action, "err", err, "request_id", requestID(r.Context()))
	}
}

// invitePage shows the form of a live staff invitation: the invited email
// and a new password.
func (s *Server) invitePage(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	inv, err := s.Accounts.CheckInvite(r.Context(), token)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	v := s.pages.newView(r, "title_invite")
	v.Token = token
	v.values["email"] = inv.Email
	v.CSRF = s.Accounts.CSRFToken(formBinding(s.formNonce(w, r)))
	s.render(w, r, http.StatusOK, "invite", v)
}

func (s *Server) invitePost(w http.ResponseWriter, r *http.Request) {
	if !s.checkCSRF(w, r, nonceBinding(r), "") {
		return
	}
	token := r.PostFormValue("token")
	g, err := s.Accounts.AcceptInvite(r.Context(), auth.AcceptInviteParams{Token: token, Password: r.PostFormValue("password"), Info: s.requestInfo(r)})
	if err != nil {
		if code := onramp.ErrorCode(err); code == onramp.EINTERNAL || code == onramp.EFORBIDDEN {
			s.pageError(w, r, err)
			return
		}
		v := s.pages.newView(r, "title_invite")
		v.addError(err)
		if inv, err := s.Accounts.CheckInvite(r.Context(), token); err == nil {
			v.values["email"] = inv.Email
		}
		v.Token, v.CSRF = token, s.Accounts.CSRFToken(nonceBinding(r))
		s.render(w, r, pageStatus(w, err), "invite", v)
		return
	}
	s.signedIn(w, r, g)
}
