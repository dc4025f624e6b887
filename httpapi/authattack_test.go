package httpapi_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onramp-dev/onramp/auth"
)

// The attack rows of docs/design/auth.md §7 that the hosted pages answer:
// forged forms (CSRF), password guessing, email enumeration, script in
// traits and session fixation.

// authState is what a forged form must not change: the mails sent, the
// audit log (other than the refusals themselves), the sessions and the
// flow of the browser.
type authState struct {
	mails    int
	audit    []string
	sessions []string
	flowStep string
}

func (s *testStack) state(b *browser, personID string) authState {
	s.t.Helper()
	ctx := context.Background()
	st := authState{mails: len(s.mails(""))}
	entries, err := s.accounts.Audit(ctx, auth.AuditQuery{Limit: 1000})
	if err != nil {
		s.t.Fatal(err)
	}
	for _, e := range entries {
		if e.Action != "csrf.rejected" {
			st.audit = append(st.audit, e.ID)
		}
	}
	if personID != "" {
		ses, err := s.accounts.Sessions(ctx, personID)
		if err != nil {
			s.t.Fatal(err)
		}
		for _, x := range ses {
			if x.RevokedAt == nil {
				st.sessions = append(st.sessions, x.ID)
			}
		}
	}
	if f, err := s.accounts.Flow(ctx, b.cookie("onramp_flow")); err == nil {
		st.flowStep = f.Step + ":" + f.Email
	}
	return st
}

func (s *testStack) csrfRejections() int {
	s.t.Helper()
	entries, err := s.accounts.Audit(context.Background(), auth.AuditQuery{Action: "csrf.rejected", Limit: 1000})
	if err != nil {
		s.t.Fatal(err)
	}
	return len(entries)
}

