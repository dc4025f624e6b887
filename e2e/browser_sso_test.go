package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// TestBrowserSSO walks the single sign-on of the design (§1, steps 4 to 6)
// in a real chromium: two relying-party web apps on two sites, both
// go-oidc + x/oauth2 server-side apps, and Onramp on a third.
//
//	Onramp  http://127.0.0.1:PO
//	app A   http://a.localhost:PA   (chromium resolves *.localhost to loopback itself)
//	app B   http://b.localhost:PB
//
// A visitor Onramp already knows from an identify call opens A, signs up
// on Onramp's pages with the code from Mailpit and lands back at A signed
// in; B then signs them in with prompt=none and no typing; logging out at
// A ends the Onramp session, B hears it on its back-channel endpoint, and
// B's next prompt=none answers login_required. Afterwards the JSON API
// shows one person, verified, with the trait from the identify call and
// the sign-up, email proof, login and logout on the timeline. Screenshots
// of every step go to e2e/testdata/out/sso-*.png.
func TestBrowserSSO(t *testing.T) {
	requireChromium(t)
	start := time.Now()
	step := func(what string) { t.Logf("%-52s at %v", what, time.Since(start).Round(time.Millisecond)) }
	n, mp := startSSONode(t)
	a := newSSOApp(t, n, "A", "a", false)
	b := newSSOApp(t, n, "B", "b", true)
	step("onramp, mailpit, apps A and B")

	// Onramp knows the visitor before they sign up: an identify from the
	// website with their email, their company and the browser's
	// anonymous id.
	run := browserRunID(t)
	email := "sso-" + run + "@example.com"
	anon := "anon-sso-" + run
	mustPost(t, n, a.client.WriteKey, []byte(`{"batch":[{"type":"identify","anonymousId":`+jsLit(anon)+`,"messageId":`+jsLit("sso-identify-"+run)+
		`,"traits":{"email":`+jsLit(email)+`,"company":"Acme Rockets"}}]}`), 1)

	browser := startBrowser(t)
	tb := newTab(t, browser)
	step("identify sent, chromium started")

	// 1. Open A: it sends the browser to Onramp, whose sign-in page offers
	// sign-up; the sign-up page asks for what Onramp does not know.
	tb.do("open app A", chromedp.Navigate(a.base+"/"))
	tb.waitPath(n.URL, "/auth/sign-in")
	tb.screenshot("sso-01-a-sends-to-onramp-sign-in")
	tb.do("follow the sign-up link", chromedp.Click(`a[href^="/auth/sign-up"]`))
	tb.waitPath(n.URL, "/auth/sign-up")
	if strings.Contains(tb.html(), `name="company"`) {
		t.Error("the sign-up form asks for the company")
	}
	tb.do("type the email and name",
		chromedp.SendKeys(`#email`, email),
		chromedp.SendKeys(`#name`, "Ada Lovelace"))
	tb.screenshot("sso-02-sign-up-form")
	tb.do("create the account", chromedp.Click(`button.primary`))
	tb.waitPath(n.URL, "/auth/verify")
	tb.screenshot("sso-03-code-page")
	step("A → Onramp sign-up → code page")

	// 2. The code from the email, typed in: back at A, signed in.
	code := mailedCode(t, mp, email)
	tb.do("type the code", chromedp.SendKeys(`#code`, code))
	tb.do("continue", chromedp.Click(`button[value="verify"]`))
	tb.waitLocation(a.base + "/")
	tb.waitText("#who", email)
	tb.screenshot("sso-04-a-signed-in")
	sa := a.onlySession(t)
	if sa.Email != email || !sa.EmailVerified || sa.Name != "Ada Lovelace" || !strings.HasPrefix(sa.Subject, "usr_") || !strings.HasPrefix(sa.SID, "ses_") {
		t.Fatalf("A's session = %+v", sa)
	}
	step("code from Mailpit → signed in at A")

	// 3. Open B: it tries prompt=none first and gets a code from the live
	// Onramp session; no Onramp page is ever shown.
	shownBefore := len(tb.onrampPages(n.URL))
	tb.do("open app B", chromedp.Navigate(b.base+"/"))
	tb.waitLocation(b.base + "/")
	tb.waitText("#who", email)
	tb.screenshot("sso-05-b-signed-in-without-typing")
	sb := b.onlySession(t)
	if sb.Subject != sa.Subject || sb.SID != sa.SID || sb.Email != email || sb.Prompt != "none" {
		t.Errorf("B's session = %+v; want A's person %s and Onramp session %s, signed in by prompt=none", sb, sa.Subject, sa.SID)
	}
	if shown := tb.onrampPages(n.URL)[shownBefore:]; len(shown) > 0 {
		t.Errorf("signing in at B showed Onramp pages: %v", shown)
	}
	step("B signed in by prompt=none")

	// 4. Log out at A: A's logout goes to Onramp's end_session with the ID
	// token, which ends the session and sends the browser back to A.
	tb.do("open A", chromedp.Navigate(a.base+"/"))
	tb.waitText("#who", email)
	tb.do("log out at A", chromedp.Click(`#logout`))
	tb.waitPath(a.base, "/logged-out")
	tb.waitText("#status", "You are signed out of A")
	tb.screenshot("sso-06-a-logged-out")
	if got := a.sessionCount(); got != 0 {
		t.Errorf("A still has %d sessions after its logout", got)
	}
	step("logged out at A through end_session")

	// B hears of it on its back-channel endpoint, and drops its session.
	// (A, which the session also signed into, is told too.)
	for _, app := range []*ssoApp{b, a} {
		lt := app.logouts.waitFor(t, sa.SID, 15*time.Second)
		if lt.Subject != sa.Subject || lt.Audience[0] != app.client.ClientID {
			t.Errorf("%s's logout token sub %q aud %v, want %q [%s]", app.name, lt.Subject, lt.Audience, sa.Subject, app.client.ClientID)
		}
	}
	Eventually(t, 5*time.Second, func() (bool, string) {
		return b.sessionCount() == 0, fmt.Sprintf("B has %d sessions", b.sessionCount())
	})
	step("B received its back-channel logout")

	// B's next visit tries prompt=none again, and Onramp answers
	// login_required: B is logged out too.
	tb.do("open B again", chromedp.Navigate(b.base+"/"))
	tb.waitPath(b.base, "/signed-out")
	tb.waitText("#status", "login_required")
	tb.screenshot("sso-07-b-logged-out-login-required")
	if last := b.lastCallback(); last != "error=login_required prompt=none" {
		t.Errorf("B's last callback: %q, want login_required for prompt=none", last)
	}
	// And A asks for a sign-in again.
	tb.do("open A again", chromedp.Navigate(a.base+"/"))
	tb.waitPath(n.URL, "/auth/sign-in")
	tb.screenshot("sso-08-a-asks-to-sign-in-again")
	tb.noExceptions()
	step("B: login_required; A: sign-in page again")

	// The JSON API, as the owner: one person with the email, verified,
	// the company from the identify call kept, the anonymous id joined,
	// and the whole story on the timeline.
	token := n.OwnerToken(t)
	var people struct {
		Data []struct {
			ID     string         `json:"id"`
			Traits map[string]any `json:"traits"`
		} `json:"data"`
	}
	apiGet(t, n, token, "/api/people?q="+url.QueryEscape(email), &people)
	if len(people.Data) != 1 {
		t.Fatalf("people with %s: %d, want exactly one: %+v", email, len(people.Data), people.Data)
	}
	personID := people.Data[0].ID
	var profile struct {
		Person struct {
			Traits map[string]any `json:"traits"`
		} `json:"person"`
		Identifiers []struct {
			Type     string `json:"type"`
			Value    string `json:"value"`
			Verified bool   `json:"verified"`
		} `json:"identifiers"`
	}
	apiGet(t, n, token, "/api/people/"+personID, &profile)
	if tr := profile.Person.Traits; tr["company"] != "Acme Rockets" || tr["name"] != "Ada Lovelace" {
		t.Errorf("traits = %v; want the company from identify and the name from sign-up", tr)
	}
	have := map[string]bool{}
	for _, id := range profile.Identifiers {
		have[fmt.Sprintf("%s:%s:%v", id.Type, id.Value, id.Verified)] = true
	}
	for _, want := range []string{"email:" + email + ":true", "anonymous_id:" + anon + ":false", "user_id:" + sa.Subject + ":true"} {
		if !have[want] {
			t.Errorf("identifiers lack %s: %+v", want, profile.Identifiers)
		}
	}
	Eventually(t, 15*time.Second, func() (bool, string) {
		var evs struct {
			Data []map[string]any `json:"data"`
		}
		apiGet(t, n, token, "/api/people/"+personID+"/events?limit=1000", &evs)
		names := map[string]bool{}
		for _, e := range evs.Data {
			names[evStr(e, "event")] = true
			if evStr(e, "event") == "auth.signed_up" && evField(e, "properties", "recognized") != true {
				return false, fmt.Sprintf("auth.signed_up without recognized: true: %v", e)
			}
		}
		for _, want := range []string{"auth.signed_up", "auth.email_verified", "auth.logged_in", "auth.logged_out"} {
			if !names[want] {
				return false, "timeline lacks " + want + ":" + describeEvents(evs.Data)
			}
		}
		return len(eventsOfType(evs.Data, "identify")) == 1, "timeline without the identify:" + describeEvents(evs.Data)
	})
	step("JSON API: one verified person, company kept, timeline")
}

