// Package events owns the append-only timeline: Segment-compatible ingest
// (validation, clock-skew correction, dedupe by messageId, identity
// resolution through the identity rules), the rejected-events log, timeline
// queries, and publishing every committed event on the bus.
package events

import (
	"context"
	"encoding/json"
	"time"

	"github.com/onramp-dev/onramp/identity"
)

// Event types of the Segment spec.
const (
	TypeTrack    = "track"
	TypeIdentify = "identify"
	TypePage     = "page"
	TypeScreen   = "screen"
	TypeGroup    = "group"
	TypeAlias    = "alias"
)

// Event is one stored event.
type Event struct {
	// Seq is the event's position in the store's log, assigned at insert.
	Seq        int64  `json:"seq"`
	PropertyID string `json:"property_id"`
	MessageID  string `json:"message_id"`
	PersonID   string `json:"person_id"`
	Type       string `json:"type"`
	// Event is the name of a track call; Name the name of a page or screen.
	// The store keeps both in one column.
	Event             string          `json:"event,omitempty"`
	Name              string          `json:"name,omitempty"`
	UserID            string          `json:"user_id,omitempty"`
	AnonymousID       string          `json:"anonymous_id,omitempty"`
	GroupID           string          `json:"group_id,omitempty"`
	PreviousID        string          `json:"previous_id,omitempty"`
	Timestamp         time.Time       `json:"timestamp"`
	OriginalTimestamp time.Time       `json:"original_timestamp,omitzero"`
	SentAt            time.Time       `json:"sent_at,omitzero"`
	ReceivedAt        time.Time       `json:"received_at"`
	Properties        json.RawMessage `json:"properties,omitempty"`
	Traits            json.RawMessage `json:"traits,omitempty"`
	Context           json.RawMessage `json:"context,omitempty"`
	// IP is the sender's address as Onramp saw it (context.ip wins when set).
	IP string `json:"ip,omitempty"`
}

// NameColumn is what the store keeps in its one name column.
func (e *Event) NameColumn() string {
	if e.Type == TypeTrack {
		return e.Event
	}
	return e.Name
}

// SetNameColumn fills Event or Name from the stored column.
func (e *Event) SetNameColumn(v string) {
	if e.Type == TypeTrack {
		e.Event = v
	} else {
		e.Name = v
	}
}

// Rejection is one refused event (or request) in the rejected-events log,
// Onramp's counterpart of Segment's debugger.
type Rejection struct {
	ID         int64     `json:"id"`
	PropertyID string    `json:"property_id"`
	ReceivedAt time.Time `json:"received_at"`
	// Index is the event's position in its batch; -1 when the whole request
	// was refused.
	Index     int    `json:"index"`
	MessageID string `json:"message_id,omitempty"`
	Type      string `json:"type,omitempty"`
	Code      string `json:"code"`
	Reason    string `json:"reason"`
	// Payload is the refused JSON, cut to MaxRejectedPayload bytes; empty
	// for suppressed senders, whose data Onramp must not keep.
	Payload []byte `json:"payload,omitempty"`
}

// RejectionView is a rejection as the API and the live feed show it: a
// payload that is JSON inline, anything else (cut, malformed) as text, so
// the console never has to decode base64.
type RejectionView struct {
	*Rejection
	Payload json.RawMessage `json:"payload,omitempty"`
	// PayloadText holds a payload that is not valid JSON.
	PayloadText string `json:"payload_text,omitempty"`
}

// View returns r as the API shows it.
func (r *Rejection) View() RejectionView {
	v := RejectionView{Rejection: r}
	if json.Valid(r.Payload) {
		v.Payload = r.Payload
	} else if len(r.Payload) > 0 {
		v.PayloadText = string(r.Payload)
	}
	return v
}

// MaxRejectedPayload bounds what the rejected log keeps of each payload.
const MaxRejectedPayload = 4 << 10

// TimelineQuery selects events of a set of persons, newest first.
type TimelineQuery struct {
	PersonIDs  []string
	Types      []string
	Names      []string
	PropertyID string
	// From and To bound Timestamp (From inclusive, To exclusive).
	From, To time.Time
	// Before continues after the last event of a previous page.
	Before *Cursor
	Limit  int
}

// Cursor is a position in a timeline: events sort by (Timestamp, Seq).
type Cursor struct {
	Timestamp time.Time
	Seq       int64
}

// RejectionQuery selects rejections, newest first.
type RejectionQuery struct {
	PropertyID string
	BeforeID   int64
	Limit      int
}

// Store is what the event rules need from an engine. Ingest runs in one
// transaction that also resolves identities, hence identity.Store.
type Store interface {
	identity.Store
	// ExistingMessageIDs returns which of ids the property already stored.
	ExistingMessageIDs(ctx context.Context, propertyID string, ids []string) (map[string]bool, error)
	// InsertEvents stores events and sets their Seq.
	InsertEvents(ctx context.Context, evs []*Event) error
	// InsertRejections stores rejections and sets their ID, growing in
	// input order.
	InsertRejections(ctx context.Context, rs []*Rejection) error
	// DeleteRejectionsMentioning removes rejected payloads that contain
	// any of values (case-insensitively for ASCII), so that deleting a
	// person also erases what the rejected-events log kept of them.
	DeleteRejectionsMentioning(ctx context.Context, values []string) (int64, error)
	// PruneRejections keeps the newest keep rejections of each property
	// and deletes the rest.
	PruneRejections(ctx context.Context, keep int) (int64, error)
	Timeline(ctx context.Context, q TimelineQuery) ([]*Event, error)
	Rejections(ctx context.Context, q RejectionQuery) ([]*Rejection, error)
	// EventsAfter returns up to limit events with Seq > seq, in Seq order.
	EventsAfter(ctx context.Context, seq int64, limit int) ([]*Event, error)
	Cursor(ctx context.Context, name string) (int64, error)
	SetCursor(ctx context.Context, name string, seq int64) error
	CountEvents(ctx context.Context) (int64, error)
	// EventsPerHour counts events received from since on by UTC hour of
	// received_at and property; empty hours are absent.
	EventsPerHour(ctx context.Context, since time.Time) ([]HourCount, error)
	// TopEvents lists the most frequent track event names received from
	// since on, most frequent first (ties by name), at most limit.
	TopEvents(ctx context.Context, since time.Time, limit int) ([]NameCount, error)
}

// DuplicateRefuser is a Store whose InsertEvents fails, as a whole, when a
// (property id, message id) is stored already (PostgreSQL's unique index),
// with an error RefusedDuplicate recognises. With Config.SplitCommit a
// message another node stored after the group's lookup is refused so; the
// events' transaction then runs again, without the ones stored.
type DuplicateRefuser interface {
	RefusedDuplicate(err error) bool
}

// TxFunc runs fn in one transaction of the engine.
type TxFunc func(ctx context.Context, fn func(Store) error) error
