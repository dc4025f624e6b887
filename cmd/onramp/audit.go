package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/events"
)

// runAuditList prints the audit log from the database directly, so it
// works whether or not a server is running (and when the API is what
// needs investigating).
func runAuditList(ctx context.Context, args []string, out io.Writer) error {
	var person, action, outcome, since string
	var limit int
	var asJSON bool
	a, _, err := cliApp(ctx, "audit list", commands()["audit list"].usage, args, func(fs *flag.FlagSet) {
		fs.StringVar(&person, "person", "", "only entries about this person (id or TYPE:VALUE such as email:ann@example.com)")
		fs.StringVar(&action, "action", "", "only this action, or a prefix ending in * (auth.*, staff.*)")
		fs.StringVar(&outcome, "outcome", "", "only success, failure or denied")
		fs.StringVar(&since, "since", "", "only entries at or after this ISO 8601 time")
		fs.IntVar(&limit, "limit", 100, "how many, newest first (at most 1000)")
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.openAccounts(ctx); err != nil {
		return err
	}
	q := auth.AuditQuery{Action: action, Outcome: outcome, Limit: limit}
	if since != "" {
		if q.Since, err = events.ParseTime(since); err != nil {
			return fmt.Errorf("--since %q is not an ISO 8601 time", since)
		}
	}
	if person != "" {
		prof, err := findPerson(ctx, a, person)
		if err != nil {
			return err
		}
		q.PersonID = prof.Person.ID
	}
	entries, err := a.accounts.Audit(ctx, q)
	if err != nil {
		return err
	}
	if asJSON {
		if entries == nil {
			entries = []*auth.AuditEntry{}
		}
		return printJSON(out, entries)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tACTION\tOUTCOME\tACTOR\tPERSON\tIP\tDETAIL")
	for _, e := range entries {
		who := e.ActorType
		if e.ActorID != "" {
			who += ":" + e.ActorID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.At.Format(time.RFC3339), e.Action, e.Outcome, who, e.PersonID, e.IP, truncate(string(e.Detail), 80))
	}
	return tw.Flush()
}
