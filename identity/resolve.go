package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/onramp-dev/onramp"
)

// Observation is what one incoming event says about who someone is.
type Observation struct {
	// Keys are normalised, non-blocked identifiers, any order.
	Keys []Key
	// Traits (a JSON object) are merged into the person's traits; nil for none.
	Traits json.RawMessage
	At     time.Time
	// MessageID names the event in merge and conflict records.
	MessageID string
	// Alias marks an alias call: its keys are two names of one person, and a
	// merge it causes is logged with reason "alias".
	Alias bool
	// AliasOf is an alias call's previousId. It may be an earlier user id or
	// an anonymous id; the store decides which.
	AliasOf string
}

// Resolver applies the identity rules to a group of observations inside one
// transaction. It is the only place that decides which person an event
// belongs to, when persons merge, and when they conflict.
type Resolver struct {
	Clock onramp.Clock
	// Cache, if set, answers most identifier lookups. What a Resolve call
	// learns is staged; the caller commits or discards it with the
	// transaction.
	Cache *IdentifierCache
	// Persons, if set, answers person lookups when the store is a
	// ChangeDetector (and is cleared when it reports outside changes).
	// Staged and committed like Cache.
	Persons *PersonCache
}

const lastSeenGranularity = time.Minute

// resolution is the working state of one Resolve call: what was loaded and
// what must be written.
type resolution struct {
	st      Store
	cache   *IdentifierCache
	pcache  *PersonCache // nil when the store cannot vouch for it
	now     time.Time
	idents  map[Key]*Identifier
	persons map[string]*Person
	created []*Person
	dirty   map[string]*Person
	// seen holds persons whose only change is a newer last seen.
	seen      map[string]*Person
	newIdents []*Identifier
	merges    []*Merge
	conflicts []*Conflict
	// isCreated holds the persons of created (written whole by
	// CreatePersons, so never also updated).
	isCreated map[*Person]bool
	// keyBuf and rootBuf are observe's scratch space.
	keyBuf  []Key
	rootBuf []*Person
}

// Resolve returns, for each observation, the id of the person its event
// belongs to: the owner of its highest-priority identifier. It writes new
// persons, identifiers, trait changes, merges and conflicts through st.
func (r Resolver) Resolve(ctx context.Context, st Store, obs []Observation) ([]string, error) {
	var persons *PersonCache
	if cd, ok := st.(ChangeDetector); ok && r.Persons != nil {
		changed, err := cd.ChangedElsewhere(ctx)
		if err != nil {
			return nil, fmt.Errorf("identity: change check: %w", err)
		}
		if changed {
			r.Persons.Clear()
		}
		persons = r.Persons
	}
	res := &resolution{
		st:      st,
		cache:   r.Cache,
		pcache:  persons,
		now:     r.Clock.Now(),
		idents:  map[Key]*Identifier{},
		persons: map[string]*Person{},
		dirty:   map[string]*Person{},
		seen:    map[string]*Person{},
	}
	if err := res.load(ctx, obs); err != nil {
		return nil, err
	}
	out := make([]string, len(obs))
	for i := range obs {
		id, err := res.observe(ctx, &obs[i])
		if err != nil {
			return nil, err
		}
		out[i] = id
	}
	if err := res.flush(ctx); err != nil {
		return nil, err
	}
	if res.pcache != nil {
		res.pcache.stage(res.persons, len(res.merges) > 0)
	}
	return out, nil
}

func (res *resolution) load(ctx context.Context, obs []Observation) error {
	// res.idents doubles as the set of keys already looked at: a cached
	// key goes in at once, a miss in misses. (At ingest nearly every key
	// is cached and each is met several times in a group: one map lookup
	// per meeting is what this loop costs.)
	var misses []Key
	missed := map[Key]bool{}
	var cached []Key
	var owners []string
	look := func(k Key) {
		if res.idents[k] != nil || missed[k] {
			return
		}
		if pid, ok := res.cache.get(k); ok {
			res.idents[k] = &Identifier{Key: k, PersonID: pid}
			cached = append(cached, k)
			owners = append(owners, pid)
			return
		}
		missed[k] = true
		misses = append(misses, k)
	}
	for _, o := range obs {
		if o.AliasOf != "" {
			look(Key{UserID, o.AliasOf})
			look(Key{AnonymousID, o.AliasOf})
		}
		for _, k := range o.Keys {
			look(k)
		}
	}
	if len(cached) == 0 && len(misses) == 0 {
		return nil
	}
	owners, err := res.find(ctx, misses, owners)
	if err != nil {
		return err
	}
	if err := res.loadPersons(ctx, owners); err != nil {
		return err
	}
	// A cached identifier whose person is gone (deleted, maybe by another
	// process) is looked up again.
	var stale []Key
	for _, k := range cached {
		if res.persons[res.idents[k].PersonID] == nil {
			delete(res.idents, k)
			res.cache.forget(k)
			stale = append(stale, k)
		}
	}
	if len(stale) > 0 {
		owners, err := res.find(ctx, stale, nil)
		if err != nil {
			return err
		}
		return res.loadPersons(ctx, owners)
	}
	return nil
}

