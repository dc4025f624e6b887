package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"unicode/utf8"

	"github.com/onramp-dev/onramp"
)

// Limits of a staff edit of traits. They follow ingest's: one identify
// call carries at most 32 KB and names of at most 256 characters, so an
// edit can do no more than a tracking call could.
const (
	MaxTraitKeyLen = 256
	MaxTraitsEdit  = 32 << 10
	// MaxTraitsSize bounds the stored traits an edit may grow them to.
	MaxTraitsSize = 64 << 10
	maxEditKeys   = 500
)

// TraitsEdit changes some traits of a person: Set writes keys (any JSON
// value, null included), Unset removes them.
type TraitsEdit struct {
	PersonID string
	Set      map[string]json.RawMessage
	Unset    []string
}

// Keys lists the keys the edit names, sorted: what the audit log keeps
// (never the values).
func (e TraitsEdit) Keys() (set, unset []string) {
	for k := range e.Set {
		set = append(set, k)
	}
	sort.Strings(set)
	unset = slices.Clone(e.Unset)
	sort.Strings(unset)
	return set, unset
}

func (e TraitsEdit) validate() error {
	if len(e.Set)+len(e.Unset) == 0 {
		return onramp.Errorf(onramp.EINVALID, "Name at least one trait in set or unset.")
	}
	if len(e.Set)+len(e.Unset) > maxEditKeys {
		return onramp.Errorf(onramp.EINVALID, "One edit changes at most %d traits.", maxEditKeys)
	}
	check := func(field, k string) error {
		switch {
		case k == "":
			return onramp.Errorf(onramp.EINVALID, "%s has an empty trait key.", field)
		case !utf8.ValidString(k):
			return onramp.Errorf(onramp.EINVALID, "%s has a trait key that is not valid UTF-8.", field)
		case utf8.RuneCountInString(k) > MaxTraitKeyLen:
			return onramp.Errorf(onramp.EINVALID, "%s has a trait key longer than %d characters.", field, MaxTraitKeyLen)
		}
		return nil
	}
	size := 0
	for k, v := range e.Set {
		if err := check("set", k); err != nil {
			return err
		}
		if len(v) == 0 || !json.Valid(v) || !utf8.Valid(v) {
			return onramp.Errorf(onramp.EINVALID, "set.%s is not a JSON value in UTF-8.", k)
		}
		size += len(k) + len(v)
	}
	for _, k := range e.Unset {
		if err := check("unset", k); err != nil {
			return err
		}
		if _, ok := e.Set[k]; ok {
			return onramp.Errorf(onramp.EINVALID, "Trait %q is both in set and in unset.", k)
		}
		size += len(k)
	}
	if size > MaxTraitsEdit {
		return onramp.Errorf(onramp.EINVALID, "The edit is %d bytes; the limit is %d (32 KB).", size, MaxTraitsEdit)
	}
	return nil
}

// EditTraits applies a staff edit to the traits of the person PersonID
// resolves to (its root, as Person does) and returns that person.
func (s *Service) EditTraits(ctx context.Context, e TraitsEdit) (*Person, error) {
	if err := e.validate(); err != nil {
		return nil, err
	}
	var root *Person
	err := s.inTx(ctx, func(st Store) error {
		ps, err := st.PersonsByID(ctx, []string{e.PersonID})
		if err != nil {
			return fmt.Errorf("identity: edit traits: %w", err)
		}
		if len(ps) == 0 {
			return errPersonNotFound
		}
		if ps[0].RootID != ps[0].ID {
			if ps, err = st.PersonsByID(ctx, []string{ps[0].RootID}); err != nil {
				return fmt.Errorf("identity: edit traits: %w", err)
			}
			if len(ps) == 0 {
				return errPersonNotFound
			}
		}
		root = ps[0]
		traits := map[string]json.RawMessage{}
		if len(root.Traits) > 0 {
			if err := json.Unmarshal(root.Traits, &traits); err != nil {
				return fmt.Errorf("identity: edit traits: stored traits of %s: %w", root.ID, err)
			}
		}
		for k, v := range e.Set {
			traits[k] = v
		}
		for _, k := range e.Unset {
			delete(traits, k)
		}
		out, err := json.Marshal(traits)
		if err != nil {
			return fmt.Errorf("identity: edit traits: %w", err)
		}
		// Traits already past the bound (many identify calls) may still
		// be edited, as long as the edit does not grow them.
		if len(out) > MaxTraitsSize && len(out) > len(root.Traits) {
			return onramp.Errorf(onramp.EINVALID, "The traits would be %d bytes; the limit is %d (64 KB).", len(out), MaxTraitsSize)
		}
		root.Traits, root.UpdatedAt = out, s.clock.Now()
		if err := st.UpdatePersons(ctx, []*Person{root}); err != nil {
			return fmt.Errorf("identity: edit traits: %w", err)
		}
		members, err := st.PersonsWithRoot(ctx, root.ID)
		if err != nil {
			return fmt.Errorf("identity: edit traits: %w", err)
		}
		s.changed(members...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return root, nil
}
