package auth_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/identity"
	"github.com/onramp-dev/onramp/sqlite"
)

// The upstream sign-in rules over a real SQLite store. The provider is a
// stand-in UpstreamClient that behaves as an IdP does at the protocol's
// edge: the code it hands out names one user and carries the nonce of the
// authorization request it answered (package upstream and the e2e test
// drive real OpenID Connect and a GitHub fake).

type fakeIdP struct {
	mu sync.Mutex
	// next is who signs in at the next authorization request.
	next  auth.UpstreamIdentity
	codes map[string]issued
	// lastURL is the authorization URL the rules made.
	lastURL string
}

type issued struct {
	who   auth.UpstreamIdentity
	nonce string
}

func (f *fakeIdP) Connect(context.Context, *auth.UpstreamProvider) (auth.UpstreamClient, error) {
	return f, nil
}

func (f *fakeIdP) AuthCodeURL(r auth.UpstreamAuthRequest) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := url.Values{"state": {r.State}, "nonce": {r.Nonce}, "redirect_uri": {r.RedirectURI}, "code_challenge": {"…"}}
	f.lastURL = "https://idp.test/authorize?" + q.Encode()
	return f.lastURL
}

// login is the browser's trip through the IdP: the user signs in there,
// the IdP redirects back with a code and the state.
func (f *fakeIdP) login(t *testing.T, authURL string) (code, state string) {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.codes == nil {
		f.codes = map[string]issued{}
	}
	code = onramp.NewSecret("code")
	f.codes[code] = issued{who: f.next, nonce: u.Query().Get("nonce")}
	return code, u.Query().Get("state")
}

var errBadNonce = errors.New("id token nonce does not match")

func (f *fakeIdP) Exchange(_ context.Context, x auth.UpstreamExchange) (*auth.UpstreamIdentity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	is, ok := f.codes[x.Code]
	if !ok {
		return nil, onramp.Errorf(onramp.EUNAUTHORIZED, "invalid_grant")
	}
	delete(f.codes, x.Code)
	if is.nonce != x.Nonce {
		return nil, errBadNonce
	}
	who := is.who
	return &who, nil
}

type upRig struct {
	*rig
	idp *fakeIdP
}

