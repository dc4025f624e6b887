package property

import (
	"net/url"
	"strings"

	"github.com/onramp-dev/onramp"
)

// Theme is a property's look on the hosted sign-in pages: a logo and two
// colours. The values end up in a stylesheet, in HTML attributes and in
// the pages' Content-Security-Policy header, so they are held to shapes
// that cannot carry anything else (#rrggbb, a plain https URL) rather than
// escaped case by case.
type Theme struct {
	// LogoURL is an absolute https URL of an image, or empty.
	LogoURL string `json:"logo_url,omitempty"`
	// ColorPrimary colours buttons and links; ColorAccent highlights
	// (focus ring, notices). "#rrggbb", lower-case, or empty.
	ColorPrimary string `json:"color_primary,omitempty"`
	ColorAccent  string `json:"color_accent,omitempty"`
}

// IsZero reports whether the theme sets nothing (Onramp's own look).
func (t Theme) IsZero() bool { return t == Theme{} }

// LogoOrigin is the scheme and host of the logo ("" without one), which
// the pages allow in their CSP img-src.
func (t Theme) LogoOrigin() string {
	u, err := url.Parse(t.LogoURL)
	if t.LogoURL == "" || err != nil || u.Scheme != "https" || !plainHost(u.Host) {
		return ""
	}
	return "https://" + strings.ToLower(u.Host)
}

// maxLogoURL bounds the logo URL: it is repeated in every page and in a
// response header.
const maxLogoURL = 2000

// NormalizeTheme checks a theme and returns it with its colours
// lower-cased and surrounding spaces trimmed.
func NormalizeTheme(t Theme) (Theme, error) {
	var err error
	if t.ColorPrimary, err = normColor("color_primary", t.ColorPrimary); err != nil {
		return Theme{}, err
	}
	if t.ColorAccent, err = normColor("color_accent", t.ColorAccent); err != nil {
		return Theme{}, err
	}
	if t.LogoURL, err = normLogoURL(t.LogoURL); err != nil {
		return Theme{}, err
	}
	return t, nil
}

func normColor(field, v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	ok := len(v) == 7 && v[0] == '#'
	for i := 1; ok && i < len(v); i++ {
		c := v[i]
		ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
	}
	if !ok {
		return "", onramp.Errorf(onramp.EINVALID, "theme %s %q must be a colour written #rrggbb (six hex digits), such as #0b5fff", field, clip(v))
	}
	return strings.ToLower(v), nil
}

// normLogoURL accepts an absolute https URL with a plain host and no
// credentials or fragment. Quotes, spaces, angle brackets, backslashes and
// control characters are refused outright, so the value cannot leave an
// attribute, a CSS string or a header whatever writes it.
func normLogoURL(v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	bad := func() (string, error) {
		return "", onramp.Errorf(onramp.EINVALID, "theme logo_url %q must be an absolute https URL such as https://cdn.example.com/logo.svg (ASCII, no credentials, fragment, spaces, quotes or brackets)", clip(v))
	}
	if len(v) > maxLogoURL {
		return "", onramp.Errorf(onramp.EINVALID, "theme logo_url is longer than %d characters", maxLogoURL)
	}
	for _, c := range v {
		if c <= 0x20 || c == 0x7f || strings.ContainsRune("\"'<>\\`(){};", c) || c > 0x7e {
			return bad()
		}
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" || !plainHost(u.Host) {
		return bad()
	}
	return v, nil
}

// plainHost reports whether h is a DNS name or IP literal with an
// optional port: the pages' CSP names the logo's origin, and a host with
// anything else in it could add directives.
func plainHost(h string) bool {
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-:[]", c)) {
			return false
		}
	}
	return true
}

// clip keeps error messages short when someone sends a long value.
func clip(v string) string {
	if len(v) > 80 {
		return v[:80] + "…"
	}
	return v
}
