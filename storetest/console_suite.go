package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/identity"
)

// The console's people list and home charts (docs/design/console.md).

func foundIDs(ps []*identity.FoundPerson) []string {
	var ids []string
	for _, p := range ps {
		ids = append(ids, p.ID)
	}
	return ids
}

// personAt is a root person first seen at created and last seen at seen.
func personAt(id, traits string, created, seen time.Time) *identity.Person {
	p := person(id, traits, seen)
	p.CreatedAt = created
	return p
}

func merged(p *identity.Person, into string) *identity.Person {
	p.RootID, p.MergedInto = into, into
	return p
}

func (e *env) search(t *testing.T, q identity.PersonQuery) []*identity.FoundPerson {
	t.Helper()
	if q.Limit == 0 {
		q.Limit = 50
	}
	got, err := e.Reader().SearchPersons(e.ctx, q)
	must(t, err)
	return got
}

// pageAll pages through q limit at a time, as the API does with its
// cursor, and returns the ids in the order seen.
func (e *env) pageAll(t *testing.T, q identity.PersonQuery, limit int) []string {
	t.Helper()
	q.Limit = limit
	var all []string
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("paging does not end")
		}
		got := e.search(t, q)
		if len(got) == 0 {
			return all
		}
		all = append(all, foundIDs(got)...)
		last := got[len(got)-1]
		key := last.LastSeenAt
		if q.Sort.ByFirstSeen() {
			key = last.CreatedAt
		}
		q.After = &identity.PersonPosition{At: key, ID: last.ID}
	}
}

