package events_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/identity"
)

// received is the server's clock in these tests.
var received = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func env() events.Envelope {
	return events.Envelope{PropertyID: "prp_test", ReceivedAt: received, IP: "192.0.2.7"}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v.UTC()
}

// parseOK parses raw and fails the test if it was rejected.
func parseOK(t *testing.T, raw string, typ string, e events.Envelope) *events.Parsed {
	t.Helper()
	p, r := events.Parse(json.RawMessage(raw), 0, typ, e)
	if r != nil {
		t.Fatalf("Parse(%s) rejected: %s: %s", raw, r.Code, r.Reason)
	}
	if p == nil {
		t.Fatalf("Parse(%s) returned neither an event nor a rejection", raw)
	}
	return p
}

func TestParseTimestamps(t *testing.T) {
	tests := []struct {
		name        string
		msg         string
		batchSentAt string
		want        string // corrected timestamp
		wantOrig    string // original timestamp kept ("" for none)
		wantSent    string // sentAt kept ("" for none)
	}{
		{
			name: "no timestamp takes the server time",
			msg:  `{"type":"track","event":"x","anonymousId":"a"}`,
			want: "2024-05-01T12:00:00Z",
		},
		{
			name:     "clock skew corrected from timestamp and sentAt",
			msg:      `{"type":"track","event":"x","anonymousId":"a","timestamp":"2024-05-01T10:00:00Z","sentAt":"2024-05-01T10:00:05Z"}`,
			want:     "2024-05-01T11:59:55Z",
			wantOrig: "2024-05-01T10:00:00Z",
			wantSent: "2024-05-01T10:00:05Z",
		},
		{
			name:     "device clock a year behind is corrected",
			msg:      `{"type":"track","event":"x","anonymousId":"a","timestamp":"2023-05-01T10:00:00Z","sentAt":"2023-05-01T10:00:02.5Z"}`,
			want:     "2024-05-01T11:59:57.5Z",
			wantOrig: "2023-05-01T10:00:00Z",
			wantSent: "2023-05-01T10:00:02.5Z",
		},
		{
			name:     "device clock ahead is corrected",
			msg:      `{"type":"track","event":"x","anonymousId":"a","timestamp":"2024-05-03T00:00:00Z","sentAt":"2024-05-03T00:01:00Z"}`,
			want:     "2024-05-01T11:59:00Z",
			wantOrig: "2024-05-03T00:00:00Z",
			wantSent: "2024-05-03T00:01:00Z",
		},
		{
			name:        "batch-level sentAt applies to messages without their own",
			msg:         `{"type":"track","event":"x","anonymousId":"a","timestamp":"2024-05-01T10:00:00Z"}`,
			batchSentAt: "2024-05-01T10:01:00Z",
			want:        "2024-05-01T11:59:00Z",
			wantOrig:    "2024-05-01T10:00:00Z",
			wantSent:    "2024-05-01T10:01:00Z",
		},
		{
			name:        "message sentAt wins over the batch's",
			msg:         `{"type":"track","event":"x","anonymousId":"a","timestamp":"2024-05-01T10:00:00Z","sentAt":"2024-05-01T10:00:10Z"}`,
			batchSentAt: "2024-05-01T10:01:00Z",
			want:        "2024-05-01T11:59:50Z",
			wantOrig:    "2024-05-01T10:00:00Z",
			wantSent:    "2024-05-01T10:00:10Z",
		},
		{
			name:     "rudderstack: originalTimestamp and sentAt only",
			msg:      `{"type":"track","event":"x","anonymousId":"a","originalTimestamp":"2024-05-01T10:00:00.000Z","sentAt":"2024-05-01T10:00:10.000Z","messageId":"r1"}`,
			want:     "2024-05-01T11:59:50Z",
			wantOrig: "2024-05-01T10:00:00Z",
			wantSent: "2024-05-01T10:00:10Z",
		},
		{
			name:     "timestamp wins over originalTimestamp",
			msg:      `{"type":"track","event":"x","anonymousId":"a","timestamp":"2024-04-01T00:00:00Z","originalTimestamp":"2024-03-01T00:00:00Z"}`,
			want:     "2024-04-01T00:00:00Z",
			wantOrig: "2024-04-01T00:00:00Z",
		},
		{
			name:     "explicit timestamp without sentAt is kept (historical import)",
			msg:      `{"type":"track","event":"x","anonymousId":"a","timestamp":"2021-03-04T05:06:07Z"}`,
			want:     "2021-03-04T05:06:07Z",
			wantOrig: "2021-03-04T05:06:07Z",
		},
		{
			name:     "offsets are turned into UTC",
			msg:      `{"type":"track","event":"x","anonymousId":"a","timestamp":"2024-05-01T12:00:00+02:00"}`,
			want:     "2024-05-01T10:00:00Z",
			wantOrig: "2024-05-01T10:00:00Z",
		},
		{
			name:     "nanoseconds are cut to microseconds",
			msg:      `{"type":"track","event":"x","anonymousId":"a","timestamp":"2024-05-01T10:00:00.123456789Z"}`,
			want:     "2024-05-01T10:00:00.123456Z",
			wantOrig: "2024-05-01T10:00:00.123456Z", // as stored: the bus publishes this event before any read

		},
		{
			name:     "a timestamp up to 24 hours ahead is accepted",
			msg:      `{"type":"track","event":"x","anonymousId":"a","timestamp":"2024-05-02T11:59:00Z"}`,
			want:     "2024-05-02T11:59:00Z",
			wantOrig: "2024-05-02T11:59:00Z",
		},
		{
			name:     "2000-01-01 is the earliest accepted",
			msg:      `{"type":"track","event":"x","anonymousId":"a","timestamp":"2000-01-01T00:00:00Z"}`,
			want:     "2000-01-01T00:00:00Z",
			wantOrig: "2000-01-01T00:00:00Z",
		},
		{
			name: "empty timestamp strings count as absent",
			msg:  `{"type":"track","event":"x","anonymousId":"a","timestamp":"","sentAt":""}`,
			want: "2024-05-01T12:00:00Z",
		},
		{
			name: "null timestamps count as absent",
			msg:  `{"type":"track","event":"x","anonymousId":"a","timestamp":null,"originalTimestamp":null,"sentAt":null}`,
			want: "2024-05-01T12:00:00Z",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := env()
			if tc.batchSentAt != "" {
				e.BatchSentAt = mustTime(t, tc.batchSentAt)
			}
			p := parseOK(t, tc.msg, "", e)
			if got, want := p.Event.Timestamp, mustTime(t, tc.want); !got.Equal(want) {
				t.Errorf("timestamp = %s, want %s", got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
			}
			if p.Event.Timestamp.Location() != time.UTC {
				t.Errorf("timestamp is in %s, want UTC", p.Event.Timestamp.Location())
			}
			if !p.Obs.At.Equal(p.Event.Timestamp) {
				t.Errorf("observation time %s differs from the event's %s", p.Obs.At, p.Event.Timestamp)
			}
			checkOptTime(t, "originalTimestamp", p.Event.OriginalTimestamp, tc.wantOrig)
			checkOptTime(t, "sentAt", p.Event.SentAt, tc.wantSent)
			if !p.Event.ReceivedAt.Equal(received) {
				t.Errorf("receivedAt = %s, want %s", p.Event.ReceivedAt, received)
			}
		})
	}
}

