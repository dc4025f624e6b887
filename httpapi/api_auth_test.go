package httpapi_test

import (
	"bytes"
	"context"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/identity"
)

func TestAPIAuth(t *testing.T) {
	s := newTestStack(t)
	ctx := context.Background()
	support := s.token("support desk", auth.RoleSupport)
	marketer := s.token("marketing", auth.RoleMarketer)
	developer := s.token("dev", auth.RoleDeveloper)
	admin := s.token("admin", auth.RoleAdmin)
	revoked, err := s.tokens.CreateToken(ctx, "gone", auth.RoleOwner)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.tokens.Revoke(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	s.ingest(`{"type":"identify","userId":"u1","traits":{"name":"Ada"}}`)
	person := s.personOf(identity.UserID, "u1")
	other, err := s.tokens.CreateToken(ctx, "second owner", auth.RoleOwner)
	if err != nil {
		t.Fatal(err)
	}
	ownerID := other.ID
	newProp := map[string]any{"name": "Made by a test"}

	tests := []struct {
		name   string
		header []string // raw headers, for malformed credentials
		token  string
		method string
		path   string
		body   any
		status int
	}{
		{name: "no token", method: "GET", path: "/api/people", status: 401},
		{name: "empty bearer", header: []string{"Authorization", "Bearer "}, method: "GET", path: "/api/people", status: 401},
		{name: "basic instead of bearer", header: []string{"Authorization", basic(s.owner)}, method: "GET", path: "/api/people", status: 401},
		{name: "bearer scheme in lower case", header: []string{"Authorization", "bearer " + s.owner}, method: "GET", path: "/api/people", status: 200},
		{name: "bearer scheme in upper case", header: []string{"Authorization", "BEARER " + s.owner}, method: "GET", path: "/api/people", status: 200},
		{name: "token without scheme", header: []string{"Authorization", s.owner}, method: "GET", path: "/api/people", status: 401},
		{name: "unknown token", token: "ort_unknown", method: "GET", path: "/api/people", status: 401},
		{name: "not a token at all", token: "x", method: "GET", path: "/api/people", status: 401},
		{name: "write key as token", token: s.prop.WriteKey, method: "GET", path: "/api/people", status: 401},
		{name: "revoked token", token: revoked.Secret, method: "GET", path: "/api/people", status: 401},
		{name: "revoked token on a write", token: revoked.Secret, method: "POST", path: "/api/properties", body: newProp, status: 401},
		{name: "support reads people", token: support, method: "GET", path: "/api/people", status: 200},
		{name: "support reads a person", token: support, method: "GET", path: "/api/people/" + person, status: 200},
		{name: "support reads properties", token: support, method: "GET", path: "/api/properties", status: 200},
		{name: "support may not create properties", token: support, method: "POST", path: "/api/properties", body: newProp, status: 403},
		{name: "support may not list tokens", token: support, method: "GET", path: "/api/tokens", status: 403},
		{name: "support may not create tokens", token: support, method: "POST", path: "/api/tokens", body: map[string]any{"name": "x", "role": "owner"}, status: 403},
		{name: "support may not delete people", token: support, method: "DELETE", path: "/api/people/" + person, status: 403},
		{name: "support may not merge people", token: support, method: "POST", path: "/api/people/" + person + "/merge", body: map[string]any{"from": person}, status: 403},
		{name: "marketer reads people", token: marketer, method: "GET", path: "/api/people?q=u1", status: 200},
		{name: "marketer reads conflicts", token: marketer, method: "GET", path: "/api/conflicts", status: 200},
		{name: "marketer may not create properties", token: marketer, method: "POST", path: "/api/properties", body: newProp, status: 403},
		{name: "marketer may not change properties", token: marketer, method: "PATCH", path: "/api/properties/" + s.prop.ID, body: map[string]any{"name": "x"}, status: 403},
		{name: "marketer may not revoke keys", token: marketer, method: "POST", path: "/api/properties/" + s.prop.ID + "/revoke-key", body: map[string]any{"key": "write"}, status: 403},
		{name: "marketer may not manage tokens", token: marketer, method: "GET", path: "/api/tokens", status: 403},
		{name: "developer creates properties", token: developer, method: "POST", path: "/api/properties", body: map[string]any{"name": "Dev site"}, status: 201},
		{name: "developer may not manage tokens", token: developer, method: "POST", path: "/api/tokens", body: map[string]any{"name": "x", "role": "support"}, status: 403},
		{name: "admin lists tokens", token: admin, method: "GET", path: "/api/tokens", status: 200},
		{name: "admin may not mint owner tokens", token: admin, method: "POST", path: "/api/tokens", body: map[string]any{"name": "x", "role": "owner"}, status: 403},
		{name: "admin mints support tokens", token: admin, method: "POST", path: "/api/tokens", body: map[string]any{"name": "x", "role": "support"}, status: 201},
		{name: "admin may not revoke owner tokens", token: admin, method: "DELETE", path: "/api/tokens/" + ownerID, status: 403},
		{name: "revoking an unknown token", token: s.owner, method: "DELETE", path: "/api/tokens/tok_nope", status: 404},
		{name: "owner lists tokens", token: s.owner, method: "GET", path: "/api/tokens", status: 200},
		{name: "unknown API path", token: s.owner, method: "GET", path: "/api/nothing", status: 404},
		{name: "unknown API path without token", method: "GET", path: "/api/nothing", status: 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r reply
			if tc.header != nil {
				r = s.do(tc.method, tc.path, nil, tc.header...)
			} else {
				r = s.api(tc.token, tc.method, tc.path, tc.body)
			}
			if r.status != tc.status {
				t.Fatalf("status = %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.status >= 400 {
				wantProblem(t, r, tc.status)
			}
			if tc.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", r.header.Get("WWW-Authenticate"))
			}
		})
	}

	t.Run("tokens: create, use, list, revoke", func(t *testing.T) {
		r := s.api(s.owner, "POST", "/api/tokens", map[string]any{"name": "ci", "role": "support"})
		if r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		var nt struct {
			ID    string `json:"id"`
			Token string `json:"token"`
			Role  string `json:"role"`
		}
		r.json(t, &nt)
		if nt.ID == "" || !strings.HasPrefix(nt.Token, "ort_") || nt.Role != "support" {
			t.Fatalf("new token = %s", r.body)
		}
		if r := s.api(nt.Token, "GET", "/api/people", nil); r.status != 200 {
			t.Errorf("new token does not work: %d", r.status)
		}
		r = s.api(s.owner, "GET", "/api/tokens", nil)
		if !bytes.Contains(r.body, []byte(nt.ID)) || bytes.Contains(r.body, []byte(nt.Token)) {
			t.Errorf("token list should name the token and never show secrets: %s", r.body)
		}
		if r := s.api(s.owner, "DELETE", "/api/tokens/"+nt.ID, nil); r.status != 204 {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
		if r := s.api(nt.Token, "GET", "/api/people", nil); r.status != 401 {
			t.Errorf("revoked token still works: %d", r.status)
		}
		wantProblem(t, s.api(s.owner, "DELETE", "/api/tokens/"+nt.ID, nil), 404)
		wantProblem(t, s.api(s.owner, "POST", "/api/tokens", map[string]any{"name": "x", "role": "superuser"}), 400)
	})
}

func TestAPIProperties(t *testing.T) {
	s := newTestStack(t)
	type propJSON struct {
		ID        string   `json:"id"`
		Name      string   `json:"name"`
		Origins   []string `json:"origins"`
		WriteKey  string   `json:"write_key"`
		SecretKey string   `json:"secret_key"`
	}
	var created propJSON
	t.Run("create", func(t *testing.T) {
		r := s.api(s.owner, "POST", "/api/properties", map[string]any{"name": "Community", "origins": []string{"https://Community.Example.com/", "https://community.example.com"}})
		if r.status != 201 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		r.json(t, &created)
		if created.ID == "" || !strings.HasPrefix(created.WriteKey, "wk_") || !strings.HasPrefix(created.SecretKey, "sk_") {
			t.Errorf("created = %s", r.body)
		}
		if !slices.Equal(created.Origins, []string{"https://community.example.com"}) {
			t.Errorf("origins = %v, want one normalised origin", created.Origins)
		}
		if bytes.Contains(r.body, []byte("secret_key_hash")) {
			t.Errorf("the secret's hash is shown: %s", r.body)
		}
	})
	bad := []struct {
		name   string
		body   any
		ctype  string
		status int
	}{
		{"same name again", map[string]any{"name": "Community"}, "", 409},
		{"no name", map[string]any{"origins": []string{}}, "", 400},
		{"empty name", map[string]any{"name": " "}, "", 400},
		{"origin with a path", map[string]any{"name": "X", "origins": []string{"https://x.example.com/app"}}, "", 400},
		{"origin without scheme", map[string]any{"name": "X", "origins": []string{"x.example.com"}}, "", 400},
		{"unknown field", `{"name":"X","colour":"red"}`, "", 400},
		{"two JSON values", `{"name":"X"} {"name":"Y"}`, "", 400},
		{"not JSON", `name=X`, "", 400},
		{"empty body", ``, "", 400},
		{"wrong content type", `{"name":"X"}`, "text/plain", 400},
		{"form content type", `name=X`, "application/x-www-form-urlencoded", 400},
		{"name of the wrong type", `{"name":5}`, "", 400},
		{"body over 1 MB", `{"name":"` + strings.Repeat("x", 1<<20) + `"}`, "", 413},
	}
	for _, tc := range bad {
		t.Run("create refused: "+tc.name, func(t *testing.T) {
			var r reply
			if tc.ctype != "" {
				r = s.do("POST", "/api/properties", []byte(tc.body.(string)), "Authorization", "Bearer "+s.owner, "Content-Type", tc.ctype)
			} else {
				r = s.api(s.owner, "POST", "/api/properties", tc.body)
			}
			wantProblem(t, r, tc.status)
		})
	}
	t.Run("list", func(t *testing.T) {
		r := s.api(s.owner, "GET", "/api/properties", nil)
		var out struct{ Data []propJSON }
		r.json(t, &out)
		var names []string
		for _, p := range out.Data {
			names = append(names, p.Name)
			if p.SecretKey != "" {
				t.Errorf("list shows a secret key")
			}
		}
		sort.Strings(names)
		if !slices.Equal(names, []string{"Community", "Website"}) {
			t.Errorf("names = %v", names)
		}
	})
	t.Run("get by id and by name", func(t *testing.T) {
		for _, key := range []string{created.ID, url.PathEscape("Community")} {
			r := s.api(s.owner, "GET", "/api/properties/"+key, nil)
			var p propJSON
			r.json(t, &p)
			if r.status != 200 || p.ID != created.ID {
				t.Errorf("GET %s = %d %s", key, r.status, r.body)
			}
		}
		wantProblem(t, s.api(s.owner, "GET", "/api/properties/prp_nope", nil), 404)
	})
	t.Run("patch", func(t *testing.T) {
		r := s.api(s.owner, "PATCH", "/api/properties/"+created.ID, map[string]any{"name": "Forum"})
		var p propJSON
		r.json(t, &p)
		if r.status != 200 || p.Name != "Forum" || !slices.Equal(p.Origins, []string{"https://community.example.com"}) {
			t.Errorf("rename = %d %s (origins must stay)", r.status, r.body)
		}
		r = s.api(s.owner, "PATCH", "/api/properties/"+created.ID, map[string]any{"origins": []string{"https://forum.example.com"}})
		r.json(t, &p)
		if r.status != 200 || p.Name != "Forum" || !slices.Equal(p.Origins, []string{"https://forum.example.com"}) {
			t.Errorf("origins = %d %s", r.status, r.body)
		}
		// The new origins apply to the next request at once.
		body := `{"batch":[{"type":"page","anonymousId":"a","messageId":"o1"}]}`
		if r := s.do("POST", "/v1/batch", []byte(body), "Authorization", basic(created.WriteKey), "Origin", "https://community.example.com"); r.status != 403 {
			t.Errorf("old origin after patch: %d, want 403", r.status)
		}
		if r := s.do("POST", "/v1/batch", []byte(body), "Authorization", basic(created.WriteKey), "Origin", "https://forum.example.com"); r.status != 200 {
			t.Errorf("new origin after patch: %d, want 200", r.status)
		}
		wantProblem(t, s.api(s.owner, "PATCH", "/api/properties/"+created.ID, map[string]any{"origins": []string{"ftp://x"}}), 400)
		wantProblem(t, s.api(s.owner, "PATCH", "/api/properties/"+created.ID, map[string]any{"name": ""}), 400)
		wantProblem(t, s.api(s.owner, "PATCH", "/api/properties/prp_nope", map[string]any{"name": "x"}), 404)
		wantProblem(t, s.api(s.owner, "PATCH", "/api/properties/"+created.ID, `{"nam":"typo"}`), 400)
	})
	t.Run("revoke the write key: the old one stops at once", func(t *testing.T) {
		send := func(key, mid string) int {
			return s.do("POST", "/v1/track", []byte(`{"event":"x","anonymousId":"a","messageId":"`+mid+`"}`), "Authorization", basic(key)).status
		}
		if st := send(created.WriteKey, "before"); st != 200 {
			t.Fatalf("before revoke: %d", st)
		}
		r := s.api(s.owner, "POST", "/api/properties/"+created.ID+"/revoke-key", map[string]any{"key": "write"})
		var p propJSON
		r.json(t, &p)
		if r.status != 200 || p.WriteKey == "" || p.WriteKey == created.WriteKey || p.SecretKey != "" {
			t.Fatalf("revoke = %d %s", r.status, r.body)
		}
		if st := send(created.WriteKey, "after-old"); st != 401 {
			t.Errorf("old write key after revoke: %d, want 401", st)
		}
		if st := send(p.WriteKey, "after-new"); st != 200 {
			t.Errorf("new write key: %d, want 200", st)
		}
		if r := s.do("GET", "/v1/projects/"+created.WriteKey+"/settings", nil); r.status != 404 {
			t.Errorf("settings of the old key: %d, want 404", r.status)
		}
	})
	t.Run("revoke the secret key", func(t *testing.T) {
		s.ingest(`{"type":"identify","userId":"sk-user"}`)
		path := "/v1/profiles/user_id:sk-user/traits"
		if r := s.do("GET", path, nil, "Authorization", basic(created.SecretKey)); r.status != 200 {
			t.Fatalf("secret key before revoke: %d %s", r.status, r.body)
		}
		r := s.api(s.owner, "POST", "/api/properties/"+created.ID+"/revoke-key", map[string]any{"key": "secret"})
		var p propJSON
		r.json(t, &p)
		if r.status != 200 || !strings.HasPrefix(p.SecretKey, "sk_") {
			t.Fatalf("revoke = %d %s", r.status, r.body)
		}
		wantProblem(t, s.do("GET", path, nil, "Authorization", basic(created.SecretKey)), 401)
		if r := s.do("GET", path, nil, "Authorization", basic(p.SecretKey)); r.status != 200 {
			t.Errorf("new secret key: %d", r.status)
		}
		wantProblem(t, s.api(s.owner, "POST", "/api/properties/"+created.ID+"/revoke-key", map[string]any{"key": "both"}), 400)
		wantProblem(t, s.api(s.owner, "POST", "/api/properties/prp_nope/revoke-key", map[string]any{"key": "write"}), 404)
	})
}
