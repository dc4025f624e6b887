package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/property"
)

func newSession(id, personID string, created time.Time) *auth.Session {
	return &auth.Session{
		ID:            id,
		SecretHash:    property.HashSecret(onramp.NewSecret("ses")),
		PersonID:      personID,
		AAL:           1,
		AMR:           []string{"pwd"},
		AuthTime:      created.Add(-1234567),
		CreatedAt:     created,
		LastSeenAt:    created.Add(time.Second + 1),
		IdleExpiresAt: created.Add(7 * 24 * time.Hour),
		ExpiresAt:     created.Add(30 * 24 * time.Hour),
		IP:            "2001:db8::1",
		UserAgent:     "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0",
	}
}

func sameSession(t *testing.T, got, want *auth.Session) {
	t.Helper()
	if got == nil {
		t.Fatalf("session %s: got nil", want.ID)
	}
	if got.ID != want.ID || got.SecretHash != want.SecretHash || got.PersonID != want.PersonID || got.AAL != want.AAL ||
		got.IP != want.IP || got.UserAgent != want.UserAgent || got.RevokedReason != want.RevokedReason {
		t.Errorf("session = %+v, want %+v", got, want)
	}
	if got.AMR == nil {
		t.Errorf("session %s: AMR is nil, want a list (JSON answers say [])", want.ID)
	}
	sameStrings(t, "session amr", got.AMR, want.AMR)
	sameTime(t, "session auth_time", got.AuthTime, want.AuthTime)
	sameTime(t, "session created_at", got.CreatedAt, want.CreatedAt)
	sameTime(t, "session last_seen_at", got.LastSeenAt, want.LastSeenAt)
	sameTime(t, "session idle_expires_at", got.IdleExpiresAt, want.IdleExpiresAt)
	sameTime(t, "session expires_at", got.ExpiresAt, want.ExpiresAt)
	sameTimePtr(t, "session revoked_at", got.RevokedAt, want.RevokedAt)
}

func sessionIDs(ss []*auth.Session) []string {
	ids := []string{}
	for _, s := range ss {
		ids = append(ids, s.ID)
	}
	return ids
}

func newFlow(id string) *auth.Flow {
	return &auth.Flow{
		ID:            id,
		SecretHash:    property.HashSecret(onramp.NewSecret("flw")),
		Kind:          auth.FlowSignUp,
		AuthRequestID: "arq_1",
		ClientID:      "cli_1",
		Email:         "ada@example.com",
		PersonID:      "per_ada",
		AnonymousID:   "4b1d2c9e-0a3f-4f7e-9a51-3c1c8d1b2e77",
		Step:          "verify_email",
		AMR:           []string{"pwd", "otp"},
		Pending:       json.RawMessage(`{"password_phc": "$argon2id$…", "traits": {"company": "Acme", "name": "Ada ✨"}}`),
		IP:            "203.0.113.9",
		Lang:          "de",
		CreatedAt:     at(0),
		ExpiresAt:     at(30*time.Minute + 999),
	}
}

func sameFlow(t *testing.T, got, want *auth.Flow) {
	t.Helper()
	if got.ID != want.ID || got.SecretHash != want.SecretHash || got.Kind != want.Kind || got.AuthRequestID != want.AuthRequestID ||
		got.ClientID != want.ClientID || got.Email != want.Email || got.PersonID != want.PersonID || got.AnonymousID != want.AnonymousID ||
		got.Step != want.Step || got.IP != want.IP || got.Lang != want.Lang {
		t.Errorf("flow = %+v, want %+v", got, want)
	}
	sameStrings(t, "flow amr", got.AMR, want.AMR)
	sameJSON(t, "flow pending", got.Pending, want.Pending)
	sameTime(t, "flow created_at", got.CreatedAt, want.CreatedAt)
	sameTime(t, "flow expires_at", got.ExpiresAt, want.ExpiresAt)
}

func newCode(id, flowID, purpose string, created time.Time) *auth.OneTimeCode {
	return &auth.OneTimeCode{
		ID:          id,
		FlowID:      flowID,
		Purpose:     purpose,
		Email:       "ada@example.com",
		PersonID:    "per_ada",
		CodeHash:    property.HashSecret(flowID + "123456"),
		Attempts:    0,
		MaxAttempts: 5,
		ExpiresAt:   created.Add(10*time.Minute + 1),
		CreatedAt:   created,
	}
}