// apiGet GETs a JSON API path with an API token and decodes the answer.
func apiGet(t *testing.T, n *Node, token, path string, v any) {
	t.Helper()
	status, body := get(t, n.URL+path, "Authorization", "Bearer "+token)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
}

// waitPath waits until the tab shows a page of origin at path (any query).
func (tb *browserTab) waitPath(origin, path string) {
	tb.t.Helper()
	Eventually(tb.t, 15*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
		defer cancel()
		loc, err := chromedp.Run(ctx, chromedp.Location())
		return err == nil && strings.HasPrefix(loc, origin+path) && (len(loc) == len(origin+path) || strings.ContainsAny(loc[len(origin+path):len(origin+path)+1], "?#")),
			fmt.Sprintf("location %q (%v), want %s%s", loc, err, origin, path)
	})
	// Wait for the document, not just the URL.
	tb.do("wait for "+path, chromedp.WaitReady(`body`))
}

// waitText waits until the element's text contains want.
func (tb *browserTab) waitText(sel, want string) {
	tb.t.Helper()
	tb.waitJS("text of "+sel, `(document.querySelector(`+jsLit(sel)+`)?.textContent || '').includes(`+jsLit(want)+`)`, 10*time.Second)
}

// html is the current document's markup.
func (tb *browserTab) html() string {
	return evalJS[string](tb, "read the page", `document.documentElement.outerHTML`)
}

