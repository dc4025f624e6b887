package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/onramp-dev/onramp"
)

// TxFunc runs fn in one transaction of the engine.
type TxFunc func(ctx context.Context, fn func(Store) error) error

// Service holds the rules for reading and changing people outside ingest:
// lookups, manual merges, unmerges, deletion and suppression.
type Service struct {
	read  Store
	inTx  TxFunc
	clock onramp.Clock
	log   *slog.Logger
	// OnChange, if set, is told of persons whose data changed in a way that
	// caches must forget (merge, unmerge, delete, suppress). It is called
	// inside the change's transaction and must not touch the database.
	OnChange func(personIDs []string)
	// erasers run inside a delete's transaction, so that other parts
	// erase what they keep about the persons (the rejected-events log,
	// accounts and sessions) atomically with the delete.
	erasers []Eraser
}

// Eraser erases what a part keeps about persons being deleted: their ids
// and every identifier they had. It runs in the delete's transaction st.
type Eraser func(ctx context.Context, st Store, personIDs []string, keys []Key) error

// OnErase adds an Eraser. Call it while wiring, before serving.
func (s *Service) OnErase(e Eraser) { s.erasers = append(s.erasers, e) }

// NewService returns a Service reading through read and writing through inTx.
func NewService(read Store, inTx TxFunc, clock onramp.Clock, log *slog.Logger) *Service {
	return &Service{read: read, inTx: inTx, clock: clock, log: log}
}

// Profile is a person as shown to staff and server-side readers: the root
// person, every identifier of its tree, and the ids of the persons merged
// into it.
type Profile struct {
	Person      *Person       `json:"person"`
	Identifiers []*Identifier `json:"identifiers"`
	MergedIDs   []string      `json:"merged_person_ids"`
}

var errPersonNotFound = onramp.Errorf(onramp.ENOTFOUND, "No such person.")

// Person returns the root profile that id belongs to. Asking for a person
// that was merged returns the person it was merged into.
func (s *Service) Person(ctx context.Context, id string) (*Profile, error) {
	ps, err := s.read.PersonsByID(ctx, []string{id})
	if err != nil {
		return nil, fmt.Errorf("identity: person: %w", err)
	}
	if len(ps) == 0 {
		return nil, errPersonNotFound
	}
	return s.profile(ctx, s.read, ps[0].RootID)
}

// Lookup finds the profile an identifier belongs to. Only server-side
// callers with a secret key or staff may reach this: an identifier alone
// proves nothing about who is asking.
func (s *Service) Lookup(ctx context.Context, k Key) (*Profile, error) {
	owner, err := s.ownerOf(ctx, k)
	if err != nil {
		return nil, err
	}
	return s.Person(ctx, owner)
}

// ownerOf returns the person an identifier (normalised here) belongs to.
func (s *Service) ownerOf(ctx context.Context, k Key) (string, error) {
	v, ok := Normalize(k.Type, k.Value)
	if !ok || !ValidType(k.Type) {
		return "", errPersonNotFound
	}
	ids, err := s.read.FindIdentifiers(ctx, []Key{{k.Type, v}})
	if err != nil {
		return "", fmt.Errorf("identity: lookup: %w", err)
	}
	if len(ids) == 0 {
		return "", errPersonNotFound
	}
	return ids[0].PersonID, nil
}

// Timeline names whose events make up one profile's timeline.
type Timeline struct {
	RootID    string   // the person the profile shows
	PersonIDs []string // the root and every person merged into it
}

// TimelineOf finds the timeline of the person id belongs to: fewer reads
// than Person, for the hot timeline endpoints.
func (s *Service) TimelineOf(ctx context.Context, id string) (*Timeline, error) {
	ps, err := s.read.PersonsByID(ctx, []string{id})
	if err != nil {
		return nil, fmt.Errorf("identity: timeline: %w", err)
	}
	if len(ps) == 0 {
		return nil, errPersonNotFound
	}
	members, err := s.read.PersonsWithRoot(ctx, ps[0].RootID)
	if err != nil {
		return nil, fmt.Errorf("identity: timeline: %w", err)
	}
	return &Timeline{RootID: ps[0].RootID, PersonIDs: members}, nil
}