func sameCode(t *testing.T, got, want *auth.OneTimeCode) {
	t.Helper()
	if got == nil {
		t.Fatalf("code %s: got nil", want.ID)
	}
	if got.ID != want.ID || got.FlowID != want.FlowID || got.Purpose != want.Purpose || got.Email != want.Email || got.PersonID != want.PersonID ||
		got.CodeHash != want.CodeHash || got.LinkHash != want.LinkHash || got.Attempts != want.Attempts || got.MaxAttempts != want.MaxAttempts {
		t.Errorf("code = %+v, want %+v", got, want)
	}
	sameTime(t, "code expires_at", got.ExpiresAt, want.ExpiresAt)
	sameTimePtr(t, "code used_at", got.UsedAt, want.UsedAt)
	sameTime(t, "code created_at", got.CreatedAt, want.CreatedAt)
}

func (e *env) createSessions(t *testing.T, ss ...*auth.Session) {
	t.Helper()
	e.tx(t, func(s Store) error {
		for _, ses := range ss {
			if err := s.CreateSession(e.ctx, ses); err != nil {
				return err
			}
		}
		return nil
	})
}

func (e *env) createCodes(t *testing.T, cs ...*auth.OneTimeCode) {
	t.Helper()
	e.tx(t, func(s Store) error {
		for _, c := range cs {
			if err := s.CreateCode(e.ctx, c); err != nil {
				return err
			}
		}
		return nil
	})
}

