package property_test

import (
	"slices"
	"testing"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/property"
)

func TestNormalizeOrigins(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want []string
		bad  bool
	}{
		{name: "scheme and host, lower-cased, deduplicated", in: []string{"https://WWW.Example.com", "https://www.example.com/", " https://www.example.com "}, want: []string{"https://www.example.com"}},
		{name: "port kept", in: []string{"http://127.0.0.1:3000"}, want: []string{"http://127.0.0.1:3000"}},
		{name: "wildcard", in: []string{"*"}, want: []string{"*"}},
		{name: "empty entries dropped", in: []string{"", "  "}, want: []string{}},
		{name: "path refused", in: []string{"https://example.com/app"}, bad: true},
		{name: "query refused", in: []string{"https://example.com?x=1"}, bad: true},
		{name: "credentials refused", in: []string{"https://u:p@example.com"}, bad: true},
		{name: "other scheme refused", in: []string{"javascript:alert(1)"}, bad: true},
		{name: "no host refused", in: []string{"https://"}, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := property.NormalizeOrigins(tc.in)
			if tc.bad {
				if onramp.ErrorCode(err) != onramp.EINVALID {
					t.Fatalf("err = %v, want an EINVALID error", err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestAllowsOrigin(t *testing.T) {
	p := &property.Property{Origins: []string{"https://www.example.com"}}
	for origin, want := range map[string]bool{
		"https://www.example.com":      true,
		"https://WWW.example.com":      true,
		"http://www.example.com":       false,
		"https://www.example.com:8443": false,
		"https://evil.example.com":     false,
		"https://www.example.com.evil": false,
		"":                             false,
	} {
		if got := p.AllowsOrigin(origin); got != want {
			t.Errorf("AllowsOrigin(%q) = %v, want %v", origin, got, want)
		}
	}
	if !(&property.Property{Origins: []string{"*"}}).AllowsOrigin("https://any.test") {
		t.Error("* must allow any origin")
	}
}

func TestHashSecretIsStableAndOneWay(t *testing.T) {
	a, b := property.HashSecret("sk_abc"), property.HashSecret("sk_abc")
	if a != b || len(a) != 64 || a == "sk_abc" {
		t.Fatalf("HashSecret gave %q and %q", a, b)
	}
	if property.HashSecret("sk_abd") == a {
		t.Fatal("different secrets hash alike")
	}
}
