package auth

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/onramp-dev/onramp"
)

// This file holds what the second factors share: the "mfa" step of a
// sign-in, recovery codes, session rotation after a factor changes, and
// the staff MFA setting. TOTP itself is in totp.go, passkeys in
// passkey.go.

// StepMFA is the flow step after a first factor (password, email code or
// link) for an account with an authenticator app: Complete refuses until
// VerifySecondFactor passes.
const StepMFA = "mfa"

// Authentication method references (RFC 8176 where one fits). The email
// factors keep the names the flows already record.
const (
	amrPassword     = "pwd"
	amrOTP          = "otp"  // a TOTP code
	amrRecoveryCode = "rec"  // a recovery code (no RFC 8176 value fits)
	amrHardwareKey  = "hwk"  // a passkey: proof of a private key
	amrUserVerified = "user" // the authenticator verified the user (PIN, biometrics)
)

// aalOf is the assurance level a session's methods reach: 2 when a second
// factor (a TOTP or recovery code) followed a first, or when a passkey
// verified its user (possession plus PIN or biometrics in one step);
// otherwise 1.
func aalOf(amr []string) int {
	has := map[string]bool{}
	for _, m := range amr {
		has[m] = true
	}
	switch {
	case has[amrHardwareKey] && has[amrUserVerified]:
		return 2
	case (has[amrOTP] || has[amrRecoveryCode]) && len(amr) > 1:
		return 2
	}
	return 1
}

// firstFactorDone records in f that personID proved a first factor: the
// flow is done, or waits for the second factor when the account has a
// confirmed authenticator app. A flow that switches to another person
// starts its methods over, so one person's factors never count for
// another.
func (s *Accounts) firstFactorDone(ctx context.Context, st MFAStore, f *Flow, personID, method string) error {
	if f.PersonID != "" && f.PersonID != personID {
		f.AMR = nil
	}
	f.PersonID, f.AMR = personID, appendAMR(f.AMR, method)
	need, err := s.hasTOTP(ctx, st, personID)
	if err != nil {
		return err
	}
	f.Step = StepDone
	if need {
		f.Step = StepMFA
	}
	return nil
}

// hasTOTP reports whether the person has a confirmed authenticator app.
func (s *Accounts) hasTOTP(ctx context.Context, st MFAStore, personID string) (bool, error) {
	t, err := st.TOTPOf(ctx, personID)
	switch onramp.ErrorCode(err) {
	case "":
		return t.ConfirmedAt != nil, nil
	case onramp.ENOTFOUND:
		return false, nil
	}
	return false, fmt.Errorf("auth: totp: %w", err)
}

var errBadSecondFactor = inField(FieldCode, onramp.Errorf(onramp.EINVALID, "That code is not right. Enter the current code from your authenticator app, or one of your recovery codes."))

// mfaKey is the rate-limit identifier of a person's second factor. It is
// not the email's counter: a right password resets that one, and must
// not give a code guesser a fresh allowance.
func mfaKey(personID string) string { return "mfa:" + personID }

// SecondFactorParams is the code typed on the "mfa" step.
type SecondFactorParams struct {
	FlowRef string
	// Code is a TOTP code or a recovery code.
	Code string
	Info RequestInfo
}

