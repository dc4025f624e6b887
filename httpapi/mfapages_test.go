package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/net/html"

	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/internal/softauthn"
)

// The second-factor and passkey pages, driven like a browser over real
// SQLite; the passkey ceremonies through the JSON endpoints passkey.js
// calls, answered by a software authenticator.

// postJSON posts JSON with b's cookies (and keeps the ones the answer
// sets), as passkey.js's fetch does.
func (b *browser) postJSON(path, csrf string, body any) (int, []byte) {
	b.t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		b.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, b.s.url+path, bytes.NewReader(raw))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if csrf != "" {
		req.Header.Set("X-Onramp-CSRF", csrf)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func appCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// byClass returns the text of the first element with this class.
func byClass(p *page, class string) string {
	n := find(p.doc, func(n *html.Node) bool { return strings.Contains(" "+attr(n, "class")+" ", " "+class+" ") })
	if len(n) == 0 {
		return ""
	}
	return text(n[0])
}

// setUpTOTP turns on the authenticator app from b's account page and
// returns the secret and the recovery codes. The clock then moves to the
// next step, so the confirming code is spent.
func setUpTOTP(t *testing.T, s *testStack, b *browser) (string, []string) {
	t.Helper()
	p := b.get("/account/mfa")
	wantAt(t, p, "/account/mfa")
	p = b.submit(p.form(t, "/account/mfa/totp"))
	wantAt(t, p, "/account/mfa")
	secret := byClass(p, "secret")
	qr := find(p.doc, func(n *html.Node) bool { return n.Data == "img" && strings.Contains(attr(n, "class"), "qr") })
	if secret == "" || len(qr) != 1 || !strings.HasPrefix(attr(qr[0], "src"), "data:image/png;base64,") || attr(qr[0], "alt") == "" {
		t.Fatalf("the setup shows no key or QR code:\n%s", p.body)
	}
	before := b.cookie("onramp_session")
	p = b.submit(p.form(t, "/account/mfa/totp/confirm"), "code", appCode(t, secret, s.clock.Now()))
	if p.status != http.StatusOK {
		t.Fatalf("confirm: %d\n%s", p.status, p.body)
	}
	var codes []string
	for _, n := range find(p.doc, func(n *html.Node) bool { return n.Data == "code" }) {
		codes = append(codes, text(n))
	}
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes shown, want 10:\n%s", len(codes), p.body)
	}
	if after := b.cookie("onramp_session"); after == before || after == "" {
		t.Error("turning on two-step sign-in kept the session cookie")
	}
	s.clock.Advance(30 * time.Second)
	return secret, codes
}

