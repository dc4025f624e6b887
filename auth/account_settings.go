package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/onramp-dev/onramp"
)

// A signed-in person's own settings on the account page: the password
// and the profile (name).

var (
	errWrongCurrent   = inField(FieldCurrentPassword, onramp.Errorf(onramp.EINVALID, "Your current password is not right."))
	errCurrentMissing = inField(FieldCurrentPassword, onramp.Errorf(onramp.EINVALID, "Enter your current password."))
)

// ChangePasswordParams is the account page's password form.
type ChangePasswordParams struct {
	Session *Session
	// Current is required when the account has a password.
	Current string
	New     string
	Info    RequestInfo
}

// ChangePassword sets a new password from a live session. When the
// account has a password, the current one must be given: a session left
// open on a shared computer must not be enough to lock the owner out. A
// wrong current password counts against the same limits as a wrong
// password at sign-in. Every other session of the person ends, and this
// one is rotated: the Grant is the new session (new id and cookie).
func (s *Accounts) ChangePassword(ctx context.Context, p ChangePasswordParams) (*Grant, error) {
	ses := p.Session
	acc, err := s.cfg.Read.AccountOf(ctx, []string{ses.PersonID})
	if err != nil {
		return nil, fmt.Errorf("auth: change password: %w", err)
	}
	if err := s.checkAttempt(ctx, p.Info, acc.PrimaryEmail); err != nil {
		return nil, err
	}
	stored, err := s.cfg.Read.PasswordOf(ctx, acc.PersonID)
	switch onramp.ErrorCode(err) {
	case "":
		if p.Current == "" {
			return nil, errCurrentMissing
		}
		ok, _, err := s.cfg.Hasher.Verify(ctx, stored, NormalizePassword(p.Current))
		if err != nil {
			return nil, err
		}
		if !ok {
			if err := s.cfg.InTx(ctx, func(st TxStore) error {
				if err := s.failed(ctx, st, p.Info, acc.PrimaryEmail); err != nil {
					return err
				}
				e := s.personEntry(ses, "auth.password_change_failed", p.Info, nil)
				e.Outcome = OutcomeFailure
				return s.record(ctx, st, e)
			}); err != nil {
				return nil, fmt.Errorf("auth: change password: %w", err)
			}
			return nil, errWrongCurrent
		}
	case onramp.ENOTFOUND: // a passwordless account sets its first one
	default:
		return nil, fmt.Errorf("auth: change password: %w", err)
	}
	if err := CheckPassword(p.New, acc.PrimaryEmail); err != nil {
		return nil, inField(FieldNewPassword, err)
	}
	phc, err := s.cfg.Hasher.Hash(ctx, NormalizePassword(p.New))
	if err != nil {
		return nil, err
	}
	var g *Grant
	var revoked []string
	err = s.cfg.InTx(ctx, func(st TxStore) error {
		if err := st.SetPassword(ctx, acc.PersonID, phc, s.cfg.Clock.Now()); err != nil {
			return err
		}
		if err := s.succeeded(ctx, st, acc.PrimaryEmail); err != nil {
			return err
		}
		if revoked, err = s.revokeAllOf(ctx, st, acc, ses.ID, "password_changed"); err != nil {
			return err
		}
		props := map[string]any{"sessions_revoked": len(revoked)}
		g, err = s.factorChanged(ctx, st, ses, "auth.password_changed", props, nil, p.Info)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("auth: change password: %w", err)
	}
	for _, id := range append(revoked, ses.ID) {
		s.sessions.forget(id)
	}
	return g, nil
}

// MaxNameLen bounds the name a person gives on the account page.
const MaxNameLen = 200

// UpdateProfileParams is the account page's profile form.
type UpdateProfileParams struct {
	Session *Session
	Name    string
	Info    RequestInfo
}

// UpdateProfile writes the person's name as a trait through the identity
// part, in one transaction with the audit row, so the profile, its caches
// and segments see it as they see an identify call. An empty name leaves
// the known name alone, as sign-up does.
func (s *Accounts) UpdateProfile(ctx context.Context, p UpdateProfileParams) error {
	name := strings.TrimSpace(p.Name)
	if utf8.RuneCountInString(name) > MaxNameLen || !utf8.ValidString(name) {
		return inField(FieldName, onramp.Errorf(onramp.EINVALID, "Your name can have at most 200 characters."))
	}
	if name == "" {
		return nil
	}
	traits, _ := json.Marshal(map[string]string{"name": name})
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		acc, err := st.AccountOf(ctx, []string{p.Session.PersonID})
		if err != nil {
			return err
		}
		if err := s.cfg.Identity.SetTraits(ctx, st, acc.PersonID, traits); err != nil {
			return err
		}
		props := map[string]any{"traits": []string{"name"}}
		if err := s.record(ctx, st, s.personEntry(p.Session, "account.profile_updated", p.Info, props)); err != nil {
			return err
		}
		return s.timeline(ctx, st, TimelineEvent{Event: "account.profile_updated", Subject: acc.Subject, Properties: props})
	})
	if err != nil {
		return fmt.Errorf("auth: update profile: %w", err)
	}
	return nil
}

// HasPassword reports whether the person's account has a password (the
// account page then asks for it before changing it).
func (s *Accounts) HasPassword(ctx context.Context, personID string) (bool, error) {
	_, err := s.cfg.Read.PasswordOf(ctx, personID)
	switch onramp.ErrorCode(err) {
	case "":
		return true, nil
	case onramp.ENOTFOUND:
		return false, nil
	}
	return false, fmt.Errorf("auth: password: %w", err)
}
