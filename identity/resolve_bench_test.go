package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/onramp-dev/onramp"
)

// memStore keeps what Resolve writes at ingest in maps, so that
// BenchmarkResolve measures the resolver's own work, not an engine's.
type memStore struct {
	Store   // the methods ingest never calls panic
	idents  map[Key]*Identifier
	persons map[string]*Person
}

func (m *memStore) ChangedElsewhere(context.Context) (bool, error) { return false, nil }

func (m *memStore) FindIdentifiers(_ context.Context, keys []Key) ([]*Identifier, error) {
	var out []*Identifier
	for _, k := range keys {
		if id := m.idents[k]; id != nil {
			c := *id
			out = append(out, &c)
		}
	}
	return out, nil
}

func (m *memStore) PersonsByID(_ context.Context, ids []string) ([]*Person, error) {
	var out []*Person
	for _, id := range ids {
		if p := m.persons[id]; p != nil {
			c := *p
			out = append(out, &c)
		}
	}
	return out, nil
}

func (m *memStore) put(ps []*Person) error {
	for _, p := range ps {
		c := *p
		m.persons[p.ID] = &c
	}
	return nil
}

func (m *memStore) CreatePersons(_ context.Context, ps []*Person) error { return m.put(ps) }
func (m *memStore) UpdatePersons(_ context.Context, ps []*Person) error { return m.put(ps) }
func (m *memStore) TouchPersons(_ context.Context, ps []*Person) error  { return m.put(ps) }

func (m *memStore) AddIdentifiers(_ context.Context, ids []*Identifier) error {
	for _, id := range ids {
		c := *id
		m.idents[id.Key] = &c
	}
	return nil
}

func (m *memStore) InsertConflicts(context.Context, []*Conflict) error { return nil }
func (m *memStore) InsertMerge(context.Context, *Merge) error          { return nil }
func (m *memStore) MergesOf(context.Context, []string) ([]*Merge, error) {
	return nil, nil
}

// BenchmarkResolve resolves groups of 3,000 observations shaped like
// `onramp bench ingest`'s events (10,000 people, four in five with a user
// id, one event in ten an identify with traits and email) against warm
// caches: the steady state of ingest, where the committer spends a third
// of its time in Resolve.
//
// "sorted" sends traits as Go encodes a map, sorted and compact, which is
// how Onramp stores them: a repeated identify is then recognised byte for
// byte. "unsorted" sends them in another key order, as analytics.js sends
// an object, so every identify is decoded and compared key by key.
func BenchmarkResolve(b *testing.B) {
	b.Run("sorted", func(b *testing.B) { benchResolve(b, false) })
	b.Run("unsorted", func(b *testing.B) { benchResolve(b, true) })
}

func benchResolve(b *testing.B, unsorted bool) {
	ctx := context.Background()
	const people, group = 10000, 3000
	st := &memStore{idents: map[Key]*Identifier{}, persons: map[string]*Person{}}
	r := Resolver{Clock: onramp.SystemClock{}, Cache: NewIdentifierCache(200_000), Persons: NewPersonCache(100_000)}
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	obsOf := func(i int) Observation {
		o := Observation{Keys: []Key{{AnonymousID, fmt.Sprintf("anon-b-%d", i)}}, At: now.Add(-time.Duration(rng.IntN(3600)) * time.Second), MessageID: fmt.Sprint(rng.Int64())}
		if i%5 != 0 {
			o.Keys = append(o.Keys, Key{UserID, fmt.Sprintf("bench-user-%d", i)})
		}
		if rng.IntN(10) == 0 {
			t := map[string]any{"name": fmt.Sprintf("Person %d", i), "company": "Example Ltd", "role": "engineer", "plan": "trial"}
			if i%5 != 0 {
				email := fmt.Sprintf("person%d@bench.example.com", i)
				t["email"] = email
				o.Keys = append(o.Keys, Key{Email, email})
			}
			o.Traits, _ = json.Marshal(t)
			if unsorted {
				o.Traits = []byte(fmt.Sprintf(`{"role":"engineer","plan":"trial","name":%q,"company":"Example Ltd"`, t["name"]))
				if e, ok := t["email"]; ok {
					o.Traits = fmt.Appendf(o.Traits, `,"email":%q`, e)
				}
				o.Traits = append(o.Traits, '}')
			}
		}
		return o
	}
	groups := make([][]Observation, 16)
	for g := range groups {
		groups[g] = make([]Observation, group)
		for j := range groups[g] {
			groups[g][j] = obsOf(rng.IntN(people))
		}
	}
	resolve := func(obs []Observation) {
		if _, err := r.Resolve(ctx, st, obs); err != nil {
			b.Fatal(err)
		}
		r.Cache.Commit()
		r.Persons.Commit()
	}
	for i := 0; i < people; i += group {
		warm := make([]Observation, 0, group)
		for j := i; j < min(i+group, people); j++ {
			warm = append(warm, obsOf(j))
		}
		resolve(warm)
	}
	for _, g := range groups {
		resolve(g)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resolve(groups[i%len(groups)])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*group), "ns/obs")
}
