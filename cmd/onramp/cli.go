package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/identity"
	"github.com/onramp-dev/onramp/inmem"
	"github.com/onramp-dev/onramp/property"
)

// cliApp parses flags and opens the app for a data command.
func cliApp(ctx context.Context, name, usageLine string, args []string, extra func(fs *flag.FlagSet)) (*app, []string, error) {
	fs, cf := newFlags(name, usageLine)
	if extra != nil {
		extra(fs)
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := cf.load()
	if err != nil {
		return nil, nil, err
	}
	// Commands log only warnings: their output is the data.
	cfg.LogLevel = "warn"
	log := cfg.logger(os.Stderr)
	a, err := openApp(ctx, cfg, log, inmem.NewBus(slog.New(slog.DiscardHandler)), nil)
	if err != nil {
		return nil, nil, err
	}
	return a, pos, nil
}

func runPropertyCreate(ctx context.Context, args []string, out io.Writer) error {
	var name, backchannel string
	var origins, redirects, postLogout, claims multiFlag
	var public, firstParty, asJSON bool
	var theme property.Theme
	a, _, err := cliApp(ctx, "property create", commands()["property create"].usage, args, func(fs *flag.FlagSet) {
		fs.StringVar(&name, "name", "", "property name, such as website or community (required)")
		fs.Var(&origins, "origin", "allowed browser origin such as https://www.example.com (repeatable)")
		fs.Var(&redirects, "redirect-uri", "where the property's OpenID Connect client receives codes, matched exactly: https, or http on localhost (repeatable)")
		fs.BoolVar(&public, "public", false, "a public client (single-page or mobile app): no secret, PKCE required, no client credentials")
		fs.BoolVar(&firstParty, "first-party", false, "the company's own app: skip the consent screen")
		fs.Var(&postLogout, "post-logout-redirect-uri", "where /oauth/end_session may send people after signing out (repeatable)")
		fs.StringVar(&backchannel, "backchannel-logout-uri", "", "receives back-channel logout tokens when a session ends")
		fs.Var(&claims, "claim", "custom claim given out under the scope onramp:traits, as NAME=trait.path such as plan=subscription.plan (repeatable)")
		themeFlags(fs, &theme)
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	if name == "" {
		return onramp.Errorf(onramp.EINVALID, "--name is required")
	}
	claimMap, err := parseClaims(claims)
	if err != nil {
		return err
	}
	c, err := a.oauth.CreateProperty(ctx, auth.CreatePropertyParams{
		Property: property.CreateParams{Name: name, Origins: origins, Theme: theme},
		Client: auth.ClientParams{
			RedirectURIs: redirects, Public: public, FirstParty: firstParty,
			PostLogoutRedirectURIs: postLogout, BackchannelLogoutURI: backchannel,
			Claims: claimMap,
		},
	})
	if err != nil {
		return err
	}
	if asJSON {
		// "client" is the client's settings as stored (the same object as
		// property update --json prints), so a script sees what it asked
		// for; its secret is only the top-level client_secret.
		m := map[string]any{"id": c.ID, "name": c.Name, "origins": c.Origins, "theme": c.Theme, "write_key": c.WriteKey, "secret_key": c.SecretKey,
			"client_id": c.Client.ID, "client": c.Client.Client}
		if len(c.Client.Claims) > 0 {
			m["claims"] = c.Client.Claims
		}
		if c.Client.Secret != "" {
			m["client_secret"] = c.Client.Secret
		}
		return printJSON(out, m)
	}
	fmt.Fprintf(out, "Property %s (%s) created.\n  write key:  %s   (public: goes into your pages)\n  secret key: %s   (shown once: server-side reads)\n  client id:  %s   (OpenID Connect)\n", c.Name, c.ID, c.WriteKey, c.SecretKey, c.Client.ID)
	if c.Client.Secret != "" {
		fmt.Fprintf(out, "  client secret: %s   (shown once: the app's server signs in with it)\n", c.Client.Secret)
	} else {
		fmt.Fprintln(out, "  public client: no secret; use PKCE (S256)")
	}
	return nil
}

// themeFlags are the flags of a property's look on the hosted sign-in
// pages (property create; property update takes the same).
func themeFlags(fs *flag.FlagSet, t *property.Theme) {
	fs.StringVar(&t.LogoURL, "logo-url", "", "logo shown on the hosted sign-in pages: an absolute https URL")
	fs.StringVar(&t.ColorPrimary, "color-primary", "", "colour of buttons and links on the sign-in pages, as #rrggbb")
	fs.StringVar(&t.ColorAccent, "color-accent", "", "highlight colour (focus ring, notices) on the sign-in pages, as #rrggbb")
}

func runPropertyList(ctx context.Context, args []string, out io.Writer) error {
	var asJSON bool
	a, _, err := cliApp(ctx, "property list", commands()["property list"].usage, args, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	ps, err := a.properties.List(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(out, ps)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tWRITE KEY\tORIGINS\tCREATED")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.ID, p.Name, p.WriteKey, strings.Join(p.Origins, " "), p.CreatedAt.Format(time.RFC3339))
	}
	return tw.Flush()
}

func runPropertyUpdate(ctx context.Context, args []string, out io.Writer) error {
	var theme property.Theme
	var name, backchannel string
	var origins, redirects, postLogout, claims multiFlag
	var firstParty, notFirstParty, asJSON bool
	var flags *flag.FlagSet
	a, pos, err := cliApp(ctx, "property update", commands()["property update"].usage, args, func(fs *flag.FlagSet) {
		flags = fs
		fs.StringVar(&name, "name", "", "new name")
		fs.Var(&origins, "origin", "allowed browser origin; repeat for several. Replaces the list; --origin '' clears it (any origin)")
		fs.Var(&redirects, "redirect-uri", "where the client receives codes, matched exactly; repeatable. Replaces the list; --redirect-uri '' clears it")
		fs.Var(&postLogout, "post-logout-redirect-uri", "where /oauth/end_session may send people; repeatable. Replaces the list; '' clears it")
		fs.StringVar(&backchannel, "backchannel-logout-uri", "", "receives back-channel logout tokens; '' removes it")
		fs.BoolVar(&firstParty, "first-party", false, "the company's own app: skip the consent screen")
		fs.BoolVar(&notFirstParty, "no-first-party", false, "ask people to consent before the client gets their claims")
		fs.Var(&claims, "claim", "custom claim under the scope onramp:traits, as NAME=trait.path; repeatable. Replaces the set; --claim '' clears it")
		themeFlags(fs, &theme)
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	if len(pos) != 1 {
		return onramp.Errorf(onramp.EINVALID, "give one property: its id (prp_…) or name")
	}
	set := map[string]bool{}
	flags.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["first-party"] && set["no-first-party"] {
		return onramp.Errorf(onramp.EINVALID, "give --first-party or --no-first-party, not both")
	}
	up := auth.UpdatePropertyParams{Property: property.UpdateParams{ID: pos[0]}}
	if set["name"] {
		up.Property.Name = &name
	}
	if set["origin"] {
		up.Property.Origins = nonEmpty(origins)
	}
	if set["logo-url"] || set["color-primary"] || set["color-accent"] {
		// Each flag changes its part of the theme; the others stay ('' clears one).
		cur, err := a.properties.Get(ctx, pos[0])
		if err != nil {
			return err
		}
		t := cur.Theme
		if set["logo-url"] {
			t.LogoURL = theme.LogoURL
		}
		if set["color-primary"] {
			t.ColorPrimary = theme.ColorPrimary
		}
		if set["color-accent"] {
			t.ColorAccent = theme.ColorAccent
		}
		up.Property.Theme = &t
	}
	var client auth.UpdateClientParams
	clientSet := false
	if set["redirect-uri"] {
		client.RedirectURIs, clientSet = nonEmpty(redirects), true
	}
	if set["post-logout-redirect-uri"] {
		client.PostLogoutRedirectURIs, clientSet = nonEmpty(postLogout), true
	}
	if set["backchannel-logout-uri"] {
		client.BackchannelLogoutURI, clientSet = &backchannel, true
	}
	if set["first-party"] || set["no-first-party"] {
		fp := set["first-party"] && firstParty || set["no-first-party"] && !notFirstParty
		client.FirstParty, clientSet = &fp, true
	}
	if set["claim"] {
		m, err := parseClaims(claims)
		if err != nil {
			return err
		}
		if m == nil {
			m = map[string]string{}
		}
		client.Claims, clientSet = m, true
	}
	if clientSet {
		up.Client = &client
	}
	if up.Property.Name == nil && up.Property.Origins == nil && up.Property.Theme == nil && up.Client == nil {
		return onramp.Errorf(onramp.EINVALID, "nothing to change: give --name, --origin, --redirect-uri, --post-logout-redirect-uri, --backchannel-logout-uri, --first-party, --no-first-party, --claim, --logo-url, --color-primary or --color-accent")
	}
	p, err := a.oauth.UpdateProperty(ctx, up)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(out, p)
	}
	fmt.Fprintf(out, "Property %s (%s) updated.\n  origins: %s\n", p.Name, p.ID, listOrNone(p.Origins, "none (any origin)"))
	if c := p.Client; c != nil {
		fmt.Fprintf(out, "  client %s: first-party %s\n    redirect URIs: %s\n    post-logout redirect URIs: %s\n    back-channel logout URI: %s\n    claims: %s\n",
			c.ID, yesNo(c.FirstParty), listOrNone(c.RedirectURIs, "none"), listOrNone(c.PostLogoutRedirectURIs, "none"), listOrNone([]string{c.BackchannelLogoutURI}, "none"), claimList(c.Claims))
	}
	fmt.Fprintln(out, "A running server sees the change within 5 s.")
	return nil
}

// parseClaims reads --claim NAME=trait.path values; empty values are
// skipped, so an empty --claim alone gives an empty set. The names and paths are
// checked by the auth part.
func parseClaims(vs []string) (map[string]string, error) {
	var out map[string]string
	for _, v := range nonEmpty(vs) {
		name, path, ok := strings.Cut(v, "=")
		name, path = strings.TrimSpace(name), strings.TrimSpace(path)
		if !ok || name == "" || path == "" {
			return nil, onramp.Errorf(onramp.EINVALID, "--claim %q: give NAME=trait.path, such as plan=subscription.plan", v)
		}
		if _, dup := out[name]; dup {
			return nil, onramp.Errorf(onramp.EINVALID, "--claim %q: claim %s given twice", v, name)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = path
	}
	return out, nil
}

// claimList prints custom claims sorted by name.
func claimList(claims map[string]string) string {
	names := slices.Sorted(maps.Keys(claims))
	vs := make([]string, 0, len(names))
	for _, n := range names {
		vs = append(vs, n+"="+claims[n])
	}
	return listOrNone(vs, "none")
}

// nonEmpty drops empty values, and is never nil: a repeatable flag that
// was given replaces its list, and given only empty it clears it.
func nonEmpty(vs []string) []string {
	out := []string{}
	for _, v := range vs {
		if strings.TrimSpace(v) != "" {
			out = append(out, v)
		}
	}
	return out
}

func listOrNone(vs []string, none string) string {
	vs = nonEmpty(vs)
	if len(vs) == 0 {
		return none
	}
	return strings.Join(vs, " ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// clientSecretKey names the default client's secret in revoke-key.
const clientSecretKey = "client-secret"

func runPropertyRevoke(ctx context.Context, args []string, out io.Writer) error {
	var which, prop string
	var asJSON bool
	a, _, err := cliApp(ctx, "property revoke-key", commands()["property revoke-key"].usage, args, func(fs *flag.FlagSet) {
		fs.StringVar(&prop, "property", "", "property id or name (required)")
		fs.StringVar(&which, "key", "", "write, secret, or client-secret (the secret of the property's OpenID Connect client) (required)")
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	p, err := a.properties.Get(ctx, prop)
	if err != nil {
		return err
	}
	if which == clientSecretKey {
		c, err := a.oauth.DefaultClient(ctx, p.ID)
		if err != nil {
			return err
		}
		nc, err := a.oauth.RotateClientSecret(ctx, c.ID)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(out, map[string]any{"id": p.ID, "client_id": nc.ID, "client_secret": nc.Secret})
		}
		fmt.Fprintf(out, "New client secret for %s (client %s), shown once: %s\nThe old one no longer works (a running server: within 5 s).\n", p.Name, nc.ID, nc.Secret)
		return nil
	}
	c, err := a.properties.RevokeKey(ctx, p.ID, property.Key(which))
	if err != nil {
		if onramp.ErrorCode(err) == onramp.EINVALID {
			return onramp.Errorf(onramp.EINVALID, "--key must be write, secret or client-secret")
		}
		return err
	}
	if asJSON {
		m := map[string]any{"id": c.ID, "write_key": c.WriteKey}
		if c.SecretKey != "" {
			m["secret_key"] = c.SecretKey
		}
		return printJSON(out, m)
	}
	if c.SecretKey != "" {
		fmt.Fprintf(out, "New secret key for %s (shown once): %s\nThe old one no longer works.\n", c.Name, c.SecretKey)
	} else {
		fmt.Fprintf(out, "New write key for %s: %s\nThe old one no longer works (other nodes: within 5 s).\n", c.Name, c.WriteKey)
	}
	return nil
}

func runTokenCreate(ctx context.Context, args []string, out io.Writer) error {
	var name, role string
	var asJSON bool
	a, _, err := cliApp(ctx, "token create", commands()["token create"].usage, args, func(fs *flag.FlagSet) {
		fs.StringVar(&name, "name", "cli", "what the token is for")
		fs.StringVar(&role, "role", auth.RoleOwner, "owner, admin, developer, marketer or support")
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	nt, err := a.tokens.CreateToken(ctx, name, role)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(out, map[string]any{"id": nt.ID, "name": nt.Name, "role": nt.Role, "token": nt.Secret})
	}
	fmt.Fprintf(out, "API token %s (%s, role %s), shown once:\n  %s\n", nt.ID, nt.Name, nt.Role, nt.Secret)
	return nil
}

func runTokenList(ctx context.Context, args []string, out io.Writer) error {
	var asJSON bool
	a, _, err := cliApp(ctx, "token list", commands()["token list"].usage, args, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	ts, err := a.tokens.List(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(out, ts)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED\tREVOKED")
	for _, t := range ts {
		revoked := ""
		if t.RevokedAt != nil {
			revoked = t.RevokedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, t.CreatedAt.Format(time.RFC3339), revoked)
	}
	return tw.Flush()
}

func runUserList(ctx context.Context, args []string, out io.Writer) error {
	var q, trait string
	var limit int
	var asJSON bool
	a, _, err := cliApp(ctx, "user list", commands()["user list"].usage, args, func(fs *flag.FlagSet) {
		fs.StringVar(&q, "q", "", "search: an identifier value, the start of an email or of a name")
		fs.StringVar(&trait, "trait", "", "filter by trait, key:value")
		fs.IntVar(&limit, "limit", 50, "how many")
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	pq := identity.PersonQuery{Search: q, Limit: limit}
	if trait != "" {
		k, v, ok := strings.Cut(trait, ":")
		if !ok {
			return onramp.Errorf(onramp.EINVALID, "--trait must be key:value")
		}
		pq.TraitKey, pq.TraitValue = k, v
	}
	page, err := a.identity.Search(ctx, pq)
	if err != nil {
		return err
	}
	ps := page.Persons
	if asJSON {
		return printJSON(out, ps)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSER ID\tLAST SEEN\tTRAITS")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.ID, p.UserID, p.LastSeenAt.Format(time.RFC3339), truncate(string(p.Traits), 80))
	}
	return tw.Flush()
}

// findPerson accepts a person id or type:value.
func findPerson(ctx context.Context, a *app, ref string) (*identity.Profile, error) {
	if typ, val, ok := strings.Cut(ref, ":"); ok && !strings.HasPrefix(ref, "per_") {
		return a.identity.Lookup(ctx, identity.Key{Type: typ, Value: val})
	}
	return a.identity.Person(ctx, ref)
}

func runUserShow(ctx context.Context, args []string, out io.Writer) error {
	var n int
	var asJSON bool
	a, pos, err := cliApp(ctx, "user show", commands()["user show"].usage, args, func(fs *flag.FlagSet) {
		fs.IntVar(&n, "events", 20, "how many recent events to show")
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	if len(pos) != 1 {
		return onramp.Errorf(onramp.EINVALID, "give one person: an id (per_…) or type:value such as email:ada@example.com")
	}
	prof, err := findPerson(ctx, a, pos[0])
	if err != nil {
		return err
	}
	page, err := a.events.Timeline(ctx, events.TimelineParams{PersonIDs: append([]string{prof.Person.ID}, prof.MergedIDs...), Limit: n})
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(out, map[string]any{"profile": prof, "events": page.Events})
	}
	p := prof.Person
	fmt.Fprintf(out, "Person %s\n  created %s, last seen %s\n  traits %s\n", p.ID, p.CreatedAt.Format(time.RFC3339), p.LastSeenAt.Format(time.RFC3339), string(p.Traits))
	if len(prof.MergedIDs) > 0 {
		fmt.Fprintf(out, "  merged in: %s\n", strings.Join(prof.MergedIDs, ", "))
	}
	fmt.Fprintln(out, "Identifiers:")
	for _, id := range prof.Identifiers {
		fmt.Fprintf(out, "  %-14s %s\n", id.Type, id.Value)
	}
	fmt.Fprintf(out, "Latest %d events:\n", len(page.Events))
	for _, e := range page.Events {
		label := e.Event
		if label == "" {
			label = e.Name
		}
		fmt.Fprintf(out, "  %s  %-8s %s\n", e.Timestamp.Format(time.RFC3339), e.Type, label)
	}
	return nil
}

func runUserDelete(ctx context.Context, args []string, out io.Writer) error {
	var yes bool
	a, pos, err := cliApp(ctx, "user delete", commands()["user delete"].usage, args, func(fs *flag.FlagSet) {
		fs.BoolVar(&yes, "yes", false, "confirm: the data cannot be recovered")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	if len(pos) != 1 {
		return onramp.Errorf(onramp.EINVALID, "give one person: an id (per_…) or type:value")
	}
	prof, err := findPerson(ctx, a, pos[0])
	if err != nil {
		return err
	}
	if !yes {
		return onramp.Errorf(onramp.EINVALID, "this deletes person %s with %d identifiers and all their events; run again with --yes to confirm", prof.Person.ID, len(prof.Identifiers))
	}
	ids, err := a.identity.Delete(ctx, prof.Person.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Deleted %s (persons %s), their identifiers and events.\n", prof.Person.ID, strings.Join(ids, ", "))
	return nil
}

func runEventsRejected(ctx context.Context, args []string, out io.Writer) error {
	var prop string
	var limit int
	var asJSON bool
	a, _, err := cliApp(ctx, "events rejected", commands()["events rejected"].usage, args, func(fs *flag.FlagSet) {
		fs.StringVar(&prop, "property", "", "only this property (id or name)")
		fs.IntVar(&limit, "limit", 50, "how many")
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	q := events.RejectionQuery{Limit: limit}
	if prop != "" {
		p, err := a.properties.Get(ctx, prop)
		if err != nil {
			return err
		}
		q.PropertyID = p.ID
	}
	rs, err := a.events.Rejections(ctx, q)
	if err != nil {
		return err
	}
	if asJSON {
		// Payloads are bytes; show them as the text they were sent as.
		type row struct {
			*events.Rejection
			Payload string `json:"payload,omitempty"`
		}
		rows := make([]row, len(rs))
		for i, r := range rs {
			rows[i] = row{Rejection: r, Payload: string(r.Payload)}
		}
		return printJSON(out, rows)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECEIVED\tPROPERTY\tINDEX\tCODE\tREASON")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", r.ReceivedAt.Format(time.RFC3339), r.PropertyID, r.Index, r.Code, truncate(r.Reason, 100))
	}
	return tw.Flush()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
