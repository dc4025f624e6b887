package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/onramp-dev/onramp/events"
)

// TestPackedTimelineReadsWhatPlainReads: the packed read (one JSON array
// per row) gives exactly the events the plain read (one column per field)
// gives, for strings SQLite has to escape, invalid UTF-8, NUL bytes and all.
func TestPackedTimelineReadsWhatPlainReads(t *testing.T) {
	ctx := context.Background()
	db := openTimelineDB(t)
	r := rand.New(rand.NewPCG(3, 4))
	tricky := []string{"", "plain", `q"uo"te`, `back\slash\`, "nl\n cr\r tab\t bs\b ff\f", "\x00nul", "\x01\x1f\x7f", "Zürich 日本 😀",
		"\u2028\u2029", "\xff\xfe bad", "half \xe2\x80", "<&>", `\u0041`, "/", `"`, `\`}
	str := func() string {
		if r.IntN(3) == 0 {
			b := make([]byte, r.IntN(12))
			for i := range b {
				b[i] = byte(r.IntN(256))
			}
			return string(b)
		}
		return tricky[r.IntN(len(tricky))]
	}
	raw := func() json.RawMessage {
		switch r.IntN(3) {
		case 0:
			return nil
		case 1:
			return json.RawMessage(`{"a":"x y","n":1}`)
		}
		return json.RawMessage("{ \"b\" : \"\xff\\u2028\" }")
	}
	tm := func() time.Time {
		if r.IntN(4) == 0 {
			return time.Time{}
		}
		return time.UnixMicro(r.Int64N(4e15) + 1).UTC()
	}
	persons := []string{"per_a", "per_b", "per_c"}
	var evs []*events.Event
	for i := 0; i < 600; i++ {
		typ := []string{events.TypeTrack, events.TypePage, str()}[r.IntN(3)]
		e := &events.Event{PropertyID: str(), MessageID: fmt.Sprintf("m%d%s", i, str()), PersonID: persons[r.IntN(len(persons))], Type: typ,
			UserID: str(), AnonymousID: str(), GroupID: str(), PreviousID: str(), IP: str(),
			Timestamp: tm(), OriginalTimestamp: tm(), SentAt: tm(), ReceivedAt: tm(), Properties: raw(), Traits: raw(), Context: raw()}
		if typ == events.TypeTrack {
			e.Event = str()
		} else {
			e.Name = str()
		}
		evs = append(evs, e)
	}
	if err := db.InTx(ctx, func(q *Queries) error { return q.InsertEvents(ctx, evs) }); err != nil {
		t.Fatal(err)
	}
	// The events into the timeline table, which timelineSQL reads.
	if err := db.FlushTimeline(ctx); err != nil {
		t.Fatal(err)
	}
	q := db.Reader()
	fellBack := 0
	for _, ps := range [][]string{{"per_a"}, {"per_b"}, {"per_c"}, {"per_a", "per_c"}, {"per_a", "per_b", "per_c"}} {
		tq := events.TimelineQuery{PersonIDs: ps, Limit: 1000}
		// The query Timeline builds, run both ways.
		query, args := timelineSQL(tq)
		rows, err := q.queryHot(ctx, query(packedEventCols), args...)
		if err != nil {
			t.Fatal(err)
		}
		packed, ok, err := scanPacked(rows)
		if err != nil {
			t.Fatal(err)
		}
		rows, err = q.queryHot(ctx, query(eventCols), args...)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := scanEvents(rows)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			fellBack++
			continue
		}
		if len(plain) == 0 || !reflect.DeepEqual(packed, plain) {
			for i := range plain {
				if i >= len(packed) || !reflect.DeepEqual(packed[i], plain[i]) {
					t.Fatalf("persons %v, event %d:\npacked %+v\n plain %+v", ps, i, packed[i], plain[i])
				}
			}
			t.Fatalf("persons %v: %d packed events, %d plain", ps, len(packed), len(plain))
		}
		got, err := q.Timeline(ctx, tq)
		if err != nil || !reflect.DeepEqual(got, plain) {
			t.Fatalf("Timeline(%v) differs from the plain read (err %v)", ps, err)
		}
	}
	if fellBack > 0 {
		t.Fatalf("%d of 5 reads fell back to the plain read; unpackEvent should undo every escape SQLite writes", fellBack)
	}
}

// TestPackedTimelineFallsBack: rows the packed read cannot give back
// exactly (a BLOB json_array refuses, a REAL where an integer belongs) are
// read the plain way, with the plain read's answer or error.
func TestPackedTimelineFallsBack(t *testing.T) {
	ctx := context.Background()
	db := openTimelineDB(t)
	evs := []*events.Event{
		{PropertyID: "prp_1", MessageID: "m1", PersonID: "per_blob", Type: events.TypeTrack, Event: "e", Timestamp: time.UnixMicro(10).UTC(), ReceivedAt: time.UnixMicro(11).UTC()},
		{PropertyID: "prp_1", MessageID: "m2", PersonID: "per_real", Type: events.TypeTrack, Event: "e", Timestamp: time.UnixMicro(10).UTC(), ReceivedAt: time.UnixMicro(11).UTC()},
	}
	if err := db.InTx(ctx, func(q *Queries) error { return q.InsertEvents(ctx, evs) }); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`UPDATE events SET user_id = CAST('u-blob' AS BLOB) WHERE message_id = 'm1'`,
		`UPDATE events SET original_ts = 1.5 WHERE message_id = 'm2'`,
	} {
		if _, err := db.w.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	// The events into the timeline table, which timelineSQL reads.
	if err := db.FlushTimeline(ctx); err != nil {
		t.Fatal(err)
	}
	q := db.Reader()
	for _, c := range []struct {
		person  string
		wantErr bool
	}{{"per_blob", false}, {"per_real", true}} {
		tq := events.TimelineQuery{PersonIDs: []string{c.person}, Limit: 10}
		query, args := timelineSQL(tq)
		rows, err := q.queryHot(ctx, query(eventCols), args...)
		if err != nil {
			t.Fatal(err)
		}
		plain, plainErr := scanEvents(rows)
		if rows, err := q.queryHot(ctx, query(packedEventCols), args...); err == nil {
			if _, ok, err := scanPacked(rows); err == nil && ok {
				t.Fatalf("%s: the packed read took the row; the test does not reach the fallback", c.person)
			}
		}
		got, err := q.Timeline(ctx, tq)
		if (err != nil) != c.wantErr || (plainErr != nil) != c.wantErr {
			t.Fatalf("%s: Timeline error %v, plain read error %v; want an error: %v", c.person, err, plainErr, c.wantErr)
		}
		if !reflect.DeepEqual(got, plain) {
			t.Fatalf("%s: Timeline %+v, plain read %+v", c.person, got, plain)
		}
		if c.person == "per_blob" && (len(got) != 1 || got[0].UserID != "u-blob") {
			t.Fatalf("blob user id read as %+v", got)
		}
	}
}

// openTimelineDB opens and migrates a database in a temp folder, closed
// when the test ends.
func openTimelineDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "tl.db"), Options{Synchronous: "OFF"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}
