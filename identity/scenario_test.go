package identity_test

import (
	"context"
	"reflect"
	"slices"
	"testing"

	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/identity"
)

// group says that these events belong to one person, with exactly these
// identifiers and traits.
type group struct {
	events      []string
	identifiers []string
	traits      map[string]any
}

type scenario struct {
	name string
	// steps are request bodies, ingested one after the other.
	steps []string
	// rejected are the rejection codes expected over all steps, in order.
	rejected []string
	persons  int64
	// groups partition the stored events: one group per person.
	groups []group
	// then checks what the table cannot say; roots are the groups' person ids.
	then func(t *testing.T, w *world, roots []string)
}

func TestIdentityScenarios(t *testing.T) {
	scenarios := []scenario{
		{
			name: "anonymous page views then identify join one person",
			steps: []string{
				batch(`{"type":"page","messageId":"pv1","anonymousId":"a1","name":"Blog"}`),
				batch(`{"type":"page","messageId":"pv2","anonymousId":"a1","name":"Pricing"}`),
				batch(`{"type":"identify","messageId":"id1","anonymousId":"a1","userId":"u1","traits":{"name":"Ada"}}`),
			},
			persons: 1,
			groups: []group{{
				events:      []string{"pv1", "pv2", "id1"},
				identifiers: []string{"anonymous_id:a1", "user_id:u1"},
				traits:      map[string]any{"name": "Ada"},
			}},
			then: func(t *testing.T, w *world, roots []string) {
				if got, want := w.timelineIDs(roots[0]), []string{"id1", "pv1", "pv2"}; !slices.Equal(got, want) {
					t.Errorf("timeline = %v, want %v", got, want)
				}
			},
		},
		{
			name: "two devices of one person join when the second identifies",
			steps: []string{
				batch(`{"type":"identify","messageId":"id1","anonymousId":"a1","userId":"u1","traits":{"name":"Ada"}}`),
				batch(`{"type":"page","messageId":"pv1","anonymousId":"a1","name":"Docs"}`),
				batch(`{"type":"page","messageId":"pv2","anonymousId":"a2","name":"Pricing"}`,
					`{"type":"track","messageId":"tr2","anonymousId":"a2","event":"Clicked Trial"}`),
				batch(`{"type":"identify","messageId":"id2","anonymousId":"a2","userId":"u1"}`),
			},
			persons: 1,
			groups: []group{{
				events:      []string{"id1", "pv1", "pv2", "tr2", "id2"},
				identifiers: []string{"anonymous_id:a1", "anonymous_id:a2", "user_id:u1"},
				traits:      map[string]any{"name": "Ada"},
			}},
			then: func(t *testing.T, w *world, roots []string) {
				if got, want := w.timelineIDs(roots[0]), []string{"id1", "id2", "pv1", "pv2", "tr2"}; !slices.Equal(got, want) {
					t.Errorf("u1's timeline = %v, want a2's earlier events on it too: %v", got, want)
				}
				// a2's earlier events keep their own person, now merged.
				if pid := w.stored()["pv2"].PersonID; pid == roots[0] {
					t.Errorf("pv2 was moved to the root person %s; merges must not rewrite events", pid)
				}
				ms, err := w.ids.Merges(context.Background(), roots[0])
				if err != nil {
					t.Fatal(err)
				}
				if len(ms) != 1 || ms[0].Reason != "identifiers" || ms[0].IntoID != roots[0] || ms[0].MessageID != "id2" {
					t.Errorf("merges = %+v, want one identifiers merge into %s by id2", ms, roots[0])
				}
				if len(w.conflicts()) != 0 {
					t.Errorf("conflicts recorded for one user id")
				}
			},
		},
		{
			name: "two devices of one person in a single batch",
			steps: []string{batch(
				`{"type":"page","messageId":"pv1","anonymousId":"a1","name":"Docs"}`,
				`{"type":"page","messageId":"pv2","anonymousId":"a2","name":"Pricing"}`,
				`{"type":"identify","messageId":"id1","anonymousId":"a1","userId":"u1","traits":{"name":"Ada"}}`,
				`{"type":"identify","messageId":"id2","anonymousId":"a2","userId":"u1","traits":{"plan":"pro"}}`,
				`{"type":"track","messageId":"tr","userId":"u1","event":"Paid"}`,
			)},
			persons: 1,
			groups: []group{{
				events:      []string{"pv1", "pv2", "id1", "id2", "tr"},
				identifiers: []string{"anonymous_id:a1", "anonymous_id:a2", "user_id:u1"},
				traits:      map[string]any{"name": "Ada", "plan": "pro"},
			}},
			then: func(t *testing.T, w *world, roots []string) {
				if got, want := w.timelineIDs(roots[0]), []string{"id1", "id2", "pv1", "pv2", "tr"}; !slices.Equal(got, want) {
					t.Errorf("timeline = %v, want %v", got, want)
				}
				ms, err := w.ids.Merges(context.Background(), roots[0])
				if err != nil || len(ms) != 1 {
					t.Fatalf("merges = %v, %v; want 1", ms, err)
				}
				if _, err := w.ids.Unmerge(context.Background(), ms[0].ID, ""); err != nil {
					t.Fatalf("Unmerge of a merge made inside one batch: %v", err)
				}
				if w.persons() != 2 || w.rootOf("pv2") == w.rootOf("pv1") {
					t.Errorf("unmerge did not split the batch's merge")
				}
			},
		},
		{
			name: "form email (context.traits) then sign-up with user id and the same email on another device",
			steps: []string{
				batch(`{"type":"page","messageId":"pv1","anonymousId":"a1","name":"Event"}`),
				batch(`{"type":"track","messageId":"form","anonymousId":"a1","event":"Registered","context":{"traits":{"email":"ada@example.com"}}}`),
				batch(`{"type":"identify","messageId":"signup","anonymousId":"a9","userId":"u1","traits":{"email":"ada@example.com","plan":"trial"}}`),
			},
			persons: 1,
			groups: []group{{
				events:      []string{"pv1", "form", "signup"},
				identifiers: []string{"anonymous_id:a1", "anonymous_id:a9", "email:ada@example.com", "user_id:u1"},
				traits:      map[string]any{"email": "ada@example.com", "plan": "trial"},
			}},
		},
		{
			name: "form email (identify without user id) then sign-up with user id and the same email on another device",
			steps: []string{
				batch(`{"type":"identify","messageId":"form","anonymousId":"a1","traits":{"email":"ada@example.com","name":"Ada","company":"Acme"}}`),
				batch(`{"type":"identify","messageId":"signup","anonymousId":"a9","userId":"u1","traits":{"email":"ada@example.com","plan":"trial"}}`),
				batch(`{"type":"track","messageId":"tr","userId":"u1","event":"Trial Started"}`),
			},
			persons: 1,
			groups: []group{{
				events:      []string{"form", "signup", "tr"},
				identifiers: []string{"anonymous_id:a1", "anonymous_id:a9", "email:ada@example.com", "user_id:u1"},
				traits:      map[string]any{"email": "ada@example.com", "name": "Ada", "company": "Acme", "plan": "trial"},
			}},
		},
		{
			name: "conflicting user ids on one anonymous id stay two persons with a conflict",
			steps: []string{
				batch(`{"type":"identify","messageId":"id1","anonymousId":"a1","userId":"u1","traits":{"name":"Ada"}}`),
				batch(`{"type":"identify","messageId":"id2","anonymousId":"a1","userId":"u2","traits":{"name":"Grace"}}`),
				batch(`{"type":"track","messageId":"tr2","userId":"u2","event":"Logged In"}`),
			},
			persons: 2,
			groups: []group{
				{events: []string{"id1"}, identifiers: []string{"anonymous_id:a1", "user_id:u1"}, traits: map[string]any{"name": "Ada"}},
				{events: []string{"id2", "tr2"}, identifiers: []string{"user_id:u2"}, traits: map[string]any{"name": "Grace"}},
			},
			then: func(t *testing.T, w *world, roots []string) {
				cs := w.conflicts()
				if len(cs) != 1 {
					t.Fatalf("conflicts = %d, want 1", len(cs))
				}
				ps := slices.Clone(cs[0].PersonIDs)
				slices.Sort(ps)
				want := slices.Clone(roots)
				slices.Sort(want)
				if !slices.Equal(ps, want) || cs[0].MessageID != "id2" {
					t.Errorf("conflict = %+v, want persons %v and message id2", cs[0], want)
				}
				for _, r := range roots {
					ms, err := w.ids.Merges(context.Background(), r)
					if err != nil {
						t.Fatal(err)
					}
					if len(ms) != 0 {
						t.Errorf("person %s has merges %+v; two user ids must never merge", r, ms)
					}
				}
			},
		},
		{
			name: "alias from anonymous id to user id",
			steps: []string{
				batch(`{"type":"page","messageId":"pv1","anonymousId":"a1","name":"Home"}`),
				batch(`{"type":"alias","messageId":"al","previousId":"a1","userId":"u1"}`),
				batch(`{"type":"track","messageId":"tr","userId":"u1","event":"Signed Up"}`),
			},
			persons: 1,
			groups: []group{{
				events:      []string{"pv1", "al", "tr"},
				identifiers: []string{"anonymous_id:a1", "user_id:u1"},
				traits:      map[string]any{},
			}},
		},
		{
			name: "alias joins an anonymous person to an identified one",
			steps: []string{
				batch(`{"type":"page","messageId":"pv1","anonymousId":"a1","name":"Home"}`),
				batch(`{"type":"identify","messageId":"id1","anonymousId":"a2","userId":"u1","traits":{"name":"Ada"}}`),
				batch(`{"type":"alias","messageId":"al","previousId":"a1","userId":"u1"}`),
			},
			persons: 1,
			groups: []group{{
				events:      []string{"pv1", "id1", "al"},
				identifiers: []string{"anonymous_id:a1", "anonymous_id:a2", "user_id:u1"},
				traits:      map[string]any{"name": "Ada"},
			}},
			then: func(t *testing.T, w *world, roots []string) {
				ms, err := w.ids.Merges(context.Background(), roots[0])
				if err != nil {
					t.Fatal(err)
				}
				if len(ms) != 1 || ms[0].Reason != "alias" || ms[0].IntoID != roots[0] {
					t.Errorf("merges = %+v, want one alias merge into %s", ms, roots[0])
				}
			},
		},
		{
			name: "email addresses match whatever their case and spaces",
			steps: []string{
				batch(`{"type":"identify","messageId":"id1","anonymousId":"a1","traits":{"email":"Ada@Example.COM"}}`),
				batch(`{"type":"identify","messageId":"id2","anonymousId":"a2","traits":{"email":"  ada@example.com "}}`),
				batch(`{"type":"track","messageId":"tr","anonymousId":"a3","event":"Downloaded","context":{"traits":{"email":"ADA@EXAMPLE.COM"}}}`),
			},
			persons: 1,
			groups: []group{{
				events:      []string{"id1", "id2", "tr"},
				identifiers: []string{"anonymous_id:a1", "anonymous_id:a2", "anonymous_id:a3", "email:ada@example.com"},
				traits:      map[string]any{"email": "  ada@example.com "},
			}},
			then: func(t *testing.T, w *world, roots []string) {
				for _, v := range []string{"ada@example.com", "ADA@example.com", " Ada@Example.Com "} {
					p, err := w.lookup(identity.Email, v)
					if err != nil || p.Person.ID != roots[0] {
						t.Errorf("Lookup(email %q) = %v, %v; want %s", v, p, err, roots[0])
					}
				}
			},
		},
	}

	// Placeholder values that SDK bugs send for everyone never join people:
	// two people who both send one of them, each with their own user id,
	// stay two persons and no conflict is recorded.
	for _, v := range []string{`"null"`, `"undefined"`, `"0"`, `"-1"`, `"anonymous"`, `""`, `"00000000-0000-0000-0000-000000000000"`, `"  NULL "`, `"Undefined"`, `0`, `-1`, `null`} {
		scenarios = append(scenarios, scenario{
			name: "blocked anonymousId " + v + " never matches",
			steps: []string{
				batch(`{"type":"identify","messageId":"alice","anonymousId":` + v + `,"userId":"alice","traits":{"name":"Alice"}}`),
				batch(`{"type":"identify","messageId":"bob","anonymousId":` + v + `,"userId":"bob","traits":{"name":"Bob"}}`),
				batch(`{"type":"track","messageId":"alice2","anonymousId":` + v + `,"userId":"alice","event":"Played"}`),
			},
			persons: 2,
			groups: []group{
				{events: []string{"alice", "alice2"}, identifiers: []string{"user_id:alice"}, traits: map[string]any{"name": "Alice"}},
				{events: []string{"bob"}, identifiers: []string{"user_id:bob"}, traits: map[string]any{"name": "Bob"}},
			},
			then: func(t *testing.T, w *world, roots []string) {
				if n := len(w.conflicts()); n != 0 {
					t.Errorf("%d conflicts recorded for a placeholder id", n)
				}
			},
		})
	}
	for _, v := range []string{"null", "undefined", "0", "-1", "anonymous", "00000000-0000-0000-0000-000000000000"} {
		scenarios = append(scenarios, scenario{
			name: "blocked userId " + v + " never matches",
			steps: []string{
				batch(`{"type":"identify","messageId":"p1","anonymousId":"a1","userId":"` + v + `"}`),
				batch(`{"type":"identify","messageId":"p2","anonymousId":"a2","userId":"` + v + `"}`),
				batch(`{"type":"track","messageId":"only","userId":"` + v + `","event":"x"}`),
			},
			rejected: []string{events.CodeMissingIdentity},
			persons:  2,
			groups: []group{
				{events: []string{"p1"}, identifiers: []string{"anonymous_id:a1"}, traits: map[string]any{}},
				{events: []string{"p2"}, identifiers: []string{"anonymous_id:a2"}, traits: map[string]any{}},
			},
		})
	}

	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			var codes []string
			for _, body := range sc.steps {
				res := w.send(body)
				for _, r := range res.Rejected {
					codes = append(codes, r.Code)
				}
			}
			if !slices.Equal(codes, sc.rejected) {
				t.Fatalf("rejections = %v, want %v", codes, sc.rejected)
			}
			if got := w.persons(); got != sc.persons {
				t.Errorf("persons = %d, want %d", got, sc.persons)
			}
			roots := checkGroups(t, w, sc.groups)
			if sc.then != nil && !t.Failed() {
				sc.then(t, w, roots)
			}
		})
	}
}

