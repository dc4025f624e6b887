package auth_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// The rules the headless API adds to the hosted flows: a password reset
// that ends in a continue ticket, and passkey ceremonies on a property's
// own origin. Real SQLite, as everywhere in auth.

// TestResetPasswordForTicket: the headless reset changes the password and
// ends every session like the hosted one, but makes no session itself:
// the flow is left done, and only its continue ticket signs the browser
// in. A second reset of the same flow is refused.
func TestResetPasswordForTicket(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	g := r.signUp("ada@example.com", goodPassword, "")
	ref, _ := r.recoverTo("ada@example.com")
	code, _ := r.lastCode("ada@example.com")
	if step, err := r.acc.VerifyEmailCode(ctx, auth.VerifyCodeParams{FlowRef: ref, Code: code, Info: r.info}); err != nil || step.Next != auth.StepNewPassword {
		t.Fatalf("VerifyEmailCode = %+v, %v", step, err)
	}
	if _, err := r.acc.ResetPasswordForTicket(ctx, auth.ResetPasswordParams{FlowRef: ref, Password: "password", Info: r.info}); auth.ErrorField(err) != auth.FieldPassword {
		t.Fatalf("weak password: %v, want an error on the password field", err)
	}
	step, err := r.acc.ResetPasswordForTicket(ctx, auth.ResetPasswordParams{FlowRef: ref, Password: newPassword, Info: r.info})
	if err != nil || step.Next != auth.StepDone {
		t.Fatalf("ResetPasswordForTicket = %+v, %v", step, err)
	}
	if _, err := r.acc.CheckSession(ctx, g.Secret); err == nil {
		t.Error("the session from before the reset still works")
	}
	if !r.passwordWorks("ada@example.com", newPassword) || r.passwordWorks("ada@example.com", goodPassword) {
		t.Error("after the reset the new password must work and the old one must not")
	}
	if !r.audited(g.Account.PersonID, "auth.password_reset") {
		t.Error("no auth.password_reset in the audit log")
	}
	if _, err := r.acc.ResetPasswordForTicket(ctx, auth.ResetPasswordParams{FlowRef: ref, Password: "yet another passphrase 7", Info: r.info}); err == nil {
		t.Error("a second reset of the same flow worked")
	}
	ticket, err := r.acc.IssueTicket(ctx, ref)
	if err != nil {
		t.Fatalf("IssueTicket after the reset: %v", err)
	}
	ng, err := r.acc.RedeemTicket(ctx, ticket, r.info)
	if err != nil || ng.Session.PersonID != g.Account.PersonID || !slices.Contains(ng.Session.AMR, "email_code") {
		t.Fatalf("RedeemTicket = %+v, %v", ng, err)
	}
	r.deliver()
	if names := r.tl.names(g.Account.Subject); !slices.Contains(names, "auth.password_reset") || names[len(names)-1] != "auth.logged_in" {
		t.Errorf("timeline = %v, want auth.password_reset then auth.logged_in", names)
	}
}

// TestPasskeyOnAPropertyOrigin: a ceremony begun for a property's origin
// takes an answer made on that origin and on no other (not even Onramp's
// own); a ceremony of the hosted pages still refuses the property's
// origin; opaque or malformed origins are refused before anything is
// stored.
func TestPasskeyOnAPropertyOrigin(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	g := r.signUp("ada@example.com", goodPassword, "")
	a := r.authenticator(true)
	_, cred := r.addPasskey(g, a, "Laptop")
	const shop = "https://shop.example.com"

	signIn := func(bind, answerFrom string) (*auth.Step, error) {
		t.Helper()
		ref := r.start(auth.FlowSignIn, "")
		opts, err := r.acc.BeginPasskeyLogin(ctx, auth.PasskeyLoginParams{FlowRef: ref, Origin: bind, Info: r.info})
		if err != nil {
			t.Fatalf("BeginPasskeyLogin(%q): %v", bind, err)
		}
		a.Origin = answerFrom
		resp, err := a.Get(opts, cred)
		if err != nil {
			t.Fatal(err)
		}
		return r.acc.FinishPasskeyLogin(ctx, auth.FinishPasskeyLoginParams{FlowRef: ref, Response: resp, Info: r.info})
	}
	if step, err := signIn(shop, shop); err != nil || step.Next != auth.StepDone {
		t.Fatalf("a ceremony on the shop's origin, answered there = %+v, %v", step, err)
	}
	for _, c := range []struct{ bind, from string }{
		{shop, "https://evil.example"},
		{shop, "https://id.example.com"},
		{"", shop},
		{"https://id.example.com", shop},
	} {
		if _, err := signIn(c.bind, c.from); onramp.ErrorCode(err) != onramp.EUNAUTHORIZED {
			t.Errorf("bound to %q, answered from %q: %v, want EUNAUTHORIZED", c.bind, c.from, err)
		}
	}
	for _, bad := range []string{"null", "https://shop.example.com/", "shop.example.com", "ftp://shop.example.com", "https://u@shop.example.com"} {
		ref := r.start(auth.FlowSignIn, "")
		if _, err := r.acc.BeginPasskeyLogin(ctx, auth.PasskeyLoginParams{FlowRef: ref, Origin: bad, Info: r.info}); onramp.ErrorCode(err) != onramp.EINVALID {
			t.Errorf("origin %q: %v, want EINVALID", bad, err)
		}
	}
}

// TestRelatedOrigins: the /.well-known/webauthn document lists Onramp's
// own origin first, then the properties' web origins in order, without
// wildcards, duplicates or non-origins, and stops adding origins of new
// registrable domains at the five browsers read (example, one, two,
// three, four here: five.test is left out).
func TestRelatedOrigins(t *testing.T) {
	r := newRig(t, nil)
	doc, err := r.acc.RelatedOrigins([]string{
		"https://shop.example.com", "*", "null", "https://shop.example.com", "https://a.test/path",
		"https://one.test", "https://two.test", "https://three.test", "https://four.test", "https://five.test", "https://www.one.test",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "https://id.example.com https://shop.example.com https://one.test https://two.test https://three.test https://four.test https://www.one.test"
	if got := strings.Join(doc.Origins, " "); got != want {
		t.Errorf("origins = %s\nwant      %s", got, want)
	}
}
