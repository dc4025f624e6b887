package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onramp-dev/onramp/identity"
)

// person returns a root person with the given traits, last seen at seen.
func person(id, traits string, seen time.Time) *identity.Person {
	var raw json.RawMessage
	if traits != "" {
		raw = json.RawMessage(traits)
	}
	return &identity.Person{ID: id, RootID: id, Traits: raw, CreatedAt: at(0), UpdatedAt: at(time.Second), LastSeenAt: seen}
}

func ident(typ, value, personID string) *identity.Identifier {
	return &identity.Identifier{Key: identity.Key{Type: typ, Value: value}, PersonID: personID, FirstSeenAt: at(time.Minute)}
}

func samePerson(t *testing.T, got, want *identity.Person) {
	t.Helper()
	if got.ID != want.ID || got.RootID != want.RootID || got.MergedInto != want.MergedInto || got.UserID != want.UserID {
		t.Errorf("person %s = {root %q merged %q user %q}, want {root %q merged %q user %q}",
			want.ID, got.RootID, got.MergedInto, got.UserID, want.RootID, want.MergedInto, want.UserID)
	}
	wantTraits := want.Traits
	if len(wantTraits) == 0 {
		wantTraits = json.RawMessage(`{}`) // absent traits are stored as {}
	}
	sameJSON(t, "traits of "+want.ID, got.Traits, wantTraits)
	sameTime(t, "created_at", got.CreatedAt, want.CreatedAt)
	sameTime(t, "updated_at", got.UpdatedAt, want.UpdatedAt)
	sameTime(t, "last_seen_at", got.LastSeenAt, want.LastSeenAt)
}

func byID(ps []*identity.Person) map[string]*identity.Person {
	m := map[string]*identity.Person{}
	for _, p := range ps {
		m[p.ID] = p
	}
	return m
}

func personIDs(ps []*identity.Person) []string {
	var ids []string
	for _, p := range ps {
		ids = append(ids, p.ID)
	}
	return ids
}

func (e *env) createPersons(t *testing.T, ps ...*identity.Person) {
	t.Helper()
	e.tx(t, func(s Store) error { return s.CreatePersons(e.ctx, ps) })
}

func (e *env) addIdentifiers(t *testing.T, ids ...*identity.Identifier) {
	t.Helper()
	e.tx(t, func(s Store) error { return s.AddIdentifiers(e.ctx, ids) })
}

// largeTraits is a ~200 KB JSON object: far past any page or inline limit.
func largeTraits() string {
	var b strings.Builder
	b.WriteString(`{`)
	for i := range 2000 {
		fmt.Fprintf(&b, `"key_%04d": "%s",`, i, strings.Repeat("x", 90))
	}
	b.WriteString(`"nested": {"list": [1, 2.5, -3e10, null, true, false, "ünï©ødé 🚀"]}}`)
	return b.String()
}