func newUpRig(t *testing.T) *upRig {
	t.Helper()
	idp := &fakeIdP{}
	r := newRigWith(t, nil, func(c *auth.Config) { c.Upstream = idp })
	ctx := context.Background()
	for _, p := range []auth.AddUpstreamParams{
		{Preset: "google", ClientID: "g", ClientSecret: "gs"},
		{Preset: "microsoft", ClientID: "m", ClientSecret: "ms"},
	} {
		if _, err := r.acc.AddUpstreamProvider(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	return &upRig{rig: r, idp: idp}
}

// startUpstream begins a sign-in at provider on a new flow.
func (u *upRig) startUpstream(provider string, who auth.UpstreamIdentity) (ref, code, state string) {
	u.t.Helper()
	ref = u.start(auth.FlowSignIn, "")
	authURL, err := u.acc.UpstreamStart(context.Background(), auth.UpstreamStartParams{FlowRef: ref, Provider: provider, ReturnTo: "/somewhere", Info: u.info})
	if err != nil {
		u.t.Fatalf("UpstreamStart: %v", err)
	}
	u.idp.next = who
	code, state = u.idp.login(u.t.(*testing.T), authURL)
	return ref, code, state
}

func (u *upRig) callback(ref, provider, code, state string) (*auth.Step, error) {
	return u.acc.UpstreamCallback(context.Background(), auth.UpstreamCallbackParams{FlowRef: ref, Provider: provider, Code: code, State: state, Info: u.info})
}

// signInVia runs a whole upstream sign-in that needs no code.
func (u *upRig) signInVia(provider string, who auth.UpstreamIdentity) *auth.Grant {
	u.t.Helper()
	ref, code, state := u.startUpstream(provider, who)
	step, err := u.callback(ref, provider, code, state)
	if err != nil || step.Next != auth.StepDone || step.ReturnTo != "/somewhere" {
		u.t.Fatalf("UpstreamCallback = %+v, %v", step, err)
	}
	g, err := u.acc.Complete(context.Background(), ref, u.info)
	if err != nil {
		u.t.Fatalf("Complete: %v", err)
	}
	u.deliver()
	return g
}

func (u *upRig) links(personID string) []string {
	u.t.Helper()
	ls, err := u.acc.UpstreamLinks(context.Background(), personID)
	if err != nil {
		u.t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		out = append(out, l.Provider+"/"+l.Subject)
	}
	return out
}

func loggedInMethod(tl *timeline, subject string) []string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var out []string
	for _, ev := range tl.evs {
		if ev.Subject == subject && ev.Event == "auth.logged_in" {
			out = append(out, ev.Properties["method"].(string))
		}
	}
	return out
}

func TestUpstreamTrustedEmailNewPerson(t *testing.T) {
	u := newUpRig(t)
	g := u.signInVia("google", auth.UpstreamIdentity{Subject: "g-1", Email: "Ada@Example.com", EmailVerified: true, Name: "Ada Lovelace"})
	if g.Account.PrimaryEmail != "ada@example.com" || g.Session.AMR[0] != "upstream:google" || g.Session.AAL != 1 {
		t.Fatalf("grant = %+v, session %+v", g.Account, g.Session)
	}
	if got := u.links(g.Account.PersonID); !slices.Equal(got, []string{"google/g-1"}) {
		t.Errorf("links = %v", got)
	}
	p, err := u.ids.Person(context.Background(), g.Account.PersonID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(p.Person.Traits), `"name":"Ada Lovelace"`) {
		t.Errorf("traits = %s, want the provider's name on a new person", p.Person.Traits)
	}
	for _, id := range p.Identifiers {
		if id.Type == identity.Email && !id.Verified {
			t.Errorf("email %s not verified", id.Value)
		}
	}
	if got := strings.Join(u.tl.names(g.Account.Subject), ","); got != "auth.signed_up,auth.email_verified,auth.account_linked,auth.logged_in" {
		t.Errorf("timeline = %s", got)
	}
	if got := loggedInMethod(u.tl, g.Account.Subject); !slices.Equal(got, []string{"upstream:google"}) {
		t.Errorf("logged_in methods = %v", got)
	}
	entries, _ := u.acc.Audit(context.Background(), auth.AuditQuery{PersonID: g.Account.PersonID})
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action)
	}
	if !slices.Contains(actions, "auth.account_linked") || !slices.Contains(actions, "auth.logged_in") {
		t.Errorf("audit = %v", actions)
	}

	// The second sign-in goes by the link, whatever the email says now.
	g2 := u.signInVia("google", auth.UpstreamIdentity{Subject: "g-1", Email: "changed@example.com", EmailVerified: true})
	if g2.Account.PersonID != g.Account.PersonID || g2.Session.ID == g.Session.ID {
		t.Fatalf("second sign-in: %+v", g2.Account)
	}
	ls, _ := u.acc.UpstreamLinks(context.Background(), g.Account.PersonID)
	if len(ls) != 1 || ls[0].LastUsedAt == nil {
		t.Errorf("link after reuse = %+v", ls)
	}
	if n := strings.Count(strings.Join(u.tl.names(g.Account.Subject), ","), "auth.account_linked"); n != 1 {
		t.Errorf("%d account_linked events, want 1", n)
	}
}

func TestUpstreamTrustedEmailJoinsExistingAccount(t *testing.T) {
	u := newUpRig(t)
	first := u.signUp("ada@example.com", goodPassword, "")
	g := u.signInVia("google", auth.UpstreamIdentity{Subject: "g-ada", Email: "ada@example.com", EmailVerified: true, Name: "Someone Else"})
	if g.Account.PersonID != first.Account.PersonID || g.Account.Subject != first.Account.Subject {
		t.Fatalf("linked to %s, want the existing account %s", g.Account.PersonID, first.Account.PersonID)
	}
	p, _ := u.ids.Person(context.Background(), g.Account.PersonID)
	if strings.Contains(string(p.Person.Traits), "Someone Else") {
		t.Errorf("a known person's name was replaced by the provider's: %s", p.Person.Traits)
	}
	// An unverified email is no proof even from a trusted provider.
	ref, code, state := u.startUpstream("google", auth.UpstreamIdentity{Subject: "g-other", Email: "ada@example.com", EmailVerified: false})
	step, err := u.callback(ref, "google", code, state)
	if err != nil || step.Next != auth.StepVerifyEmail {
		t.Fatalf("unverified email: %+v, %v", step, err)
	}
}

