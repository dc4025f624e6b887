package storetest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/onramp-dev/onramp/events"
)

const testProperty = "prp_test"

// event returns a small track event.
func event(messageID, personID string, ts time.Time) *events.Event {
	return &events.Event{
		PropertyID: testProperty, MessageID: messageID, PersonID: personID, Type: events.TypeTrack, Event: "Clicked",
		AnonymousID: "anon-" + personID, Timestamp: ts, ReceivedAt: ts.Add(time.Second), Properties: json.RawMessage(`{"button": "buy"}`),
	}
}

func sameEvent(t *testing.T, got, want *events.Event) {
	t.Helper()
	if got.Seq != want.Seq || got.PropertyID != want.PropertyID || got.MessageID != want.MessageID || got.PersonID != want.PersonID ||
		got.Type != want.Type || got.Event != want.Event || got.Name != want.Name || got.UserID != want.UserID ||
		got.AnonymousID != want.AnonymousID || got.GroupID != want.GroupID || got.PreviousID != want.PreviousID || got.IP != want.IP {
		t.Errorf("event %s:\n got %+v\nwant %+v", want.MessageID, got, want)
	}
	sameTime(t, want.MessageID+" timestamp", got.Timestamp, want.Timestamp)
	sameTime(t, want.MessageID+" original_timestamp", got.OriginalTimestamp, want.OriginalTimestamp)
	sameTime(t, want.MessageID+" sent_at", got.SentAt, want.SentAt)
	sameTime(t, want.MessageID+" received_at", got.ReceivedAt, want.ReceivedAt)
	sameJSON(t, want.MessageID+" properties", got.Properties, want.Properties)
	sameJSON(t, want.MessageID+" traits", got.Traits, want.Traits)
	sameJSON(t, want.MessageID+" context", got.Context, want.Context)
}

func (e *env) insertEvents(t *testing.T, evs ...*events.Event) {
	t.Helper()
	e.tx(t, func(s Store) error { return s.InsertEvents(e.ctx, evs) })
}

func messageIDs(evs []*events.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.MessageID)
	}
	return out
}

func checkConsecutive(t *testing.T, what string, evs []*events.Event, after int64) {
	t.Helper()
	for i, ev := range evs {
		if ev.Seq <= after || (i > 0 && ev.Seq != evs[i-1].Seq+1) {
			t.Fatalf("%s: seq of event %d = %d (previous %d, after %d); want consecutive, increasing, in input order", what, i, ev.Seq, after, evs[max(i-1, 0)].Seq)
		}
	}
}

