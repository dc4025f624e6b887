package httpapi

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/onramp-dev/onramp/events"
)

// goccyPage is the page as writeJSON writes it, the output
// appendTimelineJSON must match byte for byte.
func goccyPage(t testing.TB, evs []*events.Event, next string) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	writeJSON(rec, 200, map[string]any{"data": evs, "cursor": map[string]any{"has_more": next != "", "next": next}})
	return rec.Body.Bytes()
}

var trickyStrings = []string{
	"", "plain", "bench-user-7", "a b", `quote"d`, `back\slash`, "<script>&amp;</script>", "tab\there", "nl\n", "\x00\x1f\x7f",
	"Zürich", "日本語", "emoji 😀", "\u2028line\u2029para", "€ … –", "\xff\xfe invalid", "half \xe2\x80", "/slash/", "\u00e9",
}

var trickyRaw = []string{
	`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `1.5e+3`, `-12.25E-2`, `"s"`, `{"a":1}`, `{"a":[1,2,{"b":null}],"c":"x y"}`,
	`{"ua":"Mozilla/5.0 (X11; Linux x86_64)","n":-1.0}`, `{"a" : 1}`, "{\n  \"a\": 1\n}", `{"a":"<b>&"}`, `{"a":"\u003c"}`,
	`{"a":"\/\n\"x\""}`, `{"a":"Zürich"}`, "{\"a\":\"\u2028\"}", "{\"a\":\"\xff\"}", `{"a":1}x`, `{"a":}`, `{"a":01}`, `{"a":1.}`,
	`{"a":.5}`, `{"a":1e}`, `[1,]`, `{,}`, `{"a":1,}`, `{"a"}`, `tru`, `nul`, `"unterminated`, `{"a":[}`, `[[[[]]]]`, `{"a":{"b":{}}}`,
	strings.Repeat("[", 70) + strings.Repeat("]", 70), `{"a":"tab	in"}`, `{"€":"…"}`, ` {"a":1}`, `{"a":1} `,
}

func randomEvent(r *rand.Rand) *events.Event {
	str := func() string { return trickyStrings[r.IntN(len(trickyStrings))] }
	tm := func() time.Time {
		switch r.IntN(5) {
		case 0:
			return time.Time{}
		case 1:
			return time.Date(2026, 11, 26, 2, 0, 9, 448561000, time.UTC)
		case 2:
			return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		case 3:
			return time.Date(2025, 6, 7, 8, 9, 10, 123000000, time.FixedZone("x", 5*3600+1800))
		}
		return time.UnixMicro(r.Int64N(4e15)).UTC()
	}
	raw := func() json.RawMessage {
		if r.IntN(4) == 0 {
			return nil
		}
		return json.RawMessage(trickyRaw[r.IntN(len(trickyRaw))])
	}
	return &events.Event{
		Seq: r.Int64N(1 << 40), PropertyID: str(), MessageID: str(), PersonID: str(), Type: str(),
		Event: str(), Name: str(), UserID: str(), AnonymousID: str(), GroupID: str(), PreviousID: str(),
		Timestamp: tm(), OriginalTimestamp: tm(), SentAt: tm(), ReceivedAt: tm(),
		Properties: raw(), Traits: raw(), Context: raw(), IP: str(),
	}
}

func TestAppendTimelineJSONMatchesGoccy(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	fellBack := 0
	for n := 0; n < 5000; n++ {
		evs := make([]*events.Event, r.IntN(4))
		for i := range evs {
			evs[i] = randomEvent(r)
		}
		next := ""
		if r.IntN(2) == 0 {
			next = "1764122409448561.559561"
		}
		want := goccyPage(t, evs, next)
		got, err := appendTimelineJSON(nil, evs, next)
		if err != nil {
			// The handler then answers with writeJSON: the same bytes.
			fellBack++
			continue
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("page differs\n got %q\nwant %q", got, want)
		}
	}
	if fellBack == 0 || fellBack > 4000 {
		t.Fatalf("%d of 5000 pages fell back to goccy; the cases do not cover both paths", fellBack)
	}
}

