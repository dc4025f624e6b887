package httpapi_test

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/httpapi"
)

// The console's server side: who may open which page, the headers of
// every /admin response, and how its assets are served. What the pages do
// in a browser is tested in e2e/console_test.go.

const wantConsoleCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// consoleGet GETs path with b's cookies without following redirects.
func consoleGet(t *testing.T, s *testStack, b *browser, path string, headers ...string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b != nil {
		for _, c := range b.jar.Cookies(b.base) {
			req.AddCookie(c)
		}
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: body}
}

func wantConsoleHeaders(t *testing.T, what string, r reply) {
	t.Helper()
	if got := r.header.Get("Content-Security-Policy"); got != wantConsoleCSP {
		t.Errorf("%s: CSP = %q", what, got)
	}
	if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options = %q", what, got)
	}
	if got := r.header.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("%s: Referrer-Policy = %q", what, got)
	}
}

// staffBrowser signs up email, makes them staff with role (through the
// owner token) and signs them in again (becoming staff ends sessions).
func staffBrowser(t *testing.T, s *testStack, email, role string) *browser {
	t.Helper()
	const pw = "a long staff passphrase"
	wantAt(t, s.browser().signUp(email, pw, ""), "/account")
	if r := s.api(s.owner, http.MethodPost, "/api/staff", map[string]string{"email": email, "role": role}); r.status != http.StatusCreated {
		t.Fatalf("make %s %s: %d %s", email, role, r.status, r.body)
	}
	b := s.browser()
	wantAt(t, b.signInPassword(email, pw), "/account")
	return b
}

func TestConsolePagesByRole(t *testing.T) {
	s := newTestStack(t)
	// Not signed in: to the sign-in page, coming back to the same URL.
	r := consoleGet(t, s, nil, "/admin/people?q=ada")
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/auth/sign-in?return_to="+url.QueryEscape("/admin/people?q=ada") {
		t.Errorf("anonymous /admin/people: %d Location %q", r.status, r.header.Get("Location"))
	}
	wantConsoleHeaders(t, "redirect", r)

	// Signed in without a staff role: 403 page.
	plain := s.browser()
	wantAt(t, plain.signUp("pat@example.com", "pat's long passphrase", ""), "/account")
	r = consoleGet(t, s, plain, "/admin")
	if r.status != http.StatusForbidden || !strings.Contains(string(r.body), "no staff role") || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Errorf("non-staff /admin: %d %s", r.status, r.body)
	}
	wantConsoleHeaders(t, "non-staff 403", r)

	browsers := map[string]*browser{}
	for _, role := range []string{auth.RoleAdmin, auth.RoleDeveloper, auth.RoleMarketer, auth.RoleSupport} {
		browsers[role] = staffBrowser(t, s, role+"@example.com", role)
	}
	pages := map[string]auth.Permission{
		"/admin": auth.ReadPeople, "/admin/": auth.ReadPeople, "/admin/people": auth.ReadPeople, "/admin/people/per_123": auth.ReadPeople,
		"/admin/properties": auth.ReadProperties, "/admin/properties/new": auth.ManageProperties, "/admin/properties/prop_1": auth.ReadProperties,
		"/admin/staff": auth.ManageStaff, "/admin/audit": auth.ReadAudit, "/admin/imports": auth.WritePeople,
	}
	for role, b := range browsers {
		for path, perm := range pages {
			r := consoleGet(t, s, b, path)
			wantConsoleHeaders(t, role+" "+path, r)
			if auth.Allows(role, perm) {
				if r.status != http.StatusOK || !strings.Contains(string(r.body), `<script type="module" src="/admin/assets/`) {
					t.Errorf("%s GET %s: %d, want the console page:\n%s", role, path, r.status, r.body)
				}
				if cc := r.header.Get("Cache-Control"); cc != "no-store" {
					t.Errorf("%s GET %s: Cache-Control %q", role, path, cc)
				}
				continue
			}
			if r.status != http.StatusForbidden || !strings.Contains(string(r.body), string(perm)) || !strings.Contains(string(r.body), "signed in as "+role) {
				t.Errorf("%s GET %s: %d, want 403 naming %s:\n%s", role, path, r.status, perm, r.body)
			}
		}
	}
	// The support agent is refused the staff page and its API alike.
	r = consoleGet(t, s, browsers[auth.RoleSupport], "/admin/staff")
	if !strings.Contains(string(r.body), "owner and admin roles") {
		t.Errorf("support /admin/staff does not say who may open it:\n%s", r.body)
	}
	wantProblem(t, s.sessionAPI(browsers[auth.RoleSupport], http.MethodGet, "/api/staff", "", nil), http.StatusForbidden)

	// Unknown console paths are 404 pages, with the headers.
	r = consoleGet(t, s, browsers[auth.RoleAdmin], "/admin/nothing/here")
	if r.status != http.StatusNotFound || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Errorf("/admin/nothing/here: %d %s", r.status, r.body)
	}
	wantConsoleHeaders(t, "404", r)

	// Who-am-I names the role's permissions, which the console's navigation uses.
	var me struct {
		Role        string   `json:"role"`
		Permissions []string `json:"permissions"`
		CSRF        string   `json:"csrf_token"`
	}
	s.sessionAPI(browsers[auth.RoleSupport], http.MethodGet, "/api/auth/session", "", nil).json(t, &me)
	if me.Role != auth.RoleSupport || strings.Join(me.Permissions, ",") != "people:read,properties:read,sessions:revoke" || me.CSRF == "" {
		t.Errorf("support who-am-I: %+v", me)
	}
}

