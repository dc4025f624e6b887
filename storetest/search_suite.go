package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/identity"
)

// searchFixture: three root persons and one merged into per_1.
func searchFixture(t *testing.T, e *env) {
	p3 := person("per_3", `{"plan": "free"}`, at(3*time.Hour))
	p3.RootID, p3.MergedInto = "per_1", "per_1"
	e.createPersons(t,
		person("per_1", `{"plan": "pro", "a.b": "dot", "with space": "yes", "n": 42, "vip": true, "ratio": 1.5}`, at(1*time.Hour)),
		person("per_2", `{"plan": "free", "a": {"b": "nested"}}`, at(2*time.Hour)),
		p3,
		person("per_4", `{"plan": "pro", "vip": false}`, at(4*time.Hour)),
	)
	e.addIdentifiers(t,
		ident(identity.Email, "ada@example.com", "per_1"),
		ident(identity.UserID, "u-1", "per_1"),
		ident(identity.Email, "bob@example.org", "per_2"),
		ident(identity.AnonymousID, "anon-2", "per_2"),
		ident(identity.AnonymousID, "anon-3", "per_3"),
		ident(identity.Email, "ada.old@example.com", "per_3"),
		ident(identity.Phone, "+15551234", "per_4"),
	)
}

var searchTests = []test{
	{"Search/Filters", func(t *testing.T, e *env) {
		searchFixture(t, e)
		for _, tc := range []struct {
			name string
			q    identity.PersonQuery
			want []string
		}{
			{"roots only, last seen first", identity.PersonQuery{}, []string{"per_4", "per_2", "per_1"}},
			{"exact email", identity.PersonQuery{Search: "ada@example.com"}, []string{"per_1"}},
			{"email prefix, any case", identity.PersonQuery{Search: "ADA"}, []string{"per_1"}},
			{"email prefix with spaces around", identity.PersonQuery{Search: "  bob@ "}, []string{"per_2"}},
			{"anonymous id", identity.PersonQuery{Search: "anon-2"}, []string{"per_2"}},
			{"identifier of a merged person finds its root", identity.PersonQuery{Search: "anon-3"}, []string{"per_1"}},
			{"user id", identity.PersonQuery{Search: "u-1"}, []string{"per_1"}},
			{"phone", identity.PersonQuery{Search: "+15551234"}, []string{"per_4"}},
			{"person id", identity.PersonQuery{Search: "per_2"}, []string{"per_2"}},
			{"merged person id finds its root", identity.PersonQuery{Search: "per_3"}, []string{"per_1"}},
			{"prefix of a non-email finds nothing", identity.PersonQuery{Search: "anon"}, nil},
			{"nobody", identity.PersonQuery{Search: "nobody@example.com"}, nil},
			{"trait", identity.PersonQuery{TraitKey: "plan", TraitValue: "pro"}, []string{"per_4", "per_1"}},
			{"trait key with a dot is one key", identity.PersonQuery{TraitKey: "a.b", TraitValue: "dot"}, []string{"per_1"}},
			{"trait key with a dot is not a path", identity.PersonQuery{TraitKey: "a.b", TraitValue: "nested"}, nil},
			{"trait key with a space", identity.PersonQuery{TraitKey: "with space", TraitValue: "yes"}, []string{"per_1"}},
			{"number trait as text", identity.PersonQuery{TraitKey: "n", TraitValue: "42"}, []string{"per_1"}},
			{"decimal trait as text", identity.PersonQuery{TraitKey: "ratio", TraitValue: "1.5"}, []string{"per_1"}},
			{"true trait as text", identity.PersonQuery{TraitKey: "vip", TraitValue: "true"}, []string{"per_1"}},
			{"false trait as text", identity.PersonQuery{TraitKey: "vip", TraitValue: "false"}, []string{"per_4"}},
			{"absent trait", identity.PersonQuery{TraitKey: "missing", TraitValue: ""}, nil},
			{"seen after (inclusive)", identity.PersonQuery{SeenAfter: at(2 * time.Hour)}, []string{"per_4", "per_2"}},
			{"seen before (exclusive)", identity.PersonQuery{SeenBefore: at(2 * time.Hour)}, []string{"per_1"}},
			{"seen between", identity.PersonQuery{SeenAfter: at(time.Hour), SeenBefore: at(4 * time.Hour)}, []string{"per_2", "per_1"}},
			{"after", identity.PersonQuery{After: &identity.PersonPosition{At: at(4 * time.Hour), ID: "per_4"}}, []string{"per_2", "per_1"}},
			{"after and limit", identity.PersonQuery{After: &identity.PersonPosition{At: at(4 * time.Hour), ID: "per_4"}, Limit: 1}, []string{"per_2"}},
			{"limit", identity.PersonQuery{Limit: 2}, []string{"per_4", "per_2"}},
			{"filters combine", identity.PersonQuery{Search: "ada", TraitKey: "plan", TraitValue: "pro", SeenBefore: at(2 * time.Hour)}, []string{"per_1"}},
			{"filters combine to nothing", identity.PersonQuery{Search: "bob", TraitKey: "plan", TraitValue: "pro"}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if tc.q.Limit == 0 {
					tc.q.Limit = 50
				}
				got, err := e.Reader().SearchPersons(e.ctx, tc.q)
				must(t, err)
				sameStrings(t, "SearchPersons", foundIDs(got), tc.want)
			})
		}
		got, err := e.Reader().SearchPersons(e.ctx, identity.PersonQuery{Limit: 10})
		must(t, err)
		for _, p := range got {
			if p.ID == "per_1" {
				samePerson(t, p.Person, person("per_1", `{"plan": "pro", "a.b": "dot", "with space": "yes", "n": 42, "vip": true, "ratio": 1.5}`, at(time.Hour)))
			}
		}
	}},
	{"Search/Pagination", func(t *testing.T, e *env) {
		var ps []*identity.Person
		var want []string
		for i := range 25 {
			id := fmt.Sprintf("per_%02d", i)
			ps = append(ps, person(id, "", at(0)))
			want = append([]string{id}, want...)
		}
		e.createPersons(t, ps...)
		// Every person has the same last seen: the id breaks the ties.
		var all []string
		var after *identity.PersonPosition
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatal("paging does not end")
			}
			got, err := e.Reader().SearchPersons(e.ctx, identity.PersonQuery{After: after, Limit: 10})
			must(t, err)
			if len(got) == 0 {
				break
			}
			all = append(all, foundIDs(got)...)
			last := got[len(got)-1]
			after = &identity.PersonPosition{At: last.LastSeenAt, ID: last.ID}
		}
		sameStrings(t, "all pages", all, want)
	}},
	{"DeletePersons", func(t *testing.T, e *env) {
		// Two trees: gone (per_x, with per_y merged in) and kept (per_z,
		// per_w). Conflicts naming any deleted person go; others stay.
		py := person("per_y", "", at(0))
		py.RootID, py.MergedInto = "per_x", "per_x"
		e.createPersons(t, person("per_x", "", at(0)), py, person("per_z", "", at(0)), person("per_w", "", at(0)))
		e.addIdentifiers(t,
			ident(identity.Email, "x@example.com", "per_x"), ident(identity.AnonymousID, "ay", "per_y"),
			ident(identity.Email, "z@example.com", "per_z"), ident(identity.AnonymousID, "aw", "per_w"))
		var evs []*events.Event
		for i, pid := range []string{"per_x", "per_y", "per_z", "per_w", "per_x", "per_z"} {
			evs = append(evs, event(fmt.Sprintf("m%d", i), pid, at(time.Duration(i)*time.Minute)))
		}
		e.tx(t, func(s Store) error {
			for _, m := range []*identity.Merge{newMerge("mrg_xy", "per_y", "per_x", at(0)), newMerge("mrg_zw", "per_w", "per_z", at(0)), newMerge("mrg_xz", "per_x", "per_z", at(0))} {
				if err := s.InsertMerge(e.ctx, m); err != nil {
					return err
				}
			}
			if err := s.InsertConflicts(e.ctx, []*identity.Conflict{
				{ID: "cfl_xz", PersonIDs: []string{"per_z", "per_x"}, Reason: "r", CreatedAt: at(0)},
				{ID: "cfl_y", PersonIDs: []string{"per_y"}, Reason: "r", CreatedAt: at(0)},
				{ID: "cfl_zw", PersonIDs: []string{"per_z", "per_w"}, Reason: "r", CreatedAt: at(0)},
			}); err != nil {
				return err
			}
			if err := s.AddSuppressions(e.ctx, []identity.Key{{Type: identity.Email, Value: "x@example.com"}}, at(0)); err != nil {
				return err
			}
			if err := s.SetCursor(e.ctx, "bus", 3); err != nil {
				return err
			}
			return s.InsertEvents(e.ctx, evs)
		})
		e.tx(t, func(s Store) error { return s.DeletePersons(e.ctx, []string{"per_x", "per_y"}) })
		e.tx(t, func(s Store) error { return s.DeletePersons(e.ctx, nil) })

		r := e.Reader()
		all := []string{"per_x", "per_y", "per_z", "per_w"}
		left, err := r.PersonsByID(e.ctx, all)
		must(t, err)
		sameStrings(t, "persons left", sorted(personIDs(left)), []string{"per_w", "per_z"})
		ids, err := r.IdentifiersOf(e.ctx, all)
		must(t, err)
		var keys []string
		for _, id := range ids {
			keys = append(keys, id.Key.String())
		}
		sameStrings(t, "identifiers left", sorted(keys), []string{"anonymous_id:aw", "email:z@example.com"})
		found, err := r.FindIdentifiers(e.ctx, []identity.Key{{Type: identity.Email, Value: "x@example.com"}, {Type: identity.AnonymousID, Value: "ay"}})
		must(t, err)
		if len(found) != 0 {
			t.Errorf("identifiers of deleted persons still found: %v", found)
		}
		tl, err := r.Timeline(e.ctx, events.TimelineQuery{PersonIDs: all, Limit: 100})
		must(t, err)
		var msgs []string
		for _, ev := range tl {
			msgs = append(msgs, ev.MessageID)
		}
		sameStrings(t, "events left", sorted(msgs), []string{"m2", "m3", "m5"})
		n, err := r.CountEvents(e.ctx)
		if err != nil || n != 3 {
			t.Errorf("CountEvents = %d, %v; want 3", n, err)
		}
		ms, err := r.MergesOf(e.ctx, all)
		must(t, err)
		if len(ms) != 1 || ms[0].ID != "mrg_zw" {
			t.Errorf("merges left = %v, want only mrg_zw", ms)
		}
		cs, err := r.ListConflicts(e.ctx, 10)
		must(t, err)
		if len(cs) != 1 || cs[0].ID != "cfl_zw" {
			t.Errorf("conflicts left = %v, want only cfl_zw", cs)
		}
		// Suppressions outlive the person: that is their point.
		sup, err := r.Suppressed(e.ctx, []identity.Key{{Type: identity.Email, Value: "x@example.com"}})
		must(t, err)
		if len(sup) != 1 {
			t.Error("DeletePersons removed a suppression")
		}
		cur, err := r.Cursor(e.ctx, "bus")
		if err != nil || cur != 3 {
			t.Errorf("cursor after delete = %d, %v", cur, err)
		}
	}},
}
