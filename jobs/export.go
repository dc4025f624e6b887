package jobs

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/identity"
)

// csvWriter writes CSV for spreadsheets. A cell that starts with = + - @
// (or a tab or carriage return) gets a leading apostrophe: spreadsheet
// programs would run it as a formula, and traits and event properties are
// written by anyone holding a public write key.
type csvWriter struct {
	w *csv.Writer
}

func newCSVWriter(w io.Writer) *csvWriter { return &csvWriter{w: csv.NewWriter(w)} }

func (c *csvWriter) write(rec []string) {
	for i, v := range rec {
		rec[i] = inertCell(v)
	}
	// Errors stay in the csv.Writer until flush reports them.
	_ = c.w.Write(rec)
}

func (c *csvWriter) flush() error {
	c.w.Flush()
	return c.w.Error()
}

func inertCell(v string) string {
	if v == "" {
		return v
	}
	switch v[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + v
	}
	return v
}

// personLine is a person in an NDJSON export.
type personLine struct {
	ID          string          `json:"id"`
	UserID      string          `json:"user_id,omitempty"`
	Traits      json.RawMessage `json:"traits"`
	Identifiers []identLine     `json:"identifiers"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
	LastSeenAt  time.Time       `json:"last_seen_at"`
}

type identLine struct {
	Type     string `json:"type"`
	Value    string `json:"value"`
	Verified bool   `json:"verified,omitempty"`
}

// Columns of CSV exports. Nested values (traits, identifiers, properties,
// context) are JSON in one cell: lossless, and still one row per record.
var (
	peopleCSVHeader = []string{"id", "user_id", "email", "phone", "created_at", "updated_at", "last_seen_at", "identifiers", "traits"}
	eventsCSVHeader = []string{"seq", "message_id", "property_id", "person_id", "type", "event", "name", "user_id", "anonymous_id",
		"group_id", "previous_id", "timestamp", "received_at", "ip", "properties", "traits", "context"}
)

func timeCell(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func jsonCell(b json.RawMessage) string {
	if len(b) == 0 {
		return ""
	}
	return string(b)
}

// encodePeople writes a batch of people in format; header asks for the
// CSV header line first.
func encodePeople(format string, recs []*PersonRecord, header bool) ([]byte, error) {
	var buf bytes.Buffer
	if format == FormatNDJSON {
		enc := json.NewEncoder(&buf)
		for _, r := range recs {
			if err := enc.Encode(personJSON(r)); err != nil {
				return nil, fmt.Errorf("jobs: encode person: %w", err)
			}
		}
		return buf.Bytes(), nil
	}
	cw := newCSVWriter(&buf)
	if header {
		cw.write(append([]string(nil), peopleCSVHeader...))
	}
	for _, r := range recs {
		pl := personJSON(r)
		ids, err := json.Marshal(pl.Identifiers)
		if err != nil {
			return nil, fmt.Errorf("jobs: encode person: %w", err)
		}
		cw.write([]string{pl.ID, pl.UserID, firstOf(r.Identifiers, identity.Email), firstOf(r.Identifiers, identity.Phone),
			timeCell(pl.CreatedAt), timeCell(pl.UpdatedAt), timeCell(pl.LastSeenAt), string(ids), jsonCell(pl.Traits)})
	}
	if err := cw.flush(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func personJSON(r *PersonRecord) personLine {
	p := r.Person
	traits := p.Traits
	if len(traits) == 0 {
		traits = json.RawMessage("{}")
	}
	pl := personLine{ID: p.ID, UserID: p.UserID, Traits: traits, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt, LastSeenAt: p.LastSeenAt,
		Identifiers: make([]identLine, 0, len(r.Identifiers))}
	for _, id := range r.Identifiers {
		pl.Identifiers = append(pl.Identifiers, identLine{Type: id.Type, Value: id.Value, Verified: id.Verified})
	}
	return pl
}

func firstOf(ids []*identity.Identifier, typ string) string {
	for _, id := range ids {
		if id.Type == typ {
			return id.Value
		}
	}
	return ""
}

// encodeEvents writes a batch of events in format.
func encodeEvents(format string, evs []*events.Event, header bool) ([]byte, error) {
	var buf bytes.Buffer
	if format == FormatNDJSON {
		enc := json.NewEncoder(&buf)
		for _, e := range evs {
			if err := enc.Encode(e); err != nil {
				return nil, fmt.Errorf("jobs: encode event: %w", err)
			}
		}
		return buf.Bytes(), nil
	}
	cw := newCSVWriter(&buf)
	if header {
		cw.write(append([]string(nil), eventsCSVHeader...))
	}
	for _, e := range evs {
		cw.write([]string{strconv.FormatInt(e.Seq, 10), e.MessageID, e.PropertyID, e.PersonID, e.Type, e.Event, e.Name, e.UserID, e.AnonymousID,
			e.GroupID, e.PreviousID, timeCell(e.Timestamp), timeCell(e.ReceivedAt), e.IP, jsonCell(e.Properties), jsonCell(e.Traits), jsonCell(e.Context)})
	}
	if err := cw.flush(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
