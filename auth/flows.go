package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/identity"
)

// Flow steps, as the hosted pages and the headless API show them.
const (
	StepEmail       = "email"        // asks for the email (and password, on sign-up)
	StepVerifyEmail = "verify_email" // a code or link was sent
	StepDone        = "done"         // proven; Complete makes the session
)

// Step is what a flow asks for next. Every answer that could reveal
// whether an email has an account is the same Step for every email.
type Step struct {
	FlowID string `json:"flow_id"`
	Next   string `json:"next"`
	Email  string `json:"email,omitempty"`
	// ReturnTo is where an upstream sign-in was asked to go afterwards
	// (UpstreamStart's ReturnTo, which the provider's redirect cannot
	// carry).
	ReturnTo string `json:"-"`
}

// StartFlowParams opens a flow.
type StartFlowParams struct {
	Kind string
	// AuthRequestID is the OIDC request the flow signs in for, if any.
	AuthRequestID string
	ClientID      string
	// AnonymousID is the browser's tracking id, whose history joins the
	// account once the email is proven.
	AnonymousID string
	// Lang is the language the pages chose (ui_locales, Accept-Language);
	// the flow's emails are written in it, English when emails have no
	// such language.
	Lang string
	Info RequestInfo
	// Deferred leaves the flow unwritten for as long as nothing changes
	// it: its state travels in the reference, under a MAC, and the first
	// step that needs the row (a code sent, a second factor due, a passkey
	// challenge, an upstream sign-in) creates it. Showing a sign-in form
	// then costs no commit, and a password sign-in that finishes at once
	// never writes the flow at all. For the hosted pages, whose cookie
	// holds the reference; a flow whose state would not fit one is stored
	// at once.
	Deferred bool
}

// StartFlow opens a flow and returns it with its secret, shown once: the
// browser keeps "<id>.<secret>" in a cookie (see FlowRef).
func (s *Accounts) StartFlow(ctx context.Context, p StartFlowParams) (*Flow, string, error) {
	switch p.Kind {
	case FlowSignIn, FlowSignUp, FlowRecovery:
	default:
		return nil, "", onramp.Errorf(onramp.EINVALID, "unknown flow kind %q", p.Kind)
	}
	if a, ok := identity.Normalize(identity.AnonymousID, p.AnonymousID); ok {
		p.AnonymousID = a
	} else {
		p.AnonymousID = ""
	}
	now := s.cfg.Clock.Now()
	secret := onramp.NewSecret("flw")
	f := &Flow{
		ID: onramp.NewID("flw"), SecretHash: hashToken(secret), Kind: p.Kind, AuthRequestID: p.AuthRequestID,
		ClientID: p.ClientID, AnonymousID: p.AnonymousID, Step: StepEmail, IP: p.Info.IP, CreatedAt: now, ExpiresAt: now.Add(flowLifetime),
		Lang: emailLanguage(p.Lang),
	}
	if p.Deferred {
		if ref, ok := s.deferredRef(f); ok {
			return f, ref, nil
		}
	}
	if err := s.cfg.InTx(ctx, func(st TxStore) error { return st.CreateFlow(ctx, f) }); err != nil {
		return nil, "", fmt.Errorf("auth: start flow: %w", err)
	}
	return f, f.ID + "." + secret, nil
}

var errFlowGone = onramp.Errorf(onramp.ENOTFOUND, "This sign-in attempt has expired. Please start again.")

// Flow returns the flow a browser's flow reference ("<id>.<secret>")
// names, checking the secret in constant time.
func (s *Accounts) Flow(ctx context.Context, ref string) (*Flow, error) {
	return s.flow(ctx, s.cfg.Read, ref)
}

