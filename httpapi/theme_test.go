package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/property"
	"github.com/onramp-dev/onramp/sqlite"
)

// TestPropertyThemeAPI: POST and PATCH /api/properties take a theme,
// refuse values of any other shape with a clear 400 that changes nothing,
// and {} removes it.
func TestPropertyThemeAPI(t *testing.T) {
	s := newTestStack(t)
	type themed struct {
		ID    string            `json:"id"`
		Theme map[string]string `json:"theme"`
	}
	r := s.api(s.owner, http.MethodPost, "/api/properties", map[string]any{
		"name": "Shop", "theme": map[string]string{"logo_url": "https://cdn.example.com/shop.svg", "color_primary": "#0B5FFF"},
	})
	if r.status != http.StatusCreated {
		t.Fatalf("create = %d %s", r.status, r.body)
	}
	var p themed
	r.json(t, &p)
	if p.Theme["logo_url"] != "https://cdn.example.com/shop.svg" || p.Theme["color_primary"] != "#0b5fff" || p.Theme["color_accent"] != "" {
		t.Errorf("created theme = %v", p.Theme)
	}

	before := len(s.listProperties())
	for _, bad := range []struct {
		theme   map[string]string
		mention string
	}{
		{map[string]string{"color_primary": "red"}, "color_primary"},
		{map[string]string{"color_accent": "#fff;}body{display:none"}, "color_accent"},
		{map[string]string{"logo_url": "http://cdn.example.com/x.png"}, "https"},
		{map[string]string{"logo_url": "javascript:alert(1)"}, "logo_url"},
		{map[string]string{"logo_url": `https://cdn.example.com/x.png"><script>alert(1)</script>`}, "logo_url"},
	} {
		pr := wantProblem(t, s.api(s.owner, http.MethodPost, "/api/properties", map[string]any{"name": "Evil", "theme": bad.theme}), http.StatusBadRequest)
		if !strings.Contains(pr.Detail, bad.mention) {
			t.Errorf("create with theme %v: detail %q does not mention %s", bad.theme, pr.Detail, bad.mention)
		}
		pr = wantProblem(t, s.api(s.owner, http.MethodPatch, "/api/properties/"+p.ID, map[string]any{"theme": bad.theme}), http.StatusBadRequest)
		if !strings.Contains(pr.Detail, bad.mention) {
			t.Errorf("patch with theme %v: detail %q does not mention %s", bad.theme, pr.Detail, bad.mention)
		}
	}
	if after := len(s.listProperties()); after != before {
		t.Errorf("refused creations left %d properties behind", after-before)
	}
	r = s.api(s.owner, http.MethodGet, "/api/properties/"+p.ID, nil)
	var got themed
	r.json(t, &got)
	if got.Theme["logo_url"] != "https://cdn.example.com/shop.svg" || got.Theme["color_primary"] != "#0b5fff" {
		t.Errorf("refused patches changed the theme: %v", got.Theme)
	}

	// A patch without theme keeps it; a theme replaces it whole; {} clears.
	r = s.api(s.owner, http.MethodPatch, "/api/properties/"+p.ID, map[string]any{"name": "Shop 2"})
	r.json(t, &got)
	if got.Theme["color_primary"] != "#0b5fff" {
		t.Errorf("a patch without theme changed it: %s", r.body)
	}
	r = s.api(s.owner, http.MethodPatch, "/api/properties/"+p.ID, map[string]any{"theme": map[string]string{"color_accent": "#FFBF47"}})
	got = themed{}
	r.json(t, &got)
	if r.status != http.StatusOK || len(got.Theme) != 1 || got.Theme["color_accent"] != "#ffbf47" {
		t.Errorf("replacing the theme = %d %s", r.status, r.body)
	}
	r = s.api(s.owner, http.MethodPatch, "/api/properties/"+p.ID, map[string]any{"theme": map[string]string{}})
	got = themed{}
	r.json(t, &got)
	if r.status != http.StatusOK || len(got.Theme) != 0 || !strings.Contains(string(r.body), `"theme":{}`) {
		t.Errorf("clearing the theme = %d %s", r.status, r.body)
	}
	wantProblem(t, s.api(s.owner, http.MethodPatch, "/api/properties/"+p.ID, map[string]any{"theme": map[string]string{"colour": "#000000"}}), http.StatusBadRequest)
}