// TestConsoleOwnerSetupAndSignIn: the first-start link ends in the
// console, and so does a sign-in that was sent back there.
func TestConsoleOwnerSetupAndSignIn(t *testing.T) {
	s := newTestStack(t)
	link, err := s.accounts.OwnerLink(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	b := s.browser()
	p := b.get(link[strings.Index(link, "/setup/"):])
	if f := p.form(t, "/setup/owner"); f.values.Get("return_to") != "/admin" {
		t.Errorf("setup form return_to = %q", f.values.Get("return_to"))
	}
	wantAt(t, b.submit(p.form(t, "/setup/owner"), "email", "owner@example.com", "password", "a long founder passphrase"), "/admin")

	// Signed out, /admin/people sends the owner to sign in and back.
	b2 := s.browser()
	p = b2.get("/admin/people?q=x")
	wantAt(t, p, "/auth/sign-in")
	p = b2.submit(p.form(t, "/auth/sign-in"), "email", "owner@example.com", "password", "a long founder passphrase", "action", "password")
	wantAt(t, p, "/admin/people")
	if p.url.RawQuery != "q=x" {
		t.Errorf("after sign-in at %s, want the query kept", p.url)
	}
}

func TestConsoleAssets(t *testing.T) {
	s := newTestStack(t)
	b := s.browser()
	link, err := s.accounts.OwnerLink(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p := b.get(link[strings.Index(link, "/setup/"):])
	wantAt(t, b.submit(p.form(t, "/setup/owner"), "email", "owner@example.com", "password", "a long founder passphrase"), "/admin")
	page := consoleGet(t, s, b, "/admin")
	m := regexp.MustCompile(`/admin/assets/([0-9a-f]+)/js/app\.js`).FindStringSubmatch(string(page.body))
	if m == nil {
		t.Fatalf("the page links no versioned app.js:\n%s", page.body)
	}
	version := m[1]
	for file, ctype := range map[string]string{
		"console.css": "text/css; charset=utf-8", "js/app.js": "text/javascript; charset=utf-8", "js/dom.js": "text/javascript; charset=utf-8",
		"js/api.js": "text/javascript; charset=utf-8", "js/charts.js": "text/javascript; charset=utf-8", "js/pages/person.js": "text/javascript; charset=utf-8",
	} {
		r := consoleGet(t, s, nil, "/admin/assets/"+version+"/"+file)
		if r.status != http.StatusOK || r.header.Get("Content-Type") != ctype {
			t.Errorf("%s: %d %q", file, r.status, r.header.Get("Content-Type"))
		}
		if cc := r.header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("%s: Cache-Control %q", file, cc)
		}
		wantConsoleHeaders(t, file, r)
		if r := consoleGet(t, s, nil, "/admin/assets/"+version+"/"+file, "If-None-Match", r.header.Get("ETag")); r.status != http.StatusNotModified {
			t.Errorf("%s with its ETag: %d", file, r.status)
		}
		// A page from before an upgrade asks with an old version: it gets
		// today's file, not to be cached as the old one.
		if r := consoleGet(t, s, nil, "/admin/assets/0ld/"+file); r.status != http.StatusOK || r.header.Get("Cache-Control") != "no-cache" {
			t.Errorf("%s at an old version: %d %q", file, r.status, r.header.Get("Cache-Control"))
		}
	}
	for _, bad := range []string{"index.html", "js/nothing.js", "../web.go", "js/../../web.go"} {
		if r := consoleGet(t, s, nil, "/admin/assets/"+version+"/"+bad); r.status == http.StatusOK {
			t.Errorf("asset %s: %d", bad, r.status)
		}
	}
}

// TestConsoleRouteTables: the server's page table and the client's route
// table in app.js name the same paths, so no screen is served unchecked
// and no checked page is missing on the client.
func TestConsoleRouteTables(t *testing.T) {
	js, err := os.ReadFile("../web/admin/js/app.js")
	if err != nil {
		t.Fatal(err)
	}
	var client []string
	for _, m := range regexp.MustCompile(`\{ path: '([^']+)'.*perm: '([^']+)'`).FindAllStringSubmatch(string(js), -1) {
		client = append(client, regexp.MustCompile(`:[a-z]+`).ReplaceAllString(m[1], "{}")+" "+m[2])
	}
	var server []string
	for _, p := range httpapi.ConsolePages() {
		path := "/admin"
		if p[0] != "" {
			path += "/" + p[0]
		}
		server = append(server, regexp.MustCompile(`\{[a-z]+\}`).ReplaceAllString(path, "{}")+" "+p[1])
	}
	sort.Strings(client)
	sort.Strings(server)
	if strings.Join(client, "\n") != strings.Join(server, "\n") {
		t.Errorf("app.js routes:\n%s\nconsolePages:\n%s", strings.Join(client, "\n"), strings.Join(server, "\n"))
	}
}
