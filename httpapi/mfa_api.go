package httpapi

import (
	"net/http"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// The auth settings of the JSON API: for now whether staff must sign in
// with a second factor. Who may change it (owners) is the rule of
// auth.Accounts.RequireStaffMFA.

type authSettings struct {
	StaffRequireMFA *bool `json:"staff_require_mfa"`
}

func (s *Server) getAuthSettings(w http.ResponseWriter, r *http.Request) {
	on, err := s.Accounts.StaffMFARequired(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, authSettings{StaffRequireMFA: &on})
}

func (s *Server) putAuthSettings(w http.ResponseWriter, r *http.Request) {
	var body authSettings
	if err := decodeJSON(w, r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if body.StaffRequireMFA == nil {
		s.writeError(w, r, onramp.Errorf(onramp.EINVALID, "Send the settings to change, such as {\"staff_require_mfa\": true}."))
		return
	}
	p, info := principalOf(r), s.requestInfo(r)
	by := auth.ChangedBy{Role: p.Role, Actor: auth.AuditEntry{IP: info.IP, UserAgent: info.UserAgent}}
	switch {
	case p.Token != nil:
		by.Actor.ActorType, by.Actor.ActorID = auth.ActorToken, p.Token.ID
	case p.Session != nil:
		by.Actor.ActorType, by.Actor.ActorID, by.Actor.SessionID = auth.ActorStaff, p.Session.PersonID, p.Session.ID
	}
	if err := s.Accounts.RequireStaffMFA(r.Context(), *body.StaffRequireMFA, by); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.getAuthSettings(w, r)
}
