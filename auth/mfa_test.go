package auth_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"image/png"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// TOTP, recovery codes, the "mfa" step, session rotation and staff MFA,
// on real SQLite. The rig's clock starts on a 30-second boundary, so
// codeAt(secret, r.clock.Now()+d) is the code of the step d away.

func codeAt(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// withTOTP signs up and sets up an authenticator app; it returns the
// secret, the recovery codes and the session after the rotation. The
// clock is then moved to the next step, so the confirming code is spent.
func (r *rig) withTOTP(email string) (string, []string, *auth.Grant) {
	r.t.Helper()
	ctx := context.Background()
	g := r.signUp(email, goodPassword, "")
	enr, err := r.acc.EnrollTOTP(ctx, auth.SessionParams{Session: g.Session, Info: r.info})
	if err != nil {
		r.t.Fatalf("EnrollTOTP: %v", err)
	}
	done, err := r.acc.ConfirmTOTP(ctx, auth.FactorCodeParams{Session: g.Session, Code: codeAt(r.t, enr.Secret, r.clock.Now()), Info: r.info})
	if err != nil {
		r.t.Fatalf("ConfirmTOTP: %v", err)
	}
	r.clock.Add(30 * time.Second)
	r.deliver()
	return enr.Secret, done.RecoveryCodes, done.Grant
}

// passwordToMFA signs in with the password and expects the "mfa" step.
func (r *rig) passwordToMFA(email string, info auth.RequestInfo) string {
	r.t.Helper()
	ref := r.start(auth.FlowSignIn, "")
	step, err := r.acc.SignInPassword(context.Background(), auth.PasswordParams{FlowRef: ref, Email: email, Password: goodPassword, Info: info})
	if err != nil || step.Next != auth.StepMFA {
		r.t.Fatalf("SignInPassword = %+v, %v; want the mfa step", step, err)
	}
	return ref
}

func TestTOTPEnrolConfirmAndSignIn(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	g := r.signUp("ada@example.com", goodPassword, "")
	enr, err := r.acc.EnrollTOTP(ctx, auth.SessionParams{Session: g.Session, Info: r.info})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enr.URL, "otpauth://totp/Acme:ada@example.com?") || !strings.Contains(enr.URL, "secret="+enr.Secret) {
		t.Errorf("otpauth URL = %q", enr.URL)
	}
	qr, ok := strings.CutPrefix(enr.QR, "data:image/png;base64,")
	if !ok {
		t.Fatalf("QR = %.40q…, want a PNG data URL", enr.QR)
	}
	raw, err := base64.StdEncoding.DecodeString(qr)
	if err != nil {
		t.Fatal(err)
	}
	if img, err := png.Decode(bytes.NewReader(raw)); err != nil || img.Bounds().Dx() < 200 {
		t.Errorf("QR image: %v", err)
	}
	// Not a factor until confirmed: sign-in goes straight through.
	ref := r.start(auth.FlowSignIn, "")
	if step, err := r.acc.SignInPassword(ctx, auth.PasswordParams{FlowRef: ref, Email: "ada@example.com", Password: goodPassword, Info: r.info}); err != nil || step.Next != auth.StepDone {
		t.Fatalf("sign-in with an unconfirmed app = %+v, %v; want done", step, err)
	}
	if _, err := r.acc.ConfirmTOTP(ctx, auth.FactorCodeParams{Session: g.Session, Code: wrongCode(codeAt(t, enr.Secret, r.clock.Now())), Info: r.info}); onramp.ErrorCode(err) != onramp.EINVALID {
		t.Fatalf("ConfirmTOTP with a wrong code: %v", err)
	}
	done, err := r.acc.ConfirmTOTP(ctx, auth.FactorCodeParams{Session: g.Session, Code: codeAt(t, enr.Secret, r.clock.Now()), Info: r.info})
	if err != nil {
		t.Fatal(err)
	}
	if len(done.RecoveryCodes) != 10 || len(slices.Compact(slices.Sorted(slices.Values(done.RecoveryCodes)))) != 10 {
		t.Errorf("recovery codes = %q, want 10 distinct", done.RecoveryCodes)
	}
	for _, c := range done.RecoveryCodes {
		if !regexp.MustCompile(`^[A-Z2-7]{5}-[A-Z2-7]{5}$`).MatchString(c) {
			t.Errorf("recovery code %q is not XXXXX-XXXXX base32", c)
		}
	}
	// Enrolling rotated the session: the old cookie is dead, the new one
	// carries the factor just proven.
	if _, err := r.acc.CheckSession(ctx, g.Secret); err == nil {
		t.Error("the session TOTP was set up from still works")
	}
	ses, err := r.acc.CheckSession(ctx, done.Grant.Secret)
	if err != nil || ses.ID == g.Session.ID || ses.AAL != 2 || !slices.Contains(ses.AMR, "otp") {
		t.Fatalf("rotated session = %+v, %v; want a new id at AAL2 with otp", ses, err)
	}
	if _, err := r.acc.EnrollTOTP(ctx, auth.SessionParams{Session: ses, Info: r.info}); onramp.ErrorCode(err) != onramp.ECONFLICT {
		t.Errorf("enrolling over a confirmed app: %v, want a conflict", err)
	}
	st, err := r.acc.MFA(ctx, g.Account.PersonID)
	if err != nil || !st.TOTP || st.RecoveryCodesLeft != 10 {
		t.Errorf("MFA status = %+v, %v", st, err)
	}
	r.deliver()
	if names := r.tl.names(g.Account.Subject); !slices.Contains(names, "auth.mfa_enrolled") {
		t.Errorf("timeline = %v, want auth.mfa_enrolled", names)
	}
	if a, _ := r.acc.Audit(ctx, auth.AuditQuery{PersonID: g.Account.PersonID, Action: "auth.mfa_enrolled"}); len(a) != 1 || a[0].SessionID != g.Session.ID {
		t.Errorf("audit of the enrolment = %+v", a)
	}

	// Now a password is not enough: the flow stops at "mfa" and Complete
	// refuses until the second factor passes.
	r.clock.Add(30 * time.Second)
	ref = r.passwordToMFA("ada@example.com", r.info)
	if _, err := r.acc.Complete(ctx, ref, r.info); onramp.ErrorCode(err) != onramp.EFORBIDDEN {
		t.Fatalf("Complete on the mfa step: %v, want forbidden", err)
	}
	step, err := r.acc.VerifySecondFactor(ctx, auth.SecondFactorParams{FlowRef: ref, Code: codeAt(t, enr.Secret, r.clock.Now()), Info: r.info})
	if err != nil || step.Next != auth.StepDone {
		t.Fatalf("VerifySecondFactor = %+v, %v", step, err)
	}
	g2, err := r.acc.Complete(ctx, ref, r.info)
	if err != nil || g2.Session.AAL != 2 || !slices.Equal(g2.Session.AMR, []string{"pwd", "otp"}) {
		t.Fatalf("Complete = %+v, %v; want AAL2 with pwd+otp", g2, err)
	}
}

