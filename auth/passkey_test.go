package auth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/internal/softauthn"
)

// Passkey ceremonies end to end against the real go-webauthn library,
// driven by the software authenticator of internal/softauthn, on real
// SQLite. The rig's public URL is https://id.example.com.

func (r *rig) authenticator(uv bool) *softauthn.Authenticator {
	return softauthn.New("https://id.example.com", "id.example.com", uv)
}

// addPasskey registers a passkey from the session g and returns the new
// grant (the session rotates) and the credential.
func (r *rig) addPasskey(g *auth.Grant, a *softauthn.Authenticator, name string) (*auth.PasskeyAdded, *softauthn.Credential) {
	r.t.Helper()
	ctx := context.Background()
	cer, err := r.acc.BeginPasskeyRegistration(ctx, auth.SessionParams{Session: g.Session, Info: r.info})
	if err != nil {
		r.t.Fatalf("BeginPasskeyRegistration: %v", err)
	}
	resp, cred, err := a.Create(cer.Options)
	if err != nil {
		r.t.Fatalf("authenticator create: %v", err)
	}
	added, err := r.acc.FinishPasskeyRegistration(ctx, auth.FinishPasskeyRegistrationParams{Session: g.Session, Ref: cer.Ref, Name: name, Response: resp, Info: r.info})
	if err != nil {
		r.t.Fatalf("FinishPasskeyRegistration: %v", err)
	}
	return added, cred
}

// passkeySignIn runs a discoverable passkey sign-in on a new flow, typing
// no email, and returns the flow and the step (or the error).
func (r *rig) passkeySignIn(a *softauthn.Authenticator, c *softauthn.Credential) (string, *auth.Step, error) {
	r.t.Helper()
	ctx := context.Background()
	ref := r.start(auth.FlowSignIn, "")
	opts, err := r.acc.BeginPasskeyLogin(ctx, auth.PasskeyLoginParams{FlowRef: ref, Info: r.info})
	if err != nil {
		r.t.Fatalf("BeginPasskeyLogin: %v", err)
	}
	resp, err := a.Get(opts, c)
	if err != nil {
		r.t.Fatalf("authenticator get: %v", err)
	}
	step, err := r.acc.FinishPasskeyLogin(ctx, auth.FinishPasskeyLoginParams{FlowRef: ref, Response: resp, Info: r.info})
	return ref, step, err
}

