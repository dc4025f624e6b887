package auth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/oauth2"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/identity"
)

// Sign-in through an upstream identity provider (docs/design/auth.md §2
// "Upstream OIDC"). The protocol — discovery, the code exchange, checking
// the ID token — is an UpstreamClient's (package upstream); the rules here
// decide what a provider's answer may do:
//
//   - a known link (provider, upstream subject) signs its account in;
//   - a verified email from a provider trusted with emails proves the
//     address like a redeemed code: the account of that address, or a new
//     one on the person who owns it (identity.Attach), gets the link;
//   - any other email proves nothing: Onramp sends its own code to the
//     address and links only once it is redeemed. Otherwise a provider
//     that lets users type any email (Microsoft's nOAuth) would hand out
//     other people's accounts.

// StepUpstream is the step of a flow waiting for the provider's callback.
const StepUpstream = "upstream"

// UpstreamIdentity is who the provider says signed in. Subject is the
// provider's stable user id; Email and EmailVerified are its claims, proof
// of nothing until the rules decide they are.
type UpstreamIdentity struct {
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
}

// UpstreamAuthRequest is what goes into the provider's authorization URL.
type UpstreamAuthRequest struct {
	RedirectURI string
	State       string
	Nonce       string
	// Verifier is the PKCE code verifier; its S256 challenge is sent.
	Verifier string
}

// UpstreamExchange redeems the code the provider sent back. The client
// must check the ID token's signature, issuer, audience, expiry and that
// its nonce is Nonce.
type UpstreamExchange struct {
	RedirectURI string
	Code        string
	Verifier    string
	Nonce       string
}

// UpstreamClient speaks one provider's protocol.
type UpstreamClient interface {
	AuthCodeURL(r UpstreamAuthRequest) string
	Exchange(ctx context.Context, x UpstreamExchange) (*UpstreamIdentity, error)
}

// UpstreamConnector makes the client of a configured provider (for OpenID
// Connect, after discovery, which it may cache).
type UpstreamConnector interface {
	Connect(ctx context.Context, p *UpstreamProvider) (UpstreamClient, error)
}

// upstreamPending is what a flow keeps about an upstream sign-in: until
// the callback, the request's secrets; after a callback whose email is not
// proof, the upstream user waiting to be linked once the email is.
type upstreamPending struct {
	Provider    string `json:"provider"`
	DisplayName string `json:"display_name,omitempty"`
	StateHash   string `json:"state_hash,omitempty"`
	Nonce       string `json:"nonce,omitempty"`
	Verifier    string `json:"verifier,omitempty"`
	// ReturnTo is kept for the pages: where to go once signed in.
	ReturnTo string `json:"return_to,omitempty"`
	Subject  string `json:"subject,omitempty"`
}

func pendingOf(f *Flow) (*pending, error) {
	var p pending
	if len(f.Pending) == 0 {
		return &p, nil
	}
	if err := json.Unmarshal(f.Pending, &p); err != nil {
		return nil, fmt.Errorf("auth: flow pending: %w", err)
	}
	return &p, nil
}

// UpstreamLinkPending names the provider whose user a flow waits to link
// until its email code is redeemed ("" when it waits for no link); the
// code page says why it asks.
func (s *Accounts) UpstreamLinkPending(f *Flow) string {
	p, err := pendingOf(f)
	if err != nil || p.Upstream == nil || p.Upstream.Subject == "" {
		return ""
	}
	return p.Upstream.DisplayName
}

// UpstreamStartParams begins a sign-in at a provider from a flow.
type UpstreamStartParams struct {
	FlowRef  string
	Provider string
	ReturnTo string
	Info     RequestInfo
}

var errUpstreamOff = onramp.Errorf(onramp.ENOTFOUND, "Signing in with other providers is not set up on this server.")