func checkOptTime(t *testing.T, what string, got time.Time, want string) {
	t.Helper()
	if want == "" {
		if !got.IsZero() {
			t.Errorf("%s = %s, want none", what, got)
		}
		return
	}
	if w := mustTime(t, want); !got.Equal(w) {
		t.Errorf("%s = %s, want %s", what, got.Format(time.RFC3339Nano), w.Format(time.RFC3339Nano))
	}
}

// The batch endpoint's sentAt reaches the messages through Ingest; here
// DecodeBody must read it.
func TestDecodeBodyBatchSentAt(t *testing.T) {
	b, err := events.DecodeBody([]byte(`{"batch":[{"type":"page","anonymousId":"a"}],"sentAt":"2024-05-01T10:01:00.5Z","writeKey":"wk_1"}`), "")
	if err != nil {
		t.Fatal(err)
	}
	if want := mustTime(t, "2024-05-01T10:01:00.5Z"); !b.SentAt.Equal(want) {
		t.Errorf("SentAt = %s, want %s", b.SentAt, want)
	}
	if b.WriteKey != "wk_1" || len(b.Messages) != 1 {
		t.Errorf("batch = %+v", b)
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" means an error
	}{
		{"2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z"},
		{"2024-05-01T10:00:00.123Z", "2024-05-01T10:00:00.123Z"},
		{"2024-05-01T10:00:00.123456789Z", "2024-05-01T10:00:00.123456789Z"},
		{"2024-05-01T12:00:00+02:00", "2024-05-01T10:00:00Z"},
		{"2024-05-01T10:00:00.000+0000", "2024-05-01T10:00:00Z"}, // Java's SimpleDateFormat
		{"2024-05-01T12:00:00+0200", "2024-05-01T10:00:00Z"},
		{"2024-05-01T10:00:00", "2024-05-01T10:00:00Z"}, // no zone: UTC
		{"2024-05-01 10:00:00", "2024-05-01T10:00:00Z"},
		{"2024-05-01 10:00:00.5Z", "2024-05-01T10:00:00.5Z"},
		{"", ""},
		{"yesterday", ""},
		{"1714557600", ""},
		{"2024-13-01T00:00:00Z", ""},
		{"2024-05-01T25:00:00Z", ""},
		{"2024-05-01T10:00:00Zjunk", ""},
		{"Wed, 01 May 2024 10:00:00 GMT", ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := events.ParseTime(tc.in)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("ParseTime(%q) = %s, want an error", tc.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTime(%q): %v", tc.in, err)
			}
			if w := mustTime(t, tc.want); !got.Equal(w) || got.Location() != time.UTC {
				t.Errorf("ParseTime(%q) = %s, want %s in UTC", tc.in, got, w)
			}
		})
	}
}

