package httpapi_test

import (
	"context"
	"strings"
	"testing"

	"github.com/onramp-dev/onramp/events"
)

// TestRefusalsAreLoggedAndPrecise covers refusals found in review: a
// browser origin the property does not list is logged for its debugger; a
// zero timestamp is an invalid timestamp, not "no timestamp"; an
// out-of-range number still names its message; the bare /api path answers
// with a problem document.
func TestRefusalsAreLoggedAndPrecise(t *testing.T) {
	s := newTestStack(t)
	ctx := context.Background()
	locked := s.createProperty("locked", "https://www.example.com")
	r := s.do("POST", "/v1/t", []byte(`{"userId":"u1","event":"E","writeKey":"`+locked.WriteKey+`"}`), "Origin", "https://evil.example", "Content-Type", "text/plain")
	if r.status != 403 {
		t.Fatalf("disallowed origin: %d %s", r.status, r.body)
	}
	rs, err := s.events.Rejections(ctx, events.RejectionQuery{PropertyID: locked.ID, Limit: 10})
	if err != nil || len(rs) != 1 || rs[0].Code != events.CodeOriginNotAllowed || rs[0].Index != -1 || !strings.Contains(rs[0].Reason, "evil.example") {
		t.Fatalf("origin refusal log = %+v (%v), want one origin_not_allowed entry naming the origin", rs, err)
	}

	r = s.track("/v1/batch", `{"batch":[
		{"type":"track","userId":"u1","event":"E","messageId":"z0","timestamp":"0001-01-01T00:00:00Z"},
		{"type":"track","userId":"u1","event":"E","messageId":"big","properties":{"n":1e999}},
		{"type":"track","userId":"u1","event":"E","messageId":"fine"}]}`)
	var out struct {
		Accepted int `json:"accepted"`
		Rejected []struct {
			Index     int    `json:"index"`
			MessageID string `json:"messageId"`
			Code      string `json:"code"`
		} `json:"rejected"`
	}
	r.json(t, &out)
	if out.Accepted != 1 || len(out.Rejected) != 2 ||
		out.Rejected[0].Code != events.CodeBadTimestamp || out.Rejected[0].MessageID != "z0" ||
		out.Rejected[1].Code != events.CodeBadNumber || out.Rejected[1].MessageID != "big" {
		t.Fatalf("batch answer = %+v, want z0 invalid_timestamp and big number_out_of_range, both named", out)
	}

	r = s.api(s.owner, "GET", "/api", nil)
	if r.status != 404 || !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("GET /api = %d %s %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	r = s.api(s.owner, "POST", "/api/properties", map[string]any{"name": "prp_looks_like_an_id"})
	if r.status != 400 {
		t.Fatalf("a property name shaped like an id = %d, want 400", r.status)
	}
	r = s.api(s.owner, "POST", "/api/properties", `{"name": 5}`)
	if r.status != 400 || strings.Contains(string(r.body), "Go struct") {
		t.Fatalf("wrong field type = %d %s: want 400 without Go type names", r.status, r.body)
	}
}

// TestWrongMethodIs405: a path that exists for other methods answers 405
// with Allow, not a misleading 404.
func TestWrongMethodIs405(t *testing.T) {
	s := newTestStack(t)
	for _, tc := range []struct{ method, path, allow string }{
		{"GET", "/v1/track", "POST"},
		{"PUT", "/api/people", "GET"},
		{"DELETE", "/api/properties", "GET, POST"},
	} {
		r := s.api(s.owner, tc.method, tc.path, nil)
		if r.status != 405 || r.header.Get("Allow") != tc.allow || !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
			t.Errorf("%s %s = %d Allow %q %s; want 405 Allow %q as a problem document", tc.method, tc.path, r.status, r.header.Get("Allow"), r.header.Get("Content-Type"), tc.allow)
		}
	}
	if r := s.api(s.owner, "GET", "/api/nothing-here", nil); r.status != 404 {
		t.Errorf("an unknown path = %d, want 404", r.status)
	}
}