// TestCSRFRefused: every form of the hosted pages, posted without its
// csrf field, with a wrong one, or from another site, answers 403, writes
// an audit row and changes nothing.
func TestCSRFRefused(t *testing.T) {
	s := newTestStack(t)
	ctx := context.Background()
	// A signed-in browser with a second session to revoke, and a person
	// with a password to sign in as.
	b := s.browser()
	wantAt(t, b.signUp("ivy@example.com", "ivy's long passphrase", ""), "/account")
	other := s.browser()
	wantAt(t, other.signInPassword("ivy@example.com", "ivy's long passphrase"), "/account")
	acc := accountByEmail(t, s, "ivy@example.com")
	// The new-password row recovers this account: ivy's sends are spent.
	var recovering *browser
	var recoveryForm form
	wantAt(t, s.browser().signUp("ned@example.com", "ned's long passphrase", ""), "/account")
	link, err := s.accounts.OwnerLink(ctx)
	if err != nil {
		t.Fatal(err)
	}
	setup, _ := url.Parse(link)

	type row struct {
		name string
		// prepare returns the browser and a valid form; the form is then
		// posted forged.
		prepare func() (*browser, form)
	}
	rows := []row{
		{"sign-in password", func() (*browser, form) {
			x := s.browser()
			return x, withValues(x.get("/auth/sign-in").form(t, "/auth/sign-in"), "email", "ivy@example.com", "password", "ivy's long passphrase", "action", "password")
		}},
		{"sign-in code", func() (*browser, form) {
			x := s.browser()
			return x, withValues(x.get("/auth/sign-in").form(t, "/auth/sign-in"), "email", "ivy@example.com", "action", "code")
		}},
		{"sign-up", func() (*browser, form) {
			x := s.browser()
			return x, withValues(x.get("/auth/sign-up").form(t, "/auth/sign-up"), "email", "new@example.com")
		}},
		{"verify", func() (*browser, form) {
			x := s.browser()
			p := x.submit(x.get("/auth/sign-in").form(t, "/auth/sign-in"), "email", "ivy@example.com", "action", "code")
			return x, withValues(p.form(t, "/auth/verify"), "code", s.lastCode("ivy@example.com"), "action", "verify")
		}},
		{"resend", func() (*browser, form) {
			x := s.browser()
			p := x.submit(x.get("/auth/sign-in").form(t, "/auth/sign-in"), "email", "ivy@example.com", "action", "code")
			return x, withValues(p.form(t, "/auth/verify"), "action", "resend")
		}},
		{"magic link", func() (*browser, form) {
			x := s.browser()
			x.submit(x.get("/auth/sign-in").form(t, "/auth/sign-in"), "email", "ivy@example.com", "action", "code")
			return x, x.get("/auth/magic/"+s.lastLinkToken("ivy@example.com")).form(t, "/auth/magic/")
		}},
		{"owner setup", func() (*browser, form) {
			x := s.browser()
			return x, withValues(x.get(setup.RequestURI()).form(t, "/setup/owner"), "email", "mallory@example.com", "password", "mallory's passphrase")
		}},
		{"sign-out", func() (*browser, form) {
			return b, b.get("/account").form(t, "/auth/sign-out")
		}},
		{"revoke session", func() (*browser, form) {
			return b, b.get("/account").form(t, "/account/sessions/")
		}},
		{"recover", func() (*browser, form) {
			x := s.browser()
			return x, withValues(x.get("/auth/recover").form(t, "/auth/recover"), "email", "ivy@example.com")
		}},
		{"new password", func() (*browser, form) {
			// One proven recovery flow serves every forgery (the send
			// limits would refuse a fresh code for each); a refusal
			// leaves it as it was.
			if recovering == nil {
				recovering = s.browser()
				p := recovering.submit(recovering.get("/auth/recover").form(t, "/auth/recover"), "email", "ned@example.com")
				p = recovering.verify(p, s.lastCode("ned@example.com"))
				recoveryForm = withValues(p.form(t, "/auth/recover/password"), "password", "mallory's new passphrase")
			}
			return recovering, recoveryForm
		}},
		{"change password", func() (*browser, form) {
			return b, withValues(b.get("/account").form(t, "/account/password"), "current_password", "ivy's long passphrase", "new_password", "mallory's new passphrase")
		}},
		{"profile", func() (*browser, form) {
			return b, withValues(b.get("/account").form(t, "/account/profile"), "name", "Mallory")
		}},
	}
	forgeries := []struct {
		name   string
		forge  func(f form) form
		header http.Header
	}{
		{"no csrf", func(f form) form { f.values.Del("csrf"); return f }, nil},
		{"wrong csrf", func(f form) form { f.values.Set("csrf", s.accounts.CSRFToken("flw_someone_else")); return f }, nil},
		{"cross-site origin", func(f form) form { return f }, http.Header{"Origin": {"https://evil.example"}}},
		{"cross-site fetch", func(f form) form { return f }, http.Header{"Sec-Fetch-Site": {"cross-site"}}},
	}
	for _, r := range rows {
		for _, fg := range forgeries {
			t.Run(r.name+"/"+fg.name, func(t *testing.T) {
				x, f := r.prepare()
				before := s.state(x, acc.PersonID)
				rejected := s.csrfRejections()
				x.header = fg.header.Clone()
				if x.header == nil {
					x.header = http.Header{}
				}
				p := x.submit(fg.forge(copyForm(f)))
				x.header = http.Header{}
				if p.status != http.StatusForbidden || !strings.Contains(p.body, "Nothing was changed") {
					t.Fatalf("%d at %s, want 403:\n%s", p.status, p.url, p.body)
				}
				if after := s.state(x, acc.PersonID); !equalState(before, after) {
					t.Errorf("state changed: %+v → %+v", before, after)
				}
				if got := s.csrfRejections(); got != rejected+1 {
					t.Errorf("csrf.rejected rows %d → %d, want one more", rejected, got)
				}
				if x.cookie("onramp_session") != "" && x != b {
					t.Errorf("a forged form signed the browser in")
				}
			})
		}
	}
	// The untouched forms still work: the refusals spent nothing.
	wantAt(t, b.get("/account"), "/account")
}