func (s *Accounts) flow(ctx context.Context, st AccountStore, ref string) (*Flow, error) {
	id, secret, ok := strings.Cut(ref, ".")
	if !ok || id == "" || secret == "" {
		return nil, errFlowGone
	}
	f, err := st.FlowByID(ctx, id)
	if onramp.ErrorCode(err) == onramp.ENOTFOUND {
		// A row, once made, always wins over the reference's own state:
		// only a flow that was never written is read from its reference.
		if f := s.deferredFlow(id, secret); f != nil {
			return f, nil
		}
		return nil, errFlowGone
	}
	if err != nil {
		return nil, fmt.Errorf("auth: flow: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(f.SecretHash), []byte(hashToken(secret))) != 1 || !s.cfg.Clock.Now().Before(f.ExpiresAt) {
		return nil, errFlowGone
	}
	return f, nil
}

// pending is what a sign-up waits to write until the email is proven, or
// what an upstream sign-in keeps (upstream.go).
type pending struct {
	PasswordPHC string           `json:"password_phc,omitempty"`
	Traits      json.RawMessage  `json:"traits,omitempty"`
	Upstream    *upstreamPending `json:"upstream,omitempty"`
	// Passkey is the challenge (webauthn.SessionData) of a passkey
	// sign-in begun on the flow, spent by FinishPasskeyLogin.
	Passkey json.RawMessage `json:"passkey,omitempty"`
}

// SignUpParams is the sign-up form.
type SignUpParams struct {
	FlowRef  string
	Email    string
	Password string // optional: passwordless sign-up proves the email only
	// Traits the form asked for (name, company, …), as a JSON object.
	// Once the email is proven they fill only traits its person does not
	// have yet (newTraitsOnly).
	Traits json.RawMessage
	// CookieAnonymousID is set when the browser posted the recognised
	// form ("Signing up as …"), which does not ask what Onramp knows: the
	// tracking id of the browser's own cookie. The email and name that
	// form left out are taken again from that browser's person
	// (Prefill), never from the post, which the browser could alter to
	// name someone else. Not recognised (anymore), the post is taken as
	// it is.
	CookieAnonymousID string
	Info              RequestInfo
}

func normEmail(v string) (string, error) {
	e, ok := identity.Normalize(identity.Email, v)
	if !ok {
		return "", inField(FieldEmail, onramp.Errorf(onramp.EINVALID, "Enter a valid email address."))
	}
	return e, nil
}

// SignUp starts proving an email for a new account. Its answer is the
// same whether the email is unknown, known from events, or already an
// account (then the email carries a sign-in code instead, and proving it
// signs the visitor in: no duplicate).
func (s *Accounts) SignUp(ctx context.Context, p SignUpParams) (*Step, error) {
	if err := s.knownFields(ctx, &p); err != nil {
		return nil, err
	}
	email, err := normEmail(p.Email)
	if err != nil {
		return nil, err
	}
	if err := s.checkAttempt(ctx, p.Info, ""); err != nil {
		return nil, err
	}
	var pend pending
	if p.Password != "" {
		if err := CheckPassword(p.Password, email); err != nil {
			return nil, inField(FieldPassword, err)
		}
		// Hashed now, even if the email turns out to have an account and
		// the hash is thrown away: the answer takes the same time.
		phc, err := s.cfg.Hasher.Hash(ctx, NormalizePassword(p.Password))
		if err != nil {
			return nil, err
		}
		pend.PasswordPHC = phc
	}
	if len(p.Traits) > 0 {
		var obj map[string]any
		if json.Unmarshal(p.Traits, &obj) != nil {
			return nil, onramp.Errorf(onramp.EINVALID, "traits must be a JSON object")
		}
		pend.Traits = p.Traits
	}
	return s.sendProof(ctx, p.FlowRef, email, &pend, p.Info)
}

// SendCodeParams asks for a sign-in code by email.
type SendCodeParams struct {
	FlowRef string
	Email   string
	Info    RequestInfo
}

// SendEmailCode emails a sign-in code and link to an account's address,
// or, to an address without an account, a note that says how to sign up.
// The answer is the same either way.
func (s *Accounts) SendEmailCode(ctx context.Context, p SendCodeParams) (*Step, error) {
	email, err := normEmail(p.Email)
	if err != nil {
		return nil, err
	}
	if err := s.checkAttempt(ctx, p.Info, ""); err != nil {
		return nil, err
	}
	return s.sendProof(ctx, p.FlowRef, email, nil, p.Info)
}

// sendProof moves the flow to "verify_email" and queues the email that
// fits what the address is. signUp is nil for a sign-in.
func (s *Accounts) sendProof(ctx context.Context, ref, email string, signUp *pending, info RequestInfo) (*Step, error) {
	var step *Step
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		f, err := s.flow(ctx, st, ref)
		if err != nil {
			return err
		}
		acc, _, err := s.accountByEmail(ctx, st, email)
		if err != nil {
			return err
		}
		f.Email, f.Step = email, StepVerifyEmail
		f.Pending = nil
		if signUp != nil && acc == nil {
			f.Pending, _ = json.Marshal(signUp)
		}
		if err := saveFlow(ctx, st, f); err != nil {
			return err
		}
		step = &Step{FlowID: f.ID, Next: StepVerifyEmail, Email: email}
		return s.sendFitting(ctx, st, f, acc, info)
	})
	if err != nil {
		return nil, fmt.Errorf("auth: send code: %w", err)
	}
	return step, nil
}

