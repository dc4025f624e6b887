package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/onramp-dev/onramp/internal/mailpit"
)

// The hosted sign-in pages of the real binary, with email through a real
// Mailpit: sign up, read the code from the mailbox, verify, land signed
// in; and the owner setup link printed at first start.

// webClient is a browser without JavaScript: a cookie jar, redirects
// followed, forms read from the HTML.
type webClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newWebClient(t *testing.T, base string) *webClient {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &webClient{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

type webPage struct {
	status int
	url    *url.URL
	header http.Header
	body   string
	doc    *html.Node
}

func (w *webClient) do(req *http.Request) *webPage {
	w.t.Helper()
	resp, err := w.c.Do(req)
	if err != nil {
		w.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatal(err)
	}
	doc, err := html.Parse(strings.NewReader(string(b)))
	if err != nil {
		w.t.Fatalf("%s: %v", resp.Request.URL, err)
	}
	return &webPage{status: resp.StatusCode, url: resp.Request.URL, header: resp.Header, body: string(b), doc: doc}
}

func (w *webClient) get(pathOrURL string) *webPage {
	w.t.Helper()
	if strings.HasPrefix(pathOrURL, "/") {
		pathOrURL = w.base + pathOrURL
	}
	req, err := http.NewRequest(http.MethodGet, pathOrURL, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	return w.do(req)
}

// submit posts p's form whose action starts with action, with its hidden
// fields and the given values.
func (w *webClient) submit(p *webPage, action string, kv ...string) *webPage {
	w.t.Helper()
	var formAction string
	values := url.Values{}
	var walk func(n *html.Node, in bool)
	walk = func(n *html.Node, in bool) {
		if n.Type == html.ElementNode && n.Data == "form" {
			a := htmlAttr(n, "action")
			in = formAction == "" && strings.HasPrefix(a, action)
			if in {
				formAction = a
			}
		}
		if in && n.Type == html.ElementNode && n.Data == "input" && htmlAttr(n, "type") == "hidden" {
			values.Set(htmlAttr(n, "name"), htmlAttr(n, "value"))
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, in)
		}
	}
	walk(p.doc, false)
	if formAction == "" {
		w.t.Fatalf("%s (%d) has no form posting to %s:\n%s", p.url, p.status, action, p.body)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		values.Set(kv[i], kv[i+1])
	}
	req, err := http.NewRequest(http.MethodPost, w.base+formAction, strings.NewReader(values.Encode()))
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return w.do(req)
}

func htmlAttr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// ddAfter is the text of the <dd> after the <dt> with this text.
func ddAfter(doc *html.Node, dt string) string {
	var out string
	var last string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && (n.Data == "dt" || n.Data == "dd") {
			var b strings.Builder
			var txt func(*html.Node)
			txt = func(n *html.Node) {
				if n.Type == html.TextNode {
					b.WriteString(n.Data)
				}
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					txt(c)
				}
			}
			txt(n)
			s := strings.Join(strings.Fields(b.String()), " ")
			if n.Data == "dd" && last == dt && out == "" {
				out = s
			}
			last = s
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return out
}

var mailCode = regexp.MustCompile(`(?m)^(\d{6})\r?$`)

func TestSignUpWithMailpit(t *testing.T) {
	mp := mailpit.Start(t)
	n := StartNode(t, NodeOptions{Env: []string{"ONRAMP_SMTP_URL=" + mp.SMTPURL(), "ONRAMP_ARGON2_MEMORY_KIB=1024", "ONRAMP_ARGON2_TIME=1"}})
	prop := n.CreateProperty(t, "website")
	email := "e2e-" + randomID(t) + "@example.com"
	// Known from tracking first: the account must land on this person.
	mustPost(t, n, prop.WriteKey, []byte(`{"batch":[{"type":"identify","anonymousId":"anon-e2e","traits":{"email":"`+email+`","company":"Acme"}}]}`), 1)

	w := newWebClient(t, n.URL)
	p := w.get("/auth/sign-up")
	p = w.submit(p, "/auth/sign-up", "email", email, "name", "Eve Example")
	if p.status != http.StatusOK || p.url.Path != "/auth/verify" {
		t.Fatalf("sign-up: %d at %s:\n%s", p.status, p.url, p.body)
	}
	msg := mp.WaitFor(t, email, 15*time.Second)
	m := mailCode.FindStringSubmatch(msg.Text)
	if m == nil {
		t.Fatalf("no code in the email %q:\n%s", msg.Subject, msg.Text)
	}
	if !strings.Contains(msg.Subject, m[1]) {
		t.Errorf("subject %q does not carry the code", msg.Subject)
	}
	p = w.submit(p, "/auth/verify", "code", m[1], "action", "verify")
	if p.status != http.StatusOK || p.url.Path != "/account" {
		t.Fatalf("verify: %d at %s:\n%s", p.status, p.url, p.body)
	}
	if got := ddAfter(p.doc, "Email"); got != email+" (verified)" {
		t.Errorf("account page email = %q", got)
	}
	if got := ddAfter(p.doc, "Name"); got != "Eve Example" {
		t.Errorf("account page name = %q", got)
	}
	subject := ddAfter(p.doc, "Account id")

	// One person: the known one, with the account's subject as user id,
	// its traits kept, and the sign-up on its timeline.
	traits := n.Traits(t, prop.SecretKey, "user_id:"+subject)
	if traits["company"] != "Acme" || traits["name"] != "Eve Example" {
		t.Errorf("traits of the account's person: %v", traits)
	}
	Eventually(t, 15*time.Second, func() (bool, string) {
		evs := n.Timeline(t, prop.SecretKey, "user_id:"+subject)
		names := map[string]bool{}
		for _, e := range evs {
			if name, _ := e["event"].(string); name != "" {
				names[name] = true
			}
		}
		ok := names["auth.signed_up"] && names["auth.email_verified"] && names["auth.logged_in"]
		return ok, "timeline events: " + strings.Join(keys(names), ", ")
	})
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

var ownerLinkLine = regexp.MustCompile(`First start: create the owner account at (\S+/setup/owner\?token=\S+)`)

func TestOwnerSetupLinkAtFirstStart(t *testing.T) {
	n := StartNode(t, NodeOptions{Env: []string{"ONRAMP_ARGON2_MEMORY_KIB=1024", "ONRAMP_ARGON2_TIME=1"}})
	var link string
	Eventually(t, 5*time.Second, func() (bool, string) {
		m := ownerLinkLine.FindStringSubmatch(n.Stdout())
		if m != nil {
			link = m[1]
		}
		return m != nil, "no owner setup line in stdout:\n" + n.Stdout()
	})
	if !strings.HasPrefix(link, n.URL+"/setup/owner?token=") {
		t.Fatalf("owner link %q is not on %s", link, n.URL)
	}
	w := newWebClient(t, n.URL)
	p := w.get(link)
	if p.status != http.StatusOK {
		t.Fatalf("GET the owner link: %d\n%s", p.status, p.body)
	}
	p = w.submit(p, "/setup/owner", "email", "owner@example.com", "password", "a founder's long passphrase")
	// The owner lands in the console; the account page shows the role.
	if p.status != http.StatusOK || p.url.Path != "/admin" {
		t.Fatalf("owner setup: %d at %s:\n%s", p.status, p.url, p.body)
	}
	p = w.get(n.URL + "/account")
	if p.status != http.StatusOK || ddAfter(p.doc, "Staff role") != "owner" {
		t.Fatalf("owner setup: %d at %s:\n%s", p.status, p.url, p.body)
	}
	// The link works once.
	if p := newWebClient(t, n.URL).get(link); p.status != http.StatusForbidden {
		t.Errorf("the owner link a second time: %d", p.status)
	}
	// The audit log, read by the CLI from the database, has the owner.
	var entries []struct {
		Action   string `json:"action"`
		PersonID string `json:"person_id"`
	}
	out := n.CLI(t, "audit", "list", "--action", "staff.*", "--json")
	if err := json.Unmarshal(out, &entries); err != nil {
		t.Fatalf("audit list --json: %v\n%s", err, out)
	}
	if len(entries) != 1 || entries[0].Action != "staff.owner_created" || entries[0].PersonID == "" {
		t.Errorf("audit list --action staff.*: %s", out)
	}
	out = n.CLI(t, "audit", "list", "--person", "email:owner@example.com")
	if !strings.Contains(string(out), "staff.owner_created") || !strings.Contains(string(out), "auth.signed_up") {
		t.Errorf("audit list --person email:owner@example.com:\n%s", out)
	}
}
