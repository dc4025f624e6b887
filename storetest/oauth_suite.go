package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/property"
)

func newClient(propertyID string, public bool, created time.Time) *auth.Client {
	c := &auth.Client{
		ID:                     onramp.NewID("cli"),
		PropertyID:             propertyID,
		RedirectURIs:           []string{"https://app.example.com/callback", "http://localhost:3000/cb"},
		PostLogoutRedirectURIs: []string{"https://app.example.com/bye"},
		GrantTypes:             []string{auth.GrantAuthorizationCode, auth.GrantRefreshToken},
		CreatedAt:              created,
		UpdatedAt:              created.Add(time.Second),
	}
	if !public {
		c.SecretHash = property.HashSecret(onramp.NewSecret("cs"))
		c.GrantTypes = append(c.GrantTypes, auth.GrantClientCredentials)
	}
	return c
}

func sameClient(t *testing.T, got, want *auth.Client) {
	t.Helper()
	if got.ID != want.ID || got.PropertyID != want.PropertyID || got.SecretHash != want.SecretHash || got.FirstParty != want.FirstParty ||
		got.BackchannelLogoutURI != want.BackchannelLogoutURI || got.IDTokenLifetime != want.IDTokenLifetime || got.Public() != want.Public() {
		t.Errorf("client = %+v, want %+v", got, want)
	}
	if got.RedirectURIs == nil || got.PostLogoutRedirectURIs == nil || got.GrantTypes == nil {
		t.Errorf("client %s: a list is nil, want [] (JSON answers say [])", want.ID)
	}
	sameStrings(t, "redirect_uris", got.RedirectURIs, want.RedirectURIs)
	sameStrings(t, "post_logout_redirect_uris", got.PostLogoutRedirectURIs, want.PostLogoutRedirectURIs)
	sameStrings(t, "grant_types", got.GrantTypes, want.GrantTypes)
	if len(got.Claims) != len(want.Claims) {
		t.Errorf("claims = %v, want %v", got.Claims, want.Claims)
	}
	for k, v := range want.Claims {
		if got.Claims[k] != v {
			t.Errorf("claims[%q] = %q, want %q", k, got.Claims[k], v)
		}
	}
	sameTime(t, "created_at", got.CreatedAt, want.CreatedAt)
	sameTime(t, "updated_at", got.UpdatedAt, want.UpdatedAt)
}

func newAuthRequest(clientID string, created time.Time) *auth.AuthRequest {
	return &auth.AuthRequest{
		ID: onramp.NewID("arq"), ClientID: clientID, RedirectURI: "https://app.example.com/callback",
		Scopes: []string{"openid", "email"}, ResponseType: "code",
		CreatedAt: created, ExpiresAt: created.Add(30 * time.Minute),
	}
}

func sameAuthRequest(t *testing.T, got, want *auth.AuthRequest) {
	t.Helper()
	if got.ID != want.ID || got.ClientID != want.ClientID || got.RedirectURI != want.RedirectURI || got.State != want.State || got.Nonce != want.Nonce ||
		got.ResponseType != want.ResponseType || got.ResponseMode != want.ResponseMode || got.CodeChallenge != want.CodeChallenge ||
		got.CodeChallengeMethod != want.CodeChallengeMethod || got.UILocales != want.UILocales || got.LoginHint != want.LoginHint ||
		got.HintSubject != want.HintSubject || got.AnonymousID != want.AnonymousID || got.SessionID != want.SessionID ||
		got.Subject != want.Subject || got.Done != want.Done || got.CodeHash != want.CodeHash {
		t.Errorf("auth request = %+v, want %+v", got, want)
	}
	if (got.MaxAge == nil) != (want.MaxAge == nil) || (got.MaxAge != nil && *got.MaxAge != *want.MaxAge) {
		t.Errorf("max_age = %v, want %v", got.MaxAge, want.MaxAge)
	}
	sameStrings(t, "scopes", got.Scopes, want.Scopes)
	sameStrings(t, "prompt", got.Prompt, want.Prompt)
	sameStrings(t, "amr", got.AMR, want.AMR)
	sameTime(t, "auth_time", got.AuthTime, want.AuthTime)
	sameTime(t, "code_expires_at", got.CodeExpiresAt, want.CodeExpiresAt)
	sameTimePtr(t, "code_used_at", got.CodeUsedAt, want.CodeUsedAt)
	sameTime(t, "created_at", got.CreatedAt, want.CreatedAt)
	sameTime(t, "expires_at", got.ExpiresAt, want.ExpiresAt)
}

