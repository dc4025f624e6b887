// Command onramp runs Onramp and manages its data. `onramp serve` starts
// everything with embedded defaults; the other commands work whether or not
// a server runs on the same data.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/onramp-dev/onramp"
)

// command is one subcommand: its usage line, a one-line summary and run.
type command struct {
	usage   string
	summary string
	run     func(ctx context.Context, args []string, out io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"serve":                {"serve [flags]", "run Onramp (HTTP API, ingest, bus)", runServe},
		"migrate":              {"migrate [flags]", "apply database migrations and exit", runMigrate},
		"property create":      {"property create --name NAME [--origin URL]… [--redirect-uri URL]… [--public] [--first-party] [--post-logout-redirect-uri URL]… [--backchannel-logout-uri URL] [--claim NAME=PATH]… [--logo-url URL] [--color-primary #RRGGBB] [--color-accent #RRGGBB] [--json]", "add a web property with its OpenID Connect client and print its keys", runPropertyCreate},
		"property list":        {"property list [--json]", "list properties", runPropertyList},
		"property update":      {"property update ID|NAME [--name NAME] [--origin URL]… [--redirect-uri URL]… [--post-logout-redirect-uri URL]… [--backchannel-logout-uri URL] [--first-party|--no-first-party] [--claim NAME=PATH]… [--logo-url URL] [--color-primary #RRGGBB] [--color-accent #RRGGBB] [--json]", "change a property and its OpenID Connect client", runPropertyUpdate},
		"property revoke-key":  {"property revoke-key --property ID|NAME --key write|secret|client-secret [--json]", "replace a property's key or its client's secret", runPropertyRevoke},
		"token create":         {"token create [--name NAME] [--role owner|admin|developer|marketer|support] [--json]", "make an API token for /api", runTokenCreate},
		"token list":           {"token list [--json]", "list API tokens", runTokenList},
		"user list":            {"user list [--q TEXT] [--trait k:v] [--limit N] [--json]", "list people", runUserList},
		"user show":            {"user show ID|TYPE:VALUE [--events N] [--json]", "show a person with identifiers and recent events", runUserShow},
		"user delete":          {"user delete ID|TYPE:VALUE [--yes]", "delete a person, their identifiers and events", runUserDelete},
		"import people":        {"import people FILE.csv --map HEADER=identifier:email|identifier:user_id|identifier:phone|identifier:external:TYPE|trait:NAME|ignore … [--rejections FILE] [--json]", "import people from a CSV file, each row an identify call through the identity rules", runImportPeople},
		"export people":        {"export people [--format ndjson|csv] [--output FILE]", "write every person with their identifiers and traits (to stdout by default)", runExportPeople},
		"export events":        {"export events [--format ndjson|csv] [--output FILE]", "write every event (to stdout by default)", runExportEvents},
		"events rejected":      {"events rejected [--property ID|NAME] [--limit N] [--json]", "show the rejected-events log", runEventsRejected},
		"audit list":           {"audit list [--person ID|TYPE:VALUE] [--action NAME|PREFIX*] [--outcome O] [--since TIME] [--limit N] [--json]", "show the audit log (sign-ins, staff and admin actions)", runAuditList},
		"staff list":           {"staff list [--json]", "list staff with their emails and roles", runStaffList},
		"staff add":            {"staff add --email EMAIL --role owner|admin|developer|marketer|support [--print-link] [--json]", "give the account with this email a staff role, or invite the email", runStaffAdd},
		"staff set-role":       {"staff set-role ID|EMAIL --role ROLE", "change a staff member's role (ends their sessions)", runStaffSetRole},
		"staff remove":         {"staff remove ID|EMAIL", "remove a staff role (ends their sessions; the account stays)", runStaffRemove},
		"bench ingest":         {"bench ingest --url URL --write-key KEY [--events N] [--batch 100] [--concurrency C] [--people P]", "load-test ingest over HTTP and compare with the raw store", runBenchIngest},
		"bench auth":           {benchAuthUsage, "load-test password sign-in, session checks, code exchange, introspection and userinfo", runBenchAuth},
		"bench console":        {benchConsoleUsage, "seed people into a fresh database and time the console's people searches and timelines in-process", runBenchConsole},
		"bench timeline":       {"bench timeline --url URL --secret-key KEY [--requests N] [--concurrency C] [--client lean|nethttp] [--pid PID]", "load-test timeline reads", runBenchTimeline},
		"bench live":           {benchLiveUsage, "measure the time from ingest to arrival on a live stream (GET /api/live)", runBenchLive},
		"auth provider add":    {"auth provider add --preset google|microsoft|github|oidc --client-id ID [--client-secret S] [--name N] [--display-name D] [--issuer URL] [--tenant T] [--scopes S] [--trust-email true|false] [--web-base URL] [--api-base URL] [--json]", "add an upstream sign-in provider (secret also from $ONRAMP_UPSTREAM_CLIENT_SECRET)", runProviderAdd},
		"auth provider list":   {"auth provider list [--json]", "list upstream sign-in providers", runProviderList},
		"auth provider remove": {"auth provider remove NAME", "remove an upstream sign-in provider", runProviderRemove},
		"version":              {"version", "print the version", runVersion},
	}
}