// sendFitting queues the one email that fits the flow's address, within
// the send limits: a code to confirm the address for an upstream user
// waiting to be linked, a sign-in code to an account, a verification code
// to a sign-up in waiting (Pending holds one only then; a passkey
// challenge alone is not one), else a note on how to sign up.
func (s *Accounts) sendFitting(ctx context.Context, st TxStore, f *Flow, acc *Account, info RequestInfo) error {
	ok, err := s.allowSend(ctx, st, info, f.Email)
	if err != nil || !ok {
		return err
	}
	if provider := s.UpstreamLinkPending(f); provider != "" {
		personID := ""
		if acc != nil {
			personID = acc.PersonID
		}
		return s.sendCode(ctx, st, f, CodeVerifyEmail, personID, func(s *Accounts, lang, to, code, link string) Email {
			return linkEmail(s, provider, lang, to, code, link)
		})
	}
	switch {
	case acc != nil && f.Kind == FlowRecovery:
		return s.sendCode(ctx, st, f, CodeRecovery, acc.PersonID, recoveryEmail)
	case acc != nil:
		return s.sendCode(ctx, st, f, CodeSignIn, acc.PersonID, signInEmail)
	case len(f.Pending) > 0 && !passkeyChallengeOnly(f):
		return s.sendCode(ctx, st, f, CodeVerifyEmail, "", verifyEmail)
	default:
		return s.mail(ctx, st, s.noAccountEmail(f.Lang, f.Email))
	}
}

// ResendParams asks for a flow's email again.
type ResendParams struct {
	FlowRef string
	Info    RequestInfo
}

// ResendCode sends the flow's email again with a fresh code and link (the
// newest code is the one that counts). It keeps what a sign-up waits to
// write, which SendEmailCode, a sign-in, would drop. Its answer is the
// same whatever the address is, and the send limits apply.
func (s *Accounts) ResendCode(ctx context.Context, p ResendParams) (*Step, error) {
	if err := s.checkAttempt(ctx, p.Info, ""); err != nil {
		return nil, err
	}
	var step *Step
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		f, err := s.flow(ctx, st, p.FlowRef)
		if err != nil {
			return err
		}
		if f.Step != StepVerifyEmail || f.Email == "" {
			return onramp.Errorf(onramp.EINVALID, "There is no code to send again yet: enter your email first.")
		}
		acc, _, err := s.accountByEmail(ctx, st, f.Email)
		if err != nil {
			return err
		}
		step = &Step{FlowID: f.ID, Next: StepVerifyEmail, Email: f.Email}
		return s.sendFitting(ctx, st, f, acc, p.Info)
	})
	if err != nil {
		return nil, fmt.Errorf("auth: resend code: %w", err)
	}
	return step, nil
}

// newCode returns six random digits.
func newCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return fmt.Sprintf("%06d", n.Int64())
}

