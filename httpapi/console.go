package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/web"
)

// The staff console (docs/design/console.md): one HTML page whose ES
// modules route on the client, served here behind a server-side check of
// each page's permission, so a role is refused a page by the server and not
// only by a hidden link. The console's data comes from the JSON API, which
// checks permissions again on every call.

// consoleCSP is the policy of every /admin response: the console's own
// scripts, styles and fetches only, and nothing inline, so data that slips
// into the DOM as markup still cannot run.
const consoleCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// consolePage is one client route of the console and the permission the
// server checks before serving it. Pattern segments in braces match any one
// segment; the first matching entry wins, so literal paths come before
// their siblings with a parameter.
type consolePage struct {
	Pattern string // below /admin, without slashes at either end; "" is home
	Name    string // what the 403 page calls it
	Perm    auth.Permission
}

// consolePages mirrors the route table of web/admin/js/app.js (a test
// checks that both list the same paths). A new screen adds its line here.
var consolePages = []consolePage{
	{Pattern: "", Name: "Home", Perm: auth.ReadPeople},
	{Pattern: "people", Name: "People", Perm: auth.ReadPeople},
	{Pattern: "people/{id}", Name: "Person", Perm: auth.ReadPeople},
	{Pattern: "properties", Name: "Properties", Perm: auth.ReadProperties},
	{Pattern: "properties/new", Name: "New property", Perm: auth.ManageProperties},
	{Pattern: "properties/{id}", Name: "Property", Perm: auth.ReadProperties},
	{Pattern: "staff", Name: "Staff", Perm: auth.ManageStaff},
	{Pattern: "audit", Name: "Audit log", Perm: auth.ReadAudit},
	{Pattern: "imports", Name: "Imports and exports", Perm: auth.WritePeople},
}

// matchConsolePage finds the page of a path below /admin ("people/p_1").
func matchConsolePage(rest string) *consolePage {
	rest = strings.Trim(rest, "/")
	got := strings.Split(rest, "/")
	for i := range consolePages {
		p := &consolePages[i]
		want := strings.Split(p.Pattern, "/")
		if len(want) != len(got) {
			continue
		}
		ok := true
		for j := range want {
			param := strings.HasPrefix(want[j], "{")
			if (param && got[j] == "") || (!param && want[j] != got[j]) {
				ok = false
				break
			}
		}
		if ok {
			return p
		}
	}
	return nil
}

// consoleAsset is one embedded file of web/admin with what its response
// needs, computed once.
type consoleAsset struct {
	body  []byte
	ctype string
	etag  string
}

// consoleSet is the console's embedded files. Version is a hash of all of
// them: asset URLs carry it as their first path segment
// (/admin/assets/<version>/js/app.js), so relative ES module imports keep
// the version and every file can be cached as immutable.
type consoleSet struct {
	version string
	index   []byte
	assets  map[string]consoleAsset
	refusal *template.Template
}

