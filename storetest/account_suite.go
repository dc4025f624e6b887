package storetest

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// The auth.AccountStore suites: accounts, passwords, staff, settings,
// server secrets and erasure here; sessions, flows and codes in
// session_suite.go; the audit log, rate-limit counters, the outbox and
// pruning in audit_suite.go.

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func newAccount(personID string) *auth.Account {
	return &auth.Account{
		PersonID:       personID,
		Subject:        personID,
		WebAuthnHandle: randomBytes(32),
		Status:         auth.AccountActive,
		PrimaryEmail:   personID + "@example.com",
		CreatedAt:      at(1234567),
		UpdatedAt:      at(time.Second + 7654321),
	}
}

func sameAccount(t *testing.T, got, want *auth.Account) {
	t.Helper()
	if got == nil {
		t.Fatalf("account of %s: got nil", want.PersonID)
	}
	if got.PersonID != want.PersonID || got.Subject != want.Subject || got.Status != want.Status || got.PrimaryEmail != want.PrimaryEmail {
		t.Errorf("account = %+v, want %+v", got, want)
	}
	if !bytes.Equal(got.WebAuthnHandle, want.WebAuthnHandle) {
		t.Errorf("account %s: webauthn handle = %x, want %x", want.PersonID, got.WebAuthnHandle, want.WebAuthnHandle)
	}
	sameTime(t, "account created_at", got.CreatedAt, want.CreatedAt)
	sameTime(t, "account updated_at", got.UpdatedAt, want.UpdatedAt)
}

func newStaff(personID, role string, created time.Time) *auth.Staff {
	return &auth.Staff{PersonID: personID, Role: role, CreatedAt: created, CreatedBy: "per_owner", UpdatedAt: created}
}

func sameStaff(t *testing.T, got, want *auth.Staff) {
	t.Helper()
	if got.PersonID != want.PersonID || got.Role != want.Role || got.CreatedBy != want.CreatedBy {
		t.Errorf("staff = %+v, want %+v", got, want)
	}
	sameTime(t, "staff created_at", got.CreatedAt, want.CreatedAt)
	sameTime(t, "staff updated_at", got.UpdatedAt, want.UpdatedAt)
}

