package auth_test

import (
	"context"
	"strings"
	"testing"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/sqlite"
)

func ptr[T any](v T) *T { return &v }

func TestUpstreamPresets(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		p                      auth.AddUpstreamParams
		name, issuer, scopes   string
		trust, multiTenant     bool
		webBase, apiBase, disp string
	}{
		{p: auth.AddUpstreamParams{Preset: "google", ClientID: "g", ClientSecret: "gs"},
			name: "google", disp: "Google", issuer: "https://accounts.google.com", scopes: "openid email profile", trust: true},
		{p: auth.AddUpstreamParams{Preset: "microsoft", ClientID: "m", ClientSecret: "ms"},
			name: "microsoft", disp: "Microsoft", issuer: "https://login.microsoftonline.com/common/v2.0", scopes: "openid email profile", multiTenant: true},
		{p: auth.AddUpstreamParams{Preset: "microsoft", Name: "contoso", Tenant: "contoso.onmicrosoft.com", ClientID: "m", ClientSecret: "ms"},
			name: "contoso", disp: "Microsoft", issuer: "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0", scopes: "openid email profile"},
		{p: auth.AddUpstreamParams{Preset: "github", ClientID: "h", ClientSecret: "hs"},
			name: "github", disp: "GitHub", scopes: "read:user user:email", trust: true, webBase: "https://github.com", apiBase: "https://api.github.com"},
		{p: auth.AddUpstreamParams{Preset: "github", Name: "ghe", WebBase: "https://ghe.example.com/", APIBase: "https://ghe.example.com/api/v3", TrustEmail: ptr(false), ClientID: "h", ClientSecret: "hs"},
			name: "ghe", disp: "GitHub", scopes: "read:user user:email", webBase: "https://ghe.example.com", apiBase: "https://ghe.example.com/api/v3"},
		{p: auth.AddUpstreamParams{Preset: "oidc", Name: "okta", DisplayName: "Acme SSO", Issuer: "https://acme.okta.com", ClientID: "o", ClientSecret: "os"},
			name: "okta", disp: "Acme SSO", issuer: "https://acme.okta.com", scopes: "openid email profile"},
		{p: auth.AddUpstreamParams{Preset: "oidc", Name: "local", Issuer: "http://127.0.0.1:9999", TrustEmail: ptr(true), Scopes: []string{"openid", "email"}, ClientID: "o", ClientSecret: "os"},
			name: "local", disp: "local", issuer: "http://127.0.0.1:9999", scopes: "openid email", trust: true},
	} {
		got, err := r.acc.AddUpstreamProvider(ctx, tc.p)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got.Name != tc.name || got.DisplayName != tc.disp || got.Issuer != tc.issuer || strings.Join(got.Scopes, " ") != tc.scopes ||
			got.TrustEmail != tc.trust || got.MultiTenant() != tc.multiTenant || got.WebBase != tc.webBase || got.APIBase != tc.apiBase || got.ClientSecret != "" {
			t.Errorf("%s: %+v", tc.name, got)
		}
	}
	list, err := r.acc.UpstreamProviders(ctx)
	if err != nil || len(list) != 7 || list[0].Name != "google" || list[6].Name != "local" {
		t.Fatalf("UpstreamProviders = %d, %v", len(list), err)
	}
	if cb := list[0].CallbackURL("https://id.example.com/"); cb != "https://id.example.com/auth/upstream/google/callback" {
		t.Errorf("callback = %s", cb)
	}
}