func TestPasskeyRegisterAndSignIn(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	g := r.signUp("ada@example.com", goodPassword, "")
	cer, err := r.acc.BeginPasskeyRegistration(ctx, auth.SessionParams{Session: g.Session, Info: r.info})
	if err != nil {
		t.Fatal(err)
	}
	// What the page hands to navigator.credentials.create.
	var opts softauthn.CreationOptions
	if err := softauthn.Decode(cer.Options, &opts); err != nil {
		t.Fatal(err)
	}
	pk := opts.PublicKey
	if pk.RP.ID != "id.example.com" || pk.RP.Name != "Acme" || pk.User.ID != base64.RawURLEncoding.EncodeToString(g.Account.WebAuthnHandle) || pk.User.Name != "ada@example.com" ||
		pk.AuthenticatorSelection.ResidentKey != "required" || pk.AuthenticatorSelection.RequireResidentKey == nil || !*pk.AuthenticatorSelection.RequireResidentKey ||
		len(pk.ExcludeCredentials) != 0 || len(pk.Challenge) < 22 {
		t.Fatalf("creation options = %+v", pk)
	}
	a := r.authenticator(true)
	resp, cred, err := a.Create(cer.Options)
	if err != nil {
		t.Fatal(err)
	}
	added, err := r.acc.FinishPasskeyRegistration(ctx, auth.FinishPasskeyRegistrationParams{Session: g.Session, Ref: cer.Ref, Name: " Laptop ", Response: resp, Info: r.info})
	if err != nil {
		t.Fatal(err)
	}
	p := added.Passkey
	if p.ID != base64.RawURLEncoding.EncodeToString(cred.ID) || p.Name != "Laptop" || !p.UserVerified() || !p.Synced() || p.AttestationFormat != "none" ||
		!slices.Equal(p.Transports, []string{"internal"}) || p.PersonID != g.Account.PersonID {
		t.Errorf("passkey = %+v", p)
	}
	// The ceremony is spent.
	if _, err := r.acc.FinishPasskeyRegistration(ctx, auth.FinishPasskeyRegistrationParams{Session: added.Grant.Session, Ref: cer.Ref, Response: resp, Info: r.info}); onramp.ErrorCode(err) != onramp.EINVALID {
		t.Errorf("the same ceremony twice: %v", err)
	}
	// Adding a passkey rotated the session.
	if _, err := r.acc.CheckSession(ctx, g.Secret); err == nil {
		t.Error("the session the passkey was added from still works")
	}
	if added.Grant.Session.AAL != 2 || !slices.Contains(added.Grant.Session.AMR, "hwk") {
		t.Errorf("rotated session = %+v, want AAL2 with hwk", added.Grant.Session)
	}
	// The same authenticator cannot register twice: the options exclude it.
	cer2, err := r.acc.BeginPasskeyRegistration(ctx, auth.SessionParams{Session: added.Grant.Session, Info: r.info})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Create(cer2.Options); !errors.Is(err, softauthn.ErrExcluded) {
		t.Errorf("registering the same authenticator again: %v, want it excluded", err)
	}

	// Sign in with no email: the passkey names the account.
	r.clock.Add(time.Minute)
	ref := r.start(auth.FlowSignIn, "")
	assertion, err := r.acc.BeginPasskeyLogin(ctx, auth.PasskeyLoginParams{FlowRef: ref, Info: r.info})
	if err != nil {
		t.Fatal(err)
	}
	var ro softauthn.RequestOptions
	_ = softauthn.Decode(assertion, &ro)
	if len(ro.PublicKey.AllowCredentials) != 0 || ro.PublicKey.RPID != "id.example.com" || ro.PublicKey.UserVerification != "preferred" {
		t.Errorf("request options = %+v, want a discoverable login (no allow list)", ro.PublicKey)
	}
	got, err := a.Get(assertion, cred)
	if err != nil {
		t.Fatal(err)
	}
	step, err := r.acc.FinishPasskeyLogin(ctx, auth.FinishPasskeyLoginParams{FlowRef: ref, Response: got, Info: r.info})
	if err != nil || step.Next != auth.StepDone || step.Email != "ada@example.com" {
		t.Fatalf("FinishPasskeyLogin = %+v, %v", step, err)
	}
	// The same answer again: the challenge is spent.
	if _, err := r.acc.FinishPasskeyLogin(ctx, auth.FinishPasskeyLoginParams{FlowRef: ref, Response: got, Info: r.info}); err == nil {
		t.Error("a passkey answer worked twice")
	}
	gp, err := r.acc.Complete(ctx, ref, r.info)
	if err != nil || gp.Account.PersonID != g.Account.PersonID || gp.Session.AAL != 2 || !slices.Equal(gp.Session.AMR, []string{"hwk", "user"}) {
		t.Fatalf("Complete = %+v, %v; want Ada at AAL2 with hwk+user", gp, err)
	}
	keys, _ := r.acc.Passkeys(ctx, g.Account.PersonID)
	if len(keys) != 1 || keys[0].SignCount != 1 || keys[0].LastUsedAt == nil || !keys[0].LastUsedAt.Equal(r.clock.Now()) || keys[0].CloneWarning {
		t.Errorf("passkey after sign-in = %+v, want sign count 1 and last used now", keys[0])
	}
	r.deliver()
	names := r.tl.names(g.Account.Subject)
	if !slices.Contains(names, "auth.passkey_added") {
		t.Errorf("timeline = %v, want auth.passkey_added", names)
	}
	r.tl.mu.Lock()
	last := r.tl.evs[len(r.tl.evs)-1]
	r.tl.mu.Unlock()
	if last.Event != "auth.logged_in" || last.Properties["method"] != "passkey" || last.Properties["mfa"] != true {
		t.Errorf("last timeline event = %+v, want a passkey login with mfa", last)
	}
}