// wrongCode is a 6-digit code that is not c.
func wrongCode(c string) string {
	if c == "123456" {
		return "654321"
	}
	return "123456"
}

func TestEmailCodeSignInNeedsSecondFactor(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	secret, _, _ := r.withTOTP("ada@example.com")
	for _, viaLink := range []bool{false, true} {
		ref := r.start(auth.FlowSignIn, "")
		if _, err := r.acc.SendEmailCode(ctx, auth.SendCodeParams{FlowRef: ref, Email: "ada@example.com", Info: r.info}); err != nil {
			t.Fatal(err)
		}
		code, link := r.lastCode("ada@example.com")
		var step *auth.Step
		var err error
		if viaLink {
			step, ref, err = r.acc.RedeemLink(ctx, auth.LinkParams{Token: link, Info: r.info})
		} else {
			step, err = r.acc.VerifyEmailCode(ctx, auth.VerifyCodeParams{FlowRef: ref, Code: code, Info: r.info})
		}
		if err != nil || step.Next != auth.StepMFA {
			t.Fatalf("email proof (link %v) = %+v, %v; want the mfa step", viaLink, step, err)
		}
		if _, err := r.acc.Complete(ctx, ref, r.info); onramp.ErrorCode(err) != onramp.EFORBIDDEN {
			t.Fatalf("Complete before the second factor: %v", err)
		}
		if _, err := r.acc.VerifySecondFactor(ctx, auth.SecondFactorParams{FlowRef: ref, Code: codeAt(t, secret, r.clock.Now()), Info: r.info}); err != nil {
			t.Fatal(err)
		}
		g, err := r.acc.Complete(ctx, ref, r.info)
		if err != nil || g.Session.AAL != 2 {
			t.Fatalf("Complete = %+v, %v", g, err)
		}
		r.clock.Add(30 * time.Second)
	}
}

