package identity

import (
	"context"
	"sync"
)

// IdentifierCache remembers which person each identifier belongs to, so
// ingest skips most identifier lookups. Identifiers never move between
// persons, so an entry stays true until its person is deleted; the
// Resolver checks that the person still exists and drops entries whose
// person is gone, which keeps the cache safe with other processes or nodes
// deleting people.
//
// It is two generations of maps: when the young one fills, it becomes the
// old one and the previous old one is dropped, an LRU good enough for
// "recently active people".
type IdentifierCache struct {
	mu      sync.Mutex
	young   map[Key]string
	old     map[Key]string
	max     int
	pending []*Identifier
}

// NewIdentifierCache returns a cache holding about max identifiers.
func NewIdentifierCache(max int) *IdentifierCache {
	return &IdentifierCache{young: map[Key]string{}, old: map[Key]string{}, max: max}
}

func (c *IdentifierCache) get(k Key) (string, bool) {
	if c == nil {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if id, ok := c.young[k]; ok {
		return id, true
	}
	if id, ok := c.old[k]; ok {
		c.putLocked(k, id)
		return id, true
	}
	return "", false
}

func (c *IdentifierCache) putLocked(k Key, personID string) {
	if len(c.young) >= c.max/2 {
		c.old, c.young = c.young, make(map[Key]string, c.max/2)
	}
	c.young[k] = personID
}

func (c *IdentifierCache) forget(k Key) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.young, k)
	delete(c.old, k)
	c.mu.Unlock()
}

// stage remembers identifiers seen in a transaction that has not
// committed yet.
func (c *IdentifierCache) stage(ids ...*Identifier) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.pending = append(c.pending, ids...)
	c.mu.Unlock()
}

// Commit keeps what was staged: call it after the transaction committed.
func (c *IdentifierCache) Commit() {
	if c == nil {
		return
	}
	c.mu.Lock()
	for _, id := range c.pending {
		c.putLocked(id.Key, id.PersonID)
	}
	c.pending = c.pending[:0]
	c.mu.Unlock()
}

// Discard drops what was staged: call it after a rollback.
func (c *IdentifierCache) Discard() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.pending = c.pending[:0]
	c.mu.Unlock()
}

// Clear empties the cache (after a delete or unmerge in this process, to be
// quick about it; correctness does not depend on it).
func (c *IdentifierCache) Clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.young, c.old = map[Key]string{}, map[Key]string{}
	c.mu.Unlock()
}

// PersonCache keeps copies of recently resolved persons so ingest need not
// read them for every event. It is only safe where the store can tell that
// someone else changed the data (see ChangeDetector); the Resolver does
// not use it otherwise. Any merge clears it, because a merge re-roots
// persons the cache may hold.
type PersonCache struct {
	mu      sync.Mutex
	young   map[string]*Person
	old     map[string]*Person
	max     int
	pending []*Person
	dirty   bool // a merge happened in the staged transaction
}

// NewPersonCache returns a cache holding about max persons.
func NewPersonCache(max int) *PersonCache {
	return &PersonCache{young: map[string]*Person{}, old: map[string]*Person{}, max: max}
}

// ChangeDetector is what a store offers when it can tell whether another
// connection or process committed changes since its last look.
type ChangeDetector interface {
	ChangedElsewhere(ctx context.Context) (bool, error)
}

// clonePerson copies p for a resolution to change. The traits' bytes are
// shared: every change of a person's traits replaces the slice (see
// Person.Traits), so the cached person keeps its own.
func clonePerson(p *Person) *Person {
	c := *p
	return &c
}

func (c *PersonCache) get(id string) *Person {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.young[id]
	if !ok {
		if p, ok = c.old[id]; ok {
			c.putLocked(p)
		}
	}
	if !ok {
		return nil
	}
	return clonePerson(p)
}

func (c *PersonCache) putLocked(p *Person) {
	if len(c.young) >= c.max/2 {
		c.old, c.young = c.young, make(map[string]*Person, c.max/2)
	}
	c.young[p.ID] = p
}

// stage remembers the persons of a finished resolution, which nothing
// changes any more: they are kept as they are, and get hands out copies.
func (c *PersonCache) stage(ps map[string]*Person, merged bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dirty = c.dirty || merged
	for _, p := range ps {
		c.pending = append(c.pending, p)
	}
}

// Commit keeps what was staged (after the transaction committed).
func (c *PersonCache) Commit() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dirty {
		c.young, c.old = map[string]*Person{}, map[string]*Person{}
	} else {
		for _, p := range c.pending {
			c.putLocked(p)
		}
	}
	c.pending, c.dirty = c.pending[:0], false
}

// Discard drops what was staged (after a rollback).
func (c *PersonCache) Discard() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.pending, c.dirty = c.pending[:0], false
	c.mu.Unlock()
}

// Clear empties the cache.
func (c *PersonCache) Clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.young, c.old = map[string]*Person{}, map[string]*Person{}
	c.mu.Unlock()
}
