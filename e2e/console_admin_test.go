package e2e

// Browser tests of the console's properties, staff, audit and imports
// screens (docs/design/console.md), in a real chromium against the real
// binary. Every test signs in through the pages (the owner by the first-start
// link, other roles by a staff invitation link) and checks what the server
// holds through the JSON API with an owner token.
//
// Screenshots (light and dark) go to $ONRAMP_TEST_ARTIFACTS/console, by default
// e2e/testdata/out/console.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/onramp-dev/onramp/postgres/pgtest"
)

// injection is markup that runs script if it is ever parsed as HTML; the
// console must show it as these characters.
const injection = `<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>`

// consoleRig is a node, a browser, and an owner API token to check what
// the console did.
type consoleRig struct {
	t       *testing.T
	n       *Node
	browser context.Context
	token   string
}

func startConsoleRig(t *testing.T, env ...string) *consoleRig {
	t.Helper()
	browserCtx := startBrowser(t) // skips without chromium
	n := StartNode(t, NodeOptions{Env: append([]string{"ONRAMP_ARGON2_MEMORY_KIB=1024", "ONRAMP_ARGON2_TIME=1"}, env...)})
	return &consoleRig{t: t, n: n, browser: browserCtx, token: n.OwnerToken(t)}
}

// ownerTab creates the owner account through the first-start link and
// returns the tab, signed in on /admin.
func (r *consoleRig) ownerTab() *browserTab {
	r.t.Helper()
	var link string
	Eventually(r.t, 5*time.Second, func() (bool, string) {
		m := ownerLinkLine.FindStringSubmatch(r.n.Stdout())
		if m != nil {
			link = m[1]
		}
		return m != nil, "no owner setup line in stdout"
	})
	tb := newTab(r.t, r.browser)
	tb.do("screen size", chromedp.EmulateViewport(1280, 900))
	tb.do("open the owner link", chromedp.Navigate(link))
	tb.do("owner email", chromedp.SendKeys(`#email`, "owner@example.com"))
	tb.do("owner password", chromedp.SendKeys(`#password`, "a founder's long passphrase"))
	tb.do("create the owner", chromedp.Click(`button.primary`))
	tb.waitLocation(r.n.URL + "/admin")
	return tb
}

var inviteLinkLine = regexp.MustCompile(`(?m)^\s+(\S+/auth/invite\?token=\S+)`)

// staffTab invites email with role through the CLI, accepts the invitation
// in a new tab (which signs it in) and returns the tab.
func (r *consoleRig) staffTab(email, role string) *browserTab {
	r.t.Helper()
	out := r.n.CLI(r.t, "staff", "add", "--email", email, "--role", role, "--print-link")
	m := inviteLinkLine.FindSubmatch(out)
	if m == nil {
		r.t.Fatalf("staff add --print-link printed no link:\n%s", out)
	}
	tb := newTab(r.t, r.browser)
	tb.do("screen size", chromedp.EmulateViewport(1280, 900))
	tb.do("open the invitation", chromedp.Navigate(string(m[1])))
	tb.do("invitee password", chromedp.SendKeys(`#password`, "a staff member's long passphrase"))
	tb.do("accept the invitation", chromedp.Click(`button.primary`))
	Eventually(r.t, 10*time.Second, func() (bool, string) {
		loc := evalJS[string](tb, "location", `location.pathname`)
		return loc != "/auth/invite", "still on " + loc
	})
	return tb
}

// open loads a console page and waits until sel is in it.
func (r *consoleRig) open(tb *browserTab, path, sel string) {
	r.t.Helper()
	tb.do("open "+path, chromedp.Navigate(r.n.URL+path))
	tb.waitSel(sel)
}

// status loads url in the tab and returns the HTTP status of the document.
func (tb *browserTab) status(url string) int64 {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(url))
	if err != nil {
		tb.t.Fatalf("navigate %s: %v", url, err)
	}
	return resp.Status
}

func (tb *browserTab) waitSel(sel string) {
	tb.t.Helper()
	tb.waitJS("wait for "+sel, "!!document.querySelector("+jsLit(sel)+")", 15*time.Second)
}

// text is the text of the first element matching sel ("" if none).
func (tb *browserTab) text(sel string) string {
	tb.t.Helper()
	return evalJS[string](tb, "text of "+sel, `(document.querySelector(`+jsLit(sel)+`) || {}).textContent || ""`)
}

// apiStatus makes a JSON API call from the page with its session and CSRF
// token, as the console does, and returns the status.
func (tb *browserTab) apiStatus(method, path, body string) int {
	tb.t.Helper()
	return evalJS[int](tb, method+" "+path, `(async () => {
		const who = await (await fetch('/api/auth/session')).json();
		const r = await fetch(`+jsLit(path)+`, {method: `+jsLit(method)+`, body: `+jsLit(body)+`,
			headers: {'Content-Type': 'application/json', 'X-Onramp-CSRF': who.csrf_token}});
		return r.status;
	})()`)
}