// onrampPages are the documents Onramp answered with a page (not a
// redirect) in this tab so far.
func (tb *browserTab) onrampPages(onramp string) []string {
	var out []string
	for _, r := range tb.requests(onramp + "/") {
		if r.Type == network.ResourceTypeDocument && r.Status == http.StatusOK {
			out = append(out, r.URL)
		}
	}
	return out
}

// --- a relying-party web app: go-oidc + x/oauth2 on the server side ---

// ssoApp is a small web app that signs people in through Onramp. Its own
// session is a cookie naming a server-side entry; the back-channel logout
// endpoint deletes the entries of the Onramp session it names.
type ssoApp struct {
	t           *testing.T
	name, color string
	base        string // http://x.localhost:port
	silentFirst bool   // try prompt=none before showing any sign-in
	client      oidcClient
	provider    *oidc.Provider
	conf        oauth2.Config
	verifier    *oidc.IDTokenVerifier
	endSession  string
	logouts     logoutReceiver

	mu        sync.Mutex
	pending   map[string]pendingLogin // by state
	sessions  map[string]*appSession  // by cookie value
	callbacks []string
}

type pendingLogin struct{ verifier, nonce, prompt string }

// appSession is what the app keeps of a sign-in: the ID token's subject
// and sid, and the userinfo claims (an ID token in the code flow carries
// no profile claims; userinfo has them).
type appSession struct {
	Subject, SID, Email, Name string
	EmailVerified             bool
	Prompt                    string
	rawIDToken                string
}