// checkGroups asserts that the stored events are exactly the groups' events,
// that each group's events resolve to one person and different groups to
// different persons, and each person's identifiers and traits. It returns
// the groups' person ids.
func checkGroups(t *testing.T, w *world, groups []group) []string {
	t.Helper()
	stored := w.stored()
	listed := map[string]bool{}
	roots := make([]string, len(groups))
	for gi, g := range groups {
		for _, mid := range g.events {
			listed[mid] = true
			if stored[mid] == nil {
				t.Errorf("group %d: event %s was not stored", gi, mid)
				continue
			}
			r := w.rootOf(mid)
			if roots[gi] == "" {
				roots[gi] = r
			} else if r != roots[gi] {
				t.Errorf("group %d: event %s belongs to %s, want %s (the person of %s)", gi, mid, r, roots[gi], g.events[0])
			}
		}
	}
	for mid := range stored {
		if !listed[mid] {
			t.Errorf("event %s was stored but is in no group", mid)
		}
	}
	for i := range roots {
		for j := i + 1; j < len(roots); j++ {
			if roots[i] != "" && roots[i] == roots[j] {
				t.Errorf("groups %d and %d resolve to one person %s, want two", i, j, roots[i])
			}
		}
	}
	for gi, g := range groups {
		if roots[gi] == "" {
			continue
		}
		p := w.profile(roots[gi])
		if got := identSet(p); !slices.Equal(got, g.identifiers) {
			t.Errorf("group %d identifiers = %v, want %v", gi, got, g.identifiers)
		}
		if g.traits != nil {
			if got := traitsOf(t, p); !reflect.DeepEqual(got, g.traits) {
				t.Errorf("group %d traits = %v, want %v", gi, got, g.traits)
			}
		}
	}
	return roots
}