func equalState(a, b authState) bool {
	return a.mails == b.mails && slices.Equal(a.audit, b.audit) && slices.Equal(a.sessions, b.sessions) && a.flowStep == b.flowStep
}

func withValues(f form, kv ...string) form {
	f = copyForm(f)
	for i := 0; i+1 < len(kv); i += 2 {
		f.values.Set(kv[i], kv[i+1])
	}
	return f
}

func copyForm(f form) form {
	v := url.Values{}
	for k, vs := range f.values {
		v[k] = append([]string(nil), vs...)
	}
	return form{action: f.action, values: v}
}

func accountByEmail(t *testing.T, s *testStack, email string) *auth.Account {
	t.Helper()
	entries, err := s.accounts.Audit(context.Background(), auth.AuditQuery{Action: "auth.signed_up", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		acc, err := s.accounts.AccountOfPerson(context.Background(), e.PersonID)
		if err == nil && acc.PrimaryEmail == email {
			return acc
		}
	}
	t.Fatalf("no account for %s", email)
	return nil
}

// TestBruteForce: from the 6th wrong password on, an email gets 429 with
// Retry-After, whether or not it has an account, and the right password
// is refused the same way during the wait (no oracle).
func TestBruteForce(t *testing.T) {
	s := newTestStack(t)
	b := s.browser()
	wantAt(t, b.signUp("jo@example.com", "jo's right passphrase", ""), "/account")
	b.signOut()
	for _, email := range []string{"jo@example.com", "nobody@example.com"} {
		t.Run(email, func(t *testing.T) {
			x := s.browser()
			for i := 1; i <= 5; i++ {
				p := x.signInPassword(email, "wrong guess "+strconv.Itoa(i))
				if p.status != http.StatusUnauthorized {
					t.Fatalf("wrong password #%d: %d, want 401:\n%s", i, p.status, p.body)
				}
			}
			p := x.signInPassword(email, "wrong guess 6")
			if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
				t.Fatalf("6th wrong password: %d, Retry-After %q; want 429 with Retry-After", p.status, p.header.Get("Retry-After"))
			}
			if n, err := strconv.Atoi(p.header.Get("Retry-After")); err != nil || n < 1 {
				t.Errorf("Retry-After %q", p.header.Get("Retry-After"))
			}
			if !strings.Contains(p.body, "Too many attempts") {
				t.Errorf("429 page does not say why:\n%s", p.body)
			}
			p = x.signInPassword(email, "jo's right passphrase")
			if p.status != http.StatusTooManyRequests || x.cookie("onramp_session") != "" {
				t.Errorf("right password during the wait: %d, session %q; want 429 and no session", p.status, x.cookie("onramp_session"))
			}
		})
	}
	// After the wait the right password works again.
	s.clock.Advance(16 * time.Minute)
	wantAt(t, s.browser().signInPassword("jo@example.com", "jo's right passphrase"), "/account")
}

