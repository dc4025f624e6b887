package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// The staff commands work on the database directly, like `audit list`:
// whoever runs them holds the server's data, so they act as an owner
// (the last-owner rule still holds) and are audited as the system actor
// "cli".
var cliActor = auth.AuditEntry{ActorType: auth.ActorSystem, ActorID: "cli"}

// staffApp opens the app with the account rules for a staff command.
func staffApp(ctx context.Context, name string, args []string, extra func(fs *flag.FlagSet)) (*app, []string, error) {
	a, pos, err := cliApp(ctx, name, commands()[name].usage, args, extra)
	if err != nil {
		return nil, nil, err
	}
	if err := a.openAccounts(ctx); err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, pos, nil
}

func runStaffList(ctx context.Context, args []string, out io.Writer) error {
	var asJSON bool
	a, _, err := staffApp(ctx, "staff list", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	ms, err := a.accounts.ListStaff(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(out, ms)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PERSON\tEMAIL\tROLE\tSINCE")
	for _, m := range ms {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.PersonID, m.Email, m.Role, m.CreatedAt.Format(time.RFC3339))
	}
	return tw.Flush()
}

func runStaffAdd(ctx context.Context, args []string, out io.Writer) error {
	var email, role string
	var asJSON, printLink bool
	a, _, err := staffApp(ctx, "staff add", args, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "the email of the person's account")
		fs.StringVar(&role, "role", "", "owner, admin, developer, marketer or support")
		fs.BoolVar(&printLink, "print-link", false, "for an email without an account, print the invitation link instead of emailing it")
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	if email == "" || role == "" {
		return onramp.Errorf(onramp.EINVALID, "--email and --role are required")
	}
	m, inv, err := a.accounts.AddStaff(ctx, auth.AddStaffParams{Email: email, Role: role, PrintLink: printLink, Actor: cliActor}, auth.RoleOwner)
	if err != nil {
		return err
	}
	if inv != nil {
		if asJSON {
			return printJSON(out, map[string]any{"invited": inv})
		}
		fmt.Fprintf(out, "%s has no account yet: invited as %s until %s.\n", inv.Email, inv.Role, inv.ExpiresAt.Format(time.RFC3339))
		if inv.Link != "" {
			fmt.Fprintf(out, "Send them this one-time link:\n  %s\n", inv.Link)
		} else {
			fmt.Fprintln(out, "The invitation goes by email (the server's outbox sends it).")
		}
		return nil
	}
	if asJSON {
		return printJSON(out, m)
	}
	fmt.Fprintf(out, "%s (%s) is now %s.\n", m.Email, m.PersonID, m.Role)
	return nil
}

// staffPerson finds the person of a staff command's argument: a person
// id, an email, or TYPE:VALUE.
func staffPerson(ctx context.Context, a *app, pos []string) (string, error) {
	if len(pos) != 1 {
		return "", onramp.Errorf(onramp.EINVALID, "name one staff member (person id or email)")
	}
	ref := pos[0]
	if !strings.Contains(ref, ":") && strings.Contains(ref, "@") {
		ref = "email:" + ref
	}
	prof, err := findPerson(ctx, a, ref)
	if err != nil {
		return "", err
	}
	if _, err := a.accounts.StaffOf(ctx, prof.Person.ID); err != nil {
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			return "", onramp.Errorf(onramp.ENOTFOUND, "%s is not staff.", pos[0])
		}
		return "", err
	}
	return prof.Person.ID, nil
}

func runStaffSetRole(ctx context.Context, args []string, out io.Writer) error {
	var role string
	a, pos, err := staffApp(ctx, "staff set-role", args, func(fs *flag.FlagSet) {
		fs.StringVar(&role, "role", "", "owner, admin, developer, marketer or support")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	if role == "" {
		return onramp.Errorf(onramp.EINVALID, "--role is required")
	}
	id, err := staffPerson(ctx, a, pos)
	if err != nil {
		return err
	}
	if err := a.accounts.SetStaff(ctx, auth.SetStaffParams{PersonID: id, Role: role, Actor: cliActor}, auth.RoleOwner); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s is now %s; their sessions were ended.\n", id, role)
	return nil
}

func runStaffRemove(ctx context.Context, args []string, out io.Writer) error {
	a, pos, err := staffApp(ctx, "staff remove", args, nil)
	if err != nil {
		return err
	}
	defer a.Close()
	id, err := staffPerson(ctx, a, pos)
	if err != nil {
		return err
	}
	if err := a.accounts.RemoveStaff(ctx, auth.RemoveStaffParams{PersonID: id, Actor: cliActor}, auth.RoleOwner); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s is no longer staff; their sessions were ended.\n", id)
	return nil
}