// find looks keys up in the store and returns owners with the persons
// owning the ones found appended.
func (res *resolution) find(ctx context.Context, keys []Key, owners []string) ([]string, error) {
	if len(keys) == 0 {
		return owners, nil
	}
	found, err := res.st.FindIdentifiers(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("identity: find identifiers: %w", err)
	}
	for _, id := range found {
		res.idents[id.Key] = id
		owners = append(owners, id.PersonID)
	}
	res.cache.stage(found...)
	return owners, nil
}

// loadPersons loads the given persons (repeats allowed) and, in a second
// step, their roots.
func (res *resolution) loadPersons(ctx context.Context, want []string) error {
	for round := 0; round < 2 && len(want) > 0; round++ {
		var misses []string
		var asked map[string]bool
		var ps []*Person
		for _, id := range want {
			if res.persons[id] != nil {
				continue
			}
			if res.pcache != nil {
				if p := res.pcache.get(id); p != nil {
					res.persons[id] = p
					ps = append(ps, p)
					continue
				}
			}
			if asked == nil {
				asked = map[string]bool{}
			}
			if !asked[id] {
				asked[id] = true
				misses = append(misses, id)
			}
		}
		if len(misses) > 0 {
			loaded, err := res.st.PersonsByID(ctx, misses)
			if err != nil {
				return fmt.Errorf("identity: load persons: %w", err)
			}
			for _, p := range loaded {
				res.persons[p.ID] = p
			}
			ps = append(ps, loaded...)
		}
		want = want[:0:0]
		for _, p := range ps {
			if p.RootID != "" && res.persons[p.RootID] == nil {
				want = append(want, p.RootID)
			}
		}
	}
	return nil
}

func (res *resolution) root(personID string) *Person {
	p := res.persons[personID]
	if p == nil {
		return nil
	}
	if p.RootID != "" && p.RootID != p.ID {
		if r := res.persons[p.RootID]; r != nil {
			return r
		}
	}
	return p
}

