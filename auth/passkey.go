package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/onramp-dev/onramp"
)

// Passkeys (WebAuthn discoverable credentials). Every ceremony runs on
// Onramp's own origin: the relying party id is the host of PublicURL and
// the only accepted origin is PublicURL's. A passkey is registered from a
// signed-in session; signing in with one needs no email: the browser
// offers the passkeys it holds for this host and the user handle it
// returns (Account.WebAuthnHandle) names the account.

// FlowPasskey is the kind of the short flow that holds a passkey
// registration's challenge between its two requests.
const FlowPasskey = "passkey"

const (
	passkeyCeremonyLifetime = 10 * time.Minute
	passkeyNameMax          = 64
)

// relyingParty is the WebAuthn relying party, made on first use: a
// PublicURL on an IP address cannot have passkeys (the spec's RP id is a
// domain), and that must not stop the rest of sign-in from working.
type relyingParty struct {
	once sync.Once
	wa   *webauthn.WebAuthn
	err  error
}

func (s *Accounts) webAuthn() (*webauthn.WebAuthn, error) {
	s.rp.once.Do(func() {
		u, err := url.Parse(s.cfg.PublicURL)
		if err != nil || u.Hostname() == "" || net.ParseIP(u.Hostname()) != nil {
			s.cfg.Log.Warn("passkeys are off: the public URL needs a host name, not an IP address", "public_url", s.cfg.PublicURL)
			s.rp.err = onramp.Errorf(onramp.EUNAVAILABLE, "Passkeys are not available on this server: its public URL must use a host name (such as localhost), not an IP address.")
			return
		}
		s.rp.wa, s.rp.err = webauthn.New(&webauthn.Config{
			RPID:          u.Hostname(),
			RPDisplayName: s.cfg.ProductName,
			RPOrigins:     []string{u.Scheme + "://" + u.Host},
			// Preferred: authenticators that can verify the user do, and
			// such a sign-in needs no second factor; the others still work.
			AuthenticatorSelection: protocol.AuthenticatorSelection{UserVerification: protocol.VerificationPreferred},
		})
		if s.rp.err != nil {
			s.rp.err = fmt.Errorf("auth: passkeys: %w", s.rp.err)
		}
	})
	return s.rp.wa, s.rp.err
}

// PasskeysAvailable reports whether this server can offer passkeys (the
// pages hide the buttons otherwise).
func (s *Accounts) PasskeysAvailable() bool {
	_, err := s.webAuthn()
	return err == nil
}

// passkeyUser is an account as the WebAuthn library sees it.
type passkeyUser struct {
	acc   *Account
	creds []webauthn.Credential
}