func newAccessToken(clientID, subject string, created time.Time) *auth.AccessToken {
	return &auth.AccessToken{
		ID: onramp.NewID("atk"), ClientID: clientID, Subject: subject, Scopes: []string{"openid"}, Audience: []string{clientID},
		CreatedAt: created, ExpiresAt: created.Add(time.Hour),
	}
}

func sameAccessToken(t *testing.T, got, want *auth.AccessToken) {
	t.Helper()
	if got.ID != want.ID || got.ClientID != want.ClientID || got.Subject != want.Subject || got.SessionID != want.SessionID ||
		got.RefreshFamilyID != want.RefreshFamilyID || got.AuthRequestID != want.AuthRequestID {
		t.Errorf("access token = %+v, want %+v", got, want)
	}
	sameStrings(t, "scopes", got.Scopes, want.Scopes)
	sameStrings(t, "audience", got.Audience, want.Audience)
	sameTime(t, "created_at", got.CreatedAt, want.CreatedAt)
	sameTime(t, "expires_at", got.ExpiresAt, want.ExpiresAt)
	sameTimePtr(t, "revoked_at", got.RevokedAt, want.RevokedAt)
}

func newFamily(clientID, subject string, created time.Time) *auth.RefreshFamily {
	return &auth.RefreshFamily{
		ID: onramp.NewID("rtf"), ClientID: clientID, Subject: subject, Scopes: []string{"openid", "offline_access"},
		AMR: []string{"pwd"}, AuthTime: created.Add(-time.Minute), CreatedAt: created,
		IdleExpiresAt: created.Add(24 * time.Hour), ExpiresAt: created.Add(90 * 24 * time.Hour),
	}
}

// raceTx runs fn in n goroutines at once, each in a transaction retried on
// the engine's retryable errors, and returns how many fn calls reported a
// win in a committed transaction.
func (e *env) raceTx(t *testing.T, n int, fn func(s Store, i int) (bool, error)) int {
	t.Helper()
	var wg sync.WaitGroup
	wins := make([]bool, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = e.retry(func(s Store) error {
				won, err := fn(s, i)
				wins[i] = won
				return err
			})
		}()
	}
	close(start)
	wg.Wait()
	count := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("racer %d: %v", i, errs[i])
		}
		if wins[i] {
			count++
		}
	}
	return count
}

