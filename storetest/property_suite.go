package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/property"
)

func newProperty(name string, origins ...string) *property.Property {
	return &property.Property{
		ID:            onramp.NewID("prp"),
		Name:          name,
		Origins:       origins,
		WriteKey:      onramp.NewSecret("wk"),
		SecretKeyHash: property.HashSecret(onramp.NewSecret("sk")),
		CreatedAt:     at(0),
		UpdatedAt:     at(time.Second),
	}
}

func sameProperty(t *testing.T, got, want *property.Property) {
	t.Helper()
	if got == nil {
		t.Fatalf("property %s: got nil", want.ID)
	}
	if got.ID != want.ID || got.Name != want.Name || got.WriteKey != want.WriteKey || got.SecretKeyHash != want.SecretKeyHash {
		t.Errorf("property = %+v, want %+v", got, want)
	}
	if got.Origins == nil {
		t.Errorf("property %s: Origins is nil, want a list (JSON answers say [])", want.ID)
	}
	sameStrings(t, "origins", got.Origins, want.Origins)
	if got.Theme != want.Theme {
		t.Errorf("property %s: theme = %+v, want %+v", want.ID, got.Theme, want.Theme)
	}
	sameTime(t, "created_at", got.CreatedAt, want.CreatedAt)
	sameTime(t, "updated_at", got.UpdatedAt, want.UpdatedAt)
}

var propertyTests = []test{
	{"Property/RoundTrip", func(t *testing.T, e *env) {
		cases := []*property.Property{
			newProperty("Website", "https://www.example.com", "http://localhost:3000"),
			newProperty("Communauté ✨ 社区"),
			newProperty("Everyone", "*"),
		}
		cases[1].Origins = nil
		cases[0].Theme = property.Theme{LogoURL: "https://cdn.example.com/logo.svg?v=2&x=ü", ColorPrimary: "#0b5fff", ColorAccent: "#ffbf47"}
		e.tx(t, func(s Store) error {
			for _, p := range cases {
				if err := s.CreateProperty(e.ctx, p); err != nil {
					return err
				}
			}
			return nil
		})
		r := e.Reader()
		for _, want := range cases {
			lookups := map[string]func() (*property.Property, error){
				"by id":          func() (*property.Property, error) { return r.PropertyByID(e.ctx, want.ID) },
				"by name":        func() (*property.Property, error) { return r.PropertyByName(e.ctx, want.Name) },
				"by write key":   func() (*property.Property, error) { return r.PropertyByWriteKey(e.ctx, want.WriteKey) },
				"by secret hash": func() (*property.Property, error) { return r.PropertyBySecretHash(e.ctx, want.SecretKeyHash) },
			}
			for name, get := range lookups {
				got, err := get()
				if err != nil {
					t.Fatalf("%s %s: %v", name, want.Name, err)
				}
				sameProperty(t, got, want)
			}
		}
		list, err := r.ListProperties(e.ctx)
		must(t, err)
		var names []string
		for _, p := range list {
			names = append(names, p.Name)
		}
		// By name, in byte order on every engine.
		sameStrings(t, "ListProperties names", names, []string{"Communauté ✨ 社区", "Everyone", "Website"})
	}},
	{"Property/ListEmpty", func(t *testing.T, e *env) {
		list, err := e.Reader().ListProperties(e.ctx)
		if err != nil || list == nil || len(list) != 0 {
			t.Fatalf("ListProperties on an empty store = %#v, %v; want an empty, non-nil list", list, err)
		}
	}},
	{"Property/NotFound", func(t *testing.T, e *env) {
		r := e.Reader()
		_, err := r.PropertyByID(e.ctx, "prp_nope")
		wantCode(t, err, onramp.ENOTFOUND, "PropertyByID")
		_, err = r.PropertyByName(e.ctx, "nope")
		wantCode(t, err, onramp.ENOTFOUND, "PropertyByName")
		_, err = r.PropertyByWriteKey(e.ctx, "wk_nope")
		wantCode(t, err, onramp.ENOTFOUND, "PropertyByWriteKey")
		_, err = r.PropertyBySecretHash(e.ctx, "00")
		wantCode(t, err, onramp.ENOTFOUND, "PropertyBySecretHash")
		err = e.InTx(e.ctx, func(s Store) error { return s.UpdateProperty(e.ctx, newProperty("ghost")) })
		wantCode(t, err, onramp.ENOTFOUND, "UpdateProperty of a missing property")
	}},
	{"Property/Update", func(t *testing.T, e *env) {
		p := newProperty("Website", "https://a.example")
		e.tx(t, func(s Store) error { return s.CreateProperty(e.ctx, p) })
		p.Name, p.Origins = "Site", []string{"https://b.example", "https://c.example"}
		p.WriteKey, p.SecretKeyHash = onramp.NewSecret("wk"), property.HashSecret("new")
		p.UpdatedAt = at(time.Hour)
		p.Theme = property.Theme{ColorPrimary: "#112233"}
		e.tx(t, func(s Store) error { return s.UpdateProperty(e.ctx, p) })
		got, err := e.Reader().PropertyByID(e.ctx, p.ID)
		must(t, err)
		sameProperty(t, got, p)
		p.Origins, p.Theme = nil, property.Theme{}
		e.tx(t, func(s Store) error { return s.UpdateProperty(e.ctx, p) })
		got, err = e.Reader().PropertyByID(e.ctx, p.ID)
		must(t, err)
		sameProperty(t, got, p)
	}},
	{"Property/NameConflict", func(t *testing.T, e *env) {
		a, b := newProperty("Website"), newProperty("Community")
		e.tx(t, func(s Store) error {
			if err := s.CreateProperty(e.ctx, a); err != nil {
				return err
			}
			return s.CreateProperty(e.ctx, b)
		})
		err := e.InTx(e.ctx, func(s Store) error { return s.CreateProperty(e.ctx, newProperty("Website")) })
		wantCode(t, err, onramp.ECONFLICT, "CreateProperty with a taken name")
		b.Name = "Website"
		err = e.InTx(e.ctx, func(s Store) error { return s.UpdateProperty(e.ctx, b) })
		wantCode(t, err, onramp.ECONFLICT, "UpdateProperty to a taken name")
		// Names are compared exactly.
		e.tx(t, func(s Store) error { return s.CreateProperty(e.ctx, newProperty("website")) })
	}},
}

