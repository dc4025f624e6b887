package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/internal/softauthn"
)

// The headless API's password recovery, second factor and passkey steps,
// driven as a site's JavaScript drives them, over real SQLite with the
// real OpenID Connect provider.

// timelineRecorder is the outbox's timeline sink in these tests: what
// the events part would put on people's timelines.
type timelineRecorder struct {
	mu  sync.Mutex
	evs []auth.TimelineEvent
}

func (tr *timelineRecorder) Track(_ context.Context, ev auth.TimelineEvent) error {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.evs = append(tr.evs, ev)
	return nil
}

// recordTimeline makes the stack's outbox deliver timeline events to a
// recorder, whose events timelineOf reads.
func (s *testStack) recordTimeline() *timelineRecorder {
	tr := &timelineRecorder{}
	s.outbox.Timeline = tr
	return tr
}

// of is the names of the events on a person's timeline so far.
func (tr *timelineRecorder) of(s *testStack, personID string) []string {
	s.t.Helper()
	s.mails("") // runs the outbox
	acc, err := s.accounts.AccountOfPerson(context.Background(), personID)
	if err != nil {
		s.t.Fatal(err)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var names []string
	for _, ev := range tr.evs {
		if ev.Subject == acc.Subject {
			names = append(names, ev.Event)
		}
	}
	return names
}

// step posts a flow step and decodes the answer: the next step, or the
// continue URL of a complete flow.
func (st *site) step(f startedFlow, path string, body any) (reply, string, string) {
	st.s.t.Helper()
	r := st.call("/api/auth/flows/"+f.FlowID+"/"+path, f.FlowSecret, body)
	var out struct {
		Next        string `json:"next"`
		ContinueURL string `json:"continue_url"`
	}
	if r.status == http.StatusOK {
		r.json(st.s.t, &out)
	}
	return r, out.Next, out.ContinueURL
}

// liveSession is a browser's Onramp session and its cookie secret.
type liveSession struct {
	*auth.Session
	secret string
}

// continueTo navigates a new browser to a continue URL and returns the
// browser's Onramp session, checking it lands at the site with a code.
func (st *site) continueTo(cont string) liveSession {
	st.s.t.Helper()
	t := st.s.t
	browser := st.s.navigator()
	resp := navigate(t, browser, cont)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), st.redirect+"?") || loc.Query().Get("code") == "" {
		t.Fatalf("continue ended with %d at %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, ck := range browser.Jar.Cookies(mustURL(st.s.url)) {
		if ck.Name == "onramp_session" {
			ses, err := st.s.accounts.CheckSession(context.Background(), ck.Value)
			if err != nil {
				t.Fatalf("the session of the continue URL: %v", err)
			}
			return liveSession{Session: ses, secret: ck.Value}
		}
	}
	t.Fatal("continue set no session cookie")
	return liveSession{}
}

// signedIn signs email up through the site and returns the live session.
func (st *site) signedIn(email string) liveSession {
	st.s.t.Helper()
	return st.continueTo(st.signUp(email))
}

