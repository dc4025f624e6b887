package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/onramp-dev/onramp/auth"
)

// This file holds what the hosted-page tests drive the server with: a
// browser-like client (cookie jar, forms read from the HTML), the mails
// the outbox delivered, and a clock the account rules read.

// testClock is a clock that moves only when a test moves it, so limits
// and lifetimes do not depend on how fast the machine is.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Now().UTC().Truncate(time.Microsecond)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// recordingMailer keeps every email the outbox sends.
type recordingMailer struct {
	mu   sync.Mutex
	sent []auth.Email
}

func (m *recordingMailer) Send(ctx context.Context, e auth.Email) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, e)
	return nil
}

// recordingLogin stands in for the OIDC provider: it records which auth
// request a sign-in finished and sends the browser to a page that says so.
type recordingLogin struct {
	mu       sync.Mutex
	finished []string
	grants   []*auth.Grant
}

func (l *recordingLogin) FinishLogin(w http.ResponseWriter, r *http.Request, authRequestID string, g *auth.Grant) {
	l.mu.Lock()
	l.finished = append(l.finished, authRequestID)
	l.grants = append(l.grants, g)
	l.mu.Unlock()
	http.Redirect(w, r, "/oidc-finished?id="+url.QueryEscape(authRequestID), http.StatusSeeOther)
}

// mails runs the outbox until it is empty and returns every email sent to
// `to` so far ("" for all).
func (s *testStack) mails(to string) []auth.Email {
	s.t.Helper()
	for {
		n, err := s.outbox.RunOnce(context.Background())
		if err != nil {
			s.t.Fatalf("outbox: %v", err)
		}
		if n == 0 {
			break
		}
	}
	s.mailer.mu.Lock()
	defer s.mailer.mu.Unlock()
	var out []auth.Email
	for _, e := range s.mailer.sent {
		if to == "" || strings.EqualFold(e.To, to) {
			out = append(out, e)
		}
	}
	return out
}

var (
	codeInMail = regexp.MustCompile(`(?m)^(\d{6})$`)
	linkInMail = regexp.MustCompile(`/auth/magic/(\S+)`)
)

// lastCode is the code of the newest email to `to`.
func (s *testStack) lastCode(to string) string {
	s.t.Helper()
	ms := s.mails(to)
	if len(ms) == 0 {
		s.t.Fatalf("no email to %s", to)
	}
	m := codeInMail.FindStringSubmatch(ms[len(ms)-1].Text)
	if m == nil {
		s.t.Fatalf("the newest email to %s has no code:\n%s", to, ms[len(ms)-1].Text)
	}
	return m[1]
}

// lastLinkToken is the magic-link token of the newest email to `to`.
func (s *testStack) lastLinkToken(to string) string {
	s.t.Helper()
	ms := s.mails(to)
	if len(ms) == 0 {
		s.t.Fatalf("no email to %s", to)
	}
	m := linkInMail.FindStringSubmatch(ms[len(ms)-1].Text)
	if m == nil {
		s.t.Fatalf("the newest email to %s has no link:\n%s", to, ms[len(ms)-1].Text)
	}
	return m[1]
}

// browser is an http.Client with a cookie jar that follows redirects,
// like a browser without JavaScript.
type browser struct {
	t    *testing.T
	s    *testStack
	c    *http.Client
	jar  *cookiejar.Jar
	base *url.URL
	// header is sent with every request (Accept-Language, Origin, …).
	header http.Header
}

func (s *testStack) browser() *browser {
	s.t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		s.t.Fatal(err)
	}
	base, _ := url.Parse(s.url)
	return &browser{t: s.t, s: s, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}, jar: jar, base: base, header: http.Header{}}
}

// page is a response as the browser saw it after redirects.
type page struct {
	status int
	url    *url.URL
	header http.Header
	body   string
	doc    *html.Node
}

