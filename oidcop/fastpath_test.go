package oidcop_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/oidcop"
)

// TestDirectAnswersMatchOp: the provider answers introspection and
// userinfo itself in the common case (fastpath.go). Every request here
// gets the same status, content type and bytes with and without that,
// successes and refusals alike, before and after the token is revoked.
func TestDirectAnswersMatchOp(t *testing.T) {
	w, app := benchWorld(t)
	other := w.property("other", clientParams{RedirectURIs: []string{rpRedirect}})
	// Traits that need escaping reach userinfo through the custom claims
	// (company.name is "Analytical Engines <Ltd>").
	full := issueToken(t, w, app, "openid", "profile", "email", "phone", auth.ScopeTraits)
	emailOnly := issueToken(t, w, app, "openid", "email")
	noOpenID := issueToken(t, w, app, "email")
	// Claims that are objects and numbers go through encoding/json.
	nested := w.property("nested", clientParams{FirstParty: true, RedirectURIs: []string{rpRedirect}, Claims: map[string]string{"org": "company", "size": "company.size", "sub_plan": "plan"}})
	nestedToken := issueToken(t, w, nested, "openid", "profile", auth.ScopeTraits)
	basic := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
	}
	own := basic(app.Client.ID, app.Client.Secret)
	type req struct {
		name, method, path, auth, ctype, body string
	}
	form := func(v url.Values) string { return v.Encode() }
	intro := func(name, auth, body string) req {
		return req{name, http.MethodPost, oidcop.IntrospectPath, auth, "application/x-www-form-urlencoded", body}
	}
	ui := func(name, auth string) req { return req{name, http.MethodGet, oidcop.UserinfoPath, auth, "", ""} }
	cases := func() []req {
		return []req{
			intro("introspect own token", own, form(url.Values{"token": {full}})),
			intro("introspect email token", own, form(url.Values{"token": {emailOnly}, "token_type_hint": {"access_token"}})),
			intro("introspect token without openid", own, form(url.Values{"token": {noOpenID}})),
			intro("introspect by another client", basic(other.Client.ID, other.Client.Secret), form(url.Values{"token": {full}})),
			intro("introspect wrong secret", basic(app.Client.ID, "cs_wrong"), form(url.Values{"token": {full}})),
			intro("introspect unknown client", basic("cli_nobody", "x"), form(url.Values{"token": {full}})),
			intro("introspect escaped credentials", basic(url.QueryEscape(app.Client.ID), url.QueryEscape(app.Client.Secret)), form(url.Values{"token": {full}})),
			intro("introspect bad escape", basic("%zz", "x"), form(url.Values{"token": {full}})),
			intro("introspect garbage", own, form(url.Values{"token": {"garbage"}})),
			intro("introspect no token", own, ""),
			intro("introspect token twice", own, form(url.Values{"token": {"garbage", full}})),
			intro("introspect extra field", own, form(url.Values{"token": {full}, "client_id": {other.Client.ID}})),
			intro("introspect secret in the form", "", form(url.Values{"token": {full}, "client_id": {app.Client.ID}, "client_secret": {app.Client.Secret}})),
			intro("introspect bad form", own, "token=%zz"),
			{"introspect as JSON", http.MethodPost, oidcop.IntrospectPath, own, "application/json", `{"token":"` + full + `"}`},
			{"introspect by GET", http.MethodGet, oidcop.IntrospectPath + "?token=" + url.QueryEscape(full), own, "", ""},
			ui("userinfo full", "Bearer "+full),
			ui("userinfo lower-case scheme", "bearer "+full),
			ui("userinfo nested claims", "Bearer "+nestedToken),
			ui("userinfo email only", "Bearer "+emailOnly),
			ui("userinfo without openid", "Bearer "+noOpenID),
			ui("userinfo garbage", "Bearer garbage"),
			ui("userinfo no token", ""),
			ui("userinfo basic", own),
			{"userinfo by POST", http.MethodPost, oidcop.UserinfoPath, "", "application/x-www-form-urlencoded", form(url.Values{"access_token": {full}})},
		}
	}
	do := func(r req, direct bool) *httptest.ResponseRecorder {
		oidcop.SetDirect(w.provider, direct)
		var body *strings.Reader
		if r.body != "" {
			body = strings.NewReader(r.body)
		}
		var hr *http.Request
		if body != nil {
			hr = httptest.NewRequest(r.method, w.issuer+r.path, body)
		} else {
			hr = httptest.NewRequest(r.method, w.issuer+r.path, nil)
		}
		if r.auth != "" {
			hr.Header.Set("Authorization", r.auth)
		}
		if r.ctype != "" {
			hr.Header.Set("Content-Type", r.ctype)
		}
		rec := httptest.NewRecorder()
		w.provider.ServeHTTP(rec, hr)
		return rec
	}
	compare := func(when string) {
		for _, r := range cases() {
			a, b := do(r, false), do(r, true)
			if a.Code != b.Code || a.Header().Get("Content-Type") != b.Header().Get("Content-Type") || a.Header().Get("WWW-Authenticate") != b.Header().Get("WWW-Authenticate") || !bytes.Equal(a.Body.Bytes(), b.Body.Bytes()) {
				t.Errorf("%s, %s:\n  op:     %d %s %q\n  direct: %d %s %q", when, r.name, a.Code, a.Header().Get("Content-Type"), a.Body, b.Code, b.Header().Get("Content-Type"), b.Body)
			}
		}
	}
	compare("live tokens")
	// Refusals are OAuth error JSON (RFC 6749 §5.2), as at /oauth/token,
	// not op's text/plain 401 with its Go error text; both paths answer
	// them alike (refuseIntrospection).
	for _, tc := range []struct {
		r               req
		status          int
		code, challenge string
	}{
		{intro("wrong secret", basic(app.Client.ID, "cs_wrong"), form(url.Values{"token": {full}})), http.StatusUnauthorized, "invalid_client", `Basic realm="onramp"`},
		{intro("unknown client", basic("cli_nobody", "x"), form(url.Values{"token": {full}})), http.StatusUnauthorized, "invalid_client", `Basic realm="onramp"`},
		{intro("bad escape", basic("%zz", "x"), form(url.Values{"token": {full}})), http.StatusUnauthorized, "invalid_client", `Basic realm="onramp"`},
		{intro("no credentials", "", form(url.Values{"token": {full}})), http.StatusUnauthorized, "invalid_client", `Basic realm="onramp"`},
		{intro("secret in the form", "", form(url.Values{"token": {full}, "client_id": {app.Client.ID}, "client_secret": {app.Client.Secret}})), http.StatusUnauthorized, "invalid_client", `Basic realm="onramp"`},
		{intro("bad form", own, "token=%zz"), http.StatusBadRequest, "invalid_request", ""},
	} {
		for _, direct := range []bool{true, false} {
			rec := do(tc.r, direct)
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != tc.status || rec.Header().Get("Content-Type") != "application/json" ||
				rec.Header().Get("WWW-Authenticate") != tc.challenge || body["error"] != tc.code || body["error_description"] == "" ||
				strings.Contains(rec.Body.String(), "Parent") || strings.Contains(rec.Body.String(), "ErrorType") {
				t.Errorf("introspect, %s (direct %v) = %d %s %q %q, want %d %s", tc.r.name, direct, rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("WWW-Authenticate"), rec.Body, tc.status, tc.code)
			}
		}
	}
	// The same error as the token endpoint gives wrong credentials.
	if status, out := w.form(oidcop.TokenPath, app.Client.ID, "cs_wrong", url.Values{"grant_type": {"client_credentials"}}); status != http.StatusUnauthorized || out["error"] != "invalid_client" {
		t.Errorf("token endpoint with a wrong secret = %d %v", status, out)
	}
	if rec := do(ui("userinfo full", "Bearer "+full), true); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"company":"Analytical Engines \u003cLtd\u003e"`) {
		t.Fatalf("direct userinfo = %d %s", rec.Code, rec.Body)
	}
	if rec := do(ui("", "Bearer "+nestedToken), true); !strings.Contains(rec.Body.String(), `"org":{"name":"Analytical Engines \u003cLtd\u003e","size":12}`) {
		t.Fatalf("direct userinfo with nested claims = %d %s", rec.Code, rec.Body)
	}
	if rec := do(intro("", own, form(url.Values{"token": {full}})), true); !strings.Contains(rec.Body.String(), `"active":true`) {
		t.Fatalf("direct introspection = %d %s", rec.Code, rec.Body)
	}
	// Revoked: both answer inactive / refuse, at once.
	status, out := w.form(oidcop.RevokePath, app.Client.ID, app.Client.Secret, url.Values{"token": {full}})
	if status != http.StatusOK {
		t.Fatalf("revoke = %d %v", status, out)
	}
	compare("after revocation")
	if rec := do(intro("", own, form(url.Values{"token": {full}})), true); rec.Body.String() != "{\"active\":false}\n" {
		t.Errorf("a revoked token introspects as %s", rec.Body)
	}
	if rec := do(ui("", "Bearer "+full), true); rec.Code == http.StatusOK {
		t.Errorf("a revoked token reads userinfo: %s", rec.Body)
	}
}
