package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestPropertyThemeAPI: POST and PATCH /api/properties take a theme,
// refuse values of any other shape with a clear 400 that changes nothing,
// and {} removes it.
func TestPropertyThemeAPI(t *testing.T) {
	s := newTestStack(t)
	type themed struct {
		ID    string            `json:"id"`
		Theme map[string]string `json:"theme"`
	}
	r := s.api(s.owner, http.MethodPost, "/api/properties", map[string]any{
		"name": "Shop", "theme": map[string]string{"logo_url": "https://cdn.example.com/shop.svg", "color_primary": "#0B5FFF"},
	})
	if r.status != http.StatusCreated {
		t.Fatalf("create = %d %s", r.status, r.body)
	}
	var p themed
	r.json(t, &p)
	if p.Theme["logo_url"] != "https://cdn.example.com/shop.svg" || p.Theme["color_primary"] != "#0b5fff" || p.Theme["color_accent"] != "" {
		t.Errorf("created theme = %v", p.Theme)
	}

	before := len(s.listProperties())
	for _, bad := range []struct {
		theme   map[string]string
		mention string
	}{
		{map[string]string{"color_primary": "red"}, "color_primary"},
		{map[string]string{"color_accent": "#fff;}body{display:none"}, "color_accent"},
		{map[string]string{"logo_url": "http://cdn.example.com/x.png"}, "https"},
		{map[string]string{"logo_url": "javascript:alert(1)"}, "logo_url"},
		{map[string]string{"logo_url": `https://cdn.example.com/x.png"><script>alert(1)</script>`}, "logo_url"},
	} {
		pr := wantProblem(t, s.api(s.owner, http.MethodPost, "/api/properties", map[string]any{"name": "Evil", "theme": bad.theme}), http.StatusBadRequest)
		if !strings.Contains(pr.Detail, bad.mention) {
			t.Errorf("create with theme %v: detail %q does not mention %s", bad.theme, pr.Detail, bad.mention)
		}
		pr = wantProblem(t, s.api(s.owner, http.MethodPatch, "/api/properties/"+p.ID, map[string]any{"theme": bad.theme}), http.StatusBadRequest)
		if !strings.Contains(pr.Detail, bad.mention) {
			t.Errorf("patch with theme %v: detail %q does not mention %s", bad.theme, pr.Detail, bad.mention)
		}
	}
	if after := len(s.listProperties()); after != before {
		t.Errorf("refused creations left %d properties behind", after-before)
	}
	r = s.api(s.owner, http.MethodGet, "/api/properties/"+p.ID, nil)
	var got themed
	r.json(t, &got)
	if got.Theme["logo_url"] != "https://cdn.example.com/shop.svg" || got.Theme["color_primary"] != "#0b5fff" {
		t.Errorf("refused patches changed the theme: %v", got.Theme)
	}

	// A patch without theme keeps it; a theme replaces it whole; {} clears.
	r = s.api(s.owner, http.MethodPatch, "/api/properties/"+p.ID, map[string]any{"name": "Shop 2"})
	r.json(t, &got)
	if got.Theme["color_primary"] != "#0b5fff" {
		t.Errorf("a patch without theme changed it: %s", r.body)
	}
	r = s.api(s.owner, http.MethodPatch, "/api/properties/"+p.ID, map[string]any{"theme": map[string]string{"color_accent": "#FFBF47"}})
	got = themed{}
	r.json(t, &got)
	if r.status != http.StatusOK || len(got.Theme) != 1 || got.Theme["color_accent"] != "#ffbf47" {
		t.Errorf("replacing the theme = %d %s", r.status, r.body)
	}
	r = s.api(s.owner, http.MethodPatch, "/api/properties/"+p.ID, map[string]any{"theme": map[string]string{}})
	got = themed{}
	r.json(t, &got)
	if r.status != http.StatusOK || len(got.Theme) != 0 || !strings.Contains(string(r.body), `"theme":{}`) {
		t.Errorf("clearing the theme = %d %s", r.status, r.body)
	}
	wantProblem(t, s.api(s.owner, http.MethodPatch, "/api/properties/"+p.ID, map[string]any{"theme": map[string]string{"colour": "#000000"}}), http.StatusBadRequest)
}
