package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/onramp-dev/onramp/auth"
)

// TestAPIAuditFilters: outcomes that do not exist and actions that cannot
// be one are refused with a problem naming what is accepted, instead of an
// empty list that would read as "nothing happened".
func TestAPIAuditFilters(t *testing.T) {
	s := newTestStack(t)
	// Entries to filter: minting a token is audited.
	for _, role := range []string{"support", "developer"} {
		if r := s.api(s.owner, "POST", "/api/tokens", map[string]any{"name": role, "role": role}); r.status != http.StatusCreated {
			t.Fatalf("create token = %d %s", r.status, r.body)
		}
	}
	var all struct {
		Data []auth.AuditEntry `json:"data"`
	}
	s.api(s.owner, "GET", "/api/audit", nil).json(t, &all)
	if len(all.Data) == 0 {
		t.Fatal("the stack wrote no audit entries to filter")
	}

	for _, q := range []string{"outcome=weird", "outcome=Success", "outcome=successful"} {
		r := s.api(s.owner, "GET", "/api/audit?"+q, nil)
		p := wantProblem(t, r, http.StatusBadRequest)
		for _, name := range []string{"outcome", auth.OutcomeSuccess, auth.OutcomeFailure, auth.OutcomeDenied} {
			if !strings.Contains(p.Detail, name) {
				t.Errorf("%s: problem %q does not name %q", q, p.Detail, name)
			}
		}
	}
	for _, a := range []string{"DROP TABLE", "staff.*.invited", "a%b.*", "Staff.Invited", "staff invited", "**", ".staff", strings.Repeat("a", 101)} {
		r := s.api(s.owner, "GET", "/api/audit?action="+url.QueryEscape(a), nil)
		if p := wantProblem(t, r, http.StatusBadRequest); !strings.Contains(p.Detail, "action") || !strings.Contains(p.Detail, "staff.*") {
			t.Errorf("action %q: problem %q does not say what an action looks like", a, p.Detail)
		}
	}

	for _, q := range []string{"outcome=success", "outcome=failure", "outcome=denied", "action=*", "action=staff.*", "action=auth.provider_*", "action=token.created", "action=no.such_action", "action=x&outcome=denied"} {
		r := s.api(s.owner, "GET", "/api/audit?"+q, nil)
		if r.status != http.StatusOK {
			t.Errorf("%s = %d %s, want 200", q, r.status, r.body)
		}
	}
	// A valid outcome still filters.
	var ok struct {
		Data []auth.AuditEntry `json:"data"`
	}
	s.api(s.owner, "GET", "/api/audit?outcome=success", nil).json(t, &ok)
	want := 0
	for _, e := range all.Data {
		if e.Outcome == auth.OutcomeSuccess {
			want++
		}
	}
	if len(ok.Data) != want {
		t.Errorf("outcome=success: %d entries, want %d of %d", len(ok.Data), want, len(all.Data))
	}
	for _, e := range ok.Data {
		if e.Outcome != auth.OutcomeSuccess {
			t.Errorf("outcome=success answered %+v", e)
		}
	}
}
