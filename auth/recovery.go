package auth

import (
	"context"
	"fmt"

	"github.com/onramp-dev/onramp"
)

// Password recovery: a flow of kind FlowRecovery asks for an email
// (StartRecovery), proves it with the emailed code or link like every
// other flow (VerifyEmailCode, RedeemLink), and then, on the
// "new_password" step, takes a new password (ResetPassword). A code or
// link proves only the address it was sent to, so the account whose
// password changes is always the account of that address.

// StepNewPassword is the step of a recovery flow whose email is proven:
// ResetPassword sets the new password.
const StepNewPassword = "new_password"

// RecoveryParams asks for a recovery email.
type RecoveryParams struct {
	FlowRef string
	Email   string
	Info    RequestInfo
}

// StartRecovery emails a recovery code and link to an account's address,
// or, to an address without an account, the note on how to sign up. The
// answer is the same for every email, and the send limits apply.
func (s *Accounts) StartRecovery(ctx context.Context, p RecoveryParams) (*Step, error) {
	email, err := normEmail(p.Email)
	if err != nil {
		return nil, err
	}
	if err := s.checkAttempt(ctx, p.Info, ""); err != nil {
		return nil, err
	}
	f, err := s.Flow(ctx, p.FlowRef)
	if err != nil {
		return nil, err
	}
	if f.Kind != FlowRecovery {
		return nil, errNotRecovery
	}
	return s.sendProof(ctx, p.FlowRef, email, nil, p.Info)
}

var errNotRecovery = onramp.Errorf(onramp.EINVALID, "This is not a password reset. Please start again from “Forgot your password?”.")

// proveRecovery runs inside the transaction that spent a recovery flow's
// code or link: the flow now names the account of the proven address and
// waits for the new password, or first for the second factor when the
// account has an authenticator app: whoever reads the person's email must
// not be able to change the password of an account the app protects (nor
// sign its owner out everywhere). No session is made yet.
func (s *Accounts) proveRecovery(ctx context.Context, st TxStore, f *Flow, acc *Account, method string) (*Step, error) {
	if acc == nil || acc.Status != AccountActive {
		return nil, errBadCode
	}
	if err := s.succeeded(ctx, st, f.Email); err != nil {
		return nil, err
	}
	f.PersonID, f.AMR, f.Step, f.Pending = acc.PersonID, []string{method}, StepNewPassword, nil
	needMFA, err := s.hasTOTP(ctx, st, acc.PersonID)
	if err != nil {
		return nil, err
	}
	if needMFA {
		f.Step = StepMFA
	}
	if err := saveFlow(ctx, st, f); err != nil {
		return nil, err
	}
	return &Step{FlowID: f.ID, Next: f.Step, Email: f.Email}, nil
}

// ResetPasswordParams is the new password of a proven recovery flow.
type ResetPasswordParams struct {
	FlowRef  string
	Password string
	Info     RequestInfo
}

