package httpapi

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"

	"github.com/onramp-dev/onramp/events"
)

// appendTimelineJSON appends a timeline page exactly as
// writeJSON(map[string]any{"data": evs, "cursor": …}) would write it,
// byte for byte, including the newline. Timeline reads are the hot read of
// the profile API and goccy/go-json spent about a sixth of a read's CPU on
// them, most of it deciding per field, through reflection, what this code
// knows statically (omitempty/omitzero, RawMessage). Values it cannot
// prove plain (HTML characters, escapes, whitespace in raw JSON, U+2028)
// are handed to goccy, so the output stays goccy's.
func appendTimelineJSON(b []byte, evs []*events.Event, next string) ([]byte, error) {
	// map keys are written sorted: cursor before data.
	b = append(b, `{"cursor":{"has_more":`...)
	b = strconv.AppendBool(b, next != "")
	b = append(b, `,"next":`...)
	b = appendJSONString(b, next)
	b = append(b, `},"data":[`...)
	for i, e := range evs {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendEventJSON(b, e); err != nil {
			return nil, err
		}
	}
	return append(b, "]}\n"...), nil
}

// appendEventJSON appends e as goccy/go-json encodes events.Event (the
// fields, tags and order of its struct). TestAppendEventJSON fails when a
// field is added to events.Event and not here.
func appendEventJSON(b []byte, e *events.Event) ([]byte, error) {
	var err error
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, `,"property_id":`...)
	b = appendJSONString(b, e.PropertyID)
	b = append(b, `,"message_id":`...)
	b = appendJSONString(b, e.MessageID)
	b = append(b, `,"person_id":`...)
	b = appendJSONString(b, e.PersonID)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, e.Type)
	b = appendOmitEmpty(b, `,"event":`, e.Event)
	b = appendOmitEmpty(b, `,"name":`, e.Name)
	b = appendOmitEmpty(b, `,"user_id":`, e.UserID)
	b = appendOmitEmpty(b, `,"anonymous_id":`, e.AnonymousID)
	b = appendOmitEmpty(b, `,"group_id":`, e.GroupID)
	b = appendOmitEmpty(b, `,"previous_id":`, e.PreviousID)
	b = append(b, `,"timestamp":`...)
	if b, err = appendJSONTime(b, e.Timestamp); err != nil {
		return nil, err
	}
	if !e.OriginalTimestamp.IsZero() {
		b = append(b, `,"original_timestamp":`...)
		if b, err = appendJSONTime(b, e.OriginalTimestamp); err != nil {
			return nil, err
		}
	}
	if !e.SentAt.IsZero() {
		b = append(b, `,"sent_at":`...)
		if b, err = appendJSONTime(b, e.SentAt); err != nil {
			return nil, err
		}
	}
	b = append(b, `,"received_at":`...)
	if b, err = appendJSONTime(b, e.ReceivedAt); err != nil {
		return nil, err
	}
	for _, f := range [...]struct {
		key string
		v   json.RawMessage
	}{{`,"properties":`, e.Properties}, {`,"traits":`, e.Traits}, {`,"context":`, e.Context}} {
		if len(f.v) == 0 {
			continue
		}
		b = append(b, f.key...)
		if b, err = appendRawJSON(b, f.v); err != nil {
			return nil, err
		}
	}
	b = appendOmitEmpty(b, `,"ip":`, e.IP)
	return append(b, '}'), nil
}

func appendOmitEmpty(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendJSONString(append(b, key...), s)
}

// appendJSONTime is time.Time's JSON (what goccy writes too): RFC 3339
// with nanoseconds, an error for years outside 0–9999.
func appendJSONTime(b []byte, t time.Time) ([]byte, error) {
	b = append(b, '"')
	b, err := t.AppendText(b)
	if err != nil {
		return nil, err
	}
	return append(b, '"'), nil
}

