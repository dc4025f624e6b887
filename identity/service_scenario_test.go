package identity_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/identity"
)

// TestIdentityServiceScenarios drives the staff actions of identity.Service
// (merge, unmerge, delete, suppress) over people made by real ingest.
func TestIdentityServiceScenarios(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, w *world)
	}{
		{"manual merge then unmerge restores both persons", func(t *testing.T, w *world) {
			w.send(batch(
				`{"type":"identify","messageId":"ada","anonymousId":"a1","traits":{"name":"Ada","company":"Acme"}}`,
				`{"type":"page","messageId":"ada-pv","anonymousId":"a1","name":"Home"}`,
				`{"type":"identify","messageId":"bob","anonymousId":"a2","userId":"u2","traits":{"plan":"pro","company":"Other"}}`,
				`{"type":"track","messageId":"bob-tr","anonymousId":"a2","event":"Paid"}`,
			))
			p1, p2 := w.rootOf("ada"), w.rootOf("bob")
			beforeIdents1, beforeIdents2 := identSet(w.profile(p1)), identSet(w.profile(p2))
			beforeTraits1, beforeTraits2 := traitsOf(t, w.profile(p1)), traitsOf(t, w.profile(p2))

			m, err := w.ids.Merge(ctx, identity.MergeParams{FromID: p2, IntoID: p1, Actor: "staff:test"})
			if err != nil {
				t.Fatalf("Merge: %v", err)
			}
			if m.Reason != "manual" || m.Actor != "staff:test" || m.FromID != p2 || m.IntoID != p1 {
				t.Errorf("merge = %+v", m)
			}
			if got := w.persons(); got != 1 {
				t.Errorf("persons after merge = %d, want 1", got)
			}
			if got := w.rootOf("bob-tr"); got != p1 {
				t.Errorf("bob's event resolves to %s after merge, want %s", got, p1)
			}
			merged := w.profile(p2)
			if merged.Person.ID != p1 || !slices.Equal(merged.MergedIDs, []string{p2}) {
				t.Errorf("Person(%s) after merge = %s merged %v", p2, merged.Person.ID, merged.MergedIDs)
			}
			if got, want := traitsOf(t, merged), map[string]any{"name": "Ada", "company": "Acme", "plan": "pro"}; !reflect.DeepEqual(got, want) {
				t.Errorf("merged traits = %v, want %v (into keeps its own company)", got, want)
			}
			if merged.Person.UserID != "u2" {
				t.Errorf("merged person user id = %q, want u2", merged.Person.UserID)
			}
			if got, want := w.timelineIDs(p1), []string{"ada", "ada-pv", "bob", "bob-tr"}; !slices.Equal(got, want) {
				t.Errorf("merged timeline = %v, want %v", got, want)
			}

			if _, err := w.ids.Unmerge(ctx, m.ID, "staff:test"); err != nil {
				t.Fatalf("Unmerge: %v", err)
			}
			if got := w.persons(); got != 2 {
				t.Errorf("persons after unmerge = %d, want 2", got)
			}
			for _, c := range []struct {
				person        string
				idents        []string
				traits        map[string]any
				timeline      []string
				userID        string
				eventsOfOwner []string
			}{
				{p1, beforeIdents1, beforeTraits1, []string{"ada", "ada-pv"}, "", []string{"ada", "ada-pv"}},
				{p2, beforeIdents2, beforeTraits2, []string{"bob", "bob-tr"}, "u2", []string{"bob", "bob-tr"}},
			} {
				prof := w.profile(c.person)
				if prof.Person.ID != c.person || len(prof.MergedIDs) != 0 || prof.Person.MergedInto != "" {
					t.Errorf("Person(%s) after unmerge = %s (merged %v, into %q)", c.person, prof.Person.ID, prof.MergedIDs, prof.Person.MergedInto)
				}
				if got := identSet(prof); !slices.Equal(got, c.idents) {
					t.Errorf("%s identifiers after unmerge = %v, want %v", c.person, got, c.idents)
				}
				if got := traitsOf(t, prof); !reflect.DeepEqual(got, c.traits) {
					t.Errorf("%s traits after unmerge = %v, want %v", c.person, got, c.traits)
				}
				if prof.Person.UserID != c.userID {
					t.Errorf("%s user id after unmerge = %q, want %q", c.person, prof.Person.UserID, c.userID)
				}
				if got := w.timelineIDs(c.person); !slices.Equal(got, c.timeline) {
					t.Errorf("%s timeline after unmerge = %v, want %v", c.person, got, c.timeline)
				}
				for _, mid := range c.eventsOfOwner {
					if got := w.rootOf(mid); got != c.person {
						t.Errorf("event %s resolves to %s after unmerge, want %s", mid, got, c.person)
					}
				}
			}
			ms, err := w.ids.Merges(ctx, p1)
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != 1 || ms[0].UndoneAt == nil || ms[0].UndoneBy != "staff:test" {
				t.Errorf("merge history after unmerge = %+v, want the merge marked undone", ms)
			}

			_, err = w.ids.Unmerge(ctx, m.ID, "staff:test")
			wantCode(t, err, onramp.ECONFLICT)
		}},
		{"unmerge of an automatic merge gives the second device back its events", func(t *testing.T, w *world) {
			w.send(batch(`{"type":"identify","messageId":"id1","anonymousId":"a1","userId":"u1"}`))
			w.send(batch(`{"type":"page","messageId":"pv2","anonymousId":"a2","name":"Pricing"}`))
			w.send(batch(`{"type":"identify","messageId":"id2","anonymousId":"a2","userId":"u1","traits":{"plan":"pro"}}`))
			root := w.rootOf("id1")
			ms, err := w.ids.Merges(ctx, root)
			if err != nil || len(ms) != 1 {
				t.Fatalf("merges = %v, %v; want 1", ms, err)
			}
			if _, err := w.ids.Unmerge(ctx, ms[0].ID, "staff:test"); err != nil {
				t.Fatalf("Unmerge: %v", err)
			}
			other := w.rootOf("pv2")
			if other == root {
				t.Fatalf("pv2 still resolves to %s after unmerge", root)
			}
			if got, want := w.timelineIDs(other), []string{"pv2"}; !slices.Equal(got, want) {
				t.Errorf("a2's timeline = %v, want %v", got, want)
			}
			if got, want := w.timelineIDs(root), []string{"id1", "id2"}; !slices.Equal(got, want) {
				t.Errorf("u1's timeline = %v, want %v", got, want)
			}
			if got, want := identSet(w.profile(other)), []string{"anonymous_id:a2"}; !slices.Equal(got, want) {
				t.Errorf("a2's identifiers = %v, want %v", got, want)
			}
			if got, want := identSet(w.profile(root)), []string{"anonymous_id:a1", "user_id:u1"}; !slices.Equal(got, want) {
				t.Errorf("u1's identifiers = %v, want %v", got, want)
			}
		}},
		{"an unmerge sticks: the next event joining the two records a conflict", func(t *testing.T, w *world) {
			w.send(batch(`{"type":"identify","messageId":"id1","anonymousId":"a1","userId":"u1"}`))
			w.send(batch(`{"type":"page","messageId":"pv2","anonymousId":"a2"}`))
			w.send(batch(`{"type":"identify","messageId":"id2","anonymousId":"a2","userId":"u1"}`))
			root := w.rootOf("id1")
			ms, err := w.ids.Merges(ctx, root)
			if err != nil || len(ms) != 1 {
				t.Fatalf("merges = %v, %v", ms, err)
			}
			if _, err := w.ids.Unmerge(ctx, ms[0].ID, "staff:test"); err != nil {
				t.Fatal(err)
			}
			other := w.rootOf("pv2")
			w.send(batch(`{"type":"track","messageId":"again","anonymousId":"a2","userId":"u1","event":"x"}`))
			if got := w.persons(); got != 2 {
				t.Errorf("persons = %d, want 2: staff's unmerge was undone by the next event", got)
			}
			if w.rootOf("again") != root || w.rootOf("pv2") != other {
				t.Errorf("again -> %s, pv2 -> %s; want %s and %s", w.rootOf("again"), w.rootOf("pv2"), root, other)
			}
			cs := w.conflicts()
			if len(cs) != 1 || cs[0].MessageID != "again" {
				t.Errorf("conflicts = %+v, want one for the joining event", cs)
			}
			// Staff can still merge them by hand.
			if _, err := w.ids.Merge(ctx, identity.MergeParams{FromID: other, IntoID: root}); err != nil {
				t.Errorf("manual merge after unmerge: %v", err)
			}
		}},
		{"manual merge of two persons with different user ids is refused", func(t *testing.T, w *world) {
			w.send(batch(
				`{"type":"identify","messageId":"m1","anonymousId":"a1","userId":"u1"}`,
				`{"type":"identify","messageId":"m2","anonymousId":"a2","userId":"u2"}`,
			))
			p1, p2 := w.rootOf("m1"), w.rootOf("m2")
			_, err := w.ids.Merge(ctx, identity.MergeParams{FromID: p2, IntoID: p1, Actor: "staff:test"})
			wantCode(t, err, onramp.ECONFLICT)
			if got := w.persons(); got != 2 {
				t.Errorf("persons = %d, want 2", got)
			}
			if w.rootOf("m2") != p2 {
				t.Errorf("refused merge moved m2")
			}
		}},
		{"manual merge of a person into itself is refused", func(t *testing.T, w *world) {
			w.send(batch(`{"type":"identify","messageId":"m1","anonymousId":"a1","userId":"u1"}`))
			p1 := w.rootOf("m1")
			_, err := w.ids.Merge(ctx, identity.MergeParams{FromID: p1, IntoID: p1})
			wantCode(t, err, onramp.ECONFLICT)
			_, err = w.ids.Merge(ctx, identity.MergeParams{FromID: "per_nobody", IntoID: p1})
			wantCode(t, err, onramp.ENOTFOUND)
			_, err = w.ids.Unmerge(ctx, "mrg_nobody", "")
			wantCode(t, err, onramp.ENOTFOUND)
		}},
		{"delete leaves nothing of the person", func(t *testing.T, w *world) {
			w.send(batch(
				`{"type":"identify","messageId":"id1","anonymousId":"a1","userId":"u1","traits":{"email":"ada@example.com","phone":"+44 20 7946 0000"}}`,
				`{"type":"page","messageId":"pv1","anonymousId":"a1","name":"Home"}`,
			))
			w.send(batch(`{"type":"page","messageId":"pv2","anonymousId":"a2","name":"Docs"}`))
			w.send(batch(`{"type":"identify","messageId":"id2","anonymousId":"a2","userId":"u1"}`))
			// A conflict that names the person, and someone else who must stay.
			w.send(batch(`{"type":"identify","messageId":"c1","anonymousId":"a1","userId":"u2"}`))
			w.send(batch(`{"type":"identify","messageId":"other","anonymousId":"b1","userId":"bob"}`))
			root := w.rootOf("id1")
			mergesBefore, err := w.ids.Merges(ctx, root)
			if err != nil || len(mergesBefore) != 1 {
				t.Fatalf("merges before delete = %v, %v", mergesBefore, err)
			}
			if len(w.conflicts()) != 1 {
				t.Fatalf("want one conflict before delete")
			}
			members, err := w.ids.Members(ctx, root)
			if err != nil {
				t.Fatal(err)
			}

			deleted, err := w.ids.Delete(ctx, root)
			if err != nil {
				t.Fatalf("Delete: %v", err)
			}
			slices.Sort(deleted)
			if !slices.Equal(deleted, members) {
				t.Errorf("deleted = %v, want the whole tree %v", deleted, members)
			}
			for _, k := range []identity.Key{{identity.AnonymousID, "a1"}, {identity.AnonymousID, "a2"}, {identity.UserID, "u1"}, {identity.Email, "ada@example.com"}, {identity.Phone, "+442079460000"}} {
				_, err := w.lookup(k.Type, k.Value)
				if onramp.ErrorCode(err) != onramp.ENOTFOUND {
					t.Errorf("Lookup(%s) after delete = %v, want not found", k, err)
				}
			}
			for _, id := range members {
				_, err := w.ids.Person(ctx, id)
				if onramp.ErrorCode(err) != onramp.ENOTFOUND {
					t.Errorf("Person(%s) after delete = %v, want not found", id, err)
				}
			}
			if n := w.eventCount(); n != 2 {
				t.Errorf("events after delete = %d, want 2 (u2's and bob's)", n)
			}
			for mid := range w.stored() {
				if mid != "c1" && mid != "other" {
					t.Errorf("event %s of the deleted person is still stored", mid)
				}
			}
			if _, err := w.read.MergeByID(ctx, mergesBefore[0].ID); onramp.ErrorCode(err) != onramp.ENOTFOUND {
				t.Errorf("MergeByID after delete = %v, want not found", err)
			}
			if ms, err := w.read.MergesOf(ctx, members); err != nil || len(ms) != 0 {
				t.Errorf("MergesOf after delete = %v, %v", ms, err)
			}
			if n := len(w.conflicts()); n != 0 {
				t.Errorf("%d conflicts naming the deleted person remain", n)
			}
			if got := w.persons(); got != 2 {
				t.Errorf("persons after delete = %d, want 2", got)
			}
			if p, err := w.lookup(identity.UserID, "bob"); err != nil || p.Person.ID != w.rootOf("other") {
				t.Errorf("bob after delete = %v, %v", p, err)
			}
			_, err = w.ids.Delete(ctx, root)
			wantCode(t, err, onramp.ENOTFOUND)
		}},
		{"suppressed identifiers are refused until unsuppressed", func(t *testing.T, w *world) {
			w.send(batch(`{"type":"identify","messageId":"id1","anonymousId":"a1","userId":"u1","traits":{"email":"ada@example.com"}}`))
			root := w.rootOf("id1")
			keys, err := w.ids.Suppress(ctx, identity.SuppressParams{PersonID: root})
			if err != nil {
				t.Fatalf("Suppress: %v", err)
			}
			if len(keys) != 3 {
				t.Errorf("suppressed keys = %v, want 3", keys)
			}
			before := w.eventCount()
			later := batch(
				`{"type":"track","messageId":"s1","userId":"u1","event":"x"}`,
				`{"type":"page","messageId":"s2","anonymousId":"a1"}`,
				`{"type":"track","messageId":"s3","anonymousId":"new-device","event":"Form","context":{"traits":{"email":"ADA@example.com"}}}`,
				`{"type":"identify","messageId":"s4","anonymousId":"new-2","traits":{"email":"ada@example.com"}}`,
				`{"type":"page","messageId":"ok","anonymousId":"someone-else"}`,
			)
			// The sender holds only a public write key: it must not learn who
			// is suppressed, so Ingest counts these apart from rejections.
			res := w.send(later)
			if res.Accepted != 1 || res.Suppressed != 4 || len(res.Rejected) != 0 {
				t.Fatalf("result = %+v, want 1 accepted and 4 suppressed", res)
			}
			if got := w.eventCount(); got != before+1 {
				t.Errorf("events = %d, want %d (only the other person's)", got, before+1)
			}
			for _, mid := range []string{"s1", "s2", "s3", "s4"} {
				if w.stored()[mid] != nil {
					t.Errorf("suppressed event %s was stored", mid)
				}
			}
			if _, err := w.lookup(identity.AnonymousID, "new-device"); onramp.ErrorCode(err) != onramp.ENOTFOUND {
				t.Errorf("a suppressed event created identifier new-device: %v", err)
			}
			// Staff see them in the rejected-events log, without payload.
			logged, err := w.events.Rejections(ctx, events.RejectionQuery{PropertyID: w.prop})
			if err != nil || len(logged) != 4 {
				t.Fatalf("rejected log = %d entries, %v; want 4", len(logged), err)
			}
			var idx []int
			for _, r := range logged {
				idx = append(idx, r.Index)
				if r.Code != events.CodeSuppressed || len(r.Payload) != 0 || r.MessageID == "" {
					t.Errorf("logged rejection = code %q payload %q message %q, want suppressed, no payload, the message id", r.Code, r.Payload, r.MessageID)
				}
			}
			slices.Sort(idx)
			if !slices.Equal(idx, []int{0, 1, 2, 3}) {
				t.Errorf("logged indexes = %v, want 0-3", idx)
			}

			if err := w.ids.Unsuppress(ctx, keys); err != nil {
				t.Fatalf("Unsuppress: %v", err)
			}
			res = w.send(later)
			if res.Accepted != 4 || res.Duplicates != 1 || res.Suppressed != 0 || len(res.Rejected) != 0 {
				t.Fatalf("after unsuppress: %+v, want 4 accepted, 1 duplicate", res)
			}
			for _, mid := range []string{"s1", "s2", "s3", "s4"} {
				if got := w.rootOf(mid); got != root {
					t.Errorf("event %s resolves to %s, want %s", mid, got, root)
				}
			}
		}},
		{"suppress with delete removes the person and refuses their events", func(t *testing.T, w *world) {
			w.send(batch(`{"type":"identify","messageId":"id1","anonymousId":"a1","userId":"u1"}`))
			root := w.rootOf("id1")
			if _, err := w.ids.Suppress(ctx, identity.SuppressParams{PersonID: root, AlsoDelete: true}); err != nil {
				t.Fatalf("Suppress: %v", err)
			}
			if n := w.eventCount(); n != 0 {
				t.Errorf("events = %d, want 0", n)
			}
			if _, err := w.lookup(identity.UserID, "u1"); onramp.ErrorCode(err) != onramp.ENOTFOUND {
				t.Errorf("Lookup(u1) = %v, want not found", err)
			}
			res := w.send(batch(`{"type":"track","messageId":"again","userId":"u1","event":"x"}`))
			if res.Accepted != 0 || res.Suppressed != 1 || w.eventCount() != 0 {
				t.Errorf("result = %+v with %d events stored, want it suppressed", res, w.eventCount())
			}
			if n := w.persons(); n != 0 {
				t.Errorf("persons = %d, want 0", n)
			}
		}},
		{"unmerge inside a chain of merges takes the unmerged person's traits back from the root", func(t *testing.T, w *world) {
			w.send(batch(
				`{"type":"identify","messageId":"a","anonymousId":"a1","userId":"u1","traits":{"name":"Ada"}}`,
				`{"type":"identify","messageId":"b","anonymousId":"b1","traits":{"plan":"pro"}}`,
				`{"type":"identify","messageId":"c","anonymousId":"c1","traits":{"company":"Acme"}}`,
			))
			pa, pb, pc := w.rootOf("a"), w.rootOf("b"), w.rootOf("c")
			m1, err := w.ids.Merge(ctx, identity.MergeParams{FromID: pc, IntoID: pb})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.ids.Merge(ctx, identity.MergeParams{FromID: pb, IntoID: pa}); err != nil {
				t.Fatal(err)
			}
			if got, want := traitsOf(t, w.profile(pc)), map[string]any{"name": "Ada", "plan": "pro", "company": "Acme"}; !reflect.DeepEqual(got, want) {
				t.Fatalf("traits of the chain = %v, want %v", got, want)
			}
			// Take c out again: a's profile (the root) must lose what only c
			// brought, as it does when c was merged straight into a.
			if _, err := w.ids.Unmerge(ctx, m1.ID, "staff:test"); err != nil {
				t.Fatalf("Unmerge: %v", err)
			}
			if got := w.rootOf("c"); got != pc {
				t.Fatalf("c resolves to %s after unmerge, want itself", got)
			}
			if got, want := w.timelineIDs(pa), []string{"a", "b"}; !slices.Equal(got, want) {
				t.Errorf("a's timeline = %v, want %v", got, want)
			}
			if got, want := traitsOf(t, w.profile(pc)), map[string]any{"company": "Acme"}; !reflect.DeepEqual(got, want) {
				t.Errorf("c's traits = %v, want %v", got, want)
			}
			if got, want := traitsOf(t, w.profile(pa)), map[string]any{"name": "Ada", "plan": "pro"}; !reflect.DeepEqual(got, want) {
				t.Errorf("a's traits after c was unmerged = %v, want %v: c's traits stay on the root", got, want)
			}
		}},
		{"unmerge of the middle link keeps the rest of the chain together", func(t *testing.T, w *world) {
			w.send(batch(
				`{"type":"identify","messageId":"a","anonymousId":"a1","userId":"u1"}`,
				`{"type":"identify","messageId":"b","anonymousId":"b1"}`,
				`{"type":"identify","messageId":"c","anonymousId":"c1"}`,
			))
			pa, pb, pc := w.rootOf("a"), w.rootOf("b"), w.rootOf("c")
			if _, err := w.ids.Merge(ctx, identity.MergeParams{FromID: pc, IntoID: pb}); err != nil {
				t.Fatal(err)
			}
			m2, err := w.ids.Merge(ctx, identity.MergeParams{FromID: pb, IntoID: pa})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.ids.Unmerge(ctx, m2.ID, ""); err != nil {
				t.Fatalf("Unmerge: %v", err)
			}
			if got := w.rootOf("c"); got != pb {
				t.Errorf("c resolves to %s, want b %s (their merge stands)", got, pb)
			}
			if got, want := w.timelineIDs(pb), []string{"b", "c"}; !slices.Equal(got, want) {
				t.Errorf("b's timeline = %v, want %v", got, want)
			}
			if got, want := w.timelineIDs(pa), []string{"a"}; !slices.Equal(got, want) {
				t.Errorf("a's timeline = %v, want %v", got, want)
			}
			if got := w.persons(); got != 2 {
				t.Errorf("persons = %d, want 2", got)
			}
		}},
		{"identifiers of a deleted person start a new person when they come back", func(t *testing.T, w *world) {
			w.send(batch(`{"type":"identify","messageId":"id1","anonymousId":"a1","userId":"u1","traits":{"name":"Ada"}}`))
			old := w.rootOf("id1")
			if _, err := w.ids.Delete(ctx, old); err != nil {
				t.Fatal(err)
			}
			w.send(batch(`{"type":"page","messageId":"back","anonymousId":"a1"}`, `{"type":"identify","messageId":"back2","anonymousId":"a1","userId":"u1"}`))
			now := w.rootOf("back")
			if now == old {
				t.Fatalf("event went to the deleted person %s", old)
			}
			if w.rootOf("back2") != now || w.persons() != 1 || w.eventCount() != 2 {
				t.Errorf("after return: persons %d events %d", w.persons(), w.eventCount())
			}
			if got := traitsOf(t, w.profile(now)); len(got) != 0 {
				t.Errorf("the new person inherited traits %v", got)
			}
			if got, want := identSet(w.profile(now)), []string{"anonymous_id:a1", "user_id:u1"}; !slices.Equal(got, want) {
				t.Errorf("identifiers = %v, want %v", got, want)
			}
		}},
		{"an alias whose previousId is suppressed is suppressed too", func(t *testing.T, w *world) {
			w.send(batch(`{"type":"page","messageId":"pv","anonymousId":"a1"}`))
			root := w.rootOf("pv")
			if _, err := w.ids.Suppress(ctx, identity.SuppressParams{PersonID: root}); err != nil {
				t.Fatal(err)
			}
			res := w.send(batch(`{"type":"alias","messageId":"al","previousId":"a1","userId":"u-new"}`))
			if res.Accepted != 0 || res.Suppressed != 1 {
				t.Errorf("alias from suppressed a1: %+v, want it suppressed", res)
			}
			if p, err := w.lookup(identity.UserID, "u-new"); err == nil && p.Person.ID == root {
				t.Errorf("the suppressed person gained identifier u-new through an alias")
			}
		}},
		{"retried batch is stored once", func(t *testing.T, w *world) {
			body := batch(
				`{"type":"page","messageId":"r1","anonymousId":"a1"}`,
				`{"type":"track","messageId":"r2","anonymousId":"a1","event":"x"}`,
				`{"type":"identify","messageId":"r3","anonymousId":"a1","userId":"u1","traits":{"n":1}}`,
				`{"type":"track","anonymousId":"a1","event":"no message id","timestamp":"2024-04-30T10:00:00Z"}`,
			)
			for i, want := range []events.Result{{Accepted: 4}, {Duplicates: 4}, {Duplicates: 4}} {
				res := w.send(body)
				if res.Accepted != want.Accepted || res.Duplicates != want.Duplicates || len(res.Rejected) != 0 {
					t.Errorf("attempt %d: %+v, want accepted %d duplicates %d", i+1, res, want.Accepted, want.Duplicates)
				}
			}
			if n := w.eventCount(); n != 4 {
				t.Errorf("events = %d, want 4", n)
			}
			if n := w.persons(); n != 1 {
				t.Errorf("persons = %d, want 1", n)
			}
			// A repeat inside one batch is a duplicate too.
			res := w.send(batch(
				`{"type":"page","messageId":"twice","anonymousId":"a1"}`,
				`{"type":"page","messageId":"twice","anonymousId":"a1"}`,
			))
			if res.Accepted != 1 || res.Duplicates != 1 {
				t.Errorf("in-batch repeat: %+v, want 1 accepted 1 duplicate", res)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newWorld(t))
		})
	}
}

