package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/onramp-dev/onramp/internal/mailpit"
)

// TestBrowserPasskey registers a passkey in a real chromium and signs in
// with it without typing an email (docs/design/auth.md §7). The browser's
// virtual authenticator (the DevTools WebAuthn domain) stands in for a
// platform authenticator: CTAP2, internal transport, resident keys, user
// verification that succeeds, presence simulated. Onramp runs at
// http://localhost:P (a passkey's relying party id must be a domain, and
// localhost is one, and a secure context).
//
// Sign up with the code from Mailpit, add a passkey on /account/passkeys
// through passkey.js, sign out, press "Use a passkey" on the sign-in page:
// signed in, with the email field never touched. The authenticator then
// holds exactly one resident credential for localhost whose signature
// counter rose with the sign-in, and the audit log (read by the CLI) has
// the passkey added and a sign-in with amr hwk+user. Screenshots go to
// e2e/testdata/out/passkey-*.png.
func TestBrowserPasskey(t *testing.T) {
	requireChromium(t)
	mp := mailpit.Start(t)
	n := StartNode(t, NodeOptions{PublicHost: "localhost", Env: []string{"ONRAMP_SMTP_URL=" + mp.SMTPURL(), "ONRAMP_ARGON2_MEMORY_KIB=1024", "ONRAMP_ARGON2_TIME=1"}})
	browser := startBrowser(t)
	tb := newTab(t, browser)
	auth := addVirtualAuthenticator(t, tb)
	email := "passkey-" + browserRunID(t) + "@example.com"

	// 1. Sign up on the hosted pages, with the emailed code.
	tb.do("open sign-up", chromedp.Navigate(n.URL+"/auth/sign-up"))
	tb.waitPath(n.URL, "/auth/sign-up")
	tb.do("type the email", chromedp.SendKeys(`#email`, email))
	tb.do("create the account", chromedp.Click(`button.primary`))
	tb.waitPath(n.URL, "/auth/verify")
	tb.do("type the code", chromedp.SendKeys(`#code`, mailedCode(t, mp, email)))
	tb.do("continue", chromedp.Click(`button[value="verify"]`))
	tb.waitPath(n.URL, "/account")
	tb.screenshot("passkey-01-signed-up")

	// 2. Add a passkey on the account's passkeys page.
	tb.do("open the passkeys page", chromedp.Click(`a[href="/account/passkeys"]`))
	tb.waitPath(n.URL, "/account/passkeys")
	tb.waitJS("passkey.js shows the add form", `document.querySelector('form[data-passkey-add]') && !document.querySelector('form[data-passkey-add]').hidden`, 10*time.Second)
	tb.do("name the passkey", chromedp.SendKeys(`#passkey-name`, "Chromium virtual authenticator"))
	tb.screenshot("passkey-02-add-form")
	tb.do("add the passkey", chromedp.Click(`form[data-passkey-add] button[type=submit]`))
	// passkey.js reloads the page once the passkey is stored.
	tb.waitLocation(n.URL + "/account/passkeys?added=1")
	tb.do("wait for the page", chromedp.WaitReady(`body`))
	tb.eventuallyText(".notice", "Your passkey was added.")
	tb.eventuallyText("table", "Chromium virtual authenticator")
	tb.screenshot("passkey-03-added")
	creds := credentials(t, tb, auth)
	if len(creds) != 1 || !creds[0].IsResidentCredential || creds[0].RpID != "localhost" || len(creds[0].UserHandle) != 32 {
		t.Fatalf("after registering, the authenticator holds %s; want one resident credential for localhost with a 32-byte user handle", describeCreds(creds))
	}
	countAfterAdd := creds[0].SignCount

	// 3. Sign out.
	tb.do("back to the account page", chromedp.Navigate(n.URL+"/account"))
	tb.waitPath(n.URL, "/account")
	tb.do("sign out", chromedp.Click(`form[action="/auth/sign-out"] button`))
	tb.eventuallyText("h1", "You are signed out")
	tb.screenshot("passkey-04-signed-out")

	// 4. Sign in with "Use a passkey", typing nothing.
	tb.do("open sign-in", chromedp.Navigate(n.URL+"/auth/sign-in"))
	tb.waitPath(n.URL, "/auth/sign-in")
	tb.waitJS("passkey.js shows the passkey button", `document.querySelector('[data-passkey-sign-in]') && !document.querySelector('[data-passkey-sign-in]').hidden`, 10*time.Second)
	tb.screenshot("passkey-05-sign-in-page")
	if typed := evalJS[string](tb, "read the email field", `document.querySelector('#email').value`); typed != "" {
		t.Fatalf("the email field holds %q before the passkey sign-in", typed)
	}
	tb.do("use a passkey", chromedp.Click(`[data-passkey-sign-in]`))
	tb.waitPath(n.URL, "/account")
	tb.eventuallyText("dl", email)
	tb.screenshot("passkey-06-signed-in-with-passkey")
	tb.noExceptions()

	// The authenticator still holds one resident credential, and its
	// counter rose with the sign-in.
	creds = credentials(t, tb, auth)
	if len(creds) != 1 || !creds[0].IsResidentCredential || creds[0].SignCount <= countAfterAdd {
		t.Errorf("after signing in, the authenticator holds %s; want the one resident credential with a sign count above %v", describeCreds(creds), countAfterAdd)
	}
	// Onramp's side: the passkey was added, then a sign-in by passkey with
	// user verification (AAL2), for this person.
	var entries []struct {
		Action string          `json:"action"`
		Detail json.RawMessage `json:"detail"`
	}
	out := n.CLI(t, "audit", "list", "--person", "email:"+email, "--json")
	if err := json.Unmarshal(out, &entries); err != nil {
		t.Fatalf("audit list: %v\n%s", err, out)
	}
	var actions []string
	var passkeyLogin bool
	for _, e := range entries {
		actions = append(actions, e.Action)
		if e.Action == "auth.logged_in" && strings.Contains(string(e.Detail), `"hwk"`) && strings.Contains(string(e.Detail), `"user"`) {
			passkeyLogin = true
		}
	}
	if !strings.Contains(strings.Join(actions, ","), "auth.passkey_added") || !passkeyLogin {
		t.Errorf("audit of %s: %v; want auth.passkey_added and an auth.logged_in with amr hwk+user", email, actions)
	}
}

