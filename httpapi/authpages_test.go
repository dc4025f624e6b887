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
// belongs to a known person sees their email filled in and is not asked
// for a name it gave already; any other browser sees an empty form.
func TestSignUpPrefillOnlyInTheSameBrowser(t *testing.T) {
	s := newTestStack(t)
	if r := s.track("/v1/identify", `{"anonymousId":"anon-bea","traits":{"email":"bea@example.com","name":"Bea <b>Bold</b>"}}`); r.status != http.StatusOK {
		t.Fatalf("identify: %d %s", r.status, r.body)
	}
	same := s.browser()
	same.setCookie("onramp_anon_id", "anon-bea")
	p := same.get("/auth/sign-up")
	if !strings.Contains(p.body, `value="bea@example.com"`) {
		t.Error("the same browser's sign-up form does not have the email filled in")
	}
	if strings.Contains(p.body, `id="name"`) || !strings.Contains(p.body, "Bea &lt;b&gt;Bold&lt;/b&gt;") {
		t.Error("the same browser is asked for a name it gave already, or the name is not shown escaped")
	}
	other := s.browser()
	other.setCookie("onramp_anon_id", "anon-someone-else")
	p = other.get("/auth/sign-up")
	if strings.Contains(p.body, "bea@example.com") || strings.Contains(p.body, "Bea") || !strings.Contains(p.body, `id="name"`) {
		t.Error("another browser sees the known person's data")
	}
	// A link carrying Bea's tracking id pre-fills nothing: links can be
	// copied, cookies cannot.
	linked := s.browser()
	p = linked.get("/auth/sign-up?onramp_aid=anon-bea")
	if strings.Contains(p.body, "bea@example.com") || strings.Contains(p.body, "Bea") {
		t.Error("a link with someone's tracking id shows their data")
	}
	// The anonymous id reaches the account: the browsing joins Bea.
	wantAt(t, same.signUp("bea@example.com", "", ""), "/account")
	prof, err := s.ids.Lookup(context.Background(), identity.Key{Type: identity.AnonymousID, Value: "anon-bea"})
	if err != nil || prof.Person.UserID == "" {
		t.Errorf("the browser's person after sign-up: %+v %v", prof, err)
	}
}