func nested(depth int) string {
	return strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
}

func TestParseRejections(t *testing.T) {
	big := `{"type":"track","event":"x","anonymousId":"a","properties":{"blob":"` + strings.Repeat("x", events.MaxEventBytes) + `"}}`
	long := strings.Repeat("u", identity.MaxIdentifierLen+1)
	tests := []struct {
		name  string
		raw   string
		typ   string // the single-call endpoint, "" for batch items
		code  string
		index int
	}{
		{"truncated JSON", `{"type":"track",`, "", events.CodeInvalidJSON, 0},
		{"array", `[{"type":"track"}]`, "", events.CodeNotObject, 1},
		{"string", `"track"`, "", events.CodeNotObject, 2},
		{"null", `null`, "", events.CodeNotObject, 0},
		{"number", `42`, "", events.CodeNotObject, 0},
		{"empty", ``, "", events.CodeNotObject, 0},
		{"event over 32 KB", big, "", events.CodeTooLarge, 3},
		{"event over 32 KB on a single-call endpoint", big, events.TypeTrack, events.CodeTooLarge, 0},
		{"nested 33 levels", `{"type":"track","event":"x","anonymousId":"a","properties":` + nested(events.MaxDepth) + `}`, "", events.CodeTooDeep, 0},
		{"nested 100 levels of arrays", `{"type":"track","event":"x","anonymousId":"a","properties":{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}`, "", events.CodeTooDeep, 0},
		{"number beyond float64", `{"type":"track","event":"x","anonymousId":"a","properties":{"n":1e400}}`, "", events.CodeBadNumber, 0},
		{"negative number beyond float64", `{"type":"track","event":"x","anonymousId":"a","properties":{"n":-1e400}}`, "", events.CodeBadNumber, 0},
		{"number of 65 digits", `{"type":"track","event":"x","anonymousId":"a","properties":{"n":` + strings.Repeat("9", 65) + `}}`, "", events.CodeBadNumber, 0},
		{"huge number as userId", `{"type":"track","event":"x","userId":1e400}`, "", events.CodeBadNumber, 0},
		{"no type", `{"event":"x","anonymousId":"a"}`, "", events.CodeBadType, 0},
		{"unknown type", `{"type":"purchase","anonymousId":"a"}`, "", events.CodeBadType, 0},
		{"type says page on the track endpoint", `{"type":"page","event":"x","anonymousId":"a"}`, events.TypeTrack, events.CodeBadType, 0},
		{"no ids", `{"type":"track","event":"x"}`, "", events.CodeMissingIdentity, 0},
		{"only placeholder ids", `{"type":"track","event":"x","userId":"null","anonymousId":"undefined"}`, "", events.CodeMissingIdentity, 0},
		{"only zero ids", `{"type":"track","event":"x","userId":0,"anonymousId":"00000000-0000-0000-0000-000000000000"}`, "", events.CodeMissingIdentity, 0},
		{"only a bad email", `{"type":"identify","traits":{"email":"not-an-email"}}`, "", events.CodeMissingIdentity, 0},
		{"track without event", `{"type":"track","anonymousId":"a"}`, "", events.CodeMissingEvent, 0},
		{"track with empty event", `{"type":"track","event":"","anonymousId":"a"}`, "", events.CodeMissingEvent, 0},
		{"track endpoint without event", `{"anonymousId":"a"}`, events.TypeTrack, events.CodeMissingEvent, 0},
		{"group without groupId", `{"type":"group","anonymousId":"a"}`, "", events.CodeMissingGroup, 0},
		{"alias without previousId", `{"type":"alias","userId":"u1"}`, "", events.CodeMissingPrevious, 0},
		{"alias without userId", `{"type":"alias","previousId":"a1","anonymousId":"a1"}`, "", events.CodeMissingPrevious, 0},
		{"userId an object", `{"type":"track","event":"x","userId":{"id":1}}`, "", events.CodeBadField, 0},
		{"userId a boolean", `{"type":"track","event":"x","userId":true}`, "", events.CodeBadField, 0},
		{"userId too long", `{"type":"track","event":"x","userId":"` + long + `"}`, "", events.CodeBadField, 0},
		{"anonymousId an array", `{"type":"track","event":"x","anonymousId":["a"]}`, "", events.CodeBadField, 0},
		{"groupId an object", `{"type":"group","anonymousId":"a","groupId":{}}`, "", events.CodeBadField, 0},
		{"previousId a boolean", `{"type":"alias","userId":"u","previousId":false}`, "", events.CodeBadField, 0},
		{"event a number", `{"type":"track","event":42,"anonymousId":"a"}`, "", events.CodeBadField, 0},
		{"event too long", `{"type":"track","event":"` + strings.Repeat("e", events.MaxNameLen+1) + `","anonymousId":"a"}`, "", events.CodeBadField, 0},
		{"name too long", `{"type":"page","name":"` + strings.Repeat("n", events.MaxNameLen+1) + `","anonymousId":"a"}`, "", events.CodeBadField, 0},
		{"properties an array", `{"type":"track","event":"x","anonymousId":"a","properties":[1]}`, "", events.CodeBadField, 0},
		{"traits a string", `{"type":"identify","anonymousId":"a","traits":"ada"}`, "", events.CodeBadField, 0},
		{"context a number", `{"type":"track","event":"x","anonymousId":"a","context":1}`, "", events.CodeBadField, 0},
		{"messageId a number", `{"type":"track","event":"x","anonymousId":"a","messageId":7}`, "", events.CodeBadField, 0},
		{"messageId too long", `{"type":"track","event":"x","anonymousId":"a","messageId":"` + strings.Repeat("m", 201) + `"}`, "", events.CodeBadField, 0},
		{"timestamp not a time", `{"type":"track","event":"x","anonymousId":"a","timestamp":"yesterday"}`, "", events.CodeBadTimestamp, 0},
		{"timestamp a number", `{"type":"track","event":"x","anonymousId":"a","timestamp":1714557600}`, "", events.CodeBadTimestamp, 0},
		{"originalTimestamp not a time", `{"type":"track","event":"x","anonymousId":"a","originalTimestamp":"soon"}`, "", events.CodeBadTimestamp, 0},
		{"sentAt not a time", `{"type":"track","event":"x","anonymousId":"a","timestamp":"2024-05-01T10:00:00Z","sentAt":"later"}`, "", events.CodeBadTimestamp, 0},
		{"year 1900", `{"type":"track","event":"x","anonymousId":"a","timestamp":"1900-01-01T00:00:00Z"}`, "", events.CodeBadTimestamp, 0},
		{"a second before 2000", `{"type":"track","event":"x","anonymousId":"a","timestamp":"1999-12-31T23:59:59Z"}`, "", events.CodeBadTimestamp, 0},
		{"year 2300", `{"type":"track","event":"x","anonymousId":"a","timestamp":"2300-01-01T00:00:00Z"}`, "", events.CodeBadTimestamp, 0},
		{"more than 24 hours ahead", `{"type":"track","event":"x","anonymousId":"a","timestamp":"2024-05-02T12:00:01Z"}`, "", events.CodeBadTimestamp, 0},
		{"corrected into the past", `{"type":"track","event":"x","anonymousId":"a","timestamp":"2024-05-01T00:00:00Z","sentAt":"2300-01-01T00:00:00Z"}`, "", events.CodeBadTimestamp, 0},
	}
	covered := map[string]bool{events.CodeSuppressed: true} // only Ingest rejects as suppressed: see the identity scenarios
	for _, tc := range tests {
		covered[tc.code] = true
		t.Run(tc.name, func(t *testing.T) {
			p, r := events.Parse(json.RawMessage(tc.raw), tc.index, tc.typ, env())
			if p != nil || r == nil {
				t.Fatalf("Parse = %+v, %+v; want only a rejection", p, r)
			}
			if r.Code != tc.code {
				t.Errorf("code = %q (%s), want %q", r.Code, r.Reason, tc.code)
			}
			if r.Index != tc.index || r.PropertyID != "prp_test" || !r.ReceivedAt.Equal(received) {
				t.Errorf("rejection = index %d property %q received %s", r.Index, r.PropertyID, r.ReceivedAt)
			}
			if r.Reason == "" {
				t.Errorf("no reason given")
			}
			if len(r.Payload) > events.MaxRejectedPayload || !utf8.Valid(r.Payload) {
				t.Errorf("payload is %d bytes (valid UTF-8: %v), want at most %d valid bytes", len(r.Payload), utf8.Valid(r.Payload), events.MaxRejectedPayload)
			}
			if want := tc.raw[:min(len(tc.raw), events.MaxRejectedPayload)]; string(r.Payload) != want {
				t.Errorf("payload = %.60q…, want the start of the message", r.Payload)
			}
		})
	}
	for _, code := range []string{events.CodeInvalidJSON, events.CodeNotObject, events.CodeTooLarge, events.CodeTooDeep, events.CodeBadNumber,
		events.CodeBadType, events.CodeMissingIdentity, events.CodeMissingEvent, events.CodeMissingGroup, events.CodeMissingPrevious,
		events.CodeBadField, events.CodeBadTimestamp, events.CodeSuppressed} {
		if !covered[code] {
			t.Errorf("no test for rejection code %q", code)
		}
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name     string
		raw      string
		typ      string
		wantType string
		wantKeys []string
		check    func(t *testing.T, e *events.Event, o identity.Observation)
	}{
		{
			name: "numbers as ids", raw: `{"type":"group","userId":42,"anonymousId":1234567890123,"groupId":7,"messageId":"m"}`,
			wantType: events.TypeGroup, wantKeys: []string{"user_id:42", "anonymous_id:1234567890123"},
			check: func(t *testing.T, e *events.Event, _ identity.Observation) {
				if e.UserID != "42" || e.AnonymousID != "1234567890123" || e.GroupID != "7" {
					t.Errorf("ids = %q %q %q", e.UserID, e.AnonymousID, e.GroupID)
				}
			},
		},
		{
			name: "negative and fractional numbers as ids", raw: `{"type":"page","userId":-5,"anonymousId":12.5}`,
			wantType: events.TypePage, wantKeys: []string{"user_id:-5", "anonymous_id:12.5"},
		},
		{
			name: "ids are trimmed but keep their case", raw: `{"type":"page","userId":"  User-ABC ","anonymousId":"Anon-7"}`,
			wantType: events.TypePage, wantKeys: []string{"user_id:User-ABC", "anonymous_id:Anon-7"},
		},
		{
			name: "a placeholder userId is ignored when an anonymousId is there", raw: `{"type":"page","userId":"undefined","anonymousId":"a1"}`,
			wantType: events.TypePage, wantKeys: []string{"anonymous_id:a1"},
		},
		{
			name: "identify traits carry email and phone", raw: `{"type":"identify","userId":"u1","traits":{"email":" Ada@Example.COM ","phone":"+44 (20) 7946-0000","name":"Ada"}}`,
			wantType: events.TypeIdentify, wantKeys: []string{"user_id:u1", "email:ada@example.com", "phone:+442079460000"},
			check: func(t *testing.T, e *events.Event, o identity.Observation) {
				if string(o.Traits) != string(e.Traits) || !strings.Contains(string(o.Traits), `"Ada"`) {
					t.Errorf("observation traits = %s", o.Traits)
				}
			},
		},
		{
			name: "identify without userId: the email is enough", raw: `{"type":"identify","traits":{"email":"ada@example.com"}}`,
			wantType: events.TypeIdentify, wantKeys: []string{"email:ada@example.com"},
		},
		{
			name: "track traits do not name the person", raw: `{"type":"track","event":"x","anonymousId":"a1","traits":{"email":"ada@example.com"}}`,
			wantType: events.TypeTrack, wantKeys: []string{"anonymous_id:a1"},
			check: func(t *testing.T, _ *events.Event, o identity.Observation) {
				if len(o.Traits) != 0 {
					t.Errorf("a track call changes traits: %s", o.Traits)
				}
			},
		},
		{
			name: "context.traits name the person on any call", raw: `{"type":"track","event":"Registered","anonymousId":"a1","context":{"traits":{"email":"ada@example.com","phone":"07946 000000"}}}`,
			wantType: events.TypeTrack, wantKeys: []string{"anonymous_id:a1", "email:ada@example.com", "phone:07946000000"},
		},
		{
			name: "context.externalIds", raw: `{"type":"track","event":"x","userId":"u1","context":{"externalIds":[{"id":"cus_1","type":"Stripe_Customer_ID","collection":"users"},{"id":99,"type":"zendesk_id"},{"id":"x","type":"user_id"},{"id":"y","type":"bad type!"},{"id":"null","type":"crm_id"}]}}`,
			wantType: events.TypeTrack, wantKeys: []string{"user_id:u1", "stripe_customer_id:cus_1", "zendesk_id:99"},
		},
		{
			name: "context.ip overrides the connection's address", raw: `{"type":"page","anonymousId":"a","context":{"ip":"203.0.113.9"}}`,
			wantType: events.TypePage, wantKeys: []string{"anonymous_id:a"},
			check: func(t *testing.T, e *events.Event, _ identity.Observation) {
				if e.IP != "203.0.113.9" {
					t.Errorf("ip = %q", e.IP)
				}
			},
		},
		{
			name: "the connection's address when context has none", raw: `{"type":"page","anonymousId":"a","context":{"locale":"en"}}`,
			wantType: events.TypePage, wantKeys: []string{"anonymous_id:a"},
			check: func(t *testing.T, e *events.Event, _ identity.Observation) {
				if e.IP != "192.0.2.7" {
					t.Errorf("ip = %q", e.IP)
				}
			},
		},
		{
			name: "alias names the previous id", raw: `{"type":"alias","previousId":" anon-1 ","userId":"u1"}`,
			wantType: events.TypeAlias, wantKeys: []string{"user_id:u1"},
			check: func(t *testing.T, e *events.Event, o identity.Observation) {
				if !o.Alias || o.AliasOf != "anon-1" || e.PreviousID != " anon-1 " {
					t.Errorf("alias = %v of %q (event previousId %q)", o.Alias, o.AliasOf, e.PreviousID)
				}
			},
		},
		{
			name: "track keeps event, drops name", raw: `{"type":"track","event":"Signed Up","name":"ignored","anonymousId":"a"}`,
			wantType: events.TypeTrack, wantKeys: []string{"anonymous_id:a"},
			check: func(t *testing.T, e *events.Event, _ identity.Observation) {
				if e.Event != "Signed Up" || e.Name != "" || e.NameColumn() != "Signed Up" {
					t.Errorf("event %q name %q", e.Event, e.Name)
				}
			},
		},
		{
			name: "page keeps name, drops event", raw: `{"type":"page","event":"ignored","name":"Pricing","anonymousId":"a","properties":{"path":"/pricing"}}`,
			wantType: events.TypePage, wantKeys: []string{"anonymous_id:a"},
			check: func(t *testing.T, e *events.Event, _ identity.Observation) {
				if e.Name != "Pricing" || e.Event != "" || string(e.Properties) != `{"path":"/pricing"}` {
					t.Errorf("event %q name %q properties %s", e.Event, e.Name, e.Properties)
				}
			},
		},
		{
			name: "single-call endpoint fills the type", raw: `{"anonymousId":"a","name":"Home"}`, typ: events.TypePage,
			wantType: events.TypePage, wantKeys: []string{"anonymous_id:a"},
		},
		{
			name: "single-call endpoint accepts the same type in the body", raw: `{"type":"screen","anonymousId":"a","name":"Home"}`, typ: events.TypeScreen,
			wantType: events.TypeScreen, wantKeys: []string{"anonymous_id:a"},
		},
		{
			name: "null objects are dropped", raw: `{"type":"track","event":"x","anonymousId":"a","properties":null,"traits":null,"context":null}`,
			wantType: events.TypeTrack, wantKeys: []string{"anonymous_id:a"},
			check: func(t *testing.T, e *events.Event, _ identity.Observation) {
				if e.Properties != nil || e.Traits != nil || e.Context != nil {
					t.Errorf("null objects kept: %s %s %s", e.Properties, e.Traits, e.Context)
				}
			},
		},
		{
			name: "nested exactly 32 levels is fine", raw: `{"type":"track","event":"x","anonymousId":"a","properties":` + nested(events.MaxDepth-1) + `}`,
			wantType: events.TypeTrack, wantKeys: []string{"anonymous_id:a"},
		},
		{
			name: "tiny and large numbers that float64 holds", raw: `{"type":"track","event":"x","anonymousId":"a","properties":{"a":1e308,"b":1e-400,"c":-0.0,"d":12345678901234567890}}`,
			wantType: events.TypeTrack, wantKeys: []string{"anonymous_id:a"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := parseOK(t, tc.raw, tc.typ, env())
			if p.Event.Type != tc.wantType {
				t.Errorf("type = %q, want %q", p.Event.Type, tc.wantType)
			}
			var keys []string
			for _, k := range p.Obs.Keys {
				keys = append(keys, k.String())
			}
			if !slices.Equal(keys, tc.wantKeys) {
				t.Errorf("keys = %v, want %v", keys, tc.wantKeys)
			}
			if p.Event.PropertyID != "prp_test" || p.Event.MessageID == "" || p.Obs.MessageID != p.Event.MessageID {
				t.Errorf("event = property %q message %q (observation %q)", p.Event.PropertyID, p.Event.MessageID, p.Obs.MessageID)
			}
			if tc.check != nil {
				tc.check(t, p.Event, p.Obs)
			}
		})
	}
}