func TestTOTPPagesAndSignInStep(t *testing.T) {
	s := newTestStack(t)
	b := s.browser()
	wantAt(t, b.signUp("ann@example.com", "a long passphrase here", ""), "/account")
	// The account page links to both.
	acct := b.get("/account")
	for _, href := range []string{"/account/mfa", "/account/passkeys"} {
		if !strings.Contains(acct.body, `href="`+href+`"`) {
			t.Errorf("the account page does not link to %s", href)
		}
	}
	// A mistyped first code keeps the same setup.
	p := b.get("/account/mfa")
	p = b.submit(p.form(t, "/account/mfa/totp"))
	secret := byClass(p, "secret")
	p = b.submit(p.form(t, "/account/mfa/totp/confirm"), "code", "000000")
	if p.status != http.StatusBadRequest || byClass(p, "secret") != secret || len(find(p.doc, func(n *html.Node) bool { return attr(n, "id") == "code-error" })) != 1 {
		t.Fatalf("a wrong first code: %d, secret %q (was %q)\n%s", p.status, byClass(p, "secret"), secret, p.body)
	}
	checkPage(t, "account mfa setup", p, "en")
	old := b.cookie("onramp_session")
	p = b.submit(p.form(t, "/account/mfa/totp/confirm"), "code", appCode(t, secret, s.clock.Now()))
	if p.status != http.StatusOK || len(find(p.doc, func(n *html.Node) bool { return n.Data == "code" })) != 10 {
		t.Fatalf("confirm: %d\n%s", p.status, p.body)
	}
	if _, err := s.accounts.CheckSession(t.Context(), old); err == nil {
		t.Error("the session the app was set up from still works")
	}
	codes := []string{}
	for _, n := range find(p.doc, func(n *html.Node) bool { return n.Data == "code" }) {
		codes = append(codes, text(n))
	}
	// Shown once: the page after shows how many are left, not the codes.
	p = b.get("/account/mfa")
	if strings.Contains(p.body, codes[0]) || !strings.Contains(p.body, "10") {
		t.Errorf("the recovery codes are shown again, or the count is missing:\n%s", p.body)
	}
	s.clock.Advance(30 * time.Second)

	// Signing in now stops at the second factor.
	b.signOut()
	p = b.signInPassword("ann@example.com", "a long passphrase here")
	wantAt(t, p, "/auth/mfa")
	checkPage(t, "mfa step", p, "en")
	p = b.submit(p.form(t, "/auth/mfa"), "code", "000000")
	if p.status != http.StatusBadRequest || p.url.Path != "/auth/mfa" {
		t.Fatalf("a wrong second factor: %d at %s", p.status, p.url)
	}
	if b.cookie("onramp_session") != "" {
		if _, err := s.accounts.CheckSession(t.Context(), b.cookie("onramp_session")); err == nil {
			t.Fatal("signed in before the second factor")
		}
	}
	p = b.submit(p.form(t, "/auth/mfa"), "code", appCode(t, secret, s.clock.Now()))
	wantAt(t, p, "/account")
	ses, err := s.accounts.CheckSession(t.Context(), b.cookie("onramp_session"))
	if err != nil || ses.AAL != 2 {
		t.Fatalf("session after the second factor: %+v, %v", ses, err)
	}

	// A recovery code works once, in German too.
	b.signOut()
	b.header.Set("Accept-Language", "de")
	p = b.signInPassword("ann@example.com", "a long passphrase here")
	checkPage(t, "de mfa step", p, "de")
	wantAt(t, b.submit(p.form(t, "/auth/mfa"), "code", strings.ToLower(codes[2])), "/account")
	b.signOut()
	p = b.signInPassword("ann@example.com", "a long passphrase here")
	p = b.submit(p.form(t, "/auth/mfa"), "code", codes[2])
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "Dieser Code stimmt nicht") {
		t.Fatalf("a used recovery code: %d\n%s", p.status, p.body)
	}
	s.clock.Advance(30 * time.Second)
	wantAt(t, b.submit(p.form(t, "/auth/mfa"), "code", appCode(t, secret, s.clock.Now())), "/account")
	b.header.Del("Accept-Language")

	// New recovery codes, then turning the app off, each with a fresh code.
	s.clock.Advance(30 * time.Second)
	p = b.get("/account/mfa")
	p = b.submit(p.form(t, "/account/mfa/recovery-codes"), "code", appCode(t, secret, s.clock.Now()))
	if p.status != http.StatusOK || len(find(p.doc, func(n *html.Node) bool { return n.Data == "code" })) != 10 {
		t.Fatalf("new recovery codes: %d\n%s", p.status, p.body)
	}
	p = b.get("/account/mfa")
	p = b.submit(p.form(t, "/account/mfa/totp/disable"), "code", "000000")
	if p.status != http.StatusBadRequest || len(find(p.doc, func(n *html.Node) bool { return attr(n, "id") == "disable-code-error" })) != 1 {
		t.Fatalf("turning off with a wrong code: %d\n%s", p.status, p.body)
	}
	s.clock.Advance(30 * time.Second)
	p = b.submit(p.form(t, "/account/mfa/totp/disable"), "code", appCode(t, secret, s.clock.Now()))
	wantAt(t, p, "/account/mfa")
	if p.form(t, "/account/mfa/totp").action == "" {
		t.Error("after turning off, the page does not offer to set up again")
	}
	b.signOut()
	wantAt(t, b.signInPassword("ann@example.com", "a long passphrase here"), "/account")
}

// TestAccountMFAFormsNeedCSRF: every new account form refuses a post
// without its token, changing nothing.
func TestAccountMFAFormsNeedCSRF(t *testing.T) {
	s := newTestStack(t)
	b := s.browser()
	wantAt(t, b.signUp("ann@example.com", "", ""), "/account")
	for _, path := range []string{"/account/mfa/totp", "/account/mfa/totp/confirm", "/account/mfa/totp/disable", "/account/mfa/recovery-codes",
		"/account/passkeys/x/rename", "/account/passkeys/x/remove", "/auth/mfa", "/auth/passkey/continue"} {
		if p := b.post(path, map[string][]string{"csrf": {"forged"}, "code": {"123456"}}); p.status != http.StatusForbidden {
			t.Errorf("POST %s with a forged token: %d", path, p.status)
		}
	}
	for _, path := range []string{"/account/passkeys/options", "/account/passkeys", "/auth/passkey/options", "/auth/passkey"} {
		if status, body := b.postJSON(path, "forged", map[string]any{}); status != http.StatusForbidden || !strings.Contains(string(body), "CSRF") {
			t.Errorf("POST %s with a forged header: %d %s", path, status, body)
		}
	}
	if st, err := s.accounts.MFA(t.Context(), accountPerson(t, s, "ann@example.com")); err != nil || st.TOTP {
		t.Errorf("MFA after forged posts: %+v, %v", st, err)
	}
}

