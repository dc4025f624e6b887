package auth

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/onramp-dev/onramp"
)

// inviteLifetime is how long a staff invitation link works.
const inviteLifetime = 7 * 24 * time.Hour

// Invite is a staff invitation to an email without an account: a
// one-time link (code purpose invite) that creates the account and then
// the staff row.
type Invite struct {
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	ExpiresAt time.Time `json:"expires_at"`
	// Link is answered only when asked for (onramp staff add --print-link);
	// otherwise it goes by email alone.
	Link string `json:"link,omitempty"`
}

// inviteToken makes the link token of an invitation. The role rides in
// the token, after the secret; the stored hash covers the whole token, so
// it cannot be changed.
func inviteToken(role string) string { return onramp.NewSecret("inv") + "." + role }

func inviteRole(token string) string {
	i := strings.LastIndexByte(token, '.')
	if i < 0 {
		return ""
	}
	return token[i+1:]
}

func (s *Accounts) inviteLink(token string) string {
	return s.cfg.PublicURL + "/auth/invite?token=" + token
}

func inviteEmail(s *Accounts, to, role, link string) Email {
	return Email{
		To:      to,
		Subject: fmt.Sprintf("You are invited to %s", s.cfg.ProductName),
		Text: fmt.Sprintf("You are invited to work in %s as %s. Open this link to choose a password and create your account:\n\n%s\n\n"+
			"The link works once, for 7 days. If you did not expect this, ignore this email.\n", s.cfg.ProductName, role, link),
	}
}

// invite makes an invitation in st: it retires earlier invitations to the
// email and queues the email unless printLink.
func (s *Accounts) invite(ctx context.Context, st TxStore, email, role string, printLink bool, actor AuditEntry) (*Invite, error) {
	now := s.cfg.Clock.Now()
	if err := st.InvalidateCodes(ctx, CodeInvite, email, now); err != nil {
		return nil, err
	}
	token := inviteToken(role)
	c := &OneTimeCode{ID: onramp.NewID("otc"), Purpose: CodeInvite, Email: email, LinkHash: hashToken(token), MaxAttempts: 1, ExpiresAt: now.Add(inviteLifetime), CreatedAt: now}
	if err := st.CreateCode(ctx, c); err != nil {
		return nil, err
	}
	inv := &Invite{Email: email, Role: role, ExpiresAt: c.ExpiresAt}
	link := s.inviteLink(token)
	if printLink {
		inv.Link = link
	} else if err := s.mail(ctx, st, inviteEmail(s, email, role, link)); err != nil {
		return nil, err
	}
	actor.Action, actor.Detail = "staff.invited", jsonDetail(map[string]any{"email": email, "role": role})
	if err := s.record(ctx, st, actor); err != nil {
		return nil, err
	}
	return inv, nil
}

var errInviteLink = onramp.Errorf(onramp.EFORBIDDEN, "This invitation has expired or was used already. Ask whoever invited you for a new one.")

// CheckInvite answers the email and role of a live invitation link (the
// invitation page shows its form only then).
func (s *Accounts) CheckInvite(ctx context.Context, token string) (*Invite, error) {
	c, err := s.cfg.Read.CodeByLinkHash(ctx, hashToken(token))
	if err != nil || c.Purpose != CodeInvite || c.UsedAt != nil || !s.cfg.Clock.Now().Before(c.ExpiresAt) || !validRole(inviteRole(token)) {
		return nil, errInviteLink
	}
	return &Invite{Email: c.Email, Role: inviteRole(token), ExpiresAt: c.ExpiresAt}, nil
}

// AcceptInviteParams is the invitation form.
type AcceptInviteParams struct {
	Token    string
	Password string
	Info     RequestInfo
}

// AcceptInvite spends an invitation link: the link came by email, which
// proves the address as a sign-up's emailed link does. It creates the
// account (on the person who owns the email, if any; an account made
// since the invitation is kept), sets the password, makes the staff row
// and signs in.
func (s *Accounts) AcceptInvite(ctx context.Context, p AcceptInviteParams) (*Grant, error) {
	if err := s.checkAttempt(ctx, p.Info, ""); err != nil {
		return nil, err
	}
	inv, err := s.CheckInvite(ctx, p.Token)
	if err != nil {
		return nil, err
	}
	if err := CheckPassword(p.Password, inv.Email); err != nil {
		return nil, inField(FieldPassword, err)
	}
	phc, err := s.cfg.Hasher.Hash(ctx, NormalizePassword(p.Password))
	if err != nil {
		return nil, err
	}
	var g *Grant
	err = s.cfg.InTx(ctx, func(st TxStore) error {
		c, err := st.CodeByLinkHash(ctx, hashToken(p.Token))
		if err != nil || c.Purpose != CodeInvite || !s.cfg.Clock.Now().Before(c.ExpiresAt) {
			return errInviteLink
		}
		if used, err := st.UseCode(ctx, c.ID, s.cfg.Clock.Now()); err != nil || !used {
			if err == nil {
				err = errInviteLink
			}
			return err
		}
		now := s.cfg.Clock.Now()
		acc, _, err := s.accountByEmail(ctx, st, c.Email)
		if err != nil {
			return err
		}
		if acc == nil {
			if acc, err = s.createAccount(ctx, st, &Flow{ID: c.ID, Email: c.Email}, "", p.Info); err != nil {
				return err
			}
		} else if _, err := st.RevokeSessionsOf(ctx, acc.PersonID, "", now, "password_changed"); err != nil {
			return err
		}
		if err := st.SetPassword(ctx, acc.PersonID, phc, now); err != nil {
			return err
		}
		staff := &Staff{PersonID: acc.PersonID, Role: inv.Role, CreatedAt: now, CreatedBy: "invite", UpdatedAt: now}
		if err := st.PutStaff(ctx, staff); err != nil {
			return err
		}
		ses, secret, err := s.newSession(ctx, st, acc.PersonID, []string{"pwd"}, true, p.Info)
		if err != nil {
			return err
		}
		if err := s.record(ctx, st, AuditEntry{ActorType: ActorPerson, ActorID: acc.PersonID, Action: "staff.invite_accepted", PersonID: acc.PersonID,
			SessionID: ses.ID, IP: p.Info.IP, UserAgent: p.Info.UserAgent, Detail: jsonDetail(map[string]any{"role": inv.Role})}); err != nil {
			return err
		}
		g = &Grant{Session: ses, Secret: secret, Account: acc, Staff: staff}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("auth: accept invite: %w", err)
	}
	s.forgetPeople()
	return g, nil
}
