package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/identity"
)

// fuzzTypes are the endpoint types a body can arrive at; "" is the batch.
var fuzzTypes = []string{"", events.TypeTrack, events.TypeIdentify, events.TypePage, events.TypeScreen, events.TypeGroup, events.TypeAlias}

var rejectionCodes = map[string]bool{
	events.CodeInvalidJSON: true, events.CodeNotObject: true, events.CodeTooLarge: true, events.CodeTooDeep: true,
	events.CodeBadNumber: true, events.CodeBadType: true, events.CodeMissingIdentity: true, events.CodeMissingEvent: true,
	events.CodeMissingGroup: true, events.CodeMissingPrevious: true, events.CodeBadField: true, events.CodeBadTimestamp: true,
}

var fuzzSeeds = []string{
	`{"batch":[{"type":"track","event":"Signed Up","userId":"u1","anonymousId":"a1","messageId":"m1","timestamp":"2024-05-01T10:00:00Z","properties":{"plan":"pro","seats":3}}],"sentAt":"2024-05-01T10:00:01Z","writeKey":"wk_x"}`,
	`{"batch":[{"type":"page","anonymousId":"a1","name":"Pricing","properties":{"path":"/pricing"},"context":{"ip":"203.0.113.1","page":{"url":"https://example.com"}}},{"type":"identify","userId":"u1","traits":{"email":"Ada@Example.com","phone":"+44 20 7946 0000"}}]}`,
	`{"batch":[{"type":"alias","previousId":"a1","userId":"u1"},{"type":"group","groupId":7,"userId":42},{"type":"screen","anonymousId":1.5,"name":"Home"}]}`,
	`{"batch":[{"type":"track","event":"x","anonymousId":"a","originalTimestamp":"2024-05-01T10:00:00.000Z","sentAt":"2024-05-01T10:00:10.000Z","context":{"traits":{"email":"x@y.io"},"externalIds":[{"id":"c1","type":"crm_id"}]}}]}`,
	`{"event":"x","anonymousId":"a","timestamp":"1900-01-01T00:00:00Z"}`,
	`{"event":"x","anonymousId":"a","properties":{"n":1e400}}`,
	`{"type":"track","event":"x","userId":"null","anonymousId":"undefined"}`,
	`{"batch":[1,"x",null,[],{}]}`,
	`{"batch":[{"type":"track","event":"x","anonymousId":"a","properties":` + strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40) + `}]}`,
	`{"batch":[{"type":"track","event":"x","anonymousId":"a","properties":{"s":"\u00e9\ud83d\ude00\"\\","k":[true,false,null,-0.5e-3]}}]}`,
	`{"batch":[{"type":"track","event":"x","anonymousId":"a","messageId":""}],"sentAt":""}`,
	`{"type":"identify","traits":{"email":"ADA@EXAMPLE.COM"},"timestamp":"2024-05-01 10:00:00"}`,
	`{"batch":[{"type":"track","event":"x","anonymousId":"a","timestamp":"2024-05-01T10:00:00Z","sentAt":"9999-12-31T23:59:59Z"}]}`,
	`{"batch":[{"type":"track","event":"x","anonymousId":"a","timestamp":"0001-01-01T00:00:00Z","sentAt":"0001-01-01T00:00:00Z"}]}`,
	"{\"batch\":[{\"type\":\"track\",\"event\":\"\xff\"}]}",
	`{"batch":[{"n":01}]}`,
	`null`,
	``,
}

// FuzzDecodeAndParse feeds bodies through DecodeBody and Parse, as a request
// reaches ingest, and checks what the rest of Onramp relies on.
func FuzzDecodeAndParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		for i := range fuzzTypes {
			f.Add([]byte(s), uint8(i))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, typIdx uint8) {
		typ := fuzzTypes[int(typIdx)%len(fuzzTypes)]
		e := events.Envelope{PropertyID: "prp_fuzz", ReceivedAt: received, IP: "192.0.2.1"}

		b, err := events.DecodeBody(body, typ)
		if err != nil {
			if code := onramp.ErrorCode(err); code != onramp.EINVALID && code != onramp.ETOOLARGE {
				t.Fatalf("DecodeBody error code %q (%v), want invalid or too_large", code, err)
			}
			if b != nil {
				t.Fatalf("DecodeBody returned a batch with an error")
			}
		} else {
			if typ != "" && len(b.Messages) != 1 {
				t.Fatalf("single-call body decoded to %d messages", len(b.Messages))
			}
			if len(b.Messages) > events.MaxBatchEvents {
				t.Fatalf("batch of %d messages passed", len(b.Messages))
			}
			if !json.Valid(body) {
				t.Fatalf("DecodeBody accepted a body that is not valid JSON: %q", body)
			}
			e.BatchSentAt = b.SentAt
			for i, raw := range b.Messages {
				checkParse(t, raw, i, typ, e, true)
			}
		}
		// Parse must also hold on bytes that never went through DecodeBody.
		checkParse(t, body, 0, typ, e, json.Valid(body))
	})
}

