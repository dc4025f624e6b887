package auth_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/identity"
	"github.com/onramp-dev/onramp/sqlite"
)

// accountsRig is Accounts over a real, migrated SQLite database, with an
// outbox that delivers into sent.
type accountsRig struct {
	t        *testing.T
	accounts *auth.Accounts
	outbox   *auth.Outbox
	mailer   *mailbox
}

type mailbox struct{ sent []auth.Email }

func (m *mailbox) Send(ctx context.Context, e auth.Email) error {
	m.sent = append(m.sent, e)
	return nil
}

func newAccountsRig(t *testing.T) *accountsRig {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "onramp.db"), sqlite.Options{Synchronous: "OFF"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	clock := onramp.SystemClock{}
	ids := identity.NewService(db.Reader(), func(ctx context.Context, fn func(identity.Store) error) error {
		return db.InTx(ctx, func(q *sqlite.Queries) error { return fn(q) })
	}, clock, log)
	hasher, err := auth.NewArgon2id(auth.Argon2idConfig{Params: auth.Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	inTx := func(ctx context.Context, fn func(auth.TxStore) error) error {
		return db.InTx(ctx, func(q *sqlite.Queries) error { return fn(q) })
	}
	acc := auth.NewAccounts(auth.Config{Read: db.Reader(), InTx: inTx, Identity: ids, Clock: clock, Log: log, Hasher: hasher, PublicURL: "http://onramp.test"})
	if err := acc.Init(ctx); err != nil {
		t.Fatal(err)
	}
	mb := &mailbox{}
	return &accountsRig{t: t, accounts: acc, mailer: mb, outbox: &auth.Outbox{Store: db.Reader(), InTx: inTx, Clock: clock, Log: log, Mailer: mb}}
}

// deliver runs the outbox and returns the emails sent so far.
func (r *accountsRig) deliver() []auth.Email {
	r.t.Helper()
	for {
		n, err := r.outbox.RunOnce(context.Background())
		if err != nil {
			r.t.Fatal(err)
		}
		if n == 0 {
			return r.mailer.sent
		}
	}
}

func codeOf(t *testing.T, e auth.Email) string {
	t.Helper()
	for _, line := range strings.Split(e.Text, "\n") {
		if len(line) == 6 && strings.Trim(line, "0123456789") == "" {
			return line
		}
	}
	t.Fatalf("no code in %q", e.Text)
	return ""
}

// TestResendCodeKeepsSignUp: resending during a sign-up sends another
// verification code (not the "no account yet" note that a sign-in code
// request for a new address gets), keeps the password and traits the
// sign-up waits to write, and only the newest code counts.
func TestResendCodeKeepsSignUp(t *testing.T) {
	r := newAccountsRig(t)
	ctx := context.Background()
	info := auth.RequestInfo{IP: "192.0.2.1"}
	_, ref, err := r.accounts.StartFlow(ctx, auth.StartFlowParams{Kind: auth.FlowSignUp, Info: info})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.accounts.ResendCode(ctx, auth.ResendParams{FlowRef: ref, Info: info}); onramp.ErrorCode(err) != onramp.EINVALID {
		t.Errorf("resend before any email: %v, want EINVALID", err)
	}
	if _, err := r.accounts.SignUp(ctx, auth.SignUpParams{FlowRef: ref, Email: "ann@example.com", Password: "a long passphrase here",
		Traits: json.RawMessage(`{"name":"Ann"}`), Info: info}); err != nil {
		t.Fatal(err)
	}
	step, err := r.accounts.ResendCode(ctx, auth.ResendParams{FlowRef: ref, Info: info})
	if err != nil || step.Next != auth.StepVerifyEmail || step.Email != "ann@example.com" {
		t.Fatalf("resend: %+v %v", step, err)
	}
	sent := r.deliver()
	if len(sent) != 2 || !strings.Contains(sent[1].Subject, "verification code") {
		t.Fatalf("emails: %+v", sent)
	}
	first, second := codeOf(t, sent[0]), codeOf(t, sent[1])
	if first != second {
		if _, err := r.accounts.VerifyEmailCode(ctx, auth.VerifyCodeParams{FlowRef: ref, Code: first, Info: info}); auth.ErrorField(err) != auth.FieldCode {
			t.Errorf("the older code: %v (field %q), want a code error", err, auth.ErrorField(err))
		}
	}
	step, err = r.accounts.VerifyEmailCode(ctx, auth.VerifyCodeParams{FlowRef: ref, Code: second, Info: info})
	if err != nil || step.Next != auth.StepDone {
		t.Fatalf("verify the newest code: %+v %v", step, err)
	}
	g, err := r.accounts.Complete(ctx, ref, info)
	if err != nil {
		t.Fatal(err)
	}
	// The password of the sign-up was kept through the resend.
	_, pref, _ := r.accounts.StartFlow(ctx, auth.StartFlowParams{Kind: auth.FlowSignIn, Info: info})
	if step, err := r.accounts.SignInPassword(ctx, auth.PasswordParams{FlowRef: pref, Email: "ann@example.com", Password: "a long passphrase here", Info: info}); err != nil || step.Next != auth.StepDone {
		t.Errorf("password after resend: %+v %v", step, err)
	}
	if g.Account.PrimaryEmail != "ann@example.com" {
		t.Errorf("account %+v", g.Account)
	}
}

// TestErrorFieldNamesTheField: the errors of a form name the field they
// are about, and still carry their code and message.
func TestErrorFieldNamesTheField(t *testing.T) {
	r := newAccountsRig(t)
	ctx := context.Background()
	_, ref, err := r.accounts.StartFlow(ctx, auth.StartFlowParams{Kind: auth.FlowSignUp})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		email, password, field string
	}{
		{"not an email", "", auth.FieldEmail},
		{"bo@example.com", "short", auth.FieldPassword},
		{"bo@example.com", "password", auth.FieldPassword},
	} {
		_, err := r.accounts.SignUp(ctx, auth.SignUpParams{FlowRef: ref, Email: tc.email, Password: tc.password})
		if auth.ErrorField(err) != tc.field || onramp.ErrorCode(err) != onramp.EINVALID || onramp.ErrorMessage(err) == "Internal error." {
			t.Errorf("SignUp(%q, %q): %v, field %q; want an EINVALID error on %q", tc.email, tc.password, err, auth.ErrorField(err), tc.field)
		}
	}
	_, pref, _ := r.accounts.StartFlow(ctx, auth.StartFlowParams{Kind: auth.FlowSignIn})
	_, err = r.accounts.SignInPassword(ctx, auth.PasswordParams{FlowRef: pref, Email: "nobody@example.com", Password: "whatever it is"})
	if auth.ErrorField(err) != "" || onramp.ErrorCode(err) != onramp.EUNAUTHORIZED {
		t.Errorf("wrong password: %v, field %q; want EUNAUTHORIZED on no field (it must not say which one was wrong)", err, auth.ErrorField(err))
	}
}