// inert checks that no injected script ran and that the payload is shown
// as text somewhere in the page.
func (tb *browserTab) inert(where, payload string) {
	tb.t.Helper()
	if ran := evalJS[bool](tb, "injection flag", `window.__pwned !== undefined`); ran {
		tb.t.Errorf("%s: the injected script ran", where)
	}
	if !strings.Contains(evalJS[string](tb, "page text", `document.body.innerText`), payload) {
		tb.t.Errorf("%s: the text %q is not shown literally", where, payload)
	}
	if n := evalJS[int](tb, "injected nodes", `document.querySelectorAll('main img[src="x"], main script').length`); n != 0 {
		tb.t.Errorf("%s: %d injected elements in the page", where, n)
	}
}

// shots saves the page in the light and the dark theme.
func (tb *browserTab) shots(name string) {
	tb.t.Helper()
	for _, theme := range []string{"light", "dark"} {
		// The console's own toggle, so the page looks as a person sees it.
		// A click through the toggle's click() rather than the mouse: while
		// a modal <dialog> is open, the page behind it is inert and a mouse
		// click lands on the backdrop, which left the "dark" shot light.
		if dark := evalJS[bool](tb, "theme", `document.querySelector('#theme-toggle').getAttribute('aria-pressed') === 'true'`); dark != (theme == "dark") {
			evalJS[bool](tb, "toggle the theme", `(document.querySelector('#theme-toggle').click(), true)`)
		}
		if dark := evalJS[bool](tb, "theme", `document.querySelector('#theme-toggle').getAttribute('aria-pressed') === 'true'`); dark != (theme == "dark") {
			tb.t.Fatalf("screenshot %s: the console did not switch to the %s theme", name, theme)
		}
		time.Sleep(400 * time.Millisecond) // let transitions (theme, progress bar) finish
		ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
		buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		cancel()
		if err != nil {
			tb.t.Fatalf("screenshot %s: %v", name, err)
		}
		saveScreenshot(tb.t, screenshotsDir(tb.t), "console-"+name+"-"+theme, buf)
	}
	evalJS[bool](tb, "back to the light theme", `(document.querySelector('#theme-toggle').click(), true)`)
}

// allowClipboard lets the tab's page read and write the clipboard, and
// keeps the page focused (the Clipboard API wants a focused document).
func (r *consoleRig) allowClipboard(tb *browserTab) {
	r.t.Helper()
	id := chromedp.FromContext(tb.ctx).BrowserContextID
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(tb.ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted,
			Origin: r.n.URL, BrowserContextID: id,
		}); err != nil {
			r.t.Fatalf("grant %s: %v", name, err)
		}
	}
	if _, err := chromedp.Call(tb.ctx, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true}); err != nil {
		r.t.Fatalf("focus emulation: %v", err)
	}
}

// apiJSON calls the API with the owner token and decodes the answer.
func (r *consoleRig) apiJSON(path string, v any) {
	r.t.Helper()
	apiGet(r.t, r.n, r.token, path, v)
}