func TestTOTPCodeWorksOnce(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	secret, _, _ := r.withTOTP("ada@example.com")
	code := codeAt(t, secret, r.clock.Now())
	ref := r.passwordToMFA("ada@example.com", r.info)
	if _, err := r.acc.VerifySecondFactor(ctx, auth.SecondFactorParams{FlowRef: ref, Code: code, Info: r.info}); err != nil {
		t.Fatal(err)
	}
	// The same code, seen over a shoulder, in another flow within its 90 s.
	r.clock.Add(10 * time.Second)
	ref = r.passwordToMFA("ada@example.com", r.info)
	if _, err := r.acc.VerifySecondFactor(ctx, auth.SecondFactorParams{FlowRef: ref, Code: code, Info: r.info}); onramp.ErrorCode(err) != onramp.EINVALID {
		t.Fatalf("a used code again: %v, want refused", err)
	}
	// Nor the code of the step before, once a later step was used.
	if _, err := r.acc.VerifySecondFactor(ctx, auth.SecondFactorParams{FlowRef: ref, Code: codeAt(t, secret, r.clock.Now().Add(-30*time.Second)), Info: r.info}); onramp.ErrorCode(err) != onramp.EINVALID {
		t.Fatalf("an older step's code after a newer one: %v, want refused", err)
	}
	r.clock.Add(30 * time.Second)
	if _, err := r.acc.VerifySecondFactor(ctx, auth.SecondFactorParams{FlowRef: ref, Code: codeAt(t, secret, r.clock.Now()), Info: r.info}); err != nil {
		t.Fatalf("the next step's code: %v", err)
	}
}

func TestTOTPClockSkew(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	secret, _, _ := r.withTOTP("ada@example.com")
	for _, c := range []struct {
		skew time.Duration
		ok   bool
	}{
		{-30 * time.Second, true}, {30 * time.Second, true},
		{-90 * time.Second, false}, {90 * time.Second, false},
		{0, true},
	} {
		// Every case in steps no earlier case used.
		r.clock.Add(5 * time.Minute)
		ref := r.passwordToMFA("ada@example.com", r.info)
		_, err := r.acc.VerifySecondFactor(ctx, auth.SecondFactorParams{FlowRef: ref, Code: codeAt(t, secret, r.clock.Now().Add(c.skew)), Info: r.info})
		if (err == nil) != c.ok {
			t.Errorf("phone clock %v off: %v, want accepted %v", c.skew, err, c.ok)
		}
	}
}

func TestRecoveryCodes(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	secret, codes, g := r.withTOTP("ada@example.com")
	// Typed lower-case without the dash: still the code.
	typed := strings.ToLower(strings.ReplaceAll(codes[3], "-", ""))
	ref := r.passwordToMFA("ada@example.com", r.info)
	if step, err := r.acc.VerifySecondFactor(ctx, auth.SecondFactorParams{FlowRef: ref, Code: typed, Info: r.info}); err != nil || step.Next != auth.StepDone {
		t.Fatalf("a recovery code = %+v, %v", step, err)
	}
	gr, err := r.acc.Complete(ctx, ref, r.info)
	if err != nil || gr.Session.AAL != 2 || !slices.Contains(gr.Session.AMR, "rec") {
		t.Fatalf("Complete with a recovery code = %+v, %v", gr, err)
	}
	ref = r.passwordToMFA("ada@example.com", r.info)
	if _, err := r.acc.VerifySecondFactor(ctx, auth.SecondFactorParams{FlowRef: ref, Code: codes[3], Info: r.info}); onramp.ErrorCode(err) != onramp.EINVALID {
		t.Fatalf("a recovery code twice: %v, want refused", err)
	}
	if st, _ := r.acc.MFA(ctx, g.Account.PersonID); st.RecoveryCodesLeft != 9 {
		t.Errorf("codes left = %d, want 9", st.RecoveryCodesLeft)
	}
	if a, _ := r.acc.Audit(ctx, auth.AuditQuery{PersonID: g.Account.PersonID, Action: "auth.recovery_code_used"}); len(a) != 1 {
		t.Errorf("audit of the used code: %d rows", len(a))
	}
	// New codes replace the old ones, and need a current code.
	if _, err := r.acc.RegenerateRecoveryCodes(ctx, auth.FactorCodeParams{Session: g.Session, Code: "000000", Info: r.info}); onramp.ErrorCode(err) != onramp.EINVALID {
		t.Fatalf("regenerate with a wrong code: %v", err)
	}
	fresh, err := r.acc.RegenerateRecoveryCodes(ctx, auth.FactorCodeParams{Session: g.Session, Code: codeAt(t, secret, r.clock.Now()), Info: r.info})
	if err != nil || len(fresh) != 10 {
		t.Fatalf("RegenerateRecoveryCodes = %q, %v", fresh, err)
	}
	if _, err := r.acc.VerifySecondFactor(ctx, auth.SecondFactorParams{FlowRef: ref, Code: codes[0], Info: r.info}); onramp.ErrorCode(err) != onramp.EINVALID {
		t.Fatalf("an old code after regenerating: %v, want refused", err)
	}
	if _, err := r.acc.VerifySecondFactor(ctx, auth.SecondFactorParams{FlowRef: ref, Code: fresh[9], Info: r.info}); err != nil {
		t.Fatalf("a new code: %v", err)
	}
}