func TestUpstreamTrustedEmailKnownPerson(t *testing.T) {
	u := newUpRig(t)
	known := u.observe(`{"email":"bo@example.com","company":"Acme","name":"Bo"}`, identity.Key{Type: identity.Email, Value: "bo@example.com"})
	g := u.signInVia("google", auth.UpstreamIdentity{Subject: "g-bo", Email: "bo@example.com", EmailVerified: true, Name: "Robert"})
	if g.Account.PersonID != known {
		t.Fatalf("account on %s, want the known person %s", g.Account.PersonID, known)
	}
	p, _ := u.ids.Person(context.Background(), known)
	if !strings.Contains(string(p.Person.Traits), `"name":"Bo"`) || !strings.Contains(string(p.Person.Traits), "Acme") {
		t.Errorf("traits = %s", p.Person.Traits)
	}
}

// TestUpstreamUntrustedEmailNeedsCode is nOAuth: a Microsoft user whose
// tenant says their email is the victim's. Nothing is linked and nobody
// is signed in until the victim's mailbox confirms.
func TestUpstreamUntrustedEmailNeedsCode(t *testing.T) {
	u := newUpRig(t)
	ctx := context.Background()
	victim := u.signUp("victim@example.com", goodPassword, "")
	ref, code, state := u.startUpstream("microsoft", auth.UpstreamIdentity{Subject: "ms-attacker", Email: "victim@example.com", EmailVerified: true})
	step, err := u.callback(ref, "microsoft", code, state)
	if err != nil || step.Next != auth.StepVerifyEmail || step.Email != "victim@example.com" {
		t.Fatalf("callback = %+v, %v", step, err)
	}
	if _, err := u.acc.Complete(ctx, ref, u.info); err == nil {
		t.Fatal("signed in without the code")
	}
	if got := u.links(victim.Account.PersonID); len(got) != 0 {
		t.Fatalf("linked before the code: %v", got)
	}
	f, err := u.acc.Flow(ctx, ref)
	if err != nil || u.acc.UpstreamLinkPending(f) != "Microsoft" {
		t.Fatalf("pending link = %q, %v", u.acc.UpstreamLinkPending(f), err)
	}
	u.deliver()
	mails := u.mail.to("victim@example.com")
	last := mails[len(mails)-1]
	if !strings.Contains(last.Text, "Microsoft") || !strings.Contains(last.Subject, "confirmation code") {
		t.Errorf("email = %q\n%s", last.Subject, last.Text)
	}
	// Guessing fails like any code.
	if _, err := u.acc.VerifyEmailCode(ctx, auth.VerifyCodeParams{FlowRef: ref, Code: "000000", Info: u.info}); onramp.ErrorCode(err) != onramp.EINVALID {
		t.Fatalf("wrong code: %v", err)
	}
	// Whoever holds the mailbox can confirm: then the link is made.
	c, _ := u.lastCode("victim@example.com")
	step, err = u.acc.VerifyEmailCode(ctx, auth.VerifyCodeParams{FlowRef: ref, Code: c, Info: u.info})
	if err != nil || step.Next != auth.StepDone {
		t.Fatalf("VerifyEmailCode = %+v, %v", step, err)
	}
	g, err := u.acc.Complete(ctx, ref, u.info)
	if err != nil || g.Account.PersonID != victim.Account.PersonID || !slices.Equal(g.Session.AMR, []string{"upstream:microsoft"}) {
		t.Fatalf("Complete = %+v, %v", g, err)
	}
	if got := u.links(victim.Account.PersonID); !slices.Equal(got, []string{"microsoft/ms-attacker"}) {
		t.Errorf("links = %v", got)
	}
	u.deliver()
	u.tl.mu.Lock()
	var linked *auth.TimelineEvent
	for i := range u.tl.evs {
		if u.tl.evs[i].Event == "auth.account_linked" {
			linked = &u.tl.evs[i]
		}
	}
	u.tl.mu.Unlock()
	if linked == nil || linked.Properties["email_proof"] != "email_code" || linked.Properties["provider"] != "microsoft" {
		t.Errorf("account_linked = %+v", linked)
	}
	// And from now on the link signs in without a code.
	g2 := u.signInVia("microsoft", auth.UpstreamIdentity{Subject: "ms-attacker", Email: "victim@example.com"})
	if g2.Account.PersonID != victim.Account.PersonID {
		t.Errorf("second sign-in on %s", g2.Account.PersonID)
	}
}