// Two requests that carry the same new identifiers, committed in one group,
// must still make one person.
func TestIdentityConcurrentRequestsMakeOnePerson(t *testing.T) {
	w := newWorld(t)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := w.trySend(batch(fmt.Sprintf(`{"type":"page","messageId":"m%d","anonymousId":"same","userId":"u-same"}`, i))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := w.persons(); n != 1 {
		t.Errorf("persons = %d, want 1", n)
	}
	if n := w.eventCount(); n != 20 {
		t.Errorf("events = %d, want 20", n)
	}
}

// TestRepeatedIdentifyLeavesPersonAlone: libraries send identify with the
// same traits on every page load. Only a change rewrites the person (its
// updated_at moves with every rewrite: the test clock steps on each read).
func TestRepeatedIdentifyLeavesPersonAlone(t *testing.T) {
	w := newWorld(t)
	ident := func(id, traits string) string {
		return `{"type":"identify","userId":"u-rep","messageId":"` + id + `","timestamp":"2024-05-01T09:00:00Z","traits":` + traits + `}`
	}
	w.send(batch(ident("i1", `{"plan":"trial","name":"Ada"}`)))
	owner := w.rootOf("i1")
	first := w.profile(owner).Person.UpdatedAt
	w.send(batch(ident("i2", `{"name":"Ada","plan":"trial"}`)))
	if got := w.profile(owner).Person.UpdatedAt; !got.Equal(first) {
		t.Fatalf("identify with the same traits rewrote the person (updated_at %v → %v)", first, got)
	}
	w.send(batch(ident("i3", `{"plan":"team"}`)))
	p := w.profile(owner).Person
	if p.UpdatedAt.Equal(first) || !strings.Contains(string(p.Traits), `"plan":"team"`) {
		t.Fatalf("a changed trait was not written: %s, updated_at %v", p.Traits, p.UpdatedAt)
	}
}