// UpstreamStart returns the provider's authorization URL for the flow: a
// fresh state (bound to this flow, so to the browser holding its cookie),
// nonce and PKCE verifier, kept in the flow until the callback.
func (s *Accounts) UpstreamStart(ctx context.Context, p UpstreamStartParams) (string, error) {
	if s.cfg.Upstream == nil {
		return "", errUpstreamOff
	}
	if err := s.checkAttempt(ctx, p.Info, ""); err != nil {
		return "", err
	}
	prov, err := s.upstreamProvider(ctx, s.cfg.Read, p.Provider)
	if err != nil {
		return "", fmt.Errorf("auth: upstream start: %w", err)
	}
	client, err := s.cfg.Upstream.Connect(ctx, prov)
	if err != nil {
		return "", fmt.Errorf("auth: upstream start: %w", upstreamUnavailable(prov, err))
	}
	state, nonce, verifier := onramp.NewSecret("ust"), onramp.NewSecret("usn"), oauth2.GenerateVerifier()
	err = s.cfg.InTx(ctx, func(st TxStore) error {
		f, err := s.flow(ctx, st, p.FlowRef)
		if err != nil {
			return err
		}
		if f.Kind != FlowSignIn && f.Kind != FlowSignUp {
			return onramp.Errorf(onramp.EINVALID, "Only a sign-in or sign-up can go through another provider.")
		}
		pend := &pending{Upstream: &upstreamPending{Provider: prov.Name, DisplayName: prov.DisplayName, StateHash: hashToken(state),
			Nonce: nonce, Verifier: verifier, ReturnTo: p.ReturnTo}}
		f.Email, f.PersonID, f.Step = "", "", StepUpstream
		f.Pending, _ = json.Marshal(pend)
		return saveFlow(ctx, st, f)
	})
	if err != nil {
		return "", fmt.Errorf("auth: upstream start: %w", err)
	}
	return client.AuthCodeURL(UpstreamAuthRequest{RedirectURI: prov.CallbackURL(s.cfg.PublicURL), State: state, Nonce: nonce, Verifier: verifier}), nil
}

// UpstreamCallbackParams is the provider's redirect back: a code and the
// state, or an error.
type UpstreamCallbackParams struct {
	FlowRef  string
	Provider string
	State    string
	Code     string
	// Error is the provider's error parameter (access_denied, …).
	Error string
	Info  RequestInfo
}

var (
	errUpstreamState  = onramp.Errorf(onramp.EFORBIDDEN, "This sign-in answer does not belong to a sign-in started in this browser. Please start again.")
	errUpstreamNoMail = onramp.Errorf(onramp.EINVALID,
		"The provider did not tell us an email address, so we cannot sign you in with it. Sign in with your email instead.")
	errUpstreamTaken = onramp.Errorf(onramp.ECONFLICT, "This account at the provider is connected to another account already.")
)

