package auth_test

import (
	"context"
	"slices"
	"testing"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// TestOAuthEventsAreRecorded: a sign-in given to a client, a replayed code
// and a reused refresh token land in the audit log of the account's
// person, with the IP and user agent of the request, and the reuse on
// their timeline too.
func TestOAuthEventsAreRecorded(t *testing.T) {
	r := newRig(t, nil)
	g := r.signUp("ada@example.com", "", "")
	w := worldOn(t, r.db, nil)
	w.oauth.SetRecorder(r.acc)
	app := w.property(t, "app", false)
	// The HTTP layer names where each call came from; every entry says it.
	ctx := auth.WithRequestInfo(context.Background(), auth.RequestInfo{IP: "203.0.113.7", UserAgent: "rp/1"})

	req, err := w.oauth.CreateAuthRequest(ctx, &auth.AuthRequest{
		ClientID: app.Client.ID, RedirectURI: redirect, ResponseType: "code", Scopes: []string{"openid", "offline_access"},
		CodeChallenge: pkce("verifier-verifier-verifier-verifier-verifier"), CodeChallengeMethod: "S256",
	})
	must(t, err)
	_, err = w.oauth.FinishAuthRequest(ctx, auth.FinishAuthRequestParams{ID: req.ID, Subject: g.Account.Subject, SessionID: g.Session.ID, AMR: []string{"email_code"}})
	must(t, err)
	code := onramp.NewSecret("code")
	must(t, w.oauth.SaveCode(ctx, req.ID, code))
	req, err = w.oauth.AuthRequestByCode(ctx, code)
	must(t, err)
	first, err := w.oauth.IssueTokens(ctx, auth.IssueParams{ClientID: app.Client.ID, AuthRequest: req, Refresh: true})
	must(t, err)
	if _, err := w.oauth.RotateRefresh(ctx, auth.RotateParams{ClientID: app.Client.ID, Token: first.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.oauth.RotateRefresh(ctx, auth.RotateParams{ClientID: app.Client.ID, Token: first.RefreshToken}); err == nil {
		t.Fatal("a reused refresh token worked")
	}
	if _, err := w.oauth.IssueTokens(ctx, auth.IssueParams{ClientID: app.Client.ID, AuthRequest: req}); err == nil {
		t.Fatal("a replayed code worked")
	}

	entries, err := r.acc.Audit(ctx, auth.AuditQuery{PersonID: g.Account.PersonID})
	must(t, err)
	var actions []string
	for _, e := range entries {
		if e.ClientID == app.Client.ID {
			actions = append(actions, e.Action)
			if e.IP != "203.0.113.7" || e.UserAgent != "rp/1" {
				t.Errorf("%s: ip %q, user agent %q; want the request's", e.Action, e.IP, e.UserAgent)
			}
		}
	}
	for _, want := range []string{"oauth.authorized", "auth.refresh_token_reused", "oauth.code_replayed"} {
		if !slices.Contains(actions, want) {
			t.Errorf("audit actions for the client = %v, missing %s", actions, want)
		}
	}
	r.deliver()
	if names := r.tl.names(g.Account.Subject); !slices.Contains(names, "auth.refresh_token_reused") {
		t.Errorf("timeline = %v, want auth.refresh_token_reused", names)
	}
}
