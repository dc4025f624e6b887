package storetest_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/onramp-dev/onramp/storetest"
)

func TestFakeEvents(t *testing.T) {
	a := storetest.FakeEvents(2000, 100, "prp_x")
	b := storetest.FakeEvents(2000, 100, "prp_x")
	if !reflect.DeepEqual(a, b) {
		t.Fatal("FakeEvents is not deterministic")
	}
	types := map[string]int{}
	persons := map[string]bool{}
	ids := map[string]bool{}
	var payload int
	for _, e := range a {
		types[e.Type]++
		persons[e.PersonID] = true
		ids[e.MessageID] = true
		payload += len(e.Properties) + len(e.Traits) + len(e.Context)
		for _, raw := range []json.RawMessage{e.Properties, e.Traits, e.Context} {
			if raw != nil && !json.Valid(raw) {
				t.Fatalf("invalid JSON %s", raw)
			}
		}
		if e.PropertyID != "prp_x" || e.Timestamp.IsZero() || e.ReceivedAt.IsZero() {
			t.Fatalf("incomplete event %+v", e)
		}
	}
	avg := payload / len(a)
	t.Logf("types %v, %d persons, %d bytes of JSON per event", types, len(persons), avg)
	if avg < 500 || avg > 800 {
		t.Errorf("events carry %d bytes of JSON on average, want about 600", avg)
	}
	if len(ids) != len(a) || len(persons) != 100 || types["page"] == 0 || types["track"] == 0 || types["identify"] == 0 {
		t.Errorf("ids %d, persons %d, types %v", len(ids), len(persons), types)
	}
}