// sendCode issues a code and link for the flow's email and queues it.
func (s *Accounts) sendCode(ctx context.Context, st TxStore, f *Flow, purpose, personID string, compose func(s *Accounts, lang, to, code, link string) Email) error {
	now := s.cfg.Clock.Now()
	code, link := newCode(), onramp.NewSecret("lnk")
	c := &OneTimeCode{
		ID: onramp.NewID("otc"), FlowID: f.ID, Purpose: purpose, Email: f.Email, PersonID: personID,
		CodeHash: macString(s.keys.code, f.ID, code), LinkHash: hashToken(link), MaxAttempts: codeMaxAttempts,
		ExpiresAt: now.Add(codeLifetime), CreatedAt: now,
	}
	if err := st.CreateCode(ctx, c); err != nil {
		return err
	}
	return s.mail(ctx, st, compose(s, f.Lang, f.Email, code, s.cfg.PublicURL+"/auth/magic/"+link))
}

var errBadCode = inField(FieldCode, onramp.Errorf(onramp.EINVALID, "That code is not right, or it has expired. Check the latest email or ask for a new code."))

// VerifyCodeParams is a code typed into the flow's page.
type VerifyCodeParams struct {
	FlowRef string
	Code    string
	Info    RequestInfo
}

// VerifyEmailCode redeems a code sent to the flow's email. A right code
// proves the email: a sign-up becomes an account (attached to the person
// who already owns the email, if any), a sign-in is done.
func (s *Accounts) VerifyEmailCode(ctx context.Context, p VerifyCodeParams) (*Step, error) {
	f, err := s.Flow(ctx, p.FlowRef)
	if err != nil {
		return nil, err
	}
	if err := s.checkAttempt(ctx, p.Info, f.Email); err != nil {
		return nil, err
	}
	code := strings.TrimSpace(strings.ReplaceAll(p.Code, " ", ""))
	var step *Step
	var wrong bool
	err = s.cfg.InTx(ctx, func(st TxStore) error {
		f, err := s.flow(ctx, st, p.FlowRef)
		if err != nil {
			return err
		}
		c, err := latestCodeFor(ctx, st, f)
		if err != nil {
			return err
		}
		if c == nil {
			wrong = true
			return nil
		}
		now := s.cfg.Clock.Now()
		if c.UsedAt != nil || !now.Before(c.ExpiresAt) || c.Attempts >= c.MaxAttempts {
			wrong = true
			return nil
		}
		if subtle.ConstantTimeCompare([]byte(macString(s.keys.code, f.ID, code)), []byte(c.CodeHash)) != 1 {
			wrong = true
			_, err := st.IncrementCodeAttempts(ctx, c.ID)
			return err
		}
		used, err := st.UseCode(ctx, c.ID, now)
		if err != nil || !used {
			wrong = !used
			return err
		}
		step, err = s.proveEmail(ctx, st, f, "email_code", p.Info)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("auth: verify code: %w", err)
	}
	if wrong {
		if err := s.cfg.InTx(ctx, func(st TxStore) error {
			if err := s.failed(ctx, st, p.Info, f.Email); err != nil {
				return err
			}
			return s.record(ctx, st, AuditEntry{ActorType: ActorAnonymous, Action: "auth.code_failed", Outcome: OutcomeFailure, IP: p.Info.IP, UserAgent: p.Info.UserAgent, ClientID: f.ClientID})
		}); err != nil {
			return nil, fmt.Errorf("auth: verify code: %w", err)
		}
		return nil, errBadCode
	}
	return step, nil
}

// LinkParams redeems an emailed link. The browser that opens it may not be
// the one that asked for it; it gets the session either way.
type LinkParams struct {
	Token string
	Info  RequestInfo
}

// RedeemLink proves an email by its link and returns the flow reference
// this browser continues with (a fresh secret for the same flow).
func (s *Accounts) RedeemLink(ctx context.Context, p LinkParams) (*Step, string, error) {
	if err := s.checkAttempt(ctx, p.Info, ""); err != nil {
		return nil, "", err
	}
	var step *Step
	var ref string
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		c, err := st.CodeByLinkHash(ctx, hashToken(p.Token))
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			return errBadLink
		}
		if err != nil {
			return err
		}
		now := s.cfg.Clock.Now()
		if c.UsedAt != nil || !now.Before(c.ExpiresAt) || (c.Purpose != CodeSignIn && c.Purpose != CodeVerifyEmail && c.Purpose != CodeRecovery) {
			return errBadLink
		}
		f, err := st.FlowByID(ctx, c.FlowID)
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			return errBadLink
		}
		if err != nil {
			return err
		}
		// The flow moved on to another address since this link was sent:
		// the link proves the old one, not the flow's.
		if c.Email != f.Email {
			return errBadLink
		}
		if used, err := st.UseCode(ctx, c.ID, now); err != nil || !used {
			if err == nil {
				err = errBadLink
			}
			return err
		}
		// The flow gets a new secret: whoever holds the link now holds the
		// flow. The tab that asked keeps its old reference, now dead.
		secret := onramp.NewSecret("flw")
		f.SecretHash = hashToken(secret)
		ref = f.ID + "." + secret
		step, err = s.proveEmail(ctx, st, f, "magic_link", p.Info)
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("auth: redeem link: %w", err)
	}
	return step, ref, nil
}

