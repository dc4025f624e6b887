package auth

import (
	"context"
	"fmt"

	"github.com/onramp-dev/onramp"
)

// OwnerLink makes a one-time link to create the owner account, while no
// owner exists (it answers "" once one does). Each call retires the links
// made before, so only the newest printed link works.
func (s *Accounts) OwnerLink(ctx context.Context) (string, error) {
	var link string
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		staff, err := st.ListStaff(ctx)
		if err != nil {
			return err
		}
		for _, m := range staff {
			if m.Role == RoleOwner {
				return nil
			}
		}
		now := s.cfg.Clock.Now()
		if err := st.InvalidateCodes(ctx, CodeOwnerSetup, "", now); err != nil {
			return err
		}
		token := onramp.NewSecret("own")
		c := &OneTimeCode{ID: onramp.NewID("otc"), Purpose: CodeOwnerSetup, LinkHash: hashToken(token), MaxAttempts: 1, ExpiresAt: now.Add(ownerLinkLifetime), CreatedAt: now}
		if err := st.CreateCode(ctx, c); err != nil {
			return err
		}
		link = s.cfg.PublicURL + "/setup/owner?token=" + token
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("auth: owner link: %w", err)
	}
	return link, nil
}

var errOwnerLink = onramp.Errorf(onramp.EFORBIDDEN, "This setup link has expired or was used already. Restart `onramp serve` to print a new one.")

// CheckOwnerLink reports whether an owner-setup token is live (the setup
// page shows its form only then).
func (s *Accounts) CheckOwnerLink(ctx context.Context, token string) error {
	c, err := s.cfg.Read.CodeByLinkHash(ctx, hashToken(token))
	if err != nil || c.Purpose != CodeOwnerSetup || c.UsedAt != nil || !s.cfg.Clock.Now().Before(c.ExpiresAt) {
		return errOwnerLink
	}
	return nil
}

// ClaimOwnerParams is the owner-setup form.
type ClaimOwnerParams struct {
	Token    string
	Email    string
	Password string
	Info     RequestInfo
}