// appendJSONString quotes s. Strings that need no escaping (the ids, names
// and addresses of nearly every event) are copied; the others are goccy's.
func appendJSONString(b []byte, s string) []byte {
	if plainJSONString(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	// Marshalling a string cannot fail.
	q, _ := gojson.Marshal(s)
	return append(b, q...)
}

// Byte classes of JSON string content, by byte value: what goccy copies
// as it is (plain), the closing quote, what it may rewrite (control and
// HTML characters, backslash escapes, 0xE2, the lead byte of U+2028 and
// U+2029) and the bytes of other multi-byte characters, plain once the
// whole value is known to be valid UTF-8. A constant string, so a lookup
// is one load.
const (
	bytePlain = iota
	byteQuote
	byteRewritten
	byteHigh
)

const byteClass = "" +
	"\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02" + // 00–0f
	"\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02" + // 10–1f
	"\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 20–2f
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x02\x00" + // 30–3f
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 40–4f
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00" + // 50–5f
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 60–6f
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + // 70–7f
	"\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03" + // 80–8f
	"\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03" + // 90–9f
	"\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03" + // a0–af
	"\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03" + // b0–bf
	"\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03" + // c0–cf
	"\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03" + // d0–df
	"\x03\x03\x02\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03" + // e0–ef
	"\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03" // f0–ff

// plainJSONString reports whether goccy writes s between quotes as it is:
// no quote, backslash, control character or HTML character, and valid
// UTF-8 without U+2028/U+2029 (whose lead byte, 0xE2, is refused whole).
func plainJSONString(s string) bool {
	high := false
	for i := 0; i < len(s); i++ {
		switch byteClass[s[i]] {
		case bytePlain:
		case byteHigh:
			high = true
		default:
			return false
		}
	}
	return !high || utf8.ValidString(s)
}

// appendRawJSON appends a stored JSON value. Compact JSON without escapes,
// HTML characters or U+2028/U+2029 is what goccy copies through, so it is
// copied; anything else (whitespace, escapes, invalid JSON) goes through
// goccy, which compacts, escapes or fails exactly as before.
func appendRawJSON(b []byte, raw json.RawMessage) ([]byte, error) {
	if plainCompactJSON(raw) {
		return append(b, raw...), nil
	}
	q, err := gojson.Marshal(raw)
	if err != nil {
		return nil, err
	}
	return append(b, q...), nil
}

// maxPlainDepth bounds the nesting plainCompactJSON follows; deeper values
// are left to goccy.
const maxPlainDepth = 64

// plainCompactJSON reports whether raw is one valid JSON value with no
// byte goccy would change: no whitespace between tokens, no backslash, no
// control or HTML character, valid UTF-8 without a 0xE2 byte.
func plainCompactJSON(raw []byte) bool {
	var stack [maxPlainDepth]byte // closing bracket of each open container
	depth, i, n := 0, 0, len(raw)
	high := false
	for {
		// A value starts at i.
		if i >= n {
			return false
		}
		switch c := raw[i]; {
		case c == '"':
			j, ok := plainStringEnd(raw, i+1, &high)
			if !ok {
				return false
			}
			i = j
		case c == '{' || c == '[':
			if depth == maxPlainDepth {
				return false
			}
			closing := byte('}')
			if c == '[' {
				closing = ']'
			}
			i++
			if i < n && raw[i] == closing {
				i++
				break
			}
			stack[depth] = closing
			depth++
			if closing == '}' {
				j, ok := plainKey(raw, i, &high)
				if !ok {
					return false
				}
				i = j
			}
			continue
		case c == 't':
			if !hasAt(raw, i, "true") {
				return false
			}
			i += 4
		case c == 'f':
			if !hasAt(raw, i, "false") {
				return false
			}
			i += 5
		case c == 'n':
			if !hasAt(raw, i, "null") {
				return false
			}
			i += 4
		case c == '-' || (c >= '0' && c <= '9'):
			j, ok := numberEnd(raw, i)
			if !ok {
				return false
			}
			i = j
		default:
			return false
		}
		// After a value: the end, a comma or a closing bracket.
		for {
			if depth == 0 {
				return i == n && (!high || utf8.Valid(raw))
			}
			if i >= n {
				return false
			}
			if raw[i] == stack[depth-1] {
				depth--
				i++
				continue
			}
			if raw[i] != ',' {
				return false
			}
			i++
			if stack[depth-1] == '}' {
				j, ok := plainKey(raw, i, &high)
				if !ok {
					return false
				}
				i = j
			}
			break
		}
	}
}

// plainKey reads `"key":` at i and returns the index after the colon.
func plainKey(raw []byte, i int, high *bool) (int, bool) {
	if i >= len(raw) || raw[i] != '"' {
		return 0, false
	}
	j, ok := plainStringEnd(raw, i+1, high)
	if !ok || j >= len(raw) || raw[j] != ':' {
		return 0, false
	}
	return j + 1, true
}

// plainStringEnd returns the index after the closing quote of the string
// whose content starts at i, refusing the bytes goccy would rewrite.
func plainStringEnd(raw []byte, i int, high *bool) (int, bool) {
	for i < len(raw) {
		switch byteClass[raw[i]] {
		case bytePlain:
			i++
		case byteQuote:
			return i + 1, true
		case byteHigh:
			*high = true
			i++
		default:
			return 0, false
		}
	}
	return 0, false
}

func hasAt(raw []byte, i int, lit string) bool {
	return len(raw)-i >= len(lit) && string(raw[i:i+len(lit)]) == lit
}

// numberEnd returns the index after the JSON number starting at i.
func numberEnd(raw []byte, i int) (int, bool) {
	n := len(raw)
	if raw[i] == '-' {
		i++
	}
	digits := func() bool {
		start := i
		for i < n && raw[i] >= '0' && raw[i] <= '9' {
			i++
		}
		return i > start
	}
	switch {
	case i < n && raw[i] == '0':
		i++
	case i < n && raw[i] >= '1' && raw[i] <= '9':
		digits()
	default:
		return 0, false
	}
	if i < n && raw[i] == '.' {
		i++
		if !digits() {
			return 0, false
		}
	}
	if i < n && (raw[i] == 'e' || raw[i] == 'E') {
		i++
		if i < n && (raw[i] == '+' || raw[i] == '-') {
			i++
		}
		if !digits() {
			return 0, false
		}
	}
	return i, true
}