// UpstreamCallback finishes a sign-in at a provider. The state must be the
// one this flow sent (the flow is the browser's); it is spent before the
// code is redeemed, so an answer works once. Then the linking rules of
// this file's head decide: done (Complete makes the session), or a code
// sent to the address (Next is StepVerifyEmail). ReturnTo of the answer is
// what UpstreamStart was given.
func (s *Accounts) UpstreamCallback(ctx context.Context, p UpstreamCallbackParams) (*Step, error) {
	if s.cfg.Upstream == nil {
		return nil, errUpstreamOff
	}
	if err := s.checkAttempt(ctx, p.Info, ""); err != nil {
		return nil, err
	}
	var up *upstreamPending
	var flowID, clientID string
	refused := ""
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		f, err := s.flow(ctx, st, p.FlowRef)
		if errors.Is(err, errFlowGone) {
			// No flow in this browser (expired, finished, or never
			// started here: a replayed or planted answer).
			refused = "no_flow"
			return nil
		}
		if err != nil {
			return err
		}
		flowID, clientID = f.ID, f.ClientID
		pend, err := pendingOf(f)
		if err != nil {
			return err
		}
		up = pend.Upstream
		switch {
		case f.Step != StepUpstream || up == nil || up.StateHash == "":
			refused = "no_pending_request"
		case up.Provider != p.Provider:
			refused = "other_provider"
		case subtle.ConstantTimeCompare([]byte(hashToken(p.State)), []byte(up.StateHash)) != 1:
			refused = "state_mismatch"
		}
		if refused != "" {
			return nil
		}
		// Spent now, whatever the exchange brings: a replayed or raced
		// answer finds no state.
		f.Step, f.Pending = StepEmail, nil
		return saveFlow(ctx, st, f)
	})
	if err != nil {
		return nil, fmt.Errorf("auth: upstream callback: %w", err)
	}
	fail := func(reason string, answer error) (*Step, error) {
		if err := s.upstreamFailed(ctx, p, clientID, reason); err != nil {
			return nil, err
		}
		return nil, answer
	}
	switch refused {
	case "":
	case "no_flow":
		return fail(refused, errFlowGone)
	default:
		return fail(refused, errUpstreamState)
	}
	if p.Error != "" {
		return fail("provider_error:"+truncateText(p.Error, 60), onramp.Errorf(onramp.EUNAUTHORIZED, "Signing in with %s did not finish (%s). You can try again, or sign in another way.", up.DisplayName, truncateText(p.Error, 60)))
	}
	prov, err := s.upstreamProvider(ctx, s.cfg.Read, p.Provider)
	if err != nil {
		return nil, fmt.Errorf("auth: upstream callback: %w", err)
	}
	client, err := s.cfg.Upstream.Connect(ctx, prov)
	if err != nil {
		return nil, fmt.Errorf("auth: upstream callback: %w", upstreamUnavailable(prov, err))
	}
	who, err := client.Exchange(ctx, UpstreamExchange{RedirectURI: prov.CallbackURL(s.cfg.PublicURL), Code: p.Code, Verifier: up.Verifier, Nonce: up.Nonce})
	if err != nil {
		s.cfg.Log.WarnContext(ctx, "upstream sign-in refused", "provider", prov.Name, "err", err)
		if onramp.ErrorCode(err) == onramp.EUNAVAILABLE {
			return nil, fmt.Errorf("auth: upstream callback: %w", err)
		}
		return fail("exchange_refused", onramp.Errorf(onramp.EUNAUTHORIZED, "%s did not confirm this sign-in. Please try again.", prov.DisplayName))
	}
	if who.Subject == "" {
		return fail("no_subject", onramp.Errorf(onramp.EUNAUTHORIZED, "%s did not say who signed in. Please try again.", prov.DisplayName))
	}
	var step *Step
	err = s.cfg.InTx(ctx, func(st TxStore) error {
		f, err := st.FlowByID(ctx, flowID)
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			return errFlowGone
		}
		if err != nil {
			return err
		}
		step, err = s.upstreamSignIn(ctx, st, f, prov, who, p.Info)
		return err
	})
	if errors.Is(err, errFlowGone) {
		return nil, errFlowGone
	}
	if err != nil {
		if code := onramp.ErrorCode(err); code == onramp.EINVALID || code == onramp.ECONFLICT || code == onramp.EFORBIDDEN {
			return fail("refused:"+code, err)
		}
		return nil, fmt.Errorf("auth: upstream callback: %w", err)
	}
	step.ReturnTo = up.ReturnTo
	return step, nil
}

// upstreamSignIn applies the linking rules to who, inside the transaction
// that finishes the flow.
func (s *Accounts) upstreamSignIn(ctx context.Context, st TxStore, f *Flow, prov *UpstreamProvider, who *UpstreamIdentity, info RequestInfo) (*Step, error) {
	method := "upstream:" + prov.Name
	link, err := st.UpstreamLink(ctx, prov.Name, who.Subject)
	switch onramp.ErrorCode(err) {
	case "":
		acc, err := s.accountOfPerson(ctx, st, link.PersonID)
		if err != nil {
			return nil, err
		}
		if acc.Status != AccountActive {
			return nil, onramp.Errorf(onramp.EFORBIDDEN, "This account is disabled.")
		}
		if err := st.TouchUpstreamLink(ctx, prov.Name, who.Subject, s.cfg.Clock.Now()); err != nil {
			return nil, err
		}
		return s.upstreamDone(ctx, st, f, acc, method)
	case onramp.ENOTFOUND:
	default:
		return nil, err
	}
	email, ok := identity.Normalize(identity.Email, who.Email)
	if !ok {
		return nil, errUpstreamNoMail
	}
	pend := &pending{Upstream: &upstreamPending{Provider: prov.Name, DisplayName: prov.DisplayName, Subject: who.Subject}}
	acc, root, err := s.accountByEmail(ctx, st, email)
	if err != nil {
		return nil, err
	}
	if acc == nil && root == "" && strings.TrimSpace(who.Name) != "" {
		// A new person: the provider's name is all Onramp knows of them.
		// A known person keeps the name they gave Onramp.
		pend.Traits, _ = json.Marshal(map[string]string{"name": strings.TrimSpace(who.Name)})
	}
	f.Email, f.Pending = email, mustJSON(pend)
	if !(prov.TrustEmail && who.EmailVerified) {
		// Not proof: the address gets an Onramp code, and proveEmail
		// makes the link once it is redeemed.
		f.Step = StepVerifyEmail
		if err := saveFlow(ctx, st, f); err != nil {
			return nil, err
		}
		if err := s.record(ctx, st, AuditEntry{ActorType: ActorAnonymous, Action: "auth.upstream_email_unproven", ClientID: f.ClientID, IP: info.IP, UserAgent: info.UserAgent,
			Detail: jsonDetail(map[string]any{"provider": prov.Name, "email_verified": who.EmailVerified, "trusted": prov.TrustEmail})}); err != nil {
			return nil, err
		}
		if err := s.sendFitting(ctx, st, f, acc, info); err != nil {
			return nil, err
		}
		return &Step{FlowID: f.ID, Next: StepVerifyEmail, Email: email}, nil
	}
	// The provider's word proves the address: the same as a redeemed code.
	if acc == nil {
		if acc, err = s.createAccount(ctx, st, f, root, info); err != nil {
			return nil, err
		}
	} else if err := st.SetVerified(ctx, []identity.Key{{Type: identity.Email, Value: email}}); err != nil {
		return nil, err
	}
	if acc.Status != AccountActive {
		return nil, onramp.Errorf(onramp.EFORBIDDEN, "This account is disabled.")
	}
	if err := s.linkUpstream(ctx, st, f, acc, pend.Upstream, "provider", info); err != nil {
		return nil, err
	}
	return s.upstreamDone(ctx, st, f, acc, method)
}

