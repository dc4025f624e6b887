package identity_test

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/onramp-dev/onramp/identity"
	"github.com/onramp-dev/onramp/sqlite"
)

// TestAttach: an account attaches to the person who owns its proven email,
// keeping their traits and timeline, and the browser's anonymous history
// joins them; no second person is made.
func TestAttach(t *testing.T) {
	ctx := context.Background()
	attach := func(t *testing.T, w *world, p identity.AttachParams) *identity.Attached {
		t.Helper()
		var out *identity.Attached
		err := w.db.InTx(ctx, func(q *sqlite.Queries) error {
			var err error
			out, err = w.ids.Attach(ctx, q, p)
			return err
		})
		if err != nil {
			t.Fatalf("Attach: %v", err)
		}
		return out
	}
	verified := func(t *testing.T, w *world, personID string) []string {
		t.Helper()
		var out []string
		for _, id := range w.profile(personID).Identifiers {
			if id.Verified {
				out = append(out, id.Key.String())
			}
		}
		slices.Sort(out)
		return out
	}

	t.Run("known email keeps traits and timeline, browsing joins", func(t *testing.T) {
		w := newWorld(t)
		w.send(batch(
			`{"type":"identify","messageId":"reg","anonymousId":"event-site","traits":{"email":"Ada@Example.com","company":"Acme"}}`,
			`{"type":"track","messageId":"reg-tr","anonymousId":"event-site","event":"Registered"}`,
			`{"type":"page","messageId":"browse","anonymousId":"app-browser","name":"Pricing"}`,
		))
		known, browser := w.rootOf("reg"), w.rootOf("browse")
		if known == browser {
			t.Fatal("setup: the two browsers are one person already")
		}
		got := attach(t, w, identity.AttachParams{Email: "ada@example.com", AnonymousID: "app-browser", Subject: "usr_1", Traits: json.RawMessage(`{"name":"Ada"}`)})
		if !got.Recognized || !got.SubjectWritten || got.PersonID != known {
			t.Fatalf("Attach = %+v, want recognised into %s", got, known)
		}
		if n := w.persons(); n != 1 {
			t.Errorf("persons = %d, want 1", n)
		}
		p := w.profile(browser)
		if p.Person.ID != known || p.Person.UserID != "usr_1" {
			t.Errorf("browser person resolves to %s with user id %q, want %s usr_1", p.Person.ID, p.Person.UserID, known)
		}
		var traits map[string]any
		_ = json.Unmarshal(p.Person.Traits, &traits)
		if want := map[string]any{"email": "Ada@Example.com", "company": "Acme", "name": "Ada"}; !reflect.DeepEqual(traits, want) {
			t.Errorf("traits = %v, want %v", traits, want)
		}
		if got, want := w.timelineIDs(known), []string{"browse", "reg", "reg-tr"}; !slices.Equal(slices.Sorted(slices.Values(got)), want) {
			t.Errorf("timeline = %v, want %v", got, want)
		}
		if got, want := verified(t, w, known), []string{"email:ada@example.com", "user_id:usr_1"}; !slices.Equal(got, want) {
			t.Errorf("verified identifiers = %v, want %v", got, want)
		}
		// Later events with the subject land on the same person.
		w.send(batch(`{"type":"track","messageId":"app","userId":"usr_1","event":"Opened"}`))
		if w.rootOf("app") != known {
			t.Error("an event with the subject as userId went elsewhere")
		}
	})

	t.Run("unknown email makes one person", func(t *testing.T) {
		w := newWorld(t)
		got := attach(t, w, identity.AttachParams{Email: "new@example.com", Subject: "usr_2"})
		if got.Recognized || !got.SubjectWritten || got.PersonID == "" || w.persons() != 1 {
			t.Fatalf("Attach = %+v, persons %d", got, w.persons())
		}
		if got, want := verified(t, w, got.PersonID), []string{"email:new@example.com", "user_id:usr_2"}; !slices.Equal(got, want) {
			t.Errorf("verified = %v, want %v", got, want)
		}
	})

	t.Run("an identified browser of someone else is not merged", func(t *testing.T) {
		w := newWorld(t)
		w.send(batch(
			`{"type":"identify","messageId":"mine","anonymousId":"a-mine","traits":{"email":"me@example.com"}}`,
			`{"type":"identify","messageId":"other","anonymousId":"shared","userId":"other-user"}`,
		))
		got := attach(t, w, identity.AttachParams{Email: "me@example.com", AnonymousID: "shared", Subject: "usr_3"})
		if got.PersonID != w.rootOf("mine") || w.rootOf("other") == got.PersonID {
			t.Fatalf("Attach = %+v: the other user's person must stay apart", got)
		}
	})

	t.Run("a browser of a person known only by email stays theirs", func(t *testing.T) {
		w := newWorld(t)
		w.send(batch(`{"type":"identify","messageId":"ada","anonymousId":"ada-browser","traits":{"email":"ada@example.com","name":"Ada"}}`))
		ada := w.rootOf("ada")
		got := attach(t, w, identity.AttachParams{Email: "mallory@example.com", AnonymousID: "ada-browser", Subject: "usr_m", Traits: json.RawMessage(`{"name":"Mallory"}`)})
		if got.PersonID == ada || got.Recognized {
			t.Fatalf("Attach = %+v: Mallory's account must not take Ada's person %s", got, ada)
		}
		p := w.profile(ada)
		var traits map[string]any
		_ = json.Unmarshal(p.Person.Traits, &traits)
		if p.Person.UserID != "" || traits["name"] != "Ada" {
			t.Errorf("Ada's person after Mallory's sign-up: user id %q, traits %v", p.Person.UserID, traits)
		}
		for _, id := range p.Identifiers {
			if id.Key.Value == "mallory@example.com" {
				t.Error("Mallory's email joined Ada's person")
			}
		}
	})

	t.Run("a person with an unverified user id keeps it and a conflict is recorded", func(t *testing.T) {
		w := newWorld(t)
		w.send(batch(`{"type":"identify","messageId":"x","userId":"forged-or-legacy","traits":{"email":"eve@example.com"}}`))
		got := attach(t, w, identity.AttachParams{Email: "eve@example.com", Subject: "usr_4"})
		if !got.Recognized || got.SubjectWritten || got.PersonID != w.rootOf("x") {
			t.Fatalf("Attach = %+v", got)
		}
		if p := w.profile(got.PersonID); p.Person.UserID != "forged-or-legacy" {
			t.Errorf("user id = %q, want it unchanged", p.Person.UserID)
		}
		if got, want := verified(t, w, got.PersonID), []string{"email:eve@example.com"}; !slices.Equal(got, want) {
			t.Errorf("verified = %v, want %v (the old user id stays unverified)", got, want)
		}
		cs := w.conflicts()
		if len(cs) != 1 || cs[0].Reason != "account over unverified user id" {
			t.Errorf("conflicts = %+v", cs)
		}
	})

	t.Run("a bad email is refused", func(t *testing.T) {
		w := newWorld(t)
		err := w.db.InTx(ctx, func(q *sqlite.Queries) error {
			_, err := w.ids.Attach(ctx, q, identity.AttachParams{Email: "not-an-email", Subject: "usr_5"})
			return err
		})
		if err == nil || w.persons() != 0 {
			t.Fatalf("err = %v, persons = %d", err, w.persons())
		}
	})
}
