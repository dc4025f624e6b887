package auth_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// TestResendCodeKeepsSignUp: resending during a sign-up sends another
// verification code (not the "no account yet" note that a sign-in code
// request for a new address gets), keeps the password and traits the
// sign-up waits to write, and only the newest code counts.
func TestResendCodeKeepsSignUp(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	ref := r.start(auth.FlowSignUp, "")
	if _, err := r.acc.ResendCode(ctx, auth.ResendParams{FlowRef: ref, Info: r.info}); onramp.ErrorCode(err) != onramp.EINVALID {
		t.Errorf("resend before any email: %v, want EINVALID", err)
	}
	if _, err := r.acc.SignUp(ctx, auth.SignUpParams{FlowRef: ref, Email: "ann@example.com", Password: goodPassword,
		Traits: json.RawMessage(`{"name":"Ann"}`), Info: r.info}); err != nil {
		t.Fatal(err)
	}
	first, _ := r.lastCode("ann@example.com")
	// A person presses "send a new code" a moment later; the newest code
	// is the one with the latest time.
	r.clock.Add(time.Second)
	step, err := r.acc.ResendCode(ctx, auth.ResendParams{FlowRef: ref, Info: r.info})
	if err != nil || step.Next != auth.StepVerifyEmail || step.Email != "ann@example.com" {
		t.Fatalf("resend: %+v %v", step, err)
	}
	second, _ := r.lastCode("ann@example.com")
	sent := r.mail.to("ann@example.com")
	if len(sent) != 2 || !strings.Contains(sent[1].Subject, "verification code") {
		t.Fatalf("emails: %+v", sent)
	}
	if first != second {
		if _, err := r.acc.VerifyEmailCode(ctx, auth.VerifyCodeParams{FlowRef: ref, Code: first, Info: r.info}); auth.ErrorField(err) != auth.FieldCode {
			t.Errorf("the older code: %v (field %q), want a code error", err, auth.ErrorField(err))
		}
	}
	step, err = r.acc.VerifyEmailCode(ctx, auth.VerifyCodeParams{FlowRef: ref, Code: second, Info: r.info})
	if err != nil || step.Next != auth.StepDone {
		t.Fatalf("verify the newest code: %+v %v", step, err)
	}
	g, err := r.acc.Complete(ctx, ref, r.info)
	if err != nil {
		t.Fatal(err)
	}
	prof, err := r.ids.Person(ctx, g.Account.PersonID)
	if err != nil || !strings.Contains(string(prof.Person.Traits), `"name":"Ann"`) {
		t.Errorf("traits after resend: %s %v", prof.Person.Traits, err)
	}
	// The sign-up's password was kept through the resend.
	pref := r.start(auth.FlowSignIn, "")
	if step, err := r.acc.SignInPassword(ctx, auth.PasswordParams{FlowRef: pref, Email: "ann@example.com", Password: goodPassword, Info: r.info}); err != nil || step.Next != auth.StepDone {
		t.Errorf("password after resend: %+v %v", step, err)
	}
}

// TestErrorFieldNamesTheField: the errors of a form name the field they
// are about, and still carry their code and message; a wrong
// email-or-password names neither.
func TestErrorFieldNamesTheField(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	ref := r.start(auth.FlowSignUp, "")
	for _, tc := range []struct {
		email, password, field string
	}{
		{"not an email", "", auth.FieldEmail},
		{"bo@example.com", "short", auth.FieldPassword},
		{"bo@example.com", "password", auth.FieldPassword},
	} {
		_, err := r.acc.SignUp(ctx, auth.SignUpParams{FlowRef: ref, Email: tc.email, Password: tc.password, Info: r.info})
		if auth.ErrorField(err) != tc.field || onramp.ErrorCode(err) != onramp.EINVALID || onramp.ErrorMessage(err) == "Internal error." {
			t.Errorf("SignUp(%q, %q): %v, field %q; want an EINVALID error on %q", tc.email, tc.password, err, auth.ErrorField(err), tc.field)
		}
	}
	_, err := r.acc.SignInPassword(ctx, auth.PasswordParams{FlowRef: r.start(auth.FlowSignIn, ""), Email: "nobody@example.com", Password: "whatever it is", Info: r.info})
	if auth.ErrorField(err) != "" || onramp.ErrorCode(err) != onramp.EUNAUTHORIZED {
		t.Errorf("wrong password: %v, field %q; want EUNAUTHORIZED on no field", err, auth.ErrorField(err))
	}
}
