package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/identity"
)

// The hosted pages, driven like a browser without JavaScript over a real
// SQLite store: sign-up, recognition, sign-in by password, code and magic
// link, sign-out, owner setup, languages and accessibility. The attacks
// are in authattack_test.go.

// accountOf reads what the account page says about the signed-in person.
func accountFacts(t *testing.T, p *page) map[string]string {
	t.Helper()
	facts := map[string]string{}
	for _, dt := range find(p.doc, func(n *html.Node) bool { return n.Data == "dt" }) {
		dd := dt.NextSibling
		for dd != nil && (dd.Type != html.ElementNode || dd.Data != "dd") {
			dd = dd.NextSibling
		}
		if dd != nil {
			facts[text(dt)] = text(dd)
		}
	}
	return facts
}

func TestSignUpVerifyAndAccount(t *testing.T) {
	s := newTestStack(t)
	b := s.browser()
	p := b.signUp("ann@example.com", "", "Ann Example")
	wantAt(t, p, "/account")
	if b.cookie("onramp_session") == "" {
		t.Fatal("no session cookie after verifying")
	}
	if b.cookie("onramp_flow") != "" {
		t.Error("the flow cookie outlived the finished flow")
	}
	facts := accountFacts(t, p)
	if facts["Name"] != "Ann Example" || !strings.HasPrefix(facts["Email"], "ann@example.com") || !strings.Contains(facts["Email"], "verified") {
		t.Errorf("account page says %v", facts)
	}
	if n := len(s.mails("ann@example.com")); n != 1 {
		t.Errorf("%d emails to ann, want 1", n)
	}
	// The session shows, as this device, with a revoke button.
	if !strings.Contains(p.body, "This device") || len(p.forms()) < 2 {
		t.Errorf("account page lists no current session:\n%s", p.body)
	}
}

