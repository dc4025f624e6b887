package upstream_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/internal/fakegithub"
	"github.com/onramp-dev/onramp/upstream"
)

// noRedirects is a browser that stops at the first redirect, so the test
// can read where the provider sends it.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 5 * time.Second}

func follow(t *testing.T, authURL string) url.Values {
	t.Helper()
	resp, err := noRedirects.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize answered %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.Query()
}

func request() auth.UpstreamAuthRequest {
	return auth.UpstreamAuthRequest{RedirectURI: "https://id.example.com/auth/upstream/x/callback", State: onramp.NewSecret("st"), Nonce: onramp.NewSecret("n"), Verifier: oauth2.GenerateVerifier()}
}

func TestGitHub(t *testing.T) {
	fake := fakegithub.New("gh-client", "gh-secret")
	fake.CallbackURL = "https://id.example.com/auth/upstream/"
	private := "private"
	fake.AddUser(fakegithub.User{ID: 583231, Login: "octocat", Name: "The Octocat", Emails: []fakegithub.Email{
		{Email: "octo@old.example", Verified: true},
		{Email: "octocat@github.example", Primary: true, Verified: true, Visibility: &private},
	}})
	fake.AddUser(fakegithub.User{ID: 7, Login: "unverified", Emails: []fakegithub.Email{{Email: "u@example.com", Primary: true}}})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	p := &auth.UpstreamProvider{Name: "github", DisplayName: "GitHub", Preset: auth.PresetGitHub, ClientID: "gh-client", ClientSecret: "gh-secret",
		Scopes: []string{"read:user", "user:email"}, WebBase: srv.URL, APIBase: srv.URL}
	c := &upstream.Connector{}
	ctx := context.Background()
	client, err := c.Connect(ctx, p)
	if err != nil {
		t.Fatal(err)
	}

	fake.SignInAs("octocat")
	r := request()
	back := follow(t, client.AuthCodeURL(r))
	if back.Get("state") != r.State || back.Get("code") == "" {
		t.Fatalf("back = %v", back)
	}
	x := auth.UpstreamExchange{RedirectURI: r.RedirectURI, Code: back.Get("code"), Verifier: r.Verifier}
	who, err := client.Exchange(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	if who.Subject != "583231" || who.Email != "octocat@github.example" || !who.EmailVerified || who.Name != "The Octocat" {
		t.Errorf("who = %+v", who)
	}
	// The code works once.
	if _, err := client.Exchange(ctx, x); onramp.ErrorCode(err) != onramp.EUNAUTHORIZED {
		t.Errorf("code twice: %v", err)
	}
	// A verifier that is not the request's fails PKCE.
	r = request()
	back = follow(t, client.AuthCodeURL(r))
	if _, err := client.Exchange(ctx, auth.UpstreamExchange{RedirectURI: r.RedirectURI, Code: back.Get("code"), Verifier: oauth2.GenerateVerifier()}); onramp.ErrorCode(err) != onramp.EUNAUTHORIZED {
		t.Errorf("wrong verifier: %v", err)
	}
	// A primary address GitHub has not verified is passed on as such.
	fake.SignInAs("unverified")
	r = request()
	back = follow(t, client.AuthCodeURL(r))
	who, err = client.Exchange(ctx, auth.UpstreamExchange{RedirectURI: r.RedirectURI, Code: back.Get("code"), Verifier: r.Verifier})
	if err != nil || who.Email != "u@example.com" || who.EmailVerified || who.Name != "unverified" {
		t.Errorf("unverified = %+v, %v", who, err)
	}
	// The user says no.
	fake.SignInAs("")
	r = request()
	if back = follow(t, client.AuthCodeURL(r)); back.Get("error") != "access_denied" || back.Get("state") != r.State {
		t.Errorf("denied: %v", back)
	}
	// A wrong client secret.
	bad := *p
	bad.ClientSecret = "nope"
	badClient, _ := c.Connect(ctx, &bad)
	fake.SignInAs("octocat")
	r = request()
	back = follow(t, badClient.AuthCodeURL(r))
	if _, err := badClient.Exchange(ctx, auth.UpstreamExchange{RedirectURI: r.RedirectURI, Code: back.Get("code"), Verifier: r.Verifier}); onramp.ErrorCode(err) != onramp.EUNAUTHORIZED ||
		!strings.Contains(err.Error(), "incorrect_client_credentials") {
		t.Errorf("wrong secret: %v", err)
	}
	// Without the user:email scope GitHub hides the addresses (404).
	narrow := *p
	narrow.Scopes = []string{"read:user"}
	narrowClient, _ := c.Connect(ctx, &narrow)
	r = request()
	back = follow(t, narrowClient.AuthCodeURL(r))
	if _, err := narrowClient.Exchange(ctx, auth.UpstreamExchange{RedirectURI: r.RedirectURI, Code: back.Get("code"), Verifier: r.Verifier}); onramp.ErrorCode(err) != onramp.EUNAUTHORIZED ||
		!strings.Contains(err.Error(), "404") {
		t.Errorf("no email scope: %v", err)
	}
	// GitHub down.
	srv.Close()
	if _, err := client.Exchange(ctx, auth.UpstreamExchange{RedirectURI: r.RedirectURI, Code: "x", Verifier: r.Verifier}); onramp.ErrorCode(err) != onramp.EUNAVAILABLE {
		t.Errorf("GitHub down: %v", err)
	}
}

// issuer is a small OpenID Connect provider: discovery, keys, a token
// endpoint that signs what the test says, and userinfo.
type issuer struct {
	t      *testing.T
	srv    *httptest.Server
	key    *ecdsa.PrivateKey
	signer jose.Signer
	// issuerName is what discovery names (a template for Microsoft).
	issuerName string
	mu         sync.Mutex
	// claims of the next ID token; nonce is copied from the
	// authorization request unless set here.
	claims   map[string]any
	userinfo map[string]any
	nonces   map[string]string // code → nonce of its request
	calls    map[string]int
}

func newIssuer(t *testing.T, name func(base string) string) *issuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{t: t, key: key, signer: signer, nonces: map[string]string{}, calls: map[string]int{}}
	is.srv = httptest.NewServer(is)
	t.Cleanup(is.srv.Close)
	is.issuerName = name(is.srv.URL)
	return is
}