// TestConsoleAdminProperties: the owner creates a property from the
// console (its name an injection), sees its keys once, copies the snippet
// (with the new write key) to the clipboard, replaces the secret key after
// a confirmation, edits it, and finds its creation in the audit log with a
// filter.
func TestConsoleAdminProperties(t *testing.T) {
	r := startConsoleRig(t)
	tb := r.ownerTab()
	r.allowClipboard(tb)

	r.open(tb, "/admin/properties", "#new-property, #properties-empty")
	tb.do("new property", chromedp.Click(`#new-property`))
	tb.waitSel("#property-form #prop-name")
	tb.shots("property-new")
	name := "Shop " + injection
	tb.do("name", chromedp.SendKeys(`#prop-name`, name))
	tb.do("origins", chromedp.SendKeys(`#prop-origins`, "https://shop.example.com"))
	tb.do("redirects", chromedp.SendKeys(`#prop-redirects`, "https://shop.example.com/callback"))
	tb.do("first party", chromedp.Click(`#prop-first-party`))
	tb.do("create", chromedp.Click(`#property-save`))
	tb.waitSel("#reveal #reveal-secret")

	// What the server holds.
	var list struct {
		Data []struct {
			ID, Name, WriteKey string
			Origins            []string
		}
	}
	r.apiJSON("/api/properties", &list)
	if len(list.Data) != 1 || list.Data[0].Name != name {
		t.Fatalf("properties after creating one: %+v", list.Data)
	}
	var prop struct {
		ID       string `json:"id"`
		WriteKey string `json:"write_key"`
		Client   struct {
			FirstParty   bool     `json:"first_party"`
			RedirectURIs []string `json:"redirect_uris"`
		} `json:"client"`
	}
	r.apiJSON("/api/properties/"+list.Data[0].ID, &prop)
	if !prop.Client.FirstParty || len(prop.Client.RedirectURIs) != 1 {
		t.Errorf("the new property's client: %+v", prop.Client)
	}
	if loc := evalJS[string](tb, "location", `location.pathname`); loc != "/admin/properties/"+prop.ID {
		t.Errorf("after creation the console shows %s", loc)
	}
	secret := tb.text("#reveal-secret")
	if !strings.HasPrefix(secret, "sk_") || tb.text("#reveal-write") != prop.WriteKey || !strings.HasPrefix(tb.text("#reveal-client-secret"), "cs") {
		t.Errorf("revealed keys: write %q secret %q client secret %q (write key %s)", tb.text("#reveal-write"), secret, tb.text("#reveal-client-secret"), prop.WriteKey)
	}
	// The secret key works: it reads profiles.
	if st, body := get(t, r.n.URL+"/v1/profiles/user_id:nobody/traits", "Authorization", "Basic "+basic(secret)); refused(st) {
		t.Errorf("the revealed secret key reading a profile: %d %s", st, body)
	}
	if !strings.Contains(tb.text("#reveal"), "shown this once") {
		t.Errorf("the reveal box does not warn: %q", tb.text("#reveal"))
	}
	tb.inert("property page", name)
	tb.shots("property-created")

	// The snippet has the write key and this server, and copies.
	snippet := tb.text("#snippet")
	if !strings.Contains(snippet, `data-write-key="`+prop.WriteKey+`"`) || !strings.Contains(snippet, r.n.URL+"/sdk/onramp.js") {
		t.Errorf("snippet:\n%s", snippet)
	}
	tb.do("copy the snippet", chromedp.Click(`#copy-snippet`))
	tb.waitJS("copied", `document.querySelector('#copy-snippet').parentNode.textContent.includes('Copied')`, 5*time.Second)
	if clip := evalJS[string](tb, "read the clipboard", `navigator.clipboard.readText()`); clip != snippet || !strings.Contains(clip, prop.WriteKey) {
		t.Errorf("clipboard %q, want the snippet with %s", clip, prop.WriteKey)
	}

	// Without the Clipboard API the button selects the snippet instead.
	evalJS[bool](tb, "no clipboard", `Object.defineProperty(navigator, 'clipboard', {value: undefined, configurable: true}), true`)
	tb.do("copy without the API", chromedp.Click(`#copy-snippet`))
	tb.waitJS("fallback", `document.querySelector('#copy-snippet').parentNode.textContent.includes('selected')`, 5*time.Second)
	if sel := evalJS[string](tb, "selection", `String(window.getSelection())`); sel != snippet {
		t.Errorf("the fallback selected %q, want the snippet", sel)
	}

	// Keys are shown once: gone after navigating away and back, and on reload.
	tb.do("to the list", chromedp.Click(`#nav a[href="/admin/properties"]`))
	tb.waitSel("#properties-table")
	tb.inert("properties list", name)
	tb.shots("properties")
	tb.do("back to the property", chromedp.Click(`#properties-table a`))
	tb.waitSel("#snippet")
	if body := evalJS[string](tb, "page", `document.body.innerText`); strings.Contains(body, secret) || tb.text("#reveal") != "" {
		t.Errorf("the secret key is shown again after navigating back")
	}
	tb.do("reload", chromedp.Reload())
	tb.waitSel("#snippet")
	if strings.Contains(evalJS[string](tb, "page", `document.body.innerText`), secret) {
		t.Errorf("the secret key is shown again after a reload")
	}

	// Replace the secret key: cancel first, then confirm.
	tb.do("replace secret", chromedp.Click(`#rotate-secret`))
	tb.waitSel("dialog.confirm[open]")
	tb.shots("property-confirm")
	tb.do("cancel", chromedp.Click(`#confirm-cancel`))
	tb.waitJS("dialog closed", `!document.querySelector('dialog.confirm')`, 5*time.Second)
	if tb.text("#reveal") != "" {
		t.Fatal("cancelled replacement revealed a key")
	}
	tb.do("replace secret", chromedp.Click(`#rotate-secret`))
	tb.waitSel("dialog.confirm[open]")
	tb.do("confirm", chromedp.Click(`#confirm-ok`))
	tb.waitSel("#reveal #reveal-secret")
	newSecret := tb.text("#reveal-secret")
	if newSecret == secret || !strings.HasPrefix(newSecret, "sk_") {
		t.Errorf("replaced secret %q (old %q)", newSecret, secret)
	}
	if st, _ := get(t, r.n.URL+"/v1/profiles/user_id:nobody/traits", "Authorization", "Basic "+basic(secret)); !refused(st) {
		t.Errorf("the old secret key still answers %d", st)
	}
	if st, body := get(t, r.n.URL+"/v1/profiles/user_id:nobody/traits", "Authorization", "Basic "+basic(newSecret)); refused(st) {
		t.Errorf("the new secret key: %d %s", st, body)
	}

	// Edit: a second origin.
	tb.do("add an origin", chromedp.SetValue(`#prop-origins`, "https://shop.example.com\nhttps://www.shop.example.com"))
	tb.do("save", chromedp.Click(`#property-save`))
	Eventually(t, 10*time.Second, func() (bool, string) {
		if e := tb.text("#property-errors"); e != "" {
			return false, e
		}
		var p struct {
			Origins []string `json:"origins"`
		}
		r.apiJSON("/api/properties/"+prop.ID, &p)
		return len(p.Origins) == 2, fmt.Sprintf("origins %v", p.Origins)
	})

	// The audit log shows the creation, found with the action filter; the
	// detail (with the name) is text.
	r.open(tb, "/admin/audit", "#audit-table tbody tr")
	tb.do("filter by action", chromedp.SendKeys(`#audit-action`, "property.created"))
	tb.waitJS("filtered", `location.search.includes('action=property.created') && document.querySelectorAll('tr.audit-row').length === 1`, 10*time.Second)
	if got := tb.text("tr.audit-row"); !strings.Contains(got, "owner@example.com") || !strings.Contains(got, "property.created") {
		t.Errorf("audit row: %q", got)
	}
	tb.do("expand", chromedp.Click(`tr.audit-row button.expand`))
	tb.waitJS("expanded", `!document.querySelector('tr.audit-detail').hidden`, 5*time.Second)
	if d := tb.text("tr.audit-detail pre"); !strings.Contains(d, "Shop <img src=x") {
		t.Errorf("audit detail: %q", d)
	}
	tb.inert("audit page", "Shop <img")
	tb.shots("audit")
	// The filter is in the URL: a reload keeps it.
	tb.do("reload", chromedp.Reload())
	tb.waitJS("filtered after reload", `(document.querySelector('#audit-action') || {}).value === 'property.created' && document.querySelectorAll('tr.audit-row').length === 1`, 10*time.Second)
	tb.noExceptions()
}