func TestParseMessageID(t *testing.T) {
	const a = `{"type":"track","event":"x","anonymousId":"a1","properties":{"n":1}}`
	const b = `{"type":"track","event":"x","anonymousId":"a1","properties":{"n":2}}`
	id := func(raw string) string { return parseOK(t, raw, "", env()).Event.MessageID }
	tests := []struct {
		name string
		got  string
		want string
		same bool
	}{
		{"explicit id is kept", id(`{"type":"page","anonymousId":"a","messageId":"ajs-123"}`), "ajs-123", true},
		{"same content, same derived id", id(a), id(a), true},
		{"same content at another time, same derived id", parseOK(t, a, "", events.Envelope{PropertyID: "prp_test", ReceivedAt: received.Add(time.Hour)}).Event.MessageID, id(a), true},
		{"other content, other derived id", id(a), id(b), false},
		{"empty id is derived too", id(`{"type":"track","event":"x","anonymousId":"a1","properties":{"n":1},"messageId":""}`), "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if (tc.got == tc.want) != tc.same {
				t.Errorf("id %q vs %q: same = %v, want %v", tc.got, tc.want, tc.got == tc.want, tc.same)
			}
			if tc.got == "" || len(tc.got) > 200 {
				t.Errorf("id %q is empty or too long", tc.got)
			}
		})
	}
	if got := id(a); !strings.HasPrefix(got, "onramp-") {
		t.Errorf("derived id %q has no onramp- prefix", got)
	}
}