// A user-verified passkey is a whole second factor: an account with an
// authenticator app needs no code after it. One that did not verify the
// user is a first factor like a password.
func TestPasskeyUserVerificationAndSecondFactor(t *testing.T) {
	r := newRig(t, nil)
	secret, _, g := r.withTOTP("ada@example.com")
	_, withUV := r.addPasskey(g, r.authenticator(true), "phone")
	if _, step, err := r.passkeySignIn(r.authenticator(true), withUV); err != nil || step.Next != auth.StepDone {
		t.Fatalf("UV passkey with TOTP on = %+v, %v; want done", step, err)
	}
	g2 := r.signUp("bob@example.com", goodPassword, "")
	noUV := r.authenticator(false)
	added, key := r.addPasskey(g2, noUV, "key")
	if added.Passkey.UserVerified() || added.Grant.Session.AAL != 1 {
		t.Errorf("a passkey without UV: %+v, session AAL %d; want no UV and AAL1", added.Passkey, added.Grant.Session.AAL)
	}
	ref, step, err := r.passkeySignIn(noUV, key)
	if err != nil || step.Next != auth.StepDone {
		t.Fatalf("passkey without UV, no app = %+v, %v", step, err)
	}
	gb, err := r.acc.Complete(context.Background(), ref, r.info)
	if err != nil || gb.Session.AAL != 1 || !slices.Equal(gb.Session.AMR, []string{"hwk"}) {
		t.Fatalf("Complete = %+v, %v; want AAL1 with hwk", gb, err)
	}
	// Ada's authenticator without UV (same key, UV off): the mfa step.
	a := r.authenticator(false)
	a.Creds = []*softauthn.Credential{withUV}
	ref, step, err = r.passkeySignIn(a, withUV)
	if err != nil || step.Next != auth.StepMFA {
		t.Fatalf("passkey without UV, app on = %+v, %v; want the mfa step", step, err)
	}
	if _, err := r.acc.VerifySecondFactor(context.Background(), auth.SecondFactorParams{FlowRef: ref, Code: codeAt(t, secret, r.clock.Now()), Info: r.info}); err != nil {
		t.Fatal(err)
	}
}

func TestPasskeyCloneWarning(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	g := r.signUp("ada@example.com", goodPassword, "")
	a := r.authenticator(true)
	_, cred := r.addPasskey(g, a, "")
	for range 3 {
		if _, _, err := r.passkeySignIn(a, cred); err != nil {
			t.Fatal(err)
		}
	}
	// A copy of the key, with its own counter, behind the original.
	cred.Counter = 1
	if _, _, err := r.passkeySignIn(a, cred); onramp.ErrorCode(err) != onramp.EUNAUTHORIZED {
		t.Fatalf("a sign count that went back: %v, want refused", err)
	}
	keys, _ := r.acc.Passkeys(ctx, g.Account.PersonID)
	if !keys[0].CloneWarning || keys[0].SignCount != 3 {
		t.Errorf("passkey = %+v, want clone_warning and the count kept at 3", keys[0])
	}
	// Once flagged, even a counter ahead again is refused.
	cred.Counter = 100
	if _, _, err := r.passkeySignIn(a, cred); onramp.ErrorCode(err) != onramp.EUNAUTHORIZED {
		t.Fatalf("a flagged passkey: %v, want refused", err)
	}
	if a, _ := r.acc.Audit(ctx, auth.AuditQuery{PersonID: g.Account.PersonID, Action: "auth.passkey_clone_warning"}); len(a) != 2 {
		t.Errorf("clone warnings audited: %d, want 2", len(a))
	}
}

func TestPasskeyRenameRemove(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	g := r.signUp("ada@example.com", goodPassword, "")
	a := r.authenticator(true)
	added, cred := r.addPasskey(g, a, "Laptop")
	ses := added.Grant.Session
	eve := r.signUp("eve@example.com", goodPassword, "")
	id := added.Passkey.ID
	if err := r.acc.RenamePasskey(ctx, auth.PasskeyParams{Session: eve.Session, ID: id, Name: "mine", Info: r.info}); onramp.ErrorCode(err) != onramp.ENOTFOUND {
		t.Errorf("renaming someone else's passkey: %v, want not found", err)
	}
	if _, err := r.acc.RemovePasskey(ctx, auth.PasskeyParams{Session: eve.Session, ID: id, Info: r.info}); onramp.ErrorCode(err) != onramp.ENOTFOUND {
		t.Errorf("removing someone else's passkey: %v, want not found", err)
	}
	if err := r.acc.RenamePasskey(ctx, auth.PasskeyParams{Session: ses, ID: id, Name: "Work laptop", Info: r.info}); err != nil {
		t.Fatal(err)
	}
	if keys, _ := r.acc.Passkeys(ctx, g.Account.PersonID); keys[0].Name != "Work laptop" {
		t.Errorf("name = %q", keys[0].Name)
	}
	g2, err := r.acc.RemovePasskey(ctx, auth.PasskeyParams{Session: ses, ID: id, Info: r.info})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.acc.CheckSession(ctx, added.Grant.Secret); err == nil {
		t.Error("the session the passkey was removed from still works")
	}
	if g2.Session.ID == ses.ID {
		t.Error("removing a passkey kept the session id")
	}
	// The browser may still offer it: it is an unknown passkey now.
	if _, _, err := r.passkeySignIn(a, cred); onramp.ErrorCode(err) != onramp.EUNAUTHORIZED {
		t.Errorf("sign-in with a removed passkey: %v, want refused", err)
	}
	r.deliver()
	if names := r.tl.names(g.Account.Subject); !slices.Contains(names, "auth.passkey_removed") {
		t.Errorf("timeline = %v", names)
	}
}

