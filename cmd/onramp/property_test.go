package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/onramp-dev/onramp/inmem"
)

// cli runs onramp with args on one data folder and returns its exit
// code, stdout and stderr.
type cli struct {
	t   *testing.T
	dir string
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	for _, k := range []string{"ONRAMP_DATABASE_URL", "ONRAMP_CONFIG", "ONRAMP_DATA_DIR", "ONRAMP_PUBLIC_URL", "ONRAMP_ADDR"} {
		t.Setenv(k, "")
	}
	return &cli{t: t, dir: t.TempDir()}
}

func (c *cli) run(args ...string) (int, string, string) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), append(args, "--data-dir", c.dir), &out, &errOut)
	return code, out.String(), errOut.String()
}

// ok runs a command that must succeed and decodes its --json output.
func (c *cli) ok(v any, args ...string) {
	c.t.Helper()
	code, out, errOut := c.run(args...)
	if code != 0 {
		c.t.Fatalf("onramp %s: exit %d: %s%s", strings.Join(args, " "), code, out, errOut)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(out), v); err != nil {
			c.t.Fatalf("onramp %s: output is not JSON (%v): %s", strings.Join(args, " "), err, out)
		}
	}
}

// fails runs a command that must exit 1 with a message containing want.
func (c *cli) fails(want string, args ...string) {
	c.t.Helper()
	code, out, errOut := c.run(args...)
	if code != 1 || !strings.Contains(errOut, want) {
		c.t.Errorf("onramp %s: exit %d, stderr %q (stdout %q); want exit 1 mentioning %q", strings.Join(args, " "), code, errOut, out, want)
	}
}

// app opens the data folder as the server would, to check what the
// commands stored.
func (c *cli) app() *app {
	c.t.Helper()
	cfg := defaultConfig()
	cfg.DataDir = c.dir
	if err := cfg.validate(); err != nil {
		c.t.Fatal(err)
	}
	a, err := openApp(context.Background(), cfg, slog.New(slog.DiscardHandler), inmem.NewBus(slog.New(slog.DiscardHandler)), nil)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { a.Close() })
	return a
}

type updatedJSON struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Origins []string `json:"origins"`
	Client  *struct {
		ID                     string   `json:"id"`
		FirstParty             bool     `json:"first_party"`
		RedirectURIs           []string `json:"redirect_uris"`
		PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
		BackchannelLogoutURI   string   `json:"backchannel_logout_uri"`
	} `json:"client"`
}

// TestPropertyUpdate: onramp property update changes the property and its
// client in one go; repeated flags replace a list and an empty one clears it; flags
// not given leave their field alone; a refused URI changes nothing.
func TestPropertyUpdate(t *testing.T) {
	c := newCLI(t)
	var created struct {
		ID       string `json:"id"`
		ClientID string `json:"client_id"`
	}
	c.ok(&created, "property", "create", "--name", "app", "--redirect-uri", "https://app.example.com/cb", "--json")

	var up updatedJSON
	c.ok(&up, "property", "update", "app", "--name", "product", "--origin", "https://app.example.com",
		"--redirect-uri", "https://app.example.com/a", "--redirect-uri", "http://localhost:3000/cb",
		"--post-logout-redirect-uri", "https://app.example.com/", "--backchannel-logout-uri", "https://app.example.com/bcl",
		"--first-party", "--json")
	if up.ID != created.ID || up.Name != "product" || len(up.Origins) != 1 || up.Client == nil || up.Client.ID != created.ClientID ||
		!up.Client.FirstParty || len(up.Client.RedirectURIs) != 2 || up.Client.RedirectURIs[0] != "https://app.example.com/a" ||
		len(up.Client.PostLogoutRedirectURIs) != 1 || up.Client.BackchannelLogoutURI != "https://app.example.com/bcl" {
		t.Fatalf("updated = %+v %+v", up, up.Client)
	}

	// '' clears one list; the other fields stay.
	up = updatedJSON{}
	c.ok(&up, "property", "update", created.ID, "--redirect-uri", "", "--json")
	if up.Name != "product" || len(up.Origins) != 1 || len(up.Client.RedirectURIs) != 0 || len(up.Client.PostLogoutRedirectURIs) != 1 || !up.Client.FirstParty {
		t.Fatalf("after clearing redirect URIs = %+v %+v", up, up.Client)
	}

	c.fails("https", "property", "update", "product", "--name", "renamed", "--redirect-uri", "http://evil.example.com/cb")
	c.fails("not both", "property", "update", "product", "--first-party", "--no-first-party")
	c.fails("nothing to change", "property", "update", "product")
	c.fails("give one property", "property", "update", "--name", "x")
	c.fails("No property", "property", "update", "nope", "--first-party")

	// Text output, and --no-first-party; the refused rename above left the name.
	code, out, errOut := c.run("property", "update", "product", "--no-first-party", "--backchannel-logout-uri", "")
	if code != 0 || !strings.Contains(out, "Property product ("+created.ID+") updated.") || !strings.Contains(out, "first-party no") {
		t.Fatalf("text output: exit %d %s%s", code, out, errOut)
	}
	cl, err := c.app().oauth.Client(context.Background(), created.ClientID)
	if err != nil || cl.FirstParty || cl.BackchannelLogoutURI != "" || len(cl.RedirectURIs) != 0 || len(cl.PostLogoutRedirectURIs) != 1 {
		t.Errorf("stored client = %+v, %v", cl, err)
	}
	if code, _, _ := c.run("property", "update", "--help"); code != 0 {
		t.Errorf("--help exit %d", code)
	}
}