func (u *passkeyUser) WebAuthnID() []byte { return u.acc.WebAuthnHandle }
func (u *passkeyUser) WebAuthnName() string {
	if u.acc.PrimaryEmail != "" {
		return u.acc.PrimaryEmail
	}
	return u.acc.Subject
}
func (u *passkeyUser) WebAuthnDisplayName() string                { return u.WebAuthnName() }
func (u *passkeyUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

func newPasskeyUser(acc *Account, keys []*Passkey) (*passkeyUser, error) {
	u := &passkeyUser{acc: acc}
	for _, p := range keys {
		c, err := credentialOf(p)
		if err != nil {
			return nil, err
		}
		u.creds = append(u.creds, c)
	}
	return u, nil
}

// credentialOf is a stored passkey in the library's form.
func credentialOf(p *Passkey) (webauthn.Credential, error) {
	id, err := base64.RawURLEncoding.DecodeString(p.ID)
	if err != nil {
		return webauthn.Credential{}, fmt.Errorf("auth: passkey %s: id: %w", p.ID, err)
	}
	c := webauthn.Credential{
		ID: id, PublicKey: p.PublicKey, AttestationType: p.AttestationType, AttestationFormat: p.AttestationFormat,
		Flags:         webauthn.NewCredentialFlags(protocol.AuthenticatorFlags(p.Flags)),
		Authenticator: webauthn.Authenticator{AAGUID: p.AAGUID, SignCount: p.SignCount, CloneWarning: p.CloneWarning},
	}
	for _, t := range p.Transports {
		c.Transport = append(c.Transport, protocol.AuthenticatorTransport(t))
	}
	return c, nil
}

// PasskeyCeremony is a passkey registration begun: Options go to
// navigator.credentials.create (in the WebAuthn JSON form, binary fields
// base64url), and Ref comes back with the authenticator's answer.
type PasskeyCeremony struct {
	Ref     string                       `json:"ceremony"`
	Options *protocol.CredentialCreation `json:"options"`
}

// passkeyPending is what a registration's flow holds.
type passkeyPending struct {
	SessionID string                `json:"session_id"`
	Challenge *webauthn.SessionData `json:"challenge"`
}

// BeginPasskeyRegistration starts adding a passkey to the session's
// account. The authenticator must keep the credential (a discoverable
// one, so signing in needs no email), and one that holds a passkey of
// this account already is excluded.
func (s *Accounts) BeginPasskeyRegistration(ctx context.Context, p SessionParams) (*PasskeyCeremony, error) {
	wa, err := s.webAuthn()
	if err != nil {
		return nil, err
	}
	ses := p.Session
	if err := s.recentSignIn(ses); err != nil {
		return nil, err
	}
	var out *PasskeyCeremony
	err = s.cfg.InTx(ctx, func(st TxStore) error {
		acc, err := st.AccountOf(ctx, []string{ses.PersonID})
		if err != nil {
			return err
		}
		if len(acc.WebAuthnHandle) == 0 {
			// Accounts made before handles existed get one now.
			acc.WebAuthnHandle, acc.UpdatedAt = newWebAuthnHandle(), s.cfg.Clock.Now()
			if err := st.UpdateAccount(ctx, acc); err != nil {
				return err
			}
		}
		keys, err := st.PasskeysOf(ctx, acc.PersonID)
		if err != nil {
			return err
		}
		user, err := newPasskeyUser(acc, keys)
		if err != nil {
			return err
		}
		creation, challenge, err := wa.BeginRegistration(user,
			webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
			webauthn.WithExclusions(webauthn.Credentials(user.creds).CredentialDescriptors()))
		if err != nil {
			return fmt.Errorf("auth: passkey options: %w", err)
		}
		pend, _ := json.Marshal(passkeyPending{SessionID: ses.ID, Challenge: challenge})
		now := s.cfg.Clock.Now()
		secret := onramp.NewSecret("flw")
		f := &Flow{ID: onramp.NewID("flw"), SecretHash: hashToken(secret), Kind: FlowPasskey, PersonID: acc.PersonID, Step: "passkey_register",
			Pending: pend, IP: p.Info.IP, CreatedAt: now, ExpiresAt: now.Add(passkeyCeremonyLifetime)}
		if err := st.CreateFlow(ctx, f); err != nil {
			return err
		}
		out = &PasskeyCeremony{Ref: f.ID + "." + secret, Options: creation}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("auth: begin passkey registration: %w", err)
	}
	return out, nil
}

// FinishPasskeyRegistrationParams is the authenticator's answer to
// navigator.credentials.create, as the JSON of the PublicKeyCredential.
type FinishPasskeyRegistrationParams struct {
	Session  *Session
	Ref      string
	Name     string
	Response json.RawMessage
	Info     RequestInfo
}

// PasskeyAdded is a registered passkey and the session that replaces the
// one it was added from.
type PasskeyAdded struct {
	Passkey *Passkey
	Grant   *Grant
}

var errPasskeyCeremony = onramp.Errorf(onramp.EINVALID, "Adding the passkey took too long or was already finished. Please try again.")

// FinishPasskeyRegistration checks the authenticator's answer against the
// challenge of BeginPasskeyRegistration, stores the passkey and rotates
// the session.
func (s *Accounts) FinishPasskeyRegistration(ctx context.Context, p FinishPasskeyRegistrationParams) (*PasskeyAdded, error) {
	wa, err := s.webAuthn()
	if err != nil {
		return nil, err
	}
	name, err := passkeyName(p.Name)
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(p.Response)
	if err != nil {
		return nil, onramp.Errorf(onramp.EINVALID, "The passkey's answer could not be read. Please try again.")
	}
	ses := p.Session
	var out *PasskeyAdded
	err = s.cfg.InTx(ctx, func(st TxStore) error {
		f, err := s.flow(ctx, st, p.Ref)
		if err != nil {
			return errPasskeyCeremony
		}
		var pend passkeyPending
		if f.Kind != FlowPasskey || json.Unmarshal(f.Pending, &pend) != nil || pend.Challenge == nil || pend.SessionID != ses.ID || f.PersonID != ses.PersonID {
			return errPasskeyCeremony
		}
		// The challenge is spent whatever the answer: a second try starts over.
		if err := endFlow(ctx, st, f); err != nil {
			return errPasskeyCeremony
		}
		acc, err := st.AccountOf(ctx, []string{ses.PersonID})
		if err != nil {
			return err
		}
		keys, err := st.PasskeysOf(ctx, acc.PersonID)
		if err != nil {
			return err
		}
		user, err := newPasskeyUser(acc, keys)
		if err != nil {
			return err
		}
		cred, err := wa.CreateCredential(user, *pend.Challenge, parsed)
		if err != nil {
			s.cfg.Log.InfoContext(ctx, "passkey registration refused", "err", err, "person_id", ses.PersonID)
			return onramp.Errorf(onramp.EINVALID, "This passkey could not be added. Please try again.")
		}
		now := s.cfg.Clock.Now()
		pk := &Passkey{
			ID: base64.RawURLEncoding.EncodeToString(cred.ID), PersonID: acc.PersonID, PublicKey: cred.PublicKey,
			AttestationType: cred.AttestationType, AttestationFormat: cred.AttestationFormat, Transports: []string{},
			Flags: uint8(cred.Flags.ProtocolValue()), AAGUID: cred.Authenticator.AAGUID, SignCount: cred.Authenticator.SignCount,
			Name: name, CreatedAt: now,
		}
		for _, t := range cred.Transport {
			pk.Transports = append(pk.Transports, string(t))
		}
		if err := st.CreatePasskey(ctx, pk); err != nil {
			return err
		}
		proven := []string{amrHardwareKey}
		if pk.UserVerified() {
			proven = append(proven, amrUserVerified)
		}
		g, err := s.factorChanged(ctx, st, ses, "auth.passkey_added", map[string]any{"passkey_id": pk.ID, "name": pk.Name, "synced": pk.Synced()}, proven, p.Info)
		if err != nil {
			return err
		}
		out = &PasskeyAdded{Passkey: pk, Grant: g}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("auth: finish passkey registration: %w", err)
	}
	s.sessions.forget(ses.ID)
	return out, nil
}

// newWebAuthnHandle is a user handle: 32 random bytes, which say nothing
// about the person (the spec warns against emails or ids there).
func newWebAuthnHandle() []byte {
	h := make([]byte, 32)
	_, _ = rand.Read(h)
	return h
}

func passkeyName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "Passkey", nil
	}
	if utf8.RuneCountInString(name) > passkeyNameMax {
		return "", onramp.Errorf(onramp.EINVALID, "A passkey name can have at most %d characters.", passkeyNameMax)
	}
	return name, nil
}

// Passkeys lists a person's passkeys, oldest first.
func (s *Accounts) Passkeys(ctx context.Context, personID string) ([]*Passkey, error) {
	out, err := s.cfg.Read.PasskeysOf(ctx, personID)
	if err != nil {
		return nil, fmt.Errorf("auth: passkeys: %w", err)
	}
	return out, nil
}

// PasskeyParams names one of the signed-in person's passkeys.
type PasskeyParams struct {
	Session *Session
	ID      string
	// Name is the new name, for RenamePasskey.
	Name string
	Info RequestInfo
}

var errNoPasskey = onramp.Errorf(onramp.ENOTFOUND, "No such passkey.")

// ownPasskey finds a passkey of the session's person; someone else's
// answers as missing.
func ownPasskey(ctx context.Context, st MFAStore, ses *Session, id string) (*Passkey, error) {
	pk, err := st.PasskeyByID(ctx, id)
	if onramp.ErrorCode(err) == onramp.ENOTFOUND || err == nil && pk.PersonID != ses.PersonID {
		return nil, errNoPasskey
	}
	return pk, err
}

// RenamePasskey changes the name a person gave a passkey.
func (s *Accounts) RenamePasskey(ctx context.Context, p PasskeyParams) error {
	name, err := passkeyName(p.Name)
	if err != nil {
		return err
	}
	err = s.cfg.InTx(ctx, func(st TxStore) error {
		if _, err := ownPasskey(ctx, st, p.Session, p.ID); err != nil {
			return err
		}
		if err := st.RenamePasskey(ctx, p.ID, name); err != nil {
			return err
		}
		return s.record(ctx, st, s.personEntry(p.Session, "auth.passkey_renamed", p.Info, map[string]any{"passkey_id": p.ID, "name": name}))
	})
	if err != nil {
		return fmt.Errorf("auth: rename passkey: %w", err)
	}
	return nil
}

// RemovePasskey deletes one of the person's passkeys and rotates the
// session. (The browser may still offer it; signing in with it then
// fails as an unknown passkey.)
func (s *Accounts) RemovePasskey(ctx context.Context, p PasskeyParams) (*Grant, error) {
	var g *Grant
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		pk, err := ownPasskey(ctx, st, p.Session, p.ID)
		if err != nil {
			return err
		}
		if err := st.DeletePasskey(ctx, pk.ID); err != nil {
			return err
		}
		g, err = s.factorChanged(ctx, st, p.Session, "auth.passkey_removed", map[string]any{"passkey_id": pk.ID, "name": pk.Name}, nil, p.Info)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("auth: remove passkey: %w", err)
	}
	s.sessions.forget(p.Session.ID)
	return g, nil
}

