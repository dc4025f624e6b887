package sqlite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/onramp-dev/onramp/identity"
	"github.com/onramp-dev/onramp/sqlite"
)

// TestTraitIndexFollowsTraits: after inserts, updates that add, change,
// null and drop traits, and deletes, person_traits holds exactly one row
// per indexable top-level trait of every person, found through its
// primary key alone (the triggers no longer have a per-person index).
func TestTraitIndexFollowsTraits(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	db := openTestDB(t, path, sqlite.Options{Synchronous: "OFF"})
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	person := func(id, traits string) *identity.Person {
		return &identity.Person{ID: id, RootID: id, Traits: json.RawMessage(traits), CreatedAt: at, UpdatedAt: at, LastSeenAt: at}
	}
	long := fmt.Sprintf("%0300d", 7)
	write := func(fn func(q *sqlite.Queries) error) {
		t.Helper()
		if err := db.InTx(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	write(func(q *sqlite.Queries) error {
		return q.CreatePersons(ctx, []*identity.Person{
			person("per_1", `{"plan":"pro","vip":true,"n":1.5,"note":"`+long+`"}`),
			person("per_2", `{}`),
			person("per_3", `{"plan":"pro","tags":["a","b"],"gone":null}`),
			person("per_4", `{"plan":"free","same":"x"}`),
		})
	})
	write(func(q *sqlite.Queries) error {
		return q.UpdatePersons(ctx, []*identity.Person{
			person("per_1", `{"plan":"free","vip":true,"n":2}`),             // a change, a drop, a kept trait
			person("per_2", `{"plan":"pro","email":"b@example.com"}`),       // from nothing
			person("per_3", `{"plan":null,"tags":["a","b"],"gone":"back"}`), // nulled, kept, back from null
		})
	})
	write(func(q *sqlite.Queries) error { return q.DeletePersons(ctx, []string{"per_4"}) })
	// What the index must hold, computed from the traits as the insert
	// trigger does.
	want := rawCount(t, path, `SELECT count(*) FROM persons p, json_each(p.traits) j WHERE j.type <> 'null' AND length(CAST(CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(j.value AS TEXT) END AS BLOB)) <= 200`)
	if want != 7 {
		t.Fatalf("the test's persons have %d indexable traits, want 7", want)
	}
	if n := rawCount(t, path, `SELECT count(*) FROM person_traits`); n != want {
		t.Fatalf("person_traits has %d rows, want %d", n, want)
	}
	if n := rawCount(t, path, `SELECT count(*) FROM person_traits t WHERE NOT EXISTS (
		SELECT 1 FROM persons p, json_each(p.traits) j WHERE p.id = t.person_id AND j.key = t.key
		AND CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(j.value AS TEXT) END = t.value)`); n != 0 {
		t.Fatalf("%d rows of person_traits match no trait", n)
	}
	for _, c := range []struct {
		key, value string
		want       int
	}{{"plan", "pro", 1}, {"plan", "free", 1}, {"vip", "true", 1}, {"n", "2", 1}, {"n", "1.5", 0}, {"gone", "back", 1}, {"same", "x", 0}, {"email", "b@example.com", 1}} {
		if n := rawCount(t, path, `SELECT count(*) FROM person_traits WHERE key = '`+c.key+`' AND value = '`+c.value+`'`); n != c.want {
			t.Errorf("%s = %s: %d rows, want %d", c.key, c.value, n, c.want)
		}
	}
}