// upstreamDone records a provider's sign-in as the flow's first factor:
// an account with an authenticator app still stops at the "mfa" step.
func (s *Accounts) upstreamDone(ctx context.Context, st TxStore, f *Flow, acc *Account, method string) (*Step, error) {
	f.Email, f.Pending = acc.PrimaryEmail, nil
	if err := s.firstFactorDone(ctx, st, f, acc.PersonID, method); err != nil {
		return nil, err
	}
	if err := saveFlow(ctx, st, f); err != nil {
		return nil, err
	}
	return &Step{FlowID: f.ID, Next: f.Step, Email: f.Email}, nil
}

// linkUpstream links the flow's upstream user to acc, once its email is
// proven (proof says how: "provider" or "email_code"). The same upstream
// user linked to another account already is refused; linked to this one,
// it is simply kept.
func (s *Accounts) linkUpstream(ctx context.Context, st TxStore, f *Flow, acc *Account, up *upstreamPending, proof string, info RequestInfo) error {
	now := s.cfg.Clock.Now()
	err := st.CreateUpstreamLink(ctx, &UpstreamLink{Provider: up.Provider, Subject: up.Subject, PersonID: acc.PersonID, Email: f.Email, CreatedAt: now, LastUsedAt: &now})
	if onramp.ErrorCode(err) == onramp.ECONFLICT {
		link, lerr := st.UpstreamLink(ctx, up.Provider, up.Subject)
		if lerr != nil {
			return lerr
		}
		if other, aerr := s.accountOfPerson(ctx, st, link.PersonID); aerr == nil && other.PersonID == acc.PersonID {
			return nil
		}
		return errUpstreamTaken
	}
	if err != nil {
		return err
	}
	if err := s.record(ctx, st, AuditEntry{ActorType: ActorPerson, ActorID: acc.PersonID, Action: "auth.account_linked", PersonID: acc.PersonID, ClientID: f.ClientID,
		IP: info.IP, UserAgent: info.UserAgent, Detail: jsonDetail(map[string]any{"provider": up.Provider, "email_proof": proof})}); err != nil {
		return err
	}
	return s.timeline(ctx, st, TimelineEvent{Event: "auth.account_linked", Subject: acc.Subject, AnonymousID: f.AnonymousID,
		Properties: map[string]any{"provider": up.Provider, "email_proof": proof, "client_id": f.ClientID}})
}

// upstreamFailed counts a refused callback against the IP (a stream of
// forged answers is an attack) and writes the audit row.
func (s *Accounts) upstreamFailed(ctx context.Context, p UpstreamCallbackParams, clientID, reason string) error {
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		if err := s.failed(ctx, st, p.Info, ""); err != nil {
			return err
		}
		return s.record(ctx, st, AuditEntry{ActorType: ActorAnonymous, Action: "auth.login_failed", Outcome: OutcomeFailure, ClientID: clientID,
			IP: p.Info.IP, UserAgent: p.Info.UserAgent, Detail: jsonDetail(map[string]any{"method": "upstream:" + p.Provider, "reason": reason})})
	})
	if err != nil {
		return fmt.Errorf("auth: upstream callback: %w", err)
	}
	return nil
}