// newSSOApp starts an app at http://<host>.localhost:<free port>, with a
// first-party client whose redirect, post-logout and back-channel logout
// URIs are on that origin.
func newSSOApp(t *testing.T, n *Node, name, host string, silentFirst bool) *ssoApp {
	t.Helper()
	app := &ssoApp{t: t, name: name, silentFirst: silentFirst, pending: map[string]pendingLogin{}, sessions: map[string]*appSession{}}
	app.color = map[bool]string{false: "#0b5fff", true: "#0a8f4a"}[silentFirst]
	srv := httptest.NewUnstartedServer(app.routes())
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	app.base = "http://" + host + ".localhost:" + port
	app.client = n.CreateClient(t, "app-"+host, clientOptions{
		Origins:        []string{app.base},
		RedirectURIs:   []string{app.base + "/callback"},
		PostLogoutURIs: []string{app.base + "/logged-out"},
		BackchannelURI: app.base + "/backchannel-logout",
		FirstParty:     true,
	})
	ctx := context.Background()
	if app.provider, err = oidc.NewProvider(ctx, n.URL); err != nil {
		t.Fatalf("app %s: discovery: %v", name, err)
	}
	var meta providerMeta
	if err := app.provider.Claims(&meta); err != nil || meta.EndSession == "" {
		t.Fatalf("app %s: no end_session_endpoint: %v", name, err)
	}
	app.endSession = meta.EndSession
	app.conf = oauth2.Config{
		ClientID: app.client.ClientID, ClientSecret: app.client.ClientSecret, Endpoint: app.provider.Endpoint(),
		RedirectURL: app.base + "/callback", Scopes: []string{oidc.ScopeOpenID, "profile", "email"},
	}
	app.verifier = app.provider.Verifier(&oidc.Config{ClientID: app.client.ClientID})
	app.logouts.setVerifier(app.verifier)
	app.logouts.onToken = app.endSessions
	srv.Start()
	t.Cleanup(srv.Close)
	return app
}

