package auth_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/identity"
)

// Password recovery, password change and profile edits, on real SQLite.

const newPassword = "a brand new passphrase 42"

// recoverTo runs StartRecovery for email on a new recovery flow.
func (r *rig) recoverTo(email string) (string, *auth.Step) {
	r.t.Helper()
	ref := r.start(auth.FlowRecovery, "")
	step, err := r.acc.StartRecovery(context.Background(), auth.RecoveryParams{FlowRef: ref, Email: email, Info: r.info})
	if err != nil {
		r.t.Fatalf("StartRecovery(%s): %v", email, err)
	}
	return ref, step
}

func (r *rig) passwordWorks(email, password string) bool {
	r.t.Helper()
	_, err := r.acc.SignInPassword(context.Background(), auth.PasswordParams{FlowRef: r.start(auth.FlowSignIn, ""), Email: email, Password: password, Info: r.info})
	return err == nil
}

func (r *rig) audited(personID, action string) bool {
	r.t.Helper()
	es, err := r.acc.Audit(context.Background(), auth.AuditQuery{PersonID: personID, Action: action})
	if err != nil {
		r.t.Fatal(err)
	}
	return len(es) > 0
}

func TestRecoveryByCode(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	g := r.signUp("ada@example.com", goodPassword, "")
	other := r.signUp("ada@example.com", goodPassword, "") // a sign-up of an account signs in: a second session

	ref, step := r.recoverTo("Ada@Example.com")
	if step.Next != auth.StepVerifyEmail {
		t.Fatalf("StartRecovery step = %+v", step)
	}
	code, _ := r.lastCode("ada@example.com")
	if m := r.mail.to("ada@example.com"); !strings.Contains(m[len(m)-1].Subject, "password reset") {
		t.Errorf("subject = %q, want a password reset email", m[len(m)-1].Subject)
	}
	// Before the code, no new password is taken.
	if _, _, err := r.acc.ResetPassword(ctx, auth.ResetPasswordParams{FlowRef: ref, Password: newPassword, Info: r.info}); err == nil {
		t.Fatal("ResetPassword before the code was redeemed: no error")
	}
	step, err := r.acc.VerifyEmailCode(ctx, auth.VerifyCodeParams{FlowRef: ref, Code: code, Info: r.info})
	if err != nil || step.Next != auth.StepNewPassword {
		t.Fatalf("VerifyEmailCode = %+v, %v; want new_password", step, err)
	}
	// A proven recovery flow is no sign-in: Complete refuses it.
	if _, err := r.acc.Complete(ctx, ref, r.info); err == nil {
		t.Fatal("Complete on the new_password step made a session")
	}
	if _, _, err := r.acc.ResetPassword(ctx, auth.ResetPasswordParams{FlowRef: ref, Password: "password", Info: r.info}); onramp.ErrorCode(err) != onramp.EINVALID || auth.ErrorField(err) != auth.FieldPassword {
		t.Fatalf("weak password: %v, want EINVALID on the password field", err)
	}
	step, ng, err := r.acc.ResetPassword(ctx, auth.ResetPasswordParams{FlowRef: ref, Password: newPassword, Info: r.info})
	if err != nil || step.Next != auth.StepDone || ng == nil {
		t.Fatalf("ResetPassword = %+v, %v, %v", step, ng, err)
	}
	if ng.Session.ID == g.Session.ID || ng.Session.ID == other.Session.ID || ng.Session.PersonID != g.Account.PersonID {
		t.Errorf("reset session %+v: want a new session of the person", ng.Session)
	}
	for _, old := range []*auth.Grant{g, other} {
		if _, err := r.acc.CheckSession(ctx, old.Secret); err == nil {
			t.Errorf("session %s still live after the reset", old.Session.ID)
		}
	}
	if _, err := r.acc.CheckSession(ctx, ng.Secret); err != nil {
		t.Errorf("new session: %v", err)
	}
	// The flow is spent.
	if _, _, err := r.acc.ResetPassword(ctx, auth.ResetPasswordParams{FlowRef: ref, Password: newPassword + "x", Info: r.info}); err == nil {
		t.Error("the recovery flow reset the password twice")
	}
	if r.passwordWorks("ada@example.com", goodPassword) || !r.passwordWorks("ada@example.com", newPassword) {
		t.Error("after the reset the old password should fail and the new one work")
	}
	r.deliver()
	if !r.audited(g.Account.PersonID, "auth.password_reset") {
		t.Error("no auth.password_reset audit entry")
	}
	if !slices.Contains(r.tl.names(g.Account.Subject), "auth.password_reset") {
		t.Errorf("timeline %v lacks auth.password_reset", r.tl.names(g.Account.Subject))
	}
}