// TestConsoleAdminRoles: the server refuses pages and API calls a role may
// not use, and the console shows such roles no editing controls.
func TestConsoleAdminRoles(t *testing.T) {
	r := startConsoleRig(t)
	p := r.n.CreateProperty(t, "Docs "+injection, "https://docs.example.com")

	support := r.staffTab("support@example.com", "support")
	if st := support.status(r.n.URL + "/admin/properties/new"); st != http.StatusForbidden {
		t.Errorf("support GET /admin/properties/new: %d, want 403", st)
	}
	if !strings.Contains(support.text("body"), "properties:manage") && !strings.Contains(strings.ToLower(support.text("body")), "developer") {
		t.Errorf("the 403 page does not say who may: %q", support.text("body"))
	}
	r.open(support, "/admin/properties", "#properties-table")
	if n := evalJS[int](support, "edit controls", `document.querySelectorAll('#new-property, a[href="/admin/properties/new"]').length`); n != 0 {
		t.Errorf("support sees %d create links on /admin/properties", n)
	}
	support.inert("properties list (support)", "Docs "+injection)
	support.shots("properties-support")
	r.open(support, "/admin/properties/"+p.ID, "#property-settings")
	if n := evalJS[int](support, "edit controls", `document.querySelectorAll('#property-form, [id^="rotate-"], #property-save').length`); n != 0 {
		t.Errorf("support sees %d edit controls on a property", n)
	}
	support.shots("property-support")
	if st := support.apiStatus("POST", "/api/properties", `{"name":"Sneaky"}`); st != http.StatusForbidden {
		t.Errorf("support POST /api/properties: %d, want 403", st)
	}
	if st := support.apiStatus("POST", "/api/properties/"+p.ID+"/revoke-key", `{"key":"secret"}`); st != http.StatusForbidden {
		t.Errorf("support POST revoke-key: %d, want 403", st)
	}
	if n := evalJS[int](support, "nav", `document.querySelectorAll('#nav a[href="/admin/staff"], #nav a[href="/admin/audit"], #nav a[href="/admin/imports"]').length`); n != 0 {
		t.Errorf("support's navigation shows %d links it may not use", n)
	}

	marketer := r.staffTab("marketer@example.com", "marketer")
	if st := marketer.status(r.n.URL + "/admin/staff"); st != http.StatusForbidden {
		t.Errorf("marketer GET /admin/staff: %d, want 403", st)
	}
	if st := marketer.apiStatus("POST", "/api/staff", `{"email":"x@example.com","role":"owner"}`); st != http.StatusForbidden {
		t.Errorf("marketer POST /api/staff: %d, want 403", st)
	}
	if st := marketer.status(r.n.URL + "/admin/audit"); st != http.StatusForbidden {
		t.Errorf("marketer GET /admin/audit: %d, want 403", st)
	}
	if st := support.status(r.n.URL + "/admin/imports"); st != http.StatusForbidden {
		t.Errorf("support GET /admin/imports: %d, want 403", st)
	}
	// A marketer imports and exports.
	r.open(marketer, "/admin/imports", "#import-file")
	marketer.waitSel("#export-people-csv")
	support.noExceptions()
	marketer.noExceptions()
}