// eventuallyText waits until the element's text contains want, across
// navigations (a page that is being replaced answers nothing, then the
// new one answers).
func (tb *browserTab) eventuallyText(sel, want string) {
	tb.t.Helper()
	Eventually(tb.t, 15*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
		defer cancel()
		txt, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector(`+jsLit(sel)+`)?.textContent || '')`))
		return err == nil && strings.Contains(txt, want), fmt.Sprintf("text of %s = %q (%v), want %q", sel, txt, err, want)
	})
}

// addVirtualAuthenticator turns on the DevTools WebAuthn domain in the
// tab and adds a platform authenticator that verifies its user.
func addVirtualAuthenticator(t *testing.T, tb *browserTab) webauthn.AuthenticatorID {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	res, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
	}})
	if err != nil {
		t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
	return res.AuthenticatorID
}

func credentials(t *testing.T, tb *browserTab, id webauthn.AuthenticatorID) []*webauthn.Credential {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	res, err := chromedp.Call(ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: id})
	if err != nil {
		t.Fatalf("WebAuthn.getCredentials: %v", err)
	}
	return res.Credentials
}

func describeCreds(cs []*webauthn.Credential) string {
	var parts []string
	for _, c := range cs {
		b, _ := json.Marshal(map[string]any{"resident": c.IsResidentCredential, "rpId": c.RpID, "signCount": c.SignCount, "userHandleLen": len(c.UserHandle)})
		parts = append(parts, string(b))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// TestBrowserTOTP turns on two-step sign-in in chromium (QR code page, the
// app's first code, the recovery codes shown once), then signs in by
// email code and is stopped at the second step until the app's code is
// typed. Screenshots go to e2e/testdata/out/totp-*.png.
func TestBrowserTOTP(t *testing.T) {
	requireChromium(t)
	mp := mailpit.Start(t)
	n := StartNode(t, NodeOptions{Env: []string{"ONRAMP_SMTP_URL=" + mp.SMTPURL(), "ONRAMP_ARGON2_MEMORY_KIB=1024", "ONRAMP_ARGON2_TIME=1"}})
	tb := newTab(t, startBrowser(t))
	email := "totp-" + browserRunID(t) + "@example.com"

	tb.do("open sign-up", chromedp.Navigate(n.URL+"/auth/sign-up"))
	tb.waitPath(n.URL, "/auth/sign-up")
	tb.do("type the email", chromedp.SendKeys(`#email`, email))
	tb.do("create the account", chromedp.Click(`button.primary`))
	tb.waitPath(n.URL, "/auth/verify")
	tb.do("type the code", chromedp.SendKeys(`#code`, mailedCode(t, mp, email)))
	tb.do("continue", chromedp.Click(`button[value="verify"]`))
	tb.waitPath(n.URL, "/account")
	if err := mp.Clear(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Set up the app: the QR code shows, the key is read off the page as
	// a person would type it into their app.
	tb.do("open two-step sign-in", chromedp.Click(`a[href="/account/mfa"]`))
	tb.waitPath(n.URL, "/account/mfa")
	tb.do("set up an app", chromedp.Click(`form[action="/account/mfa/totp"] button`))
	tb.eventuallyText("h2", "Scan this code")
	if w := evalJS[float64](tb, "QR code width", `document.querySelector('img.qr').naturalWidth`); w < 200 {
		t.Errorf("the QR code image is %v px wide", w)
	}
	tb.screenshot("totp-01-qr-code")
	secret := strings.TrimSpace(evalJS[string](tb, "read the key", `document.querySelector('code.secret').textContent`))
	tb.do("type the app's code", chromedp.SendKeys(`#code`, totpCode(t, secret, time.Now())))
	tb.do("turn on", chromedp.Click(`form[action="/account/mfa/totp/confirm"] button`))
	tb.eventuallyText("h2", "Your recovery codes")
	if n := evalJS[float64](tb, "count the codes", `document.querySelectorAll('ul.codes code').length`); n != 10 {
		t.Errorf("%v recovery codes shown, want 10", n)
	}
	tb.screenshot("totp-02-recovery-codes")

	// Sign out, sign in by email code: stopped at the second step.
	tb.do("back to the account", chromedp.Navigate(n.URL+"/account"))
	tb.waitPath(n.URL, "/account")
	tb.do("sign out", chromedp.Click(`form[action="/auth/sign-out"] button`))
	tb.eventuallyText("h1", "You are signed out")
	tb.do("open sign-in", chromedp.Navigate(n.URL+"/auth/sign-in"))
	tb.waitPath(n.URL, "/auth/sign-in")
	tb.do("type the email", chromedp.SendKeys(`#email`, email))
	tb.do("ask for a code", chromedp.Click(`button[value="code"]`))
	tb.waitPath(n.URL, "/auth/verify")
	tb.do("type the emailed code", chromedp.SendKeys(`#code`, mailedCode(t, mp, email)))
	tb.do("continue", chromedp.Click(`button[value="verify"]`))
	tb.waitPath(n.URL, "/auth/mfa")
	tb.screenshot("totp-03-second-step")
	// The code of the next 30-second step: the one that turned the app on
	// is spent, and a step ahead is within the accepted skew.
	tb.do("type the app's code", chromedp.SendKeys(`#code`, totpCode(t, secret, time.Now().Add(30*time.Second))))
	tb.do("continue", chromedp.Click(`form[action="/auth/mfa"] button`))
	tb.waitPath(n.URL, "/account")
	tb.eventuallyText("dl", email)
	tb.screenshot("totp-04-signed-in")
	tb.noExceptions()
}

func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
