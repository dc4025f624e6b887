package httpapi_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/identity"
)

// newToken makes an API token and answers its id and secret.
func (s *testStack) newToken(name, role string) (id, secret string) {
	s.t.Helper()
	nt, err := s.tokens.CreateToken(context.Background(), name, role)
	if err != nil {
		s.t.Fatal(err)
	}
	return nt.ID, nt.Secret
}

// auditOf answers the audit entries of an action, newest first.
func (s *testStack) auditOf(action string) []*auth.AuditEntry {
	s.t.Helper()
	es, err := s.accounts.Audit(context.Background(), auth.AuditQuery{Action: action, Limit: 1000})
	if err != nil {
		s.t.Fatal(err)
	}
	return es
}

type staffList struct {
	Data []struct {
		PersonID string `json:"person_id"`
		Role     string `json:"role"`
		Email    string `json:"email"`
	} `json:"data"`
}

func (l staffList) roles() map[string]string {
	out := map[string]string{}
	for _, m := range l.Data {
		out[m.Email] = m.Role
	}
	return out
}

// TestStaffAPI: owners and admins add, list, re-role and remove staff;
// other roles may not; admins cannot touch owners; the last owner stays.
func TestStaffAPI(t *testing.T) {
	s := newTestStack(t)
	ownerB := s.browser()
	link, err := s.accounts.OwnerLink(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p := ownerB.get(link[strings.Index(link, "/setup/"):])
	wantAt(t, ownerB.submit(p.form(t, "/setup/owner"), "email", "owner@example.com", "password", "a long founder passphrase"), "/admin")
	ownerID := s.personOf(identity.Email, "owner@example.com")
	annB, bobB := s.browser(), s.browser()
	wantAt(t, annB.signUp("ann@example.com", "ann's long passphrase", ""), "/account")
	wantAt(t, bobB.signUp("bob@example.com", "bob's long passphrase", ""), "/account")
	annID, bobID := s.personOf(identity.Email, "ann@example.com"), s.personOf(identity.Email, "bob@example.com")

	adminTok, admin := s.newToken("admin", auth.RoleAdmin)
	support, marketer, developer := s.token("support", auth.RoleSupport), s.token("marketer", auth.RoleMarketer), s.token("dev", auth.RoleDeveloper)
	add := map[string]string{"email": "ann@example.com", "role": "admin"}
	for _, tok := range []string{support, marketer, developer} {
		wantProblem(t, s.api(tok, http.MethodPost, "/api/staff", add), http.StatusForbidden)
		wantProblem(t, s.api(tok, http.MethodGet, "/api/staff", nil), http.StatusForbidden)
		wantProblem(t, s.api(tok, http.MethodDelete, "/api/staff/"+ownerID, nil), http.StatusForbidden)
	}
	// Support manages neither staff nor properties.
	wantProblem(t, s.api(support, http.MethodPost, "/api/properties", map[string]any{"name": "x"}), http.StatusForbidden)

	wantProblem(t, s.api(admin, http.MethodPost, "/api/staff", map[string]string{"email": "ann@example.com", "role": "root"}), http.StatusBadRequest)
	wantProblem(t, s.api(admin, http.MethodPost, "/api/staff", map[string]string{"email": "ann@example.com", "role": "owner"}), http.StatusForbidden)
	r := s.api(admin, http.MethodPost, "/api/staff", add)
	if r.status != http.StatusCreated || !strings.Contains(string(r.body), `"email":"ann@example.com"`) || !strings.Contains(string(r.body), `"role":"admin"`) {
		t.Fatalf("POST /api/staff: %d %s", r.status, r.body)
	}
	if r := s.api(admin, http.MethodPost, "/api/staff", map[string]string{"email": "Bob@Example.com", "role": "support"}); r.status != http.StatusCreated {
		t.Fatalf("POST /api/staff bob: %d %s", r.status, r.body)
	}
	// The audit names the token and the caller's IP.
	set := s.auditOf("staff.role_set")
	if len(set) != 2 || set[0].ActorType != auth.ActorToken || set[0].ActorID != adminTok || set[0].IP == "" || set[0].PersonID != bobID {
		t.Errorf("staff.role_set audit: %+v", set)
	}

	var l staffList
	r = s.api(admin, http.MethodGet, "/api/staff", nil)
	r.json(t, &l)
	if got := l.roles(); r.status != http.StatusOK || len(got) != 3 || got["owner@example.com"] != "owner" || got["ann@example.com"] != "admin" || got["bob@example.com"] != "support" {
		t.Fatalf("GET /api/staff: %d %s", r.status, r.body)
	}

	// Admins cannot demote or remove an owner; the last owner cannot be
	// demoted or removed by anyone.
	wantProblem(t, s.api(admin, http.MethodPatch, "/api/staff/"+ownerID, map[string]string{"role": "admin"}), http.StatusForbidden)
	wantProblem(t, s.api(admin, http.MethodDelete, "/api/staff/"+ownerID, nil), http.StatusForbidden)
	wantProblem(t, s.api(s.owner, http.MethodPatch, "/api/staff/"+ownerID, map[string]string{"role": "admin"}), http.StatusConflict)
	wantProblem(t, s.api(s.owner, http.MethodDelete, "/api/staff/"+ownerID, nil), http.StatusConflict)
	wantProblem(t, s.api(admin, http.MethodPatch, "/api/staff/per_nobody", map[string]string{"role": "admin"}), http.StatusNotFound)

	// Becoming staff ended bob's session; signed in again, his staff
	// session works until his role changes, which ends it too.
	wantProblem(t, s.sessionAPI(bobB, http.MethodGet, "/api/people", "", nil), http.StatusUnauthorized)
	bobB = s.browser()
	wantAt(t, bobB.signInPassword("bob@example.com", "bob's long passphrase"), "/account")
	if r := s.sessionAPI(bobB, http.MethodGet, "/api/people", "", nil); r.status != http.StatusOK {
		t.Fatalf("bob as support: %d %s", r.status, r.body)
	}
	r = s.api(admin, http.MethodPatch, "/api/staff/"+bobID, map[string]string{"role": "marketer"})
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"role":"marketer"`) {
		t.Fatalf("PATCH /api/staff/bob: %d %s", r.status, r.body)
	}
	wantProblem(t, s.sessionAPI(bobB, http.MethodGet, "/api/people", "", nil), http.StatusUnauthorized)

	// A staff session as actor: ann (admin) signs in again and removes bob.
	annB = s.browser()
	wantAt(t, annB.signInPassword("ann@example.com", "ann's long passphrase"), "/account")
	var me struct {
		CSRF string `json:"csrf_token"`
	}
	s.sessionAPI(annB, http.MethodGet, "/api/auth/session", "", nil).json(t, &me)
	wantProblem(t, s.sessionAPI(annB, http.MethodDelete, "/api/staff/"+ownerID, me.CSRF, nil), http.StatusForbidden)
	if r := s.sessionAPI(annB, http.MethodDelete, "/api/staff/"+bobID, me.CSRF, nil); r.status != http.StatusNoContent {
		t.Fatalf("DELETE /api/staff/bob: %d %s", r.status, r.body)
	}
	wantProblem(t, s.api(admin, http.MethodDelete, "/api/staff/"+bobID, nil), http.StatusNotFound)
	if rm := s.auditOf("staff.removed"); len(rm) != 1 || rm[0].PersonID != bobID || rm[0].ActorType != auth.ActorStaff || rm[0].ActorID != annID || rm[0].IP == "" || rm[0].UserAgent == "" {
		t.Errorf("staff.removed audit: %+v", rm)
	}

	// With a second owner, the first may step down.
	if r := s.api(s.owner, http.MethodPatch, "/api/staff/"+annID, map[string]string{"role": "owner"}); r.status != http.StatusOK {
		t.Fatalf("making ann owner: %d %s", r.status, r.body)
	}
	if r := s.api(s.owner, http.MethodPatch, "/api/staff/"+ownerID, map[string]string{"role": "admin"}); r.status != http.StatusOK {
		t.Errorf("the first owner stepping down: %d %s", r.status, r.body)
	}
	l = staffList{}
	s.api(s.owner, http.MethodGet, "/api/staff", nil).json(t, &l)
	if got := l.roles(); len(got) != 2 || got["ann@example.com"] != "owner" || got["owner@example.com"] != "admin" {
		t.Errorf("staff at the end: %v", got)
	}
}

// TestStaffSessionAPI: support lists and ends another person's sessions;
// the audit names the staff actor.
func TestStaffSessionAPI(t *testing.T) {
	s := newTestStack(t)
	cus := s.browser()
	wantAt(t, cus.signUp("cus@example.com", "", ""), "/account")
	cusID := s.personOf(identity.Email, "cus@example.com")
	supTok, support := s.newToken("support", auth.RoleSupport)
	marketer := s.token("marketer", auth.RoleMarketer)

	wantProblem(t, s.api(marketer, http.MethodGet, "/api/people/"+cusID+"/sessions", nil), http.StatusForbidden)
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	r := s.api(support, http.MethodGet, "/api/people/"+cusID+"/sessions", nil)
	r.json(t, &list)
	if r.status != http.StatusOK || len(list.Data) != 1 {
		t.Fatalf("GET sessions: %d %s", r.status, r.body)
	}
	sid := list.Data[0].ID
	wantProblem(t, s.api(marketer, http.MethodDelete, "/api/sessions/"+sid, nil), http.StatusForbidden)
	wantProblem(t, s.api(support, http.MethodDelete, "/api/sessions/ses_nothing", nil), http.StatusNotFound)
	if r := s.api(support, http.MethodDelete, "/api/sessions/"+sid, nil); r.status != http.StatusNoContent {
		t.Fatalf("DELETE session: %d %s", r.status, r.body)
	}
	if p := cus.get("/account"); p.url.Path == "/account" {
		t.Errorf("the revoked session still opens the account page")
	}
	es := s.auditOf("session.revoked")
	if len(es) != 1 || es[0].ActorType != auth.ActorToken || es[0].ActorID != supTok || es[0].IP == "" || es[0].PersonID != cusID || es[0].SessionID != sid {
		t.Errorf("session.revoked audit: %+v", es)
	}
}

// TestAdminActionsAudited: property, token and people changes write an
// audit entry naming the caller, its IP and user agent.
func TestAdminActionsAudited(t *testing.T) {
	s := newTestStack(t)
	adminTok, admin := s.newToken("admin", auth.RoleAdmin)
	s.ingest(
		`{"type":"identify","anonymousId":"a1","messageId":"m1"}`,
		`{"type":"identify","anonymousId":"a2","messageId":"m2"}`,
		`{"type":"identify","anonymousId":"a3","messageId":"m3"}`,
	)
	p1, p2, p3 := s.personOf(identity.AnonymousID, "a1"), s.personOf(identity.AnonymousID, "a2"), s.personOf(identity.AnonymousID, "a3")

	var prop struct {
		ID string `json:"id"`
	}
	s.api(admin, http.MethodPost, "/api/properties", map[string]any{"name": "Shop"}).json(t, &prop)
	var tok struct {
		ID string `json:"id"`
	}
	s.api(admin, http.MethodPost, "/api/tokens", map[string]string{"name": "desk", "role": "support"}).json(t, &tok)
	var merge struct {
		ID string `json:"id"`
	}
	s.api(admin, http.MethodPost, "/api/people/"+p1+"/merge", map[string]string{"from": p2}).json(t, &merge)
	for _, c := range []struct {
		method, path string
		body         any
		status       int
	}{
		{http.MethodPatch, "/api/properties/" + prop.ID, map[string]any{"name": "Shop 2"}, 200},
		{http.MethodPost, "/api/properties/" + prop.ID + "/revoke-key", map[string]string{"key": "write"}, 200},
		{http.MethodPost, "/api/properties/" + prop.ID + "/revoke-key", map[string]string{"key": "client-secret"}, 200},
		{http.MethodDelete, "/api/tokens/" + tok.ID, nil, 204},
		{http.MethodPost, "/api/merges/" + merge.ID + "/undo", nil, 200},
		{http.MethodPost, "/api/people/" + p2 + "/suppress", nil, 200},
		{http.MethodPost, "/api/unsuppress", map[string]any{"identifiers": []map[string]string{{"type": "anonymous_id", "value": "a2"}}}, 200},
		{http.MethodDelete, "/api/people/" + p3, nil, 200},
	} {
		if r := s.api(admin, c.method, c.path, c.body); r.status != c.status {
			t.Fatalf("%s %s: %d %s", c.method, c.path, r.status, r.body)
		}
	}
	for action, n := range map[string]int{
		"property.created": 1, "property.updated": 1, "property.key_replaced": 2, "token.created": 1, "token.revoked": 1,
		"person.merged": 1, "person.unmerged": 1, "person.suppressed": 1, "person.unsuppressed": 1, "person.deleted": 1,
	} {
		es := s.auditOf(action)
		if len(es) != n {
			t.Errorf("%s: %d entries, want %d", action, len(es), n)
			continue
		}
		for _, e := range es {
			if e.ActorType != auth.ActorToken || e.ActorID != adminTok || e.IP == "" || e.UserAgent == "" || e.Outcome != auth.OutcomeSuccess {
				t.Errorf("%s: %+v", action, e)
			}
		}
	}
	if es := s.auditOf("property.key_replaced"); len(es) == 2 && (es[0].PropertyID != prop.ID || !strings.Contains(string(es[0].Detail), "client-secret")) {
		t.Errorf("client-secret rotation: %+v", es[0])
	}
	if es := s.auditOf("person.deleted"); len(es) == 1 && es[0].PersonID != p3 {
		t.Errorf("person.deleted: %+v", es[0])
	}
}

var inviteInMail = regexp.MustCompile(`/auth/invite\?token=\S+`)

// TestStaffInvite: adding an email without an account emails a one-time
// invitation that creates the account and the staff row.
func TestStaffInvite(t *testing.T) {
	s := newTestStack(t)
	adminTok, admin := s.newToken("admin", auth.RoleAdmin)
	wantProblem(t, s.api(admin, http.MethodPost, "/api/staff", map[string]string{"email": "boss@example.com", "role": "owner"}), http.StatusForbidden)
	r := s.api(admin, http.MethodPost, "/api/staff", map[string]string{"email": "New@Example.com", "role": "developer"})
	if r.status != http.StatusAccepted || !strings.Contains(string(r.body), `"email":"new@example.com"`) || strings.Contains(string(r.body), "token=") {
		t.Fatalf("POST /api/staff for an email without an account: %d %s", r.status, r.body)
	}
	if es := s.auditOf("staff.invited"); len(es) != 1 || es[0].ActorID != adminTok || es[0].IP == "" || !strings.Contains(string(es[0].Detail), `"role":"developer"`) {
		t.Errorf("staff.invited audit: %+v", es)
	}
	ms := s.mails("new@example.com")
	if len(ms) != 1 {
		t.Fatalf("invitation mails: %+v", ms)
	}
	link := inviteInMail.FindString(ms[0].Text)
	if link == "" {
		t.Fatalf("no link in the invitation:\n%s", ms[0].Text)
	}
	// The role in the link cannot be changed.
	if p := s.browser().get(strings.Replace(link, ".developer", ".owner", 1)); p.status != http.StatusForbidden {
		t.Errorf("an edited invitation link: %d", p.status)
	}
	b := s.browser()
	p := b.get(link)
	wantAt(t, p, "/auth/invite")
	p = b.submit(p.form(t, "/auth/invite"), "password", "short")
	if p.status != http.StatusBadRequest {
		t.Errorf("a too-short password: %d", p.status)
	}
	p = b.submit(p.form(t, "/auth/invite"), "password", "a long new staff passphrase")
	wantAt(t, p, "/account")
	if f := accountFacts(t, p); f["Staff role"] != "developer" {
		t.Errorf("account page after the invitation: %v", f)
	}
	if p := s.browser().get(link); p.status != http.StatusForbidden {
		t.Errorf("the used invitation link: %d", p.status)
	}
	var l staffList
	s.api(admin, http.MethodGet, "/api/staff", nil).json(t, &l)
	if l.roles()["new@example.com"] != "developer" {
		t.Errorf("staff after the invitation: %+v", l)
	}
	if es := s.auditOf("staff.invite_accepted"); len(es) != 1 || es[0].IP == "" {
		t.Errorf("staff.invite_accepted audit: %+v", es)
	}
	// The new member signs in with the password they chose.
	c := s.browser()
	wantAt(t, c.signInPassword("new@example.com", "a long new staff passphrase"), "/account")

	// An invitation works for 7 days.
	if r := s.api(admin, http.MethodPost, "/api/staff", map[string]string{"email": "late@example.com", "role": "support"}); r.status != http.StatusAccepted {
		t.Fatalf("second invitation: %d %s", r.status, r.body)
	}
	late := inviteInMail.FindString(s.mails("late@example.com")[0].Text)
	s.clock.Advance(7*24*time.Hour + time.Minute)
	if p := s.browser().get(late); p.status != http.StatusForbidden {
		t.Errorf("an expired invitation: %d", p.status)
	}
}