// TestConsoleAdminStaff: the owner invites by email with a role, changes
// a member's role, sees the MFA setting; an admin sees no owner controls.
func TestConsoleAdminStaff(t *testing.T) {
	r := startConsoleRig(t)
	owner := r.ownerTab()
	// A member to change: a support agent who accepted an invitation.
	r.staffTab("agent@example.com", "support")

	r.open(owner, "/admin/staff", "#staff-table tbody tr")
	if !strings.Contains(owner.text("#staff-table"), "agent@example.com") {
		t.Fatalf("staff list: %q", owner.text("#staff-table"))
	}
	// Invite by email. The address holds characters that mean something in
	// HTML; they show as typed.
	weird := "o'neil&lt{{x}}@example.com"
	owner.do("invite email", chromedp.SendKeys(`#invite-email`, weird))
	owner.do("invite role", chromedp.SetValue(`#invite-role`, "marketer"))
	owner.do("invite", chromedp.Click(`#invite-submit`))
	owner.waitSel("#invite-result .notice")
	if got := owner.text("#invite-result"); !strings.Contains(got, weird) || !strings.Contains(got, "marketer") {
		t.Errorf("invite result: %q", got)
	}
	owner.inert("staff page", weird)
	var audit struct {
		Data []struct {
			Action string          `json:"action"`
			Detail json.RawMessage `json:"detail"`
		} `json:"data"`
	}
	r.apiJSON("/api/audit?action=staff.invited", &audit)
	invited := 0
	for _, e := range audit.Data {
		var d struct{ Email, Role string }
		if json.Unmarshal(e.Detail, &d) == nil && d.Email == weird && d.Role == "marketer" {
			invited++
		}
	}
	if invited != 1 {
		t.Errorf("audit staff.invited has %d entries for %s: %+v", invited, weird, audit.Data)
	}
	// An address that is markup is refused by the server; nothing runs.
	if st := owner.apiStatus("POST", "/api/staff", `{"email":"<img src=x onerror=window.__pwned=1>@example.com","role":"support"}`); st != http.StatusBadRequest {
		t.Errorf("inviting a markup address: %d, want 400", st)
	}
	if evalJS[bool](owner, "flag", `window.__pwned !== undefined`) {
		t.Error("the refused invitation ran script")
	}

	// Change the agent's role.
	row := evalJS[string](owner, "agent row", `[...document.querySelectorAll('#staff-table tbody tr')].find(tr => tr.textContent.includes('agent@example.com')).querySelector('select').id`)
	owner.do("choose developer", chromedp.SetValue(`#`+row, "developer"))
	evalJS[bool](owner, "change", `document.getElementById(`+jsLit(row)+`).dispatchEvent(new Event('change')), true`)
	owner.waitJS("saved", `document.getElementById(`+jsLit(row)+`).closest('td').textContent.includes('Saved')`, 10*time.Second)
	var staff struct {
		Data []struct {
			Email string `json:"email"`
			Role  string `json:"role"`
		} `json:"data"`
	}
	r.apiJSON("/api/staff", &staff)
	roles := map[string]string{}
	for _, m := range staff.Data {
		roles[m.Email] = m.Role
	}
	if roles["agent@example.com"] != "developer" {
		t.Errorf("roles after the change: %v", roles)
	}

	// MFA: the owner may change it.
	owner.waitSel("#staff-mfa")
	if evalJS[bool](owner, "mfa box", `document.querySelector('#staff-mfa').disabled || document.querySelector('#staff-mfa').checked`) {
		t.Error("the owner's MFA box is disabled or on")
	}
	owner.shots("staff")

	// Remove the agent, after a confirmation.
	remove := evalJS[string](owner, "agent remove", `(() => { const b = [...document.querySelectorAll('#staff-table tbody tr')].find(tr => tr.textContent.includes('agent@example.com')).querySelector('button.staff-remove'); b.id = 'remove-agent'; return b.id; })()`)
	owner.do("remove", chromedp.Click(`#`+remove))
	owner.waitSel("dialog.confirm[open]")
	owner.do("confirm", chromedp.Click(`#confirm-ok`))
	owner.waitJS("agent gone", `!document.querySelector('#staff-table').textContent.includes('agent@example.com')`, 10*time.Second)
	r.apiJSON("/api/staff", &staff)
	for _, m := range staff.Data {
		if m.Email == "agent@example.com" {
			t.Errorf("the agent is still staff: %+v", m)
		}
	}

	// The audit log pages by seq: 55 properties made through the API are
	// 50 entries, then 5 older ones.
	for i := range 55 {
		if st, body := postJSON(t, r.n.URL+"/api/properties", r.token, fmt.Sprintf(`{"name":"Site %d"}`, i)); st != http.StatusCreated {
			t.Fatalf("create property %d: %d %s", i, st, body)
		}
	}
	r.open(owner, "/admin/audit?action=property.created", "tr.audit-row")
	owner.waitJS("first page", `document.querySelectorAll('tr.audit-row').length === 50`, 10*time.Second)
	first := evalJS[string](owner, "first page seqs", `[...document.querySelectorAll('tr.audit-row')].map(r => r.dataset.seq).join(',')`)
	owner.do("older", chromedp.Click(`#audit-older`))
	owner.waitJS("second page", `location.search.includes('before=') && document.querySelectorAll('tr.audit-row').length === 5`, 10*time.Second)
	second := evalJS[string](owner, "second page seqs", `[...document.querySelectorAll('tr.audit-row')].map(r => r.dataset.seq).join(',')`)
	if strings.Contains(","+first+",", ","+strings.Split(second, ",")[0]+",") {
		t.Errorf("pages overlap: %s / %s", first, second)
	}
	if evalJS[bool](owner, "older hidden", `!document.querySelector('#audit-older').hidden`) {
		t.Error("an Older button on the last page")
	}
	owner.do("newest", chromedp.Click(`#audit-newest`))
	owner.waitJS("back to the first page", `!location.search.includes('before=') && document.querySelectorAll('tr.audit-row').length === 50`, 10*time.Second)

	// An admin: no owner option, the owner's row locked, MFA read-only.
	admin := r.staffTab("admin@example.com", "admin")
	r.open(admin, "/admin/staff", "#staff-table tbody tr")
	admin.waitSel("#staff-mfa")
	if n := evalJS[int](admin, "owner options", `document.querySelectorAll('option[value="owner"]').length`); n != 0 {
		t.Errorf("an admin sees %d owner options", n)
	}
	if !evalJS[bool](admin, "mfa box", `document.querySelector('#staff-mfa').disabled`) {
		t.Error("an admin may toggle staff MFA in the page")
	}
	ownerRowControls := evalJS[int](admin, "owner row", `[...document.querySelectorAll('#staff-table tbody tr')].find(tr => tr.textContent.includes('owner@example.com')).querySelectorAll('select, button').length`)
	if ownerRowControls != 0 {
		t.Errorf("an admin sees %d controls on the owner's row", ownerRowControls)
	}
	owner.noExceptions()
	admin.noExceptions()
}

