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

// TestEmailsInThePagesLanguage: the sign-up, sign-in and no-account
// emails are written in the language the pages were shown in (kept on
// the flow), German for a German browser or ui_locales=de, English
// otherwise; each still carries its code and link.
func TestEmailsInThePagesLanguage(t *testing.T) {
	s := newTestStack(t)
	for _, tc := range []struct {
		lang, acceptLanguage, query                    string
		verifySubject, signInSubject, noAccountSubject string
		signInText, noAccountText                      string
	}{
		{"de", "de-DE,de;q=0.9", "", "ist Ihr Bestätigungscode für", "ist Ihr Anmeldecode für", "Anmeldeversuch bei",
			"Mit diesem Code melden Sie sich", "aber zu ihr gibt es noch kein Konto"},
		{"de via ui_locales", "en", "?ui_locales=de", "ist Ihr Bestätigungscode für", "ist Ihr Anmeldecode für", "Anmeldeversuch bei",
			"Mit diesem Code melden Sie sich", "aber zu ihr gibt es noch kein Konto"},
		{"en", "en-GB,en;q=0.9", "", "is your Onramp verification code", "is your Onramp sign-in code", "Sign-in attempt at Onramp",
			"Use this code to sign in", "but it has no account yet"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			b := s.browser()
			b.header.Set("Accept-Language", tc.acceptLanguage)
			user := strings.NewReplacer(" ", "-", "_", "-").Replace(tc.lang) + "@example.com"

			p := b.get("/auth/sign-up" + tc.query)
			p = b.submit(p.form(t, "/auth/sign-up"), "email", user)
			wantAt(t, p, "/auth/verify")
			ms := s.mails(user)
			if len(ms) != 1 || !strings.Contains(ms[0].Subject, tc.verifySubject) || !codeInMail.MatchString(ms[0].Text) || !linkInMail.MatchString(ms[0].Text) {
				t.Fatalf("verification email = %+v; want a subject with %q, a code and a link", ms, tc.verifySubject)
			}
			wantAt(t, b.verify(p, s.lastCode(user)), "/account")
			b.signOut()

			p = b.get("/auth/sign-in" + tc.query)
			wantAt(t, b.submit(p.form(t, "/auth/sign-in"), "email", user, "action", "code"), "/auth/verify")
			ms = s.mails(user)
			if len(ms) != 2 || !strings.Contains(ms[1].Subject, tc.signInSubject) || !strings.Contains(ms[1].Text, tc.signInText) || !codeInMail.MatchString(ms[1].Text) {
				t.Fatalf("sign-in email = %+v; want %q and %q", ms[1:], tc.signInSubject, tc.signInText)
			}

			nobody := "nobody-" + user
			p = b.get("/auth/sign-in" + tc.query)
			b.submit(p.form(t, "/auth/sign-in"), "email", nobody, "action", "code")
			ms = s.mails(nobody)
			if len(ms) != 1 || !strings.Contains(ms[0].Subject, tc.noAccountSubject) || !strings.Contains(ms[0].Text, tc.noAccountText) ||
				!strings.Contains(ms[0].Text, "/auth/sign-up") {
				t.Fatalf("no-account email = %+v; want %q and %q", ms, tc.noAccountSubject, tc.noAccountText)
			}
		})
	}
}