// PasskeyLoginParams begins a passkey sign-in on a sign-in flow.
type PasskeyLoginParams struct {
	FlowRef string
	// Origin is the web origin of the page that asks the authenticator,
	// when it is not Onramp's own (the headless API: a property's page).
	// The ceremony then accepts an answer from that origin alone.
	Origin string
	Info   RequestInfo
}

// BeginPasskeyLogin returns the options for navigator.credentials.get: a
// discoverable login (no allow list, so no email is needed and none is
// revealed). The challenge waits in the flow until FinishPasskeyLogin.
func (s *Accounts) BeginPasskeyLogin(ctx context.Context, p PasskeyLoginParams) (*protocol.CredentialAssertion, error) {
	wa, opts, err := s.webAuthnOn(p.Origin)
	if err != nil {
		return nil, err
	}
	if err := s.checkAttempt(ctx, p.Info, ""); err != nil {
		return nil, err
	}
	assertion, challenge, err := wa.BeginDiscoverableLogin(opts...)
	if err != nil {
		return nil, fmt.Errorf("auth: passkey options: %w", err)
	}
	err = s.cfg.InTx(ctx, func(st TxStore) error {
		f, err := s.flow(ctx, st, p.FlowRef)
		if err != nil {
			return err
		}
		if f.Kind != FlowSignIn {
			return onramp.Errorf(onramp.EINVALID, "Passkeys sign in from the sign-in page.")
		}
		pend, err := pendingOf(f)
		if err != nil {
			return err
		}
		if len(f.Pending) > 0 && pend.Passkey == nil {
			// A sign-up waits on this flow: its Pending must stay a
			// sign-up's alone (see passkeyChallengeOnly).
			return onramp.Errorf(onramp.EINVALID, "Passkeys sign in from the sign-in page.")
		}
		if pend.Passkey, err = json.Marshal(challenge); err != nil {
			return err
		}
		if f.Pending, err = json.Marshal(pend); err != nil {
			return err
		}
		return saveFlow(ctx, st, f)
	})
	if err != nil {
		return nil, fmt.Errorf("auth: begin passkey login: %w", err)
	}
	return assertion, nil
}

