// Package identity owns people: their traits, the identifiers that point at
// them (anonymous ids, user ids, emails, phones, external ids), merges
// (logged, reversible), conflicts that need a human, suppression and
// deletion.
//
// The resolution rules live in Resolver, once; engines only store rows.
package identity

import (
	"context"
	"encoding/json"
	"time"
)

// Identifier types Onramp knows by name. External ids from
// context.externalIds keep the type the sender gave them.
const (
	AnonymousID = "anonymous_id"
	UserID      = "user_id"
	Email       = "email"
	Phone       = "phone"
)

// Key names one identifier value, e.g. {email, ada@example.com}.
type Key struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

func (k Key) String() string { return k.Type + ":" + k.Value }

// Person is one human. A person that was merged into another keeps its row
// (so the merge can be undone) with MergedInto set; RootID is the person it
// currently resolves to (itself when it is not merged).
type Person struct {
	ID string `json:"id"`
	// Traits is a JSON object. A change replaces the slice, never its
	// bytes: caches share them between copies of a person.
	Traits     json.RawMessage `json:"traits"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
	LastSeenAt time.Time       `json:"last_seen_at"`
	MergedInto string          `json:"merged_into,omitempty"`
	RootID     string          `json:"-"`
	// UserID is the one user id of this person's tree, if any: a person
	// carries at most one, which is what keeps two known people apart.
	UserID string `json:"user_id,omitempty"`
}

// Identifier ties a Key to the person that first carried it. Identifiers
// never move between persons: merges change the persons' roots instead, which
// is what makes a merge reversible.
type Identifier struct {
	Key
	PersonID    string    `json:"person_id"`
	Verified    bool      `json:"verified"`
	FirstSeenAt time.Time `json:"first_seen_at"`
}

// Merge records that From was folded into Into.
type Merge struct {
	ID     string `json:"id"`
	FromID string `json:"from_person_id"`
	IntoID string `json:"into_person_id"`
	// Reason says why: "identifiers" (an event carried ids of both), or
	// "manual" (staff), "alias".
	Reason    string `json:"reason"`
	MessageID string `json:"message_id,omitempty"`
	Actor     string `json:"actor,omitempty"`
	// TraitsAdded lists the trait keys copied from From into Into, so an
	// unmerge can take exactly those back.
	TraitsAdded []string   `json:"traits_added,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UndoneAt    *time.Time `json:"undone_at,omitempty"`
	UndoneBy    string     `json:"undone_by,omitempty"`
}

// Conflict records identifiers that would have joined two identified people.
// Onramp never merges two persons with different user ids on its own.
type Conflict struct {
	ID        string    `json:"id"`
	PersonIDs []string  `json:"person_ids"`
	Keys      []Key     `json:"identifiers"`
	Reason    string    `json:"reason"`
	MessageID string    `json:"message_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// PersonQuery filters and orders a list of root persons. Zero values mean
// "no filter"; the zero Sort is SortLastSeen.
type PersonQuery struct {
	// Search matches an identifier value exactly (any type, the person id
	// included), a prefix of an email, or a prefix of the name
	// (case-insensitive; see SearchName).
	Search string
	// TraitKey/TraitValue match persons whose trait equals the value (as text).
	TraitKey   string
	TraitValue string
	SeenAfter  time.Time
	SeenBefore time.Time
	// PropertyID keeps persons with at least one event from that property
	// (their merged persons' events count).
	PropertyID string
	HasAccount AccountFilter
	Sort       PersonSort
	// Cursor is the opaque next of a previous page; Service.Search turns it
	// into After, which is what engines read.
	Cursor string
	// After is the position of the last person of the previous page in
	// Sort's order; nil starts at the top.
	After *PersonPosition
	Limit int
}

// Store is what the identity rules need from an engine. All methods run in
// the caller's transaction when the Store is a transaction.
type Store interface {
	// FindIdentifiers returns the stored identifiers among keys.
	FindIdentifiers(ctx context.Context, keys []Key) ([]*Identifier, error)
	// PersonsByID returns the persons found among ids, merged or not.
	PersonsByID(ctx context.Context, ids []string) ([]*Person, error)
	CreatePersons(ctx context.Context, ps []*Person) error
	// UpdatePersons writes traits, timestamps, MergedInto and RootID.
	UpdatePersons(ctx context.Context, ps []*Person) error
	// TouchPersons writes only UpdatedAt and LastSeenAt: most person writes
	// at ingest are a newer "last seen", and leaving the other columns out
	// spares their indexes and triggers.
	TouchPersons(ctx context.Context, ps []*Person) error
	AddIdentifiers(ctx context.Context, ids []*Identifier) error
	// SetVerified marks the stored identifiers among keys as proven by their
	// owner (an email code redeemed, a sign-in). Unknown keys are ignored.
	SetVerified(ctx context.Context, keys []Key) error
	// IdentifiersOf returns the identifiers owned by the given persons.
	IdentifiersOf(ctx context.Context, personIDs []string) ([]*Identifier, error)
	// PersonsWithRoot returns the ids of persons whose root is rootID
	// (rootID included).
	PersonsWithRoot(ctx context.Context, rootID string) ([]string, error)
	// TreeOfKey returns the root of the person owning the identifier k
	// and the ids of the persons with that root, ordered by id (in one
	// read: FindIdentifiers, PersonsByID and PersonsWithRoot joined).
	// An unknown identifier gives "" and no ids.
	TreeOfKey(ctx context.Context, k Key) (rootID string, members []string, err error)
	// SetRoot points every person in ids at root.
	SetRoot(ctx context.Context, ids []string, root string) error
	// DeletePersons removes persons with their identifiers, events, merges
	// and conflicts.
	DeletePersons(ctx context.Context, ids []string) error
	// SearchPersons lists root persons in q.Sort's order, ties broken by
	// id in the same direction, starting after q.After. An engine may join
	// the auth tables for HasAccount (an account is a person of the tree
	// with a row in accounts).
	SearchPersons(ctx context.Context, q PersonQuery) ([]*FoundPerson, error)
	CountPersons(ctx context.Context) (int64, error)
	// PersonsPerDay counts root persons by the UTC day of created_at, from
	// since on; days without any are absent.
	PersonsPerDay(ctx context.Context, since time.Time) ([]DayCount, error)

	InsertMerge(ctx context.Context, m *Merge) error
	MergeByID(ctx context.Context, id string) (*Merge, error)
	// UpdateMerge writes UndoneAt/UndoneBy.
	UpdateMerge(ctx context.Context, m *Merge) error
	// MergesOf lists merges where any of ids is From or Into, newest first.
	MergesOf(ctx context.Context, ids []string) ([]*Merge, error)

	InsertConflicts(ctx context.Context, cs []*Conflict) error
	ListConflicts(ctx context.Context, limit int) ([]*Conflict, error)

	AddSuppressions(ctx context.Context, keys []Key, at time.Time) error
	RemoveSuppressions(ctx context.Context, keys []Key) error
	// Suppressed returns which of keys are suppressed.
	Suppressed(ctx context.Context, keys []Key) ([]Key, error)
}