func (b *browser) do(req *http.Request) *page {
	b.t.Helper()
	for k, vs := range b.header {
		req.Header[k] = vs
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	p := &page{status: resp.StatusCode, url: resp.Request.URL, header: resp.Header, body: string(body)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		if p.doc, err = html.Parse(bytes.NewReader(body)); err != nil {
			b.t.Fatalf("%s: not HTML: %v", p.url, err)
		}
	}
	return p
}

func (b *browser) get(path string) *page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.s.url+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) *page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.s.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// cookie is the value of a cookie the browser holds for the server.
func (b *browser) cookie(name string) string {
	for _, c := range b.jar.Cookies(b.base) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *browser) setCookie(name, value string) {
	b.jar.SetCookies(b.base, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

// form is a <form> of a page: where it posts and the values it would
// send (hidden fields and prefilled inputs).
type form struct {
	action string
	values url.Values
}

// form returns the page's form that posts to action (a path prefix).
func (p *page) form(t *testing.T, action string) form {
	t.Helper()
	for _, f := range p.forms() {
		if strings.HasPrefix(f.action, action) {
			return f
		}
	}
	t.Fatalf("%s (%d) has no form posting to %s:\n%s", p.url, p.status, action, p.body)
	return form{}
}

func (p *page) forms() []form {
	var out []form
	var walk func(n *html.Node, cur *form)
	walk = func(n *html.Node, cur *form) {
		if n.Type == html.ElementNode && n.Data == "form" {
			out = append(out, form{action: attr(n, "action"), values: url.Values{}})
			cur = &out[len(out)-1]
		}
		if cur != nil && n.Type == html.ElementNode && n.Data == "input" && attr(n, "name") != "" {
			if typ := attr(n, "type"); typ != "password" && typ != "submit" {
				cur.values.Set(attr(n, "name"), attr(n, "value"))
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, cur)
		}
	}
	if p.doc != nil {
		walk(p.doc, nil)
	}
	return out
}

// submit posts the form with its values, overridden by kv pairs.
func (b *browser) submit(f form, kv ...string) *page {
	b.t.Helper()
	v := url.Values{}
	for k, vs := range f.values {
		v[k] = append([]string(nil), vs...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return b.post(f.action, v)
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// find returns the element nodes for which match is true.
func find(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	if n != nil {
		walk(n)
	}
	return out
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

// signUp walks sign-up → code → verify in b and returns the last page.
func (b *browser) signUp(email, password, name string) *page {
	b.t.Helper()
	p := b.get("/auth/sign-up")
	p = b.submit(p.form(b.t, "/auth/sign-up"), "email", email, "password", password, "name", name)
	if p.url.Path != "/auth/verify" {
		b.t.Fatalf("sign-up of %s: at %s (%d), want /auth/verify:\n%s", email, p.url, p.status, p.body)
	}
	return b.verify(p, b.s.lastCode(email))
}

// verify types code into the code page p.
func (b *browser) verify(p *page, code string) *page {
	b.t.Helper()
	return b.submit(p.form(b.t, "/auth/verify"), "code", code, "action", "verify")
}

// signInPassword signs in from a fresh sign-in page.
func (b *browser) signInPassword(email, password string) *page {
	b.t.Helper()
	p := b.get("/auth/sign-in")
	return b.submit(p.form(b.t, "/auth/sign-in"), "email", email, "password", password, "action", "password")
}

// signOut presses the account page's sign-out button.
func (b *browser) signOut() *page {
	b.t.Helper()
	p := b.get("/account")
	return b.submit(p.form(b.t, "/auth/sign-out"))
}

// wantAt fails unless p is a 200 page at path.
func wantAt(t *testing.T, p *page, path string) {
	t.Helper()
	if p.status != http.StatusOK || p.url.Path != path {
		t.Fatalf("at %s with %d, want 200 at %s:\n%s", p.url, p.status, path, p.body)
	}
}