var consoleTests = []test{
	{"Console/SearchNames", func(t *testing.T, e *env) {
		e.createPersons(t,
			person("per_1", `{"name": "Ada Lovelace", "first_name": "Augusta"}`, at(1*time.Hour)),
			person("per_2", `{"first_name": "Grace", "last_name": "Hopper"}`, at(2*time.Hour)),
			person("per_3", `{"firstName": "Émile", "lastName": "Borel"}`, at(3*time.Hour)),
			person("per_4", `{"name": 42, "last_name": "Number"}`, at(4*time.Hour)),
			person("per_5", `{"plan": "no name"}`, at(5*time.Hour)),
			merged(person("per_6", `{"name": "Adam Merged"}`, at(6*time.Hour)), "per_2"),
		)
		for _, tc := range []struct {
			q    string
			want []string
		}{
			{"ada", []string{"per_1"}},
			{"ADA LOVE", []string{"per_1"}},
			{"  ada lovelace  ", []string{"per_1"}},
			{"augusta", nil}, // name wins over first_name
			{"lovelace", nil},
			{"grace h", []string{"per_2"}},
			{"émile", []string{"per_3"}},
			{"ÉMILE BOREL", []string{"per_3"}},
			{"number", []string{"per_4"}}, // a name that is not text does not count
			{"no name", nil},
			{"adam", nil}, // merged persons are not listed; their root is found by its own name
			{"a", []string{"per_1"}},
		} {
			t.Run(tc.q, func(t *testing.T) {
				sameStrings(t, "search "+tc.q, foundIDs(e.search(t, identity.PersonQuery{Search: tc.q})), tc.want)
			})
		}
		// The search name follows the traits whenever they are written.
		p := person("per_1", `{"name": "Ada King"}`, at(7*time.Hour))
		e.tx(t, func(s Store) error { return s.UpdatePersons(e.ctx, []*identity.Person{p}) })
		sameStrings(t, "old name after update", foundIDs(e.search(t, identity.PersonQuery{Search: "ada love"})), nil)
		sameStrings(t, "new name after update", foundIDs(e.search(t, identity.PersonQuery{Search: "ada k"})), []string{"per_1"})
		p.Traits = []byte(`{}`)
		e.tx(t, func(s Store) error { return s.UpdatePersons(e.ctx, []*identity.Person{p}) })
		sameStrings(t, "name removed", foundIDs(e.search(t, identity.PersonQuery{Search: "ada"})), nil)
	}},
	{"Console/SearchSorts", func(t *testing.T, e *env) {
		// created (first seen) and last seen disagree, and both have ties.
		e.createPersons(t,
			personAt("per_a", "", at(1*time.Hour), at(9*time.Hour)),
			personAt("per_b", "", at(2*time.Hour), at(8*time.Hour)),
			personAt("per_c", "", at(2*time.Hour), at(8*time.Hour)),
			personAt("per_d", "", at(3*time.Hour), at(10*time.Hour)),
			personAt("per_e", "", at(2*time.Hour), at(8*time.Hour)),
			merged(personAt("per_f", "", at(0), at(11*time.Hour)), "per_a"),
		)
		for _, tc := range []struct {
			sort identity.PersonSort
			want []string
		}{
			{"", []string{"per_d", "per_a", "per_e", "per_c", "per_b"}},
			{identity.SortLastSeen, []string{"per_d", "per_a", "per_e", "per_c", "per_b"}},
			{identity.SortLastSeenAsc, []string{"per_b", "per_c", "per_e", "per_a", "per_d"}},
			{identity.SortFirstSeen, []string{"per_d", "per_e", "per_c", "per_b", "per_a"}},
			{identity.SortFirstSeenAsc, []string{"per_a", "per_b", "per_c", "per_e", "per_d"}},
		} {
			t.Run(fmt.Sprintf("sort %q", tc.sort), func(t *testing.T) {
				q := identity.PersonQuery{Sort: tc.sort}
				sameStrings(t, "one page", foundIDs(e.search(t, q)), tc.want)
				for _, limit := range []int{1, 2, 3} {
					sameStrings(t, fmt.Sprintf("pages of %d", limit), e.pageAll(t, q, limit), tc.want)
				}
			})
		}
	}},
	{"Console/SearchPagingWithTies", func(t *testing.T, e *env) {
		// 40 persons in 4 groups of equal last seen: pages cut inside groups.
		var ps []*identity.Person
		for i := range 40 {
			ps = append(ps, person(fmt.Sprintf("per_%02d", i), "", at(time.Duration(i%4)*time.Minute)))
		}
		e.createPersons(t, ps...)
		all := e.pageAll(t, identity.PersonQuery{}, 7)
		if len(all) != 40 {
			t.Fatalf("paged through %d persons, want 40: %v", len(all), all)
		}
		seen := map[string]bool{}
		for i, id := range all {
			if seen[id] {
				t.Fatalf("%s twice", id)
			}
			seen[id] = true
			if i > 0 {
				var prev, cur int
				fmt.Sscanf(all[i-1], "per_%d", &prev)
				fmt.Sscanf(id, "per_%d", &cur)
				if prev%4 < cur%4 || prev%4 == cur%4 && prev < cur {
					t.Fatalf("%s before %s: not last seen, then id, descending", all[i-1], id)
				}
			}
		}
		sameStrings(t, "filtered pages", e.pageAll(t, identity.PersonQuery{SeenAfter: at(2 * time.Minute), Sort: identity.SortLastSeenAsc}, 3),
			[]string{"per_02", "per_06", "per_10", "per_14", "per_18", "per_22", "per_26", "per_30", "per_34", "per_38",
				"per_03", "per_07", "per_11", "per_15", "per_19", "per_23", "per_27", "per_31", "per_35", "per_39"})
	}},
	{"Console/SearchHasAccount", func(t *testing.T, e *env) {
		e.createPersons(t,
			person("per_1", "", at(1*time.Hour)),
			person("per_2", "", at(2*time.Hour)),
			person("per_3", "", at(3*time.Hour)),
			merged(person("per_4", "", at(0)), "per_3"),
		)
		// per_1 holds an account itself; per_3 through per_4, merged into it.
		e.tx(t, func(s Store) error { return s.CreateAccount(e.ctx, newAccount("per_1")) })
		e.tx(t, func(s Store) error { return s.CreateAccount(e.ctx, newAccount("per_4")) })
		sameStrings(t, "with", foundIDs(e.search(t, identity.PersonQuery{HasAccount: identity.WithAccount})), []string{"per_3", "per_1"})
		sameStrings(t, "without", foundIDs(e.search(t, identity.PersonQuery{HasAccount: identity.WithoutAccount})), []string{"per_2"})
		got := map[string]bool{}
		for _, p := range e.search(t, identity.PersonQuery{}) {
			got[p.ID] = p.HasAccount
		}
		if !got["per_1"] || got["per_2"] || !got["per_3"] || len(got) != 3 {
			t.Errorf("has_account of the list = %v, want per_1 and per_3 true, per_2 false", got)
		}
	}},
	{"Console/SearchHasAccountKept", func(t *testing.T, e *env) {
		// The engines keep has_account on the root's row; whatever moves
		// an account or a person between trees must move it too. check
		// asks every sort, both filters and the flag of the whole list,
		// a few at a time.
		check := func(step string, with ...string) {
			t.Helper()
			want := map[string]bool{}
			for _, id := range with {
				want[id] = true
			}
			all := e.pageAll(t, identity.PersonQuery{}, 1000)
			page := 1 + len(all)/60 // small pages, under pageAll's 100
			var wantWith, wantWithout []string
			for _, id := range all {
				if want[id] {
					wantWith = append(wantWith, id)
				} else {
					wantWithout = append(wantWithout, id)
				}
			}
			for _, p := range e.search(t, identity.PersonQuery{Limit: 1000}) {
				if p.HasAccount != want[p.ID] {
					t.Errorf("%s: has_account of %s = %v, want %v", step, p.ID, p.HasAccount, want[p.ID])
				}
			}
			sameStrings(t, step+": with", e.pageAll(t, identity.PersonQuery{HasAccount: identity.WithAccount}, page), wantWith)
			sameStrings(t, step+": without", e.pageAll(t, identity.PersonQuery{HasAccount: identity.WithoutAccount}, page), wantWithout)
			for _, sort := range []identity.PersonSort{identity.SortLastSeenAsc, identity.SortFirstSeen, identity.SortFirstSeenAsc} {
				every := e.pageAll(t, identity.PersonQuery{Sort: sort}, 1000)
				var with []string
				for _, id := range every {
					if want[id] {
						with = append(with, id)
					}
				}
				sameStrings(t, fmt.Sprintf("%s: with, sort %v", step, sort), e.pageAll(t, identity.PersonQuery{HasAccount: identity.WithAccount, Sort: sort}, page+1), with)
			}
		}
		// per_5 is a member of per_4 (stored before it, in the same
		// call); its account flags per_4. Accounts are made for stored
		// persons (auth.AccountStore.CreateAccount).
		e.createPersons(t,
			personAt("per_1", "", at(1*time.Hour), at(1*time.Hour)),
			merged(personAt("per_5", "", at(5*time.Hour), at(5*time.Hour)), "per_4"),
			personAt("per_2", "", at(2*time.Hour), at(2*time.Hour)),
			personAt("per_3", "", at(3*time.Hour), at(3*time.Hour)),
			personAt("per_4", "", at(4*time.Hour), at(4*time.Hour)),
		)
		check("no accounts")
		e.tx(t, func(s Store) error { return s.CreateAccount(e.ctx, newAccount("per_1")) })
		e.tx(t, func(s Store) error { return s.CreateAccount(e.ctx, newAccount("per_5")) })
		check("accounts created", "per_1", "per_4")
		e.tx(t, func(s Store) error { return s.CreateAccount(e.ctx, newAccount("per_2")) })
		check("account added", "per_1", "per_2", "per_4")

		// Merge per_1 into per_3 (UpdatePersons re-roots it), then per_3's
		// tree into per_2 (SetRoot re-roots the members).
		p1 := merged(personAt("per_1", "", at(1*time.Hour), at(1*time.Hour)), "per_3")
		e.tx(t, func(s Store) error { return s.UpdatePersons(e.ctx, []*identity.Person{p1}) })
		check("merged into per_3", "per_2", "per_3", "per_4")
		e.tx(t, func(s Store) error { return s.SetRoot(e.ctx, []string{"per_3", "per_1"}, "per_2") })
		check("merged into per_2", "per_2", "per_4")
		e.tx(t, func(s Store) error { return s.EraseAuth(e.ctx, []string{"per_2"}) })
		check("root's account erased", "per_2", "per_4")

		// Unmerge: per_3's tree becomes its own again, per_1 with it.
		e.tx(t, func(s Store) error { return s.SetRoot(e.ctx, []string{"per_3", "per_1"}, "per_3") })
		check("unmerged", "per_3", "per_4")
		e.tx(t, func(s Store) error { return s.EraseAuth(e.ctx, []string{"per_1"}) })
		check("member's account erased", "per_4")

		// Deleting the member that held per_4's account.
		e.tx(t, func(s Store) error { return s.DeletePersons(e.ctx, []string{"per_5"}) })
		check("member deleted")

		// Many accounts (a page of the flagged roots among many without):
		// the same answers as with few.
		var ps []*identity.Person
		var with []string
		for i := range 400 {
			id := fmt.Sprintf("per_m%03d", i)
			ps = append(ps, personAt(id, "", at(time.Duration(i%37)*time.Minute), at(time.Duration(i%53)*time.Minute)))
			if i%3 == 0 {
				with = append(with, id)
			}
		}
		e.createPersons(t, ps...)
		e.tx(t, func(s Store) error {
			for _, id := range with {
				if err := s.CreateAccount(e.ctx, newAccount(id)); err != nil {
					return err
				}
			}
			return nil
		})
		check("many accounts", with...)
	}},
	{"Console/SearchProperty", func(t *testing.T, e *env) {
		e.createPersons(t,
			person("per_1", "", at(1*time.Hour)),
			person("per_2", "", at(2*time.Hour)),
			person("per_3", "", at(3*time.Hour)),
			merged(person("per_4", "", at(0)), "per_3"),
			person("per_5", "", at(5*time.Hour)),
		)
		mk := func(id, person, prop string) *events.Event {
			ev := event(id, person, at(time.Minute))
			ev.PropertyID = prop
			return ev
		}
		e.tx(t, func(s Store) error {
			return s.InsertEvents(e.ctx, []*events.Event{
				mk("m1", "per_1", "prp_web"), mk("m2", "per_1", "prp_web"), mk("m3", "per_1", "prp_app"),
				mk("m4", "per_2", "prp_app"), mk("m5", "per_4", "prp_web"),
			})
		})
		e.tx(t, func(s Store) error {
			return s.InsertEvents(e.ctx, []*events.Event{mk("m6", "per_2", "prp_app"), mk("m7", "per_5", "prp_docs")})
		})
		for _, tc := range []struct {
			prop string
			want []string
		}{
			{"prp_web", []string{"per_3", "per_1"}}, // per_3 through its merged per_4
			{"prp_app", []string{"per_2", "per_1"}},
			{"prp_docs", []string{"per_5"}},
			{"prp_none", nil},
		} {
			sameStrings(t, tc.prop, foundIDs(e.search(t, identity.PersonQuery{PropertyID: tc.prop})), tc.want)
		}
		sameStrings(t, "property and cursor", e.pageAll(t, identity.PersonQuery{PropertyID: "prp_app"}, 1), []string{"per_2", "per_1"})
		e.tx(t, func(s Store) error { return s.DeletePersons(e.ctx, []string{"per_1"}) })
		sameStrings(t, "after delete", foundIDs(e.search(t, identity.PersonQuery{PropertyID: "prp_app"})), []string{"per_2"})
	}},
	{"Console/SearchPropertyRemembered", func(t *testing.T, e *env) {
		// The engines remember which pairs exist so that ingest need not
		// write them again; what they remember must follow rollbacks and
		// deletes, or a person would go missing from the filter.
		e.createPersons(t, person("per_1", "", at(1*time.Hour)), person("per_2", "", at(2*time.Hour)))
		mk := func(id, person, prop string) *events.Event {
			ev := event(id, person, at(time.Minute))
			ev.PropertyID = prop
			return ev
		}
		undone := errors.New("undone")
		if err := e.InTx(e.ctx, func(s Store) error {
			must(t, s.InsertEvents(e.ctx, []*events.Event{mk("m1", "per_1", "prp_web")}))
			return undone
		}); !errors.Is(err, undone) {
			t.Fatalf("rolled-back transaction = %v", err)
		}
		sameStrings(t, "after rollback", foundIDs(e.search(t, identity.PersonQuery{PropertyID: "prp_web"})), nil)
		e.tx(t, func(s Store) error {
			return s.InsertEvents(e.ctx, []*events.Event{mk("m1", "per_1", "prp_web"), mk("m2", "per_2", "prp_web")})
		})
		sameStrings(t, "written after the rollback", foundIDs(e.search(t, identity.PersonQuery{PropertyID: "prp_web"})), []string{"per_2", "per_1"})
		e.tx(t, func(s Store) error { return s.DeletePersons(e.ctx, []string{"per_2"}) })
		e.createPersons(t, person("per_2", "", at(3*time.Hour)))
		e.tx(t, func(s Store) error { return s.InsertEvents(e.ctx, []*events.Event{mk("m3", "per_2", "prp_web")}) })
		sameStrings(t, "written again after a delete", foundIDs(e.search(t, identity.PersonQuery{PropertyID: "prp_web"})), []string{"per_2", "per_1"})
	}},
	{"Console/SearchTraitIndex", func(t *testing.T, e *env) {
		long := strings.Repeat("v", 300)
		e.createPersons(t,
			person("per_1", `{"plan": "pro", "note": "`+long+`"}`, at(1*time.Hour)),
			person("per_2", `{"plan": "pro", "n": 7}`, at(2*time.Hour)),
			person("per_3", `{"plan": "free"}`, at(3*time.Hour)),
		)
		trait := func(k, v string) []string {
			return foundIDs(e.search(t, identity.PersonQuery{TraitKey: k, TraitValue: v}))
		}
		sameStrings(t, "pro", trait("plan", "pro"), []string{"per_2", "per_1"})
		sameStrings(t, "value past the index", trait("note", long), []string{"per_1"})
		// The index follows trait writes, and only the traits' owner counts.
		p1 := person("per_1", `{"plan": "free", "n": 7}`, at(1*time.Hour))
		e.tx(t, func(s Store) error { return s.UpdatePersons(e.ctx, []*identity.Person{p1}) })
		sameStrings(t, "pro after update", trait("plan", "pro"), []string{"per_2"})
		sameStrings(t, "free after update", trait("plan", "free"), []string{"per_3", "per_1"})
		sameStrings(t, "number after update", trait("n", "7"), []string{"per_2", "per_1"})
		sameStrings(t, "removed value", trait("note", long), nil)
		e.tx(t, func(s Store) error { return s.DeletePersons(e.ctx, []string{"per_3"}) })
		sameStrings(t, "after delete", trait("plan", "free"), []string{"per_1"})

		// Past identity.TraitDriveLimit matches the query takes its other
		// shape; the answer is the same.
		var ps []*identity.Person
		for i := range identity.TraitDriveLimit + 10 {
			ps = append(ps, person(fmt.Sprintf("per_b%05d", i), `{"plan": "bulk"}`, at(time.Duration(i%50)*time.Minute)))
		}
		e.createPersons(t, ps...)
		got := e.search(t, identity.PersonQuery{TraitKey: "plan", TraitValue: "bulk", Limit: 3})
		sameStrings(t, "bulk first page", foundIDs(got), []string{"per_b01999", "per_b01949", "per_b01899"})
		if n := len(e.pageAll(t, identity.PersonQuery{TraitKey: "plan", TraitValue: "bulk"}, 500)); n != identity.TraitDriveLimit+10 {
			t.Errorf("paged through %d bulk persons, want %d", n, identity.TraitDriveLimit+10)
		}
	}},
	{"Console/SearchCombined", func(t *testing.T, e *env) {
		e.createPersons(t,
			person("per_1", `{"name": "Ada One", "plan": "pro"}`, at(1*time.Hour)),
			person("per_2", `{"name": "Ada Two", "plan": "free"}`, at(2*time.Hour)),
			person("per_3", `{"name": "Ada Three", "plan": "pro"}`, at(3*time.Hour)),
			person("per_4", `{"name": "Bob", "plan": "pro"}`, at(4*time.Hour)),
		)
		e.addIdentifiers(t, ident(identity.Email, "ada@example.com", "per_4"))
		e.tx(t, func(s Store) error { return s.CreateAccount(e.ctx, newAccount("per_3")) })
		e.tx(t, func(s Store) error {
			return s.InsertEvents(e.ctx, []*events.Event{event("m1", "per_1", at(0)), event("m2", "per_3", at(0))})
		})
		// "ada" is a name prefix of three and an email prefix of the fourth.
		sameStrings(t, "name or email", foundIDs(e.search(t, identity.PersonQuery{Search: "ada"})), []string{"per_4", "per_3", "per_2", "per_1"})
		sameStrings(t, "and trait", foundIDs(e.search(t, identity.PersonQuery{Search: "ada", TraitKey: "plan", TraitValue: "pro"})), []string{"per_4", "per_3", "per_1"})
		sameStrings(t, "and property", foundIDs(e.search(t, identity.PersonQuery{Search: "ada", TraitKey: "plan", TraitValue: "pro", PropertyID: testProperty})), []string{"per_3", "per_1"})
		sameStrings(t, "and no account", foundIDs(e.search(t, identity.PersonQuery{Search: "ada", PropertyID: testProperty, HasAccount: identity.WithoutAccount})), []string{"per_1"})
		sameStrings(t, "oldest first, paged", e.pageAll(t, identity.PersonQuery{Search: "ada", Sort: identity.SortLastSeenAsc}, 1), []string{"per_1", "per_2", "per_3", "per_4"})
	}},
	{"Console/Stats", func(t *testing.T, e *env) {
		r := e.Reader()
		day := 24 * time.Hour
		// Empty: no rows, no error, empty (not nil) answers.
		h, err := r.EventsPerHour(e.ctx, at(0))
		must(t, err)
		top, err := r.TopEvents(e.ctx, at(0), 10)
		must(t, err)
		if h == nil || top == nil || len(h)+len(top) != 0 {
			t.Errorf("empty store: per hour %v, top %v; want two empty lists", h, top)
		}

		midnight := base.Truncate(day)
		e.createPersons(t,
			personAt("per_1", "", midnight.Add(-day+time.Hour), at(0)),
			personAt("per_2", "", midnight.Add(time.Hour), at(0)),
			personAt("per_3", "", midnight.Add(2*time.Hour), at(0)),
			merged(personAt("per_4", "", midnight.Add(3*time.Hour), at(0)), "per_3"),
			personAt("per_5", "", midnight.Add(day+time.Minute), at(0)),
		)
		ppd, err := r.PersonsPerDay(e.ctx, midnight)
		must(t, err)
		if got := fmt.Sprint(dayCounts(ppd)); got != fmt.Sprint([]string{"2026-03-14:2", "2026-03-15:1"}) {
			t.Errorf("PersonsPerDay = %v", got)
		}
		a1, a2, a3 := newAccount("per_1"), newAccount("per_2"), newAccount("per_5")
		a1.CreatedAt, a2.CreatedAt, a3.CreatedAt = midnight.Add(-time.Hour), midnight.Add(5*time.Hour), midnight.Add(day+2*time.Hour)
		e.tx(t, func(s Store) error {
			for _, a := range []*auth.Account{a1, a2, a3} {
				if err := s.CreateAccount(e.ctx, a); err != nil {
					return err
				}
			}
			return nil
		})
		apd, err := r.AccountsPerDay(e.ctx, midnight)
		must(t, err)
		if got := fmt.Sprint(dayCounts(apd)); got != fmt.Sprint([]string{"2026-03-14:1", "2026-03-15:1"}) {
			t.Errorf("AccountsPerDay = %v", got)
		}

		// Events are counted by when they were received, in seq order.
		hour := base.Truncate(time.Hour)
		var evs []*events.Event
		add := func(name, typ, prop string, received time.Time) {
			ev := event(fmt.Sprintf("m%d", len(evs)), "per_1", received.Add(-time.Hour))
			ev.Event, ev.Type, ev.PropertyID, ev.ReceivedAt = name, typ, prop, received
			if typ != events.TypeTrack {
				ev.Event, ev.Name = "", name
			}
			evs = append(evs, ev)
		}
		add("Old", events.TypeTrack, "prp_web", hour.Add(-3*time.Hour))
		add("Signed Up", events.TypeTrack, "prp_web", hour.Add(-time.Hour+time.Minute))
		add("Clicked", events.TypeTrack, "prp_web", hour.Add(-time.Hour+2*time.Minute))
		add("Clicked", events.TypeTrack, "prp_app", hour.Add(-time.Hour+3*time.Minute))
		add("Home", events.TypePage, "prp_web", hour.Add(time.Minute))
		add("Clicked", events.TypeTrack, "prp_web", hour.Add(2*time.Minute))
		add("Apply", events.TypeTrack, "prp_app", hour.Add(3*time.Minute))
		add("Signed Up", events.TypeTrack, "prp_app", hour.Add(4*time.Minute))
		for _, ev := range evs {
			e.tx(t, func(s Store) error { return s.InsertEvents(e.ctx, []*events.Event{ev}) })
		}
		h, err = r.EventsPerHour(e.ctx, hour.Add(-time.Hour))
		must(t, err)
		var hs []string
		for _, c := range h {
			hs = append(hs, fmt.Sprintf("%s %s %d", c.Hour.UTC().Format("15:04"), c.PropertyID, c.Count))
		}
		sameStrings(t, "EventsPerHour", hs, []string{"14:00 prp_app 1", "14:00 prp_web 2", "15:00 prp_app 2", "15:00 prp_web 2"})
		h, err = r.EventsPerHour(e.ctx, hour.Add(time.Hour))
		must(t, err)
		if len(h) != 0 {
			t.Errorf("EventsPerHour from the future = %v", h)
		}

		top, err = r.TopEvents(e.ctx, hour.Add(-time.Hour), 10)
		must(t, err)
		var ts []string
		for _, c := range top {
			ts = append(ts, fmt.Sprintf("%s %d", c.Event, c.Count))
		}
		sameStrings(t, "TopEvents", ts, []string{"Clicked 3", "Signed Up 2", "Apply 1"})
		top, err = r.TopEvents(e.ctx, hour.Add(-4*time.Hour), 2)
		must(t, err)
		if len(top) != 2 || top[0].Event != "Clicked" || top[1].Event != "Signed Up" {
			t.Errorf("TopEvents limit 2 = %v", top)
		}
	}},
}

func dayCounts(ds []identity.DayCount) []string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s:%d", d.Day.UTC().Format(time.DateOnly), d.Count))
	}
	return out
}