func TestDisableTOTP(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	secret, codes, g := r.withTOTP("ada@example.com")
	if _, err := r.acc.DisableTOTP(ctx, auth.FactorCodeParams{Session: g.Session, Code: wrongCode(codeAt(t, secret, r.clock.Now())), Info: r.info}); onramp.ErrorCode(err) != onramp.EINVALID {
		t.Fatalf("disable with a wrong code: %v", err)
	}
	g2, err := r.acc.DisableTOTP(ctx, auth.FactorCodeParams{Session: g.Session, Code: codes[0], Info: r.info})
	if err != nil {
		t.Fatalf("disable with a recovery code: %v", err)
	}
	if _, err := r.acc.CheckSession(ctx, g.Secret); err == nil {
		t.Error("the session TOTP was turned off from still works")
	}
	if _, err := r.acc.CheckSession(ctx, g2.Secret); err != nil {
		t.Errorf("the rotated session: %v", err)
	}
	if st, _ := r.acc.MFA(ctx, g.Account.PersonID); st.TOTP || st.RecoveryCodesLeft != 0 {
		t.Errorf("after disabling: %+v, want no app and no codes", st)
	}
	ref := r.start(auth.FlowSignIn, "")
	if step, err := r.acc.SignInPassword(ctx, auth.PasswordParams{FlowRef: ref, Email: "ada@example.com", Password: goodPassword, Info: r.info}); err != nil || step.Next != auth.StepDone {
		t.Errorf("password sign-in after disabling = %+v, %v; want done", step, err)
	}
	r.deliver()
	if names := r.tl.names(g.Account.Subject); !slices.Contains(names, "auth.mfa_removed") {
		t.Errorf("timeline = %v, want auth.mfa_removed", names)
	}
}

func TestSecondFactorIsRateLimited(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	secret, _, _ := r.withTOTP("ada@example.com")
	right := codeAt(t, secret, r.clock.Now())
	for i := 1; i <= 6; i++ {
		// A new IP and a fresh, right password each time: neither resets
		// the second factor's counter.
		info := auth.RequestInfo{IP: "198.51.100." + string(rune('0'+i))}
		ref := r.passwordToMFA("ada@example.com", info)
		_, err := r.acc.VerifySecondFactor(ctx, auth.SecondFactorParams{FlowRef: ref, Code: wrongCode(right), Info: info})
		want := onramp.EINVALID
		if i == 6 {
			want = onramp.ERATELIMITED
		}
		if got := onramp.ErrorCode(err); got != want {
			t.Fatalf("wrong code %d: %v, want %s", i, err, want)
		}
	}
	ref := r.passwordToMFA("ada@example.com", r.info)
	_, err := r.acc.VerifySecondFactor(ctx, auth.SecondFactorParams{FlowRef: ref, Code: right, Info: r.info})
	var oe *onramp.Error
	if !errors.As(err, &oe) || oe.Code != onramp.ERATELIMITED {
		t.Fatalf("the right code during the backoff: %v, want rate limited", err)
	}
	r.clock.Add(oe.RetryAfter + time.Second)
	if _, err := r.acc.VerifySecondFactor(ctx, auth.SecondFactorParams{FlowRef: ref, Code: codeAt(t, secret, r.clock.Now()), Info: r.info}); err != nil {
		t.Fatalf("the right code after the backoff: %v", err)
	}
}