// VerifySecondFactor checks the code of a flow waiting on the "mfa" step.
// A right TOTP code (never one of a step already used) or an unused
// recovery code moves the flow to "done" ("new_password" for a password
// recovery).
func (s *Accounts) VerifySecondFactor(ctx context.Context, p SecondFactorParams) (*Step, error) {
	f, err := s.Flow(ctx, p.FlowRef)
	if err != nil {
		return nil, err
	}
	if f.Step != StepMFA || f.PersonID == "" {
		return nil, onramp.Errorf(onramp.EINVALID, "This sign-in does not need a second factor now.")
	}
	if err := s.checkAttempt(ctx, p.Info, mfaKey(f.PersonID)); err != nil {
		return nil, err
	}
	var step *Step
	var method string
	err = s.cfg.InTx(ctx, func(st TxStore) error {
		f, err := s.flow(ctx, st, p.FlowRef)
		if err != nil {
			return err
		}
		if f.Step != StepMFA {
			return onramp.Errorf(onramp.EINVALID, "This sign-in does not need a second factor now.")
		}
		if method, err = s.checkSecondFactor(ctx, st, f.PersonID, p.Code, true); err != nil || method == "" {
			return err
		}
		if err := s.succeeded(ctx, st, mfaKey(f.PersonID)); err != nil {
			return err
		}
		f.Step, f.AMR = StepDone, appendAMR(f.AMR, method)
		if f.Kind == FlowRecovery {
			// A recovery asks for the second factor before the new
			// password, not instead of it.
			f.Step = StepNewPassword
		}
		if err := saveFlow(ctx, st, f); err != nil {
			return err
		}
		if method == amrRecoveryCode {
			if err := s.record(ctx, st, AuditEntry{ActorType: ActorPerson, ActorID: f.PersonID, Action: "auth.recovery_code_used", PersonID: f.PersonID,
				ClientID: f.ClientID, IP: p.Info.IP, UserAgent: p.Info.UserAgent}); err != nil {
				return err
			}
		}
		step = &Step{FlowID: f.ID, Next: f.Step, Email: f.Email}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("auth: second factor: %w", err)
	}
	if method == "" {
		return nil, s.secondFactorFailed(ctx, f.PersonID, f.ClientID, "mfa", p.Info)
	}
	return step, nil
}

// secondFactorFailed counts a wrong code against the IP and the person's
// second factor, writes the audit row and the timeline event, and returns
// the error to answer.
func (s *Accounts) secondFactorFailed(ctx context.Context, personID, clientID, during string, info RequestInfo) error {
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		if err := s.failed(ctx, st, info, mfaKey(personID)); err != nil {
			return err
		}
		if err := s.record(ctx, st, AuditEntry{ActorType: ActorAnonymous, Action: "auth.mfa_failed", Outcome: OutcomeFailure, PersonID: personID,
			ClientID: clientID, IP: info.IP, UserAgent: info.UserAgent, Detail: jsonDetail(map[string]any{"during": during})}); err != nil {
			return err
		}
		acc, err := st.AccountOf(ctx, []string{personID})
		if err != nil {
			return err
		}
		return s.timeline(ctx, st, TimelineEvent{Event: "auth.login_failed", Subject: acc.Subject, Properties: map[string]any{"method": "totp", "during": during}})
	})
	if err != nil {
		return fmt.Errorf("auth: second factor: %w", err)
	}
	return errBadSecondFactor
}

// checkSecondFactor checks a code against the person's confirmed
// authenticator app, or (if allowed) their unused recovery codes, and
// spends it. It answers the method that matched, or "" for a wrong code.
func (s *Accounts) checkSecondFactor(ctx context.Context, st TxStore, personID, code string, allowRecovery bool) (string, error) {
	code = normalizeCode(code)
	if isTOTPCode(code) {
		ok, err := s.checkTOTP(ctx, st, personID, code, true)
		if err != nil || !ok {
			return "", err
		}
		return amrOTP, nil
	}
	if !allowRecovery || len(code) != recoveryCodeLen {
		return "", nil
	}
	if ok, err := s.hasTOTP(ctx, st, personID); err != nil || !ok {
		return "", err
	}
	used, err := st.UseRecoveryCode(ctx, personID, s.recoveryHash(personID, code), s.cfg.Clock.Now())
	if onramp.ErrorCode(err) == onramp.ENOTFOUND {
		return "", nil
	}
	if err != nil || !used {
		return "", err
	}
	return amrRecoveryCode, nil
}

// normalizeCode drops what people type around a code (spaces, dashes)
// and upper-cases recovery codes.
func normalizeCode(code string) string {
	return strings.ToUpper(strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '\t' {
			return -1
		}
		return r
	}, code))
}

// Recovery codes: 10 codes of 10 base32 characters (50 random bits each),
// shown as XXXXX-XXXXX.
const (
	recoveryCodeCount = 10
	recoveryCodeLen   = 10
)

// newRecoveryCodes makes a fresh set, for showing, and their hashes, for
// storing.
func (s *Accounts) newRecoveryCodes(personID string) (shown, hashes []string) {
	for range recoveryCodeCount {
		b := make([]byte, 10)
		_, _ = rand.Read(b)
		code := base32.StdEncoding.EncodeToString(b)[:recoveryCodeLen]
		shown = append(shown, code[:5]+"-"+code[5:])
		hashes = append(hashes, s.recoveryHash(personID, code))
	}
	return shown, hashes
}

// recoveryHash is an HMAC under the server key, bound to the person: 50
// bits are too few to keep as a plain hash, which a copy of the table
// would give away offline.
func (s *Accounts) recoveryHash(personID, code string) string {
	return macString(s.keys.code, "recovery", personID, code)
}

// FactorCodeParams is a signed-in person acting on their factors with a
// code that proves they hold one (TOTP or recovery code).
type FactorCodeParams struct {
	Session *Session
	Code    string
	Info    RequestInfo
}

