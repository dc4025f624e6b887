package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/upstream"
)

// The commands that manage upstream sign-in providers. They write the
// setting directly, so they work whether or not a server runs; a running
// server reads the setting at each sign-in.

// envClientSecret is where `auth provider add` finds the client secret
// when --client-secret is not given, so it stays out of shell history and
// the process list.
const envClientSecret = "ONRAMP_UPSTREAM_CLIENT_SECRET"

// newUpstreamConnector is how a server reaches providers: a short deadline,
// so a slow provider cannot hold a sign-in for long.
func newUpstreamConnector(a *app) *upstream.Connector {
	return &upstream.Connector{HTTP: &http.Client{Timeout: 10 * time.Second}, Log: a.log}
}

func runProviderAdd(ctx context.Context, args []string, out io.Writer) error {
	var p auth.AddUpstreamParams
	var scopes, trust string
	var asJSON bool
	a, _, err := cliApp(ctx, "auth provider add", commands()["auth provider add"].usage, args, func(fs *flag.FlagSet) {
		fs.StringVar(&p.Preset, "preset", "", "google, microsoft, github or oidc (required)")
		fs.StringVar(&p.Name, "name", "", "the provider's name in URLs (default: the preset's; required for oidc)")
		fs.StringVar(&p.DisplayName, "display-name", "", "the name on the button (\"Continue with …\")")
		fs.StringVar(&p.Issuer, "issuer", "", "oidc: the issuer URL (https; http only on loopback)")
		fs.StringVar(&p.Tenant, "tenant", "", "microsoft: tenant id or domain, or common (default), organizations, consumers")
		fs.StringVar(&p.ClientID, "client-id", "", "Onramp's client id at the provider (required)")
		fs.StringVar(&p.ClientSecret, "client-secret", "", "Onramp's client secret at the provider (default: $"+envClientSecret+")")
		fs.StringVar(&scopes, "scopes", "", "space-separated scopes (default: openid email profile; github: read:user user:email)")
		fs.StringVar(&trust, "trust-email", "", "true or false: is a verified email from this provider proof? (default: the preset's: google and github yes, oidc no, microsoft never)")
		fs.StringVar(&p.WebBase, "web-base", "", "github: web base URL (default https://github.com; GitHub Enterprise Server's URL)")
		fs.StringVar(&p.APIBase, "api-base", "", "github: REST API base URL (default https://api.github.com)")
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	if p.ClientSecret == "" {
		p.ClientSecret = os.Getenv(envClientSecret)
	}
	p.Scopes = strings.Fields(scopes)
	switch trust {
	case "":
	case "true", "yes", "1":
		p.TrustEmail = new(true)
	case "false", "no", "0":
		p.TrustEmail = new(false)
	default:
		return fmt.Errorf("--trust-email must be true or false, not %q", trust)
	}
	if err := a.openAccounts(ctx); err != nil {
		return err
	}
	p.Actor = auth.AuditEntry{ActorType: auth.ActorSystem, ActorID: "cli"}
	pr, err := a.accounts.AddUpstreamProvider(ctx, p)
	if err != nil {
		return err
	}
	callback := pr.CallbackURL(a.cfg.PublicURL)
	if asJSON {
		return printJSON(out, struct {
			*auth.UpstreamProvider
			CallbackURL  string `json:"callback_url"`
			CallbackPath string `json:"callback_path"`
			// PublicURLSet is false when callback_url was made from the
			// listen address, for want of a public URL: see unsetPublicURL.
			PublicURLSet bool `json:"public_url_set"`
		}{pr, callback, pr.CallbackURL(""), a.cfg.configuredPublicURL != ""})
	}
	fmt.Fprintf(out, "Added %s (%s). Register this redirect URI at the provider:\n\n    %s\n", pr.Name, pr.DisplayName, callback)
	if a.cfg.configuredPublicURL == "" {
		fmt.Fprintf(out, "\n%s\n", unsetPublicURL(a.cfg, pr.CallbackURL("")))
	}
	if !pr.TrustEmail {
		fmt.Fprintf(out, "\nIts email is not taken as proof: Onramp emails a code before linking an account.\n")
	}
	return nil
}

func runProviderList(ctx context.Context, args []string, out io.Writer) error {
	var asJSON bool
	a, _, err := cliApp(ctx, "auth provider list", commands()["auth provider list"].usage, args, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.openAccounts(ctx); err != nil {
		return err
	}
	ps, err := a.accounts.UpstreamProviders(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(out, ps)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPRESET\tDISPLAY NAME\tISSUER / API\tCLIENT ID\tTRUST EMAIL\tCALLBACK")
	for _, p := range ps {
		where := p.Issuer
		if p.Preset == auth.PresetGitHub {
			where = p.APIBase
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\t%s\n", p.Name, p.Preset, p.DisplayName, where, truncate(p.ClientID, 40), p.TrustEmail, p.CallbackURL(a.cfg.PublicURL))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(ps) > 0 && a.cfg.configuredPublicURL == "" {
		fmt.Fprintf(out, "\n%s\n", unsetPublicURL(a.cfg, "/auth/upstream/NAME/callback"))
	}
	return nil
}

// unsetPublicURL says that a callback URL printed without a configured
// public URL is only a guess: the provider sends people back to
// <public URL><path>, and the public URL is the server's setting
// (ONRAMP_PUBLIC_URL or --public-url, as serve reads it), which this
// command, run elsewhere or without it, cannot know. Without one it was
// made from the listen address, right only for a server reached there.
func unsetPublicURL(cfg Config, path string) string {
	return fmt.Sprintf("No public URL is set, so this assumes Onramp is reached at %s (its listen address).\n"+
		"If people reach it elsewhere, register <public URL>%s instead, with the public URL the server\n"+
		"runs with (ONRAMP_PUBLIC_URL, --public-url or public_url in the config file). Run this command\n"+
		"with the same setting to print it.", cfg.PublicURL, path)
}

func runProviderRemove(ctx context.Context, args []string, out io.Writer) error {
	a, pos, err := cliApp(ctx, "auth provider remove", commands()["auth provider remove"].usage, args, nil)
	if err != nil {
		return err
	}
	defer a.Close()
	if len(pos) != 1 {
		return fmt.Errorf("name one provider to remove: onramp auth provider remove NAME")
	}
	if err := a.openAccounts(ctx); err != nil {
		return err
	}
	if err := a.accounts.RemoveUpstreamProvider(ctx, pos[0], auth.AuditEntry{ActorType: auth.ActorSystem, ActorID: "cli"}); err != nil {
		return err
	}
	fmt.Fprintf(out, "Removed %s. Accounts keep their links to it, and get them back if a provider of that name is added again.\n", pos[0])
	return nil
}
