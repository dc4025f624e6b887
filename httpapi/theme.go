package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/property"
)

// Theming: a property's logo and colours on the hosted pages of a flow
// that signs in for one of its clients. The colours reach the page as CSS
// custom properties in a stylesheet of their own, because the pages' CSP
// allows no inline style; the logo is an <img> in the page header. The
// values were validated by the property rules (#rrggbb, a plain https
// URL), and html/template escapes them again where they land in HTML.

// themeView is the look of one page.
type themeView struct {
	// CSSHref is the client's theme stylesheet, versioned by the theme so
	// a change is not hidden by a cached copy.
	CSSHref string
	LogoURL string
	// LogoAlt names the property, which is what the logo says.
	LogoAlt string
	// logoOrigin is allowed in the page's CSP img-src.
	logoOrigin string
}

// clientProperty returns the property of an OAuth client.
func (s *Server) clientProperty(ctx context.Context, clientID string) (*property.Property, error) {
	if s.OAuth == nil || s.Properties == nil {
		return nil, onramp.Errorf(onramp.ENOTFOUND, "No such client.")
	}
	c, err := s.OAuth.Client(ctx, clientID)
	if err != nil {
		if onramp.ErrorCode(err) == onramp.EINTERNAL {
			return nil, err
		}
		return nil, onramp.Errorf(onramp.ENOTFOUND, "No such client.")
	}
	return s.Properties.Get(ctx, c.PropertyID)
}

// pageTheme is the theme of a page working for an OIDC auth request, nil
// when the request's client's property has none (or the request is
// unknown: the page then shows its own error in Onramp's look).
func (s *Server) pageTheme(ctx context.Context, authRequestID string) *themeView {
	if authRequestID == "" || s.OAuth == nil {
		return nil
	}
	ar, err := s.OAuth.AuthRequest(ctx, authRequestID)
	if err != nil {
		return nil
	}
	p, err := s.clientProperty(ctx, ar.ClientID)
	if err != nil {
		return nil
	}
	t, ok := s.validTheme(ctx, p)
	if !ok || t.IsZero() {
		return nil
	}
	return &themeView{
		CSSHref: "/auth/theme/" + url.PathEscape(ar.ClientID) + ".css?v=" + themeVersion(t),
		LogoURL: t.LogoURL, LogoAlt: p.Name, logoOrigin: t.LogoOrigin(),
	}
}

// validTheme checks the stored theme again before it reaches a page: a
// value that went into the database some other way than through the
// property rules is dropped whole, with a warning, rather than shown.
func (s *Server) validTheme(ctx context.Context, p *property.Property) (property.Theme, bool) {
	t, err := property.NormalizeTheme(p.Theme)
	if err != nil {
		s.log.WarnContext(ctx, "a property's stored theme is invalid; showing Onramp's own look", "property_id", p.ID, "err", err)
		return property.Theme{}, false
	}
	return t, true
}

func themeVersion(t property.Theme) string {
	sum := sha256.Sum256([]byte(t.LogoURL + "\x00" + t.ColorPrimary + "\x00" + t.ColorAccent))
	return hex.EncodeToString(sum[:6])
}

// themeCSS serves GET /auth/theme/{client_id}.css: the custom properties
// auth.css reads, set from the client's property's theme. A property
// without colours gets a stylesheet that changes nothing.
func (s *Server) themeCSS(w http.ResponseWriter, r *http.Request) {
	clientID, ok := strings.CutSuffix(r.PathValue("file"), ".css")
	if !ok || clientID == "" {
		s.pageError(w, r, onramp.Errorf(onramp.ENOTFOUND, "No such theme."))
		return
	}
	p, err := s.clientProperty(r.Context(), clientID)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	t, _ := s.validTheme(r.Context(), p)
	h := w.Header()
	h.Set("Content-Type", "text/css; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(themeStylesheet(t))
}

// themeStylesheet writes the theme as CSS custom properties. Only values
// that passed property.NormalizeTheme reach it; it parses the colours once
// more anyway, as what it writes is CSS.
func themeStylesheet(t property.Theme) []byte {
	var b strings.Builder
	b.WriteString("/* The property's theme for the hosted sign-in pages (see /auth/assets/auth.css). */\n:root {\n")
	if c, ok := parseHexColor(t.ColorPrimary); ok {
		fmt.Fprintf(&b, "  --accent: %s;\n  --accent-text: %s;\n", c, readableOn(t.ColorPrimary))
	}
	if c, ok := parseHexColor(t.ColorAccent); ok {
		fmt.Fprintf(&b, "  --highlight: %s;\n  --focus: %s;\n", c, c)
	}
	b.WriteString("}\n")
	return []byte(b.String())
}

// parseHexColor returns a #rrggbb colour as it is written into CSS.
func parseHexColor(v string) (string, bool) {
	if len(v) != 7 || v[0] != '#' {
		return "", false
	}
	if _, err := strconv.ParseUint(v[1:], 16, 32); err != nil {
		return "", false
	}
	return strings.ToLower(v), true
}

// readableOn picks black or white text for a background colour, whichever
// contrasts more (WCAG 2 relative luminance), so a light brand colour
// does not leave white button text unreadable.
func readableOn(bg string) string {
	n, err := strconv.ParseUint(strings.TrimPrefix(bg, "#"), 16, 32)
	if err != nil {
		return "#ffffff"
	}
	lin := func(c uint64) float64 {
		v := float64(c) / 255
		if v <= 0.04045 {
			return v / 12.92
		}
		return math.Pow((v+0.055)/1.055, 2.4)
	}
	l := 0.2126*lin(n>>16&0xff) + 0.7152*lin(n>>8&0xff) + 0.0722*lin(n&0xff)
	// Contrast with white is 1.05/(l+0.05), with black (l+0.05)/0.05.
	if 1.05/(l+0.05) >= (l+0.05)/0.05 {
		return "#ffffff"
	}
	return "#000000"
}
