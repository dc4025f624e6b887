package auth_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// provenFlow runs a sign-up up to the proven email and returns the flow
// reference, not yet completed.
func (r *rig) provenFlow(email string) string {
	r.t.Helper()
	ctx := context.Background()
	ref := r.start(auth.FlowSignUp, "")
	if _, err := r.acc.SignUp(ctx, auth.SignUpParams{FlowRef: ref, Email: email, Info: r.info}); err != nil {
		r.t.Fatalf("SignUp: %v", err)
	}
	code, _ := r.lastCode(email)
	if step, err := r.acc.VerifyEmailCode(ctx, auth.VerifyCodeParams{FlowRef: ref, Code: code, Info: r.info}); err != nil || step.Next != auth.StepDone {
		r.t.Fatalf("VerifyEmailCode = %+v, %v", step, err)
	}
	return ref
}

// TestContinueTicket: a proven flow gives a ticket that makes the flow's
// session once; only the ticket's hash is stored; a second redemption,
// the flow's own reference afterwards, and an unfinished flow are refused.
func TestContinueTicket(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()

	unfinished := r.start(auth.FlowSignIn, "")
	if _, err := r.acc.IssueTicket(ctx, unfinished); onramp.ErrorCode(err) != onramp.EFORBIDDEN {
		t.Errorf("IssueTicket of an unproven flow = %v, want EFORBIDDEN", err)
	}

	ref := r.provenFlow("tick@example.com")
	ticket, err := r.acc.IssueTicket(ctx, ref)
	if err != nil || !strings.HasPrefix(ticket, "tkt_") || len(ticket) < 40 {
		t.Fatalf("IssueTicket = %q, %v", ticket, err)
	}
	// The row holds the ticket's SHA-256, never the ticket.
	sum := sha256.Sum256([]byte(ticket))
	c, err := r.db.Reader().CodeByLinkHash(ctx, base64.RawURLEncoding.EncodeToString(sum[:]))
	if err != nil || c.Purpose != auth.CodeContinue || c.MaxAttempts != 1 || !c.ExpiresAt.Equal(r.clock.Now().Add(time.Minute)) {
		t.Fatalf("stored ticket = %+v, %v", c, err)
	}
	if _, err := r.db.Reader().CodeByLinkHash(ctx, ticket); onramp.ErrorCode(err) != onramp.ENOTFOUND {
		t.Errorf("the ticket itself is stored: %v", err)
	}
	// A ticket is not a magic link.
	if _, _, err := r.acc.RedeemLink(ctx, auth.LinkParams{Token: ticket, Info: r.info}); err == nil {
		t.Error("RedeemLink took a continue ticket")
	}

	g, err := r.acc.RedeemTicket(ctx, ticket, r.info)
	if err != nil || g.Secret == "" || g.Account.PrimaryEmail != "tick@example.com" {
		t.Fatalf("RedeemTicket = %+v, %v", g, err)
	}
	if ses, err := r.acc.CheckSession(ctx, g.Secret); err != nil || ses.ID != g.Session.ID {
		t.Errorf("the ticket's session does not check: %v", err)
	}
	if _, err := r.acc.RedeemTicket(ctx, ticket, r.info); onramp.ErrorCode(err) != onramp.EINVALID {
		t.Errorf("second RedeemTicket = %v, want EINVALID", err)
	}
	if _, err := r.acc.Complete(ctx, ref, r.info); onramp.ErrorCode(err) != onramp.ENOTFOUND {
		t.Errorf("Complete after the ticket = %v, want the flow gone", err)
	}
	for _, bad := range []string{"", "tkt_", "tkt_nope", "lnk_" + ticket[4:], strings.Repeat("tkt_x", 50)} {
		if _, err := r.acc.RedeemTicket(ctx, bad, r.info); onramp.ErrorCode(err) != onramp.EINVALID {
			t.Errorf("RedeemTicket(%q) = %v, want EINVALID", bad, err)
		}
	}
}

// TestContinueTicketExpires: a ticket lives 60 seconds.
func TestContinueTicketExpires(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	ref := r.provenFlow("late@example.com")
	old, err := r.acc.IssueTicket(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	r.clock.Add(61 * time.Second)
	if _, err := r.acc.RedeemTicket(ctx, old, r.info); onramp.ErrorCode(err) != onramp.EINVALID {
		t.Fatalf("RedeemTicket after 61 s = %v, want EINVALID", err)
	}
	// The flow is still proven: a fresh ticket works within its minute.
	fresh, err := r.acc.IssueTicket(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	r.clock.Add(59 * time.Second)
	if _, err := r.acc.RedeemTicket(ctx, fresh, r.info); err != nil {
		t.Fatalf("RedeemTicket after 59 s = %v", err)
	}
}

// TestContinueTicketRace: two browsers racing with one ticket, or with two
// tickets of one flow, get one session between them.
func TestContinueTicketRace(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	ref := r.provenFlow("race@example.com")
	a, err := r.acc.IssueTicket(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.acc.IssueTicket(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for _, tk := range []string{a, a, b, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.acc.RedeemTicket(ctx, tk, r.info); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if onramp.ErrorCode(err) != onramp.EINVALID {
				t.Errorf("losing RedeemTicket = %v, want EINVALID", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d redemptions made a session, want 1", wins)
	}
}

// TestFlowClient: the client of a flow by its id alone; unknown ids are
// not found.
func TestFlowClient(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	f, _, err := r.acc.StartFlow(ctx, auth.StartFlowParams{Kind: auth.FlowSignIn, ClientID: "cli_x", AuthRequestID: "arq_y", Info: r.info})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := r.acc.FlowClient(ctx, f.ID); err != nil || c != "cli_x" {
		t.Errorf("FlowClient = %q, %v", c, err)
	}
	for _, id := range []string{"", "flw_nope", "arq_y", f.ID + "x"} {
		if _, err := r.acc.FlowClient(ctx, id); onramp.ErrorCode(err) != onramp.ENOTFOUND {
			t.Errorf("FlowClient(%q) = %v, want ENOTFOUND", id, err)
		}
	}
}