var personTests = []test{
	{"Person/RoundTrip", func(t *testing.T, e *env) {
		nanos := time.Date(2026, 1, 2, 3, 4, 5, 987654321, time.FixedZone("CET", 3600))
		ps := []*identity.Person{
			person("per_absent_traits", "", at(time.Hour)),
			person("per_empty_traits", `{}`, at(time.Hour)),
			person("per_unicode", `{"name": "Zoë Ñandú 李小龍 🚀", "emoji": "\ud83d\ude80", "quote": "say \"hi\"\n"}`, nanos),
			person("per_large", largeTraits(), at(2*time.Hour)),
			{ID: "per_merged", RootID: "per_unicode", MergedInto: "per_unicode", UserID: "u-42", Traits: json.RawMessage(`{"a": {"b": [1, 2]}}`),
				CreatedAt: nanos, UpdatedAt: nanos.Add(time.Nanosecond), LastSeenAt: nanos.Add(999 * time.Nanosecond)},
		}
		e.createPersons(t, ps...)
		got, err := e.Reader().PersonsByID(e.ctx, append(personIDs(ps), "per_missing", ps[0].ID))
		must(t, err)
		if len(got) != len(ps) {
			t.Fatalf("PersonsByID = %d persons, want %d (missing ids are skipped, repeats not doubled)", len(got), len(ps))
		}
		m := byID(got)
		for _, want := range ps {
			if m[want.ID] == nil {
				t.Fatalf("person %s not returned", want.ID)
			}
			samePerson(t, m[want.ID], want)
		}
		none, err := e.Reader().PersonsByID(e.ctx, nil)
		if err != nil || len(none) != 0 {
			t.Errorf("PersonsByID(nil) = %v, %v; want nothing", none, err)
		}
	}},
	{"Person/TraitsWithNUL", func(t *testing.T, e *env) {
		// Postgres jsonb cannot hold NUL; the engine may replace it, but
		// must keep the person and the rest of the traits.
		p := person("per_nul", `{"note": "a\u0000b", "plan": "pro"}`, at(0))
		e.createPersons(t, p)
		got, err := e.Reader().PersonsByID(e.ctx, []string{p.ID})
		must(t, err)
		var traits map[string]string
		if len(got) != 1 || json.Unmarshal(got[0].Traits, &traits) != nil {
			t.Fatalf("person with a NUL in traits = %v", got)
		}
		if traits["plan"] != "pro" || (traits["note"] != "a\x00b" && traits["note"] != "a\ufffdb") {
			t.Errorf("traits = %q, want note a\\u0000b (or a\\ufffdb) and plan pro", traits)
		}
	}},
	{"Person/Update", func(t *testing.T, e *env) {
		a, b := person("per_a", `{"x": 1}`, at(0)), person("per_b", `{"y": 2}`, at(0))
		e.createPersons(t, a, b)
		a.RootID, a.MergedInto, a.UserID, a.Traits = "per_b", "per_b", "user-a", json.RawMessage(`{"x": 1, "z": "ζ"}`)
		a.UpdatedAt, a.LastSeenAt = at(time.Hour+1234), at(2*time.Hour+5678)
		b.UserID, b.Traits, b.UpdatedAt = "user-b", nil, at(3*time.Hour)
		e.tx(t, func(s Store) error { return s.UpdatePersons(e.ctx, []*identity.Person{a, b}) })
		got, err := e.Reader().PersonsByID(e.ctx, []string{"per_a", "per_b"})
		must(t, err)
		m := byID(got)
		samePerson(t, m["per_a"], a)
		samePerson(t, m["per_b"], b)
		// And back: clearing MergedInto and UserID.
		a.RootID, a.MergedInto, a.UserID = "per_a", "", ""
		e.tx(t, func(s Store) error { return s.UpdatePersons(e.ctx, []*identity.Person{a}) })
		got, err = e.Reader().PersonsByID(e.ctx, []string{"per_a"})
		must(t, err)
		samePerson(t, got[0], a)
	}},
	{"Person/Touch", func(t *testing.T, e *env) {
		a, b := person("per_a", `{"x": 1}`, at(0)), person("per_b", `{"y": 2}`, at(0))
		e.createPersons(t, a, b)
		// Only the timestamps are written: the other fields of the values
		// passed in are ignored.
		stale := *a
		stale.Traits, stale.UserID, stale.RootID = json.RawMessage(`{"ignored": true}`), "ignored", "per_b"
		stale.UpdatedAt, stale.LastSeenAt = at(time.Hour+1234), at(2*time.Hour+5678)
		e.tx(t, func(s Store) error { return s.TouchPersons(e.ctx, []*identity.Person{&stale}) })
		got, err := e.Reader().PersonsByID(e.ctx, []string{"per_a", "per_b"})
		must(t, err)
		m := byID(got)
		a.UpdatedAt, a.LastSeenAt = stale.UpdatedAt, stale.LastSeenAt
		samePerson(t, m["per_a"], a)
		samePerson(t, m["per_b"], b)
		e.tx(t, func(s Store) error { return s.TouchPersons(e.ctx, nil) })
	}},
	{"Person/RootsAndCount", func(t *testing.T, e *env) {
		e.createPersons(t, person("per_1", "", at(0)), person("per_2", "", at(0)), person("per_3", "", at(0)), person("per_4", "", at(0)))
		r := e.Reader()
		n, err := r.CountPersons(e.ctx)
		if err != nil || n != 4 {
			t.Fatalf("CountPersons = %d, %v; want 4", n, err)
		}
		e.tx(t, func(s Store) error { return s.SetRoot(e.ctx, []string{"per_2", "per_3"}, "per_1") })
		ids, err := r.PersonsWithRoot(e.ctx, "per_1")
		must(t, err)
		sameStrings(t, "PersonsWithRoot(per_1)", ids, []string{"per_1", "per_2", "per_3"})
		ids, err = r.PersonsWithRoot(e.ctx, "per_4")
		must(t, err)
		sameStrings(t, "PersonsWithRoot(per_4)", ids, []string{"per_4"})
		ids, err = r.PersonsWithRoot(e.ctx, "per_2")
		must(t, err)
		sameStrings(t, "PersonsWithRoot of a merged person", ids, nil)
		// TreeOfKey: the same tree from an identifier of any of its persons.
		e.addIdentifiers(t, ident(identity.UserID, "u3", "per_3"), ident(identity.UserID, "u1", "per_1"), ident(identity.UserID, "u4", "per_4"))
		for _, c := range []struct{ value, root string }{{"u3", "per_1"}, {"u1", "per_1"}, {"u4", "per_4"}, {"nobody", ""}} {
			root, members, err := r.TreeOfKey(e.ctx, identity.Key{Type: identity.UserID, Value: c.value})
			must(t, err)
			want, err := r.PersonsWithRoot(e.ctx, c.root)
			must(t, err)
			if root != c.root {
				t.Errorf("TreeOfKey(%s) root = %q, want %q", c.value, root, c.root)
			}
			sameStrings(t, "TreeOfKey("+c.value+")", members, want)
		}
		// Counts roots only: merged persons are part of another person.
		n, err = r.CountPersons(e.ctx)
		if err != nil || n != 2 {
			t.Errorf("CountPersons after SetRoot = %d, %v; want 2", n, err)
		}
		e.tx(t, func(s Store) error { return s.SetRoot(e.ctx, nil, "per_1") })
	}},
}

