package oidcop_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/oidcop"
)

// These tests drive the provider with relying-party libraries nobody here
// wrote: coreos/go-oidc and golang.org/x/oauth2, over HTTP, against the
// real provider on a real SQLite store.

const rpRedirect = "https://app.example.com/callback"

type rp struct {
	w        *world
	prop     *auth.PropertyCreated
	provider *oidc.Provider
	conf     oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func newRP(t *testing.T, w *world, name string, p clientParams) *rp {
	t.Helper()
	if p.RedirectURIs == nil {
		p.RedirectURIs = []string{rpRedirect}
	}
	prop := w.property(name, p)
	provider, err := oidc.NewProvider(w.ctx, w.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &rp{
		w: w, prop: prop, provider: provider,
		conf: oauth2.Config{
			ClientID: prop.Client.ID, ClientSecret: prop.Client.Secret, Endpoint: provider.Endpoint(), RedirectURL: p.RedirectURIs[0],
			Scopes: []string{oidc.ScopeOpenID, "profile", "email", "phone", oidc.ScopeOfflineAccess, auth.ScopeTraits},
		},
		verifier: provider.Verifier(&oidc.Config{ClientID: prop.Client.ID}),
	}
}

// login runs the code flow with PKCE up to the token response and checks
// the ID token: signature, issuer, audience, nonce and sid.
func (r *rp) login(t *testing.T, sessionID string) (*oauth2.Token, *oidc.IDToken) {
	t.Helper()
	verifier, nonce := oauth2.GenerateVerifier(), "nonce-"+oauth2.GenerateVerifier()[:12]
	resp := r.w.authorize(r.conf.AuthCodeURL("st-1", oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)))
	code, state := r.w.codeFrom(resp)
	if state != "st-1" || code == "" {
		t.Fatalf("callback state %q code %q", state, code)
	}
	tok, err := r.conf.Exchange(r.w.ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	id, err := r.verifier.Verify(r.w.ctx, raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	if id.Nonce != nonce {
		t.Errorf("nonce = %q, want %q", id.Nonce, nonce)
	}
	var claims struct {
		SID string   `json:"sid"`
		AMR []string `json:"amr"`
		AZP string   `json:"azp"`
	}
	if err := id.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.SID != sessionID || !slices.Equal(claims.AMR, []string{"pwd"}) || claims.AZP != r.prop.Client.ID {
		t.Errorf("ID token sid %q amr %v azp %q; want %q [pwd] %q", claims.SID, claims.AMR, claims.AZP, sessionID, r.prop.Client.ID)
	}
	if err := id.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	return tok, id
}

func TestDiscovery(t *testing.T) {
	w := newWorld(t, worldOptions{})
	p, err := oidc.NewProvider(w.ctx, w.issuer)
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := p.Claims(&d); err != nil {
		t.Fatal(err)
	}
	for key, path := range map[string]string{
		"authorization_endpoint": oidcop.AuthorizePath, "token_endpoint": oidcop.TokenPath, "userinfo_endpoint": oidcop.UserinfoPath,
		"introspection_endpoint": oidcop.IntrospectPath, "revocation_endpoint": oidcop.RevokePath,
		"end_session_endpoint": oidcop.EndSessionPath, "jwks_uri": oidcop.KeysPath,
	} {
		if d[key] != w.issuer+path {
			t.Errorf("%s = %v, want %s", key, d[key], w.issuer+path)
		}
	}
	// Only what works: the code flow (no implicit, no hybrid), no device
	// or jwt-bearer grant, client secrets and no private_key_jwt.
	want := map[string][]any{
		"id_token_signing_alg_values_supported":         {"ES256"},
		"code_challenge_methods_supported":              {"S256"},
		"response_types_supported":                      {"code"},
		"grant_types_supported":                         {"authorization_code", "refresh_token", "client_credentials"},
		"token_endpoint_auth_methods_supported":         {"none", "client_secret_basic", "client_secret_post"},
		"revocation_endpoint_auth_methods_supported":    {"none", "client_secret_basic", "client_secret_post"},
		"introspection_endpoint_auth_methods_supported": {"client_secret_basic"},
	}
	for k, v := range want {
		got, _ := d[k].([]any)
		if !slices.Equal(got, v) {
			t.Errorf("%s = %v, want %v", k, d[k], v)
		}
	}
	for _, k := range []string{
		"device_authorization_endpoint", "request_object_signing_alg_values_supported", "token_endpoint_auth_signing_alg_values_supported",
		"introspection_endpoint_auth_signing_alg_values_supported", "revocation_endpoint_auth_signing_alg_values_supported",
	} {
		if v, ok := d[k]; ok {
			t.Errorf("discovery advertises %s = %v, which Onramp does not accept", k, v)
		}
	}
	if d["request_parameter_supported"] == true || d["request_uri_parameter_supported"] == true {
		t.Errorf("discovery advertises request objects: %v %v", d["request_parameter_supported"], d["request_uri_parameter_supported"])
	}
	// What was dropped is indeed refused: the implicit and hybrid flows,
	// even for a browser that is signed in.
	r := newRP(t, w, "app", clientParams{FirstParty: true})
	w.signInAs(w.person)
	for _, rt := range []string{"id_token", "id_token token", "code id_token"} {
		resp := w.authorize(r.conf.AuthCodeURL("st", oidc.Nonce("n"), oauth2.SetAuthURLParam("response_type", rt)))
		loc := resp.Header.Get("Location")
		if u, err := url.Parse(loc); err != nil || strings.Contains(loc, "id_token=") || strings.Contains(loc, "access_token=") ||
			(u.Query().Get("error") == "" && !strings.Contains(u.Fragment, "error=")) {
			t.Errorf("response_type=%s: %d Location %q; want an error and no token", rt, resp.StatusCode, loc)
		}
	}
	if d["backchannel_logout_supported"] != true || d["backchannel_logout_session_supported"] != true {
		t.Errorf("back-channel logout not advertised: %v", d)
	}
	scopes, _ := d["scopes_supported"].([]any)
	if !slices.Contains(scopes, any(auth.ScopeTraits)) || slices.Contains(scopes, any("address")) {
		t.Errorf("scopes_supported = %v", scopes)
	}
	// The key set serves the active ES256 key.
	resp, err := http.Get(w.issuer + oidcop.KeysPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "public, max-age=300" {
		t.Errorf("keys = %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
}

func TestCodeFlowUserinfoRefreshAndReuse(t *testing.T) {
	w := newWorld(t, worldOptions{})
	r := newRP(t, w, "app", clientParams{FirstParty: true, Claims: map[string]string{"company": "company.name", "plan": "plan", "seats": "company.size"}})
	sid := w.signInAs(w.person)
	tok, id := r.login(t, sid)
	if id.Subject != w.person {
		t.Errorf("sub = %q, want the person %q", id.Subject, w.person)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token for offline_access")
	}

	// Userinfo: standard claims from traits and identifiers, custom ones
	// from traits under onramp:traits, literally.
	ui, err := r.provider.UserInfo(w.ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if ui.Subject != w.person || ui.Email != "ada@example.com" || !ui.EmailVerified {
		t.Errorf("userinfo = %+v", ui)
	}
	var claims map[string]any
	if err := ui.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{
		"name": "Ada Lovelace", "given_name": "Ada", "family_name": "Lovelace", "picture": "https://img.example/ada.png",
		"phone_number": "+442079460000", "phone_number_verified": false,
		"company": "Analytical Engines <Ltd>", "plan": "pro", "seats": float64(12),
	} {
		if claims[k] != v {
			t.Errorf("userinfo %s = %#v, want %#v", k, claims[k], v)
		}
	}

	// Introspection: active for the token's client.
	if got := w.introspect(r.prop, tok.AccessToken); !active(got) || got["sub"] != w.person || got["client_id"] != r.prop.Client.ID {
		t.Errorf("introspection = %v", got)
	}

	// Refresh: the token source rotates an expired token.
	old := tok.RefreshToken
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	fresh, err := r.conf.TokenSource(w.ctx, &expired).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if fresh.RefreshToken == "" || fresh.RefreshToken == old || fresh.AccessToken == tok.AccessToken {
		t.Fatalf("refresh did not rotate: %+v", fresh)
	}
	if raw, _ := fresh.Extra("id_token").(string); raw != "" {
		if _, err := r.verifier.Verify(w.ctx, raw); err != nil {
			t.Errorf("refreshed ID token: %v", err)
		}
	}
	if !active(w.introspect(r.prop, fresh.AccessToken)) {
		t.Error("refreshed access token inactive")
	}

	// Reuse of the old refresh token: refused, and the family is dead.
	_, err = r.conf.TokenSource(w.ctx, &oauth2.Token{RefreshToken: old, Expiry: time.Now().Add(-time.Minute)}).Token()
	var re *oauth2.RetrieveError
	if err == nil || !asRetrieveError(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("reuse of a rotated refresh token = %v, want invalid_grant", err)
	}
	_, err = r.conf.TokenSource(w.ctx, &oauth2.Token{RefreshToken: fresh.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token()
	if err == nil {
		t.Error("the newest refresh token still works after reuse")
	}
	for what, at := range map[string]string{"first": tok.AccessToken, "refreshed": fresh.AccessToken} {
		if active(w.introspect(r.prop, at)) {
			t.Errorf("the %s access token is active after reuse", what)
		}
	}
	if _, err := r.provider.UserInfo(w.ctx, oauth2.StaticTokenSource(fresh)); err == nil {
		t.Error("userinfo answers a revoked token")
	}
}

func asRetrieveError(err error, re **oauth2.RetrieveError) bool {
	e, ok := err.(*oauth2.RetrieveError)
	if ok {
		*re = e
	}
	return ok
}

func TestIntrospectionAndRevocation(t *testing.T) {
	w := newWorld(t, worldOptions{})
	r := newRP(t, w, "app", clientParams{FirstParty: true})
	other := newRP(t, w, "other", clientParams{FirstParty: true})
	tok, _ := r.login(t, w.signInAs(w.person))

	if active(w.introspect(other.prop, tok.AccessToken)) {
		t.Error("another client sees the token as active")
	}
	if got := w.introspect(r.prop, "not-a-token"); active(got) {
		t.Errorf("garbage is active: %v", got)
	}
	status, _ := w.form(oidcop.IntrospectPath, "", "", url.Values{"token": {tok.AccessToken}})
	if status != http.StatusUnauthorized {
		t.Errorf("introspection without client credentials = %d, want 401", status)
	}
	status, _ = w.form(oidcop.IntrospectPath, r.prop.Client.ID, "cs_wrong", url.Values{"token": {tok.AccessToken}})
	if status != http.StatusUnauthorized {
		t.Errorf("introspection with a wrong secret = %d, want 401", status)
	}

	// Another client may not revoke the token; its client may.
	status, out := w.form(oidcop.RevokePath, other.prop.Client.ID, other.prop.Client.Secret, url.Values{"token": {tok.AccessToken}})
	if status == http.StatusOK || !active(w.introspect(r.prop, tok.AccessToken)) {
		t.Errorf("revocation by another client = %d %v; the token must stay active", status, out)
	}
	status, out = w.form(oidcop.RevokePath, r.prop.Client.ID, r.prop.Client.Secret, url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}})
	if status != http.StatusOK {
		t.Fatalf("revoke = %d %v", status, out)
	}
	if active(w.introspect(r.prop, tok.AccessToken)) {
		t.Error("a revoked access token is active")
	}
	// A refresh token revokes its family.
	status, out = w.form(oidcop.RevokePath, r.prop.Client.ID, r.prop.Client.Secret, url.Values{"token": {tok.RefreshToken}})
	if status != http.StatusOK {
		t.Fatalf("revoke refresh = %d %v", status, out)
	}
	if _, err := r.conf.TokenSource(w.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token(); err == nil {
		t.Error("a revoked refresh token works")
	}
	// Unknown tokens are not an error (RFC 7009).
	if status, _ := w.form(oidcop.RevokePath, r.prop.Client.ID, r.prop.Client.Secret, url.Values{"token": {"nope"}}); status != http.StatusOK {
		t.Errorf("revoking an unknown token = %d, want 200", status)
	}
}

func TestClientCredentials(t *testing.T) {
	w := newWorld(t, worldOptions{})
	r := newRP(t, w, "app", clientParams{})
	cc := clientcredentials.Config{ClientID: r.prop.Client.ID, ClientSecret: r.prop.Client.Secret, TokenURL: r.provider.Endpoint().TokenURL, Scopes: []string{"reports:read"}}
	tok, err := cc.Token(w.ctx)
	if err != nil {
		t.Fatalf("client credentials: %v", err)
	}
	got := w.introspect(r.prop, tok.AccessToken)
	if !active(got) || got["sub"] != r.prop.Client.ID || got["scope"] != "reports:read" {
		t.Errorf("client token introspection = %v", got)
	}
	if _, err := r.provider.UserInfo(w.ctx, oauth2.StaticTokenSource(tok)); err == nil {
		t.Error("a client's own token reads userinfo")
	}
	cc.ClientSecret = "cs_wrong"
	if _, err := cc.Token(w.ctx); err == nil {
		t.Error("client credentials with a wrong secret")
	}
	pub := newRP(t, w, "spa", clientParams{Public: true})
	status, out := w.form(oidcop.TokenPath, "", "", url.Values{"grant_type": {"client_credentials"}, "client_id": {pub.prop.Client.ID}})
	if status == http.StatusOK {
		t.Errorf("a public client got a client-credentials token: %v", out)
	}
}

func TestEndSessionAndBackchannelLogout(t *testing.T) {
	w := newWorld(t, worldOptions{})
	r := newRP(t, w, "app", clientParams{
		FirstParty: true, PostLogoutRedirectURIs: []string{"https://app.example.com/bye"}, BackchannelLogoutURI: "https://app.example.com/bcl",
	})
	other := newRP(t, w, "other", clientParams{FirstParty: true})
	sid := w.signInAs(w.person)
	tok, _ := r.login(t, sid)
	rawID, _ := tok.Extra("id_token").(string)
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := r.provider.Claims(&meta); err != nil || meta.EndSession == "" {
		t.Fatalf("end_session_endpoint: %v %q", err, meta.EndSession)
	}
	get := func(q url.Values) *http.Response {
		t.Helper()
		resp, err := noRedirects.Get(meta.EndSession + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	// Refused: an unregistered post-logout URI, a hint of another client.
	for name, q := range map[string]url.Values{
		"unregistered post_logout_redirect_uri": {"id_token_hint": {rawID}, "post_logout_redirect_uri": {"https://evil.example.com/"}},
		"post-logout URI with a trailing slash": {"id_token_hint": {rawID}, "post_logout_redirect_uri": {"https://app.example.com/bye/"}},
		"id_token_hint of another client":       {"id_token_hint": {rawID}, "client_id": {other.prop.Client.ID}},
		"forged id_token_hint":                  {"id_token_hint": {rawID[:len(rawID)-4] + "AAAA"}},
	} {
		resp := get(q)
		if resp.StatusCode < 400 || resp.Header.Get("Location") != "" {
			t.Errorf("%s: %d Location %q; want an error and no redirect", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if len(w.accounts.endedSessions()) != 0 {
		t.Fatal("a refused end_session ended a session")
	}

	// Without a hint nothing ends: the logout page asks first.
	resp := get(url.Values{"client_id": {r.prop.Client.ID}, "post_logout_redirect_uri": {"https://app.example.com/bye"}, "state": {"s1"}})
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "/auth/logout?") || !strings.Contains(loc, "post_logout_redirect_uri=https%3A%2F%2Fapp.example.com%2Fbye") {
		t.Errorf("end_session without hint = %d %q; want the logout page", resp.StatusCode, loc)
	}
	if len(w.accounts.endedSessions()) != 0 {
		t.Fatal("end_session without id_token_hint ended a session")
	}

	// With a valid hint: the hint's session ends, and the browser goes to
	// the registered URI with its state.
	resp = get(url.Values{"id_token_hint": {rawID}, "post_logout_redirect_uri": {"https://app.example.com/bye"}, "state": {"s2"}})
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://app.example.com/bye?state=s2" {
		t.Errorf("end_session = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	ended := w.accounts.endedSessions()
	if len(ended) != 1 || ended[0].SessionID != sid || ended[0].Subject != w.person || ended[0].ClientID != r.prop.Client.ID || ended[0].Info.IP == "" || ended[0].Info.UserAgent == "" {
		t.Errorf("ended sessions = %+v", ended)
	}

	// The back-channel logout token verifies with go-oidc.
	d, err := w.provider.LogoutToken(w.ctx, oidcop.BackchannelLogout{ClientID: r.prop.Client.ID, Subject: w.person, SessionID: sid})
	if err != nil || d == nil || d.URI != "https://app.example.com/bcl" {
		t.Fatalf("logout token = %+v, %v", d, err)
	}
	lt, err := r.verifier.VerifyLogout(w.ctx, d.Token)
	if err != nil {
		t.Fatalf("VerifyLogout: %v", err)
	}
	if lt.SessionID != sid || lt.Subject != w.person || lt.TokenID == "" {
		t.Errorf("logout token = %+v", lt)
	}
	// typ logout+jwt keeps RPs that check it from taking it for an ID
	// token (go-oidc's Verify does not look).
	if hdr, _, _ := strings.Cut(d.Token, "."); !strings.Contains(decodeSegment(t, hdr), `"typ":"logout+jwt"`) {
		t.Errorf("logout token header = %s", decodeSegment(t, hdr))
	}
	if _, err := other.verifier.VerifyLogout(w.ctx, d.Token); err == nil {
		t.Error("another client accepts the logout token")
	}
	if d, err := w.provider.LogoutToken(w.ctx, oidcop.BackchannelLogout{ClientID: other.prop.Client.ID, Subject: w.person}); err != nil || d != nil {
		t.Errorf("logout token for a client without back-channel URI = %+v, %v; want none", d, err)
	}

	// Delivery: POSTed as a form to the client's URI.
	got := make(chan string, 1)
	bcl := http.NewServeMux()
	bcl.HandleFunc("POST /bcl", func(rw http.ResponseWriter, req *http.Request) { got <- req.FormValue("logout_token") })
	hc := &http.Client{Transport: roundTripper(func(req *http.Request) (*http.Response, error) {
		rec := httptest.NewRecorder()
		bcl.ServeHTTP(rec, req)
		return rec.Result(), nil
	})}
	if err := w.provider.SendBackchannelLogout(context.Background(), hc, oidcop.BackchannelLogout{ClientID: r.prop.Client.ID, Subject: w.person, SessionID: sid}); err != nil {
		t.Fatal(err)
	}
	if lt, err := r.verifier.VerifyLogout(w.ctx, <-got); err != nil || lt.SessionID != sid {
		t.Errorf("delivered logout token: %v", err)
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func decodeSegment(t *testing.T, seg string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCustomClaimsSetLater: claims set on a client after it was made (as
// PATCH /api/properties and onramp property update do, through
// UpdateClient) reach userinfo under onramp:traits, at once; without that
// scope they are not given; cleared, they are gone.
func TestCustomClaimsSetLater(t *testing.T) {
	w := newWorld(t, worldOptions{})
	r := newRP(t, w, "app", clientParams{FirstParty: true})
	if _, err := w.oauth.UpdateClient(w.ctx, auth.UpdateClientParams{ID: r.prop.Client.ID, Claims: map[string]string{"tier": "plan", "org": "company.name"}}); err != nil {
		t.Fatal(err)
	}
	userinfo := func(tok *oauth2.Token) map[string]any {
		t.Helper()
		ui, err := r.provider.UserInfo(w.ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatalf("userinfo: %v", err)
		}
		var claims map[string]any
		if err := ui.Claims(&claims); err != nil {
			t.Fatal(err)
		}
		return claims
	}
	sid := w.signInAs(w.person)
	tok, _ := r.login(t, sid)
	if c := userinfo(tok); c["tier"] != "pro" || c["org"] != "Analytical Engines <Ltd>" {
		t.Errorf("userinfo with onramp:traits = %v; want tier pro and org", c)
	}

	r.conf.Scopes = slices.DeleteFunc(slices.Clone(r.conf.Scopes), func(s string) bool { return s == auth.ScopeTraits })
	noTraits, _ := r.login(t, sid)
	if c := userinfo(noTraits); c["tier"] != nil || c["org"] != nil || c["email"] != "ada@example.com" {
		t.Errorf("userinfo without onramp:traits = %v; want no custom claims", c)
	}

	if _, err := w.oauth.UpdateClient(w.ctx, auth.UpdateClientParams{ID: r.prop.Client.ID, Claims: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	if c := userinfo(tok); c["tier"] != nil || c["org"] != nil {
		t.Errorf("userinfo after clearing the claims = %v", c)
	}
}
