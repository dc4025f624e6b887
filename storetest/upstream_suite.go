package storetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// The auth.UpstreamStore suite: links from accounts to upstream identity
// providers.

func newLink(provider, subject, person string, created time.Time) *auth.UpstreamLink {
	return &auth.UpstreamLink{Provider: provider, Subject: subject, PersonID: person, Email: person + "@upstream.example", CreatedAt: created}
}

func sameLink(t *testing.T, got, want *auth.UpstreamLink) {
	t.Helper()
	if got == nil {
		t.Fatalf("link %s/%s: got nil", want.Provider, want.Subject)
	}
	if got.Provider != want.Provider || got.Subject != want.Subject || got.PersonID != want.PersonID || got.Email != want.Email {
		t.Errorf("link = %+v, want %+v", got, want)
	}
	sameTime(t, "link created_at", got.CreatedAt, want.CreatedAt)
	sameTimePtr(t, "link last_used_at", got.LastUsedAt, want.LastUsedAt)
}

var upstreamTests = []test{
	{"Upstream/RoundTrip", func(t *testing.T, e *env) {
		ada1 := newLink("google", "1081234567890", "per_ada", at(time.Second))
		// Subjects are the provider's: case and odd characters are kept.
		ada2 := newLink("github", "Ab/c+D=ü", "per_ada", at(2*time.Second))
		used := at(time.Minute + 123)
		bob := newLink("google", "2222", "per_bob", at(time.Second))
		bob.LastUsedAt, bob.Email = &used, ""
		e.tx(t, func(s Store) error {
			for _, l := range []*auth.UpstreamLink{ada2, ada1, bob} {
				if err := s.CreateUpstreamLink(e.ctx, l); err != nil {
					return err
				}
			}
			return nil
		})
		r := e.Reader()
		for _, want := range []*auth.UpstreamLink{ada1, ada2, bob} {
			got, err := r.UpstreamLink(e.ctx, want.Provider, want.Subject)
			must(t, err)
			sameLink(t, got, want)
		}
		// Lookups are exact: the same subject at another provider, or in
		// another case, is another user.
		for _, k := range [][2]string{{"github", "1081234567890"}, {"google", "ab/c+d=ü"}, {"Google", "2222"}} {
			_, err := r.UpstreamLink(e.ctx, k[0], k[1])
			wantCode(t, err, onramp.ENOTFOUND, "UpstreamLink "+k[0]+"/"+k[1])
		}
		// Any member of a merge tree lists the tree's links, oldest first.
		links, err := r.UpstreamLinksOf(e.ctx, []string{"per_x", "per_ada"})
		must(t, err)
		if len(links) != 2 {
			t.Fatalf("links of ada = %d, want 2", len(links))
		}
		sameLink(t, links[0], ada1)
		sameLink(t, links[1], ada2)
		links, err = r.UpstreamLinksOf(e.ctx, []string{"per_nobody"})
		must(t, err)
		if links == nil || len(links) != 0 {
			t.Errorf("links of nobody = %#v, want an empty list", links)
		}
	}},
	{"Upstream/ConflictKeepsTransaction", func(t *testing.T, e *env) {
		l := newLink("google", "1", "per_ada", at(0))
		e.tx(t, func(s Store) error { return s.CreateUpstreamLink(e.ctx, l) })
		// The same upstream user cannot be linked to a second person; the
		// conflict is answered and the transaction goes on.
		e.tx(t, func(s Store) error {
			err := s.CreateUpstreamLink(e.ctx, newLink("google", "1", "per_bob", at(time.Hour)))
			wantCode(t, err, onramp.ECONFLICT, "second link of google/1")
			return s.CreateUpstreamLink(e.ctx, newLink("google", "2", "per_bob", at(time.Hour)))
		})
		got, err := e.Reader().UpstreamLink(e.ctx, "google", "1")
		must(t, err)
		sameLink(t, got, l)
		if _, err := e.Reader().UpstreamLink(e.ctx, "google", "2"); err != nil {
			t.Errorf("the link written after the conflict: %v", err)
		}
	}},
	{"Upstream/RaceOneWinner", func(t *testing.T, e *env) {
		var wins, conflicts atomic.Int32
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := e.retry(func(s Store) error {
					return s.CreateUpstreamLink(e.ctx, newLink("google", "race", "per_"+string(rune('a'+i)), at(0)))
				})
				switch onramp.ErrorCode(err) {
				case "":
					wins.Add(1)
				case onramp.ECONFLICT:
					conflicts.Add(1)
				default:
					t.Errorf("racer %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 || conflicts.Load() != 3 {
			t.Errorf("%d won, %d conflicted; want 1 and 3", wins.Load(), conflicts.Load())
		}
	}},
	{"Upstream/TouchAndDelete", func(t *testing.T, e *env) {
		l := newLink("microsoft", "oid-1", "per_ada", at(0))
		e.tx(t, func(s Store) error { return s.CreateUpstreamLink(e.ctx, l) })
		used := at(3*time.Hour + 5)
		e.tx(t, func(s Store) error { return s.TouchUpstreamLink(e.ctx, "microsoft", "oid-1", used) })
		l.LastUsedAt = &used
		got, err := e.Reader().UpstreamLink(e.ctx, "microsoft", "oid-1")
		must(t, err)
		sameLink(t, got, l)
		e.tx(t, func(s Store) error { return s.DeleteUpstreamLink(e.ctx, "microsoft", "oid-1") })
		_, err = e.Reader().UpstreamLink(e.ctx, "microsoft", "oid-1")
		wantCode(t, err, onramp.ENOTFOUND, "deleted link")
		e.tx(t, func(s Store) error {
			wantCode(t, s.TouchUpstreamLink(e.ctx, "microsoft", "oid-1", used), onramp.ENOTFOUND, "touch a deleted link")
			wantCode(t, s.DeleteUpstreamLink(e.ctx, "microsoft", "oid-1"), onramp.ENOTFOUND, "delete twice")
			return nil
		})
	}},
	{"Upstream/Erase", func(t *testing.T, e *env) {
		e.tx(t, func(s Store) error {
			for _, l := range []*auth.UpstreamLink{newLink("google", "g1", "per_gone", at(0)), newLink("github", "7", "per_gone", at(0)), newLink("google", "g2", "per_keep", at(0))} {
				if err := s.CreateUpstreamLink(e.ctx, l); err != nil {
					return err
				}
			}
			return s.EraseAuth(e.ctx, []string{"per_gone"})
		})
		links, err := e.Reader().UpstreamLinksOf(e.ctx, []string{"per_gone"})
		must(t, err)
		if len(links) != 0 {
			t.Errorf("links of an erased person: %+v", links)
		}
		if _, err := e.Reader().UpstreamLink(e.ctx, "google", "g2"); err != nil {
			t.Errorf("another person's link after the erase: %v", err)
		}
		// The upstream user of an erased account can be linked anew.
		e.tx(t, func(s Store) error {
			return s.CreateUpstreamLink(e.ctx, newLink("google", "g1", "per_new", at(time.Hour)))
		})
	}},
}
