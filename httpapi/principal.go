package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// principal is who calls the JSON API: an API token, or a staff member
// signed in on the hosted pages (their session cookie, with the role of
// their staff row).
type principal struct {
	Role    string
	Token   *auth.Token
	Session *auth.Session
}

type principalKey struct{}

// anyPrincipal is the "permission" of endpoints every caller may use,
// such as who-am-I.
const anyPrincipal auth.Permission = ""

// csrfHeader carries the CSRF token of cookie-authenticated unsafe API
// calls (CSRFToken of the session id). A cross-site page can make the
// browser send the cookie but cannot read or set this header.
const csrfHeader = "X-Onramp-CSRF"

// withToken authenticates the caller (Bearer API token, else a staff
// session cookie) and checks that their role allows perm, before calling
// h.
func (s *Server) withToken(perm auth.Permission, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authorize(r, perm)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	}
}

// authorize authenticates the caller of r and checks that their role
// allows perm. Long-lived responses (the live stream) call it again from
// time to time, so a revoked token or session stops them.
func (s *Server) authorize(r *http.Request, perm auth.Permission) (*principal, error) {
	p, err := s.authenticate(r)
	if err != nil {
		return nil, err
	}
	if perm != anyPrincipal && !auth.Allows(p.Role, perm) {
		return nil, onramp.Errorf(onramp.EFORBIDDEN, "The %s role may not do this (%s).", p.Role, perm)
	}
	// With staff MFA required, a staff session below AAL2 may still ask
	// who it is (the console shows why it is locked out), nothing more.
	if p.Session != nil && perm != anyPrincipal && s.Accounts.StaffNeedsMFA(r.Context(), p.Session) {
		return nil, errStaffMFA
	}
	return p, nil
}

var errStaffMFA = onramp.Errorf(onramp.EFORBIDDEN, "MFA required: staff must sign in with a second factor. Turn on two-step sign-in at /account/mfa or add a passkey at /account/passkeys (either upgrades this session), or sign in again with one.")

var errNoCredentials = onramp.Errorf(onramp.EUNAUTHORIZED, "Send an API token as \"Authorization: Bearer ort_…\" (onramp token create prints one), or sign in as staff.")

func (s *Server) authenticate(r *http.Request) (*principal, error) {
	if secret, ok := bearerToken(r); ok && secret != "" {
		t, err := s.Tokens.Authenticate(r.Context(), strings.TrimSpace(secret))
		if err != nil {
			return nil, err
		}
		return &principal{Role: t.Role, Token: t}, nil
	}
	secret := s.sessionSecret(r)
	if secret == "" || s.Accounts == nil {
		return nil, errNoCredentials
	}
	ses, err := s.Accounts.CheckSession(r.Context(), secret)
	if err != nil {
		return nil, err
	}
	staff, err := s.Accounts.StaffOf(r.Context(), ses.PersonID)
	if onramp.ErrorCode(err) == onramp.ENOTFOUND {
		return nil, onramp.Errorf(onramp.EFORBIDDEN, "Your account has no staff role, so it cannot use the API.")
	}
	if err != nil {
		return nil, err
	}
	if unsafeMethod(r.Method) {
		// The cookie rides along on requests other sites make: both CSRF
		// layers, as on the hosted forms.
		reason := ""
		switch {
		case s.cop.Check(r) != nil:
			reason = "cross-origin"
		case !s.Accounts.CheckCSRF(ses.ID, r.Header.Get(csrfHeader)):
			reason = "missing_or_wrong_header"
		}
		if reason != "" {
			info := s.requestInfo(r)
			if err := s.Accounts.Record(r.Context(), auth.AuditEntry{ActorType: auth.ActorStaff, ActorID: ses.PersonID, Action: "csrf.rejected", Outcome: auth.OutcomeDenied,
				PersonID: ses.PersonID, SessionID: ses.ID, IP: info.IP, UserAgent: info.UserAgent, Detail: jsonDetail(map[string]string{"path": r.URL.Path, "reason": reason})}); err != nil {
				s.log.WarnContext(r.Context(), "audit csrf rejection", "err", err, "request_id", requestID(r.Context()))
			}
			return nil, onramp.Errorf(onramp.EFORBIDDEN, "A cookie-authenticated %s needs the %s header (the CSRF token of your session, from GET /api/auth/session) and must come from this origin.", r.Method, csrfHeader)
		}
	}
	return &principal{Role: staff.Role, Session: ses}, nil
}

func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

func principalOf(r *http.Request) *principal {
	p, _ := r.Context().Value(principalKey{}).(*principal)
	return p
}

func callerRole(r *http.Request) string {
	if p := principalOf(r); p != nil {
		return p.Role
	}
	return ""
}

// actor names the caller in merge records and the audit log.
func actor(r *http.Request) string {
	switch p := principalOf(r); {
	case p == nil:
		return ""
	case p.Token != nil:
		return "token:" + p.Token.ID
	case p.Session != nil:
		return "staff:" + p.Session.PersonID
	}
	return ""
}

// whoAmI answers who the caller is. For a session it includes the CSRF
// token that the console sends in X-Onramp-CSRF.
func (s *Server) whoAmI(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	if p.Token != nil {
		writeJSON(w, http.StatusOK, map[string]any{"kind": "token", "role": p.Role, "permissions": auth.PermissionsOf(p.Role), "token": p.Token})
		return
	}
	acc, err := s.Accounts.AccountOfPerson(r.Context(), p.Session.PersonID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sessionWhoAmI{
		Kind: "session", Role: p.Role, Permissions: auth.PermissionsOf(p.Role), Session: p.Session, Account: acc, CSRFToken: s.Accounts.CSRFToken(p.Session.ID),
	})
}

// sessionWhoAmI is who-am-I's answer for a session. Every console page
// asks it, so it is a struct (encoding a map sorts its keys each time);
// the fields stay in the sorted order the map had, so the bytes are the
// same.
type sessionWhoAmI struct {
	Account     *auth.Account     `json:"account"`
	CSRFToken   string            `json:"csrf_token"`
	Kind        string            `json:"kind"`
	Permissions []auth.Permission `json:"permissions"`
	Role        string            `json:"role"`
	Session     *auth.Session     `json:"session"`
}

// listAudit lists audit entries, newest first, paged by seq.
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	aq := auth.AuditQuery{PersonID: q.Get("person"), ActorID: q.Get("actor"), Action: q.Get("action"), Outcome: q.Get("outcome")}
	var err error
	if aq.Since, err = timeParam(q, "since"); err != nil {
		s.writeError(w, r, err)
		return
	}
	if aq.Until, err = timeParam(q, "until"); err != nil {
		s.writeError(w, r, err)
		return
	}
	if aq.BeforeSeq, err = intParam(q, "before", 0); err != nil {
		s.writeError(w, r, err)
		return
	}
	limit, err := intParam(q, "limit", 100)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if limit > 1000 {
		limit = 1000
	}
	aq.Limit = int(limit)
	entries, err := s.Accounts.Audit(r.Context(), aq)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := map[string]any{"data": entries}
	if len(entries) == aq.Limit && aq.Limit > 0 {
		out["next_before"] = entries[len(entries)-1].Seq
	}
	writeJSON(w, http.StatusOK, out)
}