// TestHeadlessRecovery: a recovery flow answers the same for an unknown
// email, a person known from tracking and an account; the emailed code
// works once; the new password completes the flow, signs every session
// out, and then works where the old one does not; the audit log and the
// timeline record the reset.
func TestHeadlessRecovery(t *testing.T) {
	s := newTestStackWith(t, stackOptions{oidc: true})
	tl := s.recordTimeline()
	st := s.site("Shop", shopOrigin)
	if r := s.track("/v1/identify", `{"userId":"u-known","traits":{"email":"known@example.com"}}`); r.status != http.StatusOK {
		t.Fatalf("identify: %d %s", r.status, r.body)
	}
	old := st.signedIn("ada@example.com")

	mask := regexp.MustCompile(`flw_[a-z0-9]+`)
	var first string
	for _, email := range []string{"unknown@example.com", "known@example.com", "ada@example.com"} {
		f := st.start("recovery")
		if strings.Join(f.Next, ",") != "recover" {
			t.Fatalf("a recovery flow offers %v", f.Next)
		}
		before := len(s.mails(email))
		r, next, _ := st.step(f, "recover", map[string]string{"email": email})
		body := r.status
		answer := mask.ReplaceAllString(strings.ReplaceAll(string(r.body), email, "EMAIL"), "X")
		if body != http.StatusOK || next != auth.StepVerifyEmail {
			t.Fatalf("recover %s = %d %s", email, r.status, r.body)
		}
		if first == "" {
			first = answer
		} else if answer != first {
			t.Errorf("recover %s answers %s; the first email got %s", email, answer, first)
		}
		if n := len(s.mails(email)) - before; n != 1 {
			t.Errorf("recover %s sent %d emails, want 1", email, n)
		}
	}
	if ms := s.mails("unknown@example.com"); strings.Contains(ms[0].Text, s.lastCode("ada@example.com")) {
		t.Error("the unknown address got a code")
	}

	f := st.start("recovery")
	st.step(f, "recover", map[string]string{"email": "ada@example.com"})
	code := s.lastCode("ada@example.com")
	if r, _, _ := st.step(f, "new-password", map[string]string{"password": "a fresh headless passphrase"}); r.status != http.StatusBadRequest {
		t.Fatalf("new-password before the code = %d %s", r.status, r.body)
	}
	if r, _, _ := st.step(f, "code/verify", map[string]string{"code": "000000"}); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"field":"code"`) {
		t.Fatalf("a wrong code = %d %s", r.status, r.body)
	}
	r, next, cont := st.step(f, "code/verify", map[string]string{"code": code})
	if r.status != http.StatusOK || next != auth.StepNewPassword || cont != "" {
		t.Fatalf("the right code = %d %s, want next new_password and no continue URL", r.status, r.body)
	}
	if r, _, _ := st.step(f, "code/verify", map[string]string{"code": code}); r.status != http.StatusBadRequest {
		t.Errorf("the code a second time = %d %s", r.status, r.body)
	}
	if _, err := s.accounts.CheckSession(t.Context(), old.secret); err != nil {
		t.Fatalf("proving the email alone ended the old session: %v", err)
	}
	if r, _, _ := st.step(f, "new-password", map[string]string{"password": "password"}); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"field":"password"`) {
		t.Fatalf("a weak new password = %d %s", r.status, r.body)
	}
	r, _, cont = st.step(f, "new-password", map[string]string{"password": "a fresh headless passphrase"})
	if r.status != http.StatusOK || !strings.HasPrefix(cont, s.url+"/auth/continue?ticket=tkt_") || r.header.Get("Access-Control-Allow-Origin") != shopOrigin || r.header.Get("Set-Cookie") != "" {
		t.Fatalf("new-password = %d %v %s", r.status, r.header, r.body)
	}
	if r, _, _ := st.step(f, "new-password", map[string]string{"password": "yet another passphrase 9"}); r.status != http.StatusBadRequest {
		t.Errorf("a second new password on the same flow = %d %s", r.status, r.body)
	}
	if _, err := s.accounts.CheckSession(t.Context(), old.secret); err == nil {
		t.Error("the session from before the reset still works")
	}
	ses := st.continueTo(cont)
	if ses.PersonID != old.PersonID {
		t.Errorf("the reset signed in %s, want %s", ses.PersonID, old.PersonID)
	}

	// The new password signs in, the old one does not.
	for pw, want := range map[string]int{"a fresh headless passphrase": http.StatusOK, "a long headless passphrase": http.StatusUnauthorized} {
		f := st.start("signin")
		if r, _, _ := st.step(f, "password", map[string]string{"email": "ada@example.com", "password": pw}); r.status != want {
			t.Errorf("password %q after the reset = %d %s, want %d", pw, r.status, r.body, want)
		}
	}
	es := s.auditOf("auth.password_reset")
	if len(es) != 1 || es[0].PersonID != old.PersonID || es[0].ClientID != st.prop.Client.ID {
		t.Errorf("audit auth.password_reset = %+v", es)
	}
	if !slices.Contains(tl.of(s, old.PersonID), "auth.password_reset") {
		t.Errorf("timeline = %v, want auth.password_reset", tl.of(s, old.PersonID))
	}
}