// TestSignUpRecognizesKnownPerson: someone identified through tracking
// (email and traits) who signs up becomes an account on the same person:
// one person, email verified, traits kept.
func TestSignUpRecognizesKnownPerson(t *testing.T) {
	s := newTestStack(t)
	r := s.track("/v1/identify", `{"anonymousId":"anon-ann","traits":{"email":"Ann@Example.com","company":"Acme","plan":"trial"}}`)
	if r.status != http.StatusOK {
		t.Fatalf("identify: %d %s", r.status, r.body)
	}
	ctx := context.Background()
	before, err := s.ids.Lookup(ctx, identity.Key{Type: identity.Email, Value: "ann@example.com"})
	if err != nil {
		t.Fatalf("lookup before sign-up: %v", err)
	}
	b := s.browser()
	wantAt(t, b.signUp("ann@example.com", "", "Ann"), "/account")

	after, err := s.ids.Lookup(ctx, identity.Key{Type: identity.Email, Value: "ann@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if after.Person.ID != before.Person.ID {
		t.Errorf("the account is on person %s, not the known person %s", after.Person.ID, before.Person.ID)
	}
	people, err := s.ids.Search(ctx, identity.PersonQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(people.Persons) != 1 {
		t.Errorf("%d people after sign-up, want 1", len(people.Persons))
	}
	var traits map[string]any
	_ = json.Unmarshal(after.Person.Traits, &traits)
	if traits["company"] != "Acme" || traits["plan"] != "trial" || traits["name"] != "Ann" {
		t.Errorf("traits after sign-up: %v", traits)
	}
	verified := false
	for _, id := range after.Identifiers {
		if id.Type == identity.Email && id.Value == "ann@example.com" {
			verified = id.Verified
		}
	}
	if !verified {
		t.Errorf("email not verified: %+v", after.Identifiers)
	}
	acc, err := s.accounts.AccountOfPerson(ctx, after.Person.ID)
	if err != nil || acc.PrimaryEmail != "ann@example.com" {
		t.Fatalf("account: %+v %v", acc, err)
	}
}

func TestSignInPassword(t *testing.T) {
	s := newTestStack(t)
	b := s.browser()
	wantAt(t, b.signUp("bo@example.com", "correct horse battery", ""), "/account")
	first := b.cookie("onramp_session")
	p := b.signOut()
	if p.status != http.StatusOK || !strings.Contains(p.body, "You are signed out") {
		t.Fatalf("sign-out: %d\n%s", p.status, p.body)
	}
	if b.cookie("onramp_session") != "" {
		t.Error("sign-out left the session cookie")
	}
	if _, err := s.accounts.CheckSession(context.Background(), first); err == nil {
		t.Error("the signed-out session still works")
	}
	if p := b.get("/account"); p.url.Path != "/auth/sign-in" || p.url.Query().Get("return_to") != "/account" {
		t.Errorf("/account signed out: at %s, want the sign-in page coming back to /account", p.url)
	}

	p = b.signInPassword("bo@example.com", "wrong password 1")
	if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "Email or password is incorrect.") {
		t.Fatalf("wrong password: %d\n%s", p.status, p.body)
	}
	// The form comes back with the email, not the password, and the
	// error summary first.
	f := p.form(t, "/auth/sign-in")
	if f.values.Get("email") != "bo@example.com" {
		t.Errorf("the email was not kept: %v", f.values)
	}
	wantAt(t, b.submit(f, "password", "correct horse battery", "action", "password"), "/account")
	if b.cookie("onramp_session") == "" || b.cookie("onramp_session") == first {
		t.Error("no new session cookie after signing in by password")
	}
	if n := len(s.mails("bo@example.com")); n != 1 {
		t.Errorf("%d emails to bo, want 1 (the sign-up code only)", n)
	}
}

// TestSignInFormWritesNoFlow: showing the sign-in form and a password
// sign-in that finishes at once write no flow row (the cookie carries the
// flow); asking for a code stores it, and the same cookie goes on.
func TestSignInFormWritesNoFlow(t *testing.T) {
	s := newTestStack(t)
	b := s.browser()
	wantAt(t, b.signUp("flo@example.com", "correct horse battery", ""), "/account")
	b.signOut()
	flows := s.count("auth_flows")
	p := b.get("/auth/sign-in")
	if s.count("auth_flows") != flows || b.cookie("onramp_flow") == "" {
		t.Fatalf("the sign-in form: %d flow rows, was %d; flow cookie %q", s.count("auth_flows"), flows, b.cookie("onramp_flow"))
	}
	wantAt(t, b.submit(p.form(t, "/auth/sign-in"), "email", "flo@example.com", "password", "correct horse battery", "action", "password"), "/account")
	if s.count("auth_flows") != flows {
		t.Errorf("a password sign-in left %d flow rows, was %d", s.count("auth_flows"), flows)
	}
	b.signOut()
	p = b.get("/auth/sign-in")
	wantAt(t, b.submit(p.form(t, "/auth/sign-in"), "email", "flo@example.com", "action", "code"), "/auth/verify")
	if s.count("auth_flows") != flows+1 {
		t.Errorf("asking for a code: %d flow rows, want %d", s.count("auth_flows"), flows+1)
	}
	p = b.get("/auth/verify")
	wantAt(t, b.verify(p, s.lastCode("flo@example.com")), "/account")
}

func TestSignInByCode(t *testing.T) {
	s := newTestStack(t)
	b := s.browser()
	wantAt(t, b.signUp("cy@example.com", "", ""), "/account")
	b.signOut()

	p := b.get("/auth/sign-in")
	p = b.submit(p.form(t, "/auth/sign-in"), "email", "cy@example.com", "action", "code")
	wantAt(t, p, "/auth/verify")
	if !strings.Contains(p.body, "cy@example.com") {
		t.Errorf("the code page does not say where the code went:\n%s", p.body)
	}
	ms := s.mails("cy@example.com")
	if len(ms) != 2 || !strings.Contains(ms[1].Subject, "sign-in code") {
		t.Fatalf("emails to cy: %+v", ms)
	}
	// A wrong code first: the page says so, pointing at the field.
	bad := b.verify(p, "000000")
	if bad.status != http.StatusBadRequest || !strings.Contains(bad.body, `aria-describedby="code-hint code-error"`) {
		t.Fatalf("wrong code: %d\n%s", bad.status, bad.body)
	}
	wantAt(t, b.verify(bad, s.lastCode("cy@example.com")), "/account")
}

// TestResendKeepsSignUp: "send a new code" during sign-up sends another
// verification code (not the note for unknown addresses), and the newest
// code creates the account.
func TestResendKeepsSignUp(t *testing.T) {
	s := newTestStack(t)
	b := s.browser()
	p := b.get("/auth/sign-up")
	p = b.submit(p.form(t, "/auth/sign-up"), "email", "di@example.com", "name", "Di")
	first := s.lastCode("di@example.com")
	// A moment later (the newest code is the one with the latest time).
	s.clock.Advance(time.Second)
	p = b.submit(p.form(t, "/auth/verify"), "action", "resend")
	if p.status != http.StatusOK || !strings.Contains(p.body, "We sent a new email") {
		t.Fatalf("resend: %d\n%s", p.status, p.body)
	}
	ms := s.mails("di@example.com")
	if len(ms) != 2 || !strings.Contains(ms[1].Subject, "verification code") {
		t.Fatalf("emails after resend: %+v", ms)
	}
	second := s.lastCode("di@example.com")
	if second != first {
		// The first code died with the resend (two random codes are equal
		// once in a million; then only the newest one is checked).
		if p2 := b.verify(p, first); p2.url.Path == "/account" {
			t.Fatal("the code of the first email still works after a resend")
		}
	}
	wantAt(t, b.verify(p, second), "/account")
	if f := accountFacts(t, b.get("/account")); f["Name"] != "Di" {
		t.Errorf("the sign-up's name was lost by the resend: %v", f)
	}
}

// TestMagicLink: opening the emailed link (a GET, as a mail scanner would)
// spends nothing; the Continue button (a POST) signs in; the link then is
// spent.
func TestMagicLink(t *testing.T) {
	s := newTestStack(t)
	b := s.browser()
	wantAt(t, b.signUp("ed@example.com", "", ""), "/account")
	b.signOut()
	p := b.get("/auth/sign-in")
	b.submit(p.form(t, "/auth/sign-in"), "email", "ed@example.com", "action", "code")
	token := s.lastLinkToken("ed@example.com")

	// Another browser (the phone the email was read on) opens the link,
	// twice, as a scanner and a person would.
	phone := s.browser()
	for i := 0; i < 2; i++ {
		p = phone.get("/auth/magic/" + token)
		if p.status != http.StatusOK || phone.cookie("onramp_session") != "" {
			t.Fatalf("GET of the link #%d: %d, session %q", i+1, p.status, phone.cookie("onramp_session"))
		}
	}
	p = phone.submit(p.form(t, "/auth/magic/"))
	wantAt(t, p, "/account")
	if phone.cookie("onramp_session") == "" {
		t.Fatal("no session after pressing Continue")
	}
	// Spent: a second POST is refused and signs no one in.
	other := s.browser()
	p = other.get("/auth/magic/" + token)
	p = other.submit(p.form(t, "/auth/magic/"))
	if p.status != http.StatusBadRequest || other.cookie("onramp_session") != "" || !strings.Contains(p.body, "expired or was used") {
		t.Errorf("second use of the link: %d, session %q\n%s", p.status, other.cookie("onramp_session"), p.body)
	}
}

func TestOwnerSetupAndStaffSession(t *testing.T) {
	s := newTestStack(t)
	ctx := context.Background()
	link, err := s.accounts.OwnerLink(ctx)
	if err != nil || link == "" {
		t.Fatalf("owner link %q: %v", link, err)
	}
	u, _ := url.Parse(link)
	b := s.browser()
	p := b.get(u.RequestURI())
	wantAt(t, p, "/setup/owner")
	p = b.submit(p.form(t, "/setup/owner"), "email", "owner@example.com", "password", "a long founder passphrase")
	// The owner lands in the console.
	wantAt(t, p, "/admin")
	p = b.get("/account")
	if f := accountFacts(t, p); f["Staff role"] != "owner" {
		t.Errorf("account page after setup: %v", f)
	}
	// The link is spent, and no new one is made now that an owner exists.
	if p := s.browser().get(u.RequestURI()); p.status != http.StatusForbidden {
		t.Errorf("the used setup link: %d", p.status)
	}
	if l, err := s.accounts.OwnerLink(ctx); err != nil || l != "" {
		t.Errorf("OwnerLink with an owner = %q, %v", l, err)
	}

	// The owner's session cookie works on the JSON API.
	who := s.sessionAPI(b, http.MethodGet, "/api/auth/session", "", nil)
	var me struct {
		Kind    string `json:"kind"`
		Role    string `json:"role"`
		CSRF    string `json:"csrf_token"`
		Account struct {
			Email string `json:"primary_email"`
		} `json:"account"`
	}
	who.json(t, &me)
	if who.status != http.StatusOK || me.Kind != "session" || me.Role != "owner" || me.Account.Email != "owner@example.com" || me.CSRF == "" {
		t.Fatalf("GET /api/auth/session: %d %s", who.status, who.body)
	}
	if r := s.sessionAPI(b, http.MethodGet, "/api/audit?action=staff.*", "", nil); r.status != http.StatusOK || !strings.Contains(string(r.body), "staff.owner_created") {
		t.Errorf("GET /api/audit as owner: %d %s", r.status, r.body)
	}
	// An unsafe call needs the CSRF header.
	body := map[string]any{"name": "by-cookie"}
	wantProblem(t, s.sessionAPI(b, http.MethodPost, "/api/properties", "", body), http.StatusForbidden)
	wantProblem(t, s.sessionAPI(b, http.MethodPost, "/api/properties", "not-the-token", body), http.StatusForbidden)
	if r := s.sessionAPI(b, http.MethodPost, "/api/properties", me.CSRF, body); r.status != http.StatusCreated {
		t.Errorf("POST /api/properties with cookie and CSRF header: %d %s", r.status, r.body)
	}

	// A person without a staff row gets 403 from the API, with or
	// without the header.
	c := s.browser()
	wantAt(t, c.signUp("cus@example.com", "", ""), "/account")
	wantProblem(t, s.sessionAPI(c, http.MethodGet, "/api/people", "", nil), http.StatusForbidden)
	// No credentials at all: 401 as before.
	wantProblem(t, s.api("", http.MethodGet, "/api/auth/session", nil), http.StatusUnauthorized)
	// audit:read is for owners and admins only.
	wantProblem(t, s.api(s.token("dev", auth.RoleDeveloper), http.MethodGet, "/api/audit", nil), http.StatusForbidden)
	if r := s.api(s.owner, http.MethodGet, "/api/audit?limit=1", nil); r.status != http.StatusOK {
		t.Errorf("GET /api/audit with the owner token: %d %s", r.status, r.body)
	}
}

// sessionAPI calls the JSON API with b's cookies and an optional CSRF
// header, as the console would.
func (s *testStack) sessionAPI(b *browser, method, path, csrf string, body any) reply {
	s.t.Helper()
	var headers []string
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
		headers = append(headers, "Content-Type", "application/json")
	}
	if csrf != "" {
		headers = append(headers, "X-Onramp-CSRF", csrf)
	}
	var cookies []string
	for _, c := range b.jar.Cookies(b.base) {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	headers = append(headers, "Cookie", strings.Join(cookies, "; "))
	return s.do(method, path, raw, headers...)
}

// TestLoginHandOff: a sign-in started for an OIDC auth request ends in
// the provider's FinishLogin with that request and the new session.
func TestLoginHandOff(t *testing.T) {
	s := newTestStack(t)
	b := s.browser()
	wantAt(t, b.signUp("fay@example.com", "", ""), "/account")
	b.signOut()
	if len(s.login.finished) != 0 {
		t.Fatalf("FinishLogin called for a plain sign-up: %v", s.login.finished)
	}
	p := b.get("/auth/sign-in?authRequest=ar_123")
	if l := find(p.doc, func(n *html.Node) bool { return n.Data == "a" && strings.Contains(attr(n, "href"), "/auth/sign-up") }); len(l) != 1 || !strings.Contains(attr(l[0], "href"), "authRequest=ar_123") {
		t.Errorf("the sign-up link drops the auth request")
	}
	p = b.submit(p.form(t, "/auth/sign-in"), "email", "fay@example.com", "action", "code")
	p = b.verify(p, s.lastCode("fay@example.com"))
	if p.url.Path != "/oidc-finished" || p.url.Query().Get("id") != "ar_123" {
		t.Fatalf("after sign-in for an auth request: at %s", p.url)
	}
	if len(s.login.grants) != 1 || s.login.grants[0].Session == nil || s.login.grants[0].Secret != b.cookie("onramp_session") {
		t.Errorf("FinishLogin got %+v; the browser's session cookie is %q", s.login.grants, b.cookie("onramp_session"))
	}
}

// TestReturnToStaysOnOnramp: return_to is followed only for paths on
// Onramp; anything that could leave the site lands on /account.
func TestReturnToStaysOnOnramp(t *testing.T) {
	s := newTestStack(t)
	b := s.browser()
	wantAt(t, b.signUp("gus@example.com", "a fine passphrase", ""), "/account")
	b.signOut()
	for _, tc := range []struct{ returnTo, wantPath string }{
		{"/account?tab=sessions", "/account"},
		{"//evil.example/x", "/account"},
		{"https://evil.example/", "/account"},
		{"/\\evil.example", "/account"},
		{"javascript:alert(1)", "/account"},
		{"/%2F%2Fevil.example", "/%2F%2Fevil.example"},
	} {
		p := b.get("/auth/sign-in?return_to=" + url.QueryEscape(tc.returnTo))
		p = b.submit(p.form(t, "/auth/sign-in"), "email", "gus@example.com", "password", "a fine passphrase", "action", "password")
		if p.url.Host != b.base.Host || p.url.EscapedPath() != tc.wantPath {
			t.Errorf("return_to=%q: landed at %s, want %s on Onramp", tc.returnTo, p.url, tc.wantPath)
		}
		b.signOut()
	}
}

// TestPagesRenderInBothLanguages checks every page in English and German:
// the lang attribute, translated text, labels for every input,
// autocomplete, no inline script or style, and the security headers.
func TestPagesRenderInBothLanguages(t *testing.T) {
	s := newTestStack(t)
	link, err := s.accounts.OwnerLink(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	setup, _ := url.Parse(link)
	b := s.browser()
	// vb waits for a code; b visits the other pages (each of which starts
	// a flow of its own).
	vb := s.browser()
	verify := vb.submit(vb.get("/auth/sign-up").form(t, "/auth/sign-up"), "email", "hal@example.com")
	if verify.status != http.StatusOK {
		t.Fatalf("verify page: %d", verify.status)
	}
	for _, tc := range []struct {
		lang, acceptLanguage, query string
		want                        map[string]string // path → a phrase
	}{
		{"en", "", "", map[string]string{"/auth/sign-in": "Sign in", "/auth/sign-up": "Create your account", "/auth/verify": "Check your email", "/auth/magic/x": "Continue", "/setup/owner": "Create the owner account", "/auth/recover": "Reset your password"}},
		{"de", "de-DE,de;q=0.9,en;q=0.5", "", map[string]string{"/auth/sign-in": "Anmelden", "/auth/sign-up": "Konto erstellen", "/auth/verify": "Prüfen Sie Ihre E-Mails", "/auth/magic/x": "Weiter", "/setup/owner": "Inhaberkonto erstellen", "/auth/recover": "Passwort zurücksetzen"}},
		{"de", "en", "ui_locales=de", map[string]string{"/auth/sign-in": "Anmelden"}},
		{"en", "fr", "", map[string]string{"/auth/sign-in": "Sign in"}},
	} {
		b.header.Set("Accept-Language", tc.acceptLanguage)
		vb.header.Set("Accept-Language", tc.acceptLanguage)
		for path, phrase := range tc.want {
			br := b
			if path == "/auth/verify" {
				br = vb
			}
			target := path
			if path == "/setup/owner" {
				target = setup.RequestURI()
			}
			if tc.query != "" {
				sep := "?"
				if strings.Contains(target, "?") {
					sep = "&"
				}
				target += sep + tc.query
			}
			p := br.get(target)
			where := tc.lang + " " + target
			if p.status != http.StatusOK {
				t.Errorf("%s: %d", where, p.status)
				continue
			}
			checkPage(t, where, p, tc.lang)
			if !strings.Contains(p.body, phrase) {
				t.Errorf("%s: no %q", where, phrase)
			}
		}
	}
	// The account page, and an error summary, in German.
	b, vb.header = vb, http.Header{"Accept-Language": {"de"}}
	wantAt(t, b.verify(b.get("/auth/verify"), s.lastCode("hal@example.com")), "/account")
	p := b.get("/account")
	checkPage(t, "de /account", p, "de")
	if !strings.Contains(p.body, "Wo Sie angemeldet sind") {
		t.Errorf("de account page is not German:\n%s", p.body)
	}
	p = b.get("/auth/sign-in")
	p = b.submit(p.form(t, "/auth/sign-in"), "email", "not an email", "action", "code")
	checkPage(t, "de sign-in error", p, "de")
	summary := find(p.doc, func(n *html.Node) bool { return attr(n, "id") == "error-summary" })
	if p.status != http.StatusBadRequest || len(summary) != 1 || attr(summary[0], "role") != "alert" || attr(summary[0], "tabindex") != "-1" {
		t.Fatalf("error summary: %d\n%s", p.status, p.body)
	}
	if _, ok := attrOK(summary[0], "autofocus"); !ok || !strings.Contains(text(summary[0]), "Geben Sie eine gültige E-Mail-Adresse ein.") {
		t.Errorf("error summary not focused or not German: %s", text(summary[0]))
	}
	email := find(p.doc, func(n *html.Node) bool { return attr(n, "id") == "email" })
	if len(email) != 1 || attr(email[0], "aria-invalid") != "true" || attr(email[0], "aria-describedby") != "email-error" {
		t.Errorf("the email field does not point at its error")
	}
	if len(find(p.doc, func(n *html.Node) bool { return attr(n, "id") == "email-error" })) != 1 {
		t.Errorf("no #email-error")
	}
	if n := len(find(p.doc, func(n *html.Node) bool { _, ok := attrOK(n, "autofocus"); return ok })); n != 1 {
		t.Errorf("%d elements with autofocus, want 1 (the summary)", n)
	}

	// The stylesheet is served and is the only style there is.
	r := s.do(http.MethodGet, "/auth/assets/auth.css", nil)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/css") {
		t.Errorf("auth.css: %d %s", r.status, r.header.Get("Content-Type"))
	}
}

func attrOK(n *html.Node, name string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val, true
		}
	}
	return "", false
}

