package auth

import (
	"context"
	"fmt"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/identity"
)

// Claimant returns what an account's OIDC claims are made of: the
// person's traits and their email and phone with whether each is proven.
// ENOTFOUND when no account has the subject.
func (s *Accounts) Claimant(ctx context.Context, subject string) (*Claimant, error) {
	acc, err := s.cfg.Read.AccountBySubject(ctx, subject)
	if err != nil {
		return nil, err
	}
	p, err := s.cfg.Identity.Person(ctx, acc.PersonID)
	if err != nil {
		return nil, fmt.Errorf("auth: claimant: %w", err)
	}
	c := &Claimant{Subject: subject, Traits: p.Person.Traits}
	for _, id := range p.Identifiers {
		switch {
		// The account's own email is the one to claim; another verified
		// email of the person comes next, then any.
		case id.Type == identity.Email && id.Value == acc.PrimaryEmail:
			c.Email, c.EmailVerified = id.Value, id.Verified
		case id.Type == identity.Email && c.Email != acc.PrimaryEmail && (c.Email == "" || id.Verified && !c.EmailVerified):
			c.Email, c.EmailVerified = id.Value, id.Verified
		case id.Type == identity.Phone && (c.Phone == "" || id.Verified && !c.PhoneVerified):
			c.Phone, c.PhoneVerified = id.Value, id.Verified
		}
	}
	return c, nil
}

// SessionActive reports whether a session is live and belongs to the
// account with this subject (prompt=none and end_session ask).
func (s *Accounts) SessionActive(ctx context.Context, sessionID, subject string) (bool, error) {
	ses, err := s.cfg.Read.SessionByID(ctx, sessionID)
	if onramp.ErrorCode(err) == onramp.ENOTFOUND {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("auth: session: %w", err)
	}
	if !live(ses, s.cfg.Clock.Now()) {
		return false, nil
	}
	acc, err := s.cfg.Read.AccountOf(ctx, []string{ses.PersonID})
	if onramp.ErrorCode(err) == onramp.ENOTFOUND {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("auth: session: %w", err)
	}
	return acc.Subject == subject, nil
}
