package httpapi_test

import (
	"context"
	"strings"
	"testing"

	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/identity"
)

// TestDeleteErasesRejectedPayloads: deleting a person also removes what
// the rejected-events log kept of their identifiers, and nothing else.
func TestDeleteErasesRejectedPayloads(t *testing.T) {
	s := newTestStack(t)
	ok := s.track("/v1/batch", `{"batch":[
		{"type":"identify","anonymousId":"a-del","userId":"u-del","traits":{"email":"Del@Example.com"},"messageId":"d1"},
		{"type":"track","userId":"u-del","messageId":"d2"},
		{"type":"track","anonymousId":"someone","traits":{"email":"del@example.com"},"messageId":"d3"},
		{"type":"track","userId":"u-keep","messageId":"d4"}]}`)
	if ok.status != 200 {
		t.Fatalf("ingest: %d %s", ok.status, ok.body)
	}
	ctx := context.Background()
	before, err := s.events.Rejections(ctx, events.RejectionQuery{Limit: 100})
	if err != nil || len(before) != 3 {
		t.Fatalf("rejections before = %d (%v), want 3", len(before), err)
	}
	prof, err := s.ids.Lookup(ctx, identity.Key{Type: identity.UserID, Value: "u-del"})
	if err != nil {
		t.Fatal(err)
	}
	if r := s.api(s.owner, "DELETE", "/api/people/"+prof.Person.ID, nil); r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	after, err := s.events.Rejections(ctx, events.RejectionQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 1 || !strings.Contains(string(after[0].Payload), "u-keep") {
		t.Fatalf("after delete the log holds %d rejections, want only u-keep's", len(after))
	}
}
