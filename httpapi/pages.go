package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/language"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/web"
)

// This file renders the hosted pages (sign-in, sign-up, verify, magic
// link, owner setup, account): html/template files and messages embedded
// from web/auth, one language per request, and the headers every page
// carries. The handlers are in authpages.go and account.go.

// pageSet holds the parsed templates and the messages of each language.
type pageSet struct {
	pages   map[string]*template.Template
	css     []byte
	locales map[string]*locale
	matcher language.Matcher
	tags    []string // the supported languages, matcher order
}

// locale is one language's messages. Errors maps the English message of
// an auth error to its translation; a message without one shows in
// English rather than not at all.
type locale struct {
	Messages map[string]string `json:"messages"`
	Errors   map[string]string `json:"errors"`
}

// passkeyPages load passkey.js (when this server can offer passkeys): the
// only pages with a script, so the only ones whose CSP allows 'self'
// scripts and fetches.
var passkeyPages = map[string]bool{"sign_in": true, "account_passkeys": true}

// loadPages parses the embedded templates. A template error is a build
// defect, caught by every test that makes a Server, so it panics.
func loadPages() *pageSet {
	root, err := fs.Sub(web.Assets, "auth")
	if err != nil {
		panic(err)
	}
	ps := &pageSet{pages: map[string]*template.Template{}, locales: map[string]*locale{}}
	// Every template but the layout is a page: a page can never be
	// written and then forgotten here.
	files, err := fs.Glob(root, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(path.Base(file), ".html")
		if name == "layout" {
			continue
		}
		ps.pages[name] = template.Must(template.ParseFS(root, "templates/layout.html", file))
	}
	if ps.css, err = fs.ReadFile(root, "auth.css"); err != nil {
		panic(err)
	}
	// English first: the matcher falls back to the first tag.
	supported := []language.Tag{language.English, language.German}
	for _, tag := range supported {
		b, err := fs.ReadFile(root, "locales/"+tag.String()+".json")
		if err != nil {
			panic(err)
		}
		var l locale
		if err := json.Unmarshal(b, &l); err != nil {
			panic(fmt.Sprintf("web/auth/locales/%s.json: %v", tag, err))
		}
		ps.locales[tag.String()] = &l
		ps.tags = append(ps.tags, tag.String())
	}
	ps.matcher = language.NewMatcher(supported)
	return ps
}

// lang picks the page language: the OIDC ui_locales (space-separated, in
// the query or carried in a form), then Accept-Language.
func (ps *pageSet) lang(r *http.Request) string {
	return ps.langOf(r.FormValue("ui_locales"), r.Header.Get("Accept-Language"))
}

// langOf picks the language from OIDC ui_locales (space-separated), then
// an Accept-Language header, else English.
func (ps *pageSet) langOf(uiLocales, acceptLanguage string) string {
	var prefs []language.Tag
	for _, f := range strings.Fields(uiLocales) {
		if t, err := language.Parse(f); err == nil {
			prefs = append(prefs, t)
		}
	}
	if len(prefs) == 0 {
		prefs, _, _ = language.ParseAcceptLanguage(acceptLanguage)
	}
	_, i, conf := ps.matcher.Match(prefs...)
	if conf == language.No {
		return ps.tags[0]
	}
	return ps.tags[i]
}

// view is what every page template gets.
type view struct {
	Lang   string
	T      map[string]string
	Title  string
	Wide   bool
	Errors []viewError
	Notice string
	// Hidden fields every form carries.
	CSRF      string
	ReturnTo  string
	UILocales string
	// AuthRequest is the OIDC request a sign-in page works for; links
	// between the sign-in and sign-up pages keep it.
	AuthRequest string
	values      map[string]string

	// Page-specific fields.
	Intro    string
	Action   string
	Token    string
	Message  string
	LinkHref string
	LinkText string
	Account  *accountView
	// Providers are the upstream sign-in buttons (sign-in and sign-up).
	Providers []providerButton
	Scopes    []string    // consent: what the client will see, in words
	Logout    *logoutView // logout confirmation: where to go afterwards
	// Theme is the look of the auth request's client's property (nil:
	// Onramp's own); render fills it.
	Theme *themeView
	// Passkeys: the page loads passkey.js and shows its controls.
	Passkeys    bool
	MFA         *mfaView
	PasskeyList []passkeyView
	// Known is what a recognised browser's sign-up form does not ask.
	Known *knownView

	locale *locale
}

// knownView is the person a recognised browser signs up as: their name
// and email (either may be empty), and the link to a blank sign-up.
type knownView struct {
	Name, Email, NotYou string
}

type viewError struct {
	Field   string
	Message string
	Prefix  string // "Error:" for screen readers, before a field's message
}

func (ps *pageSet) newView(r *http.Request, titleKey string) *view {
	lang := ps.lang(r)
	l := ps.locales[lang]
	v := &view{Lang: lang, T: l.Messages, Title: l.Messages[titleKey], locale: l, values: map[string]string{}}
	v.UILocales = strings.TrimSpace(r.FormValue("ui_locales"))
	if len(v.UILocales) > 100 {
		v.UILocales = ""
	}
	v.ReturnTo = safeReturnTo(r.FormValue("return_to"))
	return v
}

// Value is a submitted form value, shown again after an error. Passwords
// and codes are never put back.
func (v *view) Value(name string) string { return v.values[name] }