// TimelineOfKey is TimelineOf for the owner of an identifier. Like Lookup
// it is for callers that proved who they are (secret key, staff).
func (s *Service) TimelineOfKey(ctx context.Context, k Key) (*Timeline, error) {
	v, ok := Normalize(k.Type, k.Value)
	if !ok || !ValidType(k.Type) {
		return nil, errPersonNotFound
	}
	root, members, err := s.read.TreeOfKey(ctx, Key{k.Type, v})
	if err != nil {
		return nil, fmt.Errorf("identity: timeline: %w", err)
	}
	if root == "" {
		return nil, errPersonNotFound
	}
	return &Timeline{RootID: root, PersonIDs: members}, nil
}

func (s *Service) profile(ctx context.Context, st Store, rootID string) (*Profile, error) {
	ps, err := st.PersonsByID(ctx, []string{rootID})
	if err != nil {
		return nil, fmt.Errorf("identity: profile: %w", err)
	}
	if len(ps) == 0 {
		return nil, errPersonNotFound
	}
	members, err := st.PersonsWithRoot(ctx, rootID)
	if err != nil {
		return nil, fmt.Errorf("identity: profile: %w", err)
	}
	idents, err := st.IdentifiersOf(ctx, members)
	if err != nil {
		return nil, fmt.Errorf("identity: profile: %w", err)
	}
	merged := slices.DeleteFunc(slices.Clone(members), func(id string) bool { return id == rootID })
	slices.Sort(merged)
	return &Profile{Person: ps[0], Identifiers: idents, MergedIDs: merged}, nil
}

// Members returns the ids of the persons whose events make up id's timeline.
func (s *Service) Members(ctx context.Context, id string) ([]string, error) {
	ps, err := s.read.PersonsByID(ctx, []string{id})
	if err != nil {
		return nil, fmt.Errorf("identity: members: %w", err)
	}
	if len(ps) == 0 {
		return nil, errPersonNotFound
	}
	return s.read.PersonsWithRoot(ctx, ps[0].RootID)
}

// Conflicts lists recorded identity conflicts, newest first.
func (s *Service) Conflicts(ctx context.Context, limit int) ([]*Conflict, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	return s.read.ListConflicts(ctx, limit)
}

