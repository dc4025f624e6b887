package auth_test

import (
	"context"
	"testing"

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