func TestStaffMFA(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	link, _ := r.acc.OwnerLink(ctx)
	owner, err := r.acc.ClaimOwner(ctx, auth.ClaimOwnerParams{Token: link[strings.Index(link, "token=")+6:], Email: "owner@example.com", Password: goodPassword, Info: r.info})
	if err != nil {
		t.Fatal(err)
	}
	person := r.signUp("ada@example.com", goodPassword, "")
	if r.acc.StaffNeedsMFA(ctx, owner.Session) {
		t.Error("staff need MFA before anyone asked for it")
	}
	byOwner := auth.ChangedBy{Role: auth.RoleOwner, Actor: auth.AuditEntry{ActorType: auth.ActorStaff, ActorID: owner.Account.PersonID, SessionID: owner.Session.ID}}
	if err := r.acc.RequireStaffMFA(ctx, true, auth.ChangedBy{Role: auth.RoleAdmin, Actor: byOwner.Actor}); onramp.ErrorCode(err) != onramp.EFORBIDDEN {
		t.Fatalf("an admin turning staff MFA on: %v, want forbidden", err)
	}
	if err := r.acc.RequireStaffMFA(ctx, true, byOwner); err != nil {
		t.Fatal(err)
	}
	if on, err := r.acc.StaffMFARequired(ctx); err != nil || !on {
		t.Fatalf("StaffMFARequired = %v, %v", on, err)
	}
	if !r.acc.StaffNeedsMFA(ctx, owner.Session) {
		t.Error("a staff session at AAL1 passes with MFA required")
	}
	if r.acc.StaffNeedsMFA(ctx, person.Session) {
		t.Error("a session of someone who is not staff is held to the staff rule")
	}
	// Setting up an app from that session gives a session that passes.
	enr, err := r.acc.EnrollTOTP(ctx, auth.SessionParams{Session: owner.Session, Info: r.info})
	if err != nil {
		t.Fatal(err)
	}
	done, err := r.acc.ConfirmTOTP(ctx, auth.FactorCodeParams{Session: owner.Session, Code: codeAt(t, enr.Secret, r.clock.Now()), Info: r.info})
	if err != nil {
		t.Fatal(err)
	}
	if done.Grant.Staff == nil || r.acc.StaffNeedsMFA(ctx, done.Grant.Session) {
		t.Errorf("the rotated staff session (AAL %d) still needs MFA", done.Grant.Session.AAL)
	}
	if a, _ := r.acc.Audit(ctx, auth.AuditQuery{Action: "staff.mfa_required"}); len(a) != 1 || a[0].ActorID != owner.Account.PersonID {
		t.Errorf("audit of the setting = %+v", a)
	}
}

func TestRotateSession(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	g := r.signUp("ada@example.com", goodPassword, "")
	if err := r.acc.AddSessionClient(ctx, g.Session.ID, "cli_a"); err != nil {
		t.Fatal(err)
	}
	r.clock.Add(time.Hour)
	g2, err := r.acc.RotateSession(ctx, auth.RotateSessionParams{Session: g.Session, Reason: "test", Info: r.info})
	if err != nil {
		t.Fatal(err)
	}
	if g2.Session.ID == g.Session.ID || g2.Secret == g.Secret || !slices.Equal(g2.Session.AMR, g.Session.AMR) ||
		!g2.Session.AuthTime.Equal(g.Session.AuthTime) || !g2.Session.ExpiresAt.Equal(g.Session.ExpiresAt) {
		t.Errorf("rotated = %+v, from %+v: want a new id and secret, same methods, auth time and end", g2.Session, g.Session)
	}
	if _, err := r.acc.CheckSession(ctx, g.Secret); err == nil {
		t.Error("the old session still works")
	}
	// Logging out of the new session still reaches the clients the old one
	// signed into.
	var logouts []auth.BackchannelLogout
	r.outbox.Logout = logoutFunc(func(l auth.BackchannelLogout) { logouts = append(logouts, l) })
	if _, err := r.acc.SignOut(ctx, g2.Secret, r.info); err != nil {
		t.Fatal(err)
	}
	r.deliver()
	if len(logouts) != 1 || logouts[0].ClientID != "cli_a" || logouts[0].SessionID != g2.Session.ID {
		t.Errorf("back-channel logouts = %+v", logouts)
	}
	// A revoked session cannot be rotated back to life.
	if _, err := r.acc.RotateSession(ctx, auth.RotateSessionParams{Session: g.Session, Reason: "test", Info: r.info}); onramp.ErrorCode(err) != onramp.EUNAUTHORIZED {
		t.Errorf("rotating a revoked session: %v", err)
	}
}

