package oidcop_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2"

	"github.com/onramp-dev/onramp/httpapi"
	"github.com/onramp-dev/onramp/oidcop"
)

// TestCallbackBoundToSession: with the browser's session known, op's
// callback hands the code only to the browser that signed in.
func TestCallbackBoundToSession(t *testing.T) {
	w := newWorld(t, worldOptions{sessionCookie: "onramp_session"})
	r := newRP(t, w, "app", clientParams{FirstParty: true})
	browserWith := func(sid string) *http.Client {
		jar, _ := cookiejar.New(nil)
		u, _ := url.Parse(w.issuer)
		jar.SetCookies(u, []*http.Cookie{{Name: "onramp_session", Value: sid}})
		c := w.browser()
		c.Jar = jar
		return c
	}
	run := func(c *http.Client) url.Values {
		t.Helper()
		resp, err := c.Get(r.conf.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || resp.StatusCode != http.StatusFound {
			t.Fatalf("authorize = %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		return loc.Query()
	}
	sid := w.signInAs(w.person)
	if q := run(browserWith(sid)); q.Get("code") == "" {
		t.Errorf("the browser that signed in got no code: %v", q)
	}
	w.signInAs(w.person)
	if q := run(browserWith("ses_someone_else")); q.Get("code") != "" || q.Get("error") != "interaction_required" {
		t.Errorf("another browser's callback = %v; want interaction_required and no code", q)
	}
}

// TestFailAuthRequest: the sign-in page answers prompt=none without a
// session at the relying party's redirect URI, with its state.
func TestFailAuthRequest(t *testing.T) {
	w := newWorld(t, worldOptions{})
	r := newRP(t, w, "app", clientParams{FirstParty: true})
	w.mux.HandleFunc("GET /auth/fail", func(rw http.ResponseWriter, req *http.Request) {
		if err := w.provider.FailAuthRequest(req.Context(), rw, req, req.URL.Query().Get("authRequest"), oidcop.LoginRequired); err != nil {
			http.Error(rw, err.Error(), 400)
		}
	})
	resp, err := noRedirects.Get(r.conf.AuthCodeURL("st-9", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "none")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	login, _ := url.Parse(resp.Header.Get("Location"))
	resp, err = noRedirects.Get(w.issuer + "/auth/fail?" + login.RawQuery)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc == nil || loc.Query().Get("error") != "login_required" || loc.Query().Get("state") != "st-9" || loc.Host != "app.example.com" {
		t.Errorf("FailAuthRequest redirect = %q", resp.Header.Get("Location"))
	}
}

// TestCORSOnlyForPropertyOrigins: op's allow-all CORS is replaced by the
// properties' origins, and credentials are never allowed.
func TestCORSOnlyForPropertyOrigins(t *testing.T) {
	w := newWorld(t, worldOptions{})
	newRP(t, w, "app", clientParams{FirstParty: true}) // origin https://app.example.com
	for origin, allowed := range map[string]bool{"https://app.example.com": true, "https://evil.example": false, "null": false} {
		req, _ := http.NewRequest(http.MethodOptions, w.issuer+oidcop.TokenPath, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := resp.Header.Get("Access-Control-Allow-Origin")
		if allowed != (got == origin) || (!allowed && got != "") {
			t.Errorf("preflight from %s: Allow-Origin %q", origin, got)
		}
		if resp.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("preflight from %s allows credentials", origin)
		}
	}
}

// TestMountedInHTTPAPI: the provider serves through httpapi's routes, as
// `onramp serve` mounts it.
func TestMountedInHTTPAPI(t *testing.T) {
	w := newWorld(t, worldOptions{})
	api := httpapi.New(httpapi.Config{Registry: prometheus.NewRegistry(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), OIDC: w.provider})
	for path, want := range map[string]string{"/.well-known/openid-configuration": `"issuer":"` + w.issuer + `"`, oidcop.KeysPath: `"alg":"ES256"`} {
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, httptest.NewRequestWithContext(context.Background(), http.MethodGet, w.issuer+path, nil))
		if rec.Code != http.StatusOK || rec.Header().Get("X-Request-Id") == "" || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("GET %s through httpapi = %d %s", path, rec.Code, rec.Body.String())
		}
	}
}