// TestAppendEventJSONHasEveryField fails when events.Event gains a field
// that appendEventJSON does not write.
func TestAppendEventJSONHasEveryField(t *testing.T) {
	e := &events.Event{
		Seq: 1, PropertyID: "p", MessageID: "m", PersonID: "per", Type: "track", Event: "e", Name: "n", UserID: "u",
		AnonymousID: "a", GroupID: "g", PreviousID: "prev", Timestamp: time.Unix(1, 0).UTC(), OriginalTimestamp: time.Unix(2, 0).UTC(),
		SentAt: time.Unix(3, 0).UTC(), ReceivedAt: time.Unix(4, 0).UTC(), Properties: json.RawMessage(`{"p":1}`),
		Traits: json.RawMessage(`{"t":1}`), Context: json.RawMessage(`{"c":1}`), IP: "203.0.113.8",
	}
	rv := reflect.ValueOf(e).Elem()
	for i := 0; i < rv.NumField(); i++ {
		if rv.Field(i).IsZero() {
			t.Fatalf("fixture leaves events.Event.%s empty: set it, and write it in appendEventJSON", rv.Type().Field(i).Name)
		}
	}
	got, err := appendEventJSON(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := gojson.Marshal(e)
	if !bytes.Equal(got, want) {
		t.Fatalf("event differs\n got %s\nwant %s", got, want)
	}
}

func FuzzAppendRawJSON(f *testing.F) {
	for _, s := range trickyRaw {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) == 0 {
			return // omitted by omitempty, never encoded
		}
		want, werr := gojson.Marshal(json.RawMessage(raw))
		got, gerr := appendRawJSON(nil, raw)
		if (werr != nil) != (gerr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("raw %q: got %q, %v; goccy %q, %v", raw, got, gerr, want, werr)
		}
	})
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := gojson.Marshal(s)
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("string %q: got %q, goccy %q", s, got, want)
		}
	})
}

// benchPage is a page like the timeline bench reads: 20 events with the
// properties and context the bench ingest sends.
func benchPage(b *testing.B) []*events.Event {
	e := &events.Event{
		Seq: 559561, PropertyID: "prp_06h1b5013v90wv3yz3abkp0qhw", MessageID: "bench-a42dfe0-559560", PersonID: "per_06h1b522gfbt5vjw54g3d44vr0",
		Type: "track", Event: "Invite Sent", UserID: "bench-user-7", AnonymousID: "anon-a42dfe0-7",
		Timestamp: time.UnixMicro(1764122409448561).UTC(), OriginalTimestamp: time.UnixMicro(1764122334924386).UTC(),
		SentAt: time.UnixMicro(1764122351924386).UTC(), ReceivedAt: time.UnixMicro(1764122426448561).UTC(),
		Properties: json.RawMessage(`{"currency":"EUR","experiment":"onboarding-v2","plan":"team","seats":45,"source":"web","value":30.95}`),
		Context:    json.RawMessage(`{"campaign":{"medium":"email","name":"autumn-launch","source":"newsletter"},"ip":"203.0.113.8","library":{"name":"onramp-bench","version":"0.1.0-dev"},"locale":"en-GB","page":{"path":"/blog/identity","referrer":"https://news.example.org/","title":"Example /blog/identity","url":"https://www.example.com/blog/identity"},"userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"}`),
		IP:         "203.0.113.8",
	}
	evs := make([]*events.Event, 20)
	for i := range evs {
		c := *e
		c.Seq += int64(i)
		evs[i] = &c
	}
	return evs
}

func BenchmarkTimelineJSON(b *testing.B) {
	evs := benchPage(b)
	b.Run("goccy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			goccyPage(b, evs, "")
		}
	})
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := appendTimelineJSON(make([]byte, 0, 1024*len(evs)+64), evs, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
}