func newToken(name string, created time.Time) *auth.Token {
	return &auth.Token{ID: onramp.NewID("tok"), Name: name, Role: auth.RoleDeveloper, Hash: property.HashSecret(onramp.NewSecret("ort")), CreatedAt: created}
}

func sameToken(t *testing.T, got, want *auth.Token) {
	t.Helper()
	if got.ID != want.ID || got.Name != want.Name || got.Role != want.Role || got.Hash != want.Hash {
		t.Errorf("token = %+v, want %+v", got, want)
	}
	sameTime(t, "created_at", got.CreatedAt, want.CreatedAt)
	sameTimePtr(t, "revoked_at", got.RevokedAt, want.RevokedAt)
	sameTimePtr(t, "last_used_at", got.LastUsedAt, want.LastUsedAt)
}

var tokenTests = []test{
	{"Token/RoundTrip", func(t *testing.T, e *env) {
		used := at(time.Minute)
		plain := newToken("CI deploy", at(0))
		full := newToken(strings.Repeat("ü", 100), at(time.Second))
		full.Role, full.LastUsedAt = auth.RoleOwner, &used
		e.tx(t, func(s Store) error {
			if err := s.CreateToken(e.ctx, plain); err != nil {
				return err
			}
			return s.CreateToken(e.ctx, full)
		})
		for _, want := range []*auth.Token{plain, full} {
			got, err := e.Reader().TokenByHash(e.ctx, want.Hash)
			must(t, err)
			sameToken(t, got, want)
		}
		list, err := e.Reader().ListTokens(e.ctx)
		must(t, err)
		if len(list) != 2 {
			t.Fatalf("ListTokens = %d tokens, want 2", len(list))
		}
		// Oldest first.
		sameToken(t, list[0], plain)
		sameToken(t, list[1], full)
		n, err := e.Reader().CountTokens(e.ctx)
		if err != nil || n != 2 {
			t.Errorf("CountTokens = %d, %v; want 2", n, err)
		}
	}},
	{"Token/NotFoundAndEmpty", func(t *testing.T, e *env) {
		_, err := e.Reader().TokenByHash(e.ctx, "feed")
		wantCode(t, err, onramp.ENOTFOUND, "TokenByHash")
		list, err := e.Reader().ListTokens(e.ctx)
		if err != nil || list == nil || len(list) != 0 {
			t.Errorf("ListTokens on an empty store = %#v, %v; want an empty, non-nil list", list, err)
		}
		n, err := e.Reader().CountTokens(e.ctx)
		if err != nil || n != 0 {
			t.Errorf("CountTokens = %d, %v; want 0", n, err)
		}
	}},
	{"Token/Revoke", func(t *testing.T, e *env) {
		tok := newToken("laptop", at(0))
		e.tx(t, func(s Store) error { return s.CreateToken(e.ctx, tok) })
		when := at(time.Hour + 123456789)
		e.tx(t, func(s Store) error { return s.RevokeToken(e.ctx, tok.ID, when) })
		got, err := e.Reader().TokenByHash(e.ctx, tok.Hash)
		must(t, err)
		tok.RevokedAt = &when
		sameToken(t, got, tok)
		err = e.InTx(e.ctx, func(s Store) error { return s.RevokeToken(e.ctx, tok.ID, at(2*time.Hour)) })
		wantCode(t, err, onramp.ENOTFOUND, "revoking a revoked token")
		err = e.InTx(e.ctx, func(s Store) error { return s.RevokeToken(e.ctx, "tok_nope", at(0)) })
		wantCode(t, err, onramp.ENOTFOUND, "revoking an unknown token")
		// The second revocation must not move the first one's time.
		got, err = e.Reader().TokenByHash(e.ctx, tok.Hash)
		must(t, err)
		sameTimePtr(t, "revoked_at after a second revoke", got.RevokedAt, &when)
	}},
}