func (res *resolution) observe(ctx context.Context, o *Observation) (string, error) {
	// The keys in priority order, stable: a copy in a buffer of the
	// resolution, sorted by insertion (two or three keys as a rule).
	keys := append(res.keyBuf[:0], o.Keys...)
	if o.AliasOf != "" {
		prev := Key{AnonymousID, o.AliasOf}
		if res.idents[Key{UserID, o.AliasOf}] != nil {
			prev = Key{UserID, o.AliasOf}
		}
		if !slices.Contains(keys, prev) {
			keys = append(keys, prev)
		}
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && priority(keys[j].Type) < priority(keys[j-1].Type); j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	res.keyBuf = keys

	var userID string
	for _, k := range keys {
		if k.Type == UserID {
			userID = k.Value
			break
		}
	}
	// Roots in key priority order, without repeats.
	roots := res.rootBuf[:0]
	for _, k := range keys {
		id := res.idents[k]
		if id == nil {
			continue
		}
		if r := res.root(id.PersonID); r != nil && !slices.Contains(roots, r) {
			roots = append(roots, r)
		}
	}
	res.rootBuf = roots
	// More than one user id among the event's and its roots' means two
	// known people.
	met, userIDs := userID, 0
	if met != "" {
		userIDs = 1
	}
	for _, r := range roots {
		switch {
		case r.UserID == "":
		case userIDs == 0:
			met, userIDs = r.UserID, 1
		case r.UserID != met:
			userIDs = 2
		}
	}

	var target *Person
	if userIDs > 1 {
		// Two different known people meet on one event: keep them apart and
		// ask a human. The event goes to the person of its own user id.
		if id := res.idents[Key{UserID, userID}]; id != nil {
			target = res.root(id.PersonID)
		} else if userID != "" {
			target = res.newPerson(o.At)
			target.UserID = userID
		} else {
			target = roots[0]
		}
		c := &Conflict{
			ID:        onramp.NewID("cfl"),
			Keys:      slices.Clone(keys),
			MessageID: o.MessageID,
			CreatedAt: res.now,
			Reason:    "identifiers of persons with different user ids met on one event",
		}
		for _, r := range roots {
			c.PersonIDs = append(c.PersonIDs, r.ID)
		}
		if !slices.Contains(c.PersonIDs, target.ID) {
			c.PersonIDs = append(c.PersonIDs, target.ID)
		}
		res.conflicts = append(res.conflicts, c)
	} else {
		switch {
		case len(roots) == 0:
			target = res.newPerson(o.At)
		default:
			target = roots[0]
			for _, r := range roots {
				if r.UserID != "" {
					target = r
					break
				}
			}
			for _, r := range roots {
				if r == target {
					continue
				}
				// Staff undid a merge of these two once: an event that
				// joins them again is a question for a human, not a merge.
				blocked, err := res.unmergedBefore(ctx, r.ID, target.ID)
				if err != nil {
					return "", err
				}
				if blocked {
					res.conflicts = append(res.conflicts, &Conflict{
						ID: onramp.NewID("cfl"), PersonIDs: []string{target.ID, r.ID}, Keys: slices.Clone(keys), MessageID: o.MessageID, CreatedAt: res.now,
						Reason: "identifiers of persons that staff unmerged met on one event",
					})
					continue
				}
				reason := "identifiers"
				if o.Alias {
					reason = "alias"
				}
				if err := res.merge(ctx, r, target, reason, o.MessageID); err != nil {
					return "", err
				}
			}
		}
		if userID != "" && target.UserID == "" {
			target.UserID = userID
			res.touch(target)
		}
	}

	// New identifiers join the target; one that names a user id other than
	// the target's stays out (it was handled as a conflict above).
	for _, k := range keys {
		if res.idents[k] != nil {
			continue
		}
		if k.Type == UserID && target.UserID != k.Value {
			continue
		}
		id := &Identifier{Key: k, PersonID: target.ID, FirstSeenAt: o.At}
		res.idents[k] = id
		res.newIdents = append(res.newIdents, id)
	}
	if len(o.Traits) > 0 {
		merged, changed, err := MergeTraits(target.Traits, o.Traits, false)
		if err != nil {
			return "", err
		}
		// Libraries repeat identify with the same traits on every page
		// load: an unchanged person is not rewritten (each rewrite costs a
		// row and several index pages in the commit).
		if len(changed) > 0 {
			target.Traits = merged
			res.touch(target)
		}
	}
	// Last seen is kept to the minute: writing the person row for every
	// event would cost more than the event itself.
	if o.At.After(target.LastSeenAt.Add(lastSeenGranularity)) {
		target.LastSeenAt = o.At
		res.touchSeen(target)
	}
	// The event belongs to the owner of its strongest identifier, so that an
	// unmerge later gives each person back exactly their events.
	for _, k := range keys {
		if id := res.idents[k]; id != nil {
			return id.PersonID, nil
		}
	}
	return target.ID, nil
}

// unmergedBefore reports whether a merge between persons a and b (either
// way) was undone. It runs only when a merge is about to happen, which is
// rare next to the events that need none.
func (res *resolution) unmergedBefore(ctx context.Context, a, b string) (bool, error) {
	ms, err := res.st.MergesOf(ctx, []string{a, b})
	if err != nil {
		return false, fmt.Errorf("identity: merge history: %w", err)
	}
	for _, m := range ms {
		if m.UndoneAt != nil && (m.FromID == a && m.IntoID == b || m.FromID == b && m.IntoID == a) {
			return true, nil
		}
	}
	return false, nil
}

func (res *resolution) newPerson(at time.Time) *Person {
	p := &Person{ID: onramp.NewID("per"), Traits: json.RawMessage("{}"), CreatedAt: res.now, UpdatedAt: res.now, LastSeenAt: at}
	p.RootID = p.ID
	res.persons[p.ID] = p
	res.created = append(res.created, p)
	if res.isCreated == nil {
		res.isCreated = map[*Person]bool{}
	}
	res.isCreated[p] = true
	return p
}

func (res *resolution) touch(p *Person) {
	p.UpdatedAt = res.now
	if !res.isCreated[p] {
		res.dirty[p.ID] = p
		delete(res.seen, p.ID)
	}
}

// touchSeen records a newer last seen, unless p is written whole anyway.
func (res *resolution) touchSeen(p *Person) {
	p.UpdatedAt = res.now
	if res.dirty[p.ID] == nil && !res.isCreated[p] {
		res.seen[p.ID] = p
	}
}

// merge folds the tree rooted at from into the tree rooted at into.
func (res *resolution) merge(ctx context.Context, from, into *Person, reason, messageID string) error {
	m, err := applyMerge(ctx, res.st, res.now, from, into)
	if err != nil {
		return err
	}
	m.Reason, m.MessageID = reason, messageID
	for _, p := range res.persons {
		if p.RootID == from.ID {
			p.RootID = into.ID
		}
	}
	res.touch(from)
	res.touch(into)
	res.merges = append(res.merges, m)
	return nil
}

// applyMerge changes from and into in memory and re-roots from's stored
// tree. The caller writes both persons and the returned Merge.
func applyMerge(ctx context.Context, st Store, now time.Time, from, into *Person) (*Merge, error) {
	members, err := st.PersonsWithRoot(ctx, from.ID)
	if err != nil {
		return nil, fmt.Errorf("identity: merge: %w", err)
	}
	if len(members) > 0 {
		if err := st.SetRoot(ctx, members, into.ID); err != nil {
			return nil, fmt.Errorf("identity: merge: %w", err)
		}
	}
	merged, added, err := MergeTraits(into.Traits, from.Traits, true)
	if err != nil {
		return nil, err
	}
	into.Traits = merged
	if into.UserID == "" {
		into.UserID = from.UserID
	}
	if from.LastSeenAt.After(into.LastSeenAt) {
		into.LastSeenAt = from.LastSeenAt
	}
	from.MergedInto = into.ID
	from.RootID = into.ID
	from.UpdatedAt, into.UpdatedAt = now, now
	return &Merge{ID: onramp.NewID("mrg"), FromID: from.ID, IntoID: into.ID, TraitsAdded: added, CreatedAt: now}, nil
}

func (res *resolution) flush(ctx context.Context) error {
	if len(res.created) > 0 {
		if err := res.st.CreatePersons(ctx, res.created); err != nil {
			return fmt.Errorf("identity: create persons: %w", err)
		}
	}
	if len(res.dirty) > 0 {
		if err := res.st.UpdatePersons(ctx, sortedByID(res.dirty)); err != nil {
			return fmt.Errorf("identity: update persons: %w", err)
		}
	}
	if len(res.seen) > 0 {
		if err := res.st.TouchPersons(ctx, sortedByID(res.seen)); err != nil {
			return fmt.Errorf("identity: touch persons: %w", err)
		}
	}
	if len(res.newIdents) > 0 {
		if err := res.st.AddIdentifiers(ctx, res.newIdents); err != nil {
			return fmt.Errorf("identity: add identifiers: %w", err)
		}
		res.cache.stage(res.newIdents...)
	}
	for _, m := range res.merges {
		if err := res.st.InsertMerge(ctx, m); err != nil {
			return fmt.Errorf("identity: record merge: %w", err)
		}
	}
	if len(res.conflicts) > 0 {
		if err := res.st.InsertConflicts(ctx, res.conflicts); err != nil {
			return fmt.Errorf("identity: record conflicts: %w", err)
		}
	}
	return nil
}

// sortedByID lists the persons of m in id order: concurrent writers that
// update rows in the same order cannot deadlock each other.
func sortedByID(m map[string]*Person) []*Person {
	ps := make([]*Person, 0, len(m))
	for _, p := range m {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].ID < ps[j].ID })
	return ps
}

