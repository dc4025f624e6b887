package auth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// TestCodeOfAnEarlierAddressProvesNothing: a visitor asks for a sign-in
// code to their own address, then moves the same flow to someone else's
// address (a sign-up). The code and link of the first address must not
// prove the second one, or anyone could create (or, through an upstream
// link, take over) an account for an address they do not own.
func TestCodeOfAnEarlierAddressProvesNothing(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	r.signUp("mallory@example.com", goodPassword, "")
	ref := r.start(auth.FlowSignUp, "")
	if _, err := r.acc.SendEmailCode(ctx, auth.SendCodeParams{FlowRef: ref, Email: "mallory@example.com", Info: r.info}); err != nil {
		t.Fatal(err)
	}
	code, link := r.lastCode("mallory@example.com")
	if _, err := r.acc.SignUp(ctx, auth.SignUpParams{FlowRef: ref, Email: "victim@example.com", Password: "mallory's own password 42", Info: r.info}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.acc.VerifyEmailCode(ctx, auth.VerifyCodeParams{FlowRef: ref, Code: code, Info: r.info}); onramp.ErrorCode(err) != onramp.EINVALID {
		t.Fatalf("the code sent to mallory proved victim@: %v", err)
	}
	if _, _, err := r.acc.RedeemLink(ctx, auth.LinkParams{Token: link, Info: r.info}); onramp.ErrorCode(err) != onramp.EINVALID {
		t.Fatalf("the link sent to mallory proved victim@: %v", err)
	}
	if _, err := r.acc.Complete(ctx, ref, r.info); err == nil {
		t.Fatal("the flow finished")
	}
	// The code the victim got still works for them.
	victimCode, _ := r.lastCode("victim@example.com")
	if step, err := r.acc.VerifyEmailCode(ctx, auth.VerifyCodeParams{FlowRef: ref, Code: victimCode, Info: r.info}); err != nil || step.Next != auth.StepDone {
		t.Fatalf("the victim's own code: %+v, %v", step, err)
	}
}

// TestDeferredFlow: a deferred flow writes nothing until a step needs its
// row; its reference cannot be altered, made up or used past its expiry;
// a step that needs the row makes it and the same reference goes on
// working; state too long for a cookie is stored at once.
func TestDeferredFlow(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	r.signUp("dee@example.com", goodPassword, "")
	start := func(p auth.StartFlowParams) (*auth.Flow, string) {
		t.Helper()
		p.Kind, p.Info, p.Deferred = auth.FlowSignIn, r.info, true
		f, ref, err := r.acc.StartFlow(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return f, ref
	}
	stored := func(id string) bool {
		t.Helper()
		_, err := r.db.Reader().FlowByID(ctx, id)
		if err != nil && onramp.ErrorCode(err) != onramp.ENOTFOUND {
			t.Fatal(err)
		}
		return err == nil
	}

	f, ref := start(auth.StartFlowParams{AuthRequestID: "arq_1", AnonymousID: "anon-dee", Lang: "de"})
	if stored(f.ID) {
		t.Fatal("a deferred flow was written when it started")
	}
	got, err := r.acc.Flow(ctx, ref)
	if err != nil || got.ID != f.ID || got.Kind != auth.FlowSignIn || got.AuthRequestID != "arq_1" || got.AnonymousID != "anon-dee" ||
		got.Step != auth.StepEmail || !got.ExpiresAt.Equal(f.ExpiresAt) {
		t.Fatalf("Flow(deferred ref) = %+v, %v", got, err)
	}
	if !strings.HasPrefix(ref, f.ID+".") {
		t.Fatalf("the reference %q does not start with the flow id", ref)
	}

	// Altered, made up, expired: gone.
	for name, bad := range map[string]string{
		"other id":      "flw_06h0000000000000000000000." + ref[len(f.ID)+1:],
		"altered state": strings.Replace(ref, ".d.e", ".d.f", 1),
		"altered MAC":   ref[:len(ref)-2] + "xx",
		"no MAC":        ref[:strings.LastIndexByte(ref, '.')],
		"made-up state": f.ID + ".d.eyJrIjoic2lnbmluIiwiZSI6OTk5OTk5OTk5OTk5OTk5OTl9.x",
		"stored secret": f.ID + ".flw_secret",
		"state no dot":  f.ID + ".d.",
		"overlong":      ref + strings.Repeat("a", 600),
		"id alone":      f.ID,
	} {
		if _, err := r.acc.Flow(ctx, bad); onramp.ErrorCode(err) != onramp.ENOTFOUND {
			t.Errorf("%s: Flow = %v, want the flow gone", name, err)
		}
	}

	// A password that finishes the sign-in never writes the flow.
	_, g, err := r.acc.SignInPasswordSession(ctx, auth.PasswordParams{FlowRef: ref, Email: "dee@example.com", Password: goodPassword, Info: r.info})
	if err != nil || g == nil || g.AuthRequestID != "arq_1" {
		t.Fatalf("SignInPasswordSession = %+v, %v", g, err)
	}
	if stored(f.ID) {
		t.Error("a password sign-in wrote its deferred flow")
	}

	// A step that needs the row makes it, under the same reference.
	f, ref = start(auth.StartFlowParams{})
	if _, err := r.acc.SendEmailCode(ctx, auth.SendCodeParams{FlowRef: ref, Email: "dee@example.com", Info: r.info}); err != nil {
		t.Fatal(err)
	}
	if !stored(f.ID) {
		t.Fatal("sending a code did not store the flow")
	}
	code, _ := r.lastCode("dee@example.com")
	if step, err := r.acc.VerifyEmailCode(ctx, auth.VerifyCodeParams{FlowRef: ref, Code: code, Info: r.info}); err != nil || step.Next != auth.StepDone {
		t.Fatalf("VerifyEmailCode = %+v, %v", step, err)
	}
	if _, err := r.acc.Complete(ctx, ref, r.info); err != nil {
		t.Fatalf("Complete: %v", err)
	}

	// Once a row exists, it and only it counts: a link redeemed elsewhere
	// gives the flow a new secret, and the deferred reference is dead.
	_, ref = start(auth.StartFlowParams{})
	if _, err := r.acc.SendEmailCode(ctx, auth.SendCodeParams{FlowRef: ref, Email: "dee@example.com", Info: r.info}); err != nil {
		t.Fatal(err)
	}
	_, link := r.lastCode("dee@example.com")
	if _, _, err := r.acc.RedeemLink(ctx, auth.LinkParams{Token: link, Info: r.info}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.acc.Flow(ctx, ref); onramp.ErrorCode(err) != onramp.ENOTFOUND {
		t.Errorf("the asking tab's reference after the link was redeemed elsewhere: %v", err)
	}

	// Past its expiry the reference is gone.
	_, ref = start(auth.StartFlowParams{})
	r.clock.Add(31 * time.Minute)
	if _, err := r.acc.Flow(ctx, ref); onramp.ErrorCode(err) != onramp.ENOTFOUND {
		t.Errorf("an expired deferred reference: %v", err)
	}

	// State too long for a cookie: stored at once, as before.
	f, ref = start(auth.StartFlowParams{AnonymousID: strings.Repeat("a", 256), AuthRequestID: strings.Repeat("r", 200)})
	if !stored(f.ID) || len(ref) > 200 {
		t.Errorf("a flow with a long tracking id and request: stored %v, reference of %d bytes", stored(f.ID), len(ref))
	}
}