// A flow that proves one person's factors and then another's does not
// carry the first person's methods over (no AAL2 from someone else's
// second factor).
func TestFlowSwitchingPersonStartsMethodsOver(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	secret, _, _ := r.withTOTP("eve@example.com")
	r.signUp("ada@example.com", goodPassword, "")
	ref := r.passwordToMFA("eve@example.com", r.info)
	if _, err := r.acc.VerifySecondFactor(ctx, auth.SecondFactorParams{FlowRef: ref, Code: codeAt(t, secret, r.clock.Now()), Info: r.info}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.acc.SignInPassword(ctx, auth.PasswordParams{FlowRef: ref, Email: "ada@example.com", Password: goodPassword, Info: r.info}); err != nil {
		t.Fatal(err)
	}
	g, err := r.acc.Complete(ctx, ref, r.info)
	if err != nil || g.Account.PrimaryEmail != "ada@example.com" || g.Session.AAL != 1 || !slices.Equal(g.Session.AMR, []string{"pwd"}) {
		t.Fatalf("Complete = %+v (%v); want Ada at AAL1 with pwd only", g.Session, err)
	}
}

// A setup begun and not confirmed can be shown again, with the same
// secret; a confirmed app is not "pending".
func TestPendingTOTP(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	g := r.signUp("ada@example.com", goodPassword, "")
	if _, err := r.acc.PendingTOTP(ctx, g.Account.PersonID); onramp.ErrorCode(err) != onramp.ENOTFOUND {
		t.Fatalf("PendingTOTP before a setup: %v", err)
	}
	enr, err := r.acc.EnrollTOTP(ctx, auth.SessionParams{Session: g.Session, Info: r.info})
	if err != nil {
		t.Fatal(err)
	}
	again, err := r.acc.PendingTOTP(ctx, g.Account.PersonID)
	if err != nil || again.Secret != enr.Secret || again.URL != enr.URL || again.QR != enr.QR {
		t.Fatalf("PendingTOTP = %+v, %v; want the same setup", again, err)
	}
	if _, err := r.acc.ConfirmTOTP(ctx, auth.FactorCodeParams{Session: g.Session, Code: codeAt(t, enr.Secret, r.clock.Now()), Info: r.info}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.acc.PendingTOTP(ctx, g.Account.PersonID); onramp.ErrorCode(err) != onramp.ENOTFOUND {
		t.Errorf("PendingTOTP after confirming: %v", err)
	}
}

// Signing in through an upstream provider is a first factor like any
// other: an account with an authenticator app still stops at "mfa".
func TestUpstreamSignInNeedsSecondFactor(t *testing.T) {
	u := newUpRig(t)
	secret, _, _ := u.withTOTP("ada@example.com")
	ref, code, state := u.startUpstream("google", auth.UpstreamIdentity{Subject: "g-ada", Email: "ada@example.com", EmailVerified: true})
	step, err := u.callback(ref, "google", code, state)
	if err != nil || step.Next != auth.StepMFA {
		t.Fatalf("upstream sign-in with an app on = %+v, %v; want the mfa step", step, err)
	}
	if _, err := u.acc.Complete(context.Background(), ref, u.info); onramp.ErrorCode(err) != onramp.EFORBIDDEN {
		t.Fatalf("Complete before the second factor: %v", err)
	}
	if _, err := u.acc.VerifySecondFactor(context.Background(), auth.SecondFactorParams{FlowRef: ref, Code: codeAt(t, secret, u.clock.Now()), Info: u.info}); err != nil {
		t.Fatal(err)
	}
	g, err := u.acc.Complete(context.Background(), ref, u.info)
	if err != nil || g.Session.AAL != 2 {
		t.Fatalf("Complete = %+v, %v", g, err)
	}
}
