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
	for id, want := range map[string]bool{pub.ID: true, conf.ID: false} {
		var got struct {
			Client struct {
				Public *bool `json:"public"`
			} `json:"client"`
		}
		s.api(s.owner, http.MethodGet, "/api/properties/"+id, nil).json(t, &got)
		if got.Client.Public == nil || *got.Client.Public != want {
			t.Errorf("GET /api/properties/%s: client.public = %v, want %v", id, got.Client.Public, want)
		}
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

// clientJSON is a property's default client as the API shows it.
type clientJSON struct {
	ID                     string   `json:"id"`
	PropertyID             string   `json:"property_id"`
	FirstParty             bool     `json:"first_party"`
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	BackchannelLogoutURI   string   `json:"backchannel_logout_uri"`
	Secret                 *string  `json:"client_secret"`
}

type propertyClientJSON struct {
	ID      string      `json:"id"`
	Name    string      `json:"name"`
	Origins []string    `json:"origins"`
	Client  *clientJSON `json:"client"`
}

// TestUpdatePropertyClient: PATCH /api/properties/{id} changes the
// default client's URIs and consent rule with the property, in one
// transaction (a refused URI changes nothing); lists sent replace the
// stored ones and [] clears them; GET shows the client; and the client
// sees the change at once on this node.
func TestUpdatePropertyClient(t *testing.T) {
	s := newTestStack(t)
	ctx := context.Background()
	r := s.api(s.owner, http.MethodPost, "/api/properties", map[string]any{
		"name": "App", "redirect_uris": []string{"https://app.example.com/callback"},
	})
	if r.status != http.StatusCreated {
		t.Fatalf("create = %d %s", r.status, r.body)
	}
	var created struct {
		ID       string `json:"id"`
		ClientID string `json:"client_id"`
	}
	r.json(t, &created)

	r = s.api(s.owner, http.MethodPatch, "/api/properties/App", map[string]any{
		"name":                      "Product",
		"redirect_uris":             []string{"https://app.example.com/cb", "http://localhost:3000/cb"},
		"post_logout_redirect_uris": []string{"https://app.example.com/"},
		"backchannel_logout_uri":    "https://app.example.com/bcl",
		"first_party":               true,
	})
	if r.status != http.StatusOK {
		t.Fatalf("patch = %d %s", r.status, r.body)
	}
	var got propertyClientJSON
	r.json(t, &got)
	if got.Name != "Product" || got.Client == nil || got.Client.ID != created.ClientID || !got.Client.FirstParty ||
		len(got.Client.RedirectURIs) != 2 || got.Client.RedirectURIs[1] != "http://localhost:3000/cb" ||
		len(got.Client.PostLogoutRedirectURIs) != 1 || got.Client.BackchannelLogoutURI != "https://app.example.com/bcl" || got.Client.Secret != nil {
		t.Fatalf("patched = %s", r.body)
	}
	if strings.Contains(string(r.body), "secret") {
		t.Errorf("a PATCH answer must not carry any secret: %s", r.body)
	}
	c, err := s.oauth.Client(ctx, created.ClientID)
	if err != nil || !c.FirstParty || len(c.RedirectURIs) != 2 {
		t.Fatalf("the provider still sees %+v, %v", c, err)
	}

	// Only the property's own fields: the client stays as it is.
	r = s.api(s.owner, http.MethodPatch, "/api/properties/"+created.ID, map[string]any{"origins": []string{"https://app.example.com"}})
	got = propertyClientJSON{}
	r.json(t, &got)
	if r.status != 200 || len(got.Origins) != 1 || got.Client == nil || len(got.Client.RedirectURIs) != 2 || !got.Client.FirstParty {
		t.Fatalf("origins-only patch = %d %s", r.status, r.body)
	}

	// A refused URI changes nothing, not even the name sent with it.
	for _, bad := range []map[string]any{
		{"name": "Renamed", "redirect_uris": []string{"http://evil.example.com/cb"}},
		{"name": "Renamed", "post_logout_redirect_uris": []string{"https://app.example.com/#x"}},
		{"name": "Renamed", "backchannel_logout_uri": "https://u:p@app.example.com/bcl"},
		{"name": "Renamed", "redirect_uris": "https://app.example.com/cb"},
		{"name": "Renamed", "first_party": "yes"},
		{"name": "Renamed", "public": true},
	} {
		wantProblem(t, s.api(s.owner, http.MethodPatch, "/api/properties/"+created.ID, bad), http.StatusBadRequest)
	}
	wantProblem(t, s.api(s.owner, http.MethodPatch, "/api/properties/prp_nope", map[string]any{"first_party": false}), http.StatusNotFound)

	r = s.api(s.owner, http.MethodGet, "/api/properties/"+created.ID, nil)
	got = propertyClientJSON{}
	r.json(t, &got)
	if got.Name != "Product" || got.Client == nil || len(got.Client.RedirectURIs) != 2 || got.Client.BackchannelLogoutURI == "" {
		t.Fatalf("after refused patches GET = %s", r.body)
	}

	// [] clears a list, "" removes the back-channel URI, false asks for consent again.
	r = s.api(s.owner, http.MethodPatch, "/api/properties/"+created.ID, map[string]any{
		"redirect_uris": []string{}, "post_logout_redirect_uris": []string{}, "backchannel_logout_uri": "", "first_party": false,
	})
	got = propertyClientJSON{}
	r.json(t, &got)
	if r.status != 200 || got.Client == nil || len(got.Client.RedirectURIs) != 0 || len(got.Client.PostLogoutRedirectURIs) != 0 || got.Client.BackchannelLogoutURI != "" || got.Client.FirstParty {
		t.Fatalf("clearing patch = %d %s", r.status, r.body)
	}
	if c, _ := s.oauth.Client(ctx, created.ClientID); c == nil || len(c.RedirectURIs) != 0 {
		t.Errorf("the provider still sees redirect URIs %v", c)
	}
}

// TestRotateClientSecret: revoke-key with "client-secret" gives the
// default client a new secret, shown once; the old one stops working at
// once. A public client has no secret to rotate.
func TestRotateClientSecret(t *testing.T) {
	s := newTestStack(t)
	ctx := context.Background()
	r := s.api(s.owner, http.MethodPost, "/api/properties", map[string]any{"name": "App", "redirect_uris": []string{"https://app.example.com/cb"}})
	var created struct {
		ID           string `json:"id"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		WriteKey     string `json:"write_key"`
	}
	r.json(t, &created)

	r = s.api(s.owner, http.MethodPost, "/api/properties/App/revoke-key", map[string]any{"key": "client-secret"})
	if r.status != http.StatusOK {
		t.Fatalf("rotate = %d %s", r.status, r.body)
	}
	var rotated struct {
		ID           string  `json:"id"`
		WriteKey     string  `json:"write_key"`
		SecretKey    *string `json:"secret_key"`
		ClientID     string  `json:"client_id"`
		ClientSecret string  `json:"client_secret"`
	}
	r.json(t, &rotated)
	if rotated.ID != created.ID || rotated.ClientID != created.ClientID || !strings.HasPrefix(rotated.ClientSecret, "cs_") ||
		rotated.ClientSecret == created.ClientSecret || rotated.WriteKey != created.WriteKey || rotated.SecretKey != nil {
		t.Fatalf("rotated = %s", r.body)
	}
	if _, err := s.oauth.AuthenticateClient(ctx, created.ClientID, rotated.ClientSecret); err != nil {
		t.Errorf("the new secret does not authenticate: %v", err)
	}
	if _, err := s.oauth.AuthenticateClient(ctx, created.ClientID, created.ClientSecret); err == nil {
		t.Error("the old secret still authenticates")
	}

	s.api(s.owner, http.MethodPost, "/api/properties", map[string]any{"name": "SPA", "public": true, "redirect_uris": []string{"https://spa.example.com/cb"}})
	p := wantProblem(t, s.api(s.owner, http.MethodPost, "/api/properties/SPA/revoke-key", map[string]any{"key": "client-secret"}), http.StatusBadRequest)
	if !strings.Contains(p.Detail, "public") {
		t.Errorf("public client problem = %+v", p)
	}
	p = wantProblem(t, s.api(s.owner, http.MethodPost, "/api/properties/App/revoke-key", map[string]any{"key": "client_secret"}), http.StatusBadRequest)
	if !strings.Contains(p.Detail, "client-secret") {
		t.Errorf("unknown key problem = %+v", p)
	}
	wantProblem(t, s.api(s.owner, http.MethodPost, "/api/properties/prp_nope/revoke-key", map[string]any{"key": "client-secret"}), http.StatusNotFound)
}

// TestPropertyClaims: claims on POST /api/properties and PATCH set the
// default client's custom claims (GET shows them); a PATCH without claims
// keeps them, {} clears them; reserved names and paths that are not
// dotted identifiers are refused with a problem and change nothing.
func TestPropertyClaims(t *testing.T) {
	s := newTestStack(t)
	ctx := context.Background()
	r := s.api(s.owner, http.MethodPost, "/api/properties", map[string]any{
		"name": "App", "redirect_uris": []string{"https://app.example.com/cb"},
		"claims": map[string]string{"plan": "subscription.plan", "company": "company"},
	})
	if r.status != http.StatusCreated {
		t.Fatalf("create = %d %s", r.status, r.body)
	}
	var created struct {
		ID       string `json:"id"`
		ClientID string `json:"client_id"`
	}
	r.json(t, &created)
	claimsOf := func() map[string]string {
		t.Helper()
		r := s.api(s.owner, http.MethodGet, "/api/properties/"+created.ID, nil)
		var got struct {
			Client struct {
				Claims map[string]string `json:"claims"`
			} `json:"client"`
		}
		r.json(t, &got)
		return got.Client.Claims
	}
	if got := claimsOf(); len(got) != 2 || got["plan"] != "subscription.plan" {
		t.Fatalf("claims after create = %v", got)
	}

	r = s.api(s.owner, http.MethodPatch, "/api/properties/App", map[string]any{"claims": map[string]string{"tier": "plan"}})
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"tier":"plan"`) {
		t.Fatalf("patch = %d %s", r.status, r.body)
	}
	if c, err := s.oauth.Client(ctx, created.ClientID); err != nil || len(c.Claims) != 1 || c.Claims["tier"] != "plan" {
		t.Fatalf("the provider sees %+v, %v", c, err)
	}
	s.api(s.owner, http.MethodPatch, "/api/properties/App", map[string]any{"first_party": true, "claims": nil})
	if got := claimsOf(); len(got) != 1 || got["tier"] != "plan" {
		t.Fatalf("claims after a patch without them = %v", got)
	}

	for _, bad := range []map[string]any{
		{"name": "Renamed", "claims": map[string]string{"email": "work.email"}},
		{"name": "Renamed", "claims": map[string]string{"sub": "id"}},
		{"name": "Renamed", "claims": map[string]string{"plan": "a..b"}},
		{"name": "Renamed", "claims": map[string]string{"plan": "a b"}},
		{"name": "Renamed", "claims": map[string]string{"1st": "plan"}},
		{"name": "Renamed", "claims": []string{"plan"}},
	} {
		wantProblem(t, s.api(s.owner, http.MethodPatch, "/api/properties/"+created.ID, bad), http.StatusBadRequest)
	}
	wantProblem(t, s.api(s.owner, http.MethodPost, "/api/properties", map[string]any{"name": "Other", "claims": map[string]string{"iss": "x"}}), http.StatusBadRequest)
	if got := claimsOf(); len(got) != 1 || got["tier"] != "plan" {
		t.Fatalf("claims after refused patches = %v", got)
	}

	r = s.api(s.owner, http.MethodPatch, "/api/properties/"+created.ID, map[string]any{"claims": map[string]string{}})
	if r.status != http.StatusOK {
		t.Fatalf("clearing patch = %d %s", r.status, r.body)
	}
	if got := claimsOf(); len(got) != 0 {
		t.Fatalf("claims after {} = %v", got)
	}
}
