package auth_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/postgres"
	"github.com/onramp-dev/onramp/postgres/pgtest"
	"github.com/onramp-dev/onramp/property"
	"github.com/onramp-dev/onramp/sqlite"
)

type world struct {
	ctx   context.Context
	db    *sqlite.DB
	read  auth.OAuthStore // the engine's reader, whichever engine
	clock *clock
	oauth *auth.OAuth
	props *property.Service
}

func newWorld(t testing.TB, kek []byte) *world {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "onramp.db"), sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return worldOn(t, db, kek)
}

// worldOn wires a second service over the same database, as a second node
// (or a restart with another configuration) would.
func worldOn(t testing.TB, db *sqlite.DB, kek []byte) *world {
	t.Helper()
	c := &clock{t: time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	props := property.NewService(db.Writer(), db.Reader(), c, log)
	o, err := auth.NewOAuth(auth.OAuthConfig{
		Read: db.Reader(),
		InTx: func(ctx context.Context, fn func(auth.OAuthTxStore) error) error {
			return db.InTx(ctx, func(q *sqlite.Queries) error { return fn(q) })
		},
		IsRetryable: sqlite.IsRetryable, Properties: props, Clock: c, Log: log,
		Issuer: "https://id.example.com", KeyEncryptionKey: kek,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &world{ctx: context.Background(), db: db, read: db.Reader(), clock: c, oauth: o, props: props}
}

// newPostgresWorld is newWorld on PostgreSQL (REPEATABLE READ, so racing
// writers fail and retry where SQLite serialises them), when
// ONRAMP_TEST_POSTGRES_URL is set.
func newPostgresWorld(t *testing.T, dbURL string) *world {
	t.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgtest.Schema(dbURL), postgres.Options{MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	props := property.NewService(db.Writer(), db.Reader(), c, log)
	o, err := auth.NewOAuth(auth.OAuthConfig{
		Read: db.Reader(),
		InTx: func(ctx context.Context, fn func(auth.OAuthTxStore) error) error {
			return db.InTx(ctx, func(q *postgres.Queries) error { return fn(q) })
		},
		IsRetryable: postgres.IsRetryable, Properties: props, Clock: c, Log: log, Issuer: "https://id.example.com",
	})
	if err != nil {
		t.Fatal(err)
	}
	return &world{ctx: ctx, read: db.Reader(), clock: c, oauth: o, props: props}
}

// onEngines runs fn on SQLite, and on PostgreSQL when it is configured.
func onEngines(t *testing.T, fn func(t *testing.T, w *world)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, newWorld(t, nil)) })
	t.Run("postgres", func(t *testing.T) {
		dbURL := pgtest.Database(t, "Postgres half of the OAuth rules tests")
		fn(t, newPostgresWorld(t, dbURL))
	})
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantOAuthError(t testing.TB, err error, code, what string) {
	t.Helper()
	if got := auth.OAuthErrorCode(err); got != code {
		t.Errorf("%s: error %v has OAuth code %q, want %q", what, err, got, code)
	}
}

const redirect = "https://app.example.com/callback"

// property makes a property and its client.
func (w *world) property(t testing.TB, name string, public bool) *auth.PropertyCreated {
	t.Helper()
	pc, err := w.oauth.CreateProperty(w.ctx, auth.CreatePropertyParams{
		Property: property.CreateParams{Name: name, Origins: []string{"https://app.example.com"}},
		Client: auth.ClientParams{
			RedirectURIs: []string{redirect}, Public: public, FirstParty: true,
			Claims: map[string]string{"company": "company.name", "plan": "plan"},
		},
	})
	must(t, err)
	return pc
}

func pkce(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// signedIn runs an auth request up to its code: created, finished by a
// sign-in, code saved.
func (w *world) signedIn(t testing.TB, clientID string, scopes ...string) (*auth.AuthRequest, string) {
	t.Helper()
	r, err := w.oauth.CreateAuthRequest(w.ctx, &auth.AuthRequest{
		ClientID: clientID, RedirectURI: redirect, ResponseType: "code", Scopes: append([]string{"openid"}, scopes...),
		CodeChallenge: pkce("verifier-verifier-verifier-verifier-verifier"), CodeChallengeMethod: "S256", Nonce: "n",
	})
	must(t, err)
	_, err = w.oauth.FinishAuthRequest(w.ctx, auth.FinishAuthRequestParams{ID: r.ID, Subject: "per_ada", SessionID: "ses_1", AMR: []string{"pwd"}})
	must(t, err)
	code := onramp.NewSecret("code")
	must(t, w.oauth.SaveCode(w.ctx, r.ID, code))
	r, err = w.oauth.AuthRequestByCode(w.ctx, code)
	must(t, err)
	return r, code
}

func TestValidateRedirectURI(t *testing.T) {
	good := []string{
		"https://app.example.com/callback", "https://app.example.com:8443/cb?x=1", "https://APP.example.com/cb",
		"http://localhost:3000/cb", "http://127.0.0.1/cb", "http://[::1]:8080/cb", "http://app.localhost:5173/auth",
	}
	bad := []string{
		"http://app.example.com/cb", "https://app.example.com/cb#frag", "https://app.example.com/cb#",
		"https://user@app.example.com/cb", "https://user:pw@app.example.com/cb", "https://*.example.com/cb",
		"https://app.example.com/*", "/callback", "app.example.com/cb", "myapp://callback", "javascript:alert(1)",
		"http://127.0.0.2/cb", "http://localhost.evil.com/cb", "https://", "https:///cb", "http://0.0.0.0/cb",
		"https://app.example.com/c b", "https://app.example.com\\@evil.com/", "", "data:text/html,hi",
	}
	for _, u := range good {
		if err := auth.ValidateRedirectURI(u); err != nil {
			t.Errorf("ValidateRedirectURI(%q) = %v, want ok", u, err)
		}
	}
	for _, u := range bad {
		if err := auth.ValidateRedirectURI(u); onramp.ErrorCode(err) != onramp.EINVALID {
			t.Errorf("ValidateRedirectURI(%q) = %v, want invalid", u, err)
		}
	}
}

func TestCreatePropertyMakesItsClient(t *testing.T) {
	w := newWorld(t, nil)
	conf := w.property(t, "app", false)
	if conf.Client.Secret == "" || conf.Client.Secret[:3] != "cs_" {
		t.Fatalf("client secret = %q, want cs_…", conf.Client.Secret)
	}
	stored, err := w.read.ClientByID(w.ctx, conf.Client.ID)
	must(t, err)
	sum := sha256.Sum256([]byte(conf.Client.Secret))
	if stored.SecretHash != hex.EncodeToString(sum[:]) || stored.PropertyID != conf.ID {
		t.Errorf("stored client = %+v; want the secret's SHA-256 and property %s", stored, conf.ID)
	}
	if !slices.Contains(stored.GrantTypes, auth.GrantClientCredentials) {
		t.Errorf("confidential grant types = %v", stored.GrantTypes)
	}
	if _, err := w.oauth.AuthenticateClient(w.ctx, conf.Client.ID, conf.Client.Secret); err != nil {
		t.Errorf("AuthenticateClient with the secret: %v", err)
	}
	_, err = w.oauth.AuthenticateClient(w.ctx, conf.Client.ID, conf.Client.Secret+"x")
	wantOAuthError(t, err, auth.OAuthInvalidClient, "wrong secret")
	_, err = w.oauth.AuthenticateClient(w.ctx, "cli_nope", conf.Client.Secret)
	wantOAuthError(t, err, auth.OAuthInvalidClient, "unknown client")

	pub := w.property(t, "spa", true)
	if pub.Client.Secret != "" || !pub.Client.Public() || slices.Contains(pub.Client.GrantTypes, auth.GrantClientCredentials) {
		t.Errorf("public client = %+v, secret %q", pub.Client.Client, pub.Client.Secret)
	}
	_, err = w.oauth.AuthenticateClient(w.ctx, pub.Client.ID, "")
	wantOAuthError(t, err, auth.OAuthInvalidClient, "public client authenticating")

	// A bad client leaves no property behind, and a bad property no client.
	_, err = w.oauth.CreateProperty(w.ctx, auth.CreatePropertyParams{
		Property: property.CreateParams{Name: "broken"},
		Client:   auth.ClientParams{RedirectURIs: []string{"http://evil.example.com/cb"}},
	})
	if onramp.ErrorCode(err) != onramp.EINVALID {
		t.Fatalf("CreateProperty with an http redirect URI = %v, want invalid", err)
	}
	_, err = w.oauth.CreateProperty(w.ctx, auth.CreatePropertyParams{Property: property.CreateParams{Name: "app"}, Client: auth.ClientParams{RedirectURIs: []string{redirect}}})
	if onramp.ErrorCode(err) != onramp.ECONFLICT {
		t.Fatalf("CreateProperty with a taken name = %v, want conflict", err)
	}
	_, err = w.oauth.CreateProperty(w.ctx, auth.CreatePropertyParams{
		Property: property.CreateParams{Name: "claims"},
		Client:   auth.ClientParams{Claims: map[string]string{"email": "email"}},
	})
	if onramp.ErrorCode(err) != onramp.EINVALID {
		t.Fatalf("CreateProperty with a custom claim named email = %v, want invalid", err)
	}
	ps, err := w.props.List(w.ctx)
	must(t, err)
	if len(ps) != 2 {
		t.Errorf("%d properties after two good and three refused creations, want 2", len(ps))
	}
	for _, p := range ps {
		cs, err := w.oauth.ClientsOfProperty(w.ctx, p.ID)
		must(t, err)
		if len(cs) != 1 {
			t.Errorf("property %s has %d clients, want 1", p.Name, len(cs))
		}
	}

	rot, err := w.oauth.RotateClientSecret(w.ctx, conf.Client.ID)
	must(t, err)
	_, err = w.oauth.AuthenticateClient(w.ctx, conf.Client.ID, conf.Client.Secret)
	wantOAuthError(t, err, auth.OAuthInvalidClient, "old secret after rotation")
	if _, err := w.oauth.AuthenticateClient(w.ctx, conf.Client.ID, rot.Secret); err != nil {
		t.Errorf("new secret: %v", err)
	}
}

func TestAuthRequestRules(t *testing.T) {
	w := newWorld(t, nil)
	pub, conf := w.property(t, "spa", true), w.property(t, "app", false)
	challenge := pkce("a-verifier-of-forty-three-characters-or-more")
	cases := []struct {
		name     string
		client   string
		redirect string
		chal     string
		method   string
		ok       bool
	}{
		{"public with S256", pub.Client.ID, redirect, challenge, "S256", true},
		{"public without a challenge", pub.Client.ID, redirect, "", "", false},
		{"public with plain", pub.Client.ID, redirect, challenge, "plain", false},
		{"public with a challenge and no method (plain by default)", pub.Client.ID, redirect, challenge, "", false},
		{"a method without a challenge", conf.Client.ID, redirect, "", "S256", false},
		{"a challenge that is not S256-shaped", conf.Client.ID, redirect, "short", "S256", false},
		{"confidential without PKCE", conf.Client.ID, redirect, "", "", true},
		{"confidential with plain", conf.Client.ID, redirect, "plainchallengeplainchallengeplainchallenge1", "plain", false},
		{"an unregistered redirect URI", conf.Client.ID, redirect + "/", "", "", false},
		{"a redirect URI in another case", conf.Client.ID, "https://APP.example.com/callback", "", "", false},
	}
	for _, tc := range cases {
		_, err := w.oauth.CreateAuthRequest(w.ctx, &auth.AuthRequest{
			ClientID: tc.client, RedirectURI: tc.redirect, ResponseType: "code", Scopes: []string{"openid"},
			CodeChallenge: tc.chal, CodeChallengeMethod: tc.method,
		})
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !tc.ok {
			wantOAuthError(t, err, auth.OAuthInvalidRequest, tc.name)
		}
	}
	r, err := w.oauth.CreateAuthRequest(w.ctx, &auth.AuthRequest{
		ClientID: conf.Client.ID, RedirectURI: redirect, ResponseType: "code", Scopes: []string{"openid", "admin", "email", "openid"},
	})
	must(t, err)
	if !slices.Equal(r.Scopes, []string{"email", "openid"}) {
		t.Errorf("scopes = %v, want unknown ones dropped and duplicates removed", r.Scopes)
	}
	_, err = w.oauth.CreateAuthRequest(w.ctx, &auth.AuthRequest{ClientID: "cli_nope", RedirectURI: redirect, ResponseType: "code"})
	wantOAuthError(t, err, auth.OAuthInvalidClient, "unknown client")

	// Finished once; a code once; expired requests are gone.
	_, err = w.oauth.FinishAuthRequest(w.ctx, auth.FinishAuthRequestParams{ID: r.ID, Subject: "per_a"})
	must(t, err)
	_, err = w.oauth.FinishAuthRequest(w.ctx, auth.FinishAuthRequestParams{ID: r.ID, Subject: "per_mallory"})
	if onramp.ErrorCode(err) != onramp.ECONFLICT {
		t.Errorf("second FinishAuthRequest = %v, want conflict", err)
	}
	must(t, w.oauth.SaveCode(w.ctx, r.ID, "code-1"))
	wantOAuthError(t, w.oauth.SaveCode(w.ctx, r.ID, "code-2"), auth.OAuthInvalidRequest, "a second code for one request")
	_, err = w.oauth.AuthRequestByCode(w.ctx, "code-2")
	wantOAuthError(t, err, auth.OAuthInvalidGrant, "the refused second code")
	w.clock.Add(61 * time.Second)
	_, err = w.oauth.AuthRequestByCode(w.ctx, "code-1")
	wantOAuthError(t, err, auth.OAuthInvalidGrant, "a code after 60 s")
	w.clock.Add(30 * time.Minute)
	if _, err := w.oauth.AuthRequest(w.ctx, r.ID); onramp.ErrorCode(err) != onramp.ENOTFOUND {
		t.Errorf("AuthRequest after 30 minutes = %v, want not found", err)
	}
}

func TestCodeReplayRevokesTheFirstTokens(t *testing.T) { onEngines(t, testCodeReplay) }

func testCodeReplay(t *testing.T, w *world) {
	app := w.property(t, "app", false)
	r, code := w.signedIn(t, app.Client.ID, "offline_access")
	first, err := w.oauth.IssueTokens(w.ctx, auth.IssueParams{ClientID: app.Client.ID, AuthRequest: r, Refresh: true})
	must(t, err)
	if first.RefreshToken == "" || first.AccessToken.SessionID != "" || first.Family.SessionID != "" {
		t.Errorf("an offline_access exchange: refresh %q, session %q/%q; want a refresh token bound to no session",
			first.RefreshToken, first.AccessToken.SessionID, first.Family.SessionID)
	}
	if _, err := w.oauth.AccessToken(w.ctx, first.AccessToken.ID); err != nil {
		t.Fatalf("first access token: %v", err)
	}
	// The same request object again (a second POST racing past the lookup).
	_, err = w.oauth.IssueTokens(w.ctx, auth.IssueParams{ClientID: app.Client.ID, AuthRequest: r, Refresh: true})
	wantOAuthError(t, err, auth.OAuthInvalidGrant, "second redemption")
	if _, err := w.oauth.AccessToken(w.ctx, first.AccessToken.ID); err == nil {
		t.Error("the first exchange's access token is still active after a replay")
	}
	if _, err := w.oauth.RefreshGrant(w.ctx, first.RefreshToken); err == nil {
		t.Error("the first exchange's refresh token still works after a replay")
	}
	// And a later lookup of the code is refused.
	_, err = w.oauth.AuthRequestByCode(w.ctx, code)
	wantOAuthError(t, err, auth.OAuthInvalidGrant, "lookup of a used code")
}

func TestConcurrentCodeExchange(t *testing.T) { onEngines(t, testConcurrentCodeExchange) }

func testConcurrentCodeExchange(t *testing.T, w *world) {
	app := w.property(t, "app", false)
	for round := range 5 {
		r, _ := w.signedIn(t, app.Client.ID)
		var wg sync.WaitGroup
		results := make([]*auth.Issued, 2)
		errs := make([]error, 2)
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = w.oauth.IssueTokens(w.ctx, auth.IssueParams{ClientID: app.Client.ID, AuthRequest: r})
			}()
		}
		wg.Wait()
		won := 0
		for i := range 2 {
			if errs[i] == nil {
				won++
				if _, err := w.oauth.AccessToken(w.ctx, results[i].AccessToken.ID); err == nil {
					t.Errorf("round %d: the winner's token is active although the code was replayed", round)
				}
			} else {
				wantOAuthError(t, errs[i], auth.OAuthInvalidGrant, "losing redemption")
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d of 2 concurrent redemptions won, want 1", round, won)
		}
		if r.SessionID != "ses_1" {
			t.Errorf("session of the request = %q", r.SessionID)
		}
	}
}

func TestRefreshRotationAndReuse(t *testing.T) { onEngines(t, testRefreshRotationAndReuse) }

func testRefreshRotationAndReuse(t *testing.T, w *world) {
	app := w.property(t, "app", false)
	r, _ := w.signedIn(t, app.Client.ID, "offline_access", "email")
	first, err := w.oauth.IssueTokens(w.ctx, auth.IssueParams{ClientID: app.Client.ID, AuthRequest: r, Refresh: true})
	must(t, err)
	g, err := w.oauth.RefreshGrant(w.ctx, first.RefreshToken)
	must(t, err)
	if g.Family.Subject != "per_ada" || g.Generation != 0 || !slices.Equal(g.Family.AMR, []string{"pwd"}) {
		t.Errorf("grant = %+v", g)
	}
	_, err = w.oauth.RotateRefresh(w.ctx, auth.RotateParams{ClientID: "cli_other", Token: first.RefreshToken})
	wantOAuthError(t, err, auth.OAuthInvalidGrant, "another client's refresh token")
	_, err = w.oauth.RotateRefresh(w.ctx, auth.RotateParams{ClientID: app.Client.ID, Token: first.RefreshToken, Scopes: []string{"phone"}})
	wantOAuthError(t, err, auth.OAuthInvalidScope, "a scope that was never granted")

	second, err := w.oauth.RotateRefresh(w.ctx, auth.RotateParams{ClientID: app.Client.ID, Token: first.RefreshToken, Scopes: []string{"openid"}})
	must(t, err)
	if second.RefreshToken == first.RefreshToken || !slices.Equal(second.AccessToken.Scopes, []string{"openid"}) {
		t.Errorf("rotation: %+v", second)
	}
	third, err := w.oauth.RotateRefresh(w.ctx, auth.RotateParams{ClientID: app.Client.ID, Token: second.RefreshToken})
	must(t, err)

	// The first token comes back: the family dies, with every access token.
	_, err = w.oauth.RotateRefresh(w.ctx, auth.RotateParams{ClientID: app.Client.ID, Token: first.RefreshToken})
	wantOAuthError(t, err, auth.OAuthInvalidGrant, "reuse")
	for _, tok := range []*auth.AccessToken{first.AccessToken, second.AccessToken, third.AccessToken} {
		if _, err := w.oauth.AccessToken(w.ctx, tok.ID); err == nil {
			t.Errorf("access token %s is active after reuse", tok.ID)
		}
	}
	_, err = w.oauth.RefreshGrant(w.ctx, third.RefreshToken)
	wantOAuthError(t, err, auth.OAuthInvalidGrant, "the newest refresh token after reuse")
	f, err := w.read.RefreshFamilyByID(w.ctx, first.Family.ID)
	must(t, err)
	if f.RevokedReason != "refresh token reuse" {
		t.Errorf("family revoked reason = %q", f.RevokedReason)
	}

	// Idle families expire.
	r, _ = w.signedIn(t, app.Client.ID, "offline_access")
	fresh, err := w.oauth.IssueTokens(w.ctx, auth.IssueParams{ClientID: app.Client.ID, AuthRequest: r, Refresh: true})
	must(t, err)
	w.clock.Add(31 * 24 * time.Hour)
	_, err = w.oauth.RefreshGrant(w.ctx, fresh.RefreshToken)
	wantOAuthError(t, err, auth.OAuthInvalidGrant, "an idle family")
}

func TestConcurrentRefreshRotation(t *testing.T) { onEngines(t, testConcurrentRefreshRotation) }

func testConcurrentRefreshRotation(t *testing.T, w *world) {
	app := w.property(t, "app", false)
	r, _ := w.signedIn(t, app.Client.ID, "offline_access")
	first, err := w.oauth.IssueTokens(w.ctx, auth.IssueParams{ClientID: app.Client.ID, AuthRequest: r, Refresh: true})
	must(t, err)
	var wg sync.WaitGroup
	results := make([]*auth.Issued, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = w.oauth.RotateRefresh(w.ctx, auth.RotateParams{ClientID: app.Client.ID, Token: first.RefreshToken})
		}()
	}
	wg.Wait()
	won := 0
	for i := range 2 {
		if errs[i] == nil {
			won++
			if _, err := w.oauth.RefreshGrant(w.ctx, results[i].RefreshToken); err == nil {
				t.Error("the winner's refresh token works although the token was presented twice")
			}
		}
	}
	if won != 1 {
		t.Fatalf("%d of 2 concurrent rotations won, want 1", won)
	}
}

func TestRevocationAndIntrospection(t *testing.T) {
	w := newWorld(t, nil)
	app, other := w.property(t, "app", false), w.property(t, "other", false)
	r, _ := w.signedIn(t, app.Client.ID, "offline_access")
	is, err := w.oauth.IssueTokens(w.ctx, auth.IssueParams{ClientID: app.Client.ID, AuthRequest: r, Refresh: true})
	must(t, err)
	at := is.AccessToken

	if _, err := w.oauth.Introspect(w.ctx, auth.IntrospectParams{TokenID: at.ID, Subject: "per_ada", Caller: app.Client.ID}); err != nil {
		t.Errorf("introspection by the token's client: %v", err)
	}
	if _, err := w.oauth.Introspect(w.ctx, auth.IntrospectParams{TokenID: at.ID, Subject: "per_ada", Caller: other.Client.ID}); err == nil {
		t.Error("another client sees the token as active")
	}
	if _, err := w.oauth.Introspect(w.ctx, auth.IntrospectParams{TokenID: at.ID, Subject: "per_mallory", Caller: app.Client.ID}); err == nil {
		t.Error("a token with another subject is active")
	}
	if _, err := w.oauth.UserinfoToken(w.ctx, at.ID, "per_ada"); err != nil {
		t.Errorf("userinfo token: %v", err)
	}

	wantOAuthError(t, w.oauth.RevokeToken(w.ctx, auth.RevokeTokenParams{ClientID: other.Client.ID, Token: at.ID}), auth.OAuthUnauthorizedClient, "revoking another client's access token")
	wantOAuthError(t, w.oauth.RevokeToken(w.ctx, auth.RevokeTokenParams{ClientID: other.Client.ID, Token: is.RefreshToken}), auth.OAuthUnauthorizedClient, "revoking another client's refresh token")
	must(t, w.oauth.RevokeToken(w.ctx, auth.RevokeTokenParams{ClientID: app.Client.ID, Token: "atk_unknown"}))
	must(t, w.oauth.RevokeToken(w.ctx, auth.RevokeTokenParams{ClientID: app.Client.ID, Token: "garbage"}))

	must(t, w.oauth.RevokeToken(w.ctx, auth.RevokeTokenParams{ClientID: app.Client.ID, Token: at.ID}))
	if _, err := w.oauth.AccessToken(w.ctx, at.ID); err == nil {
		t.Error("a revoked access token is active")
	}
	if _, err := w.oauth.RefreshGrant(w.ctx, is.RefreshToken); err != nil {
		t.Errorf("revoking the access token killed the refresh token: %v", err)
	}
	if sub, err := w.oauth.RefreshTokenInfo(w.ctx, app.Client.ID, is.RefreshToken); err != nil || sub != "per_ada" {
		t.Errorf("RefreshTokenInfo = %q, %v", sub, err)
	}
	if _, err := w.oauth.RefreshTokenInfo(w.ctx, other.Client.ID, is.RefreshToken); err != auth.ErrNotRefreshToken {
		t.Errorf("RefreshTokenInfo for another client = %v, want ErrNotRefreshToken", err)
	}
	must(t, w.oauth.RevokeToken(w.ctx, auth.RevokeTokenParams{ClientID: app.Client.ID, Token: is.RefreshToken}))
	if _, err := w.oauth.RefreshGrant(w.ctx, is.RefreshToken); err == nil {
		t.Error("a revoked refresh token works")
	}

	// Ending the session kills session-bound tokens only.
	r, _ = w.signedIn(t, app.Client.ID)
	bound, err := w.oauth.IssueTokens(w.ctx, auth.IssueParams{ClientID: app.Client.ID, AuthRequest: r})
	must(t, err)
	must(t, w.oauth.RevokeSessionTokens(w.ctx, "ses_1", "signed out"))
	if _, err := w.oauth.AccessToken(w.ctx, bound.AccessToken.ID); err == nil {
		t.Error("a session-bound token survived the end of its session")
	}

	// Expiry.
	r, _ = w.signedIn(t, app.Client.ID)
	late, err := w.oauth.IssueTokens(w.ctx, auth.IssueParams{ClientID: app.Client.ID, AuthRequest: r})
	must(t, err)
	w.clock.Add(time.Hour)
	if _, err := w.oauth.AccessToken(w.ctx, late.AccessToken.ID); err == nil {
		t.Error("an access token is active after its hour")
	}
}

func TestClientCredentials(t *testing.T) {
	w := newWorld(t, nil)
	app, spa := w.property(t, "app", false), w.property(t, "spa", true)
	is, err := w.oauth.IssueClientToken(w.ctx, auth.ClientTokenParams{ClientID: app.Client.ID, Scopes: []string{"openid", "reports:read", "email"}})
	must(t, err)
	if is.AccessToken.Subject != app.Client.ID || !slices.Equal(is.AccessToken.Scopes, []string{"reports:read"}) || is.RefreshToken != "" {
		t.Errorf("client token = %+v", is.AccessToken)
	}
	if _, err := w.oauth.UserinfoToken(w.ctx, is.AccessToken.ID, app.Client.ID); err == nil {
		t.Error("a client's own token reads userinfo")
	}
	if _, err := w.oauth.Introspect(w.ctx, auth.IntrospectParams{TokenID: is.AccessToken.ID, Subject: app.Client.ID, Caller: app.Client.ID}); err != nil {
		t.Errorf("introspecting a client token: %v", err)
	}
	_, err = w.oauth.IssueClientToken(w.ctx, auth.ClientTokenParams{ClientID: spa.Client.ID})
	wantOAuthError(t, err, auth.OAuthUnauthorizedClient, "a public client using client credentials")
}

func TestClaims(t *testing.T) {
	w := newWorld(t, nil)
	app := w.property(t, "app", false)
	person := &auth.Claimant{
		Subject: "per_ada",
		Traits: json.RawMessage(`{"firstName":"Ada","lastName":"Lovelace","avatar":"https://img.example/ada.png","email":"old@example.com",
			"company":{"name":"<script>alert(1)</script>","size":12},"plan":"pro","phone":"+44 20 7946 0000"}`),
		Email: "ada@example.com", EmailVerified: true,
	}
	all := []string{"openid", "profile", "email", "phone", "onramp:traits"}
	got, err := w.oauth.Claims(auth.ClaimsParams{Client: app.Client.Client, Scopes: all, Person: person})
	must(t, err)
	want := map[string]any{
		"name": "Ada Lovelace", "given_name": "Ada", "family_name": "Lovelace", "picture": "https://img.example/ada.png",
		"email": "ada@example.com", "email_verified": true, "phone_number": "+44 20 7946 0000", "phone_number_verified": false,
		"company": "<script>alert(1)</script>", "plan": "pro",
	}
	if len(got) != len(want) {
		t.Errorf("claims = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("claim %s = %#v, want %#v", k, got[k], v)
		}
	}
	got, err = w.oauth.Claims(auth.ClaimsParams{Client: app.Client.Client, Scopes: []string{"openid"}, Person: person})
	must(t, err)
	if len(got) != 0 {
		t.Errorf("claims under openid alone = %v, want none", got)
	}
	// An email only in traits is never called verified.
	got, err = w.oauth.Claims(auth.ClaimsParams{Scopes: []string{"email"}, Person: &auth.Claimant{Subject: "per_b", Traits: json.RawMessage(`{"email":"b@example.com","name":"Bee"}`)}})
	must(t, err)
	if got["email"] != "b@example.com" || got["email_verified"] != false || got["name"] != nil {
		t.Errorf("claims from traits only = %v", got)
	}
}

func TestConsent(t *testing.T) {
	w := newWorld(t, nil)
	first := w.property(t, "first", false)
	third, err := w.oauth.CreateProperty(w.ctx, auth.CreatePropertyParams{
		Property: property.CreateParams{Name: "partner"}, Client: auth.ClientParams{RedirectURIs: []string{redirect}},
	})
	must(t, err)
	ask := func(clientID string, scopes ...string) bool {
		t.Helper()
		need, err := w.oauth.ConsentRequired(w.ctx, auth.ConsentParams{Subject: "per_ada", ClientID: clientID, Scopes: scopes})
		must(t, err)
		return need
	}
	if ask(first.Client.ID, "openid", "email") {
		t.Error("a first-party client needs consent")
	}
	if !ask(third.Client.ID, "openid", "email") {
		t.Error("a third-party client needs no consent before any was given")
	}
	// The sign-in cannot finish before the person consented.
	r, err := w.oauth.CreateAuthRequest(w.ctx, &auth.AuthRequest{ClientID: third.Client.ID, RedirectURI: redirect, ResponseType: "code", Scopes: []string{"openid", "email"}})
	must(t, err)
	_, err = w.oauth.FinishAuthRequest(w.ctx, auth.FinishAuthRequestParams{ID: r.ID, Subject: "per_ada"})
	wantOAuthError(t, err, auth.OAuthConsentRequired, "finishing without consent")
	must(t, w.oauth.GrantConsent(w.ctx, auth.ConsentParams{Subject: "per_ada", ClientID: third.Client.ID, Scopes: []string{"email"}}))
	if ask(third.Client.ID, "openid", "email") {
		t.Error("consent given, still asked")
	}
	if _, err := w.oauth.FinishAuthRequest(w.ctx, auth.FinishAuthRequestParams{ID: r.ID, Subject: "per_ada"}); err != nil {
		t.Errorf("finishing after consent: %v", err)
	}
	if !ask(third.Client.ID, "openid", "email", "profile") {
		t.Error("a new scope needs no consent")
	}
	must(t, w.oauth.GrantConsent(w.ctx, auth.ConsentParams{Subject: "per_ada", ClientID: third.Client.ID, Scopes: []string{"profile"}}))
	if ask(third.Client.ID, "email", "profile") {
		t.Error("consents do not add up")
	}
	must(t, w.oauth.RevokeConsent(w.ctx, "per_ada", third.Client.ID))
	if !ask(third.Client.ID, "email") {
		t.Error("revoked consent still counts")
	}
}

func TestKeyRotation(t *testing.T) {
	w := newWorld(t, nil)
	k1, err := w.oauth.SigningKey(w.ctx)
	must(t, err)
	if k1.Alg != "ES256" || k1.Private == nil {
		t.Fatalf("first key = %+v", k1)
	}
	if made, err := w.oauth.RotateKeys(w.ctx, auth.RotateKeysParams{}); err != nil || made {
		t.Fatalf("RotateKeys right after the first key = %v, %v; want nothing to do", made, err)
	}
	kids := func() []string {
		t.Helper()
		ks, err := w.oauth.KeySet(w.ctx)
		must(t, err)
		var out []string
		for _, k := range ks {
			out = append(out, k.KID)
		}
		return out
	}
	// 29 days on (30 days of signing, less the day of publication ahead):
	// the next key is published, the first still signs.
	w.clock.Add(29*24*time.Hour + time.Hour)
	made, err := w.oauth.RotateKeys(w.ctx, auth.RotateKeysParams{})
	if err != nil || !made {
		t.Fatalf("RotateKeys a day before retirement = %v, %v; want a new key", made, err)
	}
	if made, _ := w.oauth.RotateKeys(w.ctx, auth.RotateKeysParams{}); made {
		t.Fatal("RotateKeys made a second successor")
	}
	if got := kids(); len(got) != 2 || got[0] != k1.KID {
		t.Fatalf("key set a day before rotation = %v", got)
	}
	if k, _ := w.oauth.SigningKey(w.ctx); k.KID != k1.KID {
		t.Errorf("the next key signs before its time")
	}
	w.clock.Add(24 * time.Hour)
	k2, err := w.oauth.SigningKey(w.ctx)
	must(t, err)
	if k2.KID == k1.KID {
		t.Fatal("the first key still signs after retiring")
	}
	if got := kids(); !slices.Contains(got, k1.KID) {
		t.Error("a key retired today left the key set")
	}
	// Kept 7 days after retiring, then dropped. (A later successor may be
	// published meanwhile.)
	w.clock.Add(7*24*time.Hour + time.Minute)
	_, err = w.oauth.RotateKeys(w.ctx, auth.RotateKeysParams{})
	must(t, err)
	if got := kids(); slices.Contains(got, k1.KID) || !slices.Contains(got, k2.KID) {
		t.Errorf("key set a week after retirement = %v", got)
	}

	// An emergency rotation signs at once and can withdraw the rest.
	made, err = w.oauth.RotateKeys(w.ctx, auth.RotateKeysParams{Now: true, DropOld: true})
	if err != nil || !made {
		t.Fatalf("emergency rotation = %v, %v", made, err)
	}
	k3, err := w.oauth.SigningKey(w.ctx)
	must(t, err)
	if got := kids(); len(got) != 1 || got[0] != k3.KID {
		t.Errorf("key set after --now --drop-old = %v, want only %s", got, k3.KID)
	}
}

func TestSealedSigningKeys(t *testing.T) {
	kek := make([]byte, 32)
	for i := range kek {
		kek[i] = byte(i)
	}
	w := newWorld(t, kek)
	k, err := w.oauth.SigningKey(w.ctx)
	must(t, err)
	rows, err := w.db.Reader().SigningKeys(w.ctx, w.clock.Now())
	must(t, err)
	if len(rows) != 1 || rows[0].PrivateKey[0] != 1 || len(rows[0].PrivateKey) < 100 {
		t.Fatalf("stored key is not sealed: %x…", rows[0].PrivateKey[:8])
	}
	// Another node with the same key encryption key signs with the same key.
	again := worldOn(t, w.db, kek)
	k2, err := again.oauth.SigningKey(w.ctx)
	must(t, err)
	if k2.KID != k.KID || !k2.Private.Equal(k.Private) {
		t.Error("a second node with the same key encryption key opened another key")
	}
	// One with another key cannot use the sealed key.
	wrong := make([]byte, 32)
	stranger := worldOn(t, w.db, wrong)
	if k3, err := stranger.oauth.SigningKey(w.ctx); err == nil && k3.KID == k.KID {
		t.Error("a node with the wrong key encryption key signed with the sealed key")
	}
}

// TestGroupedTokenWrites: concurrent token requests share transactions
// (groupTx) and each still gets its own, stored token; refusals in a shared
// transaction do not fail the others.
func TestGroupedTokenWrites(t *testing.T) { onEngines(t, testGroupedTokenWrites) }

func testGroupedTokenWrites(t *testing.T, w *world) {
	app := w.property(t, "app", false)
	const n = 64
	var wg sync.WaitGroup
	ids := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%4 == 0 {
				// A refused rotation rides along in the same batches.
				_, errs[i] = w.oauth.RotateRefresh(w.ctx, auth.RotateParams{ClientID: app.Client.ID, Token: "rt_unknown"})
				return
			}
			is, err := w.oauth.IssueClientToken(w.ctx, auth.ClientTokenParams{ClientID: app.Client.ID})
			if err == nil {
				ids[i] = is.AccessToken.ID
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range n {
		if i%4 == 0 {
			wantOAuthError(t, errs[i], auth.OAuthInvalidGrant, "an unknown refresh token")
			continue
		}
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		if seen[ids[i]] {
			t.Fatalf("token %s issued twice", ids[i])
		}
		seen[ids[i]] = true
		if _, err := w.read.AccessTokenByID(w.ctx, ids[i]); err != nil {
			t.Errorf("token %d not stored: %v", i, err)
		}
	}
}