var identifierTests = []test{
	{"Identifier/SetVerified", func(t *testing.T, e *env) {
		e.createPersons(t, person("per_a", "", at(0)))
		e.addIdentifiers(t, ident(identity.Email, "ada@example.com", "per_a"), ident(identity.AnonymousID, "a1", "per_a"))
		e.tx(t, func(s Store) error {
			return s.SetVerified(e.ctx, []identity.Key{{Type: identity.Email, Value: "ada@example.com"}, {Type: identity.Email, Value: "nobody@example.com"}})
		})
		got, err := e.Reader().IdentifiersOf(e.ctx, []string{"per_a"})
		must(t, err)
		for _, id := range got {
			if want := id.Type == identity.Email; id.Verified != want {
				t.Errorf("%v verified = %v, want %v: only the named key is proven", id.Key, id.Verified, want)
			}
		}
	}},
	{"Identifier/RoundTrip", func(t *testing.T, e *env) {
		e.createPersons(t, person("per_a", "", at(0)), person("per_b", "", at(0)))
		want := []*identity.Identifier{
			ident(identity.Email, "ada@example.com", "per_a"),
			ident(identity.UserID, "ada@example.com", "per_b"), // same value, other type
			ident(identity.AnonymousID, "6f1c-Ää-🚀", "per_a"),
			ident("salesforce_id", strings.Repeat("s", identity.MaxIdentifierLen), "per_b"),
		}
		want[0].Verified = true
		want[1].FirstSeenAt = time.Date(2025, 12, 31, 23, 59, 59, 999999999, time.FixedZone("PST", -8*3600))
		want[2].FirstSeenAt = at(-time.Hour)
		e.addIdentifiers(t, want...)
		var keys []identity.Key
		for _, id := range want {
			keys = append(keys, id.Key)
		}
		keys = append(keys, identity.Key{Type: identity.Phone, Value: "ada@example.com"}, identity.Key{Type: identity.Email, Value: "ADA@example.com"}, keys[0])
		got, err := e.Reader().FindIdentifiers(e.ctx, keys)
		must(t, err)
		if len(got) != len(want) {
			t.Fatalf("FindIdentifiers = %d, want %d: types are part of the key, values compare exactly, repeats are not doubled", len(got), len(want))
		}
		found := map[identity.Key]*identity.Identifier{}
		for _, id := range got {
			found[id.Key] = id
		}
		for _, w := range want {
			g := found[w.Key]
			if g == nil {
				t.Fatalf("identifier %v not found", w.Key)
			}
			if g.PersonID != w.PersonID || g.Verified != w.Verified {
				t.Errorf("identifier %v = %+v, want %+v", w.Key, g, w)
			}
			sameTime(t, "first_seen_at of "+w.Key.String(), g.FirstSeenAt, w.FirstSeenAt)
		}
		// IdentifiersOf: by first_seen_at, then type, then value.
		of, err := e.Reader().IdentifiersOf(e.ctx, []string{"per_a", "per_b"})
		must(t, err)
		var order []string
		for _, id := range of {
			order = append(order, id.Key.String())
		}
		sameStrings(t, "IdentifiersOf order", order, []string{want[1].Key.String(), want[2].Key.String(), want[0].Key.String(), want[3].Key.String()})
		of, err = e.Reader().IdentifiersOf(e.ctx, []string{"per_b"})
		must(t, err)
		if len(of) != 2 {
			t.Errorf("IdentifiersOf(per_b) = %d, want 2", len(of))
		}
		for _, empty := range [][]identity.Key{nil, {}} {
			got, err := e.Reader().FindIdentifiers(e.ctx, empty)
			if err != nil || len(got) != 0 {
				t.Errorf("FindIdentifiers(%v) = %v, %v", empty, got, err)
			}
		}
		of, err = e.Reader().IdentifiersOf(e.ctx, nil)
		if err != nil || len(of) != 0 {
			t.Errorf("IdentifiersOf(nil) = %v, %v", of, err)
		}
	}},
	{"Identifier/ManyKeys", func(t *testing.T, e *env) {
		// Past every chunk size an engine may use for IN lists or arrays.
		const persons, perPerson = 1200, 2
		var ps []*identity.Person
		var ids []*identity.Identifier
		var keys []identity.Key
		var pids []string
		for i := range persons {
			pid := fmt.Sprintf("per_%05d", i)
			ps = append(ps, person(pid, "", at(0)))
			pids = append(pids, pid)
			for j := range perPerson {
				id := ident(identity.AnonymousID, fmt.Sprintf("anon-%05d-%d", i, j), pid)
				ids = append(ids, id)
				keys = append(keys, id.Key)
			}
		}
		e.createPersons(t, ps...)
		e.addIdentifiers(t, ids...)
		for i := range 700 {
			keys = append(keys, identity.Key{Type: identity.Email, Value: fmt.Sprintf("nobody%d@example.com", i)})
		}
		got, err := e.Reader().FindIdentifiers(e.ctx, keys)
		must(t, err)
		if len(got) != len(ids) {
			t.Errorf("FindIdentifiers of %d keys = %d found, want %d", len(keys), len(got), len(ids))
		}
		of, err := e.Reader().IdentifiersOf(e.ctx, pids)
		must(t, err)
		if len(of) != len(ids) {
			t.Errorf("IdentifiersOf %d persons = %d, want %d", len(pids), len(of), len(ids))
		}
		all, err := e.Reader().PersonsByID(e.ctx, pids)
		must(t, err)
		if len(all) != persons {
			t.Errorf("PersonsByID of %d = %d", persons, len(all))
		}
	}},
	{"Identifier/Unique", func(t *testing.T, e *env) {
		e.createPersons(t, person("per_a", "", at(0)), person("per_b", "", at(0)))
		e.addIdentifiers(t, ident(identity.Email, "x@example.com", "per_a"))
		err := e.InTx(e.ctx, func(s Store) error {
			return s.AddIdentifiers(e.ctx, []*identity.Identifier{ident(identity.Email, "x@example.com", "per_b")})
		})
		if err == nil {
			t.Fatal("adding an identifier twice succeeded; identifiers never move between persons")
		}
		got, err := e.Reader().FindIdentifiers(e.ctx, []identity.Key{{Type: identity.Email, Value: "x@example.com"}})
		must(t, err)
		if len(got) != 1 || got[0].PersonID != "per_a" {
			t.Errorf("identifier after the failed add = %+v", got)
		}
	}},
}

