package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/onramp-dev/onramp/auth"
)

// The provider API and what the pages show of it. The whole round trip
// through a provider runs against the real binary in e2e/upstream_test.go.

func TestProvidersAPI(t *testing.T) {
	s := newTestStack(t)
	developer := s.token("dev", auth.RoleDeveloper)
	admin := s.token("admin", auth.RoleAdmin)
	google := map[string]any{"preset": "google", "client_id": "g.apps", "client_secret": "GOCSPX-secret"}

	if r := s.api(developer, "GET", "/api/auth/providers", nil); r.status != http.StatusForbidden {
		t.Errorf("developer lists providers: %d", r.status)
	}
	if r := s.api(developer, "POST", "/api/auth/providers", google); r.status != http.StatusForbidden {
		t.Errorf("developer adds a provider: %d", r.status)
	}
	r := s.api(admin, "POST", "/api/auth/providers", google)
	if r.status != http.StatusCreated {
		t.Fatalf("admin adds google: %d %s", r.status, r.body)
	}
	var added map[string]any
	r.json(t, &added)
	if added["name"] != "google" || added["callback_url"] != "http://onramp.test:8080/auth/upstream/google/callback" || added["trust_email"] != true {
		t.Errorf("added = %v", added)
	}
	if strings.Contains(string(r.body), "GOCSPX-secret") {
		t.Errorf("the answer shows the client secret: %s", r.body)
	}
	wantProblem(t, s.api(admin, "POST", "/api/auth/providers", google), http.StatusConflict)
	wantProblem(t, s.api(admin, "POST", "/api/auth/providers", map[string]any{"preset": "microsoft", "client_id": "m", "client_secret": "s", "trust_email": true}), http.StatusBadRequest)
	wantProblem(t, s.api(admin, "POST", "/api/auth/providers", map[string]any{"preset": "oidc", "client_id": "m", "client_secret": "s", "surprise": 1}), http.StatusBadRequest)
	if r := s.api(s.owner, "POST", "/api/auth/providers", map[string]any{"preset": "github", "client_id": "gh", "client_secret": "ghs"}); r.status != http.StatusCreated {
		t.Fatalf("owner adds github: %d %s", r.status, r.body)
	}
	r = s.api(s.owner, "GET", "/api/auth/providers", nil)
	var list struct {
		Data []map[string]any `json:"data"`
	}
	r.json(t, &list)
	if len(list.Data) != 2 || list.Data[0]["name"] != "google" || list.Data[1]["name"] != "github" || strings.Contains(string(r.body), "secret\"") {
		t.Errorf("list = %s", r.body)
	}

	// The pages show a button per provider and let the redirect to each
	// through their CSP.
	p := s.browser().get("/auth/sign-in")
	for _, name := range []string{"google", "github"} {
		f := p.form(t, "/auth/upstream/"+name+"/start")
		if f.values.Get("csrf") == "" {
			t.Errorf("the %s button's form has no csrf field", name)
		}
	}
	if !strings.Contains(p.body, "Continue with Google") || !strings.Contains(p.body, "Continue with GitHub") {
		t.Errorf("sign-in page buttons:\n%s", p.body)
	}
	csp := p.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "form-action 'self' https://accounts.google.com https://github.com;") {
		t.Errorf("CSP = %s", csp)
	}
	if p := s.browser().get("/auth/sign-up"); p.form(t, "/auth/upstream/google/start").action == "" {
		t.Error("no button on the sign-up page")
	}
	// A button's post without its CSRF token changes nothing.
	b := s.browser()
	b.get("/auth/sign-in")
	if p := b.post("/auth/upstream/google/start", nil); p.status != http.StatusForbidden {
		t.Errorf("start without csrf: %d", p.status)
	}
	// A callback with no sign-in under way in this browser is refused.
	if p := s.browser().get("/auth/upstream/google/callback?code=x&state=y"); p.status != http.StatusNotFound && p.status != http.StatusForbidden {
		t.Errorf("stray callback: %d", p.status)
	}

	if r := s.api(admin, "DELETE", "/api/auth/providers/google", nil); r.status != http.StatusNoContent {
		t.Errorf("remove: %d %s", r.status, r.body)
	}
	wantProblem(t, s.api(admin, "DELETE", "/api/auth/providers/google", nil), http.StatusNotFound)
	if p := s.browser().get("/auth/sign-in"); strings.Contains(p.body, "Continue with Google") {
		t.Error("a removed provider still has its button")
	}
	entries, err := s.accounts.Audit(t.Context(), auth.AuditQuery{Action: "auth.provider_*"})
	if err != nil || len(entries) != 3 || entries[0].ActorType != auth.ActorToken {
		t.Errorf("audit = %+v, %v", entries, err)
	}
}