// themedClient makes a property with the given theme and a confidential
// client, and an auth request of that client; it returns the client id
// and the auth request id.
func (s *testStack) themedClient(name string, theme property.Theme) (clientID, authRequestID string) {
	s.t.Helper()
	ctx := context.Background()
	pc, err := s.oauth.CreateProperty(ctx, auth.CreatePropertyParams{
		Property: property.CreateParams{Name: name, Theme: theme},
		Client:   auth.ClientParams{RedirectURIs: []string{"https://" + strings.ToLower(strings.Fields(name)[0]) + ".example.com/cb"}, FirstParty: true},
	})
	if err != nil {
		s.t.Fatalf("create property: %v", err)
	}
	ar, err := s.oauth.CreateAuthRequest(ctx, &auth.AuthRequest{ClientID: pc.Client.ID, RedirectURI: pc.Client.RedirectURIs[0], ResponseType: "code", Scopes: []string{"openid"}})
	if err != nil {
		s.t.Fatalf("create auth request: %v", err)
	}
	return pc.Client.ID, ar.ID
}

// TestThemeCSS: /auth/theme/{client}.css sets the custom properties of
// auth.css from the client's property's theme, with readable button text,
// and nothing for an unthemed one; unknown clients get 404.
func TestThemeCSS(t *testing.T) {
	s := newTestStack(t)
	dark, _ := s.themedClient("Dark", property.Theme{ColorPrimary: "#0B1F3A", ColorAccent: "#FFBF47"})
	light, _ := s.themedClient("Light", property.Theme{ColorPrimary: "#ffe08a"})
	plain, _ := s.themedClient("Plain", property.Theme{})

	r := s.do(http.MethodGet, "/auth/theme/"+dark+".css", nil)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "text/css; charset=utf-8" || r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("theme css = %d %v", r.status, r.header)
	}
	want := ":root {\n  --accent: #0b1f3a;\n  --accent-text: #ffffff;\n  --highlight: #ffbf47;\n  --focus: #ffbf47;\n}\n"
	if !strings.HasSuffix(string(r.body), want) {
		t.Errorf("dark theme css =\n%s\nwant it to end with\n%s", r.body, want)
	}
	r = s.do(http.MethodGet, "/auth/theme/"+light+".css", nil)
	if !strings.Contains(string(r.body), "--accent: #ffe08a;\n  --accent-text: #000000;") || strings.Contains(string(r.body), "--highlight") {
		t.Errorf("light theme css (black text, no accent) =\n%s", r.body)
	}
	r = s.do(http.MethodGet, "/auth/theme/"+plain+".css", nil)
	if r.status != http.StatusOK || strings.Contains(string(r.body), "--") {
		t.Errorf("unthemed css = %d\n%s", r.status, r.body)
	}
	for _, path := range []string{"/auth/theme/cli_nope.css", "/auth/theme/" + dark, "/auth/theme/" + dark + ".js", "/auth/theme/.css"} {
		if r := s.do(http.MethodGet, path, nil); r.status != http.StatusNotFound || strings.Contains(string(r.body), "--accent") {
			t.Errorf("GET %s = %d, want 404", path, r.status)
		}
	}
}