var eventTests = []test{
	{"Event/RoundTrip", func(t *testing.T, e *env) {
		zone := time.FixedZone("IST", 5*3600+1800)
		ts := time.Date(2026, 2, 3, 4, 5, 6, 123456789, zone)
		big := `{"blob": "` + strings.Repeat("é", 15000) + `", "list": [` + strings.Repeat(`{"a": 1}, `, 500) + `null]}`
		evs := []*events.Event{
			{PropertyID: testProperty, MessageID: "full", PersonID: "per_a", Type: events.TypeTrack, Event: "Order Completed 🛒",
				UserID: "u-1", AnonymousID: "a-1", GroupID: "g-1", PreviousID: "p-1",
				Timestamp: ts, OriginalTimestamp: ts.Add(-time.Second), SentAt: ts.Add(time.Millisecond), ReceivedAt: ts.Add(time.Second + 999),
				Properties: json.RawMessage(`{"revenue": 99.99, "currency": "EUR", "items": [{"sku": "ß-1", "qty": 2}], "ok": true, "none": null}`),
				Traits:     json.RawMessage(`{"plan": "pro"}`),
				Context:    json.RawMessage(`{"ip": "203.0.113.9", "page": {"path": "/checkout", "title": "Caisse — paiement"}, "library": {"name": "analytics.js"}}`),
				IP:         "203.0.113.9"},
			{PropertyID: testProperty, MessageID: "page", PersonID: "per_a", Type: events.TypePage, Name: "Pricing",
				AnonymousID: "a-1", Timestamp: at(0), ReceivedAt: at(0), Properties: json.RawMessage(`{}`), IP: "2001:db8::1"},
			{PropertyID: testProperty, MessageID: "identify", PersonID: "per_b", Type: events.TypeIdentify, UserID: "u-2",
				Timestamp: at(time.Hour), ReceivedAt: at(time.Hour), Traits: json.RawMessage(`{"email": "b@example.com", "name": "Ｂｏｂ"}`)},
			{PropertyID: testProperty, MessageID: "bare", PersonID: "per_b", Type: events.TypeScreen, Name: "",
				Timestamp: at(2 * time.Hour), ReceivedAt: at(2 * time.Hour), Properties: json.RawMessage(`null`)},
			{PropertyID: testProperty, MessageID: "large", PersonID: "per_b", Type: events.TypeTrack, Event: "Big",
				Timestamp: at(3 * time.Hour), ReceivedAt: at(3 * time.Hour), Properties: json.RawMessage(big)},
			{PropertyID: "prp_other", MessageID: "full", PersonID: "per_a", Type: events.TypeAlias, PreviousID: "a-1", UserID: "u-1",
				Timestamp: at(4 * time.Hour), ReceivedAt: at(4 * time.Hour)},
		}
		e.insertEvents(t, evs...)
		checkConsecutive(t, "InsertEvents", evs, 0)
		got, err := e.Reader().EventsAfter(e.ctx, 0, 100)
		must(t, err)
		if len(got) != len(evs) {
			t.Fatalf("EventsAfter = %d events, want %d", len(got), len(evs))
		}
		for i := range evs {
			sameEvent(t, got[i], evs[i])
		}
		n, err := e.Reader().CountEvents(e.ctx)
		if err != nil || n != int64(len(evs)) {
			t.Errorf("CountEvents = %d, %v", n, err)
		}
	}},
	{"Event/NUL", func(t *testing.T, e *env) {
		// SDKs send \u0000 inside strings; Postgres jsonb refuses it. The
		// event must be stored, with the NUL kept or replaced by U+FFFD,
		// and escaped backslashes before "u0000" left alone.
		ev := event("nul", "per_a", at(0))
		ev.Properties = json.RawMessage(`{"q": "a\u0000b", "path": "C:\\u0000dir", "k\u0000": 1}`)
		ev.Context = json.RawMessage(`{"ua": "\u0000"}`)
		ev.Traits = json.RawMessage(`{"t": "\\\u0000"}`)
		e.insertEvents(t, ev)
		got, err := e.Reader().EventsAfter(e.ctx, 0, 10)
		must(t, err)
		if len(got) != 1 {
			t.Fatalf("event with NUL not stored: %v", got)
		}
		var props, ctx, traits map[string]any
		if err := json.Unmarshal(got[0].Properties, &props); err != nil {
			t.Fatalf("properties %q: %v", got[0].Properties, err)
		}
		must(t, json.Unmarshal(got[0].Context, &ctx))
		must(t, json.Unmarshal(got[0].Traits, &traits))
		nul := func(s any, prefix, suffix string) bool {
			return s == prefix+"\x00"+suffix || s == prefix+"\ufffd"+suffix
		}
		_, keyKept := props["k\x00"]
		_, keyReplaced := props["k\ufffd"]
		if !nul(props["q"], "a", "b") || props["path"] != `C:\u0000dir` || !(keyKept || keyReplaced) || !nul(ctx["ua"], "", "") || !nul(traits["t"], `\`, "") {
			t.Errorf("NUL handling: properties %q, context %q, traits %q", got[0].Properties, got[0].Context, got[0].Traits)
		}
	}},
	{"Event/Seq", func(t *testing.T, e *env) {
		var first, second []*events.Event
		for i := range 250 { // past SQLite's chunk of 100
			first = append(first, event(fmt.Sprintf("a%03d", i), "per_a", at(time.Duration(-i)*time.Second)))
		}
		for i := range 3 {
			second = append(second, event(fmt.Sprintf("b%d", i), "per_b", at(0)))
		}
		e.tx(t, func(s Store) error {
			if err := s.InsertEvents(e.ctx, first[:120]); err != nil {
				return err
			}
			return s.InsertEvents(e.ctx, first[120:])
		})
		checkConsecutive(t, "two calls in one transaction", first, 0)
		e.insertEvents(t, second...)
		checkConsecutive(t, "next transaction", second, first[len(first)-1].Seq)
		// Writer: outside an explicit transaction.
		w := []*events.Event{event("w1", "per_c", at(0)), event("w2", "per_c", at(0))}
		must(t, e.Writer().InsertEvents(e.ctx, w))
		checkConsecutive(t, "Writer", w, second[len(second)-1].Seq)
		must(t, e.Writer().InsertEvents(e.ctx, nil))

		// A rolled-back insert may burn numbers but never reuses them.
		err := e.InTx(e.ctx, func(s Store) error {
			if err := s.InsertEvents(e.ctx, []*events.Event{event("gone", "per_c", at(0))}); err != nil {
				return err
			}
			return errRollback
		})
		if err != errRollback {
			t.Fatalf("InTx returned %v, want the callback's error", err)
		}
		last := []*events.Event{event("last", "per_c", at(0))}
		e.insertEvents(t, last...)
		checkConsecutive(t, "after a rollback", last, w[1].Seq)
	}},
	{"Event/DuplicateMessageID", func(t *testing.T, e *env) {
		e.insertEvents(t, event("m1", "per_a", at(0)))
		err := e.InTx(e.ctx, func(s Store) error {
			return s.InsertEvents(e.ctx, []*events.Event{event("m1", "per_b", at(time.Hour))})
		})
		if err == nil {
			t.Fatal("a second event with the same property and message id was stored")
		}
		other := event("m1", "per_b", at(0))
		other.PropertyID = "prp_other"
		e.insertEvents(t, other)
		n, err := e.Reader().CountEvents(e.ctx)
		if err != nil || n != 2 {
			t.Errorf("CountEvents = %d, %v; want 2", n, err)
		}
	}},
	{"Event/ExistingMessageIDsSeesOwnTransaction", func(t *testing.T, e *env) {
		err := e.InTx(e.ctx, func(s Store) error {
			if err := s.InsertEvents(e.ctx, []*events.Event{event("r1", "per_a", at(0))}); err != nil {
				return err
			}
			got, err := s.ExistingMessageIDs(e.ctx, testProperty, []string{"r1"})
			if err != nil {
				return err
			}
			if !got["r1"] {
				t.Errorf("ExistingMessageIDs inside the inserting transaction = %v, want r1", got)
			}
			return nil
		})
		must(t, err)
	}},
	{"Event/RolledBackIDsAreNotKnown", func(t *testing.T, e *env) {
		e.insertEvents(t, event("k0", "per_a", at(0)))
		err := e.InTx(e.ctx, func(s Store) error {
			if _, err := s.ExistingMessageIDs(e.ctx, testProperty, []string{"k1"}); err != nil {
				return err
			}
			if err := s.InsertEvents(e.ctx, []*events.Event{event("k1", "per_a", at(0))}); err != nil {
				return err
			}
			return errRollback
		})
		if err != errRollback {
			t.Fatal(err)
		}
		got, err := e.Reader().ExistingMessageIDs(e.ctx, testProperty, []string{"k0", "k1"})
		must(t, err)
		if !got["k0"] || got["k1"] {
			t.Fatalf("after rollback: %v", got)
		}
		e.insertEvents(t, event("k1", "per_a", at(0)))
	}},
	{"Event/ExistingMessageIDs", func(t *testing.T, e *env) {
		var evs []*events.Event
		var ids []string
		for i := range 1500 {
			id := fmt.Sprintf("msg-%04d", i)
			ids = append(ids, id)
			if i%3 == 0 {
				evs = append(evs, event(id, "per_a", at(0)))
			}
		}
		other := event("msg-0001", "per_a", at(0))
		other.PropertyID = "prp_other"
		e.insertEvents(t, append(evs, other)...)
		got, err := e.Reader().ExistingMessageIDs(e.ctx, testProperty, append(ids, "msg-0000"))
		must(t, err)
		if len(got) != len(evs) {
			t.Errorf("ExistingMessageIDs = %d, want %d", len(got), len(evs))
		}
		for _, ev := range evs {
			if !got[ev.MessageID] {
				t.Fatalf("%s not reported", ev.MessageID)
			}
		}
		if got["msg-0001"] {
			t.Error("a message id of another property was reported")
		}
		got, err = e.Reader().ExistingMessageIDs(e.ctx, "prp_other", []string{"msg-0000", "msg-0001"})
		must(t, err)
		if len(got) != 1 || !got["msg-0001"] {
			t.Errorf("ExistingMessageIDs(prp_other) = %v", got)
		}
		got, err = e.Reader().ExistingMessageIDs(e.ctx, testProperty, nil)
		if err != nil || len(got) != 0 {
			t.Errorf("ExistingMessageIDs(nil) = %v, %v", got, err)
		}
	}},
	{"Event/EventsAfter", func(t *testing.T, e *env) {
		var evs []*events.Event
		for i := range 10 {
			// Timestamps go backwards: EventsAfter follows seq, not time.
			evs = append(evs, event(fmt.Sprintf("m%d", i), fmt.Sprintf("per_%d", i%3), at(time.Duration(-i)*time.Hour)))
		}
		e.insertEvents(t, evs[:4]...)
		e.insertEvents(t, evs[4:]...)
		r := e.Reader()
		got, err := r.EventsAfter(e.ctx, 0, 4)
		must(t, err)
		sameStrings(t, "first page", messageIDs(got), []string{"m0", "m1", "m2", "m3"})
		got, err = r.EventsAfter(e.ctx, got[3].Seq, 100)
		must(t, err)
		sameStrings(t, "rest", messageIDs(got), []string{"m4", "m5", "m6", "m7", "m8", "m9"})
		got, err = r.EventsAfter(e.ctx, evs[9].Seq, 100)
		if err != nil || len(got) != 0 {
			t.Errorf("EventsAfter the last = %v, %v", got, err)
		}
	}},
	{"Cursor", func(t *testing.T, e *env) {
		r := e.Reader()
		c, err := r.Cursor(e.ctx, "bus")
		if err != nil || c != 0 {
			t.Fatalf("missing cursor = %d, %v; want 0", c, err)
		}
		e.tx(t, func(s Store) error { return s.SetCursor(e.ctx, "bus", 42) })
		e.tx(t, func(s Store) error { return s.SetCursor(e.ctx, "segments", 7) })
		e.tx(t, func(s Store) error { return s.SetCursor(e.ctx, "bus", 1<<40) })
		for name, want := range map[string]int64{"bus": 1 << 40, "segments": 7, "other": 0} {
			c, err := r.Cursor(e.ctx, name)
			if err != nil || c != want {
				t.Errorf("Cursor(%s) = %d, %v; want %d", name, c, err, want)
			}
		}
	}},
}

// timelineFixture: events of three persons; e6 shares e2's timestamp.
func timelineFixture(t *testing.T, e *env) map[string]*events.Event {
	mk := func(id, pid, typ, name, prop string, min int) *events.Event {
		ev := event(id, pid, at(time.Duration(min)*time.Minute))
		ev.Type, ev.Event, ev.PropertyID = typ, "", prop
		ev.SetNameColumn(name)
		return ev
	}
	evs := []*events.Event{
		mk("e1", "per_a", events.TypeTrack, "Signed Up", "prp_1", 1),
		mk("e2", "per_a", events.TypePage, "Pricing", "prp_1", 2),
		mk("e3", "per_b", events.TypeTrack, "Signed Up", "prp_2", 3),
		mk("e4", "per_a", events.TypeIdentify, "", "prp_2", 4),
		mk("e5", "per_c", events.TypeTrack, "Other", "prp_1", 5),
		mk("e6", "per_a", events.TypeTrack, "Clicked", "prp_1", 2),
	}
	e.insertEvents(t, evs...)
	m := map[string]*events.Event{}
	for _, ev := range evs {
		m[ev.MessageID] = ev
	}
	return m
}

var timelineTests = []test{
	{"Timeline/Filters", func(t *testing.T, e *env) {
		evs := timelineFixture(t, e)
		ab := []string{"per_a", "per_b"}
		cursor := func(id string) *events.Cursor {
			return &events.Cursor{Timestamp: evs[id].Timestamp, Seq: evs[id].Seq}
		}
		for _, tc := range []struct {
			name string
			q    events.TimelineQuery
			want []string
		}{
			{"one person, newest first, seq breaks ties", events.TimelineQuery{PersonIDs: []string{"per_a"}}, []string{"e4", "e6", "e2", "e1"}},
			{"several persons", events.TimelineQuery{PersonIDs: ab}, []string{"e4", "e3", "e6", "e2", "e1"}},
			{"type", events.TimelineQuery{PersonIDs: ab, Types: []string{events.TypeTrack}}, []string{"e3", "e6", "e1"}},
			{"types", events.TimelineQuery{PersonIDs: ab, Types: []string{events.TypePage, events.TypeIdentify}}, []string{"e4", "e2"}},
			{"track name", events.TimelineQuery{PersonIDs: ab, Names: []string{"Signed Up"}}, []string{"e3", "e1"}},
			{"page name", events.TimelineQuery{PersonIDs: ab, Names: []string{"Pricing", "Nope"}}, []string{"e2"}},
			{"type and name", events.TimelineQuery{PersonIDs: ab, Types: []string{events.TypePage}, Names: []string{"Signed Up"}}, nil},
			{"property", events.TimelineQuery{PersonIDs: ab, PropertyID: "prp_2"}, []string{"e4", "e3"}},
			{"from is inclusive", events.TimelineQuery{PersonIDs: []string{"per_a"}, From: at(2 * time.Minute)}, []string{"e4", "e6", "e2"}},
			{"to is exclusive", events.TimelineQuery{PersonIDs: []string{"per_a"}, To: at(2 * time.Minute)}, []string{"e1"}},
			{"from and to", events.TimelineQuery{PersonIDs: ab, From: at(2 * time.Minute), To: at(4 * time.Minute)}, []string{"e3", "e6", "e2"}},
			{"before a cursor", events.TimelineQuery{PersonIDs: []string{"per_a"}, Before: cursor("e6")}, []string{"e2", "e1"}},
			{"before a cursor sharing its timestamp", events.TimelineQuery{PersonIDs: []string{"per_a"}, Before: cursor("e2")}, []string{"e1"}},
			{"limit", events.TimelineQuery{PersonIDs: []string{"per_a"}, Limit: 2}, []string{"e4", "e6"}},
			{"no persons", events.TimelineQuery{}, nil},
			{"person without events", events.TimelineQuery{PersonIDs: []string{"per_z"}}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if tc.q.Limit == 0 {
					tc.q.Limit = 100
				}
				got, err := e.Reader().Timeline(e.ctx, tc.q)
				must(t, err)
				sameStrings(t, "Timeline", messageIDs(got), tc.want)
			})
		}
		got, err := e.Reader().Timeline(e.ctx, events.TimelineQuery{PersonIDs: []string{"per_a"}, Names: []string{"Pricing"}, Limit: 1})
		must(t, err)
		if len(got) == 1 {
			sameEvent(t, got[0], evs["e2"])
		}
	}},
	{"Timeline/Pages", func(t *testing.T, e *env) {
		var evs []*events.Event
		for i := range 57 {
			// Runs of equal timestamps, so pages must split inside them.
			evs = append(evs, event(fmt.Sprintf("m%02d", i), []string{"per_a", "per_b"}[i%2], at(time.Duration(i/5)*time.Second)))
		}
		e.insertEvents(t, evs...)
		var all []string
		q := events.TimelineQuery{PersonIDs: []string{"per_a", "per_b"}, Limit: 10}
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("paging does not end")
			}
			got, err := e.Reader().Timeline(e.ctx, q)
			must(t, err)
			if len(got) == 0 {
				break
			}
			all = append(all, messageIDs(got)...)
			last := got[len(got)-1]
			q.Before = &events.Cursor{Timestamp: last.Timestamp, Seq: last.Seq}
		}
		var want []string
		for i := len(evs) - 1; i >= 0; i-- {
			want = append(want, evs[i].MessageID)
		}
		sameStrings(t, "all pages", all, want)
	}},
}

var rejectionTests = []test{
	{"Rejection/Prune", func(t *testing.T, e *env) {
		var rs []*events.Rejection
		for i := 0; i < 7; i++ {
			rs = append(rs, &events.Rejection{PropertyID: testProperty, ReceivedAt: at(0), Index: i, Code: events.CodeMissingEvent, Reason: "r"})
			rs = append(rs, &events.Rejection{PropertyID: testProperty + "-other", ReceivedAt: at(0), Index: i, Code: events.CodeMissingEvent, Reason: "r"})
		}
		rs = append(rs, &events.Rejection{PropertyID: testProperty + "-few", ReceivedAt: at(0), Index: 0, Code: events.CodeMissingEvent, Reason: "r"})
		e.tx(t, func(s Store) error { return s.InsertRejections(e.ctx, rs) })
		var n int64
		e.tx(t, func(s Store) error {
			var err error
			n, err = s.PruneRejections(e.ctx, 3)
			return err
		})
		if n != 8 {
			t.Fatalf("pruned %d, want 8 (4 of each full property, none of the small one)", n)
		}
		for prop, want := range map[string][]int{testProperty: {6, 5, 4}, testProperty + "-other": {6, 5, 4}, testProperty + "-few": {0}} {
			got, err := e.Reader().Rejections(e.ctx, events.RejectionQuery{PropertyID: prop, Limit: 10})
			must(t, err)
			var idx []int
			for _, r := range got {
				idx = append(idx, r.Index)
			}
			if fmt.Sprint(idx) != fmt.Sprint(want) {
				t.Errorf("%s keeps %v, want the newest %v", prop, idx, want)
			}
		}
	}},
	{"Rejection/DeleteMentioning", func(t *testing.T, e *env) {
		rs := []*events.Rejection{
			{PropertyID: testProperty, ReceivedAt: at(0), Index: 0, Code: events.CodeMissingEvent, Reason: "r", Payload: []byte(`{"type":"track","traits":{"email":"Ada@Example.com"}}`)},
			{PropertyID: testProperty, ReceivedAt: at(0), Index: 1, Code: events.CodeMissingEvent, Reason: "r", Payload: []byte("{\"userId\":\"u-42\", \"x\": \"\xff\"}")},
			{PropertyID: testProperty, ReceivedAt: at(0), Index: 2, Code: events.CodeMissingEvent, Reason: "r", Payload: []byte(`{"userId":"someone-else"}`)},
			{PropertyID: testProperty, ReceivedAt: at(0), Index: -1, Code: events.CodeTooLarge, Reason: "no payload"},
		}
		e.tx(t, func(s Store) error { return s.InsertRejections(e.ctx, rs) })
		var n int64
		e.tx(t, func(s Store) error {
			var err error
			n, err = s.DeleteRejectionsMentioning(e.ctx, []string{"ada@example.com", "u-42", ""})
			return err
		})
		if n != 2 {
			t.Fatalf("deleted %d rejections, want 2 (case-insensitive email, raw bytes with invalid UTF-8)", n)
		}
		got, err := e.Reader().Rejections(e.ctx, events.RejectionQuery{PropertyID: testProperty, Limit: 10})
		must(t, err)
		if len(got) != 2 || got[0].Index != -1 || got[1].Index != 2 {
			t.Fatalf("left %+v, want the payload-less one and someone-else's", got)
		}
	}},
	{"Rejection/RoundTrip", func(t *testing.T, e *env) {
		rs := []*events.Rejection{
			{PropertyID: testProperty, ReceivedAt: time.Date(2026, 5, 6, 7, 8, 9, 987654321, time.Local), Index: 3, MessageID: "m-3", Type: "track",
				Code: events.CodeInvalidJSON, Reason: "bad JSON: « here »", Payload: []byte("{\"broken\": \x00\xff\xfe}")},
			{PropertyID: testProperty, ReceivedAt: at(time.Second), Index: -1, Code: events.CodeTooLarge, Reason: "whole request"},
			{PropertyID: testProperty, ReceivedAt: at(time.Second), Index: 0, MessageID: "m-0", Type: "identify", Code: events.CodeSuppressed,
				Reason: "suppressed", Payload: []byte(strings.Repeat("p", events.MaxRejectedPayload))},
		}
		e.tx(t, func(s Store) error { return s.InsertRejections(e.ctx, rs) })
		e.tx(t, func(s Store) error { return s.InsertRejections(e.ctx, nil) })
		got, err := e.Reader().Rejections(e.ctx, events.RejectionQuery{Limit: 10})
		must(t, err)
		if len(got) != len(rs) {
			t.Fatalf("Rejections = %d, want %d", len(got), len(rs))
		}
		// Newest (highest id) first; ids follow input order.
		for i, want := range rs {
			g := got[len(rs)-1-i]
			if g.PropertyID != want.PropertyID || g.Index != want.Index || g.MessageID != want.MessageID || g.Type != want.Type ||
				g.Code != want.Code || g.Reason != want.Reason || string(g.Payload) != string(want.Payload) {
				t.Errorf("rejection %d = %+v, want %+v", i, g, want)
			}
			if g.ID <= 0 {
				t.Errorf("rejection %d has id %d", i, g.ID)
			}
			// InsertRejections sets the ids it stored (the live feed
			// publishes them without reading back).
			if want.ID != g.ID {
				t.Errorf("rejection %d: InsertRejections set id %d, stored %d", i, want.ID, g.ID)
			}
			sameTime(t, "received_at", g.ReceivedAt, want.ReceivedAt)
		}
		if !(got[0].ID > got[1].ID && got[1].ID > got[2].ID) {
			t.Errorf("rejection ids not newest first: %d, %d, %d", got[0].ID, got[1].ID, got[2].ID)
		}
	}},
	{"Rejection/Pages", func(t *testing.T, e *env) {
		var rs []*events.Rejection
		for i := range 30 {
			rs = append(rs, &events.Rejection{PropertyID: []string{"prp_1", "prp_2"}[i%3/2], ReceivedAt: at(0), Index: i, Code: "c", Reason: "r"})
		}
		e.tx(t, func(s Store) error { return s.InsertRejections(e.ctx, rs[:15]) })
		e.tx(t, func(s Store) error { return s.InsertRejections(e.ctx, rs[15:]) })
		page := func(q events.RejectionQuery) []*events.Rejection {
			t.Helper()
			got, err := e.Reader().Rejections(e.ctx, q)
			must(t, err)
			return got
		}
		var seen []int
		q := events.RejectionQuery{Limit: 7}
		for p := page(q); len(p) > 0; p = page(q) {
			for _, r := range p {
				seen = append(seen, r.Index)
			}
			q.BeforeID = p[len(p)-1].ID
		}
		if len(seen) != 30 || seen[0] != 29 || seen[29] != 0 {
			t.Errorf("paging by BeforeID saw %v", seen)
		}
		two := page(events.RejectionQuery{PropertyID: "prp_2", Limit: 100})
		if len(two) != 10 {
			t.Errorf("property filter = %d, want 10", len(two))
		}
		for _, r := range two {
			if r.PropertyID != "prp_2" || r.Index%3 != 2 {
				t.Errorf("property filter returned %+v", r)
			}
		}
		if got := page(events.RejectionQuery{PropertyID: "prp_2", BeforeID: two[4].ID, Limit: 100}); len(got) != 5 {
			t.Errorf("property filter and BeforeID = %d, want 5", len(got))
		}
	}},
}
