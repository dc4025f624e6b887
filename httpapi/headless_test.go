package httpapi_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/property"
)

// The headless JSON API, driven as a JAMstack site's JavaScript would
// drive it (JSON over CORS, the flow secret in Authorization), against the
// whole server with the real OpenID Connect provider over real SQLite.

const shopOrigin = "https://shop.example.com"

// site is a property whose public client signs people in with its own
// forms, and what its JavaScript holds during one sign-in.
type site struct {
	s        *testStack
	prop     *auth.PropertyCreated
	origin   string
	redirect string
	verifier string
}

func (s *testStack) site(name, origin string) *site {
	s.t.Helper()
	redirect := origin + "/callback"
	pc, err := s.oauth.CreateProperty(context.Background(), auth.CreatePropertyParams{
		Property: property.CreateParams{Name: name, Origins: []string{origin}},
		Client:   auth.ClientParams{RedirectURIs: []string{redirect}, Public: true, FirstParty: true},
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return &site{s: s, prop: pc, origin: origin, redirect: redirect}
}

// call posts JSON to the headless API from the site's origin.
func (st *site) call(path, flowSecret string, body any) reply {
	st.s.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		st.s.t.Fatal(err)
	}
	h := []string{"Content-Type", "application/json", "Origin", st.origin}
	if flowSecret != "" {
		h = append(h, "Authorization", "Flow "+flowSecret)
	}
	return st.s.do(http.MethodPost, path, b, h...)
}

type startedFlow struct {
	FlowID     string   `json:"flow_id"`
	FlowSecret string   `json:"flow_secret"`
	Next       []string `json:"next"`
}

// params are the authorization parameters of a new flow, with a fresh
// PKCE verifier kept by the site.
func (st *site) params(kind string) map[string]string {
	st.verifier = oauth2.GenerateVerifier()
	return map[string]string{
		"client_id": st.prop.Client.ID, "redirect_uri": st.redirect, "response_type": "code", "scope": "openid email profile",
		"state": "st-1", "nonce": "n-1", "code_challenge": oauth2.S256ChallengeFromVerifier(st.verifier), "code_challenge_method": "S256",
		"kind": kind, "anonymous_id": "anon-site-1",
	}
}

func (st *site) start(kind string) startedFlow {
	st.s.t.Helper()
	r := st.call("/api/auth/flows", "", st.params(kind))
	if r.status != http.StatusCreated {
		st.s.t.Fatalf("start flow = %d %s", r.status, r.body)
	}
	var f startedFlow
	r.json(st.s.t, &f)
	return f
}

type complete struct {
	Status      string `json:"status"`
	ContinueURL string `json:"continue_url"`
}

// signUp runs a whole headless sign-up up to the continue URL.
func (st *site) signUp(email string) string {
	st.s.t.Helper()
	f := st.start("signup")
	if r := st.call("/api/auth/flows/"+f.FlowID+"/signup", f.FlowSecret, map[string]string{"email": email, "password": "a long headless passphrase", "name": "Grace"}); r.status != http.StatusOK {
		st.s.t.Fatalf("signup = %d %s", r.status, r.body)
	}
	r := st.call("/api/auth/flows/"+f.FlowID+"/code/verify", f.FlowSecret, map[string]string{"code": st.s.lastCode(email)})
	var c complete
	r.json(st.s.t, &c)
	if r.status != http.StatusOK || c.Status != "complete" {
		st.s.t.Fatalf("verify = %d %s", r.status, r.body)
	}
	return c.ContinueURL
}

// navigator is a browser without JavaScript: a cookie jar, following
// redirects on Onramp and stopping at the first one that leaves it.
func (s *testStack) navigator() *http.Client {
	jar, _ := cookiejar.New(nil)
	host := strings.TrimPrefix(s.url, "http://")
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != host {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

func navigate(t *testing.T, c *http.Client, u string) *http.Response {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// count is the number of rows in a table, read beside the server.
func (s *testStack) count(table string) int {
	s.t.Helper()
	db, err := sql.Open("sqlite", "file:"+s.db.Path()+"?mode=ro")
	if err != nil {
		s.t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		s.t.Fatal(err)
	}
	return n
}

// TestHeadlessSignUpToTokens: a site's own forms sign a new person up
// through the JSON API (code from the outbox), the continue URL gets the
// browser its Onramp session first-party and lands at the site's
// redirect URI with a code, the site exchanges it for standard tokens
// with its PKCE verifier, and the session then signs the browser into
// another property without a page (single sign-on).
func TestHeadlessSignUpToTokens(t *testing.T) {
	s := newTestStackWith(t, stackOptions{oidc: true})
	ctx := context.Background()
	st := s.site("Shop", shopOrigin)

	r := st.call("/api/auth/flows", "", st.params("signup"))
	if r.status != http.StatusCreated || r.header.Get("Access-Control-Allow-Origin") != shopOrigin || r.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("start = %d %v %s", r.status, r.header, r.body)
	}
	if r.header.Get("Set-Cookie") != "" || r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("start sets a cookie or may be cached: %v", r.header)
	}
	var f startedFlow
	r.json(t, &f)
	if !strings.HasPrefix(f.FlowID, "flw_") || !strings.HasPrefix(f.FlowSecret, f.FlowID+".") || strings.Join(f.Next, ",") != "signup" {
		t.Fatalf("started flow = %s", r.body)
	}

	r = st.call("/api/auth/flows/"+f.FlowID+"/signup", f.FlowSecret, map[string]string{"email": "Grace@Example.com", "password": "a long headless passphrase", "name": "Grace"})
	var step auth.Step
	r.json(t, &step)
	if r.status != http.StatusOK || step.Next != auth.StepVerifyEmail || step.FlowID != f.FlowID || step.Email != "grace@example.com" {
		t.Fatalf("signup = %d %s", r.status, r.body)
	}
	// A moment later, as a person would: the newest code is the one with
	// the latest created_at. On this frozen clock both codes would share
	// it, and the tie falls to the code ids, whose bits after the
	// millisecond are random, so verify would check either code.
	s.clock.Advance(time.Second)
	if r := st.call("/api/auth/flows/"+f.FlowID+"/resend", f.FlowSecret, nil); r.status != http.StatusOK {
		t.Fatalf("resend = %d %s", r.status, r.body)
	}
	if n := len(s.mails("grace@example.com")); n != 2 {
		t.Fatalf("%d emails after sign-up and resend, want 2", n)
	}
	wrong := st.call("/api/auth/flows/"+f.FlowID+"/code/verify", f.FlowSecret, map[string]string{"code": "000000"})
	if p := wantProblem(t, wrong, http.StatusBadRequest); !strings.Contains(string(wrong.body), `"field":"code"`) {
		t.Errorf("wrong code problem = %+v %s", p, wrong.body)
	}
	r = st.call("/api/auth/flows/"+f.FlowID+"/code/verify", f.FlowSecret, map[string]string{"code": s.lastCode("grace@example.com")})
	var c complete
	r.json(t, &c)
	if r.status != http.StatusOK || c.Status != "complete" || !strings.HasPrefix(c.ContinueURL, s.url+"/auth/continue?ticket=tkt_") {
		t.Fatalf("verify = %d %s", r.status, r.body)
	}

	// The site navigates the browser (top level) to the continue URL.
	browser := s.navigator()
	resp := navigate(t, browser, c.ContinueURL)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound || loc.Scheme+"://"+loc.Host+loc.Path != st.redirect {
		t.Fatalf("continue ended with %d at %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	code, state := loc.Query().Get("code"), loc.Query().Get("state")
	if code == "" || state != "st-1" {
		t.Fatalf("redirect to the site = %s", loc)
	}
	base, _ := url.Parse(s.url)
	var session string
	for _, ck := range browser.Jar.Cookies(base) {
		if ck.Name == "onramp_session" {
			session = ck.Value
		}
	}
	ses, err := s.accounts.CheckSession(ctx, session)
	if err != nil {
		t.Fatalf("the browser holds no live Onramp session after continue: %v", err)
	}

	// Standard tokens for the site, with its PKCE verifier.
	provider, err := oidc.NewProvider(ctx, s.url)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: st.prop.Client.ID, Endpoint: provider.Endpoint(), RedirectURL: st.redirect, Scopes: []string{"openid", "email"}}
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(st.verifier))
	if err != nil {
		t.Fatalf("token exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: st.prop.Client.ID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("id token: %v", err)
	}
	var sid struct {
		SID string `json:"sid"`
	}
	if err := idt.Claims(&sid); err != nil || idt.Nonce != "n-1" || sid.SID != ses.ID {
		t.Errorf("id token nonce %q sid %q, %v; want nonce n-1 and sid %s", idt.Nonce, sid.SID, err, ses.ID)
	}
	ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || ui.Email != "grace@example.com" || !ui.EmailVerified || ui.Subject != idt.Subject {
		t.Errorf("userinfo = %+v, %v", ui, err)
	}
	if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(st.verifier)); err == nil {
		t.Error("the code was exchanged twice")
	}
	acc, err := s.accounts.AccountOfPerson(ctx, ses.PersonID)
	if err != nil || idt.Subject != acc.Subject {
		t.Errorf("sub %q, account %+v %v", idt.Subject, acc, err)
	}

	// Single sign-on: another property's authorize with prompt=none in the
	// same browser answers a code without any page.
	other := s.site("Community", "https://community.example.com")
	u := s.url + "/oauth/authorize?" + url.Values{
		"client_id": {other.prop.Client.ID}, "redirect_uri": {other.redirect}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"sso"}, "prompt": {"none"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"},
	}.Encode()
	resp = navigate(t, browser, u)
	loc, _ = url.Parse(resp.Header.Get("Location"))
	if loc == nil || loc.Query().Get("code") == "" || !strings.HasPrefix(loc.String(), other.redirect) {
		t.Errorf("prompt=none at another property after continue = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestHeadlessTicket: a continue ticket works once and for 60 seconds; a
// refused one shows an error page, sets no session and sends the browser
// nowhere.
func TestHeadlessTicket(t *testing.T) {
	s := newTestStackWith(t, stackOptions{oidc: true})
	st := s.site("Shop", shopOrigin)
	cont := st.signUp("once@example.com")
	first := navigate(t, s.navigator(), cont)
	if first.StatusCode != http.StatusFound {
		t.Fatalf("first continue = %d", first.StatusCode)
	}
	again := s.navigator()
	resp := navigate(t, again, cont)
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || len(again.Jar.Cookies(mustURL(s.url))) != 0 {
		t.Errorf("second use of a ticket = %d Location %q cookies %v", resp.StatusCode, resp.Header.Get("Location"), again.Jar.Cookies(mustURL(s.url)))
	}
	if resp.Header.Get("Referrer-Policy") != "no-referrer" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("continue headers %v", resp.Header)
	}

	// Sign in again by password; wait past the ticket's minute.
	f := st.start("signin")
	r := st.call("/api/auth/flows/"+f.FlowID+"/password", f.FlowSecret, map[string]string{"email": "once@example.com", "password": "a long headless passphrase"})
	var c complete
	r.json(t, &c)
	s.clock.Advance(61 * time.Second)
	late := s.navigator()
	if resp := navigate(t, late, c.ContinueURL); resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || len(late.Jar.Cookies(mustURL(s.url))) != 0 {
		t.Errorf("continue after 61 s = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, bad := range []string{"", "tkt_forged", "lnk_x"} {
		if resp := navigate(t, s.navigator(), s.url+"/auth/continue?ticket="+url.QueryEscape(bad)); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("continue with %q = %d", bad, resp.StatusCode)
		}
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// TestHeadlessCORS: only the origins of the flow's client's property get
// CORS headers, for preflights and real requests alike; another origin
// (even another property's) is refused with no CORS headers and nothing
// written; credentials are never allowed.
func TestHeadlessCORS(t *testing.T) {
	s := newTestStackWith(t, stackOptions{oidc: true})
	st := s.site("Shop", shopOrigin)
	other := s.site("Community", "https://community.example.com")
	f := st.start("signin")

	preflight := func(path, origin string) reply {
		t.Helper()
		return s.do(http.MethodOptions, path, nil, "Origin", origin, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type")
	}
	for _, path := range []string{"/api/auth/flows", "/api/auth/flows/" + f.FlowID + "/password", "/api/auth/flows/" + f.FlowID + "/code/send"} {
		r := preflight(path, shopOrigin)
		h := r.header
		if r.status != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != shopOrigin || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") ||
			!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") || h.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("preflight %s from the site = %d %v", path, r.status, h)
		}
		if r := preflight(path, "https://evil.example"); r.header.Get("Access-Control-Allow-Origin") != "" || r.header.Get("Access-Control-Allow-Methods") != "" {
			t.Errorf("preflight %s from evil = %v", path, r.header)
		}
	}
	// Another property's origin may start flows of its own client, but
	// not call the site's flow.
	if r := preflight("/api/auth/flows/"+f.FlowID+"/password", other.origin); r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("another property's origin passed the flow's preflight: %v", r.header)
	}

	flows, requests := s.count("auth_flows"), s.count("auth_requests")
	for _, origin := range []string{"https://evil.example", other.origin, "null"} {
		evil := *st
		evil.origin = origin
		r := evil.call("/api/auth/flows", "", st.params("signin"))
		if r.status != http.StatusForbidden || r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("start from %s = %d %v", origin, r.status, r.header)
		}
		r = evil.call("/api/auth/flows/"+f.FlowID+"/code/send", f.FlowSecret, map[string]string{"email": "x@example.com"})
		if r.status != http.StatusForbidden || r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("step from %s = %d %v", origin, r.status, r.header)
		}
	}
	if s.count("auth_flows") != flows || s.count("auth_requests") != requests || len(s.mails("x@example.com")) != 0 {
		t.Error("refused origins wrote flows, auth requests or emails")
	}
	// A server-side caller (no Origin) is not a browser: no CORS at all.
	r := s.api("", http.MethodPost, "/api/auth/flows/"+f.FlowID+"/code/send", map[string]string{"email": "x@example.com"})
	if r.status != http.StatusUnauthorized || r.header.Get("Access-Control-Allow-Origin") != "" || r.header.Get("WWW-Authenticate") != `Flow realm="onramp"` {
		t.Errorf("step without Origin or secret = %d %v", r.status, r.header)
	}
}

// TestHeadlessSameAnswers: sign-up, "email me a code" and a wrong password
// answer an unknown email, a person known from tracking and an account
// with the same status and body (flow id, request id and the typed email
// masked), and each sending step sends exactly one email.
func TestHeadlessSameAnswers(t *testing.T) {
	s := newTestStackWith(t, stackOptions{oidc: true})
	st := s.site("Shop", shopOrigin)
	if r := s.track("/v1/identify", `{"userId":"u-known","traits":{"email":"known@example.com"}}`); r.status != http.StatusOK {
		t.Fatalf("identify: %d %s", r.status, r.body)
	}
	st.signUp("acct@example.com")
	emails := []string{"unknown@example.com", "known@example.com", "acct@example.com"}
	mask := regexp.MustCompile(`flw_[a-z0-9]+|"request_id":"[0-9a-f]+"`)
	cases := []struct {
		name, kind, step string
		body             func(email string) map[string]string
		mails            int
	}{
		{"sign-up", "signup", "signup", func(e string) map[string]string {
			return map[string]string{"email": e, "password": "some new passphrase"}
		}, 1},
		{"code", "signin", "code/send", func(e string) map[string]string { return map[string]string{"email": e} }, 1},
		{"password", "signin", "password", func(e string) map[string]string { return map[string]string{"email": e, "password": "not the password"} }, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var firstStatus int
			var firstBody string
			for i, email := range emails {
				before := len(s.mails(email))
				f := st.start(c.kind)
				r := st.call("/api/auth/flows/"+f.FlowID+"/"+c.step, f.FlowSecret, c.body(email))
				body := mask.ReplaceAllString(strings.ReplaceAll(string(r.body), email, "EMAIL"), "X")
				if i == 0 {
					firstStatus, firstBody = r.status, body
				} else if r.status != firstStatus || body != firstBody {
					t.Errorf("%s answers %d %s; %s answered %d %s", email, r.status, body, emails[0], firstStatus, firstBody)
				}
				if got := len(s.mails(email)) - before; got != c.mails {
					t.Errorf("%s: %d emails, want %d", email, got, c.mails)
				}
			}
		})
	}
}

// TestHeadlessLimits: the sixth wrong password for an email answers 429
// with Retry-After through the API too, and a right one during the wait
// as well.
func TestHeadlessLimits(t *testing.T) {
	s := newTestStackWith(t, stackOptions{oidc: true})
	st := s.site("Shop", shopOrigin)
	st.signUp("guess@example.com")
	f := st.start("signin")
	try := func(pw string) reply {
		return st.call("/api/auth/flows/"+f.FlowID+"/password", f.FlowSecret, map[string]string{"email": "guess@example.com", "password": pw})
	}
	for i := range 5 {
		if r := try("wrong guess"); r.status != http.StatusUnauthorized {
			t.Fatalf("wrong password %d = %d %s", i+1, r.status, r.body)
		}
	}
	for _, pw := range []string{"wrong guess", "a long headless passphrase"} {
		r := try(pw)
		wantProblem(t, r, http.StatusTooManyRequests)
		if r.header.Get("Retry-After") == "" || r.header.Get("Access-Control-Allow-Origin") != shopOrigin {
			t.Errorf("429 headers %v (Retry-After, readable by the site)", r.header)
		}
		if !strings.Contains(r.header.Get("Access-Control-Expose-Headers"), "Retry-After") {
			t.Errorf("Retry-After is not exposed to the site: %v", r.header)
		}
	}
}

// TestHeadlessRefusals: another flow's secret, a wrong secret, no secret,
// malformed JSON, oversized bodies, unknown fields and bad authorization
// parameters are refused with problem documents, and nothing is written.
func TestHeadlessRefusals(t *testing.T) {
	s := newTestStackWith(t, stackOptions{oidc: true})
	st := s.site("Shop", shopOrigin)
	a, b := st.start("signin"), st.start("signin")
	tables := []string{"auth_flows", "auth_requests", "one_time_codes", "auth_outbox", "sessions"}
	before := map[string]int{}
	for _, tb := range tables {
		before[tb] = s.count(tb)
	}
	raw := func(path, secret, body string) reply {
		h := []string{"Content-Type", "application/json", "Origin", shopOrigin}
		if secret != "" {
			h = append(h, "Authorization", "Flow "+secret)
		}
		return s.do(http.MethodPost, path, []byte(body), h...)
	}
	send := "/api/auth/flows/" + a.FlowID + "/code/send"
	big := `{"email":"` + strings.Repeat("a", 20<<10) + `@example.com"}`
	params, _ := json.Marshal(st.params("signin"))
	for _, tc := range []struct {
		name   string
		r      reply
		status int
	}{
		{"another flow's secret", raw(send, b.FlowSecret, `{"email":"x@example.com"}`), http.StatusUnauthorized},
		{"a wrong secret", raw(send, a.FlowID+".flw_wrong", `{"email":"x@example.com"}`), http.StatusNotFound},
		{"no secret", raw(send, "", `{"email":"x@example.com"}`), http.StatusUnauthorized},
		{"a bearer token", s.do(http.MethodPost, send, []byte(`{"email":"x@example.com"}`), "Authorization", "Bearer "+a.FlowSecret, "Origin", shopOrigin), http.StatusUnauthorized},
		{"an unknown flow", raw("/api/auth/flows/flw_nope/code/send", "flw_nope.x", `{"email":"x@example.com"}`), http.StatusNotFound},
		{"malformed step JSON", raw(send, a.FlowSecret, `{"email":`), http.StatusBadRequest},
		{"step JSON with trailing data", raw(send, a.FlowSecret, `{"email":"x@example.com"} {}`), http.StatusBadRequest},
		{"unknown step field", raw(send, a.FlowSecret, `{"email":"x@example.com","admin":true}`), http.StatusBadRequest},
		{"oversized step", raw(send, a.FlowSecret, big), http.StatusRequestEntityTooLarge},
		{"text/plain step", s.do(http.MethodPost, send, []byte(`{"email":"x@example.com"}`), "Content-Type", "text/plain", "Authorization", "Flow "+a.FlowSecret, "Origin", shopOrigin), http.StatusBadRequest},
		{"malformed start JSON", raw("/api/auth/flows", "", `{"client_id":`), http.StatusBadRequest},
		{"oversized start", raw("/api/auth/flows", "", `{"state":"`+strings.Repeat("s", 20<<10)+`"}`), http.StatusRequestEntityTooLarge},
		{"empty start", raw("/api/auth/flows", "", ``), http.StatusBadRequest},
		{"unknown kind", raw("/api/auth/flows", "", strings.Replace(string(params), `"kind":"signin"`, `"kind":"passkey"`, 1)), http.StatusBadRequest},
		{"foreign redirect", raw("/api/auth/flows", "", strings.Replace(string(params), `/callback"`, `/callback/x"`, 1)), http.StatusBadRequest},
		{"plain PKCE", raw("/api/auth/flows", "", strings.Replace(string(params), `"S256"`, `"plain"`, 1)), http.StatusBadRequest},
		{"no PKCE", raw("/api/auth/flows", "", regexp.MustCompile(`"code_challenge(_method)?":"[^"]*",?`).ReplaceAllString(string(params), "")), http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := wantProblem(t, tc.r, tc.status)
			if tc.r.header.Get("Access-Control-Allow-Origin") != shopOrigin {
				t.Errorf("the site cannot read the refusal: %v", tc.r.header)
			}
			if strings.Contains(tc.name, "PKCE") || strings.Contains(tc.name, "redirect") {
				if !strings.Contains(string(tc.r.body), `"oauth_error":"invalid_request"`) {
					t.Errorf("no oauth_error in %s (%+v)", tc.r.body, p)
				}
			}
		})
	}
	for _, tb := range tables {
		if n := s.count(tb); n != before[tb] {
			t.Errorf("%s: %d rows, %d before the refusals", tb, n, before[tb])
		}
	}
	// Flow b is untouched by a's secret attempt and still works.
	if r := st.call("/api/auth/flows/"+b.FlowID+"/code/send", b.FlowSecret, map[string]string{"email": "x@example.com"}); r.status != http.StatusOK {
		t.Errorf("flow b after the refusals = %d %s", r.status, r.body)
	}
}

// TestHeadlessEmailLanguage: a headless flow's emails follow its
// ui_locales, else the request's Accept-Language, like the pages'.
func TestHeadlessEmailLanguage(t *testing.T) {
	s := newTestStackWith(t, stackOptions{oidc: true})
	st := s.site("lang-site", "https://lang.example.com")
	for _, c := range []struct {
		email, uiLocales string
		german           bool
	}{
		{"de@example.com", "de", true},
		{"en@example.com", "", false},
	} {
		params := st.params("signup")
		if c.uiLocales != "" {
			params["ui_locales"] = c.uiLocales
		}
		r := st.call("/api/auth/flows", "", params)
		var f startedFlow
		r.json(t, &f)
		if r := st.call("/api/auth/flows/"+f.FlowID+"/signup", f.FlowSecret, map[string]string{"email": c.email}); r.status != http.StatusOK {
			t.Fatalf("signup = %d %s", r.status, r.body)
		}
		ms := s.mails(c.email)
		if len(ms) != 1 {
			t.Fatalf("%d emails to %s", len(ms), c.email)
		}
		if got := strings.Contains(ms[0].Subject, "Bestätigungscode"); got != c.german {
			t.Errorf("ui_locales %q: subject %q", c.uiLocales, ms[0].Subject)
		}
	}
}