func (is *issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	is.mu.Lock()
	is.calls[r.URL.Path]++
	is.mu.Unlock()
	base := is.srv.URL
	switch {
	case strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration"):
		prefix := strings.TrimSuffix(r.URL.Path, "/.well-known/openid-configuration")
		writeJSON(w, map[string]any{"issuer": is.issuerName, "authorization_endpoint": base + prefix + "/authorize", "token_endpoint": base + "/token",
			"jwks_uri": base + "/keys", "userinfo_endpoint": base + "/userinfo", "id_token_signing_alg_values_supported": []string{"ES256"}})
	case r.URL.Path == "/keys":
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &is.key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	case strings.HasSuffix(r.URL.Path, "/authorize"):
		q := r.URL.Query()
		code := onramp.NewSecret("c")
		is.mu.Lock()
		is.nonces[code] = q.Get("nonce")
		is.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	case r.URL.Path == "/token":
		_ = r.ParseForm()
		is.mu.Lock()
		nonce, ok := is.nonces[r.PostForm.Get("code")]
		delete(is.nonces, r.PostForm.Get("code"))
		claims := map[string]any{}
		for k, v := range is.claims {
			claims[k] = v
		}
		is.mu.Unlock()
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		if _, set := claims["nonce"]; !set {
			claims["nonce"] = nonce
		}
		if _, set := claims["iss"]; !set {
			claims["iss"] = is.issuerName
		}
		claims["aud"] = "rp-client"
		claims["exp"] = time.Now().Add(time.Hour).Unix()
		claims["iat"] = time.Now().Unix()
		raw, err := jwt.Signed(is.signer).Claims(claims).Serialize()
		if err != nil {
			is.t.Error(err)
		}
		writeJSON(w, map[string]any{"access_token": "at-" + r.PostForm.Get("code"), "token_type": "Bearer", "expires_in": 3600, "id_token": raw})
	case r.URL.Path == "/userinfo":
		is.mu.Lock()
		defer is.mu.Unlock()
		writeJSON(w, is.userinfo)
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (is *issuer) set(claims, userinfo map[string]any) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.claims, is.userinfo = claims, userinfo
}

func signIn(t *testing.T, client auth.UpstreamClient) (auth.UpstreamExchange, func(nonce string) (*auth.UpstreamIdentity, error)) {
	t.Helper()
	r := request()
	back := follow(t, client.AuthCodeURL(r))
	if back.Get("state") != r.State {
		t.Fatalf("state = %q", back.Get("state"))
	}
	x := auth.UpstreamExchange{RedirectURI: r.RedirectURI, Code: back.Get("code"), Verifier: r.Verifier, Nonce: r.Nonce}
	return x, func(nonce string) (*auth.UpstreamIdentity, error) {
		x.Nonce = nonce
		return client.Exchange(context.Background(), x)
	}
}

func TestGenericOIDC(t *testing.T) {
	is := newIssuer(t, func(base string) string { return base })
	p := &auth.UpstreamProvider{Name: "idp", DisplayName: "IdP", Preset: auth.PresetOIDC, Issuer: is.srv.URL, ClientID: "rp-client", ClientSecret: "s", Scopes: []string{"openid", "email"}}
	c := &upstream.Connector{}
	client, err := c.Connect(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	// Claims in the ID token.
	is.set(map[string]any{"sub": "u1", "email": "a@example.com", "email_verified": "true", "name": "A"}, nil)
	x, exchange := signIn(t, client)
	who, err := exchange(x.Nonce)
	if err != nil || who.Subject != "u1" || who.Email != "a@example.com" || !who.EmailVerified || who.Name != "A" {
		t.Fatalf("who = %+v, %v", who, err)
	}
	// Claims only in userinfo (as Onramp's own provider does), whose sub
	// must be the token's.
	is.set(map[string]any{"sub": "u2"}, map[string]any{"sub": "u2", "email": "b@example.com", "email_verified": false})
	x, exchange = signIn(t, client)
	if who, err = exchange(x.Nonce); err != nil || who.Email != "b@example.com" || who.EmailVerified {
		t.Fatalf("userinfo who = %+v, %v", who, err)
	}
	is.set(map[string]any{"sub": "u3"}, map[string]any{"sub": "someone-else", "email": "c@example.com", "email_verified": true})
	x, exchange = signIn(t, client)
	if _, err = exchange(x.Nonce); onramp.ErrorCode(err) != onramp.EUNAUTHORIZED {
		t.Fatalf("userinfo of another sub: %v", err)
	}
	// A token whose nonce is not this request's.
	is.set(map[string]any{"sub": "u1", "email": "a@example.com"}, nil)
	_, exchange = signIn(t, client)
	if _, err = exchange("another-requests-nonce"); onramp.ErrorCode(err) != onramp.EUNAUTHORIZED {
		t.Fatalf("wrong nonce: %v", err)
	}
	// A token from another issuer, or for another client.
	is.set(map[string]any{"sub": "u1", "iss": "https://evil.example.com"}, nil)
	x, exchange = signIn(t, client)
	if _, err = exchange(x.Nonce); onramp.ErrorCode(err) != onramp.EUNAUTHORIZED {
		t.Fatalf("wrong issuer: %v", err)
	}
	other := *p
	other.ClientID = "another-client"
	otherClient, _ := c.Connect(context.Background(), &other)
	is.set(map[string]any{"sub": "u1"}, nil)
	x, exchange = signIn(t, otherClient)
	if _, err = exchange(x.Nonce); onramp.ErrorCode(err) != onramp.EUNAUTHORIZED {
		t.Fatalf("token for another client: %v", err)
	}
	// Discovery is cached per configuration.
	before := is.calls["/.well-known/openid-configuration"]
	if _, err := c.Connect(context.Background(), p); err != nil || is.calls["/.well-known/openid-configuration"] != before {
		t.Errorf("discovery not cached: %d → %d", before, is.calls["/.well-known/openid-configuration"])
	}
}

// TestMicrosoftMultiTenant: with tenant "common" discovery names the
// issuer template; each token's iss must be its own tid's issuer.
func TestMicrosoftMultiTenant(t *testing.T) {
	const tmpl = "https://login.microsoftonline.com/{tenantid}/v2.0"
	is := newIssuer(t, func(string) string { return tmpl })
	p := &auth.UpstreamProvider{Name: "microsoft", DisplayName: "Microsoft", Preset: auth.PresetMicrosoft, Tenant: "common", Issuer: is.srv.URL + "/common/v2.0",
		ClientID: "rp-client", ClientSecret: "s", Scopes: []string{"openid", "email", "profile"}}
	client, err := (&upstream.Connector{}).Connect(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	const tid = "9188040d-6c67-4c5b-b112-36a304b66dad"
	is.set(map[string]any{"sub": "ms-1", "tid": tid, "iss": "https://login.microsoftonline.com/" + tid + "/v2.0", "preferred_username": "ann@contoso.example", "email_verified": true}, map[string]any{"sub": "ms-1"})
	x, exchange := signIn(t, client)
	who, err := exchange(x.Nonce)
	if err != nil || who.Subject != "ms-1" || who.Email != "ann@contoso.example" {
		t.Fatalf("who = %+v, %v", who, err)
	}
	for name, claims := range map[string]map[string]any{
		"iss of another tenant": {"sub": "ms-1", "tid": tid, "iss": "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0"},
		"no tid":                {"sub": "ms-1", "iss": "https://login.microsoftonline.com/" + tid + "/v2.0"},
		"foreign issuer":        {"sub": "ms-1", "tid": tid, "iss": "https://evil.example.com/" + tid + "/v2.0"},
	} {
		is.set(claims, nil)
		x, exchange = signIn(t, client)
		if _, err := exchange(x.Nonce); onramp.ErrorCode(err) != onramp.EUNAUTHORIZED {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestDiscoveryFailures(t *testing.T) {
	is := newIssuer(t, func(string) string { return "https://somewhere-else.example.com" })
	p := &auth.UpstreamProvider{Name: "idp", DisplayName: "IdP", Preset: auth.PresetOIDC, Issuer: is.srv.URL, ClientID: "c", ClientSecret: "s", Scopes: []string{"openid"}}
	if _, err := (&upstream.Connector{}).Connect(context.Background(), p); err == nil || !strings.Contains(err.Error(), "somewhere-else") {
		t.Errorf("issuer mismatch: %v", err)
	}
	p.Issuer = "http://127.0.0.1:1"
	if _, err := (&upstream.Connector{}).Connect(context.Background(), p); onramp.ErrorCode(err) != onramp.EUNAVAILABLE {
		t.Errorf("unreachable issuer: %v", err)
	}
}
