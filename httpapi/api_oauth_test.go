package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// TestCreatePropertyMakesItsClient: POST /api/properties makes the
// property's OpenID Connect client in the same operation, shows the client
// secret once (never for a public client), and leaves nothing behind when
// a redirect URI is refused.
func TestCreatePropertyMakesItsClient(t *testing.T) {
	s := newTestStack(t)
	type created struct {
		ID           string  `json:"id"`
		SecretKey    string  `json:"secret_key"`
		ClientID     string  `json:"client_id"`
		ClientSecret *string `json:"client_secret"`
	}
	r := s.api(s.owner, http.MethodPost, "/api/properties", map[string]any{
		"name": "App", "origins": []string{"https://app.example.com"},
		"redirect_uris": []string{"https://app.example.com/callback", "http://localhost:3000/cb"}, "first_party": true,
		"post_logout_redirect_uris": []string{"https://app.example.com/"}, "backchannel_logout_uri": "https://app.example.com/bcl",
	})
	if r.status != http.StatusCreated {
		t.Fatalf("create = %d %s", r.status, r.body)
	}
	var conf created
	r.json(t, &conf)
	if !strings.HasPrefix(conf.ClientID, "cli_") || conf.ClientSecret == nil || !strings.HasPrefix(*conf.ClientSecret, "cs_") || conf.SecretKey == "" {
		t.Fatalf("confidential property = %s", r.body)
	}
	c, err := s.oauth.AuthenticateClient(context.Background(), conf.ClientID, *conf.ClientSecret)
	if err != nil {
		t.Fatalf("the shown client secret does not authenticate: %v", err)
	}
	if c.PropertyID != conf.ID || !c.FirstParty || c.BackchannelLogoutURI != "https://app.example.com/bcl" || len(c.RedirectURIs) != 2 || len(c.PostLogoutRedirectURIs) != 1 {
		t.Errorf("stored client = %+v", c)
	}

	r = s.api(s.owner, http.MethodPost, "/api/properties", map[string]any{"name": "SPA", "public": true, "redirect_uris": []string{"https://spa.example.com/cb"}})
	if r.status != http.StatusCreated {
		t.Fatalf("create public = %d %s", r.status, r.body)
	}
	var pub created
	r.json(t, &pub)
	if pub.ClientID == "" || pub.ClientSecret != nil || strings.Contains(string(r.body), "client_secret") {
		t.Errorf("public property = %s; want a client id and no client_secret field", r.body)
	}

	before := len(s.listProperties())
	for _, bad := range []map[string]any{
		{"name": "Evil", "redirect_uris": []string{"http://evil.example.com/cb"}},
		{"name": "Evil", "redirect_uris": []string{"https://app.example.com/cb#x"}},
		{"name": "Evil", "post_logout_redirect_uris": []string{"https://*.example.com/"}},
		{"name": "Evil", "backchannel_logout_uri": "https://u@example.com/bcl"},
		{"name": "Evil", "redirect_uris": "https://app.example.com/cb"},
	} {
		wantProblem(t, s.api(s.owner, http.MethodPost, "/api/properties", bad), http.StatusBadRequest)
	}
	if after := len(s.listProperties()); after != before {
		t.Errorf("refused creations left %d properties behind", after-before)
	}
}

func (s *testStack) listProperties() []map[string]any {
	s.t.Helper()
	r := s.api(s.owner, http.MethodGet, "/api/properties", nil)
	var out struct {
		Data []map[string]any `json:"data"`
	}
	r.json(s.t, &out)
	return out.Data
}

// TestOIDCRoutesWithoutProvider: the provider's routes exist even when no
// provider is configured, and say so as problem documents.
func TestOIDCRoutesWithoutProvider(t *testing.T) {
	s := newTestStack(t)
	for _, path := range []string{"/.well-known/openid-configuration", "/oauth/authorize", "/oauth/token"} {
		wantProblem(t, s.do(http.MethodGet, path, nil), http.StatusNotFound)
	}
}
