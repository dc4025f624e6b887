package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
	"golang.org/x/oauth2"
)

// TestAuthorizeUILocales: ui_locales sent to /oauth/authorize chooses the
// language of the hosted sign-in page it sends the browser to, over the
// browser's Accept-Language, although that URL carries only the
// request's id; the page's form and links carry the choice on. Without
// ui_locales the browser's language stays.
func TestAuthorizeUILocales(t *testing.T) {
	s := newTestStackWith(t, stackOptions{oidc: true})
	st := s.site("Shop", shopOrigin)
	authorize := func(uiLocales string) *page {
		t.Helper()
		q := url.Values{
			"client_id": {st.prop.Client.ID}, "redirect_uri": {st.redirect}, "response_type": {"code"}, "scope": {"openid"},
			"state": {"s"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"},
		}
		if uiLocales != "" {
			q.Set("ui_locales", uiLocales)
		}
		b := s.browser()
		b.header.Set("Accept-Language", "en-US,en;q=0.9")
		p := b.get("/oauth/authorize?" + q.Encode())
		if p.status != http.StatusOK || p.url.Path != "/auth/sign-in" || p.url.Query().Get("authRequest") == "" || p.url.Query().Has("ui_locales") {
			t.Fatalf("authorize(%q) ended at %d %s", uiLocales, p.status, p.url)
		}
		return p
	}

	de := authorize("fr de")
	if got := pageLang(de); got != "de" {
		t.Errorf("<html lang> for ui_locales=fr de is %q, want de", got)
	}
	if !strings.Contains(de.body, "Anmelden") {
		t.Errorf("the sign-in page for ui_locales=de is not German:\n%s", de.body)
	}
	if f := de.form(t, "/auth/sign-in"); f.values.Get("ui_locales") != "fr de" {
		t.Errorf("the sign-in form carries %v, want ui_locales", f.values)
	}
	signUp := find(de.doc, func(n *html.Node) bool { return n.Data == "a" && strings.HasPrefix(attr(n, "href"), "/auth/sign-up?") })
	if len(signUp) != 1 || !strings.Contains(attr(signUp[0], "href"), "ui_locales=fr+de") {
		t.Errorf("the sign-up link loses ui_locales:\n%s", de.body)
	}

	if got := pageLang(authorize("")); got != "en" {
		t.Errorf("<html lang> without ui_locales is %q, want the browser's en", got)
	}
}

func pageLang(p *page) string {
	if els := find(p.doc, func(n *html.Node) bool { return n.Data == "html" }); len(els) == 1 {
		return attr(els[0], "lang")
	}
	return ""
}