// checkPage asserts what every hosted page must be.
func checkPage(t *testing.T, where string, p *page, lang string) {
	t.Helper()
	for h, want := range map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
		"X-Content-Type-Options":  "nosniff",
	} {
		if got := p.header.Get(h); !strings.HasPrefix(got, want) {
			t.Errorf("%s: %s = %q, want %q", where, h, got, want)
		}
	}
	htmlEl := find(p.doc, func(n *html.Node) bool { return n.Data == "html" })
	if len(htmlEl) != 1 || attr(htmlEl[0], "lang") != lang {
		t.Errorf("%s: <html lang> is not %q", where, lang)
	}
	for _, n := range find(p.doc, func(n *html.Node) bool { return n.Data == "script" || n.Data == "style" }) {
		// passkey.js is the pages' only script: loaded from this origin,
		// nothing inline, and the CSP then allows 'self' scripts and
		// fetches only.
		if n.Data == "script" && attr(n, "src") == "/auth/assets/passkey.js" && n.FirstChild == nil &&
			strings.HasSuffix(p.header.Get("Content-Security-Policy"), "; script-src 'self'; connect-src 'self'") {
			continue
		}
		t.Errorf("%s: has a <%s> element other than passkey.js", where, n.Data)
	}
	for _, n := range find(p.doc, func(n *html.Node) bool { return true }) {
		for _, a := range n.Attr {
			if a.Key == "style" || strings.HasPrefix(a.Key, "on") {
				t.Errorf("%s: <%s %s=…> inline", where, n.Data, a.Key)
			}
		}
	}
	labels := map[string]bool{}
	for _, l := range find(p.doc, func(n *html.Node) bool { return n.Data == "label" }) {
		labels[attr(l, "for")] = true
	}
	for _, in := range find(p.doc, func(n *html.Node) bool { return n.Data == "input" && attr(n, "type") != "hidden" }) {
		if !labels[attr(in, "id")] {
			t.Errorf("%s: input %q has no <label for>", where, attr(in, "name"))
		}
		if attr(in, "autocomplete") == "" {
			t.Errorf("%s: input %q has no autocomplete", where, attr(in, "name"))
		}
	}
	if len(find(p.doc, func(n *html.Node) bool { return n.Data == "h1" })) != 1 {
		t.Errorf("%s: not exactly one <h1>", where)
	}
}