// ResetPassword sets the password of the account the recovery flow
// proved (and, for an account with an authenticator app, whose second
// factor the flow passed), ends every session of the person (whoever
// knew the old password is signed out everywhere) and signs this browser
// in afresh with the factors the flow proved.
func (s *Accounts) ResetPassword(ctx context.Context, p ResetPasswordParams) (*Step, *Grant, error) {
	var g *Grant
	step, err := s.resetPassword(ctx, p, func(ctx context.Context, st TxStore, f *Flow) (err error) {
		g, err = s.complete(ctx, st, f, p.Info)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return step, g, nil
}

// ResetPasswordForTicket is ResetPassword for the headless API, whose
// caller is a site's script and must not get a session: the password
// changes and every session ends just the same, but the flow is left
// done, for IssueTicket, and the browser gets its new session when it
// brings the ticket to Onramp (RedeemTicket).
func (s *Accounts) ResetPasswordForTicket(ctx context.Context, p ResetPasswordParams) (*Step, error) {
	return s.resetPassword(ctx, p, func(ctx context.Context, st TxStore, f *Flow) error {
		return saveFlow(ctx, st, f)
	})
}

// resetPassword sets the new password inside a transaction in which
// finish then ends the done flow (a session, or a flow kept for a ticket).
func (s *Accounts) resetPassword(ctx context.Context, p ResetPasswordParams, finish func(context.Context, TxStore, *Flow) error) (*Step, error) {
	f, err := s.Flow(ctx, p.FlowRef)
	if err != nil {
		return nil, err
	}
	if f.Kind != FlowRecovery || f.Step != StepNewPassword || f.PersonID == "" {
		return nil, errNotRecovery
	}
	if err := CheckPassword(p.Password, f.Email); err != nil {
		return nil, inField(FieldPassword, err)
	}
	phc, err := s.cfg.Hasher.Hash(ctx, NormalizePassword(p.Password))
	if err != nil {
		return nil, err
	}
	var step *Step
	var revoked []string
	err = s.cfg.InTx(ctx, func(st TxStore) error {
		f, err := s.flow(ctx, st, p.FlowRef)
		if err != nil {
			return err
		}
		// Read again inside the transaction: a second submit of the same
		// form must not reset twice.
		if f.Step != StepNewPassword || f.PersonID == "" {
			return errNotRecovery
		}
		acc, err := st.AccountOf(ctx, []string{f.PersonID})
		if err != nil {
			return err
		}
		now := s.cfg.Clock.Now()
		if err := st.SetPassword(ctx, acc.PersonID, phc, now); err != nil {
			return err
		}
		if revoked, err = s.revokeAllOf(ctx, st, acc, "", "password_reset"); err != nil {
			return err
		}
		e := AuditEntry{ActorType: ActorPerson, ActorID: acc.PersonID, Action: "auth.password_reset", PersonID: acc.PersonID, ClientID: f.ClientID,
			IP: p.Info.IP, UserAgent: p.Info.UserAgent, Detail: jsonDetail(map[string]any{"method": f.AMR, "sessions_revoked": len(revoked)})}
		if err := s.record(ctx, st, e); err != nil {
			return err
		}
		if err := s.timeline(ctx, st, TimelineEvent{Event: "auth.password_reset", Subject: acc.Subject, AnonymousID: f.AnonymousID,
			Properties: map[string]any{"sessions_revoked": len(revoked)}}); err != nil {
			return err
		}
		// The flow's factors (the email code or link, and the second
		// factor when the account has one) make the new session.
		f.Step = StepDone
		step = &Step{FlowID: f.ID, Next: f.Step, Email: f.Email}
		return finish(ctx, st, f)
	})
	if err != nil {
		return nil, fmt.Errorf("auth: reset password: %w", err)
	}
	for _, id := range revoked {
		s.sessions.forget(id)
	}
	return step, nil
}

// revokeAllOf ends every live session of the account's person except
// keep, and queues the back-channel logouts of the clients they signed
// into. The caller forgets the returned ids in the cache after commit.
func (s *Accounts) revokeAllOf(ctx context.Context, st TxStore, acc *Account, keep, reason string) ([]string, error) {
	live, err := st.SessionsOf(ctx, acc.PersonID, false)
	if err != nil {
		return nil, err
	}
	clientsOf := map[string][]string{}
	for _, ses := range live {
		if ses.ID == keep {
			continue
		}
		if clientsOf[ses.ID], err = st.SessionClients(ctx, ses.ID); err != nil {
			return nil, err
		}
	}
	ids, err := st.RevokeSessionsOf(ctx, acc.PersonID, keep, s.cfg.Clock.Now(), reason)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		for _, c := range clientsOf[id] {
			if err := s.enqueueJSON(ctx, st, JobBackchannelLogout, BackchannelLogout{ClientID: c, Subject: acc.Subject, SessionID: id}); err != nil {
				return nil, err
			}
		}
	}
	return ids, nil
}