var version = "0.1.0-dev"

func runVersion(ctx context.Context, args []string, out io.Writer) error {
	fs, _ := newFlags("version", "version")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(out, version)
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, out, errOut io.Writer) int {
	cmds := commands()
	if len(args) == 0 {
		usage(errOut, cmds)
		return 2
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		// Asked for: it is the output, so it goes to stdout (and a pager).
		usage(out, cmds)
		return 0
	}
	name := args[0]
	rest := args[1:]
	if _, ok := cmds[name]; !ok && len(args) > 1 {
		name, rest = args[0]+" "+args[1], args[2:]
	}
	if _, ok := cmds[name]; !ok && len(args) > 2 {
		// Three-word commands: auth provider add.
		if _, ok := cmds[name+" "+args[2]]; ok {
			name, rest = name+" "+args[2], args[3:]
		}
	}
	c, ok := cmds[name]
	if !ok {
		var group []string
		for n := range cmds {
			if strings.HasPrefix(n, args[0]+" ") {
				group = append(group, n)
			}
		}
		if len(group) > 0 {
			sort.Strings(group)
			fmt.Fprintf(errOut, "onramp %s: choose one of: %s\n", args[0], strings.Join(group, ", "))
			if len(args) > 1 && (args[1] == "-h" || args[1] == "--help") {
				return 0
			}
			return 2
		}
		fmt.Fprintf(errOut, "onramp: unknown command %q\n\n", args[0])
		usage(errOut, cmds)
		return 2
	}
	if err := c.run(ctx, rest, out); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if errors.Is(err, errUsage) {
			return 2
		}
		fmt.Fprintf(errOut, "onramp %s: %s\n", name, describe(err))
		return 1
	}
	return 0
}

var errUsage = errors.New("usage")

// describe shows a client-safe message for our errors and the whole chain
// otherwise: on the command line the operator is the one who needs detail.
func describe(err error) string {
	var e *onramp.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprint(w, "Onramp: sign-in, identity, events, workflows, content and chat in one binary.\n\nUsage:\n")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  onramp %-70s %s\n", cmds[n].usage, cmds[n].summary)
	}
	fmt.Fprint(w, "\nEvery command takes --help. Settings: flags > ONRAMP_* environment > --config file.\n")
}

// newFlags makes a FlagSet with the shared settings and a usage text.
func newFlags(name, usageLine string) (*flag.FlagSet, *configFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	cf := addConfigFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: onramp %s\n\nFlags:\n", usageLine)
		fs.PrintDefaults()
	}
	return fs, cf
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// parseArgs parses flags wherever they stand among the arguments (Go's flag
// package stops at the first positional one) and returns the positional ones.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
