package e2e

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onramp-dev/onramp/internal/fakegithub"
	"github.com/onramp-dev/onramp/internal/mailpit"
)

// Signing in to one Onramp through another: the second `onramp serve` is
// the upstream OpenID Connect provider (a property whose client has the
// first one's callback as redirect URI, an account signed up there by
// password through its hosted pages), configured on the first as a generic
// OIDC provider. Both run on loopback under different host names
// (127.0.0.1 and localhost), so a browser keeps their cookies apart as it
// would for two sites. GitHub is a local fake of its OAuth endpoints and
// REST API, since GitHub cannot be reached from here.

// browserJar is one browser: a cookie jar shared by every site it visits,
// and a client whose redirect policy a step can set.
type browserJar struct {
	t    *testing.T
	c    *http.Client
	stop func(next *url.URL) bool
	// stopped is where the redirect that stop held back would have gone.
	stopped *url.URL
}

func newBrowserJar(t *testing.T) *browserJar {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &browserJar{t: t}
	b.c = &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) > 20 {
			return errors.New("too many redirects")
		}
		if b.stop != nil && b.stop(req.URL) {
			b.stopped = req.URL
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

// at is the browser on one site (relative form actions resolve there).
func (b *browserJar) at(base string) *webClient {
	return &webClient{t: b.t, base: strings.TrimSuffix(base, "/"), c: b.c}
}

// on is the browser on the site of page p.
func (b *browserJar) on(p *webPage) *webClient {
	return b.at(p.url.Scheme + "://" + p.url.Host)
}

// until makes the next requests stop before following a redirect to a URL
// for which stop is true; the page returned is then the redirect itself.
func (b *browserJar) until(stop func(next *url.URL) bool) { b.stop = stop }

// signUpAt creates an account by password on node's hosted pages, reading
// the code from Mailpit, and leaves the browser signed in there.
func signUpAt(t *testing.T, b *browserJar, n *Node, mp *mailpit.Server, email, name string) {
	t.Helper()
	w := b.at(n.URL)
	p := w.get("/auth/sign-up")
	p = w.submit(p, "/auth/sign-up", "email", email, "name", name, "password", "a long upstream passphrase 7")
	if p.status != http.StatusOK || p.url.Path != "/auth/verify" {
		t.Fatalf("sign-up at %s: %d at %s:\n%s", n.URL, p.status, p.url, p.body)
	}
	code := codeFrom(t, mp, email, "verification code")
	p = w.submit(p, "/auth/verify", "code", code, "action", "verify")
	if p.status != http.StatusOK || p.url.Path != "/account" {
		t.Fatalf("verify at %s: %d at %s:\n%s", n.URL, p.status, p.url, p.body)
	}
}

// codeFrom waits for the newest email to addr whose subject contains
// subject, and returns its code.
func codeFrom(t *testing.T, mp *mailpit.Server, addr, subject string) string {
	t.Helper()
	var code string
	Eventually(t, 20*time.Second, func() (bool, string) {
		msgs, err := mp.Messages(t.Context(), addr)
		if err != nil {
			return false, err.Error()
		}
		var subjects []string
		for _, m := range slices.Backward(msgs) {
			subjects = append(subjects, m.Subject)
			if strings.Contains(m.Subject, subject) {
				if c := mailCode.FindStringSubmatch(m.Text); c != nil {
					code = c[1]
					return true, ""
				}
			}
		}
		return false, "subjects: " + strings.Join(subjects, " | ")
	})
	return code
}

// auditActions reads the audit log of node through its CLI.
func auditActions(t *testing.T, n *Node, action string) []map[string]any {
	t.Helper()
	var entries []map[string]any
	out := n.CLI(t, "audit", "list", "--action", action, "--json")
	if err := json.Unmarshal(out, &entries); err != nil {
		t.Fatalf("audit list: %v\n%s", err, out)
	}
	return entries
}

// connections is the provider column of the account page's connections.
func connections(p *webPage) []string {
	var out []string
	for _, line := range strings.Split(p.body, "\n") {
		if strings.HasPrefix(line, "<td>") && strings.Contains(p.body, "connections-title") {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(line, "<td>"), "</td>"))
		}
	}
	return out
}