var errBadLink = onramp.Errorf(onramp.EINVALID, "This link has expired or was used already. Ask for a new one.")

// latestCodeFor is the newest sign-in or verification code sent to the
// flow's current email, nil when there is none. A code sent to an address
// the flow had before never counts: a visitor who asks for a code to their
// own address and then switches the flow to someone else's must not prove
// the other address with it.
func latestCodeFor(ctx context.Context, st AccountStore, f *Flow) (*OneTimeCode, error) {
	var best *OneTimeCode
	for _, purpose := range []string{CodeSignIn, CodeVerifyEmail, CodeRecovery} {
		c, err := st.LatestCode(ctx, f.ID, purpose)
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			continue
		}
		if err != nil {
			return nil, err
		}
		if c.Email == f.Email && (best == nil || c.CreatedAt.After(best.CreatedAt)) {
			best = c
		}
	}
	return best, nil
}

// accountByEmail returns the account of the person who owns email, and
// that person's root id (empty when nobody owns it).
func (s *Accounts) accountByEmail(ctx context.Context, st TxStore, email string) (*Account, string, error) {
	ids, err := st.FindIdentifiers(ctx, []identity.Key{{Type: identity.Email, Value: email}})
	if err != nil || len(ids) == 0 {
		return nil, "", err
	}
	ps, err := st.PersonsByID(ctx, []string{ids[0].PersonID})
	if err != nil || len(ps) == 0 {
		return nil, "", err
	}
	members, err := st.PersonsWithRoot(ctx, ps[0].RootID)
	if err != nil {
		return nil, "", err
	}
	acc, err := st.AccountOf(ctx, members)
	if onramp.ErrorCode(err) == onramp.ENOTFOUND {
		return nil, ps[0].RootID, nil
	}
	if err != nil {
		return nil, "", err
	}
	return acc, ps[0].RootID, nil
}

