package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"errors"
	"fmt"
	gojson "github.com/goccy/go-json"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/identity"
)

// Limits, as Segment's HTTP API sets them.
const (
	MaxEventBytes   = 32 << 10
	MaxRequestBytes = 500 << 10
	MaxBatchEvents  = 2500
	MaxDepth        = 32
	MaxNameLen      = 256
)

// Rejection codes: machine-readable reasons an event was refused.
const (
	CodeInvalidJSON     = "invalid_json"
	CodeNotObject       = "not_an_object"
	CodeTooLarge        = "too_large"
	CodeTooDeep         = "too_deep"
	CodeBadNumber       = "number_out_of_range"
	CodeBadType         = "invalid_type"
	CodeMissingIdentity = "missing_identity"
	CodeMissingEvent    = "missing_event"
	CodeMissingGroup    = "missing_group_id"
	CodeMissingPrevious = "missing_previous_id"
	CodeBadField        = "invalid_field"
	CodeBadTimestamp    = "invalid_timestamp"
	CodeSuppressed      = "suppressed"
	// CodeOriginNotAllowed refuses a whole browser request from an origin
	// the property does not list.
	CodeOriginNotAllowed = "origin_not_allowed"
)

// Batch is a decoded request body: the messages and the envelope fields.
type Batch struct {
	WriteKey string
	SentAt   time.Time
	// Context applies to every message of the batch (analytics-go sends
	// context.library only here); a message's own keys win.
	Context  json.RawMessage
	Messages []json.RawMessage
}

type envelope struct {
	Batch    []json.RawMessage `json:"batch"`
	WriteKey *string           `json:"writeKey"`
	SentAt   *string           `json:"sentAt"`
	Context  json.RawMessage   `json:"context"`
}

// DecodeBody decodes a request body. For the batch endpoint (typ == "") the
// body is {"batch":[…]}; for the single-call endpoints the body is the
// message itself and typ is its type. Any error is EINVALID with a message
// fit for the client.
func DecodeBody(body []byte, typ string) (*Batch, error) {
	if !utf8.Valid(body) {
		return nil, onramp.Errorf(onramp.EINVALID, "The body is not valid UTF-8.")
	}
	var env envelope
	if err := gojson.Unmarshal(body, &env); err != nil {
		return nil, onramp.Errorf(onramp.EINVALID, "The body is not a valid JSON object: %s", jsonErrorText(err))
	}
	b := &Batch{}
	if env.WriteKey != nil {
		b.WriteKey = *env.WriteKey
	}
	if env.SentAt != nil && *env.SentAt != "" {
		t, err := ParseTime(*env.SentAt)
		if err != nil {
			return nil, onramp.Errorf(onramp.EINVALID, "sentAt is not an ISO 8601 time.")
		}
		b.SentAt = t
	}
	if typ == "" {
		if len(env.Context) > 0 && !isNull(env.Context) {
			if env.Context[0] != '{' {
				return nil, onramp.Errorf(onramp.EINVALID, "The batch's context must be a JSON object.")
			}
			b.Context = env.Context
		}
		if env.Batch == nil {
			return nil, onramp.Errorf(onramp.EINVALID, `The body needs a "batch" array of messages.`)
		}
		if len(env.Batch) > MaxBatchEvents {
			return nil, onramp.Errorf(onramp.ETOOLARGE, "A batch holds at most %d messages.", MaxBatchEvents)
		}
		b.Messages = env.Batch
		return b, nil
	}
	b.Messages = []json.RawMessage{bytes.TrimSpace(body)}
	return b, nil
}

func jsonErrorText(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var gse *gojson.SyntaxError
	var gte *gojson.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("%s (at byte %d)", se.Error(), se.Offset)
	case errors.As(err, &gse):
		return fmt.Sprintf("%s (at byte %d)", strings.TrimPrefix(gse.Error(), "json: "), gse.Offset)
	case errors.As(err, &te):
		return typeErrorText(te.Field, te.Type.Kind().String(), te.Offset)
	case errors.As(err, &gte):
		return typeErrorText(gte.Field, gte.Type.Kind().String(), gte.Offset)
	}
	return "it could not be decoded"
}

