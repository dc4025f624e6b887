package httpapi_test

import (
	"context"
	"net/http"
	"strings"

	"github.com/onramp-dev/onramp/identity"
)

// personJSON is a person as the API shows it.
type personJSON struct {
	ID         string         `json:"id"`
	Traits     map[string]any `json:"traits"`
	MergedInto string         `json:"merged_into"`
	UserID     string         `json:"user_id"`
}

type profileJSON struct {
	Person      personJSON `json:"person"`
	Identifiers []struct {
		Type     string `json:"type"`
		Value    string `json:"value"`
		PersonID string `json:"person_id"`
	} `json:"identifiers"`
	MergedIDs []string `json:"merged_person_ids"`
}

type eventsPage struct {
	Data []struct {
		MessageID string `json:"message_id"`
		PersonID  string `json:"person_id"`
		Type      string `json:"type"`
		Event     string `json:"event"`
		Name      string `json:"name"`
		Timestamp string `json:"timestamp"`
		Seq       int64  `json:"seq"`
	} `json:"data"`
	Cursor struct {
		HasMore bool   `json:"has_more"`
		Next    string `json:"next"`
	} `json:"cursor"`
}

// ingest sends a batch with the main property's key and requires that
// every message was accepted.
func (s *testStack) ingest(msgs ...string) {
	s.t.Helper()
	r := s.track("/v1/batch", `{"batch":[`+strings.Join(msgs, ",")+`]}`)
	var cr collectResponse
	r.json(s.t, &cr)
	if r.status != 200 || cr.Accepted+cr.Duplicates != len(msgs) {
		s.t.Fatalf("ingest: %d %s", r.status, r.body)
	}
}

// personOf is the id of the profile an identifier belongs to.
func (s *testStack) personOf(typ, value string) string {
	s.t.Helper()
	p, err := s.ids.Lookup(context.Background(), identity.Key{Type: typ, Value: value})
	if err != nil {
		s.t.Fatalf("Lookup(%s:%s): %v", typ, value, err)
	}
	return p.Person.ID
}

func (s *testStack) getProfile(token, id string) (profileJSON, reply) {
	s.t.Helper()
	r := s.api(token, http.MethodGet, "/api/people/"+id, nil)
	var p profileJSON
	if r.status == 200 {
		r.json(s.t, &p)
	}
	return p, r
}