var accountTests = []test{
	{"Account/RoundTrip", func(t *testing.T, e *env) {
		ada, bob := newAccount("per_ada"), newAccount("per_bob")
		bob.WebAuthnHandle, bob.PrimaryEmail, bob.Status = nil, "", auth.AccountDisabled
		// A second account without a handle: absent handles do not clash.
		cy := newAccount("per_cy")
		cy.WebAuthnHandle = nil
		e.tx(t, func(s Store) error {
			for _, a := range []*auth.Account{ada, bob, cy} {
				if err := s.CreateAccount(e.ctx, a); err != nil {
					return err
				}
			}
			return nil
		})
		r := e.Reader()
		for _, want := range []*auth.Account{ada, bob, cy} {
			got, err := r.AccountOf(e.ctx, []string{want.PersonID})
			must(t, err)
			sameAccount(t, got, want)
			got, err = r.AccountBySubject(e.ctx, want.Subject)
			must(t, err)
			sameAccount(t, got, want)
		}
		got, err := r.AccountByWebAuthnHandle(e.ctx, ada.WebAuthnHandle)
		must(t, err)
		sameAccount(t, got, ada)
		// Any member of a merge tree finds the tree's account.
		got, err = r.AccountOf(e.ctx, []string{"per_x", "per_y", "per_bob", "per_z"})
		must(t, err)
		sameAccount(t, got, bob)
		// Inside a transaction too.
		e.tx(t, func(s Store) error {
			got, err := s.AccountOf(e.ctx, []string{"per_x", "per_ada"})
			if err == nil {
				sameAccount(t, got, ada)
			}
			return err
		})
	}},
	{"Account/Update", func(t *testing.T, e *env) {
		a := newAccount("per_ada")
		a.WebAuthnHandle = nil
		e.tx(t, func(s Store) error { return s.CreateAccount(e.ctx, a) })
		a.WebAuthnHandle, a.Status, a.PrimaryEmail, a.UpdatedAt = randomBytes(32), auth.AccountDisabled, "ada@new.example", at(time.Hour+999)
		e.tx(t, func(s Store) error { return s.UpdateAccount(e.ctx, a) })
		got, err := e.Reader().AccountByWebAuthnHandle(e.ctx, a.WebAuthnHandle)
		must(t, err)
		sameAccount(t, got, a)
		// The subject never changes, whatever the caller passes.
		changed := *a
		changed.Subject = "per_other"
		e.tx(t, func(s Store) error { return s.UpdateAccount(e.ctx, &changed) })
		got, err = e.Reader().AccountBySubject(e.ctx, a.Subject)
		must(t, err)
		sameAccount(t, got, a)
	}},
	{"Account/NotFound", func(t *testing.T, e *env) {
		e.tx(t, func(s Store) error { return s.CreateAccount(e.ctx, newAccount("per_ada")) })
		r := e.Reader()
		_, err := r.AccountOf(e.ctx, []string{"per_nope"})
		wantCode(t, err, onramp.ENOTFOUND, "AccountOf an unknown person")
		_, err = r.AccountOf(e.ctx, []string{"per_nope", "per_nix"})
		wantCode(t, err, onramp.ENOTFOUND, "AccountOf unknown persons")
		_, err = r.AccountOf(e.ctx, nil)
		wantCode(t, err, onramp.ENOTFOUND, "AccountOf no persons")
		_, err = r.AccountBySubject(e.ctx, "per_nope")
		wantCode(t, err, onramp.ENOTFOUND, "AccountBySubject")
		_, err = r.AccountByWebAuthnHandle(e.ctx, randomBytes(32))
		wantCode(t, err, onramp.ENOTFOUND, "AccountByWebAuthnHandle")
		_, err = r.AccountByWebAuthnHandle(e.ctx, nil)
		wantCode(t, err, onramp.ENOTFOUND, "AccountByWebAuthnHandle(nil)")
		err = e.InTx(e.ctx, func(s Store) error { return s.UpdateAccount(e.ctx, newAccount("per_nope")) })
		wantCode(t, err, onramp.ENOTFOUND, "UpdateAccount of a missing account")
	}},
	{"Account/Conflicts", func(t *testing.T, e *env) {
		ada, bob := newAccount("per_ada"), newAccount("per_bob")
		e.tx(t, func(s Store) error {
			if err := s.CreateAccount(e.ctx, ada); err != nil {
				return err
			}
			return s.CreateAccount(e.ctx, bob)
		})
		samePerson := newAccount("per_ada")
		samePerson.Subject = "per_other"
		sameSubject := newAccount("per_cy")
		sameSubject.Subject = ada.Subject
		sameHandle := newAccount("per_cy")
		sameHandle.WebAuthnHandle = ada.WebAuthnHandle
		for what, a := range map[string]*auth.Account{"person": samePerson, "subject": sameSubject, "webauthn handle": sameHandle} {
			err := e.InTx(e.ctx, func(s Store) error { return s.CreateAccount(e.ctx, a) })
			wantCode(t, err, onramp.ECONFLICT, "CreateAccount with a taken "+what)
		}
		bob.WebAuthnHandle = ada.WebAuthnHandle
		err := e.InTx(e.ctx, func(s Store) error { return s.UpdateAccount(e.ctx, bob) })
		wantCode(t, err, onramp.ECONFLICT, "UpdateAccount to a taken webauthn handle")
		if _, err := e.Reader().AccountOf(e.ctx, []string{"per_cy"}); onramp.ErrorCode(err) != onramp.ENOTFOUND {
			t.Errorf("a refused account was stored: %v", err)
		}
	}},
	{"Password/SetReplaceDelete", func(t *testing.T, e *env) {
		const phc = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA"
		e.tx(t, func(s Store) error { return s.SetPassword(e.ctx, "per_ada", phc, at(0)) })
		e.tx(t, func(s Store) error { return s.SetPassword(e.ctx, "per_bob", "$2a$10$imported", at(0)) })
		got, err := e.Reader().PasswordOf(e.ctx, "per_ada")
		if err != nil || got != phc {
			t.Errorf("PasswordOf = %q, %v; want %q", got, err, phc)
		}
		// A rehash replaces the string.
		e.tx(t, func(s Store) error { return s.SetPassword(e.ctx, "per_bob", phc, at(time.Hour)) })
		if got, err := e.Reader().PasswordOf(e.ctx, "per_bob"); err != nil || got != phc {
			t.Errorf("PasswordOf after a rehash = %q, %v; want %q", got, err, phc)
		}
		e.tx(t, func(s Store) error { return s.DeletePassword(e.ctx, "per_ada") })
		_, err = e.Reader().PasswordOf(e.ctx, "per_ada")
		wantCode(t, err, onramp.ENOTFOUND, "PasswordOf after DeletePassword")
		err = e.InTx(e.ctx, func(s Store) error { return s.DeletePassword(e.ctx, "per_ada") })
		wantCode(t, err, onramp.ENOTFOUND, "DeletePassword of no password")
		if _, err := e.Reader().PasswordOf(e.ctx, "per_bob"); err != nil {
			t.Errorf("another person's password went too: %v", err)
		}
	}},
	{"Staff/PutListDelete", func(t *testing.T, e *env) {
		list, err := e.Reader().ListStaff(e.ctx)
		if err != nil || list == nil || len(list) != 0 {
			t.Fatalf("ListStaff on an empty store = %#v, %v; want an empty, non-nil list", list, err)
		}
		owner := newStaff("per_owner", auth.RoleOwner, at(0))
		owner.CreatedBy = ""
		dev := newStaff("per_dev", auth.RoleDeveloper, at(time.Minute+123))
		sup := newStaff("per_sup", auth.RoleSupport, at(time.Second))
		e.tx(t, func(s Store) error {
			return errorsJoin(s.PutStaff(e.ctx, owner), s.PutStaff(e.ctx, dev), s.PutStaff(e.ctx, sup))
		})
		got, err := e.Reader().StaffOf(e.ctx, "per_dev")
		must(t, err)
		sameStaff(t, got, dev)
		// A second put changes the role; creator and creation time stay.
		again := newStaff("per_dev", auth.RoleAdmin, at(time.Hour))
		again.CreatedBy, again.UpdatedAt = "per_someone_else", at(2*time.Hour+456)
		e.tx(t, func(s Store) error { return s.PutStaff(e.ctx, again) })
		dev.Role, dev.UpdatedAt = auth.RoleAdmin, again.UpdatedAt
		got, err = e.Reader().StaffOf(e.ctx, "per_dev")
		must(t, err)
		sameStaff(t, got, dev)
		list, err = e.Reader().ListStaff(e.ctx)
		must(t, err)
		if len(list) != 3 {
			t.Fatalf("ListStaff = %d rows, want 3", len(list))
		}
		// Oldest first.
		for i, want := range []*auth.Staff{owner, sup, dev} {
			sameStaff(t, list[i], want)
		}
		e.tx(t, func(s Store) error { return s.DeleteStaff(e.ctx, "per_sup") })
		_, err = e.Reader().StaffOf(e.ctx, "per_sup")
		wantCode(t, err, onramp.ENOTFOUND, "StaffOf after DeleteStaff")
		err = e.InTx(e.ctx, func(s Store) error { return s.DeleteStaff(e.ctx, "per_sup") })
		wantCode(t, err, onramp.ENOTFOUND, "DeleteStaff of no staff member")
		if list, _ := e.Reader().ListStaff(e.ctx); len(list) != 2 {
			t.Errorf("ListStaff after a delete = %d rows, want 2", len(list))
		}
	}},
	{"Settings/RoundTrip", func(t *testing.T, e *env) {
		_, err := e.Reader().Setting(e.ctx, "signup_fields")
		wantCode(t, err, onramp.ENOTFOUND, "Setting never put")
		v1 := json.RawMessage(`{"fields": ["company", "role"], "required": {"company": true}, "note": "ünï 🚀"}`)
		e.tx(t, func(s Store) error { return s.PutSetting(e.ctx, "signup_fields", v1, "per_owner", at(0)) })
		e.tx(t, func(s Store) error {
			return s.PutSetting(e.ctx, "staff_require_mfa", json.RawMessage(`true`), "per_owner", at(0))
		})
		got, err := e.Reader().Setting(e.ctx, "signup_fields")
		must(t, err)
		sameJSON(t, "signup_fields", got, v1)
		v2 := json.RawMessage(`["email"]`)
		e.tx(t, func(s Store) error { return s.PutSetting(e.ctx, "signup_fields", v2, "per_admin", at(time.Hour)) })
		got, err = e.Reader().Setting(e.ctx, "signup_fields")
		must(t, err)
		sameJSON(t, "signup_fields after a second put", got, v2)
		got, err = e.Reader().Setting(e.ctx, "staff_require_mfa")
		must(t, err)
		sameJSON(t, "staff_require_mfa", got, json.RawMessage(`true`))
	}},
	{"ServerSecret/FirstWins", func(t *testing.T, e *env) {
		first, second := randomBytes(32), randomBytes(32)
		var got []byte
		e.tx(t, func(s Store) error {
			var err error
			got, err = s.ServerSecret(e.ctx, "csrf", first, at(0))
			return err
		})
		if !bytes.Equal(got, first) {
			t.Errorf("first ServerSecret = %x, want the value it stored, %x", got, first)
		}
		e.tx(t, func(s Store) error {
			var err error
			got, err = s.ServerSecret(e.ctx, "csrf", second, at(time.Hour))
			return err
		})
		if !bytes.Equal(got, first) {
			t.Errorf("second ServerSecret = %x, want the first value %x", got, first)
		}
		// Outside a transaction as well, and names are independent.
		got, err := e.Writer().ServerSecret(e.ctx, "code_hmac", second, at(0))
		if err != nil || !bytes.Equal(got, second) {
			t.Errorf("ServerSecret(code_hmac) = %x, %v; want %x", got, err, second)
		}
	}},
	{"ServerSecret/ConcurrentStart", func(t *testing.T, e *env) {
		// Nodes starting together each offer their own key; all end up with
		// the same one.
		const nodes = 4
		values := make([][]byte, nodes)
		for i := range values {
			values[i] = randomBytes(32)
		}
		got := make([][]byte, nodes)
		look := func(s Store) error { _, err := s.Setting(e.ctx, "x"); return ignoreNotFound(err) }
		e.race(t, nodes, look, func(s Store, i int) (bool, error) {
			var err error
			got[i], err = s.ServerSecret(e.ctx, "op_crypto", values[i], at(0))
			return true, err
		})
		for i := range got {
			if !bytes.Equal(got[i], got[0]) {
				t.Fatalf("nodes got different secrets: %x", got)
			}
		}
		if !slices.ContainsFunc(values, func(v []byte) bool { return bytes.Equal(v, got[0]) }) {
			t.Errorf("the shared secret %x is none of the offered values", got[0])
		}
	}},
	{"EraseAuth/RemovesPersonKeepsAudit", func(t *testing.T, e *env) {
		keep := e.seedPersonAuth(t, "per_keep")
		gone := e.seedPersonAuth(t, "per_gone")
		gone2 := e.seedPersonAuth(t, "per_gone2")
		e.tx(t, func(s Store) error { return s.EraseAuth(e.ctx, nil) })
		e.tx(t, func(s Store) error { return s.EraseAuth(e.ctx, []string{"per_gone", "per_gone2", "per_never"}) })
		for _, p := range []*seeded{gone, gone2} {
			e.wantAuthGone(t, p)
		}
		e.wantAuthKept(t, keep)
		// Erasing again changes nothing and fails on nothing.
		e.tx(t, func(s Store) error { return s.EraseAuth(e.ctx, []string{"per_gone"}) })
		e.wantAuthKept(t, keep)
	}},
}