func TestDecodeBody(t *testing.T) {
	many := `{"batch":[` + strings.TrimSuffix(strings.Repeat(`{},`, events.MaxBatchEvents+1), ",") + `]}`
	tests := []struct {
		name     string
		body     string
		typ      string
		code     string // "" for success
		messages int
		writeKey string
	}{
		{"batch", `{"batch":[{"type":"page"},{"type":"track"}],"writeKey":"wk_1"}`, "", "", 2, "wk_1"},
		{"empty batch", `{"batch":[]}`, "", "", 0, ""},
		{"batch items of any JSON kind reach Parse", `{"batch":[1,"x",null,[]]}`, "", "", 4, ""},
		{"single call with whitespace around", "  \n{\"event\":\"x\",\"writeKey\":\"wk_2\"}\n ", events.TypeTrack, "", 1, "wk_2"},
		{"single call null body", `null`, events.TypeTrack, "", 1, ""},
		{"largest batch", `{"batch":[` + strings.TrimSuffix(strings.Repeat(`{},`, events.MaxBatchEvents), ",") + `]}`, "", "", events.MaxBatchEvents, ""},
		{"too many messages", many, "", onramp.ETOOLARGE, 0, ""},
		{"invalid UTF-8", "{\"batch\":[{\"event\":\"\xff\"}]}", "", onramp.EINVALID, 0, ""},
		{"not JSON", `batch=1`, "", onramp.EINVALID, 0, ""},
		{"truncated", `{"batch":[{"type":"page"}`, "", onramp.EINVALID, 0, ""},
		{"trailing garbage", `{"batch":[]}x`, "", onramp.EINVALID, 0, ""},
		{"two values", `{"batch":[]} {"batch":[]}`, "", onramp.EINVALID, 0, ""},
		{"empty body", ``, "", onramp.EINVALID, 0, ""},
		{"empty single-call body", ``, events.TypeTrack, onramp.EINVALID, 0, ""},
		{"no batch field", `{"writeKey":"wk"}`, "", onramp.EINVALID, 0, ""},
		{"batch null", `{"batch":null}`, "", onramp.EINVALID, 0, ""},
		{"batch an object", `{"batch":{}}`, "", onramp.EINVALID, 0, ""},
		{"top-level array", `[{"type":"page"}]`, "", onramp.EINVALID, 0, ""},
		{"top-level array on a single-call endpoint", `[{"type":"page"}]`, events.TypePage, onramp.EINVALID, 0, ""},
		{"writeKey a number", `{"batch":[],"writeKey":5}`, "", onramp.EINVALID, 0, ""},
		{"sentAt not a time", `{"batch":[],"sentAt":"noon"}`, "", onramp.EINVALID, 0, ""},
		{"sentAt a number", `{"batch":[],"sentAt":1}`, "", onramp.EINVALID, 0, ""},
		{"leading zero in a message", `{"batch":[{"n":01}]}`, "", onramp.EINVALID, 0, ""},
		{"single quotes", `{'batch':[]}`, "", onramp.EINVALID, 0, ""},
		{"trailing comma", `{"batch":[{},]}`, "", onramp.EINVALID, 0, ""},
		{"invalid escape in a message", `{"batch":[{"a":"\x"}]}`, "", onramp.EINVALID, 0, ""},
		{"control character in a string", "{\"batch\":[{\"a\":\"\x01\"}]}", "", onramp.EINVALID, 0, ""},
		{"NaN", `{"batch":[{"n":NaN}]}`, "", onramp.EINVALID, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := events.DecodeBody([]byte(tc.body), tc.typ)
			if tc.code != "" {
				if err == nil {
					t.Fatalf("DecodeBody = %d messages, want error %q", len(b.Messages), tc.code)
				}
				if got := onramp.ErrorCode(err); got != tc.code {
					t.Errorf("code = %q (%v), want %q", got, err, tc.code)
				}
				if msg := onramp.ErrorMessage(err); msg == "" || msg == "Internal error." {
					t.Errorf("message %q is not fit for a client", msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeBody: %v", err)
			}
			if len(b.Messages) != tc.messages || b.WriteKey != tc.writeKey {
				t.Errorf("DecodeBody = %d messages key %q, want %d key %q", len(b.Messages), b.WriteKey, tc.messages, tc.writeKey)
			}
			for i, m := range b.Messages {
				if !json.Valid(m) {
					t.Errorf("message %d is not valid JSON: %s", i, m)
				}
			}
		})
	}
}

func TestCheckJSON(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		maxDepth int
		code     string
	}{
		{"flat", `{"a":1,"b":[1,2,3],"c":"x"}`, 32, ""},
		{"depth at the limit", nested(32), 32, ""},
		{"one deeper than the limit", nested(33), 32, events.CodeTooDeep},
		{"arrays count", strings.Repeat("[", 33) + strings.Repeat("]", 33), 32, events.CodeTooDeep},
		{"siblings do not add up", `{"a":` + nested(31) + `,"b":` + nested(31) + `}`, 32, ""},
		{"brackets in strings do not count", `{"a":"` + strings.Repeat("[{", 50) + `"}`, 32, ""},
		{"escaped quotes keep the string open", `{"a":"\"` + strings.Repeat("[", 50) + `\\"}`, 32, ""},
		{"escaped backslash closes the string", `{"a":"\\"}`, 1, ""},
		{"numbers in strings do not count", `{"a":"1e400","1e400":2}`, 32, ""},
		{"1e308", `[1e308]`, 32, ""},
		{"1e309", `[1e309]`, 32, events.CodeBadNumber},
		{"-1e400", `{"a":-1e400}`, 32, events.CodeBadNumber},
		{"underflow to zero is fine", `[1e-400]`, 32, ""},
		{"64-digit number", `[` + strings.Repeat("1", 64) + `]`, 32, ""},
		{"65-digit number", `[` + strings.Repeat("1", 65) + `]`, 32, events.CodeBadNumber},
		{"scalar", `1`, 0, ""},
		{"depth 1 with limit 0", `{}`, 0, events.CodeTooDeep},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !json.Valid([]byte(tc.in)) {
				t.Fatalf("test input is not valid JSON: %s", tc.in)
			}
			code, msg := events.CheckJSON([]byte(tc.in), tc.maxDepth)
			if code != tc.code {
				t.Errorf("CheckJSON = %q (%s), want %q", code, msg, tc.code)
			}
			if (code == "") != (msg == "") {
				t.Errorf("code %q with message %q", code, msg)
			}
		})
	}
}

