package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/onramp-dev/onramp/internal/mailpit"
)

// The OpenID Connect provider of the real binary, driven by relying-party
// libraries nobody here wrote: coreos/go-oidc and golang.org/x/oauth2.
// The browser is an http.Client with a cookie jar that posts the hosted
// forms; it follows redirects on Onramp and stops where Onramp sends it
// back to the relying party, as a browser would leave the site. The fast
// in-process twin is oidcop/rp_test.go; this one proves the wiring of
// `onramp serve` (sessions, outbox, hosted pages, SMTP) around it.

// oidcClient is a property with its OpenID Connect client, as `onramp
// property create --json` printed it.
type oidcClient struct {
	Property
	ClientID, ClientSecret string
}

// clientOptions are the property create flags of a client.
type clientOptions struct {
	Origins, RedirectURIs, PostLogoutURIs []string
	BackchannelURI                        string
	Public, FirstParty                    bool
}

// CreateClient adds a property with an OpenID Connect client through the
// CLI.
func (n *Node) CreateClient(t *testing.T, name string, o clientOptions) oidcClient {
	t.Helper()
	args := []string{"property", "create", "--name", name, "--json"}
	for _, u := range o.Origins {
		args = append(args, "--origin", u)
	}
	for _, u := range o.RedirectURIs {
		args = append(args, "--redirect-uri", u)
	}
	for _, u := range o.PostLogoutURIs {
		args = append(args, "--post-logout-redirect-uri", u)
	}
	if o.BackchannelURI != "" {
		args = append(args, "--backchannel-logout-uri", o.BackchannelURI)
	}
	if o.Public {
		args = append(args, "--public")
	}
	if o.FirstParty {
		args = append(args, "--first-party")
	}
	out := n.CLI(t, args...)
	var p struct {
		ID           string `json:"id"`
		Name         string `json:"name"`
		WriteKey     string `json:"write_key"`
		SecretKey    string `json:"secret_key"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("property create --json printed %q: %v", out, err)
	}
	if p.ClientID == "" || o.Public != (p.ClientSecret == "") {
		t.Fatalf("property create --json (public=%v) printed client_id %q and a secret of %d characters: %s", o.Public, p.ClientID, len(p.ClientSecret), out)
	}
	return oidcClient{Property: Property{ID: p.ID, Name: p.Name, WriteKey: p.WriteKey, SecretKey: p.SecretKey}, ClientID: p.ClientID, ClientSecret: p.ClientSecret}
}

// startSSONode starts a Mailpit and a node that sends its email there.
// Password hashing is made cheap: these tests are about the protocol.
func startSSONode(t *testing.T) (*Node, *mailpit.Server) {
	t.Helper()
	mp := mailpit.Start(t)
	n := StartNode(t, NodeOptions{Env: []string{"ONRAMP_SMTP_URL=" + mp.SMTPURL(), "ONRAMP_ARGON2_MEMORY_KIB=1024", "ONRAMP_ARGON2_TIME=1"}})
	return n, mp
}

// mailedCode is the 6-digit code of the newest email to `to`.
func mailedCode(t *testing.T, mp *mailpit.Server, to string) string {
	t.Helper()
	msg := mp.WaitFor(t, to, 15*time.Second)
	m := mailCode.FindStringSubmatch(msg.Text)
	if m == nil {
		t.Fatalf("no code in the email %q to %s:\n%s", msg.Subject, to, msg.Text)
	}
	return m[1]
}

// signUp signs a new account up on the hosted pages: the form, the code
// from the email, and the account page it lands on. It returns the
// account's subject (the OIDC sub).
func signUp(t *testing.T, w *webClient, mp *mailpit.Server, email, name, password string) string {
	t.Helper()
	p := w.get("/auth/sign-up")
	p = w.submit(p, "/auth/sign-up", "email", email, "name", name, "password", password)
	if p.status != http.StatusOK || p.url.Path != "/auth/verify" {
		t.Fatalf("sign-up: %d at %s:\n%s", p.status, p.url, p.body)
	}
	p = w.submit(p, "/auth/verify", "code", mailedCode(t, mp, email), "action", "verify")
	if p.status != http.StatusOK || p.url.Path != "/account" {
		t.Fatalf("verify: %d at %s:\n%s", p.status, p.url, p.body)
	}
	subject := ddAfter(p.doc, "Account id")
	if !strings.HasPrefix(subject, "usr_") {
		t.Fatalf("account page shows account id %q:\n%s", subject, p.body)
	}
	return subject
}

// newOIDCBrowser is a webClient that follows redirects on Onramp only: a
// redirect to any other host is where Onramp hands the browser back to a
// relying party, and the test plays that party.
func newOIDCBrowser(t *testing.T, base string) *webClient {
	t.Helper()
	w := newWebClient(t, base)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	w.c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != u.Host {
			return http.ErrUseLastResponse
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return w
}

// backAt checks that p redirects the browser to prefix (a relying party's
// URI, matched up to its query) and returns the query it carries.
func backAt(t *testing.T, p *webPage, prefix string) url.Values {
	t.Helper()
	if p.status != http.StatusFound && p.status != http.StatusSeeOther {
		t.Fatalf("%s answered %d, want a redirect to %s:\n%s", p.url, p.status, prefix, p.body)
	}
	loc, err := p.url.Parse(p.header.Get("Location"))
	if err != nil {
		t.Fatalf("Location %q: %v", p.header.Get("Location"), err)
	}
	if base, _, _ := strings.Cut(loc.String(), "?"); base != prefix {
		t.Fatalf("%s redirected to %s, want %s", p.url, loc, prefix)
	}
	return loc.Query()
}

// logoutReceiver is a relying party's back-channel logout endpoint: each
// logout token must pass go-oidc's VerifyLogout and carry the
// back-channel logout event and no nonce. It answers 400 to anything else
// (so Onramp would retry) and remembers what it got.
type logoutReceiver struct {
	// onToken, if set, is called with each token that verified: the app
	// ends its sessions there.
	onToken func(*oidc.LogoutToken)

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
	tokens   []*oidc.LogoutToken
	errs     []string
}

const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

func (l *logoutReceiver) setVerifier(v *oidc.IDTokenVerifier) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.verifier = v
}

func (l *logoutReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	raw := r.PostFormValue("logout_token")
	l.mu.Lock()
	v := l.verifier
	l.mu.Unlock()
	lt, err := checkLogoutToken(r.Context(), v, raw)
	l.mu.Lock()
	if err != nil {
		l.errs = append(l.errs, err.Error())
	} else {
		l.tokens = append(l.tokens, lt)
	}
	l.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if l.onToken != nil {
		l.onToken(lt)
	}
}

// checkLogoutToken is what a careful relying party checks (Back-Channel
// Logout 1.0 §2.6): go-oidc's VerifyLogout (signature, iss, aud, exp,
// jti, the events claim, no nonce), then explicitly the event's member
// and the logout+jwt type, which go-oidc does not look at.
func checkLogoutToken(ctx context.Context, v *oidc.IDTokenVerifier, raw string) (*oidc.LogoutToken, error) {
	if v == nil {
		return nil, errors.New("no verifier yet")
	}
	lt, err := v.VerifyLogout(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("VerifyLogout: %w", err)
	}
	var claims struct {
		Events map[string]json.RawMessage `json:"events"`
		Nonce  *string                    `json:"nonce"`
	}
	if err := lt.Claims(&claims); err != nil {
		return nil, err
	}
	if ev, ok := claims.Events[backchannelEvent]; !ok || strings.TrimSpace(string(ev)) != "{}" {
		return nil, fmt.Errorf("events claim %v lacks %s: {}", claims.Events, backchannelEvent)
	}
	if claims.Nonce != nil {
		return nil, errors.New("a logout token with a nonce")
	}
	hdr, _, _ := strings.Cut(raw, ".")
	hb, err := base64.RawURLEncoding.DecodeString(hdr)
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	var h struct {
		Typ string `json:"typ"`
	}
	if err := json.Unmarshal(hb, &h); err != nil || h.Typ != "logout+jwt" {
		return nil, fmt.Errorf("header %s: want typ logout+jwt", hb)
	}
	if lt.SessionID == "" || lt.Subject == "" {
		return nil, fmt.Errorf("logout token without sid or sub: %+v", lt)
	}
	return lt, nil
}

// received returns the logout tokens that verified so far; a token that
// did not verify fails the test.
func (l *logoutReceiver) received(t *testing.T) []*oidc.LogoutToken {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) > 0 {
		t.Fatalf("the back-channel logout endpoint refused a token: %s", strings.Join(l.errs, "; "))
	}
	return slices.Clone(l.tokens)
}

// waitFor polls until a logout token for session sid arrived.
func (l *logoutReceiver) waitFor(t *testing.T, sid string, timeout time.Duration) *oidc.LogoutToken {
	t.Helper()
	var got *oidc.LogoutToken
	Eventually(t, timeout, func() (bool, string) {
		toks := l.received(t)
		for _, lt := range toks {
			if lt.SessionID == sid {
				got = lt
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d logout tokens, none for session %s", len(toks), sid)
	})
	return got
}

// introspect asks the introspection endpoint about a token, as client c.
func introspect(t *testing.T, endpoint string, c oidcClient, token string) map[string]any {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
	resp, err := apiClient.Do(req)
	if err != nil {
		t.Fatalf("introspect: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &out) != nil {
		t.Fatalf("introspect: %d %s", resp.StatusCode, b)
	}
	return out
}

// providerMeta is what the tests read from the discovery document beyond
// what oidc.Provider exposes.
type providerMeta struct {
	EndSession    string `json:"end_session_endpoint"`
	Introspection string `json:"introspection_endpoint"`
	Revocation    string `json:"revocation_endpoint"`
	BackchannelOK bool   `json:"backchannel_logout_supported"`
	BackchannelSI bool   `json:"backchannel_logout_session_supported"`
}

// goRP is one relying party: go-oidc's provider and verifier and x/oauth2's
// config for a client.
type goRP struct {
	client   oidcClient
	conf     oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func newGoRP(p *oidc.Provider, c oidcClient, redirect string, scopes ...string) *goRP {
	ep := p.Endpoint()
	if c.ClientSecret == "" {
		// A public client sends its id in the body (no secret to put in
		// a Basic header).
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	return &goRP{
		client:   c,
		conf:     oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, Endpoint: ep, RedirectURL: redirect, Scopes: scopes},
		verifier: p.Verifier(&oidc.Config{ClientID: c.ClientID}),
	}
}

// authRequest is one authorization request as the relying party made it.
type authRequest struct {
	url, state, nonce, verifier string
}

// newAuthRequest makes an authorization URL with S256 PKCE, a nonce and a
// state, plus extra parameters.
func (r *goRP) newAuthRequest(extra ...oauth2.AuthCodeOption) authRequest {
	a := authRequest{state: "st-" + oauth2.GenerateVerifier()[:10], nonce: "n-" + oauth2.GenerateVerifier()[:16], verifier: oauth2.GenerateVerifier()}
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(a.verifier), oidc.Nonce(a.nonce)}, extra...)
	a.url = r.conf.AuthCodeURL(a.state, opts...)
	return a
}

// idClaims are the ID token claims the tests look at beyond go-oidc's.
type idClaims struct {
	SID      string   `json:"sid"`
	AMR      []string `json:"amr"`
	AZP      string   `json:"azp"`
	AuthTime int64    `json:"auth_time"`
}

// exchange trades the code of a callback for tokens and checks the ID
// token: signature, issuer, audience, expiry (go-oidc), the nonce, the
// at_hash and a sid.
func (r *goRP) exchange(t *testing.T, ctx context.Context, a authRequest, back url.Values) (*oauth2.Token, *oidc.IDToken, idClaims) {
	t.Helper()
	if back.Get("state") != a.state || back.Get("code") == "" {
		t.Fatalf("callback %v: want a code and state %q", back, a.state)
	}
	tok, err := r.conf.Exchange(ctx, back.Get("code"), oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	id, err := r.verifier.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	if id.Nonce != a.nonce {
		t.Errorf("ID token nonce %q, want %q", id.Nonce, a.nonce)
	}
	if err := id.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	var c idClaims
	if err := id.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.SID, "ses_") {
		t.Errorf("ID token sid %q, want a session id", c.SID)
	}
	return tok, id, c
}

func TestOIDCGoRelyingParty(t *testing.T) {
	start := time.Now()
	step := func(what string) {
		t.Logf("%-44s at %v", what, time.Since(start).Round(time.Millisecond))
	}
	ctx := context.Background()
	n, mp := startSSONode(t)

	// The relying party's own server: a callback that a browser would
	// reach (this test reads the redirect instead), the page after
	// logout, and the back-channel logout endpoint Onramp POSTs to.
	bcl := &logoutReceiver{}
	rpMux := http.NewServeMux()
	rpMux.Handle("/backchannel-logout", bcl)
	rpSrv := httptest.NewServer(rpMux)
	t.Cleanup(rpSrv.Close)
	callback, afterLogout := rpSrv.URL+"/callback", rpSrv.URL+"/logged-out"

	app := n.CreateClient(t, "app", clientOptions{
		RedirectURIs: []string{callback}, PostLogoutURIs: []string{afterLogout}, BackchannelURI: rpSrv.URL + "/backchannel-logout", FirstParty: true,
	})
	spa := n.CreateClient(t, "spa", clientOptions{RedirectURIs: []string{callback}, Public: true, FirstParty: true})
	step("node, mailpit, two clients")

	// Discovery.
	provider, err := oidc.NewProvider(ctx, n.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var meta providerMeta
	if err := provider.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	if meta.EndSession != n.URL+"/oauth/end_session" || meta.Introspection == "" || meta.Revocation == "" || !meta.BackchannelOK || !meta.BackchannelSI {
		t.Fatalf("discovery document: %+v", meta)
	}
	rp := newGoRP(provider, app, callback, oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess)
	bcl.setVerifier(rp.verifier)
	step("discovery")

	// A person signs up on the hosted pages in one browser (the code comes
	// from Mailpit) ...
	email := "rp-" + randomID(t) + "@example.com"
	const password = "correct horse battery staple 42"
	signUpBrowser := newOIDCBrowser(t, n.URL)
	subject := signUp(t, signUpBrowser, mp, email, "Ada Lovelace", password)
	step("sign-up with the code from Mailpit")

	// ... and signs in to the app in another: the authorization request
	// lands on the sign-in page, the password form finishes it, and the
	// browser comes back to the app with a code.
	browser := newOIDCBrowser(t, n.URL)
	ar := rp.newAuthRequest()
	p := browser.get(ar.url)
	if p.status != http.StatusOK || p.url.Path != "/auth/sign-in" || p.url.Query().Get("authRequest") == "" {
		t.Fatalf("authorization request: %d at %s, want the sign-in page", p.status, p.url)
	}
	p = browser.submit(p, "/auth/sign-in", "email", email, "password", password, "action", "password")
	tok, id, claims := rp.exchange(t, ctx, ar, backAt(t, p, callback))
	if id.Subject != subject || claims.AZP != app.ClientID || !slices.Equal(claims.AMR, []string{"pwd"}) || claims.AuthTime == 0 {
		t.Errorf("ID token sub %q azp %q amr %v auth_time %d; want %q %q [pwd]", id.Subject, claims.AZP, claims.AMR, claims.AuthTime, subject, app.ClientID)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token for offline_access")
	}
	rawID, _ := tok.Extra("id_token").(string)
	step("code flow with PKCE and nonce, ID token")

	// Userinfo: email, its proof, and the name typed at sign-up (a trait).
	ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var uic map[string]any
	if err := ui.Claims(&uic); err != nil {
		t.Fatal(err)
	}
	if ui.Subject != subject || ui.Email != email || !ui.EmailVerified || uic["name"] != "Ada Lovelace" {
		t.Errorf("userinfo = %v", uic)
	}
	if got := introspect(t, meta.Introspection, app, tok.AccessToken); got["active"] != true || got["sub"] != subject || got["client_id"] != app.ClientID {
		t.Errorf("introspection of the access token = %v", got)
	}
	step("userinfo, introspection")

	// Refresh through x/oauth2's TokenSource (the token is made to look
	// expired), then reuse the rotated refresh token: refused, and the
	// whole family dies.
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	fresh, err := rp.conf.TokenSource(ctx, &expired).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if fresh.RefreshToken == "" || fresh.RefreshToken == tok.RefreshToken || fresh.AccessToken == tok.AccessToken {
		t.Fatalf("refresh did not rotate the tokens: %+v", fresh)
	}
	if raw, _ := fresh.Extra("id_token").(string); raw != "" {
		if rid, err := rp.verifier.Verify(ctx, raw); err != nil || rid.Subject != subject {
			t.Errorf("refreshed ID token: %v", err)
		}
	}
	if got := introspect(t, meta.Introspection, app, fresh.AccessToken); got["active"] != true {
		t.Fatalf("the refreshed access token is not active: %v", got)
	}
	_, err = rp.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("reuse of a rotated refresh token = %v, want invalid_grant", err)
	}
	if _, err := rp.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: fresh.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token(); err == nil {
		t.Error("the newest refresh token still works after the old one was reused")
	}
	for what, at := range map[string]string{"first": tok.AccessToken, "refreshed": fresh.AccessToken} {
		if got := introspect(t, meta.Introspection, app, at); got["active"] != false {
			t.Errorf("the %s access token after reuse: introspection %v, want inactive", what, got)
		}
	}
	if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(fresh)); err == nil {
		t.Error("userinfo answers a token of a revoked family")
	}
	step("refresh, reuse detection")

	// RP-initiated logout: end_session with the ID token as hint and the
	// registered post-logout URI sends the browser back with its state ...
	q := url.Values{"id_token_hint": {rawID}, "post_logout_redirect_uri": {afterLogout}, "state": {"bye-42"}}
	p = browser.get(meta.EndSession + "?" + q.Encode())
	if back := backAt(t, p, afterLogout); back.Get("state") != "bye-42" || len(back) != 1 {
		t.Errorf("after end_session the browser is sent to %s?%s, want state=bye-42 only", afterLogout, back.Encode())
	}
	// ... and the session is over: prompt=none now answers login_required.
	ar = rp.newAuthRequest(oauth2.SetAuthURLParam("prompt", "none"))
	back := backAt(t, browser.get(ar.url), callback)
	if back.Get("error") != "login_required" || back.Get("state") != ar.state || back.Get("code") != "" {
		t.Errorf("prompt=none after logout answered %v, want error=login_required with the state", back)
	}
	// The app's back-channel endpoint got a logout token for the session.
	lt := bcl.waitFor(t, claims.SID, 15*time.Second)
	if lt.Subject != subject || !slices.Equal(lt.Audience, []string{app.ClientID}) || lt.Issuer != n.URL {
		t.Errorf("logout token sub %q aud %v iss %q; want %q [%s] %q", lt.Subject, lt.Audience, lt.Issuer, subject, app.ClientID, n.URL)
	}
	step("end_session, prompt=none, back-channel logout")

	// The other browser's session (the sign-up's) is another session: it
	// still signs in without a page, here into the public client, which
	// must use PKCE.
	spaRP := newGoRP(provider, spa, callback, oidc.ScopeOpenID, "email")
	t.Run("public client", func(t *testing.T) {
		// No code_challenge: refused before anyone signs in.
		noPKCE := spaRP.conf.AuthCodeURL("st-nopkce", oidc.Nonce("n-nopkce"))
		if back := backAt(t, signUpBrowser.get(noPKCE), callback); back.Get("error") != "invalid_request" || back.Get("code") != "" {
			t.Errorf("a public client without PKCE: %v, want error=invalid_request", back)
		}
		// A wrong verifier, then none: invalid_grant.
		ar := spaRP.newAuthRequest()
		back := backAt(t, signUpBrowser.get(ar.url), callback)
		if _, err := spaRP.conf.Exchange(ctx, back.Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier())); !isOAuthError(err, "invalid_grant") {
			t.Errorf("exchange with a wrong verifier = %v, want invalid_grant", err)
		}
		ar = spaRP.newAuthRequest()
		back = backAt(t, signUpBrowser.get(ar.url), callback)
		if _, err := spaRP.conf.Exchange(ctx, back.Get("code")); err == nil {
			t.Error("a public client exchanged a code without its verifier")
		}
		// The right verifier, no secret: tokens for the same person.
		ar = spaRP.newAuthRequest()
		back = backAt(t, signUpBrowser.get(ar.url), callback)
		tok, id, _ := spaRP.exchange(t, ctx, ar, back)
		if id.Subject != subject {
			t.Errorf("public client ID token sub %q, want %q", id.Subject, subject)
		}
		ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil || ui.Email != email || !ui.EmailVerified {
			t.Errorf("public client userinfo = %+v, %v", ui, err)
		}
		// And no client credentials for a client without a secret.
		cc := clientcredentials.Config{ClientID: spa.ClientID, TokenURL: provider.Endpoint().TokenURL, AuthStyle: oauth2.AuthStyleInParams}
		if _, err := cc.Token(ctx); err == nil {
			t.Error("a public client got a client-credentials token")
		}
	})
	step("public client")

	t.Run("client credentials", func(t *testing.T) {
		cc := clientcredentials.Config{ClientID: app.ClientID, ClientSecret: app.ClientSecret, TokenURL: provider.Endpoint().TokenURL, Scopes: []string{"reports:read"}}
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatalf("client credentials: %v", err)
		}
		got := introspect(t, meta.Introspection, app, tok.AccessToken)
		if got["active"] != true || got["sub"] != app.ClientID || got["scope"] != "reports:read" {
			t.Errorf("introspection of the client's token = %v", got)
		}
		if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
			t.Error("a client's own token reads userinfo")
		}
		cc.ClientSecret = "cs_wrong"
		if _, err := cc.Token(ctx); !isOAuthError(err, "invalid_client") {
			t.Errorf("client credentials with a wrong secret = %v, want invalid_client", err)
		}
	})
	step("client credentials")
}

// isOAuthError reports whether err is a token endpoint error with this code.
func isOAuthError(err error, code string) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == code
}
