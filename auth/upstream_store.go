package auth

import (
	"context"
	"time"
)

// This file holds the record of an account's link to an upstream identity
// provider (migration 0005, docs/design/auth.md §1) and the UpstreamStore
// each engine implements for it, beside AccountStore on the same Queries
// type so that a link is written in the transaction that proves it.

// UpstreamLink says that an upstream provider's user (Provider, Subject:
// the provider's stable user id, never its email) signs in as PersonID.
// Email is the address the provider gave when the link was made, kept for
// the account page; it is not what the link matches on.
type UpstreamLink struct {
	Provider   string     `json:"provider"`
	Subject    string     `json:"subject"`
	PersonID   string     `json:"person_id"`
	Email      string     `json:"email,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// UpstreamStore is what the upstream sign-in rules need from an engine.
// Lookups answer onramp.ENOTFOUND when nothing matches; lists are never
// nil. EraseAuth removes an erased person's links too.
type UpstreamStore interface {
	// CreateUpstreamLink answers ECONFLICT when (provider, subject) is
	// linked already, to whichever person.
	CreateUpstreamLink(ctx context.Context, l *UpstreamLink) error
	UpstreamLink(ctx context.Context, provider, subject string) (*UpstreamLink, error)
	// UpstreamLinksOf lists the links of any of these persons (the members
	// of one merge tree), oldest first.
	UpstreamLinksOf(ctx context.Context, personIDs []string) ([]*UpstreamLink, error)
	TouchUpstreamLink(ctx context.Context, provider, subject string, at time.Time) error
	DeleteUpstreamLink(ctx context.Context, provider, subject string) error
}
