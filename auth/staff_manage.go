package auth

import (
	"context"
	"fmt"

	"github.com/onramp-dev/onramp"
)

// StaffMember is a staff row with the account's primary email, as the
// staff list shows it.
type StaffMember struct {
	*Staff
	Email string `json:"email"`
}

// ListStaff lists every staff member with their email.
func (s *Accounts) ListStaff(ctx context.Context) ([]*StaffMember, error) {
	rows, err := s.cfg.Read.ListStaff(ctx)
	if err != nil {
		return nil, fmt.Errorf("auth: list staff: %w", err)
	}
	out := make([]*StaffMember, 0, len(rows))
	for _, r := range rows {
		m := &StaffMember{Staff: r}
		if acc, err := s.cfg.Read.AccountOf(ctx, []string{r.PersonID}); err == nil {
			m.Email = acc.PrimaryEmail
		} else if onramp.ErrorCode(err) != onramp.ENOTFOUND {
			return nil, fmt.Errorf("auth: list staff: %w", err)
		}
		out = append(out, m)
	}
	return out, nil
}

// AddStaffParams names an account by email to give a staff role.
type AddStaffParams struct {
	Email string
	Role  string
	// PrintLink answers an invitation's link instead of emailing it.
	PrintLink bool
	Actor     AuditEntry
}

// AddStaff gives the account that holds an email a staff role (SetStaff's
// rules apply) and answers the member. An email without an account gets
// an invitation instead (InviteStaff), answered in place of the member.
func (s *Accounts) AddStaff(ctx context.Context, p AddStaffParams, actorRole string) (*StaffMember, *Invite, error) {
	email, err := normEmail(p.Email)
	if err != nil {
		return nil, nil, err
	}
	if !validRole(p.Role) {
		return nil, nil, onramp.Errorf(onramp.EINVALID, "role must be one of owner, admin, developer, marketer, support")
	}
	if p.Role == RoleOwner && actorRole != RoleOwner {
		return nil, nil, onramp.Errorf(onramp.EFORBIDDEN, "Only an owner can make or change an owner.")
	}
	var acc *Account
	var inv *Invite
	err = s.cfg.InTx(ctx, func(st TxStore) error {
		acc, _, err = s.accountByEmail(ctx, st, email)
		if err != nil || acc != nil {
			return err
		}
		inv, err = s.invite(ctx, st, email, p.Role, p.PrintLink, p.Actor)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("auth: add staff: %w", err)
	}
	if inv != nil {
		return nil, inv, nil
	}
	if err := s.SetStaff(ctx, SetStaffParams{PersonID: acc.PersonID, Role: p.Role, Actor: p.Actor}, actorRole); err != nil {
		return nil, nil, err
	}
	row, err := s.cfg.Read.StaffOf(ctx, acc.PersonID)
	if err != nil {
		return nil, nil, fmt.Errorf("auth: add staff: %w", err)
	}
	return &StaffMember{Staff: row, Email: acc.PrimaryEmail}, nil, nil
}

// RemoveStaffParams names a staff member to remove and who removes them.
type RemoveStaffParams struct {
	PersonID string
	Actor    AuditEntry
}

// RemoveStaff deletes a person's staff row and ends their sessions. Only
// an owner may remove an owner, and never the last one.
func (s *Accounts) RemoveStaff(ctx context.Context, p RemoveStaffParams, actorRole string) error {
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		cur, err := st.StaffOf(ctx, p.PersonID)
		if err != nil {
			return err
		}
		if cur.Role == RoleOwner {
			if actorRole != RoleOwner {
				return onramp.Errorf(onramp.EFORBIDDEN, "Only an owner can remove an owner.")
			}
			if err := lastOwnerCheck(ctx, st); err != nil {
				return err
			}
		}
		if err := st.DeleteStaff(ctx, p.PersonID); err != nil {
			return err
		}
		now := s.cfg.Clock.Now()
		if _, err := st.RevokeSessionsOf(ctx, p.PersonID, "", now, "staff_removed"); err != nil {
			return err
		}
		e := p.Actor
		e.Action, e.PersonID, e.Detail = "staff.removed", p.PersonID, jsonDetail(map[string]any{"role": cur.Role})
		return s.record(ctx, st, e)
	})
	if err != nil {
		return fmt.Errorf("auth: remove staff: %w", err)
	}
	s.forgetPeople()
	return nil
}
