package identity

import "sync"

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