// unquote reads a JSON string. Most ids and names have no escapes: those
// are sliced out directly (the body was already checked to be valid JSON
// and UTF-8), which is most of what parsing a message costs otherwise.
func unquote(raw json.RawMessage, s *string) error {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		*s = string(raw[1 : len(raw)-1])
		return nil
	}
	return gojson.Unmarshal(raw, s)
}

// typeErrorText explains a JSON value of the wrong kind without naming our
// Go types.
func typeErrorText(field, kind string, offset int64) string {
	want := map[string]string{"struct": "an object", "slice": "an array", "string": "a string", "ptr": "a string"}[kind]
	if want == "" {
		want = "another kind of value"
	}
	if field == "" {
		return fmt.Sprintf("the body must be a JSON object (at byte %d)", offset)
	}
	return fmt.Sprintf("field %q must be %s (at byte %d)", field, want, offset)
}

// wireMessage is one Segment message as sent. Ids may be strings or numbers.
// The envelope and messages are decoded with goccy/go-json: on a batch of
// 100 realistic events it decodes 1.85x faster than encoding/json (see
// docs/benchmarks.md), and decoding is most of the request's CPU.
type wireMessage struct {
	Type              string          `json:"type"`
	MessageID         json.RawMessage `json:"messageId"`
	UserID            json.RawMessage `json:"userId"`
	AnonymousID       json.RawMessage `json:"anonymousId"`
	Event             json.RawMessage `json:"event"`
	Name              json.RawMessage `json:"name"`
	GroupID           json.RawMessage `json:"groupId"`
	PreviousID        json.RawMessage `json:"previousId"`
	Timestamp         json.RawMessage `json:"timestamp"`
	OriginalTimestamp json.RawMessage `json:"originalTimestamp"`
	SentAt            json.RawMessage `json:"sentAt"`
	Properties        json.RawMessage `json:"properties"`
	Traits            json.RawMessage `json:"traits"`
	Context           json.RawMessage `json:"context"`
}

// identityFields are the parts of traits and context that carry identifiers.
type identityFields struct {
	Email json.RawMessage `json:"email"`
	Phone json.RawMessage `json:"phone"`
}

type contextFields struct {
	Traits      *identityFields `json:"traits"`
	IP          json.RawMessage `json:"ip"`
	ExternalIDs []struct {
		ID   json.RawMessage `json:"id"`
		Type string          `json:"type"`
	} `json:"externalIds"`
}

// Envelope is what the transport knows about a request.
type Envelope struct {
	PropertyID   string
	ReceivedAt   time.Time
	BatchSentAt  time.Time
	BatchContext json.RawMessage
	IP           string
}

// Parsed is one valid message turned into an event and what it says about
// identity.
type Parsed struct {
	Index int
	Event *Event
	Obs   identity.Observation
}

