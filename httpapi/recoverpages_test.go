package httpapi_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// Password recovery and the account page's password and profile forms,
// driven like a browser. Enumeration and CSRF rows for these forms are in
// authattack_test.go.

const resetPassword = "a brand new passphrase 42"

// startRecovery follows "Forgot your password?" from the sign-in page and
// asks for a reset email.
func (b *browser) startRecovery(t *testing.T, email string) *page {
	t.Helper()
	p := b.get("/auth/sign-in")
	link := find(p.doc, func(n *html.Node) bool { return n.Data == "a" && attr(n, "href") == "/auth/recover" })
	if len(link) != 1 {
		t.Fatalf("the sign-in page has no “Forgot your password?” link:\n%s", p.body)
	}
	p = b.get("/auth/recover")
	checkPage(t, "recover", p, "en")
	return b.submit(p.form(t, "/auth/recover"), "email", email)
}

func TestRecoveryByCodePage(t *testing.T) {
	s := newTestStack(t)
	ctx := context.Background()
	b := s.browser()
	wantAt(t, b.signUp("rae@example.com", "rae's old passphrase", ""), "/account")
	oldSession := b.cookie("onramp_session")
	laptop := s.browser()
	wantAt(t, laptop.signInPassword("rae@example.com", "rae's old passphrase"), "/account")

	x := s.browser()
	p := x.startRecovery(t, "rae@example.com")
	wantAt(t, p, "/auth/verify")
	ms := s.mails("rae@example.com")
	if !strings.Contains(ms[len(ms)-1].Subject, "password reset") {
		t.Fatalf("last email: %q, want the reset code", ms[len(ms)-1].Subject)
	}
	p = x.verify(p, s.lastCode("rae@example.com"))
	wantAt(t, p, "/auth/recover/password")
	checkPage(t, "new password", p, "en")
	if x.cookie("onramp_session") != "" {
		t.Fatal("a session before the new password was set")
	}
	// The policy applies, and the error points at the field.
	bad := x.submit(p.form(t, "/auth/recover/password"), "password", "password")
	if bad.status != http.StatusBadRequest || !strings.Contains(bad.body, `aria-describedby="password-hint password-error"`) {
		t.Fatalf("weak password: %d\n%s", bad.status, bad.body)
	}
	checkPage(t, "new password error", bad, "en")
	p = x.submit(bad.form(t, "/auth/recover/password"), "password", resetPassword)
	wantAt(t, p, "/account")
	ns := x.cookie("onramp_session")
	if ns == "" || ns == oldSession {
		t.Fatal("no new session after the reset")
	}
	// Every session from before is dead.
	for _, other := range []*browser{b, laptop} {
		if _, err := s.accounts.CheckSession(ctx, other.cookie("onramp_session")); err == nil {
			t.Error("a session from before the reset still works")
		}
	}
	wantAt(t, s.browser().signInPassword("rae@example.com", resetPassword), "/account")
}

func TestRecoveryByLinkPage(t *testing.T) {
	s := newTestStack(t)
	b := s.browser()
	wantAt(t, b.signUp("lin@example.com", "lin's old passphrase", ""), "/account")
	s.browser().startRecovery(t, "lin@example.com")
	// The link, opened on another device.
	phone := s.browser()
	p := phone.get("/auth/magic/" + s.lastLinkToken("lin@example.com"))
	p = phone.submit(p.form(t, "/auth/magic/"))
	wantAt(t, p, "/auth/recover/password")
	if !strings.Contains(p.body, "lin@example.com") {
		t.Errorf("the new-password page does not say whose password:\n%s", p.body)
	}
	wantAt(t, phone.submit(p.form(t, "/auth/recover/password"), "password", resetPassword), "/account")
	if _, err := s.accounts.CheckSession(context.Background(), b.cookie("onramp_session")); err == nil {
		t.Error("the old session still works")
	}
}

func TestNewPasswordPageNeedsProvenRecovery(t *testing.T) {
	s := newTestStack(t)
	x := s.browser()
	wantAt(t, x.get("/auth/recover/password"), "/auth/recover")
	x.startRecovery(t, "nobody@example.com")
	wantAt(t, x.get("/auth/recover/password"), "/auth/recover")
}

func TestChangePasswordPage(t *testing.T) {
	s := newTestStack(t)
	ctx := context.Background()
	b := s.browser()
	wantAt(t, b.signUp("cam@example.com", "cam's old passphrase", ""), "/account")
	laptop := s.browser()
	wantAt(t, laptop.signInPassword("cam@example.com", "cam's old passphrase"), "/account")
	before := b.cookie("onramp_session")
	beforeSes, err := s.accounts.CheckSession(ctx, before)
	if err != nil {
		t.Fatal(err)
	}

	p := b.get("/account")
	wrong := b.submit(p.form(t, "/account/password"), "current_password", "not my password", "new_password", resetPassword)
	if wrong.status != http.StatusBadRequest || !strings.Contains(wrong.body, "Your current password is not right.") || !strings.Contains(wrong.body, `id="current_password-error"`) {
		t.Fatalf("wrong current password: %d\n%s", wrong.status, wrong.body)
	}
	checkPage(t, "account password error", wrong, "en")
	p = b.submit(wrong.form(t, "/account/password"), "current_password", "cam's old passphrase", "new_password", resetPassword)
	wantAt(t, p, "/account")
	if !strings.Contains(p.body, "Your password is changed.") {
		t.Errorf("no notice after the change:\n%s", p.body)
	}
	after := b.cookie("onramp_session")
	ses, err := s.accounts.CheckSession(ctx, after)
	if err != nil || after == before || ses.ID == beforeSes.ID {
		t.Fatalf("after the change: session %v, %v; want a new id", ses, err)
	}
	for _, old := range []string{before, laptop.cookie("onramp_session")} {
		if _, err := s.accounts.CheckSession(ctx, old); err == nil {
			t.Error("a session from before the change still works")
		}
	}
	wantAt(t, s.browser().signInPassword("cam@example.com", resetPassword), "/account")
}