var suppressionTests = []test{
	{"Suppression/AddRemove", func(t *testing.T, e *env) {
		email := identity.Key{Type: identity.Email, Value: "gone@example.com"}
		phone := identity.Key{Type: identity.Phone, Value: "+33612345678"}
		sameValue := identity.Key{Type: identity.UserID, Value: "gone@example.com"}
		other := identity.Key{Type: identity.Email, Value: "here@example.com"}
		none, err := e.Reader().Suppressed(e.ctx, []identity.Key{email, phone})
		if err != nil || len(none) != 0 {
			t.Fatalf("Suppressed on an empty store = %v, %v", none, err)
		}
		e.tx(t, func(s Store) error { return s.AddSuppressions(e.ctx, []identity.Key{email, phone}, at(0)) })
		// Again, and with a repeat inside one call: no error.
		e.tx(t, func(s Store) error { return s.AddSuppressions(e.ctx, []identity.Key{email, email}, at(time.Hour)) })
		e.tx(t, func(s Store) error { return s.AddSuppressions(e.ctx, nil, at(time.Hour)) })
		check := func(want ...identity.Key) {
			t.Helper()
			got, err := e.Reader().Suppressed(e.ctx, []identity.Key{email, sameValue, phone, other, email})
			must(t, err)
			var g, w []string
			for _, k := range got {
				g = append(g, k.String())
			}
			for _, k := range want {
				w = append(w, k.String())
			}
			sameStrings(t, "Suppressed", sorted(g), sorted(w))
		}
		check(email, phone)
		e.tx(t, func(s Store) error { return s.RemoveSuppressions(e.ctx, []identity.Key{email, other}) })
		check(phone)
		e.tx(t, func(s Store) error { return s.RemoveSuppressions(e.ctx, nil) })
		check(phone)
		// Many keys in one call.
		var many []identity.Key
		for i := range 1500 {
			many = append(many, identity.Key{Type: identity.AnonymousID, Value: fmt.Sprintf("a%d", i)})
		}
		e.tx(t, func(s Store) error { return s.AddSuppressions(e.ctx, many[:1000], at(0)) })
		got, err := e.Reader().Suppressed(e.ctx, many)
		must(t, err)
		if len(got) != 1000 {
			t.Errorf("Suppressed of 1500 keys = %d, want 1000", len(got))
		}
	}},
}