func checkParse(t *testing.T, raw []byte, index int, typ string, e events.Envelope, validJSON bool) {
	t.Helper()
	p, r := events.Parse(raw, index, typ, e)
	if (p == nil) == (r == nil) {
		t.Fatalf("Parse(%q) = %v, %v: want exactly one of event and rejection", raw, p, r)
	}
	if validJSON {
		code, _ := events.CheckJSON(raw, events.MaxDepth)
		if ref := refCheckJSON(t, raw, events.MaxDepth); code == "" && ref == events.CodeTooDeep {
			t.Fatalf("CheckJSON passed %q, nested deeper than %d", raw, events.MaxDepth)
		}
	}
	if r != nil {
		if r.Index != index || !rejectionCodes[r.Code] || r.Reason == "" || r.PropertyID != e.PropertyID {
			t.Fatalf("rejection = %+v", r)
		}
		if len(r.Payload) > events.MaxRejectedPayload || !utf8.Valid(r.Payload) && utf8.Valid(raw) {
			t.Fatalf("rejected payload is %d bytes, valid UTF-8 %v", len(r.Payload), utf8.Valid(r.Payload))
		}
		if !utf8.ValidString(r.Reason) && utf8.Valid(raw) {
			t.Fatalf("rejection reason is not valid UTF-8: %q", r.Reason)
		}
		return
	}
	ev := p.Event
	if p.Index != index {
		t.Fatalf("parsed index %d, want %d", p.Index, index)
	}
	switch ev.Type {
	case events.TypeTrack, events.TypeIdentify, events.TypePage, events.TypeScreen, events.TypeGroup, events.TypeAlias:
	default:
		t.Fatalf("parsed type %q", ev.Type)
	}
	if typ != "" && ev.Type != typ {
		t.Fatalf("type %q on the %s endpoint", ev.Type, typ)
	}
	if len(p.Obs.Keys) == 0 {
		t.Fatalf("parsed event without identifiers: %q", raw)
	}
	for _, k := range p.Obs.Keys {
		if !identity.ValidType(k.Type) {
			t.Fatalf("key type %q is not valid", k.Type)
		}
		if v, ok := identity.Normalize(k.Type, k.Value); !ok || v != k.Value {
			t.Fatalf("key %s is not normalised (Normalize = %q, %v)", k, v, ok)
		}
	}
	if earliest := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC); ev.Timestamp.Before(earliest) || ev.Timestamp.After(e.ReceivedAt.Add(24*time.Hour)) {
		t.Fatalf("timestamp %s out of range", ev.Timestamp)
	}
	if ev.Timestamp.Location() != time.UTC || ev.Timestamp.Nanosecond()%1000 != 0 {
		t.Fatalf("timestamp %s is not UTC microseconds", ev.Timestamp)
	}
	if ev.MessageID == "" || len(ev.MessageID) > 200 || p.Obs.MessageID != ev.MessageID {
		t.Fatalf("message id %q", ev.MessageID)
	}
	if ev.Type == events.TypeTrack && ev.Event == "" {
		t.Fatalf("track without event name passed")
	}
	if !validJSON {
		return
	}
	for name, obj := range map[string]json.RawMessage{"properties": ev.Properties, "traits": ev.Traits, "context": ev.Context} {
		if len(obj) > 0 && (obj[0] != '{' || !json.Valid(obj)) {
			t.Fatalf("%s is not a JSON object: %q", name, obj)
		}
	}
	// Every stored event is served as JSON later: it must encode.
	if _, err := json.Marshal(ev); err != nil {
		t.Fatalf("parsed event does not encode: %v", err)
	}
	for _, s := range []string{ev.UserID, ev.AnonymousID, ev.GroupID, ev.PreviousID, ev.Event, ev.Name, ev.IP} {
		if !utf8.ValidString(s) {
			t.Fatalf("field %q is not valid UTF-8", s)
		}
	}
}

// refCheckJSON is CheckJSON's meaning computed another way, from the
// standard decoder's tokens: the first of "nested deeper than maxDepth" and
// "a number float64 cannot hold" in document order wins. b must be valid.
func refCheckJSON(t *testing.T, b []byte, maxDepth int) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	depth := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return ""
		}
		if err != nil {
			t.Fatalf("reference decoder failed on valid JSON %q: %v", b, err)
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				depth++
				if depth > maxDepth {
					return events.CodeTooDeep
				}
			default:
				depth--
			}
		case json.Number:
			s := string(v)
			if len(s) > 64 {
				return events.CodeBadNumber
			}
			if f, err := strconv.ParseFloat(s, 64); err != nil || math.IsInf(f, 0) {
				return events.CodeBadNumber
			}
		}
	}
}

// FuzzCheckJSON checks CheckJSON against the reference on valid JSON, and
// that it never panics on anything else.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, `1`, `"x"`, `null`, `{"a":[1,2,{"b":"c"}]}`,
		strings.Repeat("[", 33) + strings.Repeat("]", 33),
		`{"a":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}`,
		`{"a":"\"[[[[","b":"\\","c":[[[]]]}`,
		`[1e400]`, `[-1e400]`, `[1e-400]`, `[1e308]`, `[` + strings.Repeat("9", 65) + `]`,
		`{"1e400":"1e400"}`, `[-0.0E+1, 0.5e-2]`,
		"{\"a\":\"\u2028\"}", `{"a":"\u005b"}`,
		`{"a":`, `"unterminated`, `[1,]`, `\`, `"\`,
	} {
		for _, d := range []uint8{0, 1, 2, 3, 32} {
			f.Add([]byte(s), d)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, d uint8) {
		maxDepth := int(d % 40)
		code, msg := events.CheckJSON(b, maxDepth)
		if (code == "") != (msg == "") {
			t.Fatalf("code %q with message %q", code, msg)
		}
		if code != "" && code != events.CodeTooDeep && code != events.CodeBadNumber {
			t.Fatalf("unknown code %q", code)
		}
		if !json.Valid(b) {
			return
		}
		if want := refCheckJSON(t, b, maxDepth); code != want {
			t.Fatalf("CheckJSON(%q, %d) = %q (%s), reference says %q", b, maxDepth, code, msg, want)
		}
	})
}