func TestUpstreamConfigRefusals(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	ok := auth.AddUpstreamParams{Preset: "oidc", Name: "idp", Issuer: "https://idp.example.com", ClientID: "c", ClientSecret: "s"}
	for what, change := range map[string]func(p *auth.AddUpstreamParams){
		"unknown preset":      func(p *auth.AddUpstreamParams) { p.Preset = "facebook" },
		"oidc without issuer": func(p *auth.AddUpstreamParams) { p.Issuer = "" },
		"oidc without name":   func(p *auth.AddUpstreamParams) { p.Name = "" },
		"plain http issuer":   func(p *auth.AddUpstreamParams) { p.Issuer = "http://idp.example.com" },
		"issuer with query":   func(p *auth.AddUpstreamParams) { p.Issuer = "https://idp.example.com/?x=1" },
		"name with capitals":  func(p *auth.AddUpstreamParams) { p.Name = "IdP" },
		"name with a slash":   func(p *auth.AddUpstreamParams) { p.Name = "a/b" },
		"no client id":        func(p *auth.AddUpstreamParams) { p.ClientID = "" },
		"no client secret":    func(p *auth.AddUpstreamParams) { p.ClientSecret = "" },
		"no openid scope":     func(p *auth.AddUpstreamParams) { p.Scopes = []string{"email"} },
		"scope with a space":  func(p *auth.AddUpstreamParams) { p.Scopes = []string{"openid", "a b"} },
		"trusted microsoft":   func(p *auth.AddUpstreamParams) { p.Preset, p.Issuer, p.TrustEmail = "microsoft", "", ptr(true) },
		"google issuer moved": func(p *auth.AddUpstreamParams) { p.Preset = "google" },
		"tenant on google":    func(p *auth.AddUpstreamParams) { p.Preset, p.Issuer, p.Tenant = "google", "", "common" },
		"api base on oidc":    func(p *auth.AddUpstreamParams) { p.APIBase = "https://api.example.com" },
		"github api over http": func(p *auth.AddUpstreamParams) {
			p.Preset, p.Issuer, p.APIBase = "github", "", "http://api.example.com"
		},
		"bad tenant": func(p *auth.AddUpstreamParams) { p.Preset, p.Issuer, p.Tenant = "microsoft", "", "a/b" },
	} {
		p := ok
		change(&p)
		if _, err := r.acc.AddUpstreamProvider(ctx, p); onramp.ErrorCode(err) != onramp.EINVALID {
			t.Errorf("%s: %v, want EINVALID", what, err)
		}
	}
	if _, err := r.acc.AddUpstreamProvider(ctx, ok); err != nil {
		t.Fatal(err)
	}
	if _, err := r.acc.AddUpstreamProvider(ctx, ok); onramp.ErrorCode(err) != onramp.ECONFLICT {
		t.Errorf("the same name twice: %v", err)
	}
	if err := r.acc.RemoveUpstreamProvider(ctx, "idp", auth.AuditEntry{ActorType: auth.ActorSystem}); err != nil {
		t.Fatal(err)
	}
	if err := r.acc.RemoveUpstreamProvider(ctx, "idp", auth.AuditEntry{ActorType: auth.ActorSystem}); onramp.ErrorCode(err) != onramp.ENOTFOUND {
		t.Errorf("remove twice: %v", err)
	}
	entries, err := r.acc.Audit(ctx, auth.AuditQuery{Action: "auth.provider_*"})
	if err != nil || len(entries) != 2 || entries[0].Action != "auth.provider_removed" || entries[1].Action != "auth.provider_added" {
		t.Errorf("audit = %v, %v", entries, err)
	}
}

// TestUpstreamSecretSealed: the client secret is stored only sealed, and a
// sealed secret moved to another provider does not open.
func TestUpstreamSecretSealed(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	const secret = "very-secret-client-secret-123"
	for _, name := range []string{"one", "two"} {
		if _, err := r.acc.AddUpstreamProvider(ctx, auth.AddUpstreamParams{Preset: "oidc", Name: name, Issuer: "https://idp.example.com", ClientID: "c", ClientSecret: secret + name}); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := r.db.Reader().Setting(ctx, "upstream_providers")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), secret) {
		t.Fatalf("the setting holds the secret in clear: %s", raw)
	}
	opened, err := auth.OpenUpstreamProvider(ctx, r.acc, "one")
	if err != nil || opened.ClientSecret != secret+"one" {
		t.Fatalf("open = %+v, %v", opened, err)
	}
	// Swap the sealed secrets of the two providers: neither opens.
	s := string(raw)
	i1 := strings.Index(s, `"client_secret_sealed":"`)
	i2 := strings.LastIndex(s, `"client_secret_sealed":"`)
	v1 := s[i1 : i1+strings.Index(s[i1+24:], `"`)+25]
	v2 := s[i2 : i2+strings.Index(s[i2+24:], `"`)+25]
	swapped := strings.Replace(strings.Replace(strings.Replace(s, v1, "X1", 1), v2, v1, 1), "X1", v2, 1)
	if err := r.db.InTx(ctx, func(q *sqlite.Queries) error {
		return q.PutSetting(ctx, "upstream_providers", []byte(swapped), "test", r.clock.Now())
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.OpenUpstreamProvider(ctx, r.acc, "one"); err == nil {
		t.Error("a sealed secret opened under another provider's name")
	}
}
