package property_test

import (
	"strings"
	"testing"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/property"
)

func TestNormalizeTheme(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   property.Theme
		want property.Theme
		// bad is a piece of the error message, "" when the theme is fine.
		bad string
	}{
		{name: "empty is no theme", in: property.Theme{}, want: property.Theme{}},
		{name: "colours lower-cased and trimmed", in: property.Theme{ColorPrimary: " #0B5FFF ", ColorAccent: "#ffbf47"}, want: property.Theme{ColorPrimary: "#0b5fff", ColorAccent: "#ffbf47"}},
		{name: "https logo", in: property.Theme{LogoURL: "https://cdn.example.com/brand/logo.svg?v=2"}, want: property.Theme{LogoURL: "https://cdn.example.com/brand/logo.svg?v=2"}},
		{name: "logo with port and percent-encoding", in: property.Theme{LogoURL: "https://cdn.example.com:8443/a%20b.png"}, want: property.Theme{LogoURL: "https://cdn.example.com:8443/a%20b.png"}},
		{name: "short colour", in: property.Theme{ColorPrimary: "#fff"}, bad: "color_primary"},
		{name: "colour without #", in: property.Theme{ColorAccent: "0b5fff"}, bad: "color_accent"},
		{name: "colour name", in: property.Theme{ColorPrimary: "red"}, bad: "#rrggbb"},
		{name: "colour not hex", in: property.Theme{ColorPrimary: "#12345g"}, bad: "color_primary"},
		{name: "CSS injection in a colour", in: property.Theme{ColorPrimary: "#fff;}body{background:url(https://evil.example/x)"}, bad: "color_primary"},
		{name: "rgb()", in: property.Theme{ColorAccent: "rgb(1,2,3)"}, bad: "color_accent"},
		{name: "http logo", in: property.Theme{LogoURL: "http://cdn.example.com/logo.png"}, bad: "https"},
		{name: "javascript logo", in: property.Theme{LogoURL: "javascript:alert(1)"}, bad: "logo_url"},
		{name: "data logo", in: property.Theme{LogoURL: "data:image/svg+xml,<svg onload=alert(1)>"}, bad: "logo_url"},
		{name: "relative logo", in: property.Theme{LogoURL: "/logo.png"}, bad: "logo_url"},
		{name: "protocol-relative logo", in: property.Theme{LogoURL: "//cdn.example.com/logo.png"}, bad: "logo_url"},
		{name: "credentials in logo", in: property.Theme{LogoURL: "https://u:p@cdn.example.com/logo.png"}, bad: "logo_url"},
		{name: "fragment", in: property.Theme{LogoURL: "https://cdn.example.com/logo.png#x"}, bad: "logo_url"},
		{name: "quote breaks out of an attribute", in: property.Theme{LogoURL: `https://cdn.example.com/x.png"onerror="alert(1)`}, bad: "logo_url"},
		{name: "angle brackets", in: property.Theme{LogoURL: "https://cdn.example.com/<script>.png"}, bad: "logo_url"},
		{name: "CSS url() breakout", in: property.Theme{LogoURL: "https://cdn.example.com/x.png);}*{color:red"}, bad: "logo_url"},
		{name: "CSP directive in the host", in: property.Theme{LogoURL: "https://cdn.example.com;script-src/x.png"}, bad: "logo_url"},
		{name: "newline", in: property.Theme{LogoURL: "https://cdn.example.com/x.png\r\nSet-Cookie: a=b"}, bad: "logo_url"},
		{name: "non-ASCII", in: property.Theme{LogoURL: "https://bücher.example/logo.png"}, bad: "logo_url"},
		{name: "too long", in: property.Theme{LogoURL: "https://cdn.example.com/" + strings.Repeat("a", 2000)}, bad: "longer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := property.NormalizeTheme(tc.in)
			if tc.bad != "" {
				if onramp.ErrorCode(err) != onramp.EINVALID || !strings.Contains(onramp.ErrorMessage(err), tc.bad) {
					t.Fatalf("err = %v; want EINVALID mentioning %q", err, tc.bad)
				}
				if len(onramp.ErrorMessage(err)) > 300 {
					t.Errorf("error message is %d bytes long: %q", len(onramp.ErrorMessage(err)), onramp.ErrorMessage(err))
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestLogoOrigin(t *testing.T) {
	for logo, want := range map[string]string{
		"":                                   "",
		"https://CDN.example.com/logo.svg":   "https://cdn.example.com",
		"https://cdn.example.com:8443/l.png": "https://cdn.example.com:8443",
	} {
		if got := (property.Theme{LogoURL: logo}).LogoOrigin(); got != want {
			t.Errorf("LogoOrigin(%q) = %q, want %q", logo, got, want)
		}
	}
}