// Parse validates one message. It returns either a Parsed or a Rejection.
// forcedType is the type of a single-call endpoint ("" for batch items).
func Parse(raw json.RawMessage, index int, forcedType string, env Envelope) (*Parsed, *Rejection) {
	// Once the message is decoded, its messageId and type go into every
	// rejection, so the sender can match the rejection to its message.
	var rejMessageID, rejType string
	reject := func(code, reason string, args ...any) (*Parsed, *Rejection) {
		r := &Rejection{PropertyID: env.PropertyID, ReceivedAt: env.ReceivedAt, Index: index, Code: code, Reason: fmt.Sprintf(reason, args...), MessageID: rejMessageID, Type: rejType}
		r.Payload = truncate(raw, MaxRejectedPayload)
		return nil, r
	}
	if len(raw) > MaxEventBytes {
		return reject(CodeTooLarge, "The event is %d bytes; the limit is %d (32 KB).", len(raw), MaxEventBytes)
	}
	if len(raw) == 0 || raw[0] != '{' {
		return reject(CodeNotObject, "Each message must be a JSON object.")
	}
	if !utf8.Valid(raw) {
		// DecodeBody checks whole bodies; Parse is also called on its own.
		return reject(CodeInvalidJSON, "The message is not valid UTF-8.")
	}
	var w wireMessage
	if err := gojson.Unmarshal(raw, &w); err != nil {
		if code, msg := CheckJSON(raw, MaxDepth); code != "" {
			return reject(code, "%s", msg)
		}
		return reject(CodeInvalidJSON, "The message could not be decoded: %s", jsonErrorText(err))
	}
	if id, ok := stringField(w.MessageID, 200); ok {
		rejMessageID = id
	}
	typ := w.Type
	if len(typ) <= 20 {
		rejType = typ
	}
	// Checked after decoding so the rejection can name the message.
	if code, msg := CheckJSON(raw, MaxDepth); code != "" {
		return reject(code, "%s", msg)
	}
	if forcedType != "" {
		// The single-call endpoints name the type in the path; a body that
		// says otherwise is a client bug, not a different call.
		if typ != "" && typ != forcedType {
			return reject(CodeBadType, "The body says type %q but was sent to the %s endpoint.", typ, forcedType)
		}
		typ = forcedType
	}
	switch typ {
	case TypeTrack, TypeIdentify, TypePage, TypeScreen, TypeGroup, TypeAlias:
	case "":
		return reject(CodeBadType, `The message has no "type"; it must be one of track, identify, page, screen, group, alias.`)
	default:
		return reject(CodeBadType, "Unknown type %q; it must be one of track, identify, page, screen, group, alias.", truncateString(typ, 40))
	}
	e := &Event{PropertyID: env.PropertyID, Type: typ, ReceivedAt: env.ReceivedAt}
	var ok bool
	var bad string
	if e.UserID, ok = idField(w.UserID); !ok {
		bad = "userId"
	}
	if e.AnonymousID, ok = idField(w.AnonymousID); !ok {
		bad = "anonymousId"
	}
	if e.GroupID, ok = idField(w.GroupID); !ok {
		bad = "groupId"
	}
	if e.PreviousID, ok = idField(w.PreviousID); !ok {
		bad = "previousId"
	}
	if bad != "" {
		return reject(CodeBadField, "%s must be a string or a number of at most %d characters.", bad, identity.MaxIdentifierLen)
	}
	if e.Event, ok = stringField(w.Event, MaxNameLen); !ok {
		return reject(CodeBadField, "event must be a string of at most %d characters.", MaxNameLen)
	}
	if e.Name, ok = stringField(w.Name, MaxNameLen); !ok {
		return reject(CodeBadField, "name must be a string of at most %d characters.", MaxNameLen)
	}
	for _, f := range []struct {
		name string
		v    *json.RawMessage
	}{{"properties", &w.Properties}, {"traits", &w.Traits}, {"context", &w.Context}} {
		if !objectOrNull(*f.v) {
			return reject(CodeBadField, "%s must be a JSON object.", f.name)
		}
		if isNull(*f.v) {
			*f.v = nil
		}
	}
	if len(env.BatchContext) > 0 {
		merged, _, err := identity.MergeTraits(w.Context, env.BatchContext, true)
		if err != nil {
			return reject(CodeBadField, "context must be a JSON object.")
		}
		w.Context = merged
	}
	e.Properties, e.Traits, e.Context = w.Properties, w.Traits, w.Context
	mid, ok := stringField(w.MessageID, 200)
	if !ok {
		return reject(CodeBadField, "messageId must be a string of at most 200 characters.")
	}
	if mid == "" {
		// Without a messageId a retry could not be recognised. An id derived
		// from the content makes a resent identical message a duplicate.
		sum := sha256.Sum256(raw)
		mid = "onramp-" + hex.EncodeToString(sum[:16])
	}
	e.MessageID = mid

	switch typ {
	case TypeTrack:
		if e.Event == "" {
			return reject(CodeMissingEvent, `A track call needs an "event" name.`)
		}
		e.Name = ""
	case TypeGroup:
		if e.GroupID == "" {
			return reject(CodeMissingGroup, `A group call needs a "groupId".`)
		}
	case TypeAlias:
		if e.PreviousID == "" || e.UserID == "" {
			return reject(CodeMissingPrevious, `An alias call needs both "previousId" and "userId".`)
		}
	}
	if typ != TypeTrack {
		e.Event = ""
	}

	// Timestamps, corrected for the sender's clock as Segment does:
	// timestamp = receivedAt - (sentAt - originalTimestamp).
	orig, err := timeField(w.Timestamp)
	if err == nil && orig.IsZero() {
		orig, err = timeField(w.OriginalTimestamp)
	}
	if err != nil {
		return reject(CodeBadTimestamp, "timestamp is not an ISO 8601 time.")
	}
	sent, err := timeField(w.SentAt)
	if err != nil {
		return reject(CodeBadTimestamp, "sentAt is not an ISO 8601 time.")
	}
	if sent.IsZero() {
		sent = env.BatchSentAt
	}
	// Stored to the microsecond in UTC, as Timestamp below: the event as
	// parsed is what the bus publishes first, and it must be the event a
	// later read of the store returns.
	e.OriginalTimestamp, e.SentAt = orig.UTC().Truncate(time.Microsecond), sent.UTC().Truncate(time.Microsecond)
	switch {
	case orig.IsZero():
		e.Timestamp = env.ReceivedAt
	case !sent.IsZero():
		e.Timestamp = env.ReceivedAt.Add(-sent.Sub(orig))
	default:
		e.Timestamp = orig
	}
	if e.Timestamp.Before(minTimestamp) || e.Timestamp.After(env.ReceivedAt.Add(maxFuture)) {
		return reject(CodeBadTimestamp, "timestamp %s is out of range: it must be after 2000-01-01 and at most 24 hours ahead of the server clock.", e.Timestamp.Format(time.RFC3339))
	}
	e.Timestamp = e.Timestamp.UTC().Truncate(time.Microsecond)

	// Identifiers.
	p := &Parsed{Index: index, Event: e}
	p.Obs = identity.Observation{At: e.Timestamp, MessageID: e.MessageID, Alias: typ == TypeAlias}
	add := func(t, v string) {
		if v == "" {
			return
		}
		if n, ok := identity.Normalize(t, v); ok {
			p.Obs.Keys = append(p.Obs.Keys, identity.Key{Type: t, Value: n})
		}
	}
	add(identity.UserID, e.UserID)
	add(identity.AnonymousID, e.AnonymousID)
	if typ == TypeIdentify && len(e.Traits) > 0 {
		var f identityFields
		if gojson.Unmarshal(e.Traits, &f) == nil {
			add(identity.Email, plainString(f.Email))
			add(identity.Phone, plainString(f.Phone))
		}
		p.Obs.Traits = e.Traits
	}
	e.IP = env.IP
	if len(e.Context) > 0 && (bytes.Contains(e.Context, []byte(`"traits"`)) || bytes.Contains(e.Context, []byte(`"externalIds"`)) || bytes.Contains(e.Context, []byte(`"ip"`))) {
		var c contextFields
		if gojson.Unmarshal(e.Context, &c) == nil {
			if c.Traits != nil {
				add(identity.Email, plainString(c.Traits.Email))
				add(identity.Phone, plainString(c.Traits.Phone))
			}
			for _, x := range c.ExternalIDs {
				t := strings.ToLower(x.Type)
				if identity.ValidType(t) && t != identity.AnonymousID && t != identity.UserID {
					if v, ok := idField(x.ID); ok {
						add(t, v)
					}
				}
			}
			if ip := plainString(c.IP); ip != "" && len(ip) <= 64 {
				e.IP = ip
			}
		}
	}
	if typ == TypeAlias {
		if n, ok := identity.Normalize(identity.UserID, e.PreviousID); ok {
			p.Obs.AliasOf = n
		}
	}
	if len(p.Obs.Keys) == 0 {
		return reject(CodeMissingIdentity, "The message needs a userId or an anonymousId (placeholder values such as \"null\", \"undefined\", \"0\" or \"anonymous\" do not count).")
	}
	return p, nil
}