// TestHeadlessRecoveryLimits: the send limit holds through the API (the
// fourth request in ten minutes answers the same and sends nothing), and
// wrong codes hit the per-email limit: 429 with Retry-After readable by
// the site, for the right code too while it lasts.
func TestHeadlessRecoveryLimits(t *testing.T) {
	s := newTestStackWith(t, stackOptions{oidc: true})
	st := s.site("Shop", shopOrigin)
	st.signUp("ada@example.com")
	s.clock.Advance(11 * time.Minute)
	before := len(s.mails("ada@example.com"))
	var f startedFlow
	var first string
	for i := range 4 {
		f = st.start("recovery")
		r, _, _ := st.step(f, "recover", map[string]string{"email": "ada@example.com"})
		if body := regexp.MustCompile(`flw_[a-z0-9]+`).ReplaceAllString(string(r.body), "X"); r.status != http.StatusOK || (i > 0 && body != first) {
			t.Fatalf("recover %d = %d %s", i+1, r.status, r.body)
		} else if i == 0 {
			first = body
		}
	}
	if n := len(s.mails("ada@example.com")) - before; n != 3 {
		t.Errorf("%d recovery emails after 4 requests, want 3", n)
	}

	f = st.start("recovery")
	s.clock.Advance(11 * time.Minute)
	st.step(f, "recover", map[string]string{"email": "ada@example.com"})
	code := s.lastCode("ada@example.com")
	for i := range 5 {
		if r, _, _ := st.step(f, "code/verify", map[string]string{"code": "000000"}); r.status != http.StatusBadRequest {
			t.Fatalf("wrong code %d = %d %s", i+1, r.status, r.body)
		}
	}
	for _, c := range []string{"000000", code} {
		r, _, _ := st.step(f, "code/verify", map[string]string{"code": c})
		wantProblem(t, r, http.StatusTooManyRequests)
		if r.header.Get("Retry-After") == "" || !strings.Contains(r.header.Get("Access-Control-Expose-Headers"), "Retry-After") {
			t.Errorf("429 headers %v", r.header)
		}
	}
}

// enrollTOTP turns on the authenticator app for ses's person and returns
// the secret and the recovery codes; the clock moves past the code used.
func (s *testStack) enrollTOTP(ses liveSession) (string, []string) {
	s.t.Helper()
	ctx := context.Background()
	live := ses.Session
	enr, err := s.accounts.EnrollTOTP(ctx, auth.SessionParams{Session: live})
	if err != nil {
		s.t.Fatalf("EnrollTOTP: %v", err)
	}
	done, err := s.accounts.ConfirmTOTP(ctx, auth.FactorCodeParams{Session: live, Code: appCode(s.t, enr.Secret, s.clock.Now())})
	if err != nil {
		s.t.Fatalf("ConfirmTOTP: %v", err)
	}
	s.clock.Advance(30 * time.Second)
	return enr.Secret, done.RecoveryCodes
}

