package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// TestPropertyCreateTheme: property create takes the theme flags, stores
// them normalised, and refuses a bad value with a clear message and no
// property.
func TestPropertyCreateTheme(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []string{"ONRAMP_DATABASE_URL", "ONRAMP_CONFIG", "ONRAMP_DATA_DIR"} {
		t.Setenv(k, "")
	}
	cli := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append(args, "--data-dir", dir), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, errOut := cli("property", "create", "--name", "shop", "--logo-url", "https://cdn.example.com/shop.svg",
		"--color-primary", "#0B5FFF", "--color-accent", "#ffbf47", "--json")
	if code != 0 {
		t.Fatalf("property create = %d: %s", code, errOut)
	}
	var created struct {
		Theme map[string]string `json:"theme"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	want := map[string]string{"logo_url": "https://cdn.example.com/shop.svg", "color_primary": "#0b5fff", "color_accent": "#ffbf47"}
	for k, v := range want {
		if created.Theme[k] != v {
			t.Errorf("theme %s = %q, want %q (%s)", k, created.Theme[k], v, out)
		}
	}
	code, _, errOut = cli("property", "create", "--name", "evil", "--color-primary", "red")
	if code != 1 || !strings.Contains(errOut, "color_primary") || !strings.Contains(errOut, "#rrggbb") {
		t.Errorf("bad colour = %d %q; want 1 and a message naming color_primary and #rrggbb", code, errOut)
	}
	code, _, errOut = cli("property", "create", "--name", "evil", "--logo-url", "http://cdn.example.com/x.png")
	if code != 1 || !strings.Contains(errOut, "logo_url") {
		t.Errorf("http logo = %d %q; want 1 and a message naming logo_url", code, errOut)
	}
	_, out, _ = cli("property", "list", "--json")
	if strings.Contains(out, "evil") || !strings.Contains(out, `"color_primary": "#0b5fff"`) {
		t.Errorf("property list = %s; want the themed shop and no evil", out)
	}
}