// TestEmailEnumeration: sign-up, sign-in code and sign-in password answer
// an unknown email, a person known from tracking but without an account,
// and an account with the same status and the same page (once flow-bound
// tokens and the typed email are masked), and each sending form sends
// exactly one email.
func TestEmailEnumeration(t *testing.T) {
	s := newTestStack(t)
	if r := s.track("/v1/identify", `{"userId":"u-known","traits":{"email":"known@example.com"}}`); r.status != http.StatusOK {
		t.Fatalf("identify: %d %s", r.status, r.body)
	}
	acct := s.browser()
	wantAt(t, acct.signUp("acct@example.com", "the account passphrase", ""), "/account")
	acct.signOut()
	emails := []string{"unknown@example.com", "known@example.com", "acct@example.com"}
	mask := regexp.MustCompile(`value="[A-Za-z0-9_-]{43}"`)

	type try func(b *browser, email string) *page
	cases := []struct {
		name  string
		do    try
		mails int
	}{
		{"sign-up", func(b *browser, email string) *page {
			return b.submit(b.get("/auth/sign-up").form(t, "/auth/sign-up"), "email", email, "password", "some new passphrase")
		}, 1},
		{"sign-in code", func(b *browser, email string) *page {
			return b.submit(b.get("/auth/sign-in").form(t, "/auth/sign-in"), "email", email, "action", "code")
		}, 1},
		{"sign-in password", func(b *browser, email string) *page {
			return b.signInPassword(email, "not the password")
		}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var firstStatus int
			var firstBody string
			for i, email := range emails {
				before := len(s.mails(email))
				p := c.do(s.browser(), email)
				body := mask.ReplaceAllString(strings.ReplaceAll(p.body, email, "EMAIL"), `value="TOKEN"`)
				if i == 0 {
					firstStatus, firstBody = p.status, body
				} else if p.status != firstStatus || body != firstBody {
					t.Errorf("%s answers %d, %s answered %d; bodies equal: %v\n%s\n---\n%s", email, p.status, emails[0], firstStatus, body == firstBody, body, firstBody)
				}
				if got := len(s.mails(email)) - before; got != c.mails {
					t.Errorf("%s: %d emails, want %d", email, got, c.mails)
				}
			}
		})
	}
}

// TestScriptInTraitsIsEscaped: markup someone put in traits through the
// public write key shows as text on the account page.
func TestScriptInTraitsIsEscaped(t *testing.T) {
	s := newTestStack(t)
	for _, name := range []string{`<script>alert(1)</script>`, `"><img src=x onerror=alert(1)>`} {
		email := "x" + strconv.Itoa(len(name)) + "@example.com"
		body := `{"userId":"u-` + strconv.Itoa(len(name)) + `","traits":{"email":"` + email + `","name":` + strconv.Quote(name) + `}}`
		if r := s.track("/v1/identify", body); r.status != http.StatusOK {
			t.Fatalf("identify: %d %s", r.status, r.body)
		}
		b := s.browser()
		p := b.signUp(email, "", "")
		wantAt(t, p, "/account")
		if strings.Contains(p.body, "<script>alert") || strings.Contains(p.body, "<img src=x") {
			t.Fatalf("trait markup reached the page unescaped:\n%s", p.body)
		}
		if got := accountFacts(t, p)["Name"]; got != name {
			t.Errorf("name shows as %q, want the literal %q", got, name)
		}
		if !strings.HasPrefix(p.header.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("no CSP on the account page")
		}
	}
}

// TestSessionFixation: a session cookie planted in the browser before
// sign-in is replaced by a new one, and the planted value stops working.
func TestSessionFixation(t *testing.T) {
	s := newTestStack(t)
	// The attacker's own session, whose cookie they plant in the victim's
	// browser.
	attacker := s.browser()
	wantAt(t, attacker.signUp("mallory@example.com", "", ""), "/account")
	planted := attacker.cookie("onramp_session")

	victim := s.browser()
	wantAt(t, victim.signUp("victim@example.com", "the target's passphrase", ""), "/account")
	victim.signOut()
	for _, value := range []string{"ses_made_up_value", planted} {
		victim.setCookie("onramp_session", value)
		p := victim.signInPassword("victim@example.com", "the target's passphrase")
		wantAt(t, p, "/account")
		got := victim.cookie("onramp_session")
		if got == value || got == "" {
			t.Fatalf("session cookie after sign-in = %q, planted %q", got, value)
		}
		if f := accountFacts(t, p); !strings.HasPrefix(f["Email"], "victim@example.com") {
			t.Errorf("signed in as %v", f)
		}
		if _, err := s.accounts.CheckSession(context.Background(), value); err == nil {
			t.Errorf("the planted value %q still works", value)
		}
		victim.signOut()
	}
	// The planted session is dead for the attacker too.
	if p := attacker.get("/account"); p.url.Path != "/auth/sign-in" {
		t.Errorf("the planted (attacker's) session still signs in: at %s", p.url)
	}
}