// TestUpstreamUntrustedNewAddress: an address nobody has gets an account
// only through the code, then linked.
func TestUpstreamUntrustedNewAddress(t *testing.T) {
	u := newUpRig(t)
	ctx := context.Background()
	ref, code, state := u.startUpstream("microsoft", auth.UpstreamIdentity{Subject: "ms-new", Email: "new@example.com", Name: "New Person"})
	if step, err := u.callback(ref, "microsoft", code, state); err != nil || step.Next != auth.StepVerifyEmail {
		t.Fatalf("callback = %+v, %v", step, err)
	}
	_, link := u.lastCode("new@example.com")
	step, ref2, err := u.acc.RedeemLink(ctx, auth.LinkParams{Token: link, Info: u.info})
	if err != nil || step.Next != auth.StepDone {
		t.Fatalf("RedeemLink = %+v, %v", step, err)
	}
	g, err := u.acc.Complete(ctx, ref2, u.info)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.links(g.Account.PersonID); !slices.Equal(got, []string{"microsoft/ms-new"}) {
		t.Errorf("links = %v", got)
	}
	p, _ := u.ids.Person(ctx, g.Account.PersonID)
	if !strings.Contains(string(p.Person.Traits), "New Person") {
		t.Errorf("traits = %s", p.Person.Traits)
	}
}

func TestUpstreamStateNonceAndReplay(t *testing.T) {
	u := newUpRig(t)
	ctx := context.Background()
	who := auth.UpstreamIdentity{Subject: "g-1", Email: "ada@example.com", EmailVerified: true}
	ref, code, state := u.startUpstream("google", who)

	// Another browser (another flow) cannot use this answer.
	other := u.start(auth.FlowSignIn, "")
	if _, err := u.callback(other, "google", code, state); onramp.ErrorCode(err) != onramp.EFORBIDDEN {
		t.Errorf("answer on another browser's flow: %v", err)
	}
	// A tampered state, or an answer arriving at another provider's
	// callback, is refused and leaves the request open.
	if _, err := u.callback(ref, "google", code, state+"x"); onramp.ErrorCode(err) != onramp.EFORBIDDEN {
		t.Errorf("tampered state: %v", err)
	}
	if _, err := u.callback(ref, "microsoft", code, state); onramp.ErrorCode(err) != onramp.EFORBIDDEN {
		t.Errorf("other provider's callback: %v", err)
	}
	step, err := u.callback(ref, "google", code, state)
	if err != nil || step.Next != auth.StepDone {
		t.Fatalf("the real answer: %+v, %v", step, err)
	}
	// The state is spent: replaying the answer fails.
	if _, err := u.callback(ref, "google", code, state); onramp.ErrorCode(err) != onramp.EFORBIDDEN {
		t.Errorf("replayed answer: %v", err)
	}
	if _, err := u.acc.Complete(ctx, ref, u.info); err != nil {
		t.Fatal(err)
	}

	// A nonce that is not the request's (a token made for another
	// request) is refused by the client; nobody is signed in.
	ref, _, _ = u.startUpstream("google", who)
	authURL := u.idp.lastURL
	tampered := strings.Replace(authURL, "nonce=", "nonce=evil", 1)
	code, state = u.idp.login(t, tampered)
	if _, err := u.callback(ref, "google", code, state); onramp.ErrorCode(err) != onramp.EUNAUTHORIZED {
		t.Errorf("wrong nonce: %v", err)
	}
	if _, err := u.acc.Complete(ctx, ref, u.info); err == nil {
		t.Error("signed in with a wrong nonce")
	}

	// The provider's own refusal.
	ref, _, state = u.startUpstream("google", who)
	if _, err := u.acc.UpstreamCallback(ctx, auth.UpstreamCallbackParams{FlowRef: ref, Provider: "google", State: state, Error: "access_denied", Info: u.info}); onramp.ErrorCode(err) != onramp.EUNAUTHORIZED {
		t.Errorf("access_denied: %v", err)
	}
	failures, _ := u.acc.Audit(ctx, auth.AuditQuery{Action: "auth.login_failed"})
	if len(failures) != 6 {
		t.Errorf("%d login_failed audit rows, want 6 (other flow, state, provider, replay, nonce, denied)", len(failures))
	}
	// A provider that is not configured.
	if _, err := u.acc.UpstreamStart(ctx, auth.UpstreamStartParams{FlowRef: u.start(auth.FlowSignIn, ""), Provider: "nope", Info: u.info}); onramp.ErrorCode(err) != onramp.ENOTFOUND {
		t.Errorf("unknown provider: %v", err)
	}
}

