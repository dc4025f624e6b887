package auth

import (
	"context"
	"fmt"

	"github.com/onramp-dev/onramp"
)

var errBadPassword = onramp.Errorf(onramp.EUNAUTHORIZED, "Email or password is incorrect.")

// PasswordParams is the password sign-in form.
type PasswordParams struct {
	FlowRef  string
	Email    string
	Password string
	Info     RequestInfo
}

// SignInPassword checks an email and password. Wrong password, unknown
// email and disabled account all answer errBadPassword after the same
// amount of hashing; limits are checked before anything else.
func (s *Accounts) SignInPassword(ctx context.Context, p PasswordParams) (*Step, error) {
	return s.signInPassword(ctx, p, nil)
}

// SignInPasswordSession is SignInPassword for a page that makes the
// session right away: when the password finishes the sign-in (no second
// factor is due), the session is made in the same transaction, which
// saves a commit on the path every password sign-in takes. The Grant is
// nil when the flow goes on (the "mfa" step).
func (s *Accounts) SignInPasswordSession(ctx context.Context, p PasswordParams) (*Step, *Grant, error) {
	var g *Grant
	step, err := s.signInPassword(ctx, p, func(ctx context.Context, st TxStore, f *Flow) (err error) {
		g, err = s.complete(ctx, st, f, p.Info)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return step, g, nil
}

// signInPassword checks the password; done, if set, finishes a flow whose
// sign-in is complete inside the same transaction (and the flow is not
// written back: done ends it).
func (s *Accounts) signInPassword(ctx context.Context, p PasswordParams, done func(context.Context, TxStore, *Flow) error) (*Step, error) {
	email, err := normEmail(p.Email)
	if err != nil {
		return nil, errBadPassword
	}
	if err := s.checkAttempt(ctx, p.Info, email); err != nil {
		return nil, err
	}
	f, err := s.Flow(ctx, p.FlowRef)
	if err != nil {
		return nil, err
	}
	acc, _, err := s.accountByEmail(ctx, s.cfg.Read, email)
	if err != nil {
		return nil, fmt.Errorf("auth: sign in: %w", err)
	}
	phc := s.cfg.Hasher.DummyPHC()
	if acc != nil {
		stored, err := s.cfg.Read.PasswordOf(ctx, acc.PersonID)
		switch onramp.ErrorCode(err) {
		case "":
			phc = stored
		case onramp.ENOTFOUND: // a passwordless account: verify the dummy
		default:
			return nil, fmt.Errorf("auth: sign in: %w", err)
		}
	}
	ok, rehash, err := s.cfg.Hasher.Verify(ctx, phc, NormalizePassword(p.Password))
	if err != nil {
		return nil, err
	}
	ok = ok && acc != nil && phc != s.cfg.Hasher.DummyPHC() && acc.Status == AccountActive
	// A rehash happens before the transaction: hashing inside it would
	// hold the database's writer for tens of milliseconds.
	var fresh string
	if ok && rehash {
		if fresh, err = s.cfg.Hasher.Hash(ctx, NormalizePassword(p.Password)); err != nil {
			return nil, err
		}
	}
	// Concurrent sign-ins share a commit: the transaction is small and its
	// fsync would otherwise bound sign-ins per second. The function may run
	// twice (txGroup.run), so it sets step afresh.
	var step *Step
	err = s.groupTx(ctx, func(st TxStore) error {
		step = nil
		if !ok {
			if err := s.failed(ctx, st, p.Info, email); err != nil {
				return err
			}
			e := AuditEntry{ActorType: ActorAnonymous, Action: "auth.login_failed", Outcome: OutcomeFailure, IP: p.Info.IP, UserAgent: p.Info.UserAgent, ClientID: f.ClientID,
				Detail: jsonDetail(map[string]any{"method": "password"})}
			if acc != nil {
				e.PersonID = acc.PersonID
				if err := s.timeline(ctx, st, TimelineEvent{Event: "auth.login_failed", Subject: acc.Subject, Properties: map[string]any{"method": "password"}}); err != nil {
					return err
				}
			}
			return s.record(ctx, st, e)
		}
		if err := s.succeeded(ctx, st, email); err != nil {
			return err
		}
		if fresh != "" {
			if err := st.SetPassword(ctx, acc.PersonID, fresh, s.cfg.Clock.Now()); err != nil {
				return err
			}
		}
		f, err := s.flow(ctx, st, p.FlowRef)
		if err != nil {
			return err
		}
		f.Email = email
		if err := s.firstFactorDone(ctx, st, f, acc.PersonID, amrPassword); err != nil {
			return err
		}
		step = &Step{FlowID: f.ID, Next: f.Step, Email: email}
		if f.Step == StepDone && done != nil {
			return done(ctx, st, f)
		}
		return saveFlow(ctx, st, f)
	})
	if err != nil {
		return nil, fmt.Errorf("auth: sign in: %w", err)
	}
	if !ok {
		return nil, errBadPassword
	}
	return step, nil
}

// Grant is a finished sign-in: the new session and its cookie secret
// (shown once), and the OIDC request the flow was for.
type Grant struct {
	Session       *Session
	Secret        string
	Account       *Account
	AuthRequestID string
	ClientID      string
	// Staff is the staff row when the person works in the console.
	Staff *Staff
}

// Complete turns a proven flow into a session. The flow ends; the session
// has a new id and secret whatever cookie the browser had before.
func (s *Accounts) Complete(ctx context.Context, ref string, info RequestInfo) (*Grant, error) {
	var g *Grant
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		f, err := s.flow(ctx, st, ref)
		if err != nil {
			return err
		}
		g, err = s.complete(ctx, st, f, info)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("auth: complete: %w", err)
	}
	return g, nil
}

// complete turns the proven flow f into a session inside st (Complete
// for the hosted pages, RedeemTicket for the headless API).
func (s *Accounts) complete(ctx context.Context, st TxStore, f *Flow, info RequestInfo) (*Grant, error) {
	if f.Step != StepDone || f.PersonID == "" {
		return nil, onramp.Errorf(onramp.EFORBIDDEN, "This sign-in is not finished yet.")
	}
	acc, err := st.AccountOf(ctx, []string{f.PersonID})
	if err != nil {
		return nil, err
	}
	staff, err := st.StaffOf(ctx, acc.PersonID)
	if onramp.ErrorCode(err) == onramp.ENOTFOUND {
		staff, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	ses, secret, err := s.newSession(ctx, st, acc.PersonID, f.AMR, staff != nil, info)
	if err != nil {
		return nil, err
	}
	if err := endFlow(ctx, st, f); err != nil {
		return nil, err
	}
	method := "password"
	if len(f.AMR) > 0 {
		method = f.AMR[0]
	}
	if method == amrHardwareKey {
		method = "passkey"
	}
	if err := s.record(ctx, st, AuditEntry{ActorType: ActorPerson, ActorID: acc.PersonID, Action: "auth.logged_in", PersonID: acc.PersonID,
		SessionID: ses.ID, ClientID: f.ClientID, IP: info.IP, UserAgent: info.UserAgent, Detail: jsonDetail(map[string]any{"amr": f.AMR})}); err != nil {
		return nil, err
	}
	if err := s.timeline(ctx, st, TimelineEvent{Event: "auth.logged_in", Subject: acc.Subject, AnonymousID: f.AnonymousID,
		Properties: map[string]any{"method": method, "session_id": ses.ID, "client_id": f.ClientID, "mfa": ses.AAL >= 2}}); err != nil {
		return nil, err
	}
	return &Grant{Session: ses, Secret: secret, Account: acc, AuthRequestID: f.AuthRequestID, ClientID: f.ClientID, Staff: staff}, nil
}

// AccountOfPerson returns the account of a person, or ENOTFOUND. Who-am-I
// and single sign-on ask for the account behind a session on every call,
// so accounts are served from memory for as long as sessions are.
func (s *Accounts) AccountOfPerson(ctx context.Context, personID string) (*Account, error) {
	if acc, ok := s.accounts.get(personID); ok {
		return acc, nil
	}
	acc, err := s.cfg.Read.AccountOf(ctx, []string{personID})
	if err != nil {
		return nil, err
	}
	s.accounts.put(personID, acc)
	return acc, nil
}

// AccountBySubject returns the account with this OIDC subject.
func (s *Accounts) AccountBySubject(ctx context.Context, subject string) (*Account, error) {
	return s.cfg.Read.AccountBySubject(ctx, subject)
}