var oauthTests = []test{
	{"OAuth/ClientRoundTrip", func(t *testing.T, e *env) {
		conf := newClient("prp_a", false, at(0))
		conf.FirstParty, conf.BackchannelLogoutURI, conf.IDTokenLifetime = true, "https://app.example.com/bcl", 10*time.Minute
		conf.Claims = map[string]string{"company": "company.name", "plan": "plan"}
		public := newClient("prp_a", true, at(time.Second))
		public.RedirectURIs, public.PostLogoutRedirectURIs = nil, nil
		other := newClient("prp_b", false, at(0))
		e.tx(t, func(s Store) error {
			for _, c := range []*auth.Client{conf, public, other} {
				if err := s.CreateClient(e.ctx, c); err != nil {
					return err
				}
			}
			return nil
		})
		for _, want := range []*auth.Client{conf, public, other} {
			got, err := e.Reader().ClientByID(e.ctx, want.ID)
			must(t, err)
			sameClient(t, got, want)
		}
		list, err := e.Reader().ClientsOfProperty(e.ctx, "prp_a")
		must(t, err)
		if len(list) != 2 {
			t.Fatalf("ClientsOfProperty = %d clients, want 2", len(list))
		}
		sameClient(t, list[0], conf)
		sameClient(t, list[1], public)
		none, err := e.Reader().ClientsOfProperty(e.ctx, "prp_none")
		if err != nil || none == nil || len(none) != 0 {
			t.Errorf("ClientsOfProperty of a property without clients = %#v, %v; want an empty, non-nil list", none, err)
		}

		conf.RedirectURIs = []string{"https://new.example.com/cb"}
		conf.SecretHash, conf.Claims, conf.UpdatedAt = property.HashSecret("rotated"), nil, at(time.Hour)
		e.tx(t, func(s Store) error { return s.UpdateClient(e.ctx, conf) })
		got, err := e.Reader().ClientByID(e.ctx, conf.ID)
		must(t, err)
		sameClient(t, got, conf)

		_, err = e.Reader().ClientByID(e.ctx, "cli_nope")
		wantCode(t, err, onramp.ENOTFOUND, "ClientByID")
		err = e.InTx(e.ctx, func(s Store) error { return s.UpdateClient(e.ctx, newClient("prp_a", true, at(0))) })
		wantCode(t, err, onramp.ENOTFOUND, "UpdateClient of a missing client")
		err = e.InTx(e.ctx, func(s Store) error { return s.CreateClient(e.ctx, other) })
		wantCode(t, err, onramp.ECONFLICT, "CreateClient with a taken id")
	}},
	{"OAuth/AuthRequestLifecycle", func(t *testing.T, e *env) {
		maxAge, zero := int64(300), int64(0)
		full := newAuthRequest("cli_a", at(0))
		full.State, full.Nonce, full.ResponseMode = "st ✓", "n-0nce", "form_post"
		full.CodeChallenge, full.CodeChallengeMethod = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "S256"
		full.Prompt, full.MaxAge, full.UILocales = []string{"login", "consent"}, &maxAge, "de en"
		full.LoginHint, full.HintSubject, full.AnonymousID = "ada@example.com", "per_hint", "anon-1"
		plain := newAuthRequest("cli_a", at(time.Second))
		plain.MaxAge = &zero // max_age=0 is not "absent"
		bare := newAuthRequest("cli_b", at(2*time.Second))
		e.tx(t, func(s Store) error {
			for _, r := range []*auth.AuthRequest{full, plain, bare} {
				if err := s.CreateAuthRequest(e.ctx, r); err != nil {
					return err
				}
			}
			return nil
		})
		for _, want := range []*auth.AuthRequest{full, plain, bare} {
			got, err := e.Reader().AuthRequestByID(e.ctx, want.ID)
			must(t, err)
			sameAuthRequest(t, got, want)
		}
		err := e.InTx(e.ctx, func(s Store) error { return s.CreateAuthRequest(e.ctx, bare) })
		wantCode(t, err, onramp.ECONFLICT, "CreateAuthRequest with a taken id")

		// A code only goes to a done request.
		var ok bool
		e.tx(t, func(s Store) (err error) {
			ok, err = s.SetAuthCode(e.ctx, full.ID, "hash-full", at(time.Minute))
			return
		})
		if ok {
			t.Fatal("SetAuthCode on a request that is not done = true")
		}
		done := auth.AuthRequestDone{Subject: "per_ada", SessionID: "ses_1", AuthTime: at(30 * time.Second), AMR: []string{"pwd", "otp"}}
		e.tx(t, func(s Store) (err error) { ok, err = s.FinishAuthRequest(e.ctx, full.ID, done); return })
		if !ok {
			t.Fatal("FinishAuthRequest = false, want true")
		}
		e.tx(t, func(s Store) (err error) {
			ok, err = s.FinishAuthRequest(e.ctx, full.ID, auth.AuthRequestDone{Subject: "per_mallory", AuthTime: at(0)})
			return
		})
		if ok {
			t.Fatal("second FinishAuthRequest = true: a done request was taken over")
		}
		full.Subject, full.SessionID, full.AuthTime, full.AMR, full.Done = done.Subject, done.SessionID, done.AuthTime, done.AMR, true

		e.tx(t, func(s Store) (err error) {
			ok, err = s.SetAuthCode(e.ctx, full.ID, "hash-full", at(time.Minute))
			return
		})
		if !ok {
			t.Fatal("SetAuthCode = false, want true")
		}
		e.tx(t, func(s Store) (err error) {
			ok, err = s.SetAuthCode(e.ctx, full.ID, "hash-second", at(2*time.Minute))
			return
		})
		if ok {
			t.Fatal("second SetAuthCode = true: a request issued two codes")
		}
		full.CodeHash, full.CodeExpiresAt = "hash-full", at(time.Minute)
		got, err := e.Reader().AuthRequestByCodeHash(e.ctx, "hash-full")
		must(t, err)
		sameAuthRequest(t, got, full)
		_, err = e.Reader().AuthRequestByCodeHash(e.ctx, "hash-second")
		wantCode(t, err, onramp.ENOTFOUND, "AuthRequestByCodeHash of a refused code")

		// Two requests can never share a code.
		e.tx(t, func(s Store) error {
			_, err := s.FinishAuthRequest(e.ctx, plain.ID, done)
			return err
		})
		err = e.InTx(e.ctx, func(s Store) error {
			_, err := s.SetAuthCode(e.ctx, plain.ID, "hash-full", at(time.Minute))
			return err
		})
		wantCode(t, err, onramp.ECONFLICT, "SetAuthCode with another request's code")

		used := at(40 * time.Second)
		e.tx(t, func(s Store) (err error) { ok, err = s.UseAuthCode(e.ctx, "hash-full", used); return })
		if !ok {
			t.Fatal("UseAuthCode = false, want true")
		}
		e.tx(t, func(s Store) (err error) { ok, err = s.UseAuthCode(e.ctx, "hash-full", at(50*time.Second)); return })
		if ok {
			t.Fatal("second UseAuthCode = true: a code was redeemed twice")
		}
		e.tx(t, func(s Store) (err error) { ok, err = s.UseAuthCode(e.ctx, "hash-unknown", used); return })
		if ok {
			t.Fatal("UseAuthCode of an unknown code = true")
		}
		full.CodeUsedAt = &used
		got, err = e.Reader().AuthRequestByID(e.ctx, full.ID)
		must(t, err)
		sameAuthRequest(t, got, full)

		_, err = e.Reader().AuthRequestByID(e.ctx, "arq_nope")
		wantCode(t, err, onramp.ENOTFOUND, "AuthRequestByID")
	}},
	{"OAuth/CodeRace", func(t *testing.T, e *env) {
		for round := range 10 {
			r := newAuthRequest("cli_a", at(time.Duration(round)*time.Second))
			hash := fmt.Sprintf("code-%d", round)
			e.tx(t, func(s Store) error {
				if err := s.CreateAuthRequest(e.ctx, r); err != nil {
					return err
				}
				if _, err := s.FinishAuthRequest(e.ctx, r.ID, auth.AuthRequestDone{Subject: "per_a", AuthTime: at(0)}); err != nil {
					return err
				}
				_, err := s.SetAuthCode(e.ctx, r.ID, hash, at(time.Minute))
				return err
			})
			// Each racer consumes the code and, if it won, issues a token,
			// as the token endpoint does.
			wins := e.raceTx(t, 2, func(s Store, i int) (bool, error) {
				won, err := s.UseAuthCode(e.ctx, hash, at(time.Duration(i)*time.Millisecond))
				if err != nil || !won {
					return false, err
				}
				tok := newAccessToken("cli_a", "per_a", at(0))
				tok.AuthRequestID = r.ID
				return true, s.CreateAccessToken(e.ctx, tok)
			})
			if wins != 1 {
				t.Fatalf("round %d: %d racers redeemed one code, want exactly 1", round, wins)
			}
		}
	}},
	{"OAuth/AccessTokens", func(t *testing.T, e *env) {
		fam := newFamily("cli_a", "per_a", at(0))
		fam.SessionID, fam.AuthRequestID = "ses_1", "arq_1"
		otherFam := newFamily("cli_a", "per_a", at(0))
		fromCode := newAccessToken("cli_a", "per_a", at(0))
		fromCode.SessionID, fromCode.AuthRequestID, fromCode.RefreshFamilyID = "ses_1", "arq_1", fam.ID
		fromRefresh := newAccessToken("cli_a", "per_a", at(time.Minute))
		fromRefresh.SessionID, fromRefresh.AuthRequestID, fromRefresh.RefreshFamilyID = "ses_1", "arq_1", fam.ID
		offline := newAccessToken("cli_a", "per_a", at(0))
		offline.RefreshFamilyID, offline.AuthRequestID = otherFam.ID, "arq_2"
		sameSession := newAccessToken("cli_b", "per_a", at(0))
		sameSession.SessionID, sameSession.AuthRequestID = "ses_1", "arq_3"
		loner := newAccessToken("cli_c", "cli_c", at(0))
		loner.Audience = []string{"cli_c", "api"}
		all := []*auth.AccessToken{fromCode, fromRefresh, offline, sameSession, loner}
		e.tx(t, func(s Store) error {
			for _, f := range []*auth.RefreshFamily{fam, otherFam} {
				if err := s.CreateRefreshFamily(e.ctx, f); err != nil {
					return err
				}
			}
			for _, tok := range all {
				if err := s.CreateAccessToken(e.ctx, tok); err != nil {
					return err
				}
			}
			return nil
		})
		for _, want := range all {
			got, err := e.Reader().AccessTokenByID(e.ctx, want.ID)
			must(t, err)
			sameAccessToken(t, got, want)
		}
		_, err := e.Reader().AccessTokenByID(e.ctx, "atk_nope")
		wantCode(t, err, onramp.ENOTFOUND, "AccessTokenByID")

		revoked := at(time.Hour)
		var ok bool
		e.tx(t, func(s Store) (err error) { ok, err = s.RevokeAccessToken(e.ctx, loner.ID, revoked); return })
		if !ok {
			t.Fatal("RevokeAccessToken = false")
		}
		e.tx(t, func(s Store) (err error) { ok, err = s.RevokeAccessToken(e.ctx, loner.ID, at(2*time.Hour)); return })
		if ok {
			t.Fatal("second RevokeAccessToken = true")
		}
		loner.RevokedAt = &revoked
		got, err := e.Reader().AccessTokenByID(e.ctx, loner.ID)
		must(t, err)
		sameAccessToken(t, got, loner)

		// A replayed code revokes what arq_1 produced: its family and both
		// access tokens, and nothing else.
		var ids []string
		rev := auth.Revocation{At: at(2 * time.Hour), Reason: "code replay"}
		e.tx(t, func(s Store) (err error) { ids, err = s.RevokeAuthRequestTokens(e.ctx, "arq_1", rev); return })
		sameStrings(t, "revoked by auth request", sorted(ids), sorted([]string{fromCode.ID, fromRefresh.ID}))
		f, err := e.Reader().RefreshFamilyByID(e.ctx, fam.ID)
		must(t, err)
		sameTimePtr(t, "family revoked_at", f.RevokedAt, &rev.At)
		if f.RevokedReason != "code replay" {
			t.Errorf("family revoked_reason = %q", f.RevokedReason)
		}
		f, err = e.Reader().RefreshFamilyByID(e.ctx, otherFam.ID)
		must(t, err)
		if f.RevokedAt != nil {
			t.Error("another auth request's family was revoked")
		}
		e.tx(t, func(s Store) (err error) { ids, err = s.RevokeAuthRequestTokens(e.ctx, "arq_1", rev); return })
		sameStrings(t, "revoked again", ids, nil)

		// Ending ses_1 revokes the other client's token of that session; the
		// offline family lives on.
		e.tx(t, func(s Store) (err error) {
			ids, err = s.RevokeSessionTokens(e.ctx, "ses_1", auth.Revocation{At: at(3 * time.Hour), Reason: "signed out"})
			return
		})
		sameStrings(t, "revoked by session", ids, []string{sameSession.ID})
		e.tx(t, func(s Store) (err error) {
			ids, err = s.RevokeSessionTokens(e.ctx, "", auth.Revocation{At: at(3 * time.Hour)})
			return
		})
		sameStrings(t, "revoked by the empty session", ids, nil)
		got, err = e.Reader().AccessTokenByID(e.ctx, offline.ID)
		must(t, err)
		if got.RevokedAt != nil {
			t.Error("an offline_access token died with the session")
		}

		// Reuse revokes a family and its tokens; the first reason stays.
		e.tx(t, func(s Store) (err error) {
			ids, err = s.RevokeRefreshFamily(e.ctx, otherFam.ID, auth.Revocation{At: at(4 * time.Hour), Reason: "reuse"})
			return
		})
		sameStrings(t, "revoked by family", ids, []string{offline.ID})
		e.tx(t, func(s Store) (err error) {
			ids, err = s.RevokeRefreshFamily(e.ctx, otherFam.ID, auth.Revocation{At: at(5 * time.Hour), Reason: "later"})
			return
		})
		sameStrings(t, "revoked by family again", ids, nil)
		f, err = e.Reader().RefreshFamilyByID(e.ctx, otherFam.ID)
		must(t, err)
		if f.RevokedReason != "reuse" || f.RevokedAt == nil || *f.RevokedAt != stored(at(4*time.Hour)) {
			t.Errorf("family after two revocations: %v %q, want the first", f.RevokedAt, f.RevokedReason)
		}
	}},
	{"OAuth/RefreshRotation", func(t *testing.T, e *env) {
		fam := newFamily("cli_a", "per_a", at(0))
		first := &auth.RefreshToken{TokenHash: "rt-0", FamilyID: fam.ID, Generation: 0, CreatedAt: at(0)}
		e.tx(t, func(s Store) error {
			if err := s.CreateRefreshFamily(e.ctx, fam); err != nil {
				return err
			}
			return s.CreateRefreshToken(e.ctx, first)
		})
		got, err := e.Reader().RefreshFamilyByID(e.ctx, fam.ID)
		must(t, err)
		if got.ClientID != fam.ClientID || got.Subject != fam.Subject || got.RevokedAt != nil || got.RevokedReason != "" {
			t.Errorf("family = %+v, want %+v", got, fam)
		}
		sameStrings(t, "family scopes", got.Scopes, fam.Scopes)
		sameStrings(t, "family amr", got.AMR, fam.AMR)
		sameTime(t, "family auth_time", got.AuthTime, fam.AuthTime)
		sameTime(t, "family idle_expires_at", got.IdleExpiresAt, fam.IdleExpiresAt)
		sameTime(t, "family expires_at", got.ExpiresAt, fam.ExpiresAt)

		used := at(time.Minute)
		var ok bool
		e.tx(t, func(s Store) (err error) { ok, err = s.UseRefreshToken(e.ctx, "rt-0", used); return })
		if !ok {
			t.Fatal("UseRefreshToken = false")
		}
		e.tx(t, func(s Store) (err error) { ok, err = s.UseRefreshToken(e.ctx, "rt-0", at(2*time.Minute)); return })
		if ok {
			t.Fatal("second UseRefreshToken = true")
		}
		rt, err := e.Reader().RefreshTokenByHash(e.ctx, "rt-0")
		must(t, err)
		if rt.FamilyID != fam.ID || rt.Generation != 0 {
			t.Errorf("refresh token = %+v", rt)
		}
		sameTime(t, "refresh created_at", rt.CreatedAt, at(0))
		sameTimePtr(t, "refresh used_at", rt.UsedAt, &used)

		e.tx(t, func(s Store) error {
			return s.CreateRefreshToken(e.ctx, &auth.RefreshToken{TokenHash: "rt-1", FamilyID: fam.ID, Generation: 1, CreatedAt: used})
		})
		err = e.InTx(e.ctx, func(s Store) error {
			return s.CreateRefreshToken(e.ctx, &auth.RefreshToken{TokenHash: "rt-1b", FamilyID: fam.ID, Generation: 1, CreatedAt: used})
		})
		wantCode(t, err, onramp.ECONFLICT, "a second successor of one refresh token")

		e.tx(t, func(s Store) error { return s.TouchRefreshFamily(e.ctx, fam.ID, at(48*time.Hour)) })
		got, err = e.Reader().RefreshFamilyByID(e.ctx, fam.ID)
		must(t, err)
		sameTime(t, "idle_expires_at after touch", got.IdleExpiresAt, at(48*time.Hour))

		_, err = e.Reader().RefreshTokenByHash(e.ctx, "rt-nope")
		wantCode(t, err, onramp.ENOTFOUND, "RefreshTokenByHash")
		_, err = e.Reader().RefreshFamilyByID(e.ctx, "rtf_nope")
		wantCode(t, err, onramp.ENOTFOUND, "RefreshFamilyByID")
		err = e.InTx(e.ctx, func(s Store) error { return s.TouchRefreshFamily(e.ctx, "rtf_nope", at(0)) })
		wantCode(t, err, onramp.ENOTFOUND, "TouchRefreshFamily")
	}},
	{"OAuth/RefreshRace", func(t *testing.T, e *env) {
		fam := newFamily("cli_a", "per_a", at(0))
		e.tx(t, func(s Store) error {
			if err := s.CreateRefreshFamily(e.ctx, fam); err != nil {
				return err
			}
			return s.CreateRefreshToken(e.ctx, &auth.RefreshToken{TokenHash: "gen-0", FamilyID: fam.ID, CreatedAt: at(0)})
		})
		for gen := range 10 {
			// Both racers present the same token; each rotates it as the
			// token endpoint does. One successor, one winner.
			wins := e.raceTx(t, 2, func(s Store, i int) (bool, error) {
				won, err := s.UseRefreshToken(e.ctx, fmt.Sprintf("gen-%d", gen), at(time.Duration(gen)*time.Second))
				if err != nil || !won {
					return false, err
				}
				next := &auth.RefreshToken{TokenHash: fmt.Sprintf("gen-%d", gen+1), FamilyID: fam.ID, Generation: gen + 1, CreatedAt: at(time.Duration(gen) * time.Second)}
				return true, s.CreateRefreshToken(e.ctx, next)
			})
			if wins != 1 {
				t.Fatalf("generation %d: %d racers rotated one refresh token, want exactly 1", gen, wins)
			}
		}
		rt, err := e.Reader().RefreshTokenByHash(e.ctx, "gen-10")
		must(t, err)
		if rt.Generation != 10 || rt.UsedAt != nil {
			t.Errorf("last generation = %+v", rt)
		}
	}},
	{"OAuth/SigningKeys", func(t *testing.T, e *env) {
		key := func(kid string, active time.Time) *auth.SigningKey {
			return &auth.SigningKey{
				KID: kid, Alg: "ES256", PrivateKey: []byte{0, 1, 2, 0xff, byte(len(kid))}, PublicJWK: json.RawMessage(`{"kty":"EC","crv":"P-256","kid":"` + kid + `"}`),
				CreatedAt: active.Add(-24 * time.Hour), ActiveFrom: active, RetireAt: active.Add(30 * 24 * time.Hour), ExpiresAt: active.Add(37 * 24 * time.Hour),
			}
		}
		old, cur, next := key("k-old", at(-40*24*time.Hour)), key("k-cur", at(-time.Hour)), key("k-next", at(23*time.Hour))
		for _, k := range []*auth.SigningKey{next, old, cur} {
			var ok bool
			e.tx(t, func(s Store) (err error) { ok, err = s.InsertSigningKey(e.ctx, k); return })
			if !ok {
				t.Fatalf("InsertSigningKey(%s) = false", k.KID)
			}
		}
		var ok bool
		e.tx(t, func(s Store) (err error) { ok, err = s.InsertSigningKey(e.ctx, key("k-twin", next.ActiveFrom)); return })
		if ok {
			t.Fatal("InsertSigningKey of a second key for the same ActiveFrom = true")
		}
		keys, err := e.Reader().SigningKeys(e.ctx, at(0))
		must(t, err)
		var kids []string
		for _, k := range keys {
			kids = append(kids, k.KID)
		}
		// Expired keys are gone; the rest by ActiveFrom.
		sameStrings(t, "signing keys", kids, []string{"k-cur", "k-next"})
		for i, want := range []*auth.SigningKey{cur, next} {
			got := keys[i]
			if got.Alg != want.Alg || !slices.Equal(got.PrivateKey, want.PrivateKey) {
				t.Errorf("key %s = %+v, want %+v", want.KID, got, want)
			}
			sameJSON(t, "public_jwk", got.PublicJWK, want.PublicJWK)
			sameTime(t, "created_at", got.CreatedAt, want.CreatedAt)
			sameTime(t, "active_from", got.ActiveFrom, want.ActiveFrom)
			sameTime(t, "retire_at", got.RetireAt, want.RetireAt)
			sameTime(t, "expires_at", got.ExpiresAt, want.ExpiresAt)
		}

		cur.RetireAt, cur.ExpiresAt = at(0), at(time.Hour)
		e.tx(t, func(s Store) error { return s.UpdateSigningKey(e.ctx, cur) })
		keys, err = e.Reader().SigningKeys(e.ctx, at(2*time.Hour))
		must(t, err)
		if len(keys) != 1 || keys[0].KID != "k-next" {
			t.Errorf("after retiring k-cur early: %d keys", len(keys))
		}
		err = e.InTx(e.ctx, func(s Store) error { return s.UpdateSigningKey(e.ctx, key("k-nope", at(0))) })
		wantCode(t, err, onramp.ENOTFOUND, "UpdateSigningKey of a missing key")
		cur.ActiveFrom = next.ActiveFrom
		err = e.InTx(e.ctx, func(s Store) error { return s.UpdateSigningKey(e.ctx, cur) })
		wantCode(t, err, onramp.ECONFLICT, "UpdateSigningKey onto another key's ActiveFrom")
	}},
	{"OAuth/Consent", func(t *testing.T, e *env) {
		c := &auth.Consent{Subject: "per_a", ClientID: "cli_a", Scopes: []string{"openid", "email"}, GrantedAt: at(0)}
		e.tx(t, func(s Store) error { return s.PutConsent(e.ctx, c) })
		got, err := e.Reader().ConsentOf(e.ctx, "per_a", "cli_a")
		must(t, err)
		if got.Subject != "per_a" || got.ClientID != "cli_a" || got.RevokedAt != nil {
			t.Errorf("consent = %+v", got)
		}
		sameStrings(t, "consent scopes", got.Scopes, c.Scopes)
		sameTime(t, "granted_at", got.GrantedAt, c.GrantedAt)

		revoked := at(time.Hour)
		c.Scopes, c.GrantedAt, c.RevokedAt = []string{"openid", "profile"}, at(time.Minute), &revoked
		e.tx(t, func(s Store) error { return s.PutConsent(e.ctx, c) })
		got, err = e.Reader().ConsentOf(e.ctx, "per_a", "cli_a")
		must(t, err)
		sameStrings(t, "replaced scopes", got.Scopes, c.Scopes)
		sameTime(t, "replaced granted_at", got.GrantedAt, c.GrantedAt)
		sameTimePtr(t, "revoked_at", got.RevokedAt, &revoked)

		_, err = e.Reader().ConsentOf(e.ctx, "per_a", "cli_b")
		wantCode(t, err, onramp.ENOTFOUND, "ConsentOf another client")
	}},
	{"OAuth/PruneAndErase", func(t *testing.T, e *env) {
		oldReq, newReq := newAuthRequest("cli_a", at(-time.Hour)), newAuthRequest("cli_a", at(0))
		oldTok, newTok := newAccessToken("cli_a", "per_a", at(-2*time.Hour)), newAccessToken("cli_a", "per_a", at(0))
		oldFam, newFam := newFamily("cli_a", "per_a", at(0)), newFamily("cli_a", "per_a", at(0))
		oldFam.ExpiresAt = at(-time.Minute)
		e.tx(t, func(s Store) error {
			for _, step := range []error{
				s.CreateAuthRequest(e.ctx, oldReq), s.CreateAuthRequest(e.ctx, newReq),
				s.CreateAccessToken(e.ctx, oldTok), s.CreateAccessToken(e.ctx, newTok),
				s.CreateRefreshFamily(e.ctx, oldFam), s.CreateRefreshFamily(e.ctx, newFam),
				s.CreateRefreshToken(e.ctx, &auth.RefreshToken{TokenHash: "old", FamilyID: oldFam.ID, CreatedAt: at(0)}),
				s.CreateRefreshToken(e.ctx, &auth.RefreshToken{TokenHash: "new", FamilyID: newFam.ID, CreatedAt: at(0)}),
			} {
				if step != nil {
					return step
				}
			}
			return nil
		})
		e.tx(t, func(s Store) error { return s.PruneOAuth(e.ctx, at(0)) })
		r := e.Reader()
		gone := map[string]error{}
		_, gone["old auth request"] = r.AuthRequestByID(e.ctx, oldReq.ID)
		_, gone["old access token"] = r.AccessTokenByID(e.ctx, oldTok.ID)
		_, gone["old family"] = r.RefreshFamilyByID(e.ctx, oldFam.ID)
		_, gone["old refresh token"] = r.RefreshTokenByHash(e.ctx, "old")
		for what, err := range gone {
			wantCode(t, err, onramp.ENOTFOUND, what+" after prune")
		}
		_, err := r.AuthRequestByID(e.ctx, newReq.ID)
		must(t, err)
		_, err = r.AccessTokenByID(e.ctx, newTok.ID)
		must(t, err)
		_, err = r.RefreshTokenByHash(e.ctx, "new")
		must(t, err)

		finished := auth.AuthRequestDone{Subject: "per_a", AuthTime: at(0)}
		kept := newAccessToken("cli_a", "per_b", at(0))
		e.tx(t, func(s Store) error {
			if _, err := s.FinishAuthRequest(e.ctx, newReq.ID, finished); err != nil {
				return err
			}
			if err := s.CreateAccessToken(e.ctx, kept); err != nil {
				return err
			}
			return s.PutConsent(e.ctx, &auth.Consent{Subject: "per_a", ClientID: "cli_a", GrantedAt: at(0)})
		})
		e.tx(t, func(s Store) error { return s.EraseOAuth(e.ctx, []string{"per_a", "per_x"}) })
		gone = map[string]error{}
		_, gone["auth request"] = r.AuthRequestByID(e.ctx, newReq.ID)
		_, gone["access token"] = r.AccessTokenByID(e.ctx, newTok.ID)
		_, gone["family"] = r.RefreshFamilyByID(e.ctx, newFam.ID)
		_, gone["refresh token"] = r.RefreshTokenByHash(e.ctx, "new")
		_, gone["consent"] = r.ConsentOf(e.ctx, "per_a", "cli_a")
		for what, err := range gone {
			wantCode(t, err, onramp.ENOTFOUND, what+" after erase")
		}
		_, err = r.AccessTokenByID(e.ctx, kept.ID)
		must(t, err)
	}},
}
