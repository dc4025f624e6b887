package httpapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/property"
)

// stayHome stops b from following redirects that leave the server (to a
// relying party that does not exist in the test): the last response is
// the redirect itself.
func stayHome(b *browser) {
	home := b.base.Host
	b.c.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host != home {
			return http.ErrUseLastResponse
		}
		return nil
	}
}

func authorizePath(clientID, redirect, state, locales string) string {
	sum := sha256.Sum256([]byte("verifier-verifier-verifier-verifier-verifier"))
	q := url.Values{"client_id": {clientID}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"openid email"},
		"state": {state}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	if locales != "" {
		q.Set("ui_locales", locales)
	}
	return "/oauth/authorize?" + q.Encode()
}

// TestConsentAndLogoutPages: a client that is not first-party gets nothing
// before the person allows it (deny answers access_denied), the answer is
// remembered; a logout without an id_token_hint asks first, then ends the
// session and goes to the registered post-logout URI with its state.
func TestConsentAndLogoutPages(t *testing.T) {
	s := newTestStackWith(t, stackOptions{oidc: true})
	ctx := context.Background()
	pc, err := s.oauth.CreateProperty(ctx, auth.CreatePropertyParams{
		Property: property.CreateParams{Name: "Partner <b>Portal</b>", Origins: []string{"https://partner.example.com"}},
		Client:   auth.ClientParams{RedirectURIs: []string{"https://partner.example.com/cb"}, PostLogoutRedirectURIs: []string{"https://partner.example.com/bye"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	b := s.browser()
	wantAt(t, b.signUp("ada@example.com", "", "Ada"), "/account")
	stayHome(b)

	p := b.get(authorizePath(pc.Client.ID, "https://partner.example.com/cb", "st1", ""))
	wantAt(t, p, "/auth/consent")
	if !strings.Contains(p.body, "Partner &lt;b&gt;Portal&lt;/b&gt;") || !strings.Contains(p.body, "your email address") {
		t.Errorf("consent page does not name the property (escaped) and the data in words:\n%s", p.body)
	}
	// Deny: the client hears access_denied, with its state.
	p = b.submit(p.form(t, "/auth/consent"), "decision", "deny")
	if loc := p.header.Get("Location"); !strings.HasPrefix(loc, "https://partner.example.com/cb?") || !strings.Contains(loc, "error=access_denied") || !strings.Contains(loc, "state=st1") {
		t.Fatalf("after deny: %d Location %q", p.status, loc)
	}
	// Allow: a code.
	p = b.get(authorizePath(pc.Client.ID, "https://partner.example.com/cb", "st2", "de"))
	wantAt(t, p, "/auth/consent")
	if !strings.Contains(p.body, "Erlauben") {
		t.Error("the consent page is not in German for ui_locales=de")
	}
	p = b.submit(p.form(t, "/auth/consent"), "decision", "allow")
	if loc := p.header.Get("Location"); !strings.Contains(loc, "code=") || !strings.Contains(loc, "state=st2") {
		t.Fatalf("after allow: %d Location %q", p.status, loc)
	}
	// Remembered: the next request gets its code without a page.
	p = b.get(authorizePath(pc.Client.ID, "https://partner.example.com/cb", "st3", ""))
	if loc := p.header.Get("Location"); !strings.Contains(loc, "code=") || !strings.Contains(loc, "state=st3") {
		t.Fatalf("after consent was given: %d at %s, Location %q", p.status, p.url, loc)
	}

	// prompt=consent asks again although consent was given.
	p = b.get(authorizePath(pc.Client.ID, "https://partner.example.com/cb", "st4", "") + "&prompt=consent")
	wantAt(t, p, "/auth/consent")
	p = b.submit(p.form(t, "/auth/consent"), "decision", "allow")
	if loc := p.header.Get("Location"); !strings.Contains(loc, "code=") || !strings.Contains(loc, "state=st4") {
		t.Fatalf("after allow with prompt=consent: %d Location %q", p.status, loc)
	}

	// Logout without an id_token_hint: a confirmation page, nothing ended yet.
	q := url.Values{"client_id": {pc.Client.ID}, "post_logout_redirect_uri": {"https://partner.example.com/bye"}, "state": {"s9"}}
	p = b.get("/oauth/end_session?" + q.Encode())
	wantAt(t, p, "/auth/logout")
	if _, err := s.accounts.CheckSession(ctx, b.cookie("onramp_session")); err != nil {
		t.Fatalf("the session ended before the person confirmed: %v", err)
	}
	p = b.submit(p.form(t, "/auth/logout"))
	if loc := p.header.Get("Location"); loc != "https://partner.example.com/bye?state=s9" {
		t.Errorf("after logout: %d Location %q", p.status, loc)
	}
	// A forged post-logout URI is not followed.
	p = b.get("/auth/logout?client_id=" + pc.Client.ID + "&post_logout_redirect_uri=https://evil.example.net/")
	if p.url.Path != "/auth/logged-out" || p.status != http.StatusOK {
		t.Errorf("an unregistered post-logout URI led to %d %s", p.status, p.url)
	}
}