// TestHeadlessSecondFactorCannotBeSkipped: an account with an authenticator app cannot
// finish a headless sign-in (password or email code) without the second
// factor: the first factor answers next mfa and no continue URL, and no
// other step gets around it. A code from the app, or a recovery code
// (once), completes it at AAL2; a recovery of such an account asks for
// the factor before the new password.
func TestHeadlessSecondFactorCannotBeSkipped(t *testing.T) {
	s := newTestStackWith(t, stackOptions{oidc: true})
	st := s.site("Shop", shopOrigin)
	ses := st.signedIn("mfa@example.com")
	secret, codes := s.enrollTOTP(ses)
	sessions := s.count("sessions")
	pw := map[string]string{"email": "mfa@example.com", "password": "a long headless passphrase"}

	f := st.start("signin")
	r, next, cont := st.step(f, "password", pw)
	if r.status != http.StatusOK || next != auth.StepMFA || cont != "" {
		t.Fatalf("password of an MFA account = %d %s, want next mfa", r.status, r.body)
	}
	// Around the factor: the email code leads to it again, a second
	// password too, and nothing hands out a continue URL.
	st.step(f, "code/send", map[string]string{"email": "mfa@example.com"})
	if r, next, cont := st.step(f, "code/verify", map[string]string{"code": s.lastCode("mfa@example.com")}); r.status != http.StatusOK || next != auth.StepMFA || cont != "" {
		t.Fatalf("email code of an MFA account = %d %s, want next mfa", r.status, r.body)
	}
	if r, next, _ := st.step(f, "password", pw); next != auth.StepMFA {
		t.Fatalf("a second password = %d %s", r.status, r.body)
	}
	if r, _, _ := st.step(f, "new-password", map[string]string{"password": "a takeover passphrase 1"}); r.status != http.StatusBadRequest {
		t.Errorf("new-password on a sign-in flow = %d %s", r.status, r.body)
	}
	if r, _, _ := st.step(f, "mfa", map[string]string{"code": wrongTOTP(appCode(t, secret, s.clock.Now()))}); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"field":"code"`) {
		t.Fatalf("a wrong second factor = %d %s", r.status, r.body)
	}
	if s.count("sessions") != sessions {
		t.Fatal("a session was made before the second factor")
	}
	if len(s.auditOf("auth.mfa_failed")) != 1 {
		t.Errorf("audit auth.mfa_failed = %+v", s.auditOf("auth.mfa_failed"))
	}
	r, _, cont = st.step(f, "mfa", map[string]string{"code": appCode(t, secret, s.clock.Now())})
	if r.status != http.StatusOK || cont == "" {
		t.Fatalf("the app's code = %d %s", r.status, r.body)
	}
	if got := st.continueTo(cont); got.AAL != 2 || !slices.Contains(got.AMR, "otp") {
		t.Errorf("session after TOTP: AAL %d AMR %v", got.AAL, got.AMR)
	}

	// A recovery code, once.
	f = st.start("signin")
	st.step(f, "password", pw)
	r, _, cont = st.step(f, "mfa", map[string]string{"code": strings.ToLower(codes[3])})
	if r.status != http.StatusOK || cont == "" {
		t.Fatalf("a recovery code = %d %s", r.status, r.body)
	}
	if got := st.continueTo(cont); got.AAL != 2 || !slices.Contains(got.AMR, "rec") {
		t.Errorf("session after a recovery code: AAL %d AMR %v", got.AAL, got.AMR)
	}
	if len(s.auditOf("auth.recovery_code_used")) != 1 {
		t.Error("no auth.recovery_code_used in the audit log")
	}
	f = st.start("signin")
	st.step(f, "password", pw)
	if r, _, _ := st.step(f, "mfa", map[string]string{"code": codes[3]}); r.status != http.StatusBadRequest {
		t.Errorf("a used recovery code = %d %s", r.status, r.body)
	}

	// A recovery asks for the factor after the email, before the password.
	s.clock.Advance(30 * time.Second)
	f = st.start("recovery")
	st.step(f, "recover", map[string]string{"email": "mfa@example.com"})
	if r, next, _ := st.step(f, "code/verify", map[string]string{"code": s.lastCode("mfa@example.com")}); next != auth.StepMFA {
		t.Fatalf("recovery code of an MFA account = %d %s, want next mfa", r.status, r.body)
	}
	if r, _, _ := st.step(f, "new-password", map[string]string{"password": "a takeover passphrase 1"}); r.status != http.StatusBadRequest {
		t.Fatalf("new-password before the factor = %d %s", r.status, r.body)
	}
	if r, next, _ := st.step(f, "mfa", map[string]string{"code": appCode(t, secret, s.clock.Now())}); next != auth.StepNewPassword {
		t.Fatalf("the factor in a recovery = %d %s, want next new_password", r.status, r.body)
	}
	if r, _, cont := st.step(f, "new-password", map[string]string{"password": "a new mfa passphrase 7"}); r.status != http.StatusOK || cont == "" {
		t.Fatalf("new-password after the factor = %d %s", r.status, r.body)
	}
}

// wrongTOTP is a six-digit code that is not c.
func wrongTOTP(c string) string {
	if c == "000000" {
		return "111111"
	}
	return "000000"
}

// TestHeadlessPasskey: a passkey registered on Onramp signs in on the
// site's own page with no email typed: the options are a discoverable
// login for Onramp's relying party id, the answer made on the site's
// origin completes the flow at AAL2, and the continue URL signs the
// browser in. An answer made on another origin, a replayed answer and a
// flow without options are refused; /.well-known/webauthn lets the site's
// origin use the relying party id.
func TestHeadlessPasskey(t *testing.T) {
	s := newTestStackWith(t, stackOptions{oidc: true, hostname: true})
	tl := s.recordTimeline()
	st := s.site("Shop", shopOrigin)
	ctx := t.Context()
	ses := st.signedIn("key@example.com")
	live := ses.Session
	a := softauthn.New(s.url, "localhost", true)
	cer, err := s.accounts.BeginPasskeyRegistration(ctx, auth.SessionParams{Session: live})
	if err != nil {
		t.Fatalf("BeginPasskeyRegistration: %v", err)
	}
	resp, cred, err := a.Create(cer.Options)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.accounts.FinishPasskeyRegistration(ctx, auth.FinishPasskeyRegistrationParams{Session: live, Ref: cer.Ref, Name: "Laptop", Response: resp}); err != nil {
		t.Fatalf("FinishPasskeyRegistration: %v", err)
	}

	r := s.do(http.MethodGet, "/.well-known/webauthn", nil)
	var doc struct {
		Origins []string `json:"origins"`
	}
	r.json(t, &doc)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") || len(doc.Origins) < 2 || doc.Origins[0] != s.url || !slices.Contains(doc.Origins, shopOrigin) {
		t.Fatalf("/.well-known/webauthn = %d %v %s", r.status, r.header, r.body)
	}

	f := st.start("signin")
	if !slices.Contains(f.Next, "passkey/options") {
		t.Errorf("a sign-in flow offers %v, want passkey/options among them", f.Next)
	}
	if r, _, _ := st.step(f, "passkey", json.RawMessage(`{"id":"x","type":"public-key"}`)); r.status != http.StatusBadRequest {
		t.Errorf("passkey before options = %d %s", r.status, r.body)
	}
	for _, path := range []string{"passkey/options", "passkey", "recover", "new-password"} {
		pre := s.do(http.MethodOptions, "/api/auth/flows/"+f.FlowID+"/"+path, nil, "Origin", shopOrigin, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type")
		if pre.status != http.StatusNoContent || pre.header.Get("Access-Control-Allow-Origin") != shopOrigin {
			t.Errorf("preflight of %s from the site = %d %v", path, pre.status, pre.header)
		}
	}
	r, _, _ = st.step(f, "passkey/options", nil)
	if r.status != http.StatusOK || r.header.Get("Access-Control-Allow-Origin") != shopOrigin {
		t.Fatalf("passkey/options = %d %v %s", r.status, r.header, r.body)
	}
	var ro softauthn.RequestOptions
	if err := softauthn.Decode(json.RawMessage(r.body), &ro); err != nil || ro.PublicKey.RPID != "localhost" || len(ro.PublicKey.AllowCredentials) != 0 || ro.PublicKey.Challenge == "" {
		t.Fatalf("options = %s (%v), want a discoverable login for localhost", r.body, err)
	}

	// Made on another origin: refused, and the flow's challenge is not
	// spent by it.
	a.Origin = "https://evil.example"
	evil, err := a.Get(json.RawMessage(r.body), cred)
	if err != nil {
		t.Fatal(err)
	}
	if r, _, _ := st.step(f, "passkey", evil); r.status != http.StatusUnauthorized {
		t.Fatalf("an answer made on another origin = %d %s", r.status, r.body)
	}
	a.Origin = shopOrigin
	answer, err := a.Get(json.RawMessage(r.body), cred)
	if err != nil {
		t.Fatal(err)
	}
	r, _, cont := st.step(f, "passkey", answer)
	if r.status != http.StatusOK || cont == "" {
		t.Fatalf("the site's passkey answer = %d %s", r.status, r.body)
	}
	if r, _, _ := st.step(f, "passkey", answer); r.status == http.StatusOK {
		t.Errorf("a replayed answer = %d %s", r.status, r.body)
	}
	got := st.continueTo(cont)
	if got.PersonID != ses.PersonID || got.AAL != 2 || !slices.Contains(got.AMR, "hwk") {
		t.Errorf("passkey session = %+v, want key@example.com's at AAL2", got)
	}
	failed := s.auditOf("auth.login_failed")
	if len(failed) != 1 || !strings.Contains(string(failed[0].Detail), `"passkey"`) || failed[0].ClientID != st.prop.Client.ID {
		t.Errorf("audit auth.login_failed = %+v", failed)
	}
	if !slices.Contains(tl.of(s, ses.PersonID), "auth.logged_in") {
		t.Error("no auth.logged_in on the timeline")
	}
}
