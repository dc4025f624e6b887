package storetest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// The auth.MFAStore suite: passkeys, TOTP secrets and recovery codes, with
// the races their compare-and-sets exist for, and their share of erasure
// and pruning.

func newPasskey(id, personID string, created time.Time) *auth.Passkey {
	return &auth.Passkey{
		ID:                id,
		PersonID:          personID,
		PublicKey:         randomBytes(77),
		AttestationType:   "none",
		AttestationFormat: "none",
		Transports:        []string{"internal", "hybrid"},
		Flags:             auth.PasskeyFlagUserPresent | auth.PasskeyFlagUserVerified | auth.PasskeyFlagBackupEligible,
		AAGUID:            randomBytes(16),
		SignCount:         7,
		Name:              "Laptop — ünï 🔑",
		CreatedAt:         created,
	}
}

func samePasskey(t *testing.T, got, want *auth.Passkey) {
	t.Helper()
	if got == nil {
		t.Fatalf("passkey %s: got nil", want.ID)
	}
	if got.ID != want.ID || got.PersonID != want.PersonID || got.AttestationType != want.AttestationType || got.AttestationFormat != want.AttestationFormat ||
		got.Flags != want.Flags || got.SignCount != want.SignCount || got.CloneWarning != want.CloneWarning || got.Name != want.Name {
		t.Errorf("passkey = %+v, want %+v", got, want)
	}
	if !bytes.Equal(got.PublicKey, want.PublicKey) || !bytes.Equal(got.AAGUID, want.AAGUID) {
		t.Errorf("passkey %s: public key or aaguid differ: %x/%x, want %x/%x", want.ID, got.PublicKey, got.AAGUID, want.PublicKey, want.AAGUID)
	}
	if got.Transports == nil {
		t.Errorf("passkey %s: transports nil, want a list", want.ID)
	}
	sameStrings(t, "passkey transports", got.Transports, want.Transports)
	sameTime(t, "passkey created_at", got.CreatedAt, want.CreatedAt)
	sameTimePtr(t, "passkey last_used_at", got.LastUsedAt, want.LastUsedAt)
}

func sameTOTP(t *testing.T, got, want *auth.TOTP) {
	t.Helper()
	if got.PersonID != want.PersonID || !bytes.Equal(got.SecretEnc, want.SecretEnc) || got.LastStep != want.LastStep {
		t.Errorf("totp = %+v, want %+v", got, want)
	}
	sameTimePtr(t, "totp confirmed_at", got.ConfirmedAt, want.ConfirmedAt)
	sameTime(t, "totp created_at", got.CreatedAt, want.CreatedAt)
}

// codeHashes makes n distinct recovery-code hashes.
func codeHashes(n int, prefix string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%02d-%x", prefix, i, randomBytes(8))
	}
	return out
}