func TestRecoveryByLink(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	g := r.signUp("ada@example.com", goodPassword, "")
	r.recoverTo("ada@example.com")
	_, link := r.lastCode("ada@example.com")
	step, ref, err := r.acc.RedeemLink(ctx, auth.LinkParams{Token: link, Info: r.info})
	if err != nil || step.Next != auth.StepNewPassword {
		t.Fatalf("RedeemLink = %+v, %v; want new_password", step, err)
	}
	_, ng, err := r.acc.ResetPassword(ctx, auth.ResetPasswordParams{FlowRef: ref, Password: newPassword, Info: r.info})
	if err != nil || ng == nil {
		t.Fatalf("ResetPassword: %v", err)
	}
	if _, err := r.acc.CheckSession(ctx, g.Secret); err == nil {
		t.Error("the session from before the reset is still live")
	}
	if _, _, err := r.acc.RedeemLink(ctx, auth.LinkParams{Token: link, Info: r.info}); err == nil {
		t.Error("the link worked twice")
	}
}

func TestRecoverySameAnswerForEveryEmail(t *testing.T) {
	r := newRig(t, nil)
	r.signUp("account@example.com", goodPassword, "")
	r.observe(`{}`, identity.Key{Type: identity.Email, Value: "known@example.com"})
	var answers []string
	for _, email := range []string{"account@example.com", "known@example.com", "nobody@example.com"} {
		r.deliver()
		before := len(r.mail.to(email))
		_, step := r.recoverTo(email)
		step.FlowID, step.Email = "", ""
		b, _ := json.Marshal(step)
		answers = append(answers, string(b))
		r.deliver()
		if n := len(r.mail.to(email)) - before; n != 1 {
			t.Errorf("%s: %d emails, want exactly 1", email, n)
		}
	}
	if answers[0] != answers[1] || answers[1] != answers[2] {
		t.Errorf("answers differ by email: %v", answers)
	}
	// Only the account gets a code; the others get the sign-up note.
	if m := r.mail.to("nobody@example.com"); codeRE.MatchString(m[0].Text) {
		t.Errorf("an address without an account got a code:\n%s", m[0].Text)
	}
}

