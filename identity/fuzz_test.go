package identity_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/onramp-dev/onramp/identity"
)

var normalizeTypes = []string{identity.AnonymousID, identity.UserID, identity.Email, identity.Phone, "stripe_customer_id"}

// FuzzNormalize checks the properties lookups depend on: a normalised value
// normalises to itself (Lookup normalises again), is never a placeholder,
// is valid UTF-8, and emails are lower-case.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"a1", "  user-42 ", "Ada@Example.COM", " ada@example.com ", "ada@example", "@example.com", "ada@", "a b@example.com",
		"ada@exa..mple.com", "ada@.example.com", "\"ada\"@example.com", "ada@example.com.", "+44 (20) 7946-0000", "0044 20 7946 0000",
		"+0000000", "000-000-0000", "12345", "null", "NULL", "undefined", " Undefined ", "0", "-1", "00000000-0000-0000-0000-000000000000",
		"anonymous", "[object Object]", "", " ", "\t", "a\x00b", "a\u0085", "\u00a0a\u00a0", "\xff", "ÀDA@ÉXAMPLE.COM", "İ@example.com",
		strings.Repeat("x", 256), strings.Repeat("x", 257), strings.Repeat("Ⱥ", 60) + "@example.com",
	} {
		for i := range normalizeTypes {
			f.Add(uint8(i), s)
		}
	}
	f.Fuzz(func(t *testing.T, ti uint8, v string) {
		typ := normalizeTypes[int(ti)%len(normalizeTypes)]
		out, ok := identity.Normalize(typ, v)
		if !ok {
			if out != "" {
				t.Fatalf("Normalize(%s, %q) = %q with ok false", typ, v, out)
			}
			return
		}
		if out == "" || identity.Blocked(out) {
			t.Fatalf("Normalize(%s, %q) = %q, a blocked value", typ, v, out)
		}
		if !utf8.ValidString(out) {
			t.Fatalf("Normalize(%s, %q) = %q, not valid UTF-8", typ, v, out)
		}
		again, ok := identity.Normalize(typ, out)
		if !ok || again != out {
			t.Fatalf("Normalize is not idempotent for %s: %q -> %q -> %q (ok %v)", typ, v, out, again, ok)
		}
		if strings.TrimSpace(out) != out {
			t.Fatalf("Normalize(%s, %q) = %q keeps surrounding space", typ, v, out)
		}
		switch typ {
		case identity.Email:
			if strings.ToLower(out) != out || strings.Count(out, "@") < 1 {
				t.Fatalf("email %q normalised to %q: not a lower-case address", v, out)
			}
		case identity.Phone:
			for i, r := range out {
				if !(r >= '0' && r <= '9' || r == '+' && i == 0) {
					t.Fatalf("phone %q normalised to %q", v, out)
				}
			}
		}
	})
}

// A normalised identifier must be found again by Lookup, which normalises
// what it is given: lower-casing can make an email longer in bytes (Ⱥ is 2
// bytes, ⱥ 3), past MaxIdentifierLen, and then the stored value is one that
// Normalize itself refuses.
func TestNormalizeEmailStaysWithinLimit(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"ascii at the limit", strings.Repeat("a", identity.MaxIdentifierLen-len("@example.com")) + "@example.com"},
		{"upper-case ascii at the limit", strings.Repeat("A", identity.MaxIdentifierLen-len("@example.com")) + "@example.com"},
		{"letters that grow when lower-cased", strings.Repeat("Ⱥ", 100) + "@example.com"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, ok := identity.Normalize(identity.Email, tc.in)
			if !ok {
				return // refusing is fine
			}
			if len(out) > identity.MaxIdentifierLen {
				t.Errorf("normalised email is %d bytes, over MaxIdentifierLen %d", len(out), identity.MaxIdentifierLen)
			}
			if again, ok := identity.Normalize(identity.Email, out); !ok || again != out {
				t.Errorf("Normalize(Normalize(x)) = %q, %v; want the same value", again, ok)
			}
		})
	}
}