// RegenerateRecoveryCodes replaces a person's recovery codes with a new
// set, shown once. It needs a current code: whoever can read new codes
// can use them in place of the app.
func (s *Accounts) RegenerateRecoveryCodes(ctx context.Context, p FactorCodeParams) ([]string, error) {
	ses := p.Session
	if err := s.checkAttempt(ctx, p.Info, mfaKey(ses.PersonID)); err != nil {
		return nil, err
	}
	var shown []string
	var method string
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		var err error
		if method, err = s.checkSecondFactor(ctx, st, ses.PersonID, p.Code, true); err != nil || method == "" {
			return err
		}
		if err := s.succeeded(ctx, st, mfaKey(ses.PersonID)); err != nil {
			return err
		}
		var hashes []string
		shown, hashes = s.newRecoveryCodes(ses.PersonID)
		if err := st.ReplaceRecoveryCodes(ctx, ses.PersonID, hashes, s.cfg.Clock.Now()); err != nil {
			return err
		}
		return s.record(ctx, st, s.personEntry(ses, "auth.recovery_codes_regenerated", p.Info, nil))
	})
	if err != nil {
		return nil, fmt.Errorf("auth: recovery codes: %w", err)
	}
	if method == "" {
		return nil, s.secondFactorFailed(ctx, ses.PersonID, "", "regenerate", p.Info)
	}
	return shown, nil
}

// MFAStatus is what the account page shows about a person's factors.
type MFAStatus struct {
	TOTP bool `json:"totp"`
	// RecoveryCodesLeft counts unused recovery codes.
	RecoveryCodesLeft int        `json:"recovery_codes_left"`
	Passkeys          []*Passkey `json:"passkeys"`
}

// MFA reports a person's factors.
func (s *Accounts) MFA(ctx context.Context, personID string) (*MFAStatus, error) {
	st := s.cfg.Read
	out := &MFAStatus{}
	var err error
	if out.TOTP, err = s.hasTOTP(ctx, st, personID); err != nil {
		return nil, err
	}
	codes, err := st.RecoveryCodesOf(ctx, personID)
	if err != nil {
		return nil, fmt.Errorf("auth: recovery codes: %w", err)
	}
	for _, c := range codes {
		if c.UsedAt == nil {
			out.RecoveryCodesLeft++
		}
	}
	if out.Passkeys, err = st.PasskeysOf(ctx, personID); err != nil {
		return nil, fmt.Errorf("auth: passkeys: %w", err)
	}
	return out, nil
}

// personEntry is the audit entry of a person acting on their own account
// from a session.
func (s *Accounts) personEntry(ses *Session, action string, info RequestInfo, detail map[string]any) AuditEntry {
	e := AuditEntry{ActorType: ActorPerson, ActorID: ses.PersonID, Action: action, PersonID: ses.PersonID, SessionID: ses.ID, IP: info.IP, UserAgent: info.UserAgent}
	if detail != nil {
		e.Detail = jsonDetail(detail)
	}
	return e
}

// factorChanged writes the audit row and timeline event of an enrolled or
// removed factor, then rotates the session it was done from: a cookie
// planted before the change must not ride on it (session fixation), and
// the new session carries the factor just proven. It runs inside st.
func (s *Accounts) factorChanged(ctx context.Context, st TxStore, ses *Session, event string, props map[string]any, proven []string, info RequestInfo) (*Grant, error) {
	acc, err := st.AccountOf(ctx, []string{ses.PersonID})
	if err != nil {
		return nil, err
	}
	if err := s.record(ctx, st, s.personEntry(ses, event, info, props)); err != nil {
		return nil, err
	}
	if err := s.timeline(ctx, st, TimelineEvent{Event: event, Subject: acc.Subject, Properties: props}); err != nil {
		return nil, err
	}
	return s.rotate(ctx, st, ses, event, proven, info)
}

// RotateSessionParams names a live session to replace with a new one.
type RotateSessionParams struct {
	Session *Session
	// Reason is written to the audit log ("auth.mfa_enrolled", …).
	Reason string
	Info   RequestInfo
}

// RotateSession replaces a live session with a new id and secret, same
// person, methods and lifetime; the old one is revoked. The answer's
// Secret is the new cookie, shown once.
func (s *Accounts) RotateSession(ctx context.Context, p RotateSessionParams) (*Grant, error) {
	var g *Grant
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		var err error
		g, err = s.rotate(ctx, st, p.Session, p.Reason, nil, p.Info)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("auth: rotate session: %w", err)
	}
	s.sessions.forget(p.Session.ID)
	return g, nil
}