func TestUpstreamSignInThroughAnotherOnramp(t *testing.T) {
	mp := mailpit.Start(t)
	env := []string{"ONRAMP_SMTP_URL=" + mp.SMTPURL(), "ONRAMP_ARGON2_MEMORY_KIB=1024", "ONRAMP_ARGON2_TIME=1"}
	rp := StartNode(t, NodeOptions{Env: env})
	idp := StartNode(t, NodeOptions{Env: env, PublicHost: "localhost"})

	// The IdP's client for the RP: its redirect URIs are the RP's
	// callbacks, for the provider trusted with emails and the one that is
	// not.
	out := idp.CLI(t, "property", "create", "--name", "rp-onramp", "--first-party", "--json",
		"--redirect-uri", rp.URL+"/auth/upstream/idp/callback", "--redirect-uri", rp.URL+"/auth/upstream/idp-unproven/callback")
	var client struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal(out, &client); err != nil || client.ClientID == "" || client.ClientSecret == "" {
		t.Fatalf("property create: %v\n%s", err, out)
	}
	out = rp.CLI(t, "auth", "provider", "add", "--preset", "oidc", "--name", "idp", "--display-name", "Second Onramp",
		"--issuer", idp.URL, "--client-id", client.ClientID, "--client-secret", client.ClientSecret, "--trust-email", "true")
	if !strings.Contains(string(out), rp.URL+"/auth/upstream/idp/callback") {
		t.Errorf("provider add printed:\n%s", out)
	}
	cmd := []string{"auth", "provider", "add", "--preset", "oidc", "--name", "idp-unproven", "--display-name", "Unproven IdP",
		"--issuer", idp.URL, "--client-id", client.ClientID}
	if o, e, err := runCLI(append(rp.env, "ONRAMP_UPSTREAM_CLIENT_SECRET="+client.ClientSecret), cmd...); err != nil {
		t.Fatalf("provider add with the secret from the environment: %v\n%s\n%s", err, o, e)
	}

	email := "up-" + randomID(t) + "@example.com"
	b := newBrowserJar(t)
	signUpAt(t, b, idp, mp, email, "Ursula Upstream")

	// Sign in at the RP through the IdP: the browser's IdP session
	// answers the authorization request (single sign-on), and the RP's
	// callback lands it signed in with a new, linked account.
	w := b.at(rp.URL)
	p := w.get("/auth/sign-in")
	if !strings.Contains(p.body, "Continue with Second Onramp") {
		t.Fatalf("no button on the RP's sign-in page:\n%s", p.body)
	}
	p = w.submit(p, "/auth/upstream/idp/start")
	if p.status != http.StatusOK || p.url.String() != rp.URL+"/account" {
		t.Fatalf("upstream sign-in: %d at %s:\n%s", p.status, p.url, p.body)
	}
	if got := ddAfter(p.doc, "Email"); got != email+" (verified)" {
		t.Errorf("RP account email = %q", got)
	}
	if got := ddAfter(p.doc, "Name"); got != "Ursula Upstream" {
		t.Errorf("RP account name = %q (the IdP's userinfo name)", got)
	}
	if got := connections(p); !slices.Contains(got, "Second Onramp") {
		t.Errorf("connections = %v", got)
	}
	subject := ddAfter(p.doc, "Account id")
	if linked := auditActions(t, rp, "auth.account_linked"); len(linked) != 1 {
		t.Errorf("account_linked audit rows: %v", linked)
	}

	// The second sign-in, in a new browser that signs in at the IdP by
	// password, reuses the link: the same RP account, no second link.
	b2 := newBrowserJar(t)
	w2 := b2.at(rp.URL)
	p = w2.submit(w2.get("/auth/sign-in"), "/auth/upstream/idp/start")
	if p.url.Host != strings.TrimPrefix(idp.URL, "http://") || p.url.Path != "/auth/sign-in" {
		t.Fatalf("expected the IdP's sign-in page, got %d at %s", p.status, p.url)
	}
	p = b2.on(p).submit(p, "/auth/sign-in", "email", email, "password", "a long upstream passphrase 7", "action", "password")
	if p.status != http.StatusOK || p.url.String() != rp.URL+"/account" || ddAfter(p.doc, "Account id") != subject {
		t.Fatalf("second sign-in: %d at %s (account %q, want %q):\n%s", p.status, p.url, ddAfter(p.doc, "Account id"), subject, p.body)
	}
	if linked := auditActions(t, rp, "auth.account_linked"); len(linked) != 1 {
		t.Errorf("account_linked audit rows after the second sign-in: %d", len(linked))
	}
	logins := auditActions(t, rp, "auth.logged_in")
	if len(logins) != 2 || !strings.Contains(string(mustJSON(t, logins[0]["detail"])), "upstream:idp") {
		t.Errorf("logged_in audit rows: %v", logins)
	}
	prop := rp.CreateProperty(t, "rp-site")
	Eventually(t, 15*time.Second, func() (bool, string) {
		var methods, names []string
		for _, e := range rp.Timeline(t, prop.SecretKey, "user_id:"+subject) {
			name, _ := e["event"].(string)
			names = append(names, name)
			if props, _ := e["properties"].(map[string]any); name == "auth.logged_in" && props != nil {
				m, _ := props["method"].(string)
				methods = append(methods, m)
			}
		}
		ok := slices.Contains(names, "auth.account_linked") && len(methods) == 2 && methods[0] == "upstream:idp" && methods[1] == "upstream:idp"
		return ok, "timeline: " + strings.Join(names, ", ") + "; logged_in methods: " + strings.Join(methods, ", ")
	})

	t.Run("UntrustedEmailNeedsCode", func(t *testing.T) {
		email2 := "unproven-" + randomID(t) + "@example.com"
		b := newBrowserJar(t)
		signUpAt(t, b, idp, mp, email2, "Una")
		w := b.at(rp.URL)
		p := w.submit(w.get("/auth/sign-in"), "/auth/upstream/idp-unproven/start")
		if p.status != http.StatusOK || p.url.Path != "/auth/verify" || !strings.Contains(p.body, "Unproven IdP") {
			t.Fatalf("untrusted provider: %d at %s:\n%s", p.status, p.url, p.body)
		}
		// Not signed in, nothing linked, before the code. (Stop before the
		// sign-in page: it would start a new flow in this browser.)
		b.until(func(u *url.URL) bool { return u.Path == "/auth/sign-in" })
		if acc := w.get("/account"); acc.status != http.StatusSeeOther || b.heldBack(acc).Path != "/auth/sign-in" {
			t.Errorf("/account before the code: %d at %s", acc.status, acc.url)
		}
		b.until(nil)
		if linked := auditActions(t, rp, "auth.account_linked"); len(linked) != 1 {
			t.Errorf("linked before the code: %d rows", len(linked))
		}
		code := codeFrom(t, mp, email2, "confirmation code")
		p = w.submit(p, "/auth/verify", "code", code, "action", "verify")
		if p.status != http.StatusOK || p.url.Path != "/account" || ddAfter(p.doc, "Email") != email2+" (verified)" {
			t.Fatalf("after the code: %d at %s:\n%s", p.status, p.url, p.body)
		}
		if got := connections(p); !slices.Contains(got, "Unproven IdP") {
			t.Errorf("connections = %v", got)
		}
	})

	t.Run("StateAndNonceTampering", func(t *testing.T) {
		b := newBrowserJar(t)
		signUpAt(t, b, idp, mp, "tamper-"+randomID(t)+"@example.com", "Tam")
		w := b.at(rp.URL)
		isCallback := func(u *url.URL) bool { return u.Path == "/auth/upstream/idp/callback" }
		b.until(isCallback)
		p := w.submit(w.get("/auth/sign-in"), "/auth/upstream/idp/start")
		b.until(nil)
		callback := b.heldBack(p)
		q := callback.Query()
		tampered := *callback
		tq := callback.Query()
		tq.Set("state", q.Get("state")+"x")
		tampered.RawQuery = tq.Encode()
		if got := w.get(tampered.String()); got.status != http.StatusForbidden {
			t.Errorf("tampered state: %d at %s", got.status, got.url)
		}
		if got := w.get(callback.String()); got.status != http.StatusOK || got.url.Path != "/account" {
			t.Fatalf("the real answer after a refused one: %d at %s:\n%s", got.status, got.url, got.body)
		}
		// Replayed: the flow it belonged to is finished.
		if got := w.get(callback.String()); got.status != http.StatusNotFound || !strings.Contains(got.body, "expired") {
			t.Errorf("replayed answer: %d at %s", got.status, got.url)
		}

		// A nonce changed on the way to the IdP comes back in its ID
		// token: the RP refuses the token.
		w.c.Jar.SetCookies(mustURL(t, rp.URL), []*http.Cookie{{Name: "onramp_session", Value: "", MaxAge: -1, Path: "/"}})
		b.until(func(u *url.URL) bool { return u.Path == "/oauth/authorize" })
		p = w.submit(w.get("/auth/sign-in"), "/auth/upstream/idp/start")
		b.until(nil)
		authz := b.heldBack(p)
		aq := authz.Query()
		aq.Set("nonce", aq.Get("nonce")+"-tampered")
		authz.RawQuery = aq.Encode()
		got := w.get(authz.String())
		if got.status != http.StatusUnauthorized || got.url.Path != "/auth/upstream/idp/callback" {
			t.Errorf("tampered nonce: %d at %s:\n%s", got.status, got.url, got.body)
		}
		if acc := w.get("/account"); acc.url.Path != "/auth/sign-in" {
			t.Errorf("signed in after a tampered nonce: %s", acc.url)
		}
		failed := auditActions(t, rp, "auth.login_failed")
		reasons := map[string]bool{}
		for _, e := range failed {
			var d struct{ Reason string }
			_ = json.Unmarshal(mustJSON(t, e["detail"]), &d)
			reasons[d.Reason] = true
		}
		if !reasons["state_mismatch"] || !reasons["no_flow"] || !reasons["exchange_refused"] {
			t.Errorf("login_failed reasons: %v", reasons)
		}
	})

	t.Run("GitHubPresetAgainstFake", func(t *testing.T) {
		fake := fakegithub.New("Iv1.fakeclient", "fake-github-secret")
		fake.CallbackURL = rp.URL + "/auth/upstream/github/callback"
		ghEmail := "octo-" + randomID(t) + "@example.com"
		private := "private"
		fake.AddUser(fakegithub.User{ID: 9919, Login: "octo", Name: "Octo Cat", Emails: []fakegithub.Email{{Email: ghEmail, Primary: true, Verified: true, Visibility: &private}}})
		fake.SignInAs("octo")
		gh := httptest.NewServer(fake)
		defer gh.Close()
		rp.CLI(t, "auth", "provider", "add", "--preset", "github", "--client-id", "Iv1.fakeclient", "--client-secret", "fake-github-secret",
			"--web-base", gh.URL, "--api-base", gh.URL)
		b := newBrowserJar(t)
		w := b.at(rp.URL)
		p := w.submit(w.get("/auth/sign-in"), "/auth/upstream/github/start")
		if p.status != http.StatusOK || p.url.String() != rp.URL+"/account" || ddAfter(p.doc, "Email") != ghEmail+" (verified)" {
			t.Fatalf("GitHub sign-in: %d at %s:\n%s", p.status, p.url, p.body)
		}
		if got := connections(p); !slices.Contains(got, "GitHub") {
			t.Errorf("connections = %v", got)
		}
		if fake.Calls("/user") != 1 || fake.Calls("/user/emails") != 1 || fake.Calls("/login/oauth/access_token") != 1 {
			t.Errorf("GitHub calls: user %d, emails %d, token %d", fake.Calls("/user"), fake.Calls("/user/emails"), fake.Calls("/login/oauth/access_token"))
		}
		// A user who says no at GitHub comes back refused, not signed in.
		fake.SignInAs("")
		b2 := newBrowserJar(t)
		w2 := b2.at(rp.URL)
		p = w2.submit(w2.get("/auth/sign-in"), "/auth/upstream/github/start")
		if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "access_denied") {
			t.Errorf("denied at GitHub: %d at %s:\n%s", p.status, p.url, p.body)
		}
	})
}

// heldBack is the redirect target the last stop held back.
func (b *browserJar) heldBack(p *webPage) *url.URL {
	b.t.Helper()
	if b.stopped == nil || (p.status != http.StatusFound && p.status != http.StatusSeeOther) {
		b.t.Fatalf("no redirect was held back (%d at %s)", p.status, p.url)
	}
	u := *b.stopped
	b.stopped = nil
	return &u
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