// postJSON POSTs a JSON body with a bearer token.
func postJSON(t *testing.T, u, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := apiClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// basic is the Basic credentials of a secret key (user = key, no password).
func basic(key string) string {
	return base64.StdEncoding.EncodeToString([]byte(key + ":"))
}

// refused reports whether a status means the credentials were not taken.
func refused(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden
}

// importCSV is n rows of people with a bad row now and then: an invalid
// email, or no email at all (no identifier). It returns the file, the
// number of bad rows and a few good emails.
func importCSV(n int, run string) (body []byte, bad int, sample []string) {
	var b strings.Builder
	b.WriteString("email,name,plan,company\n")
	for i := 1; i <= n; i++ {
		email := fmt.Sprintf("imp%d-%s@example.com", i, run)
		switch {
		case i%250 == 0:
			email = "not-an-email"
			bad++
		case i%333 == 0:
			email = ""
			bad++
		case i%2000 == 1:
			sample = append(sample, email)
		}
		name := fmt.Sprintf("Person %d", i)
		if i == 2 {
			name = injection
		}
		fmt.Fprintf(&b, "%s,%s,%s,%s\n", email, csvQuote(name), []string{"free", "pro", "team"}[i%3], csvQuote(fmt.Sprintf("Company %d, Inc.", i%50)))
	}
	return []byte(b.String()), bad, sample
}

func csvQuote(s string) string {
	if strings.ContainsAny(s, ",\"\n") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

// TestConsoleAdminImport: a CSV of 10,000 people (some rows bad, one cell
// an injection) imported through the page: upload with the file input,
// preview, mapping, start, the progress bar reaching done, the report's
// rejected count and the people in the API. Reopening the page shows the
// job in the recent jobs. A second, larger import is left while it runs
// (the console goes to the people list) and the page opened again: the
// job is under Recent jobs with its progress, polled there to the end.
// The jobs live in the database: both engines.
func TestConsoleAdminImport(t *testing.T) {
	requireChromium(t)
	t.Run("sqlite", func(t *testing.T) { testConsoleAdminImport(t) })
	t.Run("postgres", func(t *testing.T) {
		testConsoleAdminImport(t, "ONRAMP_DATABASE_URL="+pgtest.Database(t, "the console import on Postgres"))
	})
}

func testConsoleAdminImport(t *testing.T, env ...string) {
	r := startConsoleRig(t, env...)
	owner := r.ownerTab()
	if st, body := get(t, r.n.URL+"/api/jobs", "Authorization", "Bearer "+r.token); st == http.StatusNotFound {
		t.Skipf("the jobs API (docs/design/console.md \"Jobs\") is not in this build: GET /api/jobs answers 404 %s", body)
	}
	run := browserRunID(t)
	const rows = 10000
	csvBody, bad, sample := importCSV(rows, run)
	file := filepath.Join(t.TempDir(), "people.csv")
	if err := os.WriteFile(file, csvBody, 0o644); err != nil {
		t.Fatal(err)
	}

	r.open(owner, "/admin/imports", "#import-file")
	owner.shots("imports")
	owner.do("choose the file", chromedp.SetUploadFiles(`#import-file`, []string{file}))
	owner.do("upload", chromedp.Click(`#import-upload`))
	owner.waitSel("#import-preview tbody tr")
	if n := evalJS[int](owner, "preview rows", `document.querySelectorAll('#import-preview tbody tr').length`); n != 10 {
		t.Errorf("preview shows %d rows, want 10", n)
	}
	owner.inert("import preview", injection)
	// The mapping guessed from the headers: email an identifier, the rest traits named as the columns.
	if got := evalJS[string](owner, "mapping", `[...document.querySelectorAll('select.map-kind')].map(s => s.value).join(',')`); got != "identifier:email,trait,trait,trait" {
		t.Errorf("default mapping %q", got)
	}
	// Ignore the company column.
	owner.do("ignore company", chromedp.SetValue(`#map-3`, "ignore"))
	owner.shots("import-mapping")
	owner.do("start", chromedp.Click(`#import-start`))
	owner.waitSel("#import-progress")
	owner.waitJS("import done", `document.querySelector('#import-progress').dataset.status === 'done'`, 120*time.Second)
	bar := evalJS[map[string]string](owner, "progress bar", `(() => { const b = document.querySelector('#import-progress');
		return {role: b.getAttribute('role'), now: b.getAttribute('aria-valuenow'), max: b.getAttribute('aria-valuemax')}; })()`)
	if bar["role"] != "progressbar" || bar["now"] != fmt.Sprint(rows) || bar["max"] != fmt.Sprint(rows) {
		t.Errorf("progress bar at the end: %v", bar)
	}
	owner.waitSel("#import-summary")
	if got := strings.ReplaceAll(strings.ReplaceAll(owner.text("#import-rejected"), ",", ""), ".", ""); got != fmt.Sprint(bad) {
		t.Errorf("report: %s rejected, want %d", got, bad)
	}
	href := evalJS[string](owner, "rejections link", `document.querySelector('#import-rejections').getAttribute('href')`)
	st, rej := get(t, r.n.URL+href, "Authorization", "Bearer "+r.token)
	if st != http.StatusOK || strings.Count(strings.TrimSpace(rej), "\n") < bad-1 || !strings.Contains(rej, "not-an-email") {
		t.Errorf("GET %s: %d, %d lines", href, st, strings.Count(rej, "\n"))
	}
	owner.shots("import-done")

	// The people exist, with their traits (company ignored).
	for _, email := range sample {
		var res struct {
			Data []struct {
				Traits map[string]any `json:"traits"`
			} `json:"data"`
		}
		r.apiJSON("/api/people?q="+url.QueryEscape(email), &res)
		if len(res.Data) != 1 || res.Data[0].Traits["plan"] == nil || res.Data[0].Traits["company"] != nil {
			t.Errorf("person %s: %+v", email, res.Data)
		}
	}
	// Counting them all: every good row is a person (plus the owner).
	count, cursor := 0, ""
	for {
		var page struct {
			Data []json.RawMessage `json:"data"`
			Next string            `json:"next"`
		}
		r.apiJSON("/api/people?limit=500&cursor="+url.QueryEscape(cursor), &page)
		count += len(page.Data)
		if page.Next == "" || len(page.Data) == 0 {
			break
		}
		cursor = page.Next
	}
	if count < rows-bad {
		t.Errorf("%d people in the API, want at least %d", count, rows-bad)
	}

	// Reopened, the page lists the job as done.
	r.open(owner, "/admin/imports", "#jobs-table")
	if got := owner.text("#jobs-table tbody tr"); !strings.Contains(got, "done") || !strings.Contains(got, fmt.Sprint(bad)) && !strings.Contains(got, fmt.Sprintf("%d rejected", bad)) {
		t.Errorf("recent jobs: %q", got)
	}

	// Leaving the page while an import runs does not stop it, and coming
	// back shows it under Recent jobs with its progress, which goes on
	// to the end there.
	const rows2 = 20000
	csv2, bad2, sample2 := importCSV(rows2, run+"b")
	file2 := filepath.Join(t.TempDir(), "more-people.csv")
	if err := os.WriteFile(file2, csv2, 0o644); err != nil {
		t.Fatal(err)
	}
	owner.do("choose the second file", chromedp.SetUploadFiles(`#import-file`, []string{file2}))
	owner.do("upload it", chromedp.Click(`#import-upload`))
	owner.waitSel("#import-start")
	owner.do("start it", chromedp.Click(`#import-start`))
	owner.waitSel("#import-progress")
	var jobs struct {
		Data []struct {
			ID        string `json:"id"`
			Kind      string `json:"kind"`
			Status    string `json:"status"`
			RowsTotal int    `json:"rows_total"`
		} `json:"data"`
	}
	r.apiJSON("/api/jobs?limit=1", &jobs)
	if len(jobs.Data) != 1 || jobs.Data[0].Kind != "import" || jobs.Data[0].RowsTotal != rows2 {
		t.Fatalf("newest job = %+v, want the import of %d rows", jobs.Data, rows2)
	}
	job := jobs.Data[0].ID
	owner.do("leave for the people list", chromedp.Navigate(r.n.URL+"/admin/people"))
	owner.waitSel("#people-table")
	r.open(owner, "/admin/imports", `#jobs-table tr[data-job-id="`+job+`"]`)
	row := `#jobs-table tr[data-job-id="` + job + `"]`
	back := evalJS[map[string]string](owner, "the job's row", `(() => { const tr = document.querySelector(`+jsLit(row)+`);
		const b = tr.querySelector('[role=progressbar]');
		return {status: tr.dataset.status, now: b.getAttribute('aria-valuenow'), max: b.getAttribute('aria-valuemax'), text: b.getAttribute('aria-valuetext')}; })()`)
	t.Logf("back on the imports page, the import is %s: %s", back["status"], back["text"])
	switch back["status"] {
	case "queued", "running", "done":
	default:
		t.Errorf("the import after leaving and coming back: %v", back)
	}
	if back["max"] != fmt.Sprint(rows2) || !strings.Contains(back["text"], "of "+fmt.Sprint(rows2)+" rows") {
		t.Errorf("the job's progress bar after coming back: %v", back)
	}
	if back["status"] != "done" {
		owner.shots("imports-reopened-running")
	}
	// The page polls the running job to its end.
	owner.waitJS("the listed import done", `(() => { const tr = document.querySelector(`+jsLit(row)+`);
		return tr && tr.dataset.status === 'done' && tr.querySelector('[role=progressbar]').getAttribute('aria-valuenow') === '`+fmt.Sprint(rows2)+`'; })()`, 120*time.Second)
	if got := strings.ReplaceAll(owner.text(row), ",", ""); !strings.Contains(got, fmt.Sprintf("%d rejected", bad2)) || !strings.Contains(got, fmt.Sprintf("%d / %d", rows2, rows2)) {
		t.Errorf("the finished job's row: %q, want %d / %d rows and %d rejected", got, rows2, rows2, bad2)
	}
	if !evalJS[bool](owner, "rejected rows link", `!!document.querySelector(`+jsLit(row+` a[href$="/rejections"]`)+`)`) {
		t.Error("the finished job's row has no link to its rejected rows")
	}
	var found struct {
		Data []json.RawMessage `json:"data"`
	}
	r.apiJSON("/api/people?q="+url.QueryEscape(sample2[len(sample2)-1]), &found)
	if len(found.Data) != 1 {
		t.Errorf("the second import's person %s: %d found", sample2[len(sample2)-1], len(found.Data))
	}

	// An export of people as CSV runs to a download link.
	if evalJS[bool](owner, "export buttons", `!!document.querySelector('#export-people-csv')`) {
		owner.do("export people", chromedp.Click(`#export-people-csv`))
		owner.waitSel(".export-download")
		href := evalJS[string](owner, "download link", `document.querySelector('.export-download').getAttribute('href')`)
		st, body := get(t, r.n.URL+href, "Authorization", "Bearer "+r.token)
		if st != http.StatusOK || !strings.Contains(body, sample[0]) {
			t.Errorf("GET %s: %d, %d bytes", href, st, len(body))
		}
		owner.shots("imports-export")
	}
	owner.noExceptions()
}