// mergeFixture inserts merges with increasing CreatedAt.
func newMerge(id, from, into string, created time.Time) *identity.Merge {
	return &identity.Merge{ID: id, FromID: from, IntoID: into, Reason: "identifiers", CreatedAt: created}
}

func sameMerge(t *testing.T, got, want *identity.Merge) {
	t.Helper()
	if got.ID != want.ID || got.FromID != want.FromID || got.IntoID != want.IntoID || got.Reason != want.Reason ||
		got.MessageID != want.MessageID || got.Actor != want.Actor || got.UndoneBy != want.UndoneBy {
		t.Errorf("merge = %+v, want %+v", got, want)
	}
	sameStrings(t, "traits_added", got.TraitsAdded, want.TraitsAdded)
	sameTime(t, "merge created_at", got.CreatedAt, want.CreatedAt)
	sameTimePtr(t, "merge undone_at", got.UndoneAt, want.UndoneAt)
}

var mergeTests = []test{
	{"Merge/RoundTrip", func(t *testing.T, e *env) {
		full := newMerge("mrg_full", "per_a", "per_b", at(1234567))
		full.Reason, full.MessageID, full.Actor, full.TraitsAdded = "manual", "msg-1", "staff:ada", []string{"company", "job title", "a.b"}
		bare := newMerge("mrg_bare", "per_c", "per_b", at(time.Hour))
		e.tx(t, func(s Store) error {
			if err := s.InsertMerge(e.ctx, full); err != nil {
				return err
			}
			return s.InsertMerge(e.ctx, bare)
		})
		for _, want := range []*identity.Merge{full, bare} {
			got, err := e.Reader().MergeByID(e.ctx, want.ID)
			must(t, err)
			sameMerge(t, got, want)
		}
		undone := at(2*time.Hour + 999)
		full.UndoneAt, full.UndoneBy = &undone, "staff:bob"
		e.tx(t, func(s Store) error { return s.UpdateMerge(e.ctx, full) })
		got, err := e.Reader().MergeByID(e.ctx, full.ID)
		must(t, err)
		sameMerge(t, got, full)
		_, err = e.Reader().MergeByID(e.ctx, "mrg_nope")
		wantCode(t, err, "not_found", "MergeByID")
	}},
	{"Merge/MergesOf", func(t *testing.T, e *env) {
		ms := []*identity.Merge{
			newMerge("mrg_1", "per_b", "per_a", at(1*time.Minute)),
			newMerge("mrg_2", "per_c", "per_a", at(2*time.Minute)),
			newMerge("mrg_3", "per_a", "per_d", at(3*time.Minute)),
			newMerge("mrg_4", "per_e", "per_f", at(4*time.Minute)),
		}
		e.tx(t, func(s Store) error {
			for _, m := range ms {
				if err := s.InsertMerge(e.ctx, m); err != nil {
					return err
				}
			}
			return nil
		})
		ids := func(ms []*identity.Merge) []string {
			var out []string
			for _, m := range ms {
				out = append(out, m.ID)
			}
			return out
		}
		for _, tc := range []struct {
			of   []string
			want []string
		}{
			{[]string{"per_a"}, []string{"mrg_3", "mrg_2", "mrg_1"}},
			{[]string{"per_a", "per_b", "per_d"}, []string{"mrg_3", "mrg_2", "mrg_1"}},
			{[]string{"per_f"}, []string{"mrg_4"}},
			{[]string{"per_x"}, nil},
			{nil, nil},
		} {
			got, err := e.Reader().MergesOf(e.ctx, tc.of)
			must(t, err)
			sameStrings(t, fmt.Sprintf("MergesOf(%v)", tc.of), ids(got), tc.want)
		}
	}},
	{"Conflict/RoundTrip", func(t *testing.T, e *env) {
		older := &identity.Conflict{ID: "cfl_1", PersonIDs: []string{"per_a", "per_b"}, Reason: "two user ids", CreatedAt: at(time.Minute),
			Keys: []identity.Key{{Type: identity.UserID, Value: "u1"}, {Type: identity.Email, Value: "ädä@example.com"}}}
		newer := &identity.Conflict{ID: "cfl_2", PersonIDs: []string{"per_c", "per_d", "per_e"}, Reason: "again", MessageID: "msg-9", CreatedAt: at(time.Hour + 5),
			Keys: []identity.Key{{Type: identity.Phone, Value: "+1555"}}}
		e.tx(t, func(s Store) error { return s.InsertConflicts(e.ctx, []*identity.Conflict{older, newer}) })
		e.tx(t, func(s Store) error { return s.InsertConflicts(e.ctx, nil) })
		got, err := e.Reader().ListConflicts(e.ctx, 10)
		must(t, err)
		if len(got) != 2 {
			t.Fatalf("ListConflicts = %d, want 2", len(got))
		}
		for i, want := range []*identity.Conflict{newer, older} {
			g := got[i]
			if g.ID != want.ID || g.Reason != want.Reason || g.MessageID != want.MessageID || !slices.Equal(g.Keys, want.Keys) {
				t.Errorf("conflict %d = %+v, want %+v", i, g, want)
			}
			sameStrings(t, "conflict person ids", g.PersonIDs, want.PersonIDs)
			sameTime(t, "conflict created_at", g.CreatedAt, want.CreatedAt)
		}
		got, err = e.Reader().ListConflicts(e.ctx, 1)
		must(t, err)
		if len(got) != 1 || got[0].ID != "cfl_2" {
			t.Errorf("ListConflicts(1) = %v, want the newest", got)
		}
	}},
}