// proveEmail runs inside the transaction that spent a code or link: the
// flow's email is now proven.
func (s *Accounts) proveEmail(ctx context.Context, st TxStore, f *Flow, method string, info RequestInfo) (*Step, error) {
	acc, root, err := s.accountByEmail(ctx, st, f.Email)
	if err != nil {
		return nil, err
	}
	if f.Kind == FlowRecovery {
		if acc != nil {
			if err := st.SetVerified(ctx, []identity.Key{{Type: identity.Email, Value: f.Email}}); err != nil {
				return nil, err
			}
		}
		return s.proveRecovery(ctx, st, f, acc, method)
	}
	if acc == nil {
		acc, err = s.createAccount(ctx, st, f, root, info)
		if err != nil {
			return nil, err
		}
	} else if err := st.SetVerified(ctx, []identity.Key{{Type: identity.Email, Value: f.Email}}); err != nil {
		return nil, err
	}
	if acc.Status != AccountActive {
		return nil, onramp.Errorf(onramp.EFORBIDDEN, "This account is disabled.")
	}
	if err := s.succeeded(ctx, st, f.Email); err != nil {
		return nil, err
	}
	// An upstream user waited for this proof: link it now. The sign-in
	// is the provider's (the code only proved the address).
	if pend, err := pendingOf(f); err != nil {
		return nil, err
	} else if up := pend.Upstream; up != nil && up.Subject != "" {
		if err := s.linkUpstream(ctx, st, f, acc, up, "email_code", info); err != nil {
			return nil, err
		}
		method = "upstream:" + up.Provider
	}
	f.Pending = nil
	if err := s.firstFactorDone(ctx, st, f, acc.PersonID, method); err != nil {
		return nil, err
	}
	if err := saveFlow(ctx, st, f); err != nil {
		return nil, err
	}
	return &Step{FlowID: f.ID, Next: f.Step, Email: f.Email}, nil
}

func appendAMR(amr []string, m string) []string {
	for _, x := range amr {
		if x == m {
			return amr
		}
	}
	return append(amr, m)
}

// createAccount makes the account of a just-proven email: on the person
// who owns it (root, the email's root person), or a new one (root empty).
// What the sign-up typed fills only the traits that person lacks.
func (s *Accounts) createAccount(ctx context.Context, st TxStore, f *Flow, root string, info RequestInfo) (*Account, error) {
	var pend pending
	if len(f.Pending) > 0 {
		if err := json.Unmarshal(f.Pending, &pend); err != nil {
			return nil, fmt.Errorf("auth: pending sign-up: %w", err)
		}
	}
	traits, err := newTraitsOnly(ctx, st, root, pend.Traits)
	if err != nil {
		return nil, err
	}
	pend.Traits = traits
	subject := onramp.NewID("usr")
	att, err := s.cfg.Identity.Attach(ctx, st, identity.AttachParams{Email: f.Email, AnonymousID: f.AnonymousID, Subject: subject, Traits: pend.Traits})
	if err != nil {
		return nil, err
	}
	now := s.cfg.Clock.Now()
	handle := make([]byte, 32)
	_, _ = rand.Read(handle)
	acc := &Account{PersonID: att.PersonID, Subject: subject, WebAuthnHandle: handle, Status: AccountActive, PrimaryEmail: f.Email, CreatedAt: now, UpdatedAt: now}
	if err := st.CreateAccount(ctx, acc); err != nil {
		return nil, err
	}
	if pend.PasswordPHC != "" {
		if err := st.SetPassword(ctx, acc.PersonID, pend.PasswordPHC, now); err != nil {
			return nil, err
		}
	}
	if err := s.record(ctx, st, AuditEntry{ActorType: ActorPerson, ActorID: acc.PersonID, Action: "auth.signed_up", PersonID: acc.PersonID, ClientID: f.ClientID,
		IP: info.IP, UserAgent: info.UserAgent, Detail: jsonDetail(map[string]any{"recognized": att.Recognized})}); err != nil {
		return nil, err
	}
	for _, ev := range []TimelineEvent{
		{Event: "auth.signed_up", Properties: map[string]any{"recognized": att.Recognized, "client_id": f.ClientID}},
		{Event: "auth.email_verified", Properties: map[string]any{"email": f.Email}},
	} {
		ev.Subject, ev.AnonymousID = subject, f.AnonymousID
		if err := s.timeline(ctx, st, ev); err != nil {
			return nil, err
		}
	}
	return acc, nil
}

func jsonDetail(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// enqueueJSON queues an outbox job with v as its payload.
func (s *Accounts) enqueueJSON(ctx context.Context, st AccountStore, kind string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return st.EnqueueOutbox(ctx, &OutboxJob{Kind: kind, Payload: b, RunAt: s.cfg.Clock.Now()})
}