func TestPasskeyAnswerForAnotherOrigin(t *testing.T) {
	r := newRig(t, nil)
	g := r.signUp("ada@example.com", goodPassword, "")
	a := r.authenticator(true)
	_, cred := r.addPasskey(g, a, "")
	// A phishing page at another origin relays our challenge.
	phish := &softauthn.Authenticator{Origin: "https://id.example.com.evil.test", RPID: "id.example.com", UV: true, Creds: a.Creds}
	if _, _, err := r.passkeySignIn(phish, cred); onramp.ErrorCode(err) != onramp.EUNAUTHORIZED {
		t.Fatalf("an answer made for another origin: %v, want refused", err)
	}
	// A forged answer that is not JSON at all.
	ref := r.start(auth.FlowSignIn, "")
	if _, err := r.acc.BeginPasskeyLogin(context.Background(), auth.PasskeyLoginParams{FlowRef: ref, Info: r.info}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.acc.FinishPasskeyLogin(context.Background(), auth.FinishPasskeyLoginParams{FlowRef: ref, Response: json.RawMessage(`{"id":`), Info: r.info}); onramp.ErrorCode(err) != onramp.EUNAUTHORIZED {
		t.Errorf("a broken answer: %v", err)
	}
}

func TestPasskeysNeedAHostName(t *testing.T) {
	r := newRig(t, nil)
	acc := auth.NewAccounts(auth.Config{Read: r.db.Reader(), InTx: inTx(r.db), Identity: r.ids, Clock: r.clock, Log: slog.New(slog.DiscardHandler),
		Hasher: freeHasher{}, PublicURL: "http://127.0.0.1:8080"})
	if err := acc.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	if acc.PasskeysAvailable() {
		t.Error("passkeys offered on an IP address")
	}
	_, ref, _ := acc.StartFlow(context.Background(), auth.StartFlowParams{Kind: auth.FlowSignIn})
	if _, err := acc.BeginPasskeyLogin(context.Background(), auth.PasskeyLoginParams{FlowRef: ref}); onramp.ErrorCode(err) != onramp.EUNAVAILABLE {
		t.Errorf("BeginPasskeyLogin: %v, want unavailable", err)
	}
	if !r.acc.PasskeysAvailable() {
		t.Error("passkeys not offered on https://id.example.com")
	}
}

// A passkey challenge waiting in a sign-in flow is not a sign-up: asking
// for the email again still sends an unknown address the "no account"
// note, never a code that would create an account.
func TestPasskeyChallengeIsNotASignUp(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	ref := r.start(auth.FlowSignIn, "")
	if _, err := r.acc.SendEmailCode(ctx, auth.SendCodeParams{FlowRef: ref, Email: "nobody@example.com", Info: r.info}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.acc.BeginPasskeyLogin(ctx, auth.PasskeyLoginParams{FlowRef: ref, Info: r.info}); err != nil {
		t.Fatal(err)
	}
	r.clock.Add(time.Minute)
	if _, err := r.acc.ResendCode(ctx, auth.ResendParams{FlowRef: ref, Info: r.info}); err != nil {
		t.Fatal(err)
	}
	r.deliver()
	for _, m := range r.mail.to("nobody@example.com") {
		if m.Subject != "Sign-in attempt at Acme" {
			t.Errorf("email %q to an unknown address during a passkey sign-in, want only the no-account note", m.Subject)
		}
	}
	// A sign-up flow does not take a passkey challenge at all.
	signUp := r.start(auth.FlowSignUp, "")
	if _, err := r.acc.BeginPasskeyLogin(ctx, auth.PasskeyLoginParams{FlowRef: signUp, Info: r.info}); onramp.ErrorCode(err) != onramp.EINVALID {
		t.Errorf("passkey login on a sign-up flow: %v", err)
	}
}
