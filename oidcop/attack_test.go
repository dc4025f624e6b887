package oidcop_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/onramp-dev/onramp/oidcop"
)

// The attack rows of docs/design/auth.md §7 that concern the provider:
// redirect-URI tampering, PKCE downgrade and code replay (refresh-token
// reuse is in rp_test.go).

// authorizeURL is an /oauth/authorize request; params override the
// defaults (a valid request of client for its first redirect URI).
func (w *world) authorizeURL(clientID, redirect string, params map[string]string) string {
	q := url.Values{"client_id": {clientID}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"openid offline_access"}, "state": {"st"}}
	for k, v := range params {
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
	}
	return w.issuer + oidcop.AuthorizePath + "?" + q.Encode()
}

func TestAttackRedirectURITampering(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.signInAs(w.person)
	app := w.property("app", clientParams{FirstParty: true, RedirectURIs: []string{"https://app.example.com/cb", "http://localhost:3000/cb"}})
	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
	pkce := map[string]string{"code_challenge": challenge, "code_challenge_method": "S256"}
	for name, uri := range map[string]string{
		"extra path":           "https://app.example.com/cb/evil",
		"extra query":          "https://app.example.com/cb?next=https://evil.example",
		"trailing slash":       "https://app.example.com/cb/",
		"host case":            "https://APP.example.com/cb",
		"path case":            "https://app.example.com/CB",
		"other port":           "https://app.example.com:8443/cb",
		"userinfo to evil":     "https://app.example.com@evil.example/cb",
		"userinfo":             "https://a@app.example.com/cb",
		"fragment":             "https://app.example.com/cb#x",
		"https to http":        "http://app.example.com/cb",
		"http to https":        "https://localhost:3000/cb",
		"loopback other port":  "http://localhost:3001/cb",
		"loopback other alias": "http://127.0.0.1:3000/cb",
		"suffix domain":        "https://app.example.com.evil.example/cb",
		"foreign":              "https://evil.example/cb",
		"encoded path":         "https://app.example.com/%63b",
		"dot segment":          "https://app.example.com/x/../cb",
	} {
		resp := w.authorize(w.authorizeURL(app.Client.ID, uri, pkce))
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusBadRequest || loc != "" {
			t.Errorf("%s (%s): %d Location %q; want 400 and no redirect", name, uri, resp.StatusCode, loc)
		}
	}
	// The registered URIs work, exactly as registered.
	for _, uri := range []string{"https://app.example.com/cb", "http://localhost:3000/cb"} {
		resp := w.authorize(w.authorizeURL(app.Client.ID, uri, pkce))
		if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, uri+"?code=") {
			t.Errorf("registered %s: %d Location %q", uri, resp.StatusCode, loc)
		}
	}
	// An unknown client gets no redirect either.
	resp := w.authorize(w.authorizeURL("cli_unknown", "https://evil.example/cb", pkce))
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Errorf("unknown client: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// At the token endpoint the redirect URI must be the authorization's.
	verifier := oauth2.GenerateVerifier()
	code, _ := w.codeFrom(w.authorize(w.authorizeURL(app.Client.ID, "https://app.example.com/cb", map[string]string{
		"code_challenge": oauth2.S256ChallengeFromVerifier(verifier), "code_challenge_method": "S256"})))
	status, out := w.form(oidcop.TokenPath, app.Client.ID, app.Client.Secret, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://localhost:3000/cb"}, "code_verifier": {verifier}})
	if status != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Errorf("exchange with another registered redirect URI = %d %v; want invalid_grant", status, out)
	}
}