var (
	minTimestamp = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxFuture    = 24 * time.Hour
)

// idField reads an id that may be a JSON string or number.
func idField(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || isNull(raw) {
		return "", true
	}
	switch raw[0] {
	case '"':
		var s string
		if unquote(raw, &s) != nil || len(s) > identity.MaxIdentifierLen {
			return "", false
		}
		return s, true
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if len(raw) > 40 {
			return "", false
		}
		return string(raw), true
	}
	return "", false
}

func stringField(raw json.RawMessage, max int) (string, bool) {
	if len(raw) == 0 || isNull(raw) {
		return "", true
	}
	if raw[0] != '"' {
		return "", false
	}
	var s string
	if unquote(raw, &s) != nil || len(s) > max {
		return "", false
	}
	return s, true
}

func plainString(raw json.RawMessage) string {
	if len(raw) == 0 || raw[0] != '"' {
		return ""
	}
	var s string
	_ = unquote(raw, &s)
	return s
}

func timeField(raw json.RawMessage) (time.Time, error) {
	s := plainString(raw)
	if s == "" {
		if len(raw) > 0 && !isNull(raw) && string(raw) != `""` {
			return time.Time{}, fmt.Errorf("not a string")
		}
		return time.Time{}, nil
	}
	t, err := ParseTime(s)
	if err == nil && t.IsZero() {
		// Year 1 is how some clients spell "no time"; it is not a time.
		return t, fmt.Errorf("events: zero time")
	}
	return t, err
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

func objectOrNull(raw json.RawMessage) bool {
	return len(raw) == 0 || isNull(raw) || raw[0] == '{'
}

// ParseTime reads the ISO 8601 forms that tracking libraries send.
func ParseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("events: %q is not an ISO 8601 time", truncateString(s, 40))
}