// TestThemedPages: the sign-in, sign-up and code pages of a themed
// client's auth request link its stylesheet and show its logo with the
// property's name as alt text, and the CSP lets that one image origin in;
// an unthemed client's pages, and pages without an auth request, look as
// before.
func TestThemedPages(t *testing.T) {
	s := newTestStack(t)
	client, ar := s.themedClient("Acme Shop", property.Theme{LogoURL: "https://cdn.acme.example/logo.svg", ColorPrimary: "#aa3300"})
	_, plainAR := s.themedClient("Plain", property.Theme{})
	b := s.browser()

	themed := func(p *page) {
		t.Helper()
		links := find(p.doc, func(n *html.Node) bool { return n.Data == "link" && attr(n, "rel") == "stylesheet" })
		if len(links) != 2 || attr(links[0], "href") != "/auth/assets/auth.css" || !strings.HasPrefix(attr(links[1], "href"), "/auth/theme/"+client+".css?v=") {
			t.Errorf("%s: stylesheets %v, want auth.css then the client's theme", p.url, hrefs(links))
		}
		imgs := find(p.doc, func(n *html.Node) bool { return n.Data == "img" })
		if len(imgs) != 1 || attr(imgs[0], "src") != "https://cdn.acme.example/logo.svg" || attr(imgs[0], "alt") != "Acme Shop" {
			t.Errorf("%s: images %d, want the logo with alt text:\n%s", p.url, len(imgs), p.body)
		}
		if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data: https://cdn.acme.example;") || !strings.Contains(csp, "style-src 'self';") {
			t.Errorf("%s: CSP %q", p.url, csp)
		}
		if strings.Contains(p.body, "style=") || strings.Contains(p.body, "<style") {
			t.Errorf("%s: inline style on a themed page", p.url)
		}
	}
	plain := func(p *page) {
		t.Helper()
		links := find(p.doc, func(n *html.Node) bool { return n.Data == "link" })
		if len(links) != 1 || len(find(p.doc, func(n *html.Node) bool { return n.Data == "img" || n.Data == "header" })) != 0 {
			t.Errorf("%s: an unthemed page has %v and a logo or header:\n%s", p.url, hrefs(links), p.body)
		}
		if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data:;") {
			t.Errorf("%s: CSP %q", p.url, csp)
		}
	}

	themed(b.get("/auth/sign-up?authRequest=" + ar))
	p := b.get("/auth/sign-in?authRequest=" + ar)
	wantAt(t, p, "/auth/sign-in")
	themed(p)
	// The code page knows the auth request from the flow.
	p = b.submit(p.form(t, "/auth/sign-in"), "email", "someone@example.com", "action", "code")
	wantAt(t, p, "/auth/verify")
	themed(p)

	plain(b.get("/auth/sign-in?authRequest=" + plainAR))
	plain(b.get("/auth/sign-in"))
	plain(b.get("/auth/sign-in?authRequest=arq_unknown"))

	// The stylesheet the page links serves the theme.
	css := find(p.doc, func(n *html.Node) bool { return n.Data == "link" && strings.HasPrefix(attr(n, "href"), "/auth/theme/") })
	if r := s.do(http.MethodGet, attr(css[0], "href"), nil); !strings.Contains(string(r.body), "--accent: #aa3300;") {
		t.Errorf("linked theme css = %d %s", r.status, r.body)
	}
}

// TestThemeInjection: the property rules refuse theme values that could
// break out (TestPropertyThemeAPI). A property name with markup is
// escaped in the logo's alt text; and should a bad theme reach the store
// some other way, the pages drop it whole: no stylesheet values, no logo,
// no extra CSP origin.
func TestThemeInjection(t *testing.T) {
	s := newTestStack(t)
	_, ar := s.themedClient(`Evil"><script>alert(1)</script>`, property.Theme{LogoURL: "https://cdn.example.com/logo.png"})
	p := s.browser().get("/auth/sign-in?authRequest=" + ar)
	imgs := find(p.doc, func(n *html.Node) bool { return n.Data == "img" })
	if strings.Contains(p.body, "<script>alert") || len(imgs) != 1 || attr(imgs[0], "alt") != `Evil"><script>alert(1)</script>` {
		t.Errorf("a property name with markup reached the page unescaped:\n%s", p.body)
	}

	client, ar := s.themedClient("Safe", property.Theme{ColorPrimary: "#123456", LogoURL: "https://cdn.example.com/safe.png"})
	c, err := s.oauth.Client(context.Background(), client)
	if err != nil {
		t.Fatal(err)
	}
	prop, err := s.props.Get(context.Background(), c.PropertyID)
	if err != nil {
		t.Fatal(err)
	}
	// Written straight to the store, past the rules, as a tampered
	// database would hold it.
	prop.Theme = property.Theme{
		LogoURL:      `https://cdn.example.com/x.png" onerror="alert(1)`,
		ColorPrimary: "#fff;}body{background:url(https://evil.example/x)}",
		ColorAccent:  "red",
	}
	if err := s.db.InTx(context.Background(), func(q *sqlite.Queries) error { return q.UpdateProperty(context.Background(), prop) }); err != nil {
		t.Fatal(err)
	}
	r := s.do(http.MethodGet, "/auth/theme/"+client+".css", nil)
	if r.status != http.StatusOK || strings.Contains(string(r.body), "evil") || strings.Contains(string(r.body), "red") || strings.Contains(string(r.body), "--accent") {
		t.Errorf("tampered theme css = %d\n%s", r.status, r.body)
	}
	p = s.browser().get("/auth/sign-in?authRequest=" + ar)
	if strings.Contains(p.body, "onerror") || strings.Contains(p.body, "/auth/theme/") || len(find(p.doc, func(n *html.Node) bool { return n.Data == "img" })) != 0 {
		t.Errorf("a tampered theme reached the page:\n%s", p.body)
	}
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data:;") {
		t.Errorf("CSP %q names a tampered origin", csp)
	}
}

func hrefs(ns []*html.Node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, attr(n, "href"))
	}
	return out
}
