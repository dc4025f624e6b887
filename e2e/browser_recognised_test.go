package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestBrowserRecognisedSignUp: in chromium, a browser whose own tracking
// cookie already belongs to a known person is not asked again for their
// email and name: the sign-up page says whom it signs up as, the code goes
// to the known address, and the account keeps the person's traits. "not
// you?" gives the whole form, without the person's data.
func TestBrowserRecognisedSignUp(t *testing.T) {
	requireChromium(t)
	n, mp := startSSONode(t)
	prop := n.CreateProperty(t, "website")
	run := browserRunID(t)
	email := "known-" + run + "@example.com"
	anon := "anon-known-" + run
	mustPost(t, n, prop.WriteKey, []byte(`{"batch":[{"type":"identify","anonymousId":`+jsLit(anon)+`,"messageId":`+jsLit("known-"+run)+
		`,"traits":{"email":`+jsLit(email)+`,"name":"Ada Lovelace","company":"Acme Rockets"}}]}`), 1)

	browser := startBrowser(t)
	tb := newTab(t, browser)
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	if _, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{Name: "onramp_anon_id", Value: anon, URL: n.URL + "/"}); err != nil {
		t.Fatalf("set the tracking cookie: %v", err)
	}
	tb.do("open sign-up", chromedp.Navigate(n.URL+"/auth/sign-up"))
	tb.waitPath(n.URL, "/auth/sign-up")
	tb.waitText("#known", "Signing up as Ada Lovelace ("+email+")")
	if page := tb.html(); strings.Contains(page, `id="email"`) || strings.Contains(page, `id="name"`) {
		t.Error("the recognised browser is asked for its email or name again")
	}
	tb.screenshot("recognised-01-signing-up-as")

	// "not you?": a blank form, nothing of Ada's.
	tb.do("not you", chromedp.Click(`#known a`))
	tb.waitPath(n.URL, "/auth/sign-up")
	tb.waitJS("the blank form", `!!document.querySelector('#email') && !!document.querySelector('#name') && !document.querySelector('#known')`, 10*time.Second)
	if page := tb.html(); strings.Contains(page, email) || strings.Contains(page, "Ada") {
		t.Error("the blank sign-up shows the known person's data")
	}
	tb.screenshot("recognised-02-not-you-blank")

	// Back to the recognised form: it signs up without typing the email.
	tb.do("open sign-up again", chromedp.Navigate(n.URL+"/auth/sign-up"))
	tb.waitText("#known", "Ada Lovelace")
	tb.do("create the account", chromedp.Click(`button.primary`))
	tb.waitPath(n.URL, "/auth/verify")
	tb.waitText("main", email)
	tb.do("type the code", chromedp.SendKeys(`#code`, mailedCode(t, mp, email)))
	tb.do("continue", chromedp.Click(`button[value="verify"]`))
	tb.waitPath(n.URL, "/account")
	tb.waitText("main", "Ada Lovelace")
	tb.screenshot("recognised-03-account")
	tb.noExceptions()

	// A browser without the cookie that forges the recognised form (as=known,
	// no email, no name) gets the whole form back, asking for the email, and
	// nothing of Ada's: the server never takes "known" from the post.
	other := newTab(t, startBrowser(t))
	other.do("open sign-up without the cookie", chromedp.Navigate(n.URL+"/auth/sign-up"))
	other.waitJS("the blank form", `!!document.querySelector('#email') && !document.querySelector('#known')`, 10*time.Second)
	evalJS[bool](other, "forge as=known", `(() => {
		const f = document.querySelector('form[action="/auth/sign-up"]');
		f.querySelector('#email').remove(); f.querySelector('#name').remove();
		const as = document.createElement('input'); as.type = 'hidden'; as.name = 'as'; as.value = 'known';
		f.appendChild(as); setTimeout(() => f.submit()); return true })()`)
	other.wait("the form asks for the email", `!!document.querySelector('#email-error') && !!document.querySelector('#email') && !document.querySelector('#known')`, 10*time.Second)
	if page := other.html(); strings.Contains(page, email) || strings.Contains(page, "Ada") || strings.Contains(page, "Acme") {
		t.Error("a forged as=known post from a browser without the cookie shows the known person's data")
	}
	other.screenshot("recognised-04-forged-known")

	traits := n.Traits(t, prop.SecretKey, "email:"+email)
	if traits["name"] != "Ada Lovelace" || traits["company"] != "Acme Rockets" {
		t.Errorf("traits after the recognised sign-up: %v", traits)
	}
}