// seeded is everything the auth tables hold about one person.
type seeded struct {
	person   string
	session  *auth.Session
	flows    []*auth.Flow // by person id, and by the account's email
	codes    []*auth.OneTimeCode
	audit    []*auth.AuditEntry // as the subject, and as the actor
	outsider *auth.AuditEntry   // mentions no one
}

// seedPersonAuth gives person an account, password, session with a
// client, flows, codes, a staff row and audit entries.
func (e *env) seedPersonAuth(t *testing.T, person string) *seeded {
	t.Helper()
	a := newAccount(person)
	p := &seeded{person: person, session: newSession("ses_"+person, person, at(0))}
	byPerson, byEmail := newFlow("flw_p_"+person), newFlow("flw_e_"+person)
	byPerson.PersonID, byPerson.Email = person, ""
	byEmail.PersonID, byEmail.Email = "", a.PrimaryEmail
	p.flows = []*auth.Flow{byPerson, byEmail}
	c1, c2 := newCode("otc_p_"+person, byPerson.ID, auth.CodeSignIn, at(0)), newCode("otc_e_"+person, "", auth.CodeOwnerSetup, at(0))
	c1.PersonID, c1.Email = person, ""
	c2.Email = a.PrimaryEmail
	p.codes = []*auth.OneTimeCode{c1, c2}
	subject := newAudit("aud_s_"+person, "auth.logged_in", at(0))
	subject.PersonID = person
	actor := newAudit("aud_a_"+person, "staff.role_changed", at(0))
	actor.ActorType, actor.ActorID, actor.PersonID = auth.ActorStaff, person, "per_somebody"
	p.audit = []*auth.AuditEntry{subject, actor}
	p.outsider = newAudit("aud_o_"+person, "token.created", at(0))
	e.tx(t, func(s Store) error {
		steps := []error{
			s.CreateAccount(e.ctx, a),
			s.SetPassword(e.ctx, person, "$argon2id$x", at(0)),
			s.CreateSession(e.ctx, p.session),
			s.AddSessionClient(e.ctx, p.session.ID, "cli_a", at(0)),
			s.PutStaff(e.ctx, newStaff(person, auth.RoleSupport, at(0))),
			s.AppendAudit(e.ctx, subject),
			s.AppendAudit(e.ctx, actor),
			s.AppendAudit(e.ctx, p.outsider),
		}
		for _, f := range p.flows {
			steps = append(steps, s.CreateFlow(e.ctx, f))
		}
		for _, c := range p.codes {
			steps = append(steps, s.CreateCode(e.ctx, c))
		}
		return errorsJoin(steps...)
	})
	return p
}