var appPage = template.Must(template.New("app").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>App {{.App}}</title>
<style>
 body { font: 17px/1.5 system-ui, sans-serif; margin: 0; color: #1d2433; background: #fff; }
 header { background: {{.Color}}; color: #fff; padding: 18px 40px; font-size: 24px; font-weight: 700; }
 main { padding: 24px 40px; }
 #status { font-size: 22px; font-weight: 600; }
 dl { display: grid; grid-template-columns: max-content 1fr; gap: 6px 18px; background: #f1f4f9; border: 1px solid #d5dbe6; padding: 14px; }
 dt { font-weight: 600; }
 a.button { display: inline-block; margin-top: 16px; padding: 10px 22px; background: {{.Color}}; color: #fff; border-radius: 6px; text-decoration: none; }
</style></head>
<body><header>App {{.App}} · {{.Origin}}</header><main>
<p id="status">{{.Status}}</p>
{{with .Session}}<dl id="who">
<dt>Email</dt><dd>{{.Email}}{{if .EmailVerified}} (verified){{end}}</dd>
<dt>Name</dt><dd>{{.Name}}</dd>
<dt>Subject (ID token)</dt><dd>{{.Subject}}</dd>
<dt>Onramp session (sid)</dt><dd>{{.SID}}</dd>
<dt>Signed in by</dt><dd>{{if eq .Prompt "none"}}prompt=none, no page shown{{else}}the Onramp sign-in pages{{end}}</dd>
</dl>
<a class="button" id="logout" href="/logout">Log out</a>
{{else}}<a class="button" id="login" href="/login">Sign in with Onramp</a>{{end}}
</main></body></html>
`))

type appView struct {
	App, Color, Origin, Status string
	Session                    *appSession
}

func (app *ssoApp) render(w http.ResponseWriter, status string, s *appSession) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := appPage.Execute(w, appView{App: app.name, Color: app.color, Origin: app.base, Status: status, Session: s}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

const appCookie = "app_session"

func (app *ssoApp) session(r *http.Request) (string, *appSession) {
	c, err := r.Cookie(appCookie)
	if err != nil {
		return "", nil
	}
	app.mu.Lock()
	defer app.mu.Unlock()
	return c.Value, app.sessions[c.Value]
}

func randomToken() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func (app *ssoApp) routes() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if _, s := app.session(r); s != nil {
			app.render(w, "Signed in to "+app.name, s)
			return
		}
		to := "/login"
		if app.silentFirst {
			to += "?prompt=none"
		}
		http.Redirect(w, r, to, http.StatusFound)
	})
	m.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		state, pkce, nonce := randomToken(), oauth2.GenerateVerifier(), randomToken()
		prompt := r.URL.Query().Get("prompt")
		app.mu.Lock()
		app.pending[state] = pendingLogin{verifier: pkce, nonce: nonce, prompt: prompt}
		app.mu.Unlock()
		opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(pkce), oidc.Nonce(nonce)}
		if prompt != "" {
			opts = append(opts, oauth2.SetAuthURLParam("prompt", prompt))
		}
		http.Redirect(w, r, app.conf.AuthCodeURL(state, opts...), http.StatusFound)
	})
	m.HandleFunc("GET /callback", app.callback)
	m.HandleFunc("GET /signed-out", func(w http.ResponseWriter, r *http.Request) {
		app.render(w, "Not signed in to "+app.name+": Onramp answered "+r.URL.Query().Get("error"), nil)
	})
	m.HandleFunc("GET /logout", func(w http.ResponseWriter, r *http.Request) {
		id, s := app.session(r)
		if s == nil {
			http.Redirect(w, r, "/logged-out", http.StatusFound)
			return
		}
		state := randomToken()
		app.mu.Lock()
		delete(app.sessions, id)
		app.pending["logout:"+state] = pendingLogin{}
		app.mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: appCookie, Value: "", Path: "/", MaxAge: -1})
		q := url.Values{"id_token_hint": {s.rawIDToken}, "post_logout_redirect_uri": {app.base + "/logged-out"}, "state": {state}}
		http.Redirect(w, r, app.endSession+"?"+q.Encode(), http.StatusFound)
	})
	m.HandleFunc("GET /logged-out", func(w http.ResponseWriter, r *http.Request) {
		app.mu.Lock()
		_, ok := app.pending["logout:"+r.URL.Query().Get("state")]
		delete(app.pending, "logout:"+r.URL.Query().Get("state"))
		app.mu.Unlock()
		if !ok {
			http.Error(w, "unknown logout state", http.StatusBadRequest)
			return
		}
		app.render(w, "You are signed out of "+app.name, nil)
	})
	m.Handle("POST /backchannel-logout", &app.logouts)
	return m
}

// callback finishes a sign-in: the code exchanged with the PKCE
// verifier, the ID token verified with its nonce, the claims from
// userinfo.
func (app *ssoApp) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	app.mu.Lock()
	p, ok := app.pending[q.Get("state")]
	delete(app.pending, q.Get("state"))
	if ok {
		if e := q.Get("error"); e != "" {
			app.callbacks = append(app.callbacks, "error="+e+" prompt="+p.prompt)
		} else {
			app.callbacks = append(app.callbacks, "code prompt="+p.prompt)
		}
	}
	app.mu.Unlock()
	if !ok {
		http.Error(w, "unknown state", http.StatusBadRequest)
		return
	}
	if e := q.Get("error"); e != "" {
		http.Redirect(w, r, "/signed-out?error="+url.QueryEscape(e), http.StatusFound)
		return
	}
	ctx := r.Context()
	tok, err := app.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(p.verifier))
	if err != nil {
		http.Error(w, "exchange: "+err.Error(), http.StatusBadGateway)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	id, err := app.verifier.Verify(ctx, raw)
	if err != nil {
		http.Error(w, "ID token: "+err.Error(), http.StatusBadGateway)
		return
	}
	if id.Nonce != p.nonce {
		http.Error(w, "ID token: wrong nonce", http.StatusBadGateway)
		return
	}
	var idc idClaims
	if err := id.Claims(&idc); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	ui, err := app.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		http.Error(w, "userinfo: "+err.Error(), http.StatusBadGateway)
		return
	}
	var uc struct {
		Name string `json:"name"`
	}
	_ = ui.Claims(&uc)
	s := &appSession{Subject: id.Subject, SID: idc.SID, Email: ui.Email, EmailVerified: ui.EmailVerified, Name: uc.Name, Prompt: p.prompt, rawIDToken: raw}
	sid := randomToken()
	app.mu.Lock()
	app.sessions[sid] = s
	app.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: appCookie, Value: sid, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/", http.StatusFound)
}

// endSessions drops the app's sessions of an Onramp session that ended
// (the back-channel logout).
func (app *ssoApp) endSessions(lt *oidc.LogoutToken) {
	app.mu.Lock()
	defer app.mu.Unlock()
	for id, s := range app.sessions {
		if s.SID == lt.SessionID {
			delete(app.sessions, id)
		}
	}
}

// onlySession is the app's one signed-in session.
func (app *ssoApp) onlySession(t *testing.T) appSession {
	t.Helper()
	app.mu.Lock()
	defer app.mu.Unlock()
	if len(app.sessions) != 1 {
		t.Fatalf("app %s has %d sessions, want 1 (callbacks: %v)", app.name, len(app.sessions), app.callbacks)
	}
	for _, s := range app.sessions {
		return *s
	}
	return appSession{}
}

func (app *ssoApp) sessionCount() int {
	app.mu.Lock()
	defer app.mu.Unlock()
	return len(app.sessions)
}

func (app *ssoApp) lastCallback() string {
	app.mu.Lock()
	defer app.mu.Unlock()
	if len(app.callbacks) == 0 {
		return ""
	}
	return app.callbacks[len(app.callbacks)-1]
}
