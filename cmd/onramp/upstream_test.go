package main

import (
	"strings"
	"testing"
)

// TestProviderAddCallbackFollowsThePublicURL: auth provider add prints
// the callback under the public URL the server is configured with
// (--public-url or ONRAMP_PUBLIC_URL, as serve reads them); without one it
// prints the listen address's and says that it is only right for a
// server reached there.
func TestProviderAddCallbackFollowsThePublicURL(t *testing.T) {
	add := []string{"auth", "provider", "add", "--preset", "google", "--client-id", "1234.apps", "--client-secret", "s3cret"}
	t.Run("flag", func(t *testing.T) {
		c := newCLI(t)
		code, out, errOut := c.run(append(add, "--public-url", "https://id.example.com/")...)
		if code != 0 || !strings.Contains(out, "\n    https://id.example.com/auth/upstream/google/callback\n") || strings.Contains(out, "127.0.0.1") || strings.Contains(out, "No public URL") {
			t.Errorf("exit %d:\n%s%s", code, out, errOut)
		}
		var list []string
		_, out, _ = c.run("auth", "provider", "list", "--public-url", "https://id.example.com")
		for _, l := range strings.Split(out, "\n") {
			list = append(list, strings.TrimSpace(l))
		}
		if !strings.HasSuffix(list[1], "https://id.example.com/auth/upstream/google/callback") || strings.Contains(out, "No public URL") {
			t.Errorf("provider list:\n%s", out)
		}
	})
	t.Run("environment", func(t *testing.T) {
		c := newCLI(t)
		t.Setenv("ONRAMP_PUBLIC_URL", "https://login.example.org")
		var got struct {
			CallbackURL  string `json:"callback_url"`
			CallbackPath string `json:"callback_path"`
			PublicURLSet bool   `json:"public_url_set"`
		}
		c.ok(&got, append(add, "--json")...)
		if got.CallbackURL != "https://login.example.org/auth/upstream/google/callback" || got.CallbackPath != "/auth/upstream/google/callback" || !got.PublicURLSet {
			t.Errorf("provider add --json = %+v", got)
		}
	})
	t.Run("unset", func(t *testing.T) {
		c := newCLI(t)
		code, out, errOut := c.run(append(add, "--addr", "0.0.0.0:9000")...)
		if code != 0 || !strings.Contains(out, "http://127.0.0.1:9000/auth/upstream/google/callback") ||
			!strings.Contains(out, "No public URL is set") || !strings.Contains(out, "<public URL>/auth/upstream/google/callback") || !strings.Contains(out, "ONRAMP_PUBLIC_URL") {
			t.Errorf("exit %d:\n%s%s", code, out, errOut)
		}
		var got struct {
			CallbackPath string `json:"callback_path"`
			PublicURLSet *bool  `json:"public_url_set"`
		}
		c.ok(&got, "auth", "provider", "add", "--preset", "github", "--client-id", "gh", "--client-secret", "s", "--json")
		if got.CallbackPath != "/auth/upstream/github/callback" || got.PublicURLSet == nil || *got.PublicURLSet {
			t.Errorf("provider add --json without a public URL = %+v", got)
		}
	})
}