// rotate revokes ses and makes its successor inside st; proven methods
// are added to its AMR. The clients the old session signed into move
// over, so signing out still reaches them by back-channel. The caller
// forgets the old session in the cache after commit.
func (s *Accounts) rotate(ctx context.Context, st TxStore, ses *Session, reason string, proven []string, info RequestInfo) (*Grant, error) {
	now := s.cfg.Clock.Now()
	won, err := st.RevokeSession(ctx, ses.ID, now, "rotated")
	if err != nil {
		return nil, err
	}
	if !won {
		return nil, errNoSession
	}
	amr := append([]string(nil), ses.AMR...)
	for _, m := range proven {
		amr = appendAMR(amr, m)
	}
	secret := onramp.NewSecret("ses")
	next := &Session{
		ID: onramp.NewID("ses"), SecretHash: hashToken(secret), PersonID: ses.PersonID, AAL: max(ses.AAL, aalOf(amr)), AMR: amr,
		AuthTime: ses.AuthTime, CreatedAt: now, LastSeenAt: now, ExpiresAt: ses.ExpiresAt,
		IdleExpiresAt: min64(now.Add(s.cfg.SessionIdle), ses.ExpiresAt), IP: info.IP, UserAgent: info.UserAgent,
	}
	if err := st.CreateSession(ctx, next); err != nil {
		return nil, err
	}
	clients, err := st.SessionClients(ctx, ses.ID)
	if err != nil {
		return nil, err
	}
	for _, c := range clients {
		if err := st.AddSessionClient(ctx, next.ID, c, now); err != nil {
			return nil, err
		}
	}
	acc, err := st.AccountOf(ctx, []string{ses.PersonID})
	if err != nil {
		return nil, err
	}
	staff, err := st.StaffOf(ctx, ses.PersonID)
	if onramp.ErrorCode(err) == onramp.ENOTFOUND {
		staff, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	e := s.personEntry(next, "session.rotated", info, map[string]any{"from": ses.ID, "reason": reason})
	if err := s.record(ctx, st, e); err != nil {
		return nil, err
	}
	return &Grant{Session: next, Secret: secret, Account: acc, Staff: staff}, nil
}

// SettingStaffRequireMFA is the setting that makes staff sessions below
// AAL2 useless for the console.
const SettingStaffRequireMFA = "staff_require_mfa"

// ChangedBy says who makes an administrative change: the role their
// permissions come from, and how the audit log names them (ActorType,
// ActorID, SessionID, IP, UserAgent).
type ChangedBy struct {
	Role  string
	Actor AuditEntry
}

// RequireStaffMFA turns the staff MFA requirement on or off. Only an
// owner may.
func (s *Accounts) RequireStaffMFA(ctx context.Context, on bool, by ChangedBy) error {
	if by.Role != RoleOwner {
		return onramp.Errorf(onramp.EFORBIDDEN, "Only an owner can change whether staff need a second factor.")
	}
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		v, _ := json.Marshal(on)
		if err := st.PutSetting(ctx, SettingStaffRequireMFA, v, by.Actor.ActorID, s.cfg.Clock.Now()); err != nil {
			return err
		}
		e := by.Actor
		e.Action, e.Detail = "staff.mfa_required", jsonDetail(map[string]any{"on": on})
		return s.record(ctx, st, e)
	})
	if err != nil {
		return fmt.Errorf("auth: require staff mfa: %w", err)
	}
	return nil
}

// StaffMFARequired reports the setting (off until an owner sets it).
func (s *Accounts) StaffMFARequired(ctx context.Context) (bool, error) {
	v, err := s.cfg.Read.Setting(ctx, SettingStaffRequireMFA)
	if onramp.ErrorCode(err) == onramp.ENOTFOUND {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("auth: staff mfa setting: %w", err)
	}
	var on bool
	if err := json.Unmarshal(v, &on); err != nil {
		return false, fmt.Errorf("auth: staff mfa setting: %w", err)
	}
	return on, nil
}

// StaffNeedsMFA reports whether a session must be refused staff access
// until it reaches AAL2: it belongs to staff, it is below AAL2, and the
// owner requires MFA. The HTTP layer answers 403 "MFA required" then. If
// the answer cannot be read it says true for a staff session below AAL2:
// a console closed by a database error is the safer failure.
func (s *Accounts) StaffNeedsMFA(ctx context.Context, ses *Session) bool {
	if ses == nil || ses.AAL >= 2 {
		return false
	}
	if _, err := s.cfg.Read.StaffOf(ctx, ses.PersonID); err != nil {
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			return false
		}
		s.cfg.Log.WarnContext(ctx, "staff mfa check: staff row", "err", err, "session_id", ses.ID)
		return true
	}
	on, err := s.StaffMFARequired(ctx)
	if err != nil {
		s.cfg.Log.WarnContext(ctx, "staff mfa check: setting", "err", err, "session_id", ses.ID)
		return true
	}
	return on
}