// sameJSON reports whether two JSON values are the same text once
// compacted. A value that does not compact is never the same.
func sameJSON(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return false
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

// MergeTraits merges the top-level keys of src into dst. With onlyMissing,
// keys dst already has are kept (a merge must not overwrite what the known
// person told us); otherwise src wins (a newer identify call). It returns
// the keys it added or gave a different value, compared as compact JSON
// (PostgreSQL hands stored traits back in its own spacing and key order,
// so comparing whole documents would see a change in every identify).
func MergeTraits(dst, src json.RawMessage, onlyMissing bool) (json.RawMessage, []string, error) {
	if len(dst) > 0 && bytes.Equal(dst, src) {
		// An identify repeating the stored traits byte for byte (a
		// library that sends them sorted and compact, as they are kept).
		return dst, nil, nil
	}
	var d, s map[string]json.RawMessage
	if len(dst) > 0 {
		// goccy/go-json: a third of the decoding time of encoding/json,
		// and identify is on ingest's one committer.
		if err := gojson.Unmarshal(dst, &d); err != nil {
			return nil, nil, fmt.Errorf("identity: stored traits: %w", err)
		}
	}
	if len(src) == 0 {
		return dst, nil, nil
	}
	if err := gojson.Unmarshal(src, &s); err != nil {
		return nil, nil, onramp.Errorf(onramp.EINVALID, "traits must be a JSON object")
	}
	if d == nil {
		d = map[string]json.RawMessage{}
	}
	var added []string
	for k, v := range s {
		old, ok := d[k]
		if ok && onlyMissing {
			continue
		}
		if !ok || !sameJSON(old, v) {
			added = append(added, k)
		}
		d[k] = v
	}
	if len(added) == 0 && len(dst) > 0 {
		// Nothing new (an identify repeating the traits, as libraries do
		// on every page load): dst as it was, without encoding it again.
		return dst, nil, nil
	}
	sort.Strings(added)
	out, err := json.Marshal(d)
	if err != nil {
		return nil, nil, fmt.Errorf("identity: encode traits: %w", err)
	}
	return out, added, nil
}