// CheckJSON walks syntactically valid JSON and reports nesting deeper than
// maxDepth and numbers that no float64 can hold (which some engines and
// most consumers would choke on). It returns a rejection code and message,
// or "" when the value is fine.
func CheckJSON(b []byte, maxDepth int) (string, string) {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			depth++
			if depth > maxDepth {
				return CodeTooDeep, fmt.Sprintf("The message is nested more than %d levels deep.", maxDepth)
			}
		case '}', ']':
			depth--
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			j := i
			for j < len(b) && strings.IndexByte("+-0123456789.eE", b[j]) >= 0 {
				j++
			}
			num := b[i:j]
			if len(num) > 64 {
				return CodeBadNumber, "A number in the message has more than 64 characters."
			}
			f, err := strconv.ParseFloat(string(num), 64)
			if err != nil || math.IsInf(f, 0) {
				return CodeBadNumber, fmt.Sprintf("The number %s is out of range.", truncateString(string(num), 40))
			}
			i = j - 1
		}
	}
	return "", ""
}

func truncate(b []byte, n int) []byte {
	if len(b) <= n {
		return append([]byte(nil), b...)
	}
	// Cut at a rune boundary so the stored text stays valid UTF-8.
	for n > 0 && !utf8.RuneStart(b[n]) {
		n--
	}
	return append([]byte(nil), b[:n]...)
}

func truncateString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return string(truncate([]byte(s), n)) + "…"
}