// Once a message decodes, its rejection names it, so a sender can match
// the rejection to what it sent.
func TestParseRejectionNamesTheMessage(t *testing.T) {
	tests := []struct {
		name, raw, typ   string
		wantID, wantType string
		wantCode         string
	}{
		{"decoded message", `{"type":"track","messageId":"m-7","anonymousId":"a"}`, "", "m-7", "track", events.CodeMissingEvent},
		{"single-call endpoint", `{"messageId":"m-8"}`, events.TypePage, "m-8", "", events.CodeMissingIdentity},
		{"bad timestamp", `{"type":"page","messageId":"m-9","anonymousId":"a","timestamp":"1900-01-01T00:00:00Z"}`, "", "m-9", "page", events.CodeBadTimestamp},
		{"not decoded", `{"type":"track","messageId":"m-1",`, "", "", "", events.CodeInvalidJSON},
		{"too large to decode", `{"messageId":"m-2","p":"` + strings.Repeat("x", events.MaxEventBytes) + `"}`, "", "", "", events.CodeTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, r := events.Parse([]byte(tc.raw), 0, tc.typ, env())
			if r == nil {
				t.Fatal("want a rejection")
			}
			if r.Code != tc.wantCode || r.MessageID != tc.wantID || r.Type != tc.wantType {
				t.Errorf("rejection = code %q message %q type %q, want %q %q %q", r.Code, r.MessageID, r.Type, tc.wantCode, tc.wantID, tc.wantType)
			}
		})
	}
}

// Parse must not keep references into the caller's buffer that a rejection
// could later expose changed: the payload is a copy.
func TestParseRejectionPayloadIsACopy(t *testing.T) {
	raw := []byte(`{"type":"track","anonymousId":"a"}`)
	_, r := events.Parse(raw, 0, "", env())
	if r == nil {
		t.Fatal("want a rejection")
	}
	raw[2] = 'X'
	if string(r.Payload) != `{"type":"track","anonymousId":"a"}` {
		t.Errorf("payload changed with the request buffer: %s", r.Payload)
	}
}

func ExampleParse() {
	raw := []byte(`{"type":"track","event":"Signed Up","userId":"u1","timestamp":"2024-05-01T10:00:00Z","sentAt":"2024-05-01T10:00:05Z"}`)
	p, _ := events.Parse(raw, 0, "", events.Envelope{PropertyID: "prp_1", ReceivedAt: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)})
	fmt.Println(p.Event.Timestamp.Format(time.RFC3339), p.Obs.Keys)
	// Output: 2024-05-01T11:59:55Z [user_id:u1]
}
