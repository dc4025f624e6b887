package auth

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/onramp-dev/onramp"
)

// The headless API runs the same flows as the hosted pages, but from a
// site's own JavaScript on another origin, without cookies: the site
// holds the flow reference. A finished flow does not hand that site a
// session. It hands it a continue ticket, which the browser itself brings
// to Onramp by a top-level navigation, so the session cookie is set
// first-party on Onramp's origin (and single sign-on works for the other
// properties afterwards).

// CodeContinue is the purpose of a continue ticket. A ticket is never a
// code or a magic link: RedeemLink and VerifyEmailCode only look at the
// sign-in and verification purposes.
const CodeContinue = "continue"

// ticketLifetime is short: the site navigates to the ticket's URL at once.
const ticketLifetime = 60 * time.Second

var errBadTicket = onramp.Errorf(onramp.EINVALID, "This sign-in has expired or was finished already. Go back to the site and sign in again.")

// IssueTicket returns a continue ticket for a proven flow: a 256-bit
// secret, shown once, that RedeemTicket turns into the flow's session
// within a minute, once. Only its SHA-256 is stored.
func (s *Accounts) IssueTicket(ctx context.Context, ref string) (string, error) {
	ticket := onramp.NewSecret("tkt")
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		f, err := s.flow(ctx, st, ref)
		if err != nil {
			return err
		}
		if f.Step != StepDone || f.PersonID == "" {
			return onramp.Errorf(onramp.EFORBIDDEN, "This sign-in is not finished yet.")
		}
		now := s.cfg.Clock.Now()
		return st.CreateCode(ctx, &OneTimeCode{
			ID: onramp.NewID("otc"), FlowID: f.ID, Purpose: CodeContinue, Email: f.Email, PersonID: f.PersonID,
			LinkHash: hashToken(ticket), MaxAttempts: 1, ExpiresAt: now.Add(ticketLifetime), CreatedAt: now,
		})
	})
	if err != nil {
		return "", fmt.Errorf("auth: issue ticket: %w", err)
	}
	return ticket, nil
}

// RedeemTicket spends a continue ticket and completes its flow: a new
// session, exactly as Complete makes one for the hosted pages. A ticket
// works once and for a minute; a second flow completion (another ticket
// of the same flow, the flow's own reference) finds the flow gone.
func (s *Accounts) RedeemTicket(ctx context.Context, ticket string, info RequestInfo) (*Grant, error) {
	if err := s.checkAttempt(ctx, info, ""); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(ticket, "tkt_") || len(ticket) > 200 {
		return nil, errBadTicket
	}
	var g *Grant
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		c, err := st.CodeByLinkHash(ctx, hashToken(ticket))
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			return errBadTicket
		}
		if err != nil {
			return err
		}
		now := s.cfg.Clock.Now()
		if c.Purpose != CodeContinue || c.UsedAt != nil || !now.Before(c.ExpiresAt) {
			return errBadTicket
		}
		if used, err := st.UseCode(ctx, c.ID, now); err != nil || !used {
			if err == nil {
				err = errBadTicket
			}
			return err
		}
		f, err := st.FlowByID(ctx, c.FlowID)
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			return errBadTicket
		}
		if err != nil {
			return err
		}
		if !now.Before(f.ExpiresAt) {
			return errBadTicket
		}
		g, err = s.complete(ctx, st, f, info)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("auth: redeem ticket: %w", err)
	}
	return g, nil
}

// FlowClient names the OIDC client a flow signs in for ("" for none), by
// the flow's public id alone. The headless API needs it before it checks
// the flow's secret, to answer CORS for that client's origins only; it
// reveals nothing the id's holder does not already know.
func (s *Accounts) FlowClient(ctx context.Context, flowID string) (string, error) {
	if !strings.HasPrefix(flowID, "flw_") || len(flowID) > 100 {
		return "", errFlowGone
	}
	f, err := s.cfg.Read.FlowByID(ctx, flowID)
	if onramp.ErrorCode(err) == onramp.ENOTFOUND {
		return "", errFlowGone
	}
	if err != nil {
		return "", fmt.Errorf("auth: flow client: %w", err)
	}
	return f.ClientID, nil
}

// CheckLimits applies the per-IP limits of sign-in attempts to a request
// that writes before any credential is involved (the headless API's new
// flows, each of which also stores an auth request).
func (s *Accounts) CheckLimits(ctx context.Context, info RequestInfo) error {
	return s.checkAttempt(ctx, info, "")
}