func TestAttackPKCEDowngrade(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.signInAs(w.person)
	const cb = "https://spa.example.com/cb"
	spa := w.property("spa", clientParams{FirstParty: true, Public: true, RedirectURIs: []string{cb}})
	app := w.property("app", clientParams{FirstParty: true, RedirectURIs: []string{cb}})
	verifier := oauth2.GenerateVerifier()
	s256 := oauth2.S256ChallengeFromVerifier(verifier)

	// Refused at /authorize: answered at the (valid) redirect URI with
	// invalid_request and no code.
	for name, tc := range map[string]struct {
		client string
		params map[string]string
	}{
		"public client without a challenge":       {spa.Client.ID, nil},
		"public client with plain":                {spa.Client.ID, map[string]string{"code_challenge": verifier, "code_challenge_method": "plain"}},
		"public client with no method (=plain)":   {spa.Client.ID, map[string]string{"code_challenge": verifier}},
		"confidential client with plain":          {app.Client.ID, map[string]string{"code_challenge": verifier, "code_challenge_method": "plain"}},
		"a method without a challenge":            {spa.Client.ID, map[string]string{"code_challenge_method": "S256"}},
		"an unknown method":                       {spa.Client.ID, map[string]string{"code_challenge": s256, "code_challenge_method": "S512"}},
		"a challenge that is no S256 value (len)": {spa.Client.ID, map[string]string{"code_challenge": "abc", "code_challenge_method": "S256"}},
	} {
		resp := w.authorize(w.authorizeURL(tc.client, cb, tc.params))
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("error") != "invalid_request" || loc.Query().Get("code") != "" ||
			!strings.HasPrefix(loc.String(), cb+"?") || loc.Query().Get("state") != "st" {
			t.Errorf("%s: %d Location %q; want %s?error=invalid_request&state=st", name, resp.StatusCode, resp.Header.Get("Location"), cb)
		}
	}

	// Refused at /token.
	code, _ := w.codeFrom(w.authorize(w.authorizeURL(spa.Client.ID, cb, map[string]string{"code_challenge": s256, "code_challenge_method": "S256"})))
	exchange := func(extra url.Values) (int, map[string]any) {
		v := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {cb}, "client_id": {spa.Client.ID}}
		for k, vs := range extra {
			v[k] = vs
		}
		return w.form(oidcop.TokenPath, "", "", v)
	}
	if status, out := exchange(nil); status != http.StatusBadRequest || out["error"] != "invalid_request" {
		t.Errorf("exchange without code_verifier = %d %v; want invalid_request", status, out)
	}
	if status, out := exchange(url.Values{"code_verifier": {oauth2.GenerateVerifier()}}); status != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Errorf("exchange with a wrong code_verifier = %d %v; want invalid_grant", status, out)
	}
	if status, out := exchange(url.Values{"code_verifier": {s256}}); status != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Errorf("exchange sending the challenge as verifier (plain) = %d %v; want invalid_grant", status, out)
	}
	// Failed attempts do not burn the code for its owner.
	if status, out := exchange(url.Values{"code_verifier": {verifier}}); status != http.StatusOK || out["access_token"] == nil {
		t.Errorf("exchange with the right verifier after failed attempts = %d %v", status, out)
	}
}

func TestAttackCodeReplay(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.signInAs(w.person)
	r := newRP(t, w, "app", clientParams{FirstParty: true})
	newCode := func() (string, string) {
		verifier := oauth2.GenerateVerifier()
		code, _ := w.codeFrom(w.authorize(r.conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier))))
		return code, verifier
	}
	exchange := func(code, verifier string) (int, map[string]any) {
		return w.form(oidcop.TokenPath, r.prop.Client.ID, r.prop.Client.Secret, url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpRedirect}, "code_verifier": {verifier}})
	}

	t.Run("sequential", func(t *testing.T) {
		code, verifier := newCode()
		status, first := exchange(code, verifier)
		if status != http.StatusOK {
			t.Fatalf("first exchange = %d %v", status, first)
		}
		status, second := exchange(code, verifier)
		if status != http.StatusBadRequest || second["error"] != "invalid_grant" {
			t.Errorf("second exchange = %d %v; want invalid_grant", status, second)
		}
		if active(w.introspect(r.prop, first["access_token"].(string))) {
			t.Error("the first exchange's access token is active after the replay")
		}
		if status, out := w.form(oidcop.TokenPath, r.prop.Client.ID, r.prop.Client.Secret, url.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {first["refresh_token"].(string)}}); status == http.StatusOK {
			t.Errorf("the first exchange's refresh token works after the replay: %v", out)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		for round := range 5 {
			code, verifier := newCode()
			var wg sync.WaitGroup
			statuses := make([]int, 2)
			outs := make([]map[string]any, 2)
			start := make(chan struct{})
			for i := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					statuses[i], outs[i] = exchange(code, verifier)
				}()
			}
			close(start)
			wg.Wait()
			won := 0
			for i := range 2 {
				switch {
				case statuses[i] == http.StatusOK:
					won++
					if active(w.introspect(r.prop, outs[i]["access_token"].(string))) {
						t.Errorf("round %d: the winner's access token is active although the code was replayed", round)
					}
				case outs[i]["error"] != "invalid_grant":
					t.Errorf("round %d: loser got %d %v; want invalid_grant", round, statuses[i], outs[i])
				}
			}
			if won != 1 {
				t.Fatalf("round %d: %d of 2 concurrent exchanges succeeded, want exactly 1 (%v)", round, won, outs)
			}
		}
	})
}
