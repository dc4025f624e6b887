// Package seen remembers, in bounded memory, rows a store has already
// written, so that a hot path can skip writing them again.
//
// Ingest records which persons have events from which property (the
// console's property filter). Nearly every pair of an ingest group exists
// already, yet each still cost the store a probe of the pairs' index inside
// the group's transaction. A Set answers those from memory.
//
// A Set may forget (it keeps two generations of at most limit keys each) but
// never invents: a key is in it only after the caller added it, which the
// stores do only once the transaction that wrote the row has committed. Keys
// are 64-bit hashes: two different pairs share one with a probability of
// about n/2^64 for n remembered keys (10^-14 at the default size), and the
// cost of that would be one pair not written.
package seen

import (
	"sync"

	"github.com/cespare/xxhash/v2"
)

// Set is safe for concurrent use.
type Set struct {
	mu        sync.Mutex
	cur, prev map[uint64]struct{}
	limit     int
}

// New returns a Set that remembers at least the limit most recently added
// keys and at most twice as many.
func New(limit int) *Set {
	return &Set{cur: make(map[uint64]struct{}), limit: max(limit, 1)}
}

// Key hashes the parts of a row's identity into a key. The parts are
// separated by a byte no text column holds, so ("ab", "c") and ("a", "bc")
// differ.
func Key(parts ...string) uint64 {
	var d xxhash.Digest
	d.Reset()
	for i, p := range parts {
		if i > 0 {
			_, _ = d.Write([]byte{0})
		}
		_, _ = d.WriteString(p)
	}
	return d.Sum64()
}

// Missing returns the indexes of the keys the Set does not hold, in order.
func (s *Set) Missing(keys []uint64) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for i, k := range keys {
		if _, ok := s.cur[k]; ok {
			continue
		}
		if _, ok := s.prev[k]; ok {
			continue
		}
		out = append(out, i)
	}
	return out
}

// Add remembers keys. Call it only once the rows they stand for are
// committed.
func (s *Set) Add(keys []uint64) {
	if len(keys) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if len(s.cur) >= s.limit {
			s.prev, s.cur = s.cur, make(map[uint64]struct{}, s.limit/4)
		}
		s.cur[k] = struct{}{}
	}
}

// Clear forgets everything: call it when rows may have been deleted.
func (s *Set) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur, s.prev = make(map[uint64]struct{}), nil
}

// Len is how many keys the Set holds (for tests).
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.cur) + len(s.prev)
}