// A code proves only the address it was sent to: a recovery flow moved
// to another address after its code was sent cannot use that code.
func TestRecoveryCodeProvesOnlyItsAddress(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	r.signUp("victim@example.com", goodPassword, "")
	r.signUp("mallory@example.com", goodPassword, "")
	ref, _ := r.recoverTo("mallory@example.com")
	code, _ := r.lastCode("mallory@example.com")
	if _, err := r.acc.StartRecovery(ctx, auth.RecoveryParams{FlowRef: ref, Email: "victim@example.com", Info: r.info}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.acc.VerifyEmailCode(ctx, auth.VerifyCodeParams{FlowRef: ref, Code: code, Info: r.info}); err == nil {
		t.Fatal("mallory's code proved victim's address")
	}
	if !r.passwordWorks("victim@example.com", goodPassword) {
		t.Error("victim's password changed")
	}
}

func TestRecoveryWithTOTPAsksSecondFactorFirst(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	secret, _, _ := r.withTOTP("ada@example.com")
	ref, _ := r.recoverTo("ada@example.com")
	code, _ := r.lastCode("ada@example.com")
	// The email alone does not change the password of an account the
	// app protects: the second factor comes first.
	step, err := r.acc.VerifyEmailCode(ctx, auth.VerifyCodeParams{FlowRef: ref, Code: code, Info: r.info})
	if err != nil || step.Next != auth.StepMFA {
		t.Fatalf("VerifyEmailCode = %+v, %v; want the mfa step", step, err)
	}
	if _, _, err := r.acc.ResetPassword(ctx, auth.ResetPasswordParams{FlowRef: ref, Password: newPassword, Info: r.info}); err == nil {
		t.Fatal("ResetPassword before the second factor: no error")
	}
	if _, err := r.acc.Complete(ctx, ref, r.info); err == nil {
		t.Fatal("Complete on the mfa step of a recovery made a session")
	}
	step, err = r.acc.VerifySecondFactor(ctx, auth.SecondFactorParams{FlowRef: ref, Code: codeAt(t, secret, r.clock.Now()), Info: r.info})
	if err != nil || step.Next != auth.StepNewPassword {
		t.Fatalf("VerifySecondFactor = %+v, %v; want new_password", step, err)
	}
	if _, err := r.acc.Complete(ctx, ref, r.info); err == nil {
		t.Fatal("Complete after the second factor of a recovery made a session without a new password")
	}
	step, g, err := r.acc.ResetPassword(ctx, auth.ResetPasswordParams{FlowRef: ref, Password: newPassword, Info: r.info})
	if err != nil || g == nil || step.Next != auth.StepDone || g.Session.AAL != 2 {
		t.Fatalf("ResetPassword = %+v, %+v, %v; want an AAL2 session", step, g, err)
	}
	if !r.passwordWorks("ada@example.com", newPassword) {
		t.Error("the new password does not work")
	}
}

func TestStartRecoveryNeedsARecoveryFlow(t *testing.T) {
	r := newRig(t, nil)
	_, err := r.acc.StartRecovery(context.Background(), auth.RecoveryParams{FlowRef: r.start(auth.FlowSignIn, ""), Email: "a@example.com", Info: r.info})
	if onramp.ErrorCode(err) != onramp.EINVALID {
		t.Fatalf("StartRecovery on a sign-in flow: %v", err)
	}
}

func TestChangePassword(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	g := r.signUp("ada@example.com", goodPassword, "")
	other := r.signUp("ada@example.com", goodPassword, "")

	if _, err := r.acc.ChangePassword(ctx, auth.ChangePasswordParams{Session: g.Session, New: newPassword, Info: r.info}); auth.ErrorField(err) != auth.FieldCurrentPassword {
		t.Fatalf("no current password: %v", err)
	}
	if _, err := r.acc.ChangePassword(ctx, auth.ChangePasswordParams{Session: g.Session, Current: goodPassword, New: "password", Info: r.info}); auth.ErrorField(err) != auth.FieldNewPassword {
		t.Fatalf("weak new password: %v", err)
	}
	ng, err := r.acc.ChangePassword(ctx, auth.ChangePasswordParams{Session: g.Session, Current: goodPassword, New: newPassword, Info: r.info})
	if err != nil {
		t.Fatal(err)
	}
	if ng.Session.ID == g.Session.ID || ng.Session.PersonID != g.Session.PersonID {
		t.Errorf("rotated session %+v", ng.Session)
	}
	for _, old := range []*auth.Grant{g, other} {
		if _, err := r.acc.CheckSession(ctx, old.Secret); err == nil {
			t.Errorf("session %s live after the change", old.Session.ID)
		}
	}
	if _, err := r.acc.CheckSession(ctx, ng.Secret); err != nil {
		t.Errorf("rotated session: %v", err)
	}
	if !r.passwordWorks("ada@example.com", newPassword) {
		t.Error("the new password does not work")
	}
	r.deliver()
	if !r.audited(g.Account.PersonID, "auth.password_changed") {
		t.Error("no auth.password_changed audit entry")
	}
	if !slices.Contains(r.tl.names(g.Account.Subject), "auth.password_changed") {
		t.Errorf("timeline %v lacks auth.password_changed", r.tl.names(g.Account.Subject))
	}
}

// Wrong current passwords count against the email's sign-in limits: a
// stolen session cannot guess its way to the password.
func TestChangePasswordWrongCurrentIsLimited(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	g := r.signUp("ada@example.com", goodPassword, "")
	var limited error
	for i := 0; i < 10 && limited == nil; i++ {
		_, err := r.acc.ChangePassword(ctx, auth.ChangePasswordParams{Session: g.Session, Current: "wrong password 1", New: newPassword, Info: r.info})
		switch onramp.ErrorCode(err) {
		case onramp.ERATELIMITED:
			limited = err
		case onramp.EINVALID:
			if auth.ErrorField(err) != auth.FieldCurrentPassword {
				t.Fatalf("attempt %d: %v", i, err)
			}
		default:
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if limited == nil {
		t.Fatal("ten wrong current passwords and no limit")
	}
	// During the backoff even the right one is refused, and the sign-in
	// form shares the limit.
	if _, err := r.acc.ChangePassword(ctx, auth.ChangePasswordParams{Session: g.Session, Current: goodPassword, New: newPassword, Info: r.info}); onramp.ErrorCode(err) != onramp.ERATELIMITED {
		t.Fatalf("right password during the backoff: %v", err)
	}
	if r.passwordWorks("ada@example.com", goodPassword) {
		t.Error("sign-in not limited after wrong current passwords")
	}
	if !r.audited(g.Account.PersonID, "auth.password_change_failed") {
		t.Error("no auth.password_change_failed audit entry")
	}
}

func TestUpdateProfile(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	g := r.signUp("ada@example.com", goodPassword, "")
	if err := r.acc.UpdateProfile(ctx, auth.UpdateProfileParams{Session: g.Session, Name: strings.Repeat("x", 201), Info: r.info}); auth.ErrorField(err) != auth.FieldName {
		t.Fatalf("long name: %v", err)
	}
	if err := r.acc.UpdateProfile(ctx, auth.UpdateProfileParams{Session: g.Session, Name: "  Ada Lovelace ", Info: r.info}); err != nil {
		t.Fatal(err)
	}
	p, err := r.ids.Person(ctx, g.Account.PersonID)
	if err != nil {
		t.Fatal(err)
	}
	var traits map[string]any
	_ = json.Unmarshal(p.Person.Traits, &traits)
	if traits["name"] != "Ada Lovelace" {
		t.Errorf("traits = %s", p.Person.Traits)
	}
	r.deliver()
	if !r.audited(g.Account.PersonID, "account.profile_updated") {
		t.Error("no account.profile_updated audit entry")
	}
	if !slices.Contains(r.tl.names(g.Account.Subject), "account.profile_updated") {
		t.Errorf("timeline %v lacks account.profile_updated", r.tl.names(g.Account.Subject))
	}
}