var sessionTests = []test{
	{"Session/RoundTrip", func(t *testing.T, e *env) {
		plain := newSession("ses_plain", "per_ada", at(0))
		revoked := newSession("ses_revoked", "per_ada", at(time.Minute))
		when := at(time.Hour + 123456789)
		revoked.AAL, revoked.AMR, revoked.RevokedAt, revoked.RevokedReason = 2, []string{"pwd", "otp", "hwk"}, &when, "staff"
		bare := newSession("ses_bare", "per_bob", at(0))
		bare.AMR, bare.IP, bare.UserAgent = nil, "", ""
		e.createSessions(t, plain, revoked, bare)
		r := e.Reader()
		for _, want := range []*auth.Session{plain, revoked, bare} {
			got, err := r.SessionByID(e.ctx, want.ID)
			must(t, err)
			sameSession(t, got, want)
			got, err = r.SessionBySecretHash(e.ctx, want.SecretHash)
			must(t, err)
			sameSession(t, got, want)
		}
		// A session's id and its secret are separate: one cannot find the
		// other's row.
		_, err := r.SessionBySecretHash(e.ctx, plain.ID)
		wantCode(t, err, onramp.ENOTFOUND, "SessionBySecretHash(an id)")
		_, err = r.SessionByID(e.ctx, "ses_nope")
		wantCode(t, err, onramp.ENOTFOUND, "SessionByID")
		dup := newSession("ses_plain", "per_cy", at(0))
		err = e.InTx(e.ctx, func(s Store) error { return s.CreateSession(e.ctx, dup) })
		wantCode(t, err, onramp.ECONFLICT, "CreateSession with a taken id")
	}},
	{"Session/Touch", func(t *testing.T, e *env) {
		ses := newSession("ses_1", "per_ada", at(0))
		e.createSessions(t, ses)
		ses.LastSeenAt, ses.IdleExpiresAt = at(time.Hour+111), at(8*24*time.Hour+222)
		e.tx(t, func(s Store) error { return s.TouchSession(e.ctx, ses.ID, ses.LastSeenAt, ses.IdleExpiresAt) })
		got, err := e.Reader().SessionByID(e.ctx, ses.ID)
		must(t, err)
		sameSession(t, got, ses)
		err = e.InTx(e.ctx, func(s Store) error { return s.TouchSession(e.ctx, "ses_nope", at(0), at(0)) })
		wantCode(t, err, onramp.ENOTFOUND, "TouchSession of a missing session")
	}},
	{"Session/ListOfPerson", func(t *testing.T, e *env) {
		old, mid, revoked := newSession("ses_old", "per_ada", at(0)), newSession("ses_mid", "per_ada", at(time.Minute)), newSession("ses_rev", "per_ada", at(time.Hour))
		when := at(2 * time.Hour)
		revoked.RevokedAt, revoked.RevokedReason = &when, "self"
		e.createSessions(t, old, mid, revoked, newSession("ses_bob", "per_bob", at(time.Minute)))
		r := e.Reader()
		live, err := r.SessionsOf(e.ctx, "per_ada", false)
		must(t, err)
		// Newest first.
		sameStrings(t, "live sessions", sessionIDs(live), []string{"ses_mid", "ses_old"})
		sameSession(t, live[0], mid)
		every, err := r.SessionsOf(e.ctx, "per_ada", true)
		must(t, err)
		sameStrings(t, "all sessions", sessionIDs(every), []string{"ses_rev", "ses_mid", "ses_old"})
		sameSession(t, every[0], revoked)
		none, err := r.SessionsOf(e.ctx, "per_nope", true)
		if err != nil || none == nil || len(none) != 0 {
			t.Errorf("SessionsOf an unknown person = %#v, %v; want an empty, non-nil list", none, err)
		}
	}},
	{"Session/RevokeOnce", func(t *testing.T, e *env) {
		ses := newSession("ses_1", "per_ada", at(0))
		e.createSessions(t, ses)
		first, second := at(time.Hour+1001), at(2*time.Hour)
		var won bool
		e.tx(t, func(s Store) (err error) { won, err = s.RevokeSession(e.ctx, ses.ID, first, "self"); return })
		if !won {
			t.Error("the first RevokeSession reported that it did not revoke")
		}
		e.tx(t, func(s Store) (err error) { won, err = s.RevokeSession(e.ctx, ses.ID, second, "staff"); return })
		if won {
			t.Error("the second RevokeSession reported that it revoked")
		}
		// The first revocation's time and reason stay.
		ses.RevokedAt, ses.RevokedReason = &first, "self"
		got, err := e.Reader().SessionByID(e.ctx, ses.ID)
		must(t, err)
		sameSession(t, got, ses)
		err = e.InTx(e.ctx, func(s Store) error { _, err := s.RevokeSession(e.ctx, "ses_nope", first, "self"); return err })
		wantCode(t, err, onramp.ENOTFOUND, "RevokeSession of a missing session")
	}},
	{"Session/RevokeRace", func(t *testing.T, e *env) {
		ses := newSession("ses_1", "per_ada", at(0))
		e.createSessions(t, ses)
		const racers = 4
		look := func(s Store) error { _, err := s.SessionByID(e.ctx, ses.ID); return err }
		winners := e.race(t, racers, look, func(s Store, i int) (bool, error) {
			return s.RevokeSession(e.ctx, ses.ID, at(time.Duration(i+1)*time.Hour), fmt.Sprintf("racer %d", i))
		})
		if len(winners) != 1 {
			t.Fatalf("winners = %v, want exactly one", winners)
		}
		got, err := e.Reader().SessionByID(e.ctx, ses.ID)
		must(t, err)
		w := winners[0]
		when := at(time.Duration(w+1) * time.Hour)
		ses.RevokedAt, ses.RevokedReason = &when, fmt.Sprintf("racer %d", w)
		sameSession(t, got, ses)
	}},
	{"Session/RevokeAllOfPerson", func(t *testing.T, e *env) {
		a, b, c := newSession("ses_a", "per_ada", at(0)), newSession("ses_b", "per_ada", at(time.Second)), newSession("ses_c", "per_ada", at(time.Minute))
		old := newSession("ses_old", "per_ada", at(0))
		earlier := at(time.Minute)
		old.RevokedAt, old.RevokedReason = &earlier, "self"
		bob := newSession("ses_bob", "per_bob", at(0))
		e.createSessions(t, c, a, b, old, bob)
		when := at(time.Hour + 777)
		var ids []string
		e.tx(t, func(s Store) (err error) {
			ids, err = s.RevokeSessionsOf(e.ctx, "per_ada", "ses_b", when, "password_changed")
			return
		})
		sameStrings(t, "revoked ids", ids, []string{"ses_a", "ses_c"})
		r := e.Reader()
		for _, ses := range []*auth.Session{a, c} {
			ses.RevokedAt, ses.RevokedReason = &when, "password_changed"
		}
		for _, want := range []*auth.Session{a, b, c, old, bob} {
			got, err := r.SessionByID(e.ctx, want.ID)
			must(t, err)
			sameSession(t, got, want)
		}
		// With nothing to keep, the last one goes too; then nothing is left.
		e.tx(t, func(s Store) (err error) { ids, err = s.RevokeSessionsOf(e.ctx, "per_ada", "", when, "erased"); return })
		sameStrings(t, "revoked ids without keep", ids, []string{"ses_b"})
		e.tx(t, func(s Store) (err error) { ids, err = s.RevokeSessionsOf(e.ctx, "per_ada", "", when, "erased"); return })
		if ids == nil || len(ids) != 0 {
			t.Errorf("RevokeSessionsOf with nothing live = %#v, want an empty, non-nil list", ids)
		}
		if got, _ := r.SessionByID(e.ctx, "ses_bob"); got.RevokedAt != nil {
			t.Error("another person's session was revoked")
		}
	}},
	{"Session/Clients", func(t *testing.T, e *env) {
		e.createSessions(t, newSession("ses_1", "per_ada", at(0)), newSession("ses_2", "per_ada", at(0)))
		e.tx(t, func(s Store) error {
			return errorsJoin(
				s.AddSessionClient(e.ctx, "ses_1", "cli_product", at(time.Second)),
				s.AddSessionClient(e.ctx, "ses_1", "cli_community", at(2*time.Second)),
				s.AddSessionClient(e.ctx, "ses_2", "cli_website", at(time.Second)),
			)
		})
		// Signing into a client again moves its last time, not its place.
		e.tx(t, func(s Store) error { return s.AddSessionClient(e.ctx, "ses_1", "cli_product", at(time.Hour)) })
		r := e.Reader()
		got, err := r.SessionClients(e.ctx, "ses_1")
		must(t, err)
		sameStrings(t, "clients of ses_1", got, []string{"cli_product", "cli_community"})
		got, err = r.SessionClients(e.ctx, "ses_2")
		must(t, err)
		sameStrings(t, "clients of ses_2", got, []string{"cli_website"})
		got, err = r.SessionClients(e.ctx, "ses_nope")
		if err != nil || got == nil || len(got) != 0 {
			t.Errorf("SessionClients of an unknown session = %#v, %v; want an empty, non-nil list", got, err)
		}
	}},
	{"Flow/Lifecycle", func(t *testing.T, e *env) {
		full := newFlow("flw_full")
		bare := &auth.Flow{ID: "flw_bare", SecretHash: "h", Kind: auth.FlowSignIn, CreatedAt: at(0), ExpiresAt: at(time.Hour)}
		e.tx(t, func(s Store) error { return errorsJoin(s.CreateFlow(e.ctx, full), s.CreateFlow(e.ctx, bare)) })
		r := e.Reader()
		for _, want := range []*auth.Flow{full, bare} {
			got, err := r.FlowByID(e.ctx, want.ID)
			must(t, err)
			sameFlow(t, got, want)
		}
		err := e.InTx(e.ctx, func(s Store) error { return s.CreateFlow(e.ctx, newFlow("flw_full")) })
		wantCode(t, err, onramp.ECONFLICT, "CreateFlow with a taken id")
		// Every field but the id and creation time can change.
		bare.SecretHash, bare.Kind, bare.AuthRequestID, bare.ClientID = "h2", auth.FlowRecovery, "arq_2", "cli_2"
		bare.Email, bare.PersonID, bare.AnonymousID, bare.Step = "bob@example.com", "per_bob", "anon-2", "password"
		bare.AMR, bare.Pending, bare.IP, bare.ExpiresAt = []string{"email"}, json.RawMessage(`{"n": 1}`), "198.51.100.7", at(2*time.Hour+5)
		bare.Lang = "de"
		e.tx(t, func(s Store) error { return s.UpdateFlow(e.ctx, bare) })
		got, err := r.FlowByID(e.ctx, bare.ID)
		must(t, err)
		sameFlow(t, got, bare)
		full.Pending = nil
		e.tx(t, func(s Store) error { return s.UpdateFlow(e.ctx, full) })
		got, err = r.FlowByID(e.ctx, full.ID)
		must(t, err)
		sameFlow(t, got, full)
		e.tx(t, func(s Store) error { return s.DeleteFlow(e.ctx, full.ID) })
		_, err = r.FlowByID(e.ctx, full.ID)
		wantCode(t, err, onramp.ENOTFOUND, "FlowByID after DeleteFlow")
		err = e.InTx(e.ctx, func(s Store) error { return s.DeleteFlow(e.ctx, full.ID) })
		wantCode(t, err, onramp.ENOTFOUND, "DeleteFlow of a missing flow")
		err = e.InTx(e.ctx, func(s Store) error { return s.UpdateFlow(e.ctx, full) })
		wantCode(t, err, onramp.ENOTFOUND, "UpdateFlow of a missing flow")
		if _, err := r.FlowByID(e.ctx, bare.ID); err != nil {
			t.Errorf("DeleteFlow took another flow: %v", err)
		}
	}},
}