// ClaimOwner spends an owner-setup link: it creates the owner's account
// (on the person who owns the email, if any), the owner staff row and a
// signed-in session.
func (s *Accounts) ClaimOwner(ctx context.Context, p ClaimOwnerParams) (*Grant, error) {
	if err := s.checkAttempt(ctx, p.Info, ""); err != nil {
		return nil, err
	}
	email, err := normEmail(p.Email)
	if err != nil {
		return nil, err
	}
	if err := CheckPassword(p.Password, email); err != nil {
		return nil, inField(FieldPassword, err)
	}
	phc, err := s.cfg.Hasher.Hash(ctx, NormalizePassword(p.Password))
	if err != nil {
		return nil, err
	}
	// An email that already has an account becomes owner only with that
	// account's own password: the setup link must not be a way to take
	// over someone's account.
	existing, _, err := s.accountByEmail(ctx, s.cfg.Read, email)
	if err != nil {
		return nil, fmt.Errorf("auth: claim owner: %w", err)
	}
	if existing != nil {
		stored, err := s.cfg.Read.PasswordOf(ctx, existing.PersonID)
		ok := false
		if err == nil {
			ok, _, err = s.cfg.Hasher.Verify(ctx, stored, p.Password)
		}
		if onramp.ErrorCode(err) != onramp.ENOTFOUND && err != nil {
			return nil, err
		}
		if !ok {
			return nil, inField(FieldPassword, onramp.Errorf(onramp.EFORBIDDEN, "This email already has an account: enter that account's password to make it the owner, or use another email."))
		}
	}
	var g *Grant
	err = s.cfg.InTx(ctx, func(st TxStore) error {
		c, err := st.CodeByLinkHash(ctx, hashToken(p.Token))
		if err != nil || c.Purpose != CodeOwnerSetup || !s.cfg.Clock.Now().Before(c.ExpiresAt) {
			return errOwnerLink
		}
		if used, err := st.UseCode(ctx, c.ID, s.cfg.Clock.Now()); err != nil || !used {
			if err == nil {
				err = errOwnerLink
			}
			return err
		}
		now := s.cfg.Clock.Now()
		acc, _, err := s.accountByEmail(ctx, st, email)
		if err != nil {
			return err
		}
		switch {
		case acc == nil:
			// The console's first user: whoever holds the link printed on
			// the server's console is trusted with the email they give.
			if acc, err = s.createAccount(ctx, st, &Flow{ID: c.ID, Email: email}, "", p.Info); err != nil {
				return err
			}
			if err := st.SetPassword(ctx, acc.PersonID, phc, now); err != nil {
				return err
			}
		case existing == nil || existing.PersonID != acc.PersonID:
			return onramp.Errorf(onramp.ECONFLICT, "This email got an account a moment ago. Try again.")
		}
		staff := &Staff{PersonID: acc.PersonID, Role: RoleOwner, CreatedAt: now, CreatedBy: "setup-link", UpdatedAt: now}
		if err := st.PutStaff(ctx, staff); err != nil {
			return err
		}
		ses, secret, err := s.newSession(ctx, st, acc.PersonID, []string{"pwd"}, true, p.Info)
		if err != nil {
			return err
		}
		if err := s.record(ctx, st, AuditEntry{ActorType: ActorPerson, ActorID: acc.PersonID, Action: "staff.owner_created", PersonID: acc.PersonID,
			SessionID: ses.ID, IP: p.Info.IP, UserAgent: p.Info.UserAgent}); err != nil {
			return err
		}
		g = &Grant{Session: ses, Secret: secret, Account: acc, Staff: staff}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("auth: claim owner: %w", err)
	}
	// The person may have had an account before: forget what was cached.
	s.staff.forget(g.Account.PersonID)
	s.accounts.forget(g.Account.PersonID)
	return g, nil
}

// StaffOf returns the staff row of a person, or ENOTFOUND. Every console
// and API call of a staff session asks, so rows are served from memory
// for as long as sessions are: SetStaff forgets them on this node, and
// as it also ends the person's sessions, other nodes stop honouring the
// old role when their cached sessions expire.
func (s *Accounts) StaffOf(ctx context.Context, personID string) (*Staff, error) {
	if st, ok := s.staff.get(personID); ok {
		return st, nil
	}
	st, err := s.cfg.Read.StaffOf(ctx, personID)
	if err != nil {
		return nil, err
	}
	s.staff.put(personID, st)
	return st, nil
}

// forgetPeople drops the cached sessions, staff rows and accounts after a
// change to who may do what.
func (s *Accounts) forgetPeople() {
	s.sessions.clear()
	s.staff.clear()
	s.accounts.clear()
}

// SetStaffParams gives a person with an account a staff role.
type SetStaffParams struct {
	PersonID string
	Role     string
	Actor    AuditEntry
}

// SetStaff makes an account staff with a role, or changes its role. Only
// owners may make or change owners; the last owner cannot be demoted.
func (s *Accounts) SetStaff(ctx context.Context, p SetStaffParams, actorRole string) error {
	if !validRole(p.Role) {
		return onramp.Errorf(onramp.EINVALID, "role must be one of owner, admin, developer, marketer, support")
	}
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		if _, err := st.AccountOf(ctx, []string{p.PersonID}); err != nil {
			return err
		}
		now := s.cfg.Clock.Now()
		cur, err := st.StaffOf(ctx, p.PersonID)
		if err != nil && onramp.ErrorCode(err) != onramp.ENOTFOUND {
			return err
		}
		if (p.Role == RoleOwner || cur != nil && cur.Role == RoleOwner) && actorRole != RoleOwner {
			return onramp.Errorf(onramp.EFORBIDDEN, "Only an owner can make or change an owner.")
		}
		if cur != nil && cur.Role == RoleOwner && p.Role != RoleOwner {
			if err := lastOwnerCheck(ctx, st); err != nil {
				return err
			}
		}
		row := &Staff{PersonID: p.PersonID, Role: p.Role, CreatedAt: now, CreatedBy: p.Actor.ActorID, UpdatedAt: now}
		if cur != nil {
			row.CreatedAt, row.CreatedBy = cur.CreatedAt, cur.CreatedBy
		}
		if err := st.PutStaff(ctx, row); err != nil {
			return err
		}
		// A role change is a privilege change: the person's sessions start
		// over.
		if _, err := st.RevokeSessionsOf(ctx, p.PersonID, "", now, "role_changed"); err != nil {
			return err
		}
		e := p.Actor
		e.Action, e.PersonID, e.Detail = "staff.role_set", p.PersonID, jsonDetail(map[string]any{"role": p.Role})
		return s.record(ctx, st, e)
	})
	if err != nil {
		return fmt.Errorf("auth: set staff: %w", err)
	}
	s.forgetPeople()
	return nil
}

func lastOwnerCheck(ctx context.Context, st TxStore) error {
	all, err := st.ListStaff(ctx)
	if err != nil {
		return err
	}
	owners := 0
	for _, m := range all {
		if m.Role == RoleOwner {
			owners++
		}
	}
	if owners <= 1 {
		return onramp.Errorf(onramp.ECONFLICT, "This is the last owner; make someone else owner first.")
	}
	return nil
}