func TestUpstreamWithoutEmailRefused(t *testing.T) {
	u := newUpRig(t)
	ref, code, state := u.startUpstream("google", auth.UpstreamIdentity{Subject: "g-nomail"})
	if _, err := u.callback(ref, "google", code, state); onramp.ErrorCode(err) != onramp.EINVALID {
		t.Fatalf("no email: %v", err)
	}
}

func TestUnlinkUpstream(t *testing.T) {
	u := newUpRig(t)
	ctx := context.Background()
	g := u.signInVia("google", auth.UpstreamIdentity{Subject: "g-1", Email: "ada@example.com", EmailVerified: true})
	actor := auth.AuditEntry{ActorType: auth.ActorPerson, ActorID: g.Account.PersonID}
	if err := u.acc.UnlinkUpstream(ctx, auth.UnlinkParams{PersonID: g.Account.PersonID, Provider: "google", Subject: "nope", Actor: actor}); onramp.ErrorCode(err) != onramp.ENOTFOUND {
		t.Errorf("unlink a link the account does not have: %v", err)
	}
	// An account without an email or password keeps its last link.
	acc := *g.Account
	acc.PrimaryEmail = ""
	if err := u.db.InTx(ctx, func(q *sqlite.Queries) error { return q.UpdateAccount(ctx, &acc) }); err != nil {
		t.Fatal(err)
	}
	if err := u.acc.UnlinkUpstream(ctx, auth.UnlinkParams{PersonID: g.Account.PersonID, Provider: "google", Subject: "g-1", Actor: actor}); onramp.ErrorCode(err) != onramp.ECONFLICT {
		t.Fatalf("unlink the last way in: %v", err)
	}
	// With the email back, a code to it is a way in: the link can go.
	if err := u.db.InTx(ctx, func(q *sqlite.Queries) error { return q.UpdateAccount(ctx, g.Account) }); err != nil {
		t.Fatal(err)
	}
	if err := u.acc.UnlinkUpstream(ctx, auth.UnlinkParams{PersonID: g.Account.PersonID, Provider: "google", Subject: "g-1", Actor: actor}); err != nil {
		t.Fatal(err)
	}
	if got := u.links(g.Account.PersonID); len(got) != 0 {
		t.Errorf("links after unlink = %v", got)
	}
	u.deliver()
	if !slices.Contains(u.tl.names(g.Account.Subject), "auth.account_unlinked") {
		t.Errorf("timeline = %v", u.tl.names(g.Account.Subject))
	}
	// Unlinked, the same upstream user is a stranger again: its verified
	// email links it anew to the account of that address.
	g2 := u.signInVia("google", auth.UpstreamIdentity{Subject: "g-1", Email: "ada@example.com", EmailVerified: true})
	if g2.Account.PersonID != g.Account.PersonID {
		t.Errorf("relinked to %s", g2.Account.PersonID)
	}
}

func TestUpstreamOff(t *testing.T) {
	r := newRig(t, nil)
	if _, err := r.acc.UpstreamStart(context.Background(), auth.UpstreamStartParams{FlowRef: r.start(auth.FlowSignIn, ""), Provider: "google", Info: r.info}); onramp.ErrorCode(err) != onramp.ENOTFOUND {
		t.Errorf("UpstreamStart without a connector: %v", err)
	}
}