// Wrong current passwords hit the same limit as wrong sign-in passwords.
func TestChangePasswordPageLimited(t *testing.T) {
	s := newTestStack(t)
	b := s.browser()
	wantAt(t, b.signUp("lim@example.com", "lim's old passphrase", ""), "/account")
	var last *page
	for i := 0; i < 10; i++ {
		last = b.submit(b.get("/account").form(t, "/account/password"), "current_password", "guess number 1", "new_password", resetPassword)
		if last.status == http.StatusTooManyRequests {
			break
		}
	}
	if last.status != http.StatusTooManyRequests {
		t.Fatalf("ten wrong current passwords: last answer %d, want 429", last.status)
	}
	p := s.browser().signInPassword("lim@example.com", "lim's old passphrase")
	if p.status != http.StatusTooManyRequests {
		t.Errorf("sign-in after the guesses: %d, want 429", p.status)
	}
}

func TestProfilePage(t *testing.T) {
	s := newTestStack(t)
	b := s.browser()
	wantAt(t, b.signUp("pat@example.com", "", "Pat"), "/account")
	p := b.get("/account")
	f := p.form(t, "/account/profile")
	if f.values.Get("name") != "Pat" {
		t.Errorf("the profile form shows name %q, want Pat", f.values.Get("name"))
	}
	p = b.submit(f, "name", "Pat <b>Example</b>")
	wantAt(t, p, "/account")
	if facts := accountFacts(t, p); facts["Name"] != "Pat <b>Example</b>" {
		t.Errorf("account page says %v", facts)
	}
	if !strings.Contains(p.body, "Your profile is saved.") {
		t.Errorf("no notice:\n%s", p.body)
	}
}

// TestRecoveryEnumeration: the recovery form answers the same status and
// body for an unknown email, one known from tracking and an account's,
// and sends each exactly one email (a reset code only to the account).
func TestRecoveryEnumeration(t *testing.T) {
	s := newTestStack(t)
	if r := s.track("/v1/identify", `{"userId":"u-known","traits":{"email":"known@example.com"}}`); r.status != http.StatusOK {
		t.Fatalf("identify: %d %s", r.status, r.body)
	}
	acct := s.browser()
	wantAt(t, acct.signUp("acct@example.com", "the account passphrase", ""), "/account")
	mask := regexp.MustCompile(`value="[A-Za-z0-9_-]{43}"`)
	var firstStatus int
	var firstBody string
	emails := []string{"unknown@example.com", "known@example.com", "acct@example.com"}
	for i, email := range emails {
		before := len(s.mails(email))
		b := s.browser()
		p := b.submit(b.get("/auth/recover").form(t, "/auth/recover"), "email", email)
		body := mask.ReplaceAllString(strings.ReplaceAll(p.body, email, "EMAIL"), `value="TOKEN"`)
		if i == 0 {
			firstStatus, firstBody = p.status, body
		} else if p.status != firstStatus || body != firstBody {
			t.Errorf("%s answers %d, %s answered %d; bodies equal: %v\n%s\n---\n%s", email, p.status, emails[0], firstStatus, body == firstBody, body, firstBody)
		}
		ms := s.mails(email)
		if got := len(ms) - before; got != 1 {
			t.Errorf("%s: %d emails, want 1", email, got)
			continue
		}
		if reset := strings.Contains(ms[len(ms)-1].Subject, "password reset"); reset != (email == "acct@example.com") {
			t.Errorf("%s got %q", email, ms[len(ms)-1].Subject)
		}
	}
}

// TestRecoveryWithTOTPPage: for an account with an authenticator app the
// code page leads to the second-factor page, and only then to the new
// password; a recovery code of the app works there too.
func TestRecoveryWithTOTPPage(t *testing.T) {
	s := newTestStack(t)
	b := s.browser()
	wantAt(t, b.signUp("tia@example.com", "tia's old passphrase", ""), "/account")
	_, codes := setUpTOTP(t, s, b)
	x := s.browser()
	p := x.verify(x.startRecovery(t, "tia@example.com"), s.lastCode("tia@example.com"))
	wantAt(t, p, "/auth/mfa")
	p = x.submit(x.get("/auth/mfa").form(t, "/auth/mfa"), "code", codes[0])
	wantAt(t, p, "/auth/recover/password")
	wantAt(t, x.submit(p.form(t, "/auth/recover/password"), "password", resetPassword), "/account")
	if _, err := s.accounts.CheckSession(context.Background(), b.cookie("onramp_session")); err == nil {
		t.Error("the session from before the reset still works")
	}
}
