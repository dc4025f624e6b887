package oidcop_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// TestCreateAuthRequestFromParams: the headless API's auth requests are
// checked like /oauth/authorize's. For every row, the authorize endpoint
// and Provider.CreateAuthRequest agree: both accept, or both refuse with
// the same OAuth error.
func TestCreateAuthRequestFromParams(t *testing.T) {
	w := newWorld(t, worldOptions{})
	conf := newRP(t, w, "app", clientParams{FirstParty: true}).prop
	pub := newRP(t, w, "spa", clientParams{Public: true, RedirectURIs: []string{"https://spa.example.com/cb"}}).prop
	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
	base := func(c *auth.PropertyCreated, redirect string) url.Values {
		return url.Values{"client_id": {c.Client.ID}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"openid email"},
			"state": {"st"}, "nonce": {"n"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	}
	with := func(v url.Values, kv ...string) url.Values {
		out := url.Values{}
		for k, vs := range v {
			out[k] = append([]string(nil), vs...)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				out.Del(kv[i])
			} else {
				out.Set(kv[i], kv[i+1])
			}
		}
		return out
	}
	spa := base(pub, "https://spa.example.com/cb")
	for _, tc := range []struct {
		name   string
		params url.Values
		// oauth is the refusal's OAuth error code, "" for success.
		oauth string
	}{
		{"public client with S256", spa, ""},
		{"confidential client without PKCE", with(base(conf, rpRedirect), "code_challenge", "", "code_challenge_method", ""), ""},
		{"redirect with an extra path", with(spa, "redirect_uri", "https://spa.example.com/cb/x"), auth.OAuthInvalidRequest},
		{"redirect with a trailing slash", with(spa, "redirect_uri", "https://spa.example.com/cb/"), auth.OAuthInvalidRequest},
		{"redirect to another host", with(spa, "redirect_uri", "https://evil.example/cb"), auth.OAuthInvalidRequest},
		{"redirect over http", with(spa, "redirect_uri", "http://spa.example.com/cb"), auth.OAuthInvalidRequest},
		{"public client without PKCE", with(spa, "code_challenge", "", "code_challenge_method", ""), auth.OAuthInvalidRequest},
		{"plain PKCE", with(spa, "code_challenge_method", "plain"), auth.OAuthInvalidRequest},
		{"token response type", with(spa, "response_type", "token"), auth.OAuthUnauthorizedClient},
		{"no scope", with(spa, "scope", ""), auth.OAuthInvalidRequest},
		{"unknown client", with(spa, "client_id", "cli_nope"), auth.OAuthInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ar, err := w.provider.CreateAuthRequest(w.ctx, tc.params, "anon-1")
			got := auth.OAuthErrorCode(err)
			if tc.oauth == "" {
				if err != nil || ar.ID == "" || ar.AnonymousID != "anon-1" || ar.State != "st" || ar.Nonce != "n" {
					t.Fatalf("CreateAuthRequest = %+v, %v", ar, err)
				}
			} else if got != tc.oauth || onramp.ErrorCode(err) != onramp.EINVALID || onramp.ErrorMessage(err) == "" {
				t.Fatalf("CreateAuthRequest err = %v (oauth %q), want %s", err, got, tc.oauth)
			}
			// The authorize endpoint decides the same.
			resp, err := noRedirects.Get(w.issuer + "/oauth/authorize?" + tc.params.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc, _ := url.Parse(resp.Header.Get("Location"))
			toLogin := resp.StatusCode == http.StatusFound && loc != nil && strings.HasPrefix(loc.Path, "/auth/sign-in")
			if (tc.oauth == "") != toLogin {
				t.Errorf("authorize = %d %q, while CreateAuthRequest said %q", resp.StatusCode, resp.Header.Get("Location"), got)
			}
			if tc.oauth != "" && loc != nil && loc.Query().Get("error") != "" && loc.Query().Get("error") != tc.oauth {
				t.Errorf("authorize error %q, CreateAuthRequest %q", loc.Query().Get("error"), tc.oauth)
			}
		})
	}
}