// TestCookieAttributes: the flow and session cookies are HttpOnly,
// SameSite=Lax, Path=/ and never carry a Domain; on an https public URL
// they are Secure and the session cookie is __Host-onramp_session.
func TestCookieAttributes(t *testing.T) {
	for _, tc := range []struct {
		publicURL, session string
		secure             bool
	}{
		{"http://onramp.test:8080", "onramp_session", false},
		{"https://onramp.test", "__Host-onramp_session", true},
	} {
		t.Run(tc.publicURL, func(t *testing.T) {
			s := newTestStackAt(t, tc.publicURL)
			// A client that keeps cookies by hand: a jar would not send
			// Secure cookies over the test server's plain http.
			c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			jar := map[string]string{}
			send := func(method, path string, form url.Values) *http.Response {
				t.Helper()
				var body *strings.Reader
				if form != nil {
					body = strings.NewReader(form.Encode())
				} else {
					body = strings.NewReader("")
				}
				req, _ := http.NewRequest(method, s.url+path, body)
				if form != nil {
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				for k, v := range jar {
					req.AddCookie(&http.Cookie{Name: k, Value: v})
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				for _, ck := range resp.Cookies() {
					jar[ck.Name] = ck.Value
				}
				return resp
			}
			check := func(resp *http.Response, name string) {
				t.Helper()
				for _, raw := range resp.Header.Values("Set-Cookie") {
					if !strings.HasPrefix(raw, name+"=") || strings.HasPrefix(raw, name+"=;") {
						continue
					}
					lower := strings.ToLower(raw)
					for _, want := range []string{"; path=/", "; httponly", "; samesite=lax"} {
						if !strings.Contains(lower, want) {
							t.Errorf("%s lacks %q", raw, want)
						}
					}
					if strings.Contains(lower, "domain=") {
						t.Errorf("%s has a Domain", raw)
					}
					if strings.Contains(lower, "; secure") != tc.secure {
						t.Errorf("%s: Secure should be %v", raw, tc.secure)
					}
					return
				}
				t.Errorf("no %s cookie set: %v", name, resp.Header.Values("Set-Cookie"))
			}
			resp := send(http.MethodGet, "/auth/sign-up", nil)
			check(resp, "onramp_flow")
			flowID, _, _ := strings.Cut(jar["onramp_flow"], ".")
			form := url.Values{"csrf": {s.accounts.CSRFToken(flowID)}, "email": {"kim@example.com"}}
			if resp := send(http.MethodPost, "/auth/sign-up", form); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("sign-up: %d", resp.StatusCode)
			}
			form.Set("code", s.lastCode("kim@example.com"))
			resp = send(http.MethodPost, "/auth/verify", form)
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account" {
				t.Fatalf("verify: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			check(resp, tc.session)
			if _, err := s.accounts.CheckSession(context.Background(), jar[tc.session]); err != nil {
				t.Errorf("the %s cookie is not a live session: %v", tc.session, err)
			}
		})
	}
}

// TestSignUpPrefillOnlyInTheSameBrowser: the browser whose tracking cookie
// belongs to a known person is not asked again for the email and name it
// gave: the page says whom it signs up as, with a way out; any other
// browser sees the whole, empty form and nothing of the person.
func TestSignUpPrefillOnlyInTheSameBrowser(t *testing.T) {
	s := newTestStack(t)
	if r := s.track("/v1/identify", `{"anonymousId":"anon-bea","traits":{"email":"bea@example.com","name":"Bea <b>Bold</b>","company":"Acme"}}`); r.status != http.StatusOK {
		t.Fatalf("identify: %d %s", r.status, r.body)
	}
	asks := func(p *page) (email, name bool) {
		return strings.Contains(p.body, `id="email"`), strings.Contains(p.body, `id="name"`)
	}
	same := s.browser()
	same.setCookie("onramp_anon_id", "anon-bea")
	p := same.get("/auth/sign-up")
	if e, n := asks(p); e || n {
		t.Errorf("the recognised browser is asked again for what it gave (email %v, name %v):\n%s", e, n, p.body)
	}
	known := find(p.doc, func(n *html.Node) bool { return attr(n, "id") == "known" })
	if len(known) != 1 || text(known[0]) != "Signing up as Bea <b>Bold</b> (bea@example.com) — not you?" || !strings.Contains(p.body, "Bea &lt;b&gt;Bold&lt;/b&gt;") {
		t.Fatalf("the recognised browser is not told whom it signs up as, or the name is not escaped:\n%s", p.body)
	}
	f := p.form(t, "/auth/sign-up")
	if f.values.Get("as") != "known" || f.values.Has("email") || f.values.Has("name") {
		t.Errorf("the recognised form posts %v; want as=known and neither email nor name", f.values)
	}
	// In German too, and the way out keeps the language.
	de := same.get("/auth/sign-up?ui_locales=de")
	if k := find(de.doc, func(n *html.Node) bool { return attr(n, "id") == "known" }); len(k) != 1 || !strings.HasPrefix(text(k[0]), "Registrierung als Bea") || !strings.HasSuffix(text(k[0]), "nicht Sie?") {
		t.Errorf("German recognised form:\n%s", de.body)
	}
	var notYou string
	for _, a := range find(de.doc, func(n *html.Node) bool { return n.Data == "a" && strings.Contains(attr(n, "href"), "as=new") }) {
		notYou = attr(a, "href")
	}
	if u, err := url.Parse(notYou); err != nil || u.Path != "/auth/sign-up" || u.Query().Get("ui_locales") != "de" {
		t.Errorf("the German \"nicht Sie?\" link is %q", notYou)
	}
	// "Not you?" starts a blank sign-up: everything asked, nothing shown.
	blank := same.get(notYou)
	// "Bea " with its space: a random CSRF token may hold the letters.
	if e, n := asks(blank); !e || !n || strings.Contains(blank.body, "bea@example.com") || strings.Contains(blank.body, "Bea ") || blank.form(t, "/auth/sign-up").values.Has("as") {
		t.Errorf("the blank sign-up shows the known person or does not ask:\n%s", blank.body)
	}

	// Other browsers: another cookie, or Bea's id in a link (links can be
	// copied, cookies cannot) see the whole form and nothing of Bea.
	other := s.browser()
	other.setCookie("onramp_anon_id", "anon-someone-else")
	linked := s.browser()
	for _, c := range []struct {
		name string
		p    *page
	}{{"another browser", other.get("/auth/sign-up")}, {"a link with Bea's id", linked.get("/auth/sign-up?onramp_aid=anon-bea")}} {
		if e, n := asks(c.p); !e || !n || strings.Contains(c.p.body, "bea@example.com") || strings.Contains(c.p.body, "Bea ") || strings.Contains(c.p.body, `id="known"`) {
			t.Errorf("%s: asked email %v name %v, or sees Bea's data:\n%s", c.name, e, n, c.p.body)
		}
	}
	// Posting the recognised form from an unrecognised browser reveals
	// nothing either: it is a form without an email.
	forged := other.submit(other.get("/auth/sign-up").form(t, "/auth/sign-up"), "as", "known")
	if forged.status != http.StatusBadRequest || strings.Contains(forged.body, "bea@example.com") || strings.Contains(forged.body, "Bea ") || !strings.Contains(forged.body, `id="email"`) {
		t.Errorf("as=known from another browser: %d\n%s", forged.status, forged.body)
	}
	if n := len(s.mails("bea@example.com")); n != 0 {
		t.Errorf("%d emails to Bea from others' sign-ups", n)
	}

	// The recognised browser signs up without typing its email. What the
	// post carries instead is not taken: the server finds the email and
	// the name again from the same cookie.
	p = same.submit(same.get("/auth/sign-up").form(t, "/auth/sign-up"), "email", "mallory@example.com", "name", "Mallory")
	if p.url.Path != "/auth/verify" || !strings.Contains(p.body, "bea@example.com") || strings.Contains(p.body, "mallory") {
		t.Fatalf("recognised sign-up: at %s (%d):\n%s", p.url, p.status, p.body)
	}
	if n := len(s.mails("mallory@example.com")); n != 0 {
		t.Errorf("%d emails to the address put into the post", n)
	}
	wantAt(t, same.verify(p, s.lastCode("bea@example.com")), "/account")
	ctx := context.Background()
	prof, err := s.ids.Lookup(ctx, identity.Key{Type: identity.AnonymousID, Value: "anon-bea"})
	if err != nil || prof.Person.UserID == "" {
		t.Fatalf("the browser's person after sign-up: %+v %v", prof, err)
	}
	var traits map[string]any
	_ = json.Unmarshal(prof.Person.Traits, &traits)
	if traits["name"] != "Bea <b>Bold</b>" || traits["company"] != "Acme" {
		t.Errorf("traits after the recognised sign-up: %v", traits)
	}
	people, err := s.ids.Search(ctx, identity.PersonQuery{Limit: 100})
	if err != nil || len(people.Persons) != 1 {
		t.Errorf("people after sign-up: %d (%v), want 1", len(people.Persons), err)
	}
}

// TestSignUpWithAKnownEmailKeepsTraits: a browser that is not recognised
// and types an email Onramp knows is asked everything and shown nothing;
// after proof the account is that person's, and the name typed (never
// shown the known one) does not replace it.
func TestSignUpWithAKnownEmailKeepsTraits(t *testing.T) {
	s := newTestStack(t)
	if r := s.track("/v1/identify", `{"anonymousId":"anon-cy","traits":{"email":"cy@example.com","name":"Cy Known","company":"Acme"}}`); r.status != http.StatusOK {
		t.Fatalf("identify: %d %s", r.status, r.body)
	}
	ctx := context.Background()
	before, err := s.ids.Lookup(ctx, identity.Key{Type: identity.Email, Value: "cy@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	b := s.browser()
	form := b.get("/auth/sign-up")
	if strings.Contains(form.body, "Cy Known") || !strings.Contains(form.body, `id="name"`) {
		t.Fatalf("an unrecognised browser's form:\n%s", form.body)
	}
	p := b.submit(form.form(t, "/auth/sign-up"), "email", "cy@example.com", "name", "Typed Name")
	if p.url.Path != "/auth/verify" || strings.Contains(p.body, "Cy Known") {
		t.Fatalf("sign-up: at %s:\n%s", p.url, p.body)
	}
	p = b.verify(p, s.lastCode("cy@example.com"))
	wantAt(t, p, "/account")
	if facts := accountFacts(t, p); facts["Name"] != "Cy Known" {
		t.Errorf("account page says %v; want the known name kept", facts)
	}
	after, err := s.ids.Lookup(ctx, identity.Key{Type: identity.Email, Value: "cy@example.com"})
	if err != nil || after.Person.ID != before.Person.ID {
		t.Fatalf("the account is on %v (%v), want the known person %s", after, err, before.Person.ID)
	}
	var traits map[string]any
	_ = json.Unmarshal(after.Person.Traits, &traits)
	if traits["name"] != "Cy Known" || traits["company"] != "Acme" {
		t.Errorf("traits after sign-up: %v", traits)
	}
}
