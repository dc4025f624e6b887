package main

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/oidcop"
)

type cliMailer struct {
	mu   sync.Mutex
	sent []auth.Email
}

func (m *cliMailer) Send(_ context.Context, e auth.Email) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, e)
	return nil
}

// signUp makes an account on the data folder through the normal sign-up
// proof (the code read from the outbox), and answers the flow reference.
func (c *cli) signUp(email string) string {
	c.t.Helper()
	ctx := context.Background()
	a := c.app()
	if err := a.openAccounts(ctx); err != nil {
		c.t.Fatal(err)
	}
	_, ref, err := a.accounts.StartFlow(ctx, auth.StartFlowParams{Kind: auth.FlowSignUp})
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := a.accounts.SignUp(ctx, auth.SignUpParams{FlowRef: ref, Email: email}); err != nil {
		c.t.Fatal(err)
	}
	m := &cliMailer{}
	ob := &auth.Outbox{Store: a.eng.read, InTx: func(ctx context.Context, fn func(auth.TxStore) error) error {
		return a.eng.inTxRetrying(ctx, func(s store) error { return fn(s) })
	}, Clock: a.clock, Log: a.log, Mailer: m}
	if _, err := ob.RunOnce(ctx); err != nil {
		c.t.Fatal(err)
	}
	if len(m.sent) != 1 {
		c.t.Fatalf("sign-up mails: %+v", m.sent)
	}
	code := regexp.MustCompile(`(?m)^(\d{6})$`).FindStringSubmatch(m.sent[0].Text)
	if code == nil {
		c.t.Fatalf("no code in %s", m.sent[0].Text)
	}
	if _, err := a.accounts.VerifyEmailCode(ctx, auth.VerifyCodeParams{FlowRef: ref, Code: code[1]}); err != nil {
		c.t.Fatal(err)
	}
	return ref
}

func TestStaffCommands(t *testing.T) {
	c := newCLI(t)
	c.signUp("ann@example.com")
	c.signUp("bob@example.com")

	var list []struct {
		PersonID string `json:"person_id"`
		Email    string `json:"email"`
		Role     string `json:"role"`
	}
	c.ok(&list, "staff", "list", "--json")
	if len(list) != 0 {
		t.Fatalf("staff before any: %+v", list)
	}
	// An email without an account gets an invitation; --print-link
	// prints its link instead of emailing it.
	code, out, errOut := c.run("staff", "add", "--email", "new@example.com", "--role", "admin", "--print-link")
	if code != 0 || !strings.Contains(out, "/auth/invite?token=inv_") {
		t.Errorf("staff add --print-link: %d %s%s", code, out, errOut)
	}
	var invited struct {
		Invited struct {
			Email string `json:"email"`
			Role  string `json:"role"`
			Link  string `json:"link"`
		} `json:"invited"`
	}
	c.ok(&invited, "staff", "add", "--email", "new@example.com", "--role", "support", "--json")
	if invited.Invited.Email != "new@example.com" || invited.Invited.Role != "support" || invited.Invited.Link != "" {
		t.Errorf("staff add --json for an invitation: %+v", invited)
	}
	c.fails("role must be one of", "staff", "add", "--email", "ann@example.com", "--role", "root")
	c.fails("--email and --role are required", "staff", "add", "--email", "ann@example.com")
	c.ok(nil, "staff", "add", "--email", "ann@example.com", "--role", "owner")
	var added struct {
		PersonID string `json:"person_id"`
		Role     string `json:"role"`
	}
	c.ok(&added, "staff", "add", "--email", "bob@example.com", "--role", "support", "--json")
	if added.Role != "support" || added.PersonID == "" {
		t.Errorf("staff add --json: %+v", added)
	}
	c.ok(&list, "staff", "list", "--json")
	if len(list) != 2 {
		t.Fatalf("staff list: %+v", list)
	}
	code, out, _ = c.run("staff", "list")
	if code != 0 || !strings.Contains(out, "ann@example.com") || !strings.Contains(out, "owner") {
		t.Errorf("staff list: %d %s", code, out)
	}

	c.fails("last owner", "staff", "set-role", "ann@example.com", "--role", "admin")
	c.fails("last owner", "staff", "remove", "ann@example.com")
	c.fails("No such person", "staff", "remove", "cus@example.com")
	c.ok(nil, "staff", "set-role", added.PersonID, "--role", "marketer")
	c.ok(&list, "staff", "list", "--json")
	for _, m := range list {
		if m.Email == "bob@example.com" && m.Role != "marketer" {
			t.Errorf("bob after set-role: %+v", m)
		}
	}
	c.ok(nil, "staff", "remove", "bob@example.com")
	c.ok(&list, "staff", "list", "--json")
	if len(list) != 1 || list[0].Email != "ann@example.com" {
		t.Errorf("staff after remove: %+v", list)
	}

	var entries []auth.AuditEntry
	c.ok(&entries, "audit", "list", "--action", "staff.*", "--json")
	if len(entries) != 6 || entries[0].Action != "staff.removed" || entries[0].ActorType != auth.ActorSystem || entries[0].ActorID != "cli" {
		t.Errorf("staff audit: %+v", entries)
	}
}

// TestOIDCEndSessionAudit: a logout through end_session is audited with
// the request's IP and user agent.
func TestOIDCEndSessionAudit(t *testing.T) {
	c := newCLI(t)
	ref := c.signUp("ann@example.com")
	ctx := context.Background()
	a := c.app()
	if err := a.openAccounts(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.accounts.Complete(ctx, ref, auth.RequestInfo{}); err != nil {
		t.Fatal(err)
	}
	prof, err := findPerson(ctx, a, "email:ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	ses, err := a.accounts.Sessions(ctx, prof.Person.ID)
	if err != nil || len(ses) != 1 {
		t.Fatalf("sessions: %v %v", ses, err)
	}
	info := auth.RequestInfo{IP: "203.0.113.9", UserAgent: "rp-test"}
	if err := (oidcAccounts{a.accounts}).EndSession(ctx, oidcop.EndSession{SessionID: ses[0].ID, Info: info}); err != nil {
		t.Fatal(err)
	}
	es, err := a.accounts.Audit(ctx, auth.AuditQuery{Action: "auth.logged_out", Limit: 10})
	if err != nil || len(es) != 1 || es[0].IP != info.IP || es[0].UserAgent != info.UserAgent || es[0].SessionID != ses[0].ID {
		t.Errorf("logout audit: %+v %v", es, err)
	}
}