// passkeyChallengeOnly reports whether a flow's Pending holds just a
// passkey challenge, not a sign-up in waiting. BeginPasskeyLogin never
// adds a challenge to a flow with a sign-up, so a challenge means none.
func passkeyChallengeOnly(f *Flow) bool {
	p, err := pendingOf(f)
	return err == nil && p.Passkey != nil
}

// FinishPasskeyLoginParams is the authenticator's answer to
// navigator.credentials.get, as the JSON of the PublicKeyCredential.
type FinishPasskeyLoginParams struct {
	FlowRef  string
	Response json.RawMessage
	Info     RequestInfo
}

var errBadPasskey = onramp.Errorf(onramp.EUNAUTHORIZED, "That passkey could not sign you in. Try again, or sign in another way.")

// FinishPasskeyLogin checks a passkey's answer to the flow's challenge.
// The account is the one whose WebAuthn handle the passkey returned. A
// passkey that verified its user signs in at AAL2 with no further step;
// one that did not counts as a first factor. A signature counter that
// fails to move forward marks the passkey as possibly cloned and refuses
// it from then on.
func (s *Accounts) FinishPasskeyLogin(ctx context.Context, p FinishPasskeyLoginParams) (*Step, error) {
	wa, err := s.webAuthn()
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
	pend, err := pendingOf(f)
	if err != nil {
		return nil, err
	}
	var challenge webauthn.SessionData
	if len(pend.Passkey) == 0 || json.Unmarshal(pend.Passkey, &challenge) != nil {
		return nil, onramp.Errorf(onramp.EINVALID, "Start the passkey sign-in again.")
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(p.Response)
	if err != nil {
		return nil, s.passkeyFailed(ctx, f, nil, "unreadable", p.Info)
	}
	var acc *Account
	var stored *Passkey
	user, cred, err := wa.ValidatePasskeyLogin(func(rawID, handle []byte) (webauthn.User, error) {
		a, err := s.cfg.Read.AccountByWebAuthnHandle(ctx, handle)
		if err != nil {
			return nil, err
		}
		keys, err := s.cfg.Read.PasskeysOf(ctx, a.PersonID)
		if err != nil {
			return nil, err
		}
		id := base64.RawURLEncoding.EncodeToString(rawID)
		for _, k := range keys {
			if k.ID == id {
				stored = k
			}
		}
		acc = a
		return newPasskeyUser(a, keys)
	}, challenge, parsed)
	if err != nil || user == nil || stored == nil {
		s.cfg.Log.InfoContext(ctx, "passkey sign-in refused", "err", err)
		return nil, s.passkeyFailed(ctx, f, acc, "not_verified", p.Info)
	}
	if acc.Status != AccountActive {
		return nil, s.passkeyFailed(ctx, f, acc, "account_disabled", p.Info)
	}
	now := s.cfg.Clock.Now()
	uv := parsed.Response.AuthenticatorData.Flags.HasUserVerified()
	used := *stored
	used.SignCount, used.CloneWarning, used.LastUsedAt = cred.Authenticator.SignCount, cred.Authenticator.CloneWarning, &now
	used.Flags = uint8(parsed.Response.AuthenticatorData.Flags)
	var step *Step
	err = s.cfg.InTx(ctx, func(st TxStore) error {
		f, err := s.flow(ctx, st, p.FlowRef)
		if err != nil {
			return err
		}
		pend, err := pendingOf(f)
		if err != nil {
			return err
		}
		var again webauthn.SessionData
		if json.Unmarshal(pend.Passkey, &again) != nil || again.Challenge != challenge.Challenge {
			// Another request finished with this challenge meanwhile.
			return errBadPasskey
		}
		if err := st.UpdatePasskeyUse(ctx, &used); err != nil {
			return err
		}
		pend.Passkey = nil
		if f.Pending, err = json.Marshal(pend); err != nil {
			return err
		}
		if used.CloneWarning {
			if err := saveFlow(ctx, st, f); err != nil {
				return err
			}
			return s.record(ctx, st, AuditEntry{ActorType: ActorAnonymous, Action: "auth.passkey_clone_warning", Outcome: OutcomeDenied, PersonID: acc.PersonID,
				ClientID: f.ClientID, IP: p.Info.IP, UserAgent: p.Info.UserAgent,
				Detail: jsonDetail(map[string]any{"passkey_id": used.ID, "stored_count": stored.SignCount, "presented_count": parsed.Response.AuthenticatorData.Counter})})
		}
		f.Email = acc.PrimaryEmail
		if err := s.firstFactorDone(ctx, st, f, acc.PersonID, amrHardwareKey); err != nil {
			return err
		}
		if uv {
			f.AMR, f.Step = appendAMR(f.AMR, amrUserVerified), StepDone
		}
		if err := saveFlow(ctx, st, f); err != nil {
			return err
		}
		step = &Step{FlowID: f.ID, Next: f.Step, Email: f.Email}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("auth: finish passkey login: %w", err)
	}
	if used.CloneWarning {
		return nil, s.passkeyFailed(ctx, f, acc, "clone_warning", p.Info)
	}
	return step, nil
}

// passkeyFailed counts a refused passkey against the IP (passkeys stay
// open to a locked-out email: a lockout must not shut the real user out)
// and records it.
func (s *Accounts) passkeyFailed(ctx context.Context, f *Flow, acc *Account, reason string, info RequestInfo) error {
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		if err := s.failed(ctx, st, info, ""); err != nil {
			return err
		}
		e := AuditEntry{ActorType: ActorAnonymous, Action: "auth.login_failed", Outcome: OutcomeFailure, ClientID: f.ClientID, IP: info.IP, UserAgent: info.UserAgent,
			Detail: jsonDetail(map[string]any{"method": "passkey", "reason": reason})}
		if acc != nil {
			e.PersonID = acc.PersonID
			if err := s.timeline(ctx, st, TimelineEvent{Event: "auth.login_failed", Subject: acc.Subject, Properties: map[string]any{"method": "passkey", "reason": reason}}); err != nil {
				return err
			}
		}
		return s.record(ctx, st, e)
	})
	if err != nil {
		return fmt.Errorf("auth: passkey sign-in: %w", err)
	}
	return errBadPasskey
}