func accountPerson(t *testing.T, s *testStack, email string) string {
	t.Helper()
	a, err := s.accounts.Audit(t.Context(), auth.AuditQuery{Action: "auth.signed_up"})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range a {
		if acc, err := s.accounts.AccountOfPerson(t.Context(), e.PersonID); err == nil && acc.PrimaryEmail == email {
			return acc.PersonID
		}
	}
	t.Fatalf("no account of %s", email)
	return ""
}

func TestPasskeyPages(t *testing.T) {
	s := newTestStack(t) // http://onramp.test:8080: passkeys for rp id onramp.test
	a := softauthn.New("http://onramp.test:8080", "onramp.test", true)
	b := s.browser()
	wantAt(t, b.signUp("ann@example.com", "", ""), "/account")
	p := b.get("/account/passkeys")
	wantAt(t, p, "/account/passkeys")
	checkPage(t, "passkeys page", p, "en")
	if !strings.HasSuffix(p.header.Get("Content-Security-Policy"), "; script-src 'self'; connect-src 'self'") {
		t.Errorf("CSP of the passkeys page: %q", p.header.Get("Content-Security-Policy"))
	}
	add := p.form(t, "/account/passkeys")
	csrf := add.values.Get("csrf")

	status, body := b.postJSON("/account/passkeys/options", csrf, map[string]any{})
	if status != http.StatusOK {
		t.Fatalf("options: %d %s", status, body)
	}
	var cer struct {
		Ceremony string          `json:"ceremony"`
		Options  json.RawMessage `json:"options"`
	}
	_ = json.Unmarshal(body, &cer)
	cred, key, err := a.Create(cer.Options)
	if err != nil {
		t.Fatal(err)
	}
	before := b.cookie("onramp_session")
	status, body = b.postJSON("/account/passkeys", csrf, map[string]any{"ceremony": cer.Ceremony, "name": "Laptop", "credential": cred})
	if status != http.StatusOK || !strings.Contains(string(body), `"next":"/account/passkeys?added=1"`) {
		t.Fatalf("finish: %d %s", status, body)
	}
	if after := b.cookie("onramp_session"); after == before {
		t.Error("adding a passkey kept the session cookie")
	}
	p = b.get("/account/passkeys?added=1")
	if !strings.Contains(p.body, "Laptop") || !strings.Contains(p.body, "Your passkey was added.") {
		t.Fatalf("the page after adding:\n%s", p.body)
	}
	p = b.submit(p.form(t, "/account/passkeys/"), "name", "Work laptop")
	wantAt(t, p, "/account/passkeys")
	if !strings.Contains(p.body, "Work laptop") {
		t.Errorf("renamed passkey not listed:\n%s", p.body)
	}

	// Sign out, then in with the passkey and no email typed.
	b.signOut()
	p = b.get("/auth/sign-in")
	checkPage(t, "sign-in with passkeys", p, "en")
	if len(find(p.doc, func(n *html.Node) bool { _, ok := attrOK(n, "data-passkey-sign-in"); return ok })) != 1 {
		t.Fatalf("no passkey button on the sign-in page:\n%s", p.body)
	}
	cont := p.form(t, "/auth/passkey/continue")
	status, body = b.postJSON("/auth/passkey/options", cont.values.Get("csrf"), map[string]any{})
	if status != http.StatusOK {
		t.Fatalf("login options: %d %s", status, body)
	}
	assertion, err := a.Get(json.RawMessage(body), key)
	if err != nil {
		t.Fatal(err)
	}
	status, body = b.postJSON("/auth/passkey", cont.values.Get("csrf"), assertion)
	if status != http.StatusOK || !strings.Contains(string(body), `"next":"done"`) {
		t.Fatalf("login finish: %d %s", status, body)
	}
	p = b.submit(cont)
	wantAt(t, p, "/account")
	if f := accountFacts(t, p); !strings.HasPrefix(f["Email"], "ann@example.com") {
		t.Errorf("signed in as %v", f)
	}
	ses, err := s.accounts.CheckSession(t.Context(), b.cookie("onramp_session"))
	if err != nil || ses.AAL != 2 || strings.Join(ses.AMR, ",") != "hwk,user" {
		t.Fatalf("passkey session: %+v, %v", ses, err)
	}

	// Remove it: the page lists none and the passkey no longer signs in.
	p = b.get("/account/passkeys")
	var remove form
	for _, f := range p.forms() {
		if strings.HasSuffix(f.action, "/remove") {
			remove = f
		}
	}
	p = b.submit(remove)
	wantAt(t, p, "/account/passkeys")
	if !strings.Contains(p.body, "You have no passkeys yet.") {
		t.Errorf("after removing:\n%s", p.body)
	}
	c := s.browser()
	cont = c.get("/auth/sign-in").form(t, "/auth/passkey/continue")
	_, body = c.postJSON("/auth/passkey/options", cont.values.Get("csrf"), map[string]any{})
	assertion, _ = a.Get(json.RawMessage(body), key)
	if status, body := c.postJSON("/auth/passkey", cont.values.Get("csrf"), assertion); status != http.StatusUnauthorized {
		t.Errorf("a removed passkey: %d %s", status, body)
	}
	// The continue form of a flow that proved nothing goes back to sign-in.
	if p := c.submit(cont); p.url.Path != "/auth/sign-in" {
		t.Errorf("continue without a passkey: at %s", p.url)
	}
}