func (e *env) wantAuthGone(t *testing.T, p *seeded) {
	t.Helper()
	r := e.Reader()
	notFound := map[string]error{}
	_, notFound["account"] = r.AccountOf(e.ctx, []string{p.person})
	_, notFound["password"] = r.PasswordOf(e.ctx, p.person)
	_, notFound["session"] = r.SessionByID(e.ctx, p.session.ID)
	_, notFound["staff"] = r.StaffOf(e.ctx, p.person)
	for _, f := range p.flows {
		_, notFound["flow "+f.ID] = r.FlowByID(e.ctx, f.ID)
	}
	for _, c := range p.codes {
		_, notFound["code "+c.ID] = r.CodeByID(e.ctx, c.ID)
	}
	for what, err := range notFound {
		wantCode(t, err, onramp.ENOTFOUND, p.person+"'s "+what+" after EraseAuth")
	}
	if cs, err := r.SessionClients(e.ctx, p.session.ID); err != nil || len(cs) != 0 {
		t.Errorf("session clients of an erased session = %q, %v", cs, err)
	}
	// Audit entries stay, with action, outcome and time, but say nothing
	// about where the person was.
	for _, want := range p.audit {
		got := e.auditByID(t, want.ID)
		if got.IP != "" || got.UserAgent != "" || len(got.Detail) != 0 {
			t.Errorf("erased audit entry %s kept ip %q, user agent %q, detail %s", want.ID, got.IP, got.UserAgent, got.Detail)
		}
		blank := *want
		blank.IP, blank.UserAgent, blank.Detail = "", "", nil
		sameAudit(t, got, &blank)
	}
	sameAudit(t, e.auditByID(t, p.outsider.ID), p.outsider)
}