var codeTests = []test{
	{"Code/RoundTripAndLookups", func(t *testing.T, e *env) {
		older := newCode("otc_older", "flw_1", auth.CodeVerifyEmail, at(0))
		linked := newCode("otc_linked", "flw_1", auth.CodeVerifyEmail, at(time.Minute))
		linked.LinkHash, linked.Attempts = property.HashSecret("link-token"), 2
		used := at(time.Minute + 30*time.Second + 1)
		otherPurpose := newCode("otc_signin", "flw_1", auth.CodeSignIn, at(time.Hour))
		otherPurpose.UsedAt = &used
		otherFlow := newCode("otc_other", "flw_2", auth.CodeVerifyEmail, at(time.Hour))
		// No flow and no person: an owner link.
		owner := &auth.OneTimeCode{ID: "otc_owner", Purpose: auth.CodeOwnerSetup, Email: "owner@example.com", LinkHash: property.HashSecret("owner"),
			MaxAttempts: 1, ExpiresAt: at(24 * time.Hour), CreatedAt: at(0)}
		all := []*auth.OneTimeCode{older, linked, otherPurpose, otherFlow, owner}
		e.createCodes(t, all...)
		r := e.Reader()
		for _, want := range all {
			got, err := r.CodeByID(e.ctx, want.ID)
			must(t, err)
			sameCode(t, got, want)
		}
		got, err := r.LatestCode(e.ctx, "flw_1", auth.CodeVerifyEmail)
		must(t, err)
		sameCode(t, got, linked)
		got, err = r.CodeByLinkHash(e.ctx, linked.LinkHash)
		must(t, err)
		sameCode(t, got, linked)
		got, err = r.CodeByLinkHash(e.ctx, owner.LinkHash)
		must(t, err)
		sameCode(t, got, owner)
		// Codes without a link do not share an empty link.
		_, err = r.CodeByLinkHash(e.ctx, "")
		wantCode(t, err, onramp.ENOTFOUND, "CodeByLinkHash(\"\")")
		_, err = r.CodeByLinkHash(e.ctx, property.HashSecret("nope"))
		wantCode(t, err, onramp.ENOTFOUND, "CodeByLinkHash")
		_, err = r.CodeByID(e.ctx, "otc_nope")
		wantCode(t, err, onramp.ENOTFOUND, "CodeByID")
		_, err = r.LatestCode(e.ctx, "flw_1", auth.CodeRecovery)
		wantCode(t, err, onramp.ENOTFOUND, "LatestCode of a purpose never sent")
		dup := newCode("otc_dup", "flw_3", auth.CodeSignIn, at(0))
		dup.LinkHash = linked.LinkHash
		err = e.InTx(e.ctx, func(s Store) error { return s.CreateCode(e.ctx, dup) })
		wantCode(t, err, onramp.ECONFLICT, "CreateCode with a taken link")
	}},
	{"Code/Attempts", func(t *testing.T, e *env) {
		c := newCode("otc_1", "flw_1", auth.CodeSignIn, at(0))
		e.createCodes(t, c, newCode("otc_2", "flw_1", auth.CodeSignIn, at(0)))
		for want := 1; want <= 3; want++ {
			var n int
			e.tx(t, func(s Store) (err error) { n, err = s.IncrementCodeAttempts(e.ctx, c.ID); return })
			if n != want {
				t.Errorf("IncrementCodeAttempts = %d, want %d", n, want)
			}
		}
		c.Attempts = 3
		got, err := e.Reader().CodeByID(e.ctx, c.ID)
		must(t, err)
		sameCode(t, got, c)
		if other, _ := e.Reader().CodeByID(e.ctx, "otc_2"); other.Attempts != 0 {
			t.Errorf("another code's attempts = %d, want 0", other.Attempts)
		}
		err = e.InTx(e.ctx, func(s Store) error { _, err := s.IncrementCodeAttempts(e.ctx, "otc_nope"); return err })
		wantCode(t, err, onramp.ENOTFOUND, "IncrementCodeAttempts of a missing code")
	}},
	{"Code/UseOnce", func(t *testing.T, e *env) {
		c := newCode("otc_1", "flw_1", auth.CodeSignIn, at(0))
		e.createCodes(t, c)
		first := at(time.Minute + 4321)
		var won bool
		e.tx(t, func(s Store) (err error) { won, err = s.UseCode(e.ctx, c.ID, first); return })
		if !won {
			t.Error("the first UseCode reported that it did not use the code")
		}
		e.tx(t, func(s Store) (err error) { won, err = s.UseCode(e.ctx, c.ID, at(time.Hour)); return })
		if won {
			t.Error("the second UseCode reported that it used the code")
		}
		c.UsedAt = &first
		got, err := e.Reader().CodeByID(e.ctx, c.ID)
		must(t, err)
		sameCode(t, got, c)
		err = e.InTx(e.ctx, func(s Store) error { _, err := s.UseCode(e.ctx, "otc_nope", first); return err })
		wantCode(t, err, onramp.ENOTFOUND, "UseCode of a missing code")
	}},
	{"Code/UseRace", func(t *testing.T, e *env) {
		c := newCode("otc_1", "flw_1", auth.CodeSignIn, at(0))
		e.createCodes(t, c)
		const racers = 4
		look := func(s Store) error { _, err := s.CodeByID(e.ctx, c.ID); return err }
		winners := e.race(t, racers, look, func(s Store, i int) (bool, error) {
			return s.UseCode(e.ctx, c.ID, at(time.Duration(i+1)*time.Minute))
		})
		if len(winners) != 1 {
			t.Fatalf("winners = %v, want exactly one", winners)
		}
		when := at(time.Duration(winners[0]+1) * time.Minute)
		c.UsedAt = &when
		got, err := e.Reader().CodeByID(e.ctx, c.ID)
		must(t, err)
		sameCode(t, got, c)
	}},
	{"Code/Invalidate", func(t *testing.T, e *env) {
		a := newCode("otc_a", "", auth.CodeOwnerSetup, at(0))
		b := newCode("otc_b", "", auth.CodeOwnerSetup, at(time.Minute))
		spent := newCode("otc_spent", "", auth.CodeOwnerSetup, at(0))
		earlier := at(30 * time.Second)
		spent.UsedAt = &earlier
		otherEmail := newCode("otc_other_email", "", auth.CodeOwnerSetup, at(0))
		otherEmail.Email = "bob@example.com"
		otherPurpose := newCode("otc_other_purpose", "flw_1", auth.CodeSignIn, at(0))
		e.createCodes(t, a, b, spent, otherEmail, otherPurpose)
		when := at(time.Hour + 5)
		e.tx(t, func(s Store) error { return s.InvalidateCodes(e.ctx, auth.CodeOwnerSetup, "ada@example.com", when) })
		a.UsedAt, b.UsedAt = &when, &when
		for _, want := range []*auth.OneTimeCode{a, b, spent, otherEmail, otherPurpose} {
			got, err := e.Reader().CodeByID(e.ctx, want.ID)
			must(t, err)
			sameCode(t, got, want)
		}
		// Nothing to invalidate is no error.
		e.tx(t, func(s Store) error { return s.InvalidateCodes(e.ctx, auth.CodeInvite, "nobody@example.com", when) })
	}},
}