func TestStaffMFARequiredOnTheAPI(t *testing.T) {
	s := newTestStack(t)
	link, err := s.accounts.OwnerLink(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	b := s.browser()
	p := b.get(link[strings.Index(link, "/setup/"):])
	wantAt(t, b.submit(p.form(t, "/setup/owner"), "email", "owner@example.com", "password", "a long founder passphrase"), "/admin")
	if r := s.sessionAPI(b, http.MethodGet, "/api/people", "", nil); r.status != http.StatusOK {
		t.Fatalf("staff session before the rule: %d %s", r.status, r.body)
	}
	if r := s.api(s.token("admin", auth.RoleAdmin), http.MethodPut, "/api/auth/settings", map[string]any{"staff_require_mfa": true}); r.status != http.StatusForbidden {
		t.Errorf("an admin turning staff MFA on: %d %s", r.status, r.body)
	}
	if r := s.api(s.owner, http.MethodPut, "/api/auth/settings", map[string]any{"staff_require_mfa": true}); r.status != http.StatusOK || !strings.Contains(string(r.body), `"staff_require_mfa":true`) {
		t.Fatalf("the owner turning staff MFA on: %d %s", r.status, r.body)
	}
	r := s.sessionAPI(b, http.MethodGet, "/api/people", "", nil)
	if pr := wantProblem(t, r, http.StatusForbidden); !regexp.MustCompile(`^MFA required`).MatchString(pr.Detail) {
		t.Errorf("staff session below AAL2: %s", r.body)
	}
	if r := s.sessionAPI(b, http.MethodGet, "/api/auth/session", "", nil); r.status != http.StatusOK {
		t.Errorf("who-am-I below AAL2: %d", r.status)
	}
	// API tokens are not sessions: not affected.
	if r := s.api(s.owner, http.MethodGet, "/api/people", nil); r.status != http.StatusOK {
		t.Errorf("owner token with the rule on: %d", r.status)
	}
	// Setting up the app upgrades this browser's session.
	setUpTOTP(t, s, b)
	if r := s.sessionAPI(b, http.MethodGet, "/api/people", "", nil); r.status != http.StatusOK {
		t.Errorf("staff session after setting up two-step sign-in: %d %s", r.status, r.body)
	}
}

// TestHeadlessSecondFactor: the JSON flows stop at "mfa" for an account
// with an authenticator app, and POST …/mfa completes them.
func TestHeadlessSecondFactor(t *testing.T) {
	s := newTestStackWith(t, stackOptions{oidc: true})
	st := s.site("Shop", shopOrigin)
	b := s.browser()
	wantAt(t, b.signUp("ann@example.com", "a long passphrase here", ""), "/account")
	secret, _ := setUpTOTP(t, s, b)

	f := st.start("signin")
	r := st.call("/api/auth/flows/"+f.FlowID+"/password", f.FlowSecret, map[string]string{"email": "ann@example.com", "password": "a long passphrase here"})
	var step auth.Step
	r.json(t, &step)
	if r.status != http.StatusOK || step.Next != auth.StepMFA {
		t.Fatalf("password on an account with an app = %d %s; want the mfa step", r.status, r.body)
	}
	wrong := st.call("/api/auth/flows/"+f.FlowID+"/mfa", f.FlowSecret, map[string]string{"code": "000000"})
	if wantProblem(t, wrong, http.StatusBadRequest); !strings.Contains(string(wrong.body), `"field":"code"`) {
		t.Errorf("a wrong second factor: %s", wrong.body)
	}
	r = st.call("/api/auth/flows/"+f.FlowID+"/mfa", f.FlowSecret, map[string]string{"code": appCode(t, secret, s.clock.Now())})
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"status":"complete"`) {
		t.Fatalf("the second factor = %d %s", r.status, r.body)
	}
}