func (e *env) wantAuthKept(t *testing.T, p *seeded) {
	t.Helper()
	r := e.Reader()
	if _, err := r.AccountOf(e.ctx, []string{p.person}); err != nil {
		t.Errorf("%s's account: %v", p.person, err)
	}
	if _, err := r.PasswordOf(e.ctx, p.person); err != nil {
		t.Errorf("%s's password: %v", p.person, err)
	}
	if _, err := r.StaffOf(e.ctx, p.person); err != nil {
		t.Errorf("%s's staff row: %v", p.person, err)
	}
	got, err := r.SessionByID(e.ctx, p.session.ID)
	must(t, err)
	sameSession(t, got, p.session)
	if cs, err := r.SessionClients(e.ctx, p.session.ID); err != nil || len(cs) != 1 {
		t.Errorf("%s's session clients = %q, %v", p.person, cs, err)
	}
	for _, f := range p.flows {
		if _, err := r.FlowByID(e.ctx, f.ID); err != nil {
			t.Errorf("flow %s: %v", f.ID, err)
		}
	}
	for _, c := range p.codes {
		if _, err := r.CodeByID(e.ctx, c.ID); err != nil {
			t.Errorf("code %s: %v", c.ID, err)
		}
	}
	for _, want := range append(p.audit, p.outsider) {
		sameAudit(t, e.auditByID(t, want.ID), want)
	}
}

// auditByID finds an entry through ListAudit (the interface has no lookup
// by id).
func (e *env) auditByID(t *testing.T, id string) *auth.AuditEntry {
	t.Helper()
	all, err := e.Reader().ListAudit(e.ctx, auth.AuditQuery{Limit: 1000})
	must(t, err)
	for _, a := range all {
		if a.ID == id {
			return a
		}
	}
	t.Fatalf("audit entry %s is gone", id)
	return nil
}

func ignoreNotFound(err error) error {
	if onramp.ErrorCode(err) == onramp.ENOTFOUND {
		return nil
	}
	return err
}

// errorsJoin joins the errors of a list of steps, naming the first failing
// step's position so that a failure says which one.
func errorsJoin(errs ...error) error {
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("step %d: %w", i+1, err)
		}
	}
	return nil
}