var mfaTests = []test{
	{"Passkey/RoundTrip", func(t *testing.T, e *env) {
		a1, a2, b := newPasskey("cred_a1", "per_ada", at(time.Minute)), newPasskey("cred_a2", "per_ada", at(time.Second)), newPasskey("cred_b", "per_bob", at(0))
		// A passkey with the least: no transports, no AAGUID, no name.
		b.Transports, b.AAGUID, b.Name, b.AttestationType, b.AttestationFormat, b.Flags = nil, nil, "", "", "", auth.PasskeyFlagUserPresent
		e.tx(t, func(s Store) error {
			return errorsJoin(s.CreatePasskey(e.ctx, a1), s.CreatePasskey(e.ctx, a2), s.CreatePasskey(e.ctx, b))
		})
		r := e.Reader()
		for _, want := range []*auth.Passkey{a1, a2, b} {
			got, err := r.PasskeyByID(e.ctx, want.ID)
			must(t, err)
			samePasskey(t, got, want)
		}
		list, err := r.PasskeysOf(e.ctx, "per_ada")
		must(t, err)
		if len(list) != 2 {
			t.Fatalf("PasskeysOf(per_ada) = %d, want 2", len(list))
		}
		// Oldest first.
		samePasskey(t, list[0], a2)
		samePasskey(t, list[1], a1)
		none, err := r.PasskeysOf(e.ctx, "per_nobody")
		if err != nil || none == nil || len(none) != 0 {
			t.Errorf("PasskeysOf a person without = %#v, %v; want an empty, non-nil list", none, err)
		}
	}},
	{"Passkey/UseRenameDelete", func(t *testing.T, e *env) {
		p, other := newPasskey("cred_a", "per_ada", at(0)), newPasskey("cred_b", "per_ada", at(time.Second))
		e.tx(t, func(s Store) error { return errorsJoin(s.CreatePasskey(e.ctx, p), s.CreatePasskey(e.ctx, other)) })
		used := at(time.Hour + 321)
		p.SignCount, p.CloneWarning, p.LastUsedAt = 4_000_000_000, true, &used // near the top of uint32
		p.Flags |= auth.PasskeyFlagBackupState
		changed := *p
		changed.Name, changed.PublicKey, changed.PersonID = "ignored", randomBytes(5), "per_eve" // only the use columns move
		e.tx(t, func(s Store) error { return s.UpdatePasskeyUse(e.ctx, &changed) })
		got, err := e.Reader().PasskeyByID(e.ctx, p.ID)
		must(t, err)
		samePasskey(t, got, p)
		e.tx(t, func(s Store) error { return s.RenamePasskey(e.ctx, p.ID, "Phone") })
		p.Name = "Phone"
		got, err = e.Reader().PasskeyByID(e.ctx, p.ID)
		must(t, err)
		samePasskey(t, got, p)
		e.tx(t, func(s Store) error { return s.DeletePasskey(e.ctx, p.ID) })
		_, err = e.Reader().PasskeyByID(e.ctx, p.ID)
		wantCode(t, err, onramp.ENOTFOUND, "PasskeyByID after DeletePasskey")
		if list, _ := e.Reader().PasskeysOf(e.ctx, "per_ada"); len(list) != 1 || list[0].ID != other.ID {
			t.Errorf("PasskeysOf after a delete = %v, want only %s", list, other.ID)
		}
	}},
	{"Passkey/NotFoundAndConflict", func(t *testing.T, e *env) {
		p := newPasskey("cred_a", "per_ada", at(0))
		e.tx(t, func(s Store) error { return s.CreatePasskey(e.ctx, p) })
		// A credential id is one authenticator's key: no second account
		// may register it.
		err := e.InTx(e.ctx, func(s Store) error { return s.CreatePasskey(e.ctx, newPasskey("cred_a", "per_bob", at(time.Hour))) })
		wantCode(t, err, onramp.ECONFLICT, "CreatePasskey with a taken id")
		got, err := e.Reader().PasskeyByID(e.ctx, "cred_a")
		must(t, err)
		samePasskey(t, got, p)
		_, err = e.Reader().PasskeyByID(e.ctx, "cred_nope")
		wantCode(t, err, onramp.ENOTFOUND, "PasskeyByID")
		for what, fn := range map[string]func(s Store) error{
			"UpdatePasskeyUse": func(s Store) error { return s.UpdatePasskeyUse(e.ctx, newPasskey("cred_nope", "per_ada", at(0))) },
			"RenamePasskey":    func(s Store) error { return s.RenamePasskey(e.ctx, "cred_nope", "x") },
			"DeletePasskey":    func(s Store) error { return s.DeletePasskey(e.ctx, "cred_nope") },
		} {
			wantCode(t, e.InTx(e.ctx, fn), onramp.ENOTFOUND, what+" of a missing passkey")
		}
	}},
	{"TOTP/PutConfirmAdvanceDelete", func(t *testing.T, e *env) {
		_, err := e.Reader().TOTPOf(e.ctx, "per_ada")
		wantCode(t, err, onramp.ENOTFOUND, "TOTPOf before enrolment")
		first := &auth.TOTP{PersonID: "per_ada", SecretEnc: randomBytes(48), CreatedAt: at(0)}
		e.tx(t, func(s Store) error { return s.PutTOTP(e.ctx, first) })
		got, err := e.Reader().TOTPOf(e.ctx, "per_ada")
		must(t, err)
		sameTOTP(t, got, first)
		// Enrolling again replaces the secret and starts over.
		second := &auth.TOTP{PersonID: "per_ada", SecretEnc: randomBytes(48), CreatedAt: at(time.Minute + 17)}
		e.tx(t, func(s Store) error { return s.PutTOTP(e.ctx, second) })
		got, err = e.Reader().TOTPOf(e.ctx, "per_ada")
		must(t, err)
		sameTOTP(t, got, second)
		when := at(2*time.Minute + 3)
		var won, again bool
		e.tx(t, func(s Store) (err error) { won, err = s.ConfirmTOTP(e.ctx, "per_ada", when); return })
		e.tx(t, func(s Store) (err error) { again, err = s.ConfirmTOTP(e.ctx, "per_ada", at(time.Hour)); return })
		if !won || again {
			t.Errorf("ConfirmTOTP = %v then %v, want true then false", won, again)
		}
		second.ConfirmedAt = &when
		// The step only grows.
		const step = 59_000_000 // a 30-second step of 2026
		for _, c := range []struct {
			step int64
			want bool
		}{{step, true}, {step, false}, {step - 1, false}, {step + 1, true}} {
			var got bool
			e.tx(t, func(s Store) (err error) { got, err = s.AdvanceTOTPStep(e.ctx, "per_ada", c.step); return })
			if got != c.want {
				t.Errorf("AdvanceTOTPStep(%d) = %v, want %v", c.step, got, c.want)
			}
		}
		second.LastStep = step + 1
		got, err = e.Reader().TOTPOf(e.ctx, "per_ada")
		must(t, err)
		sameTOTP(t, got, second)
		e.tx(t, func(s Store) error { return s.DeleteTOTP(e.ctx, "per_ada") })
		_, err = e.Reader().TOTPOf(e.ctx, "per_ada")
		wantCode(t, err, onramp.ENOTFOUND, "TOTPOf after DeleteTOTP")
		for what, fn := range map[string]func(s Store) error{
			"AdvanceTOTPStep": func(s Store) error { _, err := s.AdvanceTOTPStep(e.ctx, "per_ada", step+9); return err },
			"ConfirmTOTP":     func(s Store) error { _, err := s.ConfirmTOTP(e.ctx, "per_ada", at(0)); return err },
			"DeleteTOTP":      func(s Store) error { return s.DeleteTOTP(e.ctx, "per_ada") },
		} {
			wantCode(t, e.InTx(e.ctx, fn), onramp.ENOTFOUND, what+" without a secret")
		}
	}},
	{"TOTP/AdvanceRace", func(t *testing.T, e *env) {
		// Two tabs (or an attacker who saw the code) send the same code at
		// once: one step, one winner.
		e.tx(t, func(s Store) error {
			return s.PutTOTP(e.ctx, &auth.TOTP{PersonID: "per_ada", SecretEnc: randomBytes(48), LastStep: 100, CreatedAt: at(0)})
		})
		look := func(s Store) error { _, err := s.TOTPOf(e.ctx, "per_ada"); return err }
		winners := e.race(t, 4, look, func(s Store, i int) (bool, error) { return s.AdvanceTOTPStep(e.ctx, "per_ada", 101) })
		if len(winners) != 1 {
			t.Fatalf("winners = %v, want exactly one", winners)
		}
		got, err := e.Reader().TOTPOf(e.ctx, "per_ada")
		if err != nil || got.LastStep != 101 {
			t.Errorf("last_step = %+v, %v; want 101", got, err)
		}
	}},
	{"TOTP/ConfirmRace", func(t *testing.T, e *env) {
		e.tx(t, func(s Store) error {
			return s.PutTOTP(e.ctx, &auth.TOTP{PersonID: "per_ada", SecretEnc: randomBytes(48), CreatedAt: at(0)})
		})
		look := func(s Store) error { _, err := s.TOTPOf(e.ctx, "per_ada"); return err }
		winners := e.race(t, 4, look, func(s Store, i int) (bool, error) {
			return s.ConfirmTOTP(e.ctx, "per_ada", at(time.Duration(i+1)*time.Minute))
		})
		if len(winners) != 1 {
			t.Fatalf("winners = %v, want exactly one", winners)
		}
		got, err := e.Reader().TOTPOf(e.ctx, "per_ada")
		must(t, err)
		want := at(time.Duration(winners[0]+1) * time.Minute)
		sameTimePtr(t, "confirmed_at", got.ConfirmedAt, &want)
	}},
	{"RecoveryCodes/ReplaceUseDelete", func(t *testing.T, e *env) {
		if list, err := e.Reader().RecoveryCodesOf(e.ctx, "per_ada"); err != nil || list == nil || len(list) != 0 {
			t.Fatalf("RecoveryCodesOf before any = %#v, %v; want an empty, non-nil list", list, err)
		}
		old, fresh, bobs := codeHashes(10, "old"), codeHashes(10, "new"), codeHashes(10, "bob")
		e.tx(t, func(s Store) error {
			return errorsJoin(s.ReplaceRecoveryCodes(e.ctx, "per_ada", old, at(0)), s.ReplaceRecoveryCodes(e.ctx, "per_bob", bobs, at(0)))
		})
		// Regenerating drops the old set.
		e.tx(t, func(s Store) error { return s.ReplaceRecoveryCodes(e.ctx, "per_ada", fresh, at(time.Hour)) })
		err := e.InTx(e.ctx, func(s Store) error {
			_, err := s.UseRecoveryCode(e.ctx, "per_ada", old[0], at(2*time.Hour))
			return err
		})
		wantCode(t, err, onramp.ENOTFOUND, "UseRecoveryCode of a replaced code")
		// A code is the person's own: Bob's code does nothing for Ada.
		err = e.InTx(e.ctx, func(s Store) error {
			_, err := s.UseRecoveryCode(e.ctx, "per_ada", bobs[0], at(2*time.Hour))
			return err
		})
		wantCode(t, err, onramp.ENOTFOUND, "UseRecoveryCode of another person's code")
		when := at(2*time.Hour + 5)
		var first, second bool
		e.tx(t, func(s Store) (err error) { first, err = s.UseRecoveryCode(e.ctx, "per_ada", fresh[3], when); return })
		e.tx(t, func(s Store) (err error) {
			second, err = s.UseRecoveryCode(e.ctx, "per_ada", fresh[3], at(3*time.Hour))
			return
		})
		if !first || second {
			t.Errorf("UseRecoveryCode = %v then %v, want true then false", first, second)
		}
		list, err := e.Reader().RecoveryCodesOf(e.ctx, "per_ada")
		must(t, err)
		if len(list) != 10 {
			t.Fatalf("RecoveryCodesOf = %d codes, want 10", len(list))
		}
		usedN := 0
		for _, c := range list {
			sameTime(t, "recovery code created_at", c.CreatedAt, at(time.Hour))
			if c.PersonID != "per_ada" {
				t.Errorf("code of %s in Ada's list", c.PersonID)
			}
			if c.UsedAt != nil {
				usedN++
				if c.CodeHash != fresh[3] {
					t.Errorf("code %s used, want only %s", c.CodeHash, fresh[3])
				}
				sameTimePtr(t, "recovery code used_at", c.UsedAt, &when)
			}
		}
		if usedN != 1 {
			t.Errorf("%d codes used, want 1", usedN)
		}
		e.tx(t, func(s Store) error { return s.DeleteRecoveryCodes(e.ctx, "per_ada") })
		e.tx(t, func(s Store) error { return s.DeleteRecoveryCodes(e.ctx, "per_ada") }) // none left: no error
		if list, _ := e.Reader().RecoveryCodesOf(e.ctx, "per_ada"); len(list) != 0 {
			t.Errorf("%d codes after DeleteRecoveryCodes", len(list))
		}
		if list, _ := e.Reader().RecoveryCodesOf(e.ctx, "per_bob"); len(list) != 10 {
			t.Errorf("Bob has %d codes after Ada's were deleted, want 10", len(list))
		}
		// Outside a transaction the set is replaced whole, too.
		must(t, e.Writer().ReplaceRecoveryCodes(e.ctx, "per_ada", old[:3], at(4*time.Hour)))
		if list, _ := e.Reader().RecoveryCodesOf(e.ctx, "per_ada"); len(list) != 3 {
			t.Errorf("%d codes after a replace through the writer, want 3", len(list))
		}
	}},
	{"RecoveryCodes/UseRace", func(t *testing.T, e *env) {
		hashes := codeHashes(10, "rc")
		e.tx(t, func(s Store) error { return s.ReplaceRecoveryCodes(e.ctx, "per_ada", hashes, at(0)) })
		look := func(s Store) error { _, err := s.RecoveryCodesOf(e.ctx, "per_ada"); return err }
		winners := e.race(t, 4, look, func(s Store, i int) (bool, error) {
			return s.UseRecoveryCode(e.ctx, "per_ada", hashes[5], at(time.Duration(i+1)*time.Minute))
		})
		if len(winners) != 1 {
			t.Fatalf("winners = %v, want exactly one", winners)
		}
	}},
	{"EraseAuth/RemovesFactors", func(t *testing.T, e *env) {
		seed := func(person string) {
			e.tx(t, func(s Store) error {
				return errorsJoin(
					s.CreateAccount(e.ctx, newAccount(person)),
					s.CreatePasskey(e.ctx, newPasskey("cred_1_"+person, person, at(0))),
					s.CreatePasskey(e.ctx, newPasskey("cred_2_"+person, person, at(time.Second))),
					s.PutTOTP(e.ctx, &auth.TOTP{PersonID: person, SecretEnc: randomBytes(48), CreatedAt: at(0)}),
					s.ReplaceRecoveryCodes(e.ctx, person, codeHashes(10, person), at(0)),
				)
			})
		}
		seed("per_keep")
		seed("per_gone")
		e.tx(t, func(s Store) error { return s.EraseAuth(e.ctx, []string{"per_gone"}) })
		r := e.Reader()
		for _, id := range []string{"cred_1_per_gone", "cred_2_per_gone"} {
			_, err := r.PasskeyByID(e.ctx, id)
			wantCode(t, err, onramp.ENOTFOUND, "erased person's passkey "+id)
		}
		_, err := r.TOTPOf(e.ctx, "per_gone")
		wantCode(t, err, onramp.ENOTFOUND, "erased person's TOTP")
		if list, err := r.RecoveryCodesOf(e.ctx, "per_gone"); err != nil || len(list) != 0 {
			t.Errorf("erased person's recovery codes = %d, %v", len(list), err)
		}
		if list, err := r.PasskeysOf(e.ctx, "per_keep"); err != nil || len(list) != 2 {
			t.Errorf("kept person's passkeys = %d, %v", len(list), err)
		}
		if _, err := r.TOTPOf(e.ctx, "per_keep"); err != nil {
			t.Errorf("kept person's TOTP: %v", err)
		}
		if list, err := r.RecoveryCodesOf(e.ctx, "per_keep"); err != nil || len(list) != 10 {
			t.Errorf("kept person's recovery codes = %d, %v", len(list), err)
		}
	}},
	{"PruneAuth/DropsAbandonedTOTPEnrolment", func(t *testing.T, e *env) {
		confirmed := at(time.Minute)
		e.tx(t, func(s Store) error {
			return errorsJoin(
				s.PutTOTP(e.ctx, &auth.TOTP{PersonID: "per_abandoned", SecretEnc: randomBytes(48), CreatedAt: at(0)}),
				s.PutTOTP(e.ctx, &auth.TOTP{PersonID: "per_confirmed", SecretEnc: randomBytes(48), ConfirmedAt: &confirmed, CreatedAt: at(0)}),
				s.PutTOTP(e.ctx, &auth.TOTP{PersonID: "per_recent", SecretEnc: randomBytes(48), CreatedAt: at(2 * time.Hour)}),
			)
		})
		e.tx(t, func(s Store) error { return s.PruneAuth(e.ctx, at(3*time.Hour), at(time.Hour)) })
		_, err := e.Reader().TOTPOf(e.ctx, "per_abandoned")
		wantCode(t, err, onramp.ENOTFOUND, "an enrolment never confirmed, begun before the cutoff")
		for _, p := range []string{"per_confirmed", "per_recent"} {
			if _, err := e.Reader().TOTPOf(e.ctx, p); err != nil {
				t.Errorf("%s's TOTP after PruneAuth: %v", p, err)
			}
		}
	}},
}