// ErrorOf is the error about one field, for the template's field-error
// block and aria attributes (nil when the field is fine).
func (v *view) ErrorOf(field string) *viewError {
	for i := range v.Errors {
		if v.Errors[i].Field == field {
			return &v.Errors[i]
		}
	}
	return nil
}

// Focus reports whether field takes autofocus: the first field when
// there are no errors (with errors the summary takes focus, so screen
// readers announce it first).
func (v *view) Focus(field string) bool {
	return len(v.Errors) == 0 && (field == "email" || field == "code")
}

// Link is a link to another auth page that keeps this page's context.
func (v *view) Link(path string) string {
	q := url.Values{}
	if v.AuthRequest != "" {
		q.Set("authRequest", v.AuthRequest)
	}
	if v.ReturnTo != "" {
		q.Set("return_to", v.ReturnTo)
	}
	if v.UILocales != "" {
		q.Set("ui_locales", v.UILocales)
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// addError adds err, translated, to the error summary, pointing at the
// field the rules name.
func (v *view) addError(err error) {
	msg := onramp.ErrorMessage(err)
	if t, ok := v.locale.Errors[msg]; ok {
		msg = t
	}
	v.Errors = append(v.Errors, viewError{Field: auth.ErrorField(err), Message: msg, Prefix: v.T["error_prefix"]})
}

// pageCSP is the Content-Security-Policy of every page: no script at all,
// styles and images from Onramp only, forms posting only to Onramp (plus,
// during an OIDC sign-in, the client's redirect origins, because Chrome
// applies form-action to the redirects that follow a form post), and no
// framing (clickjacking).
const pageCSP = "default-src 'none'; style-src 'self'; img-src 'self' data:%s; form-action 'self'%s; frame-ancestors 'none'; base-uri 'none'"

// passkeyCSP is what pages with passkey.js add: that file, and its
// fetches to the JSON endpoints, both on this origin only.
const passkeyCSP = "script-src 'self'; connect-src 'self'"

// render writes a page with status. The page is rendered into a buffer
// first, so a template error becomes a clean 500 rather than half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	v.Passkeys = passkeyPages[name] && s.Accounts != nil && s.Accounts.PasskeysAvailable()
	imgExtra := ""
	if v.Theme == nil && v.AuthRequest != "" {
		v.Theme = s.pageTheme(r.Context(), v.AuthRequest)
	}
	if v.Theme != nil && v.Theme.logoOrigin != "" {
		imgExtra = " " + v.Theme.logoOrigin
	}
	var upstreamOrigins string
	if name == "sign_in" || name == "sign_up" {
		// The buttons post here and are redirected to the provider;
		// Chrome checks form-action along that redirect.
		var origins []string
		v.Providers, origins = s.upstreamButtons(r.Context())
		upstreamOrigins = formActionOrigins(origins)
	}
	var buf bytes.Buffer
	t := s.pages.pages[name]
	if t == nil {
		t = template.Must(template.New("missing").Parse(`{{define "layout"}}{{.Missing}}{{end}}`)) // fails below, as a 500
	}
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		s.log.ErrorContext(r.Context(), "render page", "page", name, "err", err, "request_id", requestID(r.Context()))
		status, buf = http.StatusInternalServerError, *bytes.NewBufferString("Internal error.\n")
	}
	extra := upstreamOrigins
	if v.AuthRequest != "" {
		if lo, ok := s.Login.(LoginOrigins); ok {
			for _, o := range lo.FormActionOrigins(r.Context(), v.AuthRequest) {
				if u, err := url.Parse(o); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
					extra += " " + u.Scheme + "://" + u.Host
				}
			}
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	csp := fmt.Sprintf(pageCSP, imgExtra, extra)
	if v.Passkeys {
		csp += "; " + passkeyCSP
	}
	h.Set("Content-Security-Policy", csp)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Language", v.Lang)
	h.Add("Vary", "Accept-Language, Cookie")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderMessage shows a page with one message and an optional link.
func (s *Server) renderMessage(w http.ResponseWriter, r *http.Request, status int, titleKey, message, linkHref, linkTextKey string) {
	v := s.pages.newView(r, titleKey)
	v.Message, v.LinkHref = message, linkHref
	if linkTextKey != "" {
		v.LinkText = v.T[linkTextKey]
	}
	s.render(w, r, status, "message", v)
}

// pageStatus maps an error to the status of the page that shows it, and
// sets Retry-After on 429 and 503 as the JSON API does.
func pageStatus(w http.ResponseWriter, err error) int {
	status := statusOf(onramp.ErrorCode(err))
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(err)))
	}
	return status
}

// retryAfterSeconds is the wait an error asks for, rounded up, at least 1.
func retryAfterSeconds(err error) int {
	retry := time.Second
	var e *onramp.Error
	if errors.As(err, &e) && e.RetryAfter > retry {
		retry = e.RetryAfter
	}
	return int((retry + time.Second - 1) / time.Second)
}

func (s *Server) authCSS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(s.pages.css)
}

// safeReturnTo keeps return_to only when it is a path on Onramp itself:
// no scheme, no host, no "//" or "/\" (which browsers read as another
// host), no control characters. Anything else is dropped, so there is no
// open redirect.
func safeReturnTo(v string) string {
	if v == "" || len(v) > 2000 || !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") || strings.HasPrefix(v, "/\\") {
		return ""
	}
	for _, c := range v {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return ""
		}
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return ""
	}
	return v
}
