package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/onramp-dev/onramp/events"
)

// packedEventCols reads an event in four columns instead of eighteen: its
// NOT NULL columns as one JSON array, then the three JSON documents. The
// driver takes SQLite's connection mutex two or three times for every
// column of every row (type, value, length) and copies each text into a
// string of its own; on a timeline read that was about a quarter of the
// server's CPU, more than SQLite spends building the array.
const packedEventCols = `json_array(seq, ts, original_ts, sent_at, received_at, property_id, message_id, person_id, type, name, user_id, anonymous_id, group_id, previous_id, ip), properties, traits, context`

// scanPacked reads the rows of a packedEventCols query. ok is false when a
// row is not what this code reads back exactly (a value SQLite escaped in a
// way unpackEvent does not undo, a column of an unexpected type); the
// caller then reads the events the plain way, which keeps the behaviour
// for those rows what it was.
func scanPacked(rows *sql.Rows) (evs []*events.Event, ok bool, err error) {
	defer rows.Close()
	// Events are allocated sixteen at a time, not one by one.
	var block []events.Event
	for rows.Next() {
		if len(block) == 0 {
			block = make([]events.Event, 16)
		}
		e := &block[0]
		block = block[1:]
		evs = append(evs, e)
		var packed string
		if err := rows.Scan(&packed, rawColumn{&e.Properties}, rawColumn{&e.Traits}, rawColumn{&e.Context}); err != nil {
			return nil, false, fmt.Errorf("sqlite: scan event: %w", err)
		}
		if !unpackEvent(e, packed) {
			return nil, false, nil
		}
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	return evs, true, nil
}

// rawColumn scans a nullable TEXT column of JSON into a RawMessage (nil
// for NULL) with one copy, not the two of a NullString.
type rawColumn struct{ p *json.RawMessage }

func (c rawColumn) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.p = nil
	case string:
		*c.p = json.RawMessage(v)
	case []byte:
		*c.p = append(json.RawMessage(nil), v...)
	default:
		return fmt.Errorf("JSON column holds %T", src)
	}
	return nil
}

// unpackEvent fills e from the JSON array of packedEventCols. Its strings
// are substrings of packed: one allocation for all of them.
func unpackEvent(e *events.Event, packed string) bool {
	s, ok := strings.CutPrefix(packed, "[")
	if !ok {
		return false
	}
	var ints [5]int64 // seq, ts, original_ts, sent_at, received_at
	for i := range ints {
		j := strings.IndexByte(s, ',')
		if j < 0 {
			return false
		}
		v, err := strconv.ParseInt(s[:j], 10, 64)
		if err != nil {
			return false
		}
		ints[i], s = v, s[j+1:]
	}
	var name string
	for i, p := range [...]*string{&e.PropertyID, &e.MessageID, &e.PersonID, &e.Type, &name, &e.UserID, &e.AnonymousID, &e.GroupID, &e.PreviousID, &e.IP} {
		if i > 0 {
			if s, ok = strings.CutPrefix(s, ","); !ok {
				return false
			}
		}
		if *p, s, ok = cutJSONString(s); !ok {
			return false
		}
	}
	if s != "]" {
		return false
	}
	e.Seq = ints[0]
	e.Timestamp, e.OriginalTimestamp, e.SentAt, e.ReceivedAt = fromMicros(ints[1]), fromMicros(ints[2]), fromMicros(ints[3]), fromMicros(ints[4])
	e.SetNameColumn(name) // after Type, which it looks at
	return true
}

// cutJSONString reads the JSON string SQLite's json_array wrote at the
// start of s and returns its value and the rest of s.
func cutJSONString(s string) (v, rest string, ok bool) {
	if len(s) == 0 || s[0] != '"' {
		return "", "", false
	}
	// SQLite escapes every quote inside a string, so the first quote
	// ends it unless a backslash comes before it.
	end := strings.IndexByte(s[1:], '"') + 1
	if end == 0 {
		return "", "", false
	}
	if strings.IndexByte(s[1:end], '\\') < 0 {
		return s[1:end], s[end+1:], true
	}
	return unescapeJSONString(s)
}

// unescapeJSONString undoes the escapes SQLite's json_array writes for
// TEXT: \" \\ \b \f \n \r \t and \u00XX for the other control characters.
// Anything else is refused rather than guessed at.
func unescapeJSONString(s string) (v, rest string, ok bool) {
	var b []byte
	for i := 1; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			return string(b), s[i+1:], true
		}
		if c != '\\' {
			b = append(b, c)
			continue
		}
		if i+1 >= len(s) {
			return "", "", false
		}
		i++
		switch s[i] {
		case '"', '\\':
			b = append(b, s[i])
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			if i+4 >= len(s) || s[i+1] != '0' || s[i+2] != '0' {
				return "", "", false
			}
			x, err := strconv.ParseUint(s[i+3:i+5], 16, 8)
			if err != nil || x >= 0x20 {
				return "", "", false
			}
			b = append(b, byte(x))
			i += 4
		default:
			return "", "", false
		}
	}
	return "", "", false
}

// timelineRead runs a timeline query packed, and plainly when the packed
// answer cannot be read back exactly: a row unpackEvent refuses, or an
// error of the packed query itself (json_array refuses a BLOB, which the
// plain read takes for a string). The plain read's answer, error or not,
// is then the answer, as it was before the packed read.
func (q *Queries) timelineRead(ctx context.Context, query func(cols string) string, args []any) ([]*events.Event, error) {
	if rows, err := q.queryHot(ctx, query(packedEventCols), args...); err == nil {
		if evs, ok, err := scanPacked(rows); err == nil && ok {
			return evs, nil
		}
	}
	rows, err := q.queryHot(ctx, query(eventCols), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: timeline: %w", err)
	}
	return scanEvents(rows)
}