// accountOfPerson finds the account of the merge tree a person belongs to.
func (s *Accounts) accountOfPerson(ctx context.Context, st TxStore, personID string) (*Account, error) {
	ps, err := st.PersonsByID(ctx, []string{personID})
	if err != nil {
		return nil, err
	}
	members := []string{personID}
	if len(ps) > 0 {
		if members, err = st.PersonsWithRoot(ctx, ps[0].RootID); err != nil {
			return nil, err
		}
	}
	return st.AccountOf(ctx, members)
}

func upstreamUnavailable(p *UpstreamProvider, err error) error {
	if onramp.ErrorCode(err) != onramp.EINTERNAL {
		return err
	}
	// The client sees the message; the log sees the cause.
	return fmt.Errorf("%w (%v)", onramp.Errorf(onramp.EUNAVAILABLE, "%s cannot be reached right now. Try again later, or sign in another way.", p.DisplayName), err)
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs are marshalled here
	}
	return b
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// UpstreamLinks lists the providers a person's account is linked to.
func (s *Accounts) UpstreamLinks(ctx context.Context, personID string) ([]*UpstreamLink, error) {
	var out []*UpstreamLink
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		members := []string{personID}
		if ps, err := st.PersonsByID(ctx, members); err != nil {
			return err
		} else if len(ps) > 0 {
			if members, err = st.PersonsWithRoot(ctx, ps[0].RootID); err != nil {
				return err
			}
		}
		var err error
		out, err = st.UpstreamLinksOf(ctx, members)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("auth: upstream links: %w", err)
	}
	return out, nil
}

// UnlinkParams removes one of a person's links.
type UnlinkParams struct {
	PersonID string
	Provider string
	Subject  string
	Actor    AuditEntry
}

// UnlinkUpstream removes a link, unless it is the account's last way to
// sign in: a password, another link, or a code to the account's email
// must remain.
func (s *Accounts) UnlinkUpstream(ctx context.Context, p UnlinkParams) error {
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		acc, err := s.accountOfPerson(ctx, st, p.PersonID)
		if err != nil {
			return err
		}
		members := []string{acc.PersonID}
		if ps, err := st.PersonsByID(ctx, members); err == nil && len(ps) > 0 {
			if members, err = st.PersonsWithRoot(ctx, ps[0].RootID); err != nil {
				return err
			}
		}
		links, err := st.UpstreamLinksOf(ctx, members)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(links, func(l *UpstreamLink) bool { return l.Provider == p.Provider && l.Subject == p.Subject })
		if i < 0 {
			return onramp.Errorf(onramp.ENOTFOUND, "This account has no such connection.")
		}
		ways, err := s.signInWays(ctx, st, acc)
		if err != nil {
			return err
		}
		if ways+len(links)-1 == 0 {
			return onramp.Errorf(onramp.ECONFLICT, "This is the last way to sign in to your account, so it stays connected.")
		}
		if err := st.DeleteUpstreamLink(ctx, p.Provider, p.Subject); err != nil {
			return err
		}
		e := p.Actor
		e.Action, e.PersonID, e.Detail = "auth.account_unlinked", acc.PersonID, jsonDetail(map[string]any{"provider": p.Provider})
		if err := s.record(ctx, st, e); err != nil {
			return err
		}
		return s.timeline(ctx, st, TimelineEvent{Event: "auth.account_unlinked", Subject: acc.Subject, Properties: map[string]any{"provider": p.Provider}})
	})
	if err != nil {
		return fmt.Errorf("auth: unlink: %w", err)
	}
	return nil
}

// signInWays counts an account's ways to sign in other than its upstream
// links: a password, and a code sent to its email (open to every account
// that has one).
func (s *Accounts) signInWays(ctx context.Context, st TxStore, acc *Account) (int, error) {
	n := 0
	if acc.PrimaryEmail != "" {
		n++
	}
	switch _, err := st.PasswordOf(ctx, acc.PersonID); onramp.ErrorCode(err) {
	case "":
		n++
	case onramp.ENOTFOUND:
	default:
		return 0, err
	}
	return n, nil
}