// loadConsole reads web/admin. A missing file is a build defect, caught by
// every test that makes a Server, so it panics like loadPages.
func loadConsole() *consoleSet {
	root, err := fs.Sub(web.Assets, "admin")
	if err != nil {
		panic(err)
	}
	cs := &consoleSet{assets: map[string]consoleAsset{}}
	var names []string
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		names = append(names, p)
		return nil
	})
	if err != nil {
		panic(err)
	}
	sort.Strings(names)
	all := sha256.New()
	for _, name := range names {
		b, err := fs.ReadFile(root, name)
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		all.Write([]byte(name))
		all.Write(sum[:])
		cs.assets[name] = consoleAsset{body: b, ctype: assetType(name), etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	cs.version = hex.EncodeToString(all.Sum(nil)[:6])
	index, ok := cs.assets["index.html"]
	if !ok {
		panic("web/admin/index.html is missing")
	}
	// The page is not an asset: it is served only behind the session check.
	delete(cs.assets, "index.html")
	cs.index = bytes.ReplaceAll(index.body, []byte("/admin/assets/VERSION/"), []byte("/admin/assets/"+cs.version+"/"))
	cs.refusal = template.Must(template.New("refusal").Parse(refusalPage))
	return cs
}

// assetType is the Content-Type of a console file. Module scripts must be
// served as JavaScript, or the browser (with nosniff) refuses them.
func assetType(name string) string {
	switch path.Ext(name) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".html":
		return "text/html; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".json":
		return "application/json"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

func (s *Server) consoleRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /admin", s.consolePage)
	m.HandleFunc("GET /admin/{path...}", s.consolePage)
	m.HandleFunc("GET /admin/assets/{version}/{file...}", s.consoleAsset)
}

// setConsoleHeaders puts the console's security headers on a response.
func setConsoleHeaders(h http.Header) {
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

// consolePage serves the console's page for a client route after checking
// the staff session and the route's permission.
func (s *Server) consolePage(w http.ResponseWriter, r *http.Request) {
	setConsoleHeaders(w.Header())
	w.Header().Set("Cache-Control", "no-store")
	page := matchConsolePage(strings.TrimPrefix(r.URL.Path, "/admin"))
	if page == nil {
		s.consoleRefuse(w, r, http.StatusNotFound, refusal{Title: "No such page", Message: "The console has no page at " + r.URL.Path + ".", Link: "/admin", LinkText: "Go to the console's home"})
		return
	}
	if s.Accounts == nil {
		s.consoleRefuse(w, r, http.StatusServiceUnavailable, refusal{Title: "Console unavailable", Message: "This server runs without accounts, so nobody can sign in to the console."})
		return
	}
	ctx := r.Context()
	ses, err := s.Accounts.CheckSession(ctx, s.sessionSecret(r))
	if onramp.ErrorCode(err) == onramp.EUNAUTHORIZED {
		http.Redirect(w, r, "/auth/sign-in?"+url.Values{"return_to": {r.URL.RequestURI()}}.Encode(), http.StatusSeeOther)
		return
	}
	if err != nil {
		s.consoleFailed(w, r, err)
		return
	}
	staff, err := s.Accounts.StaffOf(ctx, ses.PersonID)
	if onramp.ErrorCode(err) == onramp.ENOTFOUND {
		s.consoleRefuse(w, r, http.StatusForbidden, refusal{Title: "Not staff", Message: "Your account has no staff role, so it cannot open the console. An owner or admin can invite you.", Link: "/account", LinkText: "Your account"})
		return
	}
	if err != nil {
		s.consoleFailed(w, r, err)
		return
	}
	if s.Accounts.StaffNeedsMFA(ctx, ses) {
		s.consoleRefuse(w, r, http.StatusForbidden, refusal{Title: "Second factor required", Message: onramp.ErrorMessage(errStaffMFA), Link: "/account/mfa", LinkText: "Set up two-step sign-in"})
		return
	}
	if !auth.Allows(staff.Role, page.Perm) {
		s.consoleRefuse(w, r, http.StatusForbidden, refusal{
			Title:   "Not for your role",
			Message: "The " + page.Name + " page needs the " + string(page.Perm) + " permission, which the " + rolesAllowed(page.Perm) + " may use. You are signed in as " + staff.Role + ".",
			Link:    "/admin", LinkText: "Go to the console's home",
		})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(s.console.index)
}

// rolesAllowed names the roles that hold perm, in words: "owner and admin
// roles".
func rolesAllowed(perm auth.Permission) string {
	var names []string
	for _, role := range []string{auth.RoleOwner, auth.RoleAdmin, auth.RoleDeveloper, auth.RoleMarketer, auth.RoleSupport} {
		if auth.Allows(role, perm) {
			names = append(names, role)
		}
	}
	switch len(names) {
	case 0:
		return "no"
	case 1:
		return names[0] + " role"
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1] + " roles"
}

// consoleFailed shows an unexpected error as a page; its details go to the
// log, not to the browser.
func (s *Server) consoleFailed(w http.ResponseWriter, r *http.Request, err error) {
	status := pageStatus(w, err)
	msg := "Something went wrong on the server. Try again in a moment."
	if status >= 500 {
		s.log.ErrorContext(r.Context(), "console page", "err", err, "path", r.URL.Path, "request_id", requestID(r.Context()))
	} else {
		msg = onramp.ErrorMessage(err)
	}
	s.consoleRefuse(w, r, status, refusal{Title: "Error", Message: msg, Link: r.URL.Path, LinkText: "Try again"})
}

// consoleAsset serves an embedded file of web/admin. Files of the current
// version are immutable; a request naming another version (a page loaded
// before an upgrade) gets today's file, revalidated rather than cached as
// if it were the old one.
func (s *Server) consoleAsset(w http.ResponseWriter, r *http.Request) {
	setConsoleHeaders(w.Header())
	a, ok := s.console.assets[r.PathValue("file")]
	if !ok {
		s.consoleRefuse(w, r, http.StatusNotFound, refusal{Title: "No such file", Message: "The console has no file " + r.URL.Path + "."})
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	if r.PathValue("version") == s.console.version {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// refusal is what the console's error page says.
type refusal struct {
	Title, Message, Link, LinkText string
	Version                        string
}

const refusalPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · Onramp console</title>
<link rel="stylesheet" href="/admin/assets/{{.Version}}/console.css">
</head>
<body class="refusal">
<main class="refusal-box">
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{- if .Link}}
<p><a href="{{.Link}}">{{.LinkText}}</a></p>
{{- end}}
</main>
</body>
</html>
`

// consoleRefuse answers with the console's error page.
func (s *Server) consoleRefuse(w http.ResponseWriter, r *http.Request, status int, v refusal) {
	v.Version = s.console.version
	var buf bytes.Buffer
	if err := s.console.refusal.Execute(&buf, v); err != nil {
		s.log.ErrorContext(r.Context(), "render console refusal", "err", err, "request_id", requestID(r.Context()))
		buf.Reset()
		buf.WriteString(v.Title + "\n")
	}
	h := w.Header()
	setConsoleHeaders(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Del("ETag")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