// Merges lists the merge history of id's tree.
func (s *Service) Merges(ctx context.Context, id string) ([]*Merge, error) {
	members, err := s.Members(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.read.MergesOf(ctx, members)
}

// MergeParams asks to fold one person into another.
type MergeParams struct {
	FromID, IntoID string
	Actor          string
}

// Merge folds From's tree into Into's tree by hand. Staff may merge people
// the automatic rules kept apart, except two persons with different user ids:
// that would give one person's account the other's history.
func (s *Service) Merge(ctx context.Context, p MergeParams) (*Merge, error) {
	var m *Merge
	err := s.inTx(ctx, func(st Store) error {
		ps, err := st.PersonsByID(ctx, []string{p.FromID, p.IntoID})
		if err != nil {
			return err
		}
		byID := map[string]*Person{}
		for _, x := range ps {
			byID[x.ID] = x
		}
		if byID[p.FromID] == nil || byID[p.IntoID] == nil {
			return errPersonNotFound
		}
		roots, err := st.PersonsByID(ctx, []string{byID[p.FromID].RootID, byID[p.IntoID].RootID})
		if err != nil {
			return err
		}
		var from, into *Person
		for _, r := range roots {
			if r.ID == byID[p.FromID].RootID {
				from = r
			}
			if r.ID == byID[p.IntoID].RootID {
				into = r
			}
		}
		if from == nil || into == nil {
			return errPersonNotFound
		}
		if from.ID == into.ID {
			return onramp.Errorf(onramp.ECONFLICT, "These persons are already one person.")
		}
		if from.UserID != "" && into.UserID != "" && from.UserID != into.UserID {
			return onramp.Errorf(onramp.ECONFLICT, "Both persons have a user id (%q and %q); Onramp does not merge two known users.", from.UserID, into.UserID)
		}
		m, err = applyMerge(ctx, st, s.clock.Now(), from, into)
		if err != nil {
			return err
		}
		m.Reason, m.Actor = "manual", p.Actor
		if err := st.UpdatePersons(ctx, []*Person{from, into}); err != nil {
			return err
		}
		if err := st.InsertMerge(ctx, m); err != nil {
			return err
		}
		s.changed(m.FromID, m.IntoID)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Unmerge undoes a merge: the merged person and everything merged into it
// before become their own tree again, with their identifiers and events, and
// the trait keys the merge copied are taken back.
func (s *Service) Unmerge(ctx context.Context, mergeID, actor string) (*Merge, error) {
	var m *Merge
	err := s.inTx(ctx, func(st Store) error {
		var err error
		m, err = st.MergeByID(ctx, mergeID)
		if err != nil {
			return err
		}
		if m.UndoneAt != nil {
			return onramp.Errorf(onramp.ECONFLICT, "This merge was already undone.")
		}
		ps, err := st.PersonsByID(ctx, []string{m.FromID, m.IntoID})
		if err != nil {
			return err
		}
		var from, into *Person
		for _, p := range ps {
			switch p.ID {
			case m.FromID:
				from = p
			case m.IntoID:
				into = p
			}
		}
		if from == nil || into == nil || from.MergedInto != into.ID {
			return onramp.Errorf(onramp.ECONFLICT, "The persons of this merge have changed since; it cannot be undone.")
		}
		root := from.RootID
		members, err := st.PersonsWithRoot(ctx, root)
		if err != nil {
			return err
		}
		all, err := st.PersonsByID(ctx, members)
		if err != nil {
			return err
		}
		parent := map[string]string{}
		for _, p := range all {
			parent[p.ID] = p.MergedInto
		}
		// The subtree of from: members whose MergedInto chain passes from.
		var subtree, rest []string
		for _, id := range members {
			in := false
			for cur, n := id, 0; cur != "" && n <= len(members); cur, n = parent[cur], n+1 {
				if cur == from.ID {
					in = true
					break
				}
			}
			if in {
				subtree = append(subtree, id)
			} else {
				rest = append(rest, id)
			}
		}
		if err := st.SetRoot(ctx, subtree, from.ID); err != nil {
			return err
		}
		now := s.clock.Now()
		from.MergedInto, from.RootID, from.UpdatedAt = "", from.ID, now
		if from.UserID, err = userIDOf(ctx, st, subtree); err != nil {
			return err
		}
		rootP := into
		if root != into.ID {
			rs, err := st.PersonsByID(ctx, []string{root})
			if err != nil || len(rs) == 0 {
				return fmt.Errorf("identity: unmerge: load root: %w", err)
			}
			rootP = rs[0]
		}
		if rootP.UserID, err = userIDOf(ctx, st, rest); err != nil {
			return err
		}
		into.Traits, err = removeCopiedTraits(into.Traits, from.Traits, m.TraitsAdded)
		if err != nil {
			return err
		}
		into.UpdatedAt, rootP.UpdatedAt = now, now
		upd := []*Person{from, into}
		// Later merges may have carried from's traits further up, to into's
		// ancestors: take them back there too, along the path to the root.
		byID := map[string]*Person{into.ID: into, rootP.ID: rootP}
		for _, p := range all {
			if byID[p.ID] == nil {
				byID[p.ID] = p
			}
		}
		history, err := st.MergesOf(ctx, members)
		if err != nil {
			return err
		}
		for child := into; child.MergedInto != "" && len(upd) <= len(members)+1; {
			parent := byID[child.MergedInto]
			if parent == nil {
				break
			}
			for _, hm := range history {
				if hm.FromID == child.ID && hm.IntoID == parent.ID && hm.UndoneAt == nil {
					if parent.Traits, err = removeCopiedTraits(parent.Traits, from.Traits, hm.TraitsAdded); err != nil {
						return err
					}
					parent.UpdatedAt = now
					upd = append(upd, parent)
					break
				}
			}
			child = parent
		}
		if rootP != into && !slices.Contains(upd, rootP) {
			upd = append(upd, rootP)
		}
		if err := st.UpdatePersons(ctx, upd); err != nil {
			return err
		}
		m.UndoneAt, m.UndoneBy = &now, actor
		if err := st.UpdateMerge(ctx, m); err != nil {
			return err
		}
		s.changed(m.FromID, m.IntoID)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func userIDOf(ctx context.Context, st Store, persons []string) (string, error) {
	if len(persons) == 0 {
		return "", nil
	}
	ids, err := st.IdentifiersOf(ctx, persons)
	if err != nil {
		return "", err
	}
	for _, id := range ids {
		if id.Type == UserID {
			return id.Value, nil
		}
	}
	return "", nil
}

// removeCopiedTraits deletes from dst the keys a merge copied from src, if
// they still hold the copied value (a later identify may have changed them,
// and then they belong to dst).
func removeCopiedTraits(dst, src json.RawMessage, keys []string) (json.RawMessage, error) {
	if len(keys) == 0 {
		return dst, nil
	}
	var d, s map[string]json.RawMessage
	if err := json.Unmarshal(dst, &d); err != nil {
		return nil, fmt.Errorf("identity: traits: %w", err)
	}
	_ = json.Unmarshal(src, &s)
	for _, k := range keys {
		if string(d[k]) == string(s[k]) {
			delete(d, k)
		}
	}
	return json.Marshal(d)
}

// Delete removes a person's whole tree: persons, identifiers, events,
// merges and conflicts. It returns the ids it removed.
func (s *Service) Delete(ctx context.Context, id string) ([]string, error) {
	var members []string
	err := s.inTx(ctx, func(st Store) error {
		ps, err := st.PersonsByID(ctx, []string{id})
		if err != nil {
			return err
		}
		if len(ps) == 0 {
			return errPersonNotFound
		}
		members, err = st.PersonsWithRoot(ctx, ps[0].RootID)
		if err != nil {
			return err
		}
		if err := s.deleteTree(ctx, st, members); err != nil {
			return err
		}
		s.changed(members...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return members, nil
}

// deleteTree erases the persons, and through Erase what other parts keep
// about their identifiers.
func (s *Service) deleteTree(ctx context.Context, st Store, members []string) error {
	if len(s.erasers) > 0 {
		ids, err := st.IdentifiersOf(ctx, members)
		if err != nil {
			return err
		}
		keys := make([]Key, len(ids))
		for i, id := range ids {
			keys[i] = id.Key
		}
		for _, erase := range s.erasers {
			if err := erase(ctx, st, members, keys); err != nil {
				return fmt.Errorf("identity: erase: %w", err)
			}
		}
	}
	return st.DeletePersons(ctx, members)
}

// SuppressParams says whose future events to refuse.
type SuppressParams struct {
	PersonID string
	// AlsoDelete removes the person and their data as well (Segment's
	// SUPPRESS_WITH_DELETE).
	AlsoDelete bool
}

// Suppress refuses every future event that carries any identifier of the
// person's tree. It returns the suppressed identifiers.
func (s *Service) Suppress(ctx context.Context, p SuppressParams) ([]Key, error) {
	var keys []Key
	var members []string
	err := s.inTx(ctx, func(st Store) error {
		ps, err := st.PersonsByID(ctx, []string{p.PersonID})
		if err != nil {
			return err
		}
		if len(ps) == 0 {
			return errPersonNotFound
		}
		members, err = st.PersonsWithRoot(ctx, ps[0].RootID)
		if err != nil {
			return err
		}
		ids, err := st.IdentifiersOf(ctx, members)
		if err != nil {
			return err
		}
		for _, id := range ids {
			keys = append(keys, id.Key)
		}
		if err := st.AddSuppressions(ctx, keys, s.clock.Now()); err != nil {
			return err
		}
		if p.AlsoDelete {
			if err := s.deleteTree(ctx, st, members); err != nil {
				return err
			}
		}
		s.changed(members...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}

// Unsuppress lets events with these identifiers in again.
func (s *Service) Unsuppress(ctx context.Context, keys []Key) error {
	for i, k := range keys {
		v, ok := Normalize(k.Type, k.Value)
		if !ok {
			return onramp.Errorf(onramp.EINVALID, "identifier %d is not valid", i)
		}
		keys[i].Value = v
	}
	return s.inTx(ctx, func(st Store) error { return st.RemoveSuppressions(ctx, keys) })
}

// changed tells OnChange, from inside the transaction: on SQLite ingest
// cannot start its own transaction until this one ends, so it cannot read
// a cache entry made stale by this change in between. (A rollback after
// this only costs the caches a refill.)
func (s *Service) changed(ids ...string) {
	if s.OnChange != nil {
		s.OnChange(ids)
	}
}

// IsNotFound reports whether err means "no such thing".
func IsNotFound(err error) bool {
	var e *onramp.Error
	return errors.As(err, &e) && e.Code == onramp.ENOTFOUND
}