// TestPropertyRevokeClientSecret: --key client-secret rotates the default
// client's secret and prints it once; the old one stops working; a public
// client has none.
func TestPropertyRevokeClientSecret(t *testing.T) {
	c := newCLI(t)
	var created struct {
		ID           string `json:"id"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	c.ok(&created, "property", "create", "--name", "app", "--redirect-uri", "https://app.example.com/cb", "--json")
	var rotated struct {
		ID           string `json:"id"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	c.ok(&rotated, "property", "revoke-key", "--property", "app", "--key", "client-secret", "--json")
	if rotated.ID != created.ID || rotated.ClientID != created.ClientID || !strings.HasPrefix(rotated.ClientSecret, "cs_") || rotated.ClientSecret == created.ClientSecret {
		t.Fatalf("rotated = %+v", rotated)
	}
	a := c.app()
	ctx := context.Background()
	if _, err := a.oauth.AuthenticateClient(ctx, created.ClientID, rotated.ClientSecret); err != nil {
		t.Errorf("new secret: %v", err)
	}
	if _, err := a.oauth.AuthenticateClient(ctx, created.ClientID, created.ClientSecret); err == nil {
		t.Error("the old secret still works")
	}

	code, out, _ := c.run("property", "revoke-key", "--property", "app", "--key", "client-secret")
	if code != 0 || !strings.Contains(out, "New client secret for app (client "+created.ClientID+"), shown once: cs_") {
		t.Errorf("text output: exit %d %q", code, out)
	}
	c.ok(nil, "property", "create", "--name", "spa", "--public", "--redirect-uri", "https://spa.example.com/cb")
	c.fails("public", "property", "revoke-key", "--property", "spa", "--key", "client-secret")
	c.fails("client-secret", "property", "revoke-key", "--property", "app", "--key", "client_secret")
}

// TestPropertyClaims: --claim sets a client's custom claims on create,
// replaces them on update and an empty --claim clears them; reserved names, paths that
// are not dotted identifiers and values without = are refused.
func TestPropertyClaims(t *testing.T) {
	c := newCLI(t)
	var created struct {
		ClientID string            `json:"client_id"`
		Claims   map[string]string `json:"claims"`
	}
	c.ok(&created, "property", "create", "--name", "app", "--redirect-uri", "https://app.example.com/cb",
		"--claim", "plan=subscription.plan", "--claim", "company=company", "--json")
	if len(created.Claims) != 2 || created.Claims["plan"] != "subscription.plan" || created.Claims["company"] != "company" {
		t.Fatalf("created claims = %v", created.Claims)
	}
	stored := func() map[string]string {
		t.Helper()
		cl, err := c.app().oauth.Client(context.Background(), created.ClientID)
		if err != nil {
			t.Fatal(err)
		}
		return cl.Claims
	}
	if got := stored(); got["plan"] != "subscription.plan" || len(got) != 2 {
		t.Fatalf("stored claims = %v", got)
	}

	var up struct {
		Client struct {
			Claims map[string]string `json:"claims"`
		} `json:"client"`
	}
	c.ok(&up, "property", "update", "app", "--claim", "tier=plan", "--json")
	if len(up.Client.Claims) != 1 || up.Client.Claims["tier"] != "plan" {
		t.Fatalf("updated claims = %v", up.Client.Claims)
	}
	// Other flags leave the claims alone.
	c.ok(nil, "property", "update", "app", "--first-party", "--json")
	if got := stored(); len(got) != 1 || got["tier"] != "plan" {
		t.Fatalf("claims after --first-party = %v", got)
	}

	c.fails("standard claim", "property", "update", "app", "--claim", "email=work.email")
	c.fails("not a trait path", "property", "update", "app", "--claim", "plan=a..b")
	c.fails("NAME=trait.path", "property", "update", "app", "--claim", "plan")
	c.fails("standard claim", "property", "create", "--name", "other", "--claim", "sub=id")
	if got := stored(); len(got) != 1 || got["tier"] != "plan" {
		t.Fatalf("claims after refused updates = %v", got)
	}

	code, out, errOut := c.run("property", "update", "app", "--claim", "")
	if code != 0 || !strings.Contains(out, "claims: none") {
		t.Fatalf("clearing: exit %d %s%s", code, out, errOut)
	}
	if got := stored(); len(got) != 0 {
		t.Fatalf("claims after clearing = %v", got)
	}
}

// TestPropertyUpdateTheme: each theme flag changes its part of the theme
// and leaves the others; a bad colour changes nothing.
func TestPropertyUpdateTheme(t *testing.T) {
	c := newCLI(t)
	c.ok(nil, "property", "create", "--name", "site", "--color-primary", "#112233", "--logo-url", "https://cdn.example.com/l.svg", "--json")
	var up struct {
		Theme struct {
			LogoURL      string `json:"logo_url"`
			ColorPrimary string `json:"color_primary"`
			ColorAccent  string `json:"color_accent"`
		} `json:"theme"`
	}
	c.ok(&up, "property", "update", "site", "--color-accent", "#ABCDEF", "--json")
	if up.Theme.ColorPrimary != "#112233" || up.Theme.ColorAccent != "#abcdef" || up.Theme.LogoURL != "https://cdn.example.com/l.svg" {
		t.Fatalf("theme after --color-accent = %+v", up.Theme)
	}
	c.fails("#rrggbb", "property", "update", "site", "--color-primary", "red")
	up.Theme.LogoURL, up.Theme.ColorPrimary = "", "unset" // an empty logo is omitted from the JSON
	c.ok(&up, "property", "update", "site", "--logo-url", "", "--json")
	if up.Theme.LogoURL != "" || up.Theme.ColorPrimary != "#112233" {
		t.Fatalf("theme after clearing the logo = %+v", up.Theme)
	}
}

// TestPropertyCreateJSONEchoesTheClient: property create --json prints the
// client's settings as stored (redirect URIs, public, first-party, …), the
// same client object as property update --json, and the client secret only
// once, at the top level.
func TestPropertyCreateJSONEchoesTheClient(t *testing.T) {
	c := newCLI(t)
	type created struct {
		ClientID     string      `json:"client_id"`
		ClientSecret string      `json:"client_secret"`
		Client       *clientJSON `json:"client"`
	}
	var conf created
	c.ok(&conf, "property", "create", "--name", "community", "--redirect-uri", "https://community.example.com/cb", "--redirect-uri", "http://localhost:3000/cb",
		"--first-party", "--post-logout-redirect-uri", "https://community.example.com/", "--backchannel-logout-uri", "https://community.example.com/bcl",
		"--claim", "plan=subscription.plan", "--json")
	cl := conf.Client
	if cl == nil || cl.ID != conf.ClientID || cl.Public || !cl.FirstParty || conf.ClientSecret == "" ||
		strings.Join(cl.RedirectURIs, " ") != "https://community.example.com/cb http://localhost:3000/cb" ||
		strings.Join(cl.PostLogoutRedirectURIs, " ") != "https://community.example.com/" || cl.BackchannelLogoutURI != "https://community.example.com/bcl" ||
		cl.Claims["plan"] != "subscription.plan" {
		t.Errorf("property create --json = %+v, client %+v", conf, cl)
	}
	var pub created
	_, out, _ := c.run("property", "create", "--name", "spa", "--public", "--redirect-uri", "https://spa.example.com/cb", "--json")
	if err := json.Unmarshal([]byte(out), &pub); err != nil {
		t.Fatalf("not JSON: %v: %s", err, out)
	}
	if pub.Client == nil || !pub.Client.Public || pub.Client.FirstParty || pub.ClientSecret != "" || strings.Join(pub.Client.RedirectURIs, " ") != "https://spa.example.com/cb" {
		t.Errorf("public property create --json = %+v, client %+v", pub, pub.Client)
	}
	if strings.Contains(out, "secret_hash") || strings.Count(out, "cs_") != 0 {
		t.Errorf("the output carries a secret it should not: %s", out)
	}
}

type clientJSON struct {
	ID                     string            `json:"id"`
	Public                 bool              `json:"public"`
	FirstParty             bool              `json:"first_party"`
	RedirectURIs           []string          `json:"redirect_uris"`
	PostLogoutRedirectURIs []string          `json:"post_logout_redirect_uris"`
	BackchannelLogoutURI   string            `json:"backchannel_logout_uri"`
	Claims                 map[string]string `json:"claims"`
}
