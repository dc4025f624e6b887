package e2e

// The staff console in a real chromium against the real binary: owner
// setup from the first-start link, staff sign-in with return_to, search
// and the person page, the live timeline, merge and unmerge, script
// injection rendered inert, and a support agent refused the staff page by
// the server. Screenshots of each main page, light and dark, go to
// $ONRAMP_TEST_ARTIFACTS/console (default e2e/testdata/out/console).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/onramp-dev/onramp/postgres/pgtest"
)

// The payloads a visitor could put in a trait or an event property. If any
// ran, it would set window.__pwned.
const (
	evilHTML = `<img src=x onerror="window.__pwned='img'">`
	evilJS   = `javascript:window.__pwned='url'`
	evilTag  = `<script>window.__pwned='script'</script>`
)

// screenshotsDir is where the console's screenshots go: a console folder
// beside the other browser tests' screenshots ($ONRAMP_TEST_ARTIFACTS,
// default e2e/testdata/out).
func screenshotsDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(artifactsDir(t), "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// shoot saves the tab's page as name-light.png and name-dark.png.
func (tb *browserTab) shoot(name string) {
	tb.t.Helper()
	for _, scheme := range []string{"light", "dark"} {
		if _, err := chromedp.Call(tb.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		}); err != nil {
			tb.t.Fatalf("emulate %s: %v", scheme, err)
		}
		// The theme toggle follows the media query when nothing is stored.
		evalJS[bool](tb, "clear the stored theme", `(localStorage.removeItem('onramp.console.theme'), document.documentElement.removeAttribute('data-theme'), true)`)
		time.Sleep(150 * time.Millisecond)
		buf, err := chromedp.Run(tb.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			tb.t.Fatalf("screenshot %s: %v", name, err)
		}
		saveScreenshot(tb.t, screenshotsDir(tb.t), name+"-"+scheme, buf)
	}
	if _, err := chromedp.Call(tb.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{}); err != nil {
		tb.t.Fatal(err)
	}
}

// send posts one Segment call with the property's write key and returns
// when the server answered 2xx.
func send(t *testing.T, n *Node, writeKey, path string, msg map[string]any) {
	t.Helper()
	b, _ := json.Marshal(msg)
	req, _ := http.NewRequest(http.MethodPost, n.URL+path, strings.NewReader(string(b)))
	req.SetBasicAuth(writeKey, "")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, body)
	}
}

// sendRaw posts body as it is, whatever the answer (rejections).
func sendRaw(t *testing.T, n *Node, writeKey, path, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, n.URL+path, strings.NewReader(body))
	req.SetBasicAuth(writeKey, "")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	resp.Body.Close()
}

// personID finds a person's id through the JSON API.
func personID(t *testing.T, n *Node, token, q string) string {
	t.Helper()
	var out struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	Eventually(t, 10*time.Second, func() (bool, string) {
		req, _ := http.NewRequest(http.MethodGet, n.URL+"/api/people?q="+url.QueryEscape(q), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		out.Data = nil
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return len(out.Data) == 1, fmt.Sprintf("GET /api/people?q=%s: %d people", q, len(out.Data))
	})
	return out.Data[0].ID
}

// noScriptRan fails the test if any injected payload ran, and checks the
// page holds no element the payloads tried to create.
func (tb *browserTab) noScriptRan(where string) {
	tb.t.Helper()
	got := evalJS[string](tb, "read the flag", `String(window.__pwned ?? '')`)
	if got != "" {
		tb.t.Errorf("%s: an injected script ran (window.__pwned = %q)", where, got)
	}
	if n := evalJS[int](tb, "count injected elements", `document.querySelectorAll('#main img, #main script, #main a[href^="javascript:" i]').length`); n != 0 {
		tb.t.Errorf("%s: %d injected elements in the page", where, n)
	}
}

// wait polls expr until it is true, riding out navigations (which
// destroy the page's context mid-poll), and shows what the page says when
// it times out.
func (tb *browserTab) wait(what, expr string, timeout time.Duration) {
	tb.t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("Boolean("+expr+")"))
		cancel()
		if err == nil && ok {
			return
		}
		last = err
		time.Sleep(25 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
	defer cancel()
	page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\\n" + document.body.innerText`))
	tb.t.Fatalf("%s: %s still false after %v (last error %v); page:\n%s", what, expr, timeout, last, page)
}

// textShown waits until the main area's text contains s literally.
func (tb *browserTab) textShown(where, s string) {
	tb.t.Helper()
	tb.wait(where, `document.getElementById('main').innerText.includes(`+jsLit(s)+`)`, 10*time.Second)
}

// TestConsole runs the console's browser scenario on SQLite, and on
// Postgres when ONRAMP_TEST_POSTGRES_URL is set.
func TestConsole(t *testing.T) {
	requireChromium(t)
	t.Run("sqlite", func(t *testing.T) { testConsole(t, nil) })
	t.Run("postgres", func(t *testing.T) {
		testConsole(t, []string{"ONRAMP_DATABASE_URL=" + pgtest.Database(t, "the console on Postgres")})
	})
}

func testConsole(t *testing.T, env []string) {
	n := StartNode(t, NodeOptions{Env: env})
	var link string
	Eventually(t, 10*time.Second, func() (bool, string) {
		m := ownerLinkLine.FindStringSubmatch(n.Stdout())
		if m != nil {
			link = m[1]
		}
		return m != nil, "no owner setup line in stdout"
	})
	prop := n.CreateProperty(t, "Website")
	token := n.OwnerToken(t)

	// People, one of them with a hostile trait and hostile event properties.
	send(t, n, prop.WriteKey, "/v1/identify", map[string]any{"userId": "ada-1", "traits": map[string]any{"email": "ada@example.com", "name": "Ada Lovelace", "plan": "pro"}})
	send(t, n, prop.WriteKey, "/v1/track", map[string]any{"userId": "ada-1", "event": "Signed Up", "properties": map[string]any{"plan": "pro"}})
	send(t, n, prop.WriteKey, "/v1/page", map[string]any{"userId": "ada-1", "name": "Pricing", "properties": map[string]any{"url": "https://example.com/pricing"}})
	send(t, n, prop.WriteKey, "/v1/identify", map[string]any{"anonymousId": "ada-dup-anon", "traits": map[string]any{"email": "ada.duplicate@example.com", "name": "Ada (duplicate)"}})
	send(t, n, prop.WriteKey, "/v1/identify", map[string]any{"userId": "mallory-1", "traits": map[string]any{"email": "mallory@example.com", "name": evilHTML, "website": evilJS, "bio": evilTag}})
	send(t, n, prop.WriteKey, "/v1/track", map[string]any{"userId": "mallory-1", "event": evilHTML, "properties": map[string]any{"html": evilTag, "link": evilJS, "img": evilHTML}})
	adaID := personID(t, n, token, "ada@example.com")
	dupID := personID(t, n, token, "ada.duplicate@example.com")
	malloryID := personID(t, n, token, "mallory@example.com")

	bctx := startBrowser(t)
	tb := newTab(t, bctx)
	tb.do("laptop viewport", chromedp.EmulateViewport(1280, 800))
	// step runs a subtest on the shared tab, whose helpers report to it.
	step := func(name string, fn func(t *testing.T)) {
		t.Run(name, func(st *testing.T) {
			tb.t = st
			defer func() { tb.t = t }()
			fn(st)
		})
	}

	step("owner setup lands in the console", func(t *testing.T) {
		tb.do("open the first-start link", chromedp.Navigate(link))
		tb.do("type the email", chromedp.SendKeys(`#email`, "owner@example.com"))
		tb.do("type the password", chromedp.SendKeys(`#password`, "a founder's long passphrase"))
		tb.do("create the owner", chromedp.Click(`button.primary`))
		tb.waitLocation(n.URL + "/admin")
		tb.wait("the nav", `document.querySelectorAll('#nav a').length >= 5`, 10*time.Second)
		nav := evalJS[string](tb, "nav", `[...document.querySelectorAll('#nav a')].map(a => a.textContent).join(',')`)
		if nav != "Home,People,Properties,Staff,Audit,Imports" {
			t.Errorf("owner's navigation = %q", nav)
		}
		tb.wait("the home page", `document.querySelector('#live-list') !== null`, 10*time.Second)
	})

	step("live stream and charts on home", func(t *testing.T) {
		tb.wait("connected", `document.querySelector('.live-state.on') !== null`, 10*time.Second)
		send(t, n, prop.WriteKey, "/v1/track", map[string]any{"userId": "mallory-1", "event": "Live " + evilTag, "properties": map[string]any{"x": evilHTML, "u": evilJS}})
		sendRaw(t, n, prop.WriteKey, "/v1/track", `{"userId":"mallory-1","type":"track"}`) // no event name: rejected
		tb.textShown("the accepted event", "Live "+evilTag)
		tb.wait("the rejection", `document.querySelector('#live-list li.rejected') !== null`, 10*time.Second)
		// The owner's own auth events reach the stream through the outbox
		// at their own pace, so the injected one is not always on top.
		evalJS[bool](tb, "open the injected event", `(() => {
			const li = [...document.querySelectorAll('#live-list li.event')].find((el) => el.querySelector('.what').textContent.startsWith('Live '));
			li.querySelector('summary').click();
			return true;
		})()`)
		// Properties show as JSON, so the quotes inside are escaped.
		tb.textShown("its properties", `<img src=x onerror=\"window.__pwned`)
		tb.noScriptRan("live stream")
	})
	step("home screenshots", func(t *testing.T) {
		// Top events are thin bars, one per line: a bar as tall as the
		// other charts (220 px) pushed the list off the screen.
		tb.wait("top events", `document.querySelector('.hbars svg.hbar') !== null`, 10*time.Second)
		if hgt := evalJS[float64](tb, "bar height", `Math.max(...[...document.querySelectorAll('.hbars svg.hbar')].map((b) => b.getBoundingClientRect().height))`); hgt > 30 {
			t.Errorf("a top-events bar is %.0f px high, want a thin bar", hgt)
		}
		// Counts get whole-number ticks: a day with 5 sign-ups drew an
		// axis of 0, 1.3, 2.5, 3.8, 5.
		tb.wait("value ticks", `document.querySelectorAll('.chart svg text.tick.value').length >= 4`, 10*time.Second)
		if bad := evalJS[[]string](tb, "value ticks", `[...document.querySelectorAll('.chart svg text.tick.value')].map((t) => t.textContent).filter((v) => !/^\d+$/.test(v))`); len(bad) > 0 {
			t.Errorf("chart ticks that are not whole numbers: %q", bad)
		}
		ticks := evalJS[map[string]string](tb, "ticks of small counts", `(async () => {
			const src = document.querySelector('script[type=module]').src;
			const { lines, stackedBars } = await import(src.replace(/app\.js$/, 'charts.js'));
			const out = {};
			for (const top of [1, 3, 5, 7, 13]) {
				const f = lines({ title: 't', labels: ['a', 'b'], series: [{ name: 'x', values: [0, top] }] });
				out['lines ' + top] = [...f.querySelectorAll('text.tick.value')].map((t) => t.textContent).join(' ');
			}
			const f = stackedBars({ title: 't', labels: ['a'], series: [{ name: 'x', values: [2] }, { name: 'y', values: [3] }] });
			out['stacked 5'] = [...f.querySelectorAll('text.tick.value')].map((t) => t.textContent).join(' ');
			return out;
		})()`)
		for k, want := range map[string]string{"lines 1": "0 1", "lines 3": "0 1 2 3", "lines 5": "0 1 2 3 4 5", "lines 7": "0 2 4 6 8", "lines 13": "0 5 10 15", "stacked 5": "0 1 2 3 4 5"} {
			if ticks[k] != want {
				t.Errorf("%s: ticks %q, want %q", k, ticks[k], want)
			}
		}
		tb.shoot("console-home")
	})

	step("search a person and open them", func(t *testing.T) {
		tb.do("press g p", chromedp.KeyEvent("g"), chromedp.KeyEvent("p"))
		tb.wait("the people list", `location.pathname === '/admin/people' && document.querySelector('#people-table tbody tr') !== null`, 10*time.Second)
		tb.do("press ?", chromedp.KeyEvent("?"))
		tb.wait("the shortcuts dialog", `document.getElementById('shortcuts').open`, 5*time.Second)
		tb.do("close it", chromedp.KeyEvent("\x1b"))
		tb.wait("closed", `!document.getElementById('shortcuts').open`, 5*time.Second)
		tb.do("press /", chromedp.KeyEvent("/"))
		if id := evalJS[string](tb, "focus", `document.activeElement.id`); id != "people-q" {
			t.Errorf("/ focused %q, want the search box", id)
		}
		// CDP delivers the key's character apart from the keydown the
		// console cancels, so the box may hold the "/": start it empty.
		evalJS[bool](tb, "clear the box", `(document.getElementById('people-q').value = '', true)`)
		tb.do("search", chromedp.SendKeys(`#people-q`, "ada@"))
		tb.wait("one result", `document.querySelectorAll('#people-table tbody tr').length === 1 && document.querySelector('#people-table tbody').innerText.includes('Ada Lovelace')`, 10*time.Second)
		if q := evalJS[string](tb, "url", `location.search`); q != "?q=ada%40" {
			t.Errorf("the search is not in the URL: %q", q)
		}
		tb.shoot("console-people")
		tb.do("open Ada", chromedp.Click(`#people-table tbody a`))
		tb.wait("the person page", `location.pathname === '/admin/people/`+adaID+`' && document.querySelector('#timeline li') !== null`, 10*time.Second)
		tb.textShown("traits", "pro")
		tb.shoot("console-person")
		tb.do("expand the newest event", chromedp.Click(`#timeline li summary`))
		tb.wait("expanded", `document.querySelector('#timeline li details[open] pre') !== null`, 5*time.Second)
		evalJS[bool](tb, "scroll to the timeline", `(document.getElementById('timeline-title').scrollIntoView(), true)`)
		tb.shoot("console-timeline-expanded")
	})

	step("a live event arrives on the timeline", func(t *testing.T) {
		tb.wait("connected", `document.querySelector('.live-state.on') !== null`, 10*time.Second)
		mid := "live-" + browserRunID(t)
		send(t, n, prop.WriteKey, "/v1/track", map[string]any{"userId": "ada-1", "event": "Opened Chat", "messageId": mid})
		acked := time.Now()
		tb.wait("the live row", `document.querySelector('#timeline li[data-message-id="`+mid+`"]') !== null`, 5*time.Second)
		took := time.Since(acked)
		t.Logf("live event: %v from the ingest's 2xx to the row on the person page (target: under 1 s)", took.Round(time.Millisecond))
		if first := evalJS[string](tb, "first row", `document.querySelector('#timeline li').dataset.messageId`); first != mid {
			t.Errorf("the new event is not at the top (first is %q)", first)
		}
		// The target (under 1 s) is measured by `onramp bench live`, not
		// here: a shared CI machine's pauses would make a timed test flaky.
	})

	step("filter the timeline by event name", func(t *testing.T) {
		// Count the timeline requests, to see that typing waits for a pause.
		evalJS[bool](tb, "count timeline requests", `(() => {
			window.__tlEvents = [];
			const f = window.fetch;
			window.fetch = (u, o) => {
				const url = new URL(String(u), location.origin);
				if (url.pathname.endsWith('/events')) window.__tlEvents.push(url.searchParams.get('event') || '');
				return f(u, o);
			};
			return true;
		})()`)
		if label := evalJS[string](tb, "the label", `(document.querySelector('label[for="tl-event"]') || {}).textContent || ''`); label != "Event name" {
			t.Errorf("the event-name field's label = %q", label)
		}
		const onlySignedUp = `document.querySelectorAll('#timeline li').length > 0 && [...document.querySelectorAll('#timeline li .what')].every((w) => w.textContent === 'Signed Up')`
		tb.do("type an event name", chromedp.SendKeys(`#tl-event`, "Signed Up"))
		tb.wait("only Signed Up", `new URLSearchParams(location.search).get('event') === 'Signed Up' && `+onlySignedUp, 10*time.Second)
		reqs := evalJS[[]string](tb, "requests", `window.__tlEvents`)
		if len(reqs) == 0 || len(reqs) >= len("Signed Up") || reqs[len(reqs)-1] != "Signed Up" {
			t.Errorf("timeline requests while typing asked for event=%q; want a few after pauses, the last for the whole name", reqs)
		}
		// Live events are filtered too: the other name arrives first and is
		// left out.
		other, match := "live-other-"+browserRunID(t), "live-match-"+browserRunID(t)
		send(t, n, prop.WriteKey, "/v1/track", map[string]any{"userId": "ada-1", "event": "Clicked Ad", "messageId": other})
		send(t, n, prop.WriteKey, "/v1/track", map[string]any{"userId": "ada-1", "event": "Signed Up", "messageId": match})
		tb.wait("the matching live row", `document.querySelector('#timeline li[data-message-id="`+match+`"]') !== null`, 5*time.Second)
		if evalJS[bool](tb, "other row", `document.querySelector('#timeline li[data-message-id="`+other+`"]') !== null`) {
			t.Error("a live event of another name joined the filtered timeline")
		}
		// Several names, comma-separated; a page's name counts.
		evalJS[bool](tb, "clear the field", `(document.getElementById('tl-event').value = '', true)`)
		tb.do("type two names", chromedp.SendKeys(`#tl-event`, "Signed Up, Pricing"))
		tb.wait("both names", `new URLSearchParams(location.search).get('event') === 'Signed Up, Pricing' && [...document.querySelectorAll('#timeline li .what')].some((w) => w.textContent === 'Viewed Pricing') && [...document.querySelectorAll('#timeline li .what')].every((w) => w.textContent === 'Signed Up' || w.textContent === 'Viewed Pricing')`, 10*time.Second)
		tb.shoot("console-timeline-filtered")
		// The filter is in the URL, so a reload keeps it.
		tb.do("reload", chromedp.Reload())
		tb.wait("kept after reload", `(document.getElementById('tl-event') || {}).value === 'Signed Up, Pricing' && document.querySelectorAll('#timeline li').length > 0 && [...document.querySelectorAll('#timeline li .what')].every((w) => w.textContent === 'Signed Up' || w.textContent === 'Viewed Pricing')`, 10*time.Second)
		// Emptying the field shows every event again.
		evalJS[bool](tb, "empty the field", `(() => { const el = document.getElementById('tl-event'); el.value = ''; el.dispatchEvent(new Event('input', { bubbles: true })); return true; })()`)
		tb.wait("all events", `!location.search.includes('event=') && [...document.querySelectorAll('#timeline li .what')].some((w) => w.textContent === 'Clicked Ad') && [...document.querySelectorAll('#timeline li .what')].some((w) => w.textContent === 'Identified')`, 10*time.Second)
	})

	step("edit a trait", func(t *testing.T) {
		tb.do("edit", chromedp.Click(`#edit-traits`))
		tb.wait("the form", `document.querySelector('#traits-form') !== null`, 5*time.Second)
		evalJS[bool](tb, "change plan", `(() => {
			const row = [...document.querySelectorAll('#traits-form tbody tr')].find((tr) => tr.dataset.original === 'plan');
			row.querySelector('.trait-value').value = 'enterprise';
			return true;
		})()`)
		tb.do("save", chromedp.Click(`#traits-form button[type=submit]`))
		tb.wait("the new value", `document.querySelector('#traits') !== null && document.querySelector('#traits').innerText.includes('enterprise')`, 10*time.Second)
	})

	step("merge then unmerge", func(t *testing.T) {
		tb.do("type the duplicate's id", chromedp.SendKeys(`#merge-from`, dupID))
		tb.do("merge", chromedp.Click(`#merge-form button[type=submit]`))
		tb.wait("the confirmation", `document.querySelector('dialog.confirm[open]') !== null`, 5*time.Second)
		tb.do("confirm", chromedp.Click(`#confirm-ok`))
		tb.wait("the merge row", `document.querySelector('#merges tr[data-merge] button') !== null && document.getElementById('identifiers').innerText.includes('ada-dup-anon')`, 10*time.Second)
		tb.do("unmerge", chromedp.Click(`#merges tr[data-merge] button`))
		tb.wait("the confirmation", `document.querySelector('dialog.confirm[open]') !== null`, 5*time.Second)
		tb.do("confirm", chromedp.Click(`#confirm-ok`))
		tb.wait("undone", `document.querySelector('#merges') !== null && document.querySelector('#merges').innerText.includes('Undone') && !document.getElementById('identifiers').innerText.includes('ada-dup-anon')`, 10*time.Second)
	})

	step("the trait filter waits for key:value", func(t *testing.T) {
		tb.do("open the people list", chromedp.Navigate(n.URL+"/admin/people"))
		tb.wait("the list", `document.querySelectorAll('#people-table tbody tr').length > 1`, 10*time.Second)
		evalJS[bool](tb, "count people requests and abort listeners", `(() => {
			window.__traits = [];
			window.__abortListeners = 0;
			const add = AbortSignal.prototype.addEventListener;
			AbortSignal.prototype.addEventListener = function (type, ...rest) {
				if (type === 'abort') window.__abortListeners++;
				return add.call(this, type, ...rest);
			};
			const f = window.fetch;
			window.fetch = (u, o) => {
				const url = new URL(String(u), location.origin);
				if (url.pathname === '/api/people') { window.__traits.push(url.searchParams.get('trait') || ''); window.__peopleLoads = (window.__peopleLoads || 0) + 1; }
				return f(u, o);
			};
			return true;
		})()`)
		tb.do("type a key", chromedp.SendKeys(`#people-trait`, "email"))
		tb.wait("the inline hint", `document.getElementById('people-trait-hint').textContent.includes('colon')`, 5*time.Second)
		time.Sleep(700 * time.Millisecond) // longer than the typing pause, so a request would have gone
		if reqs := evalJS[[]string](tb, "requests", `window.__traits`); len(reqs) != 0 {
			t.Errorf("a key without a colon sent people requests with trait=%q", reqs)
		}
		if evalJS[bool](tb, "error box", `document.querySelector('main .error-box') !== null`) {
			t.Error("an unfinished trait filter showed an error box")
		}
		tb.shoot("console-people-trait-hint")
		tb.do("finish it", chromedp.SendKeys(`#people-trait`, ":mallory@example.com"))
		tb.wait("filtered", `new URLSearchParams(location.search).get('trait') === 'email:mallory@example.com' && document.querySelectorAll('#people-table tbody tr').length === 1 && document.getElementById('people-trait-hint').textContent.startsWith('key:value')`, 10*time.Second)
		for _, tr := range evalJS[[]string](tb, "requests", `window.__traits`) {
			if !strings.Contains(tr, ":") || strings.HasSuffix(tr, ":") {
				t.Errorf("a people request asked for trait=%q", tr)
			}
		}
		// Enter on something that is no filter says so inline; nothing is
		// sent and the list keeps the last filter.
		evalJS[bool](tb, "reset the count", `(window.__traits = [], true)`)
		evalJS[bool](tb, "clear the box", `(document.getElementById('people-trait').value = '', true)`)
		tb.do("type a key and press Enter", chromedp.SendKeys(`#people-trait`, "plan\r"))
		tb.wait("marked", `document.getElementById('people-trait').getAttribute('aria-invalid') === 'true' && document.getElementById('people-trait-hint').textContent.includes('plan:value')`, 5*time.Second)
		time.Sleep(700 * time.Millisecond)
		for _, tr := range evalJS[[]string](tb, "requests", `window.__traits`) {
			if tr == "plan" {
				t.Error("Enter sent trait=plan")
			}
		}
		if evalJS[bool](tb, "error box", `document.querySelector('main .error-box') !== null`) {
			t.Error("Enter on an unfinished trait filter showed an error box")
		}
		// Each load used to add one more listener to the page's signal:
		// sort twice, so that there are loads to count.
		evalJS[bool](tb, "sort twice", `(async () => {
			const sel = document.getElementById('people-sort');
			for (const v of ['-last_seen', 'last_seen']) {
				sel.value = v;
				sel.dispatchEvent(new Event('change', { bubbles: true }));
				await new Promise((r) => setTimeout(r, 300));
			}
			return true;
		})()`)
		if loads, listeners := evalJS[int](tb, "loads", `window.__peopleLoads || 0`), evalJS[int](tb, "abort listeners", `window.__abortListeners`); loads >= 2 && listeners >= loads {
			t.Errorf("%d people loads added %d abort listeners; want none per load", loads, listeners)
		}
		// A shared link with such a trait shows the hint instead of an error.
		tb.do("open a link with trait=plan", chromedp.Navigate(n.URL+"/admin/people?trait=plan"))
		tb.wait("the whole list and the hint", `document.querySelectorAll('#people-table tbody tr').length > 1 && document.getElementById('people-trait').value === 'plan' && document.getElementById('people-trait-hint').textContent.includes('plan:value')`, 10*time.Second)
		if evalJS[bool](tb, "error box", `document.querySelector('main .error-box') !== null`) {
			t.Error("a link with trait=plan showed an error box")
		}
	})

	step("injection is inert on the list, person page and timeline", func(t *testing.T) {
		tb.do("open the people list", chromedp.Navigate(n.URL+"/admin/people?q=mallory%40"))
		tb.textShown("the hostile name in the list", evilHTML)
		tb.noScriptRan("people list")
		tb.do("open mallory", chromedp.Click(`#people-table tbody a`))
		tb.wait("the person page", `location.pathname === '/admin/people/`+malloryID+`' && document.querySelector('#timeline li') !== null`, 10*time.Second)
		tb.textShown("the hostile traits", evilJS)
		tb.textShown("the hostile bio", evilTag)
		tb.do("expand the hostile event", chromedp.Click(`#timeline li summary`))
		tb.textShown("the hostile event properties", evilTag)
		tb.noScriptRan("person page and timeline")
		tb.noExceptions()
	})

	step("first paint of the people list", func(t *testing.T) {
		tb.do("reload the people list", chromedp.Navigate(n.URL+"/admin/people"))
		tb.wait("rows", `document.querySelector('#people-table tbody tr') !== null`, 10*time.Second)
		fp := evalJS[float64](tb, "paint timing", `new Promise((resolve) => {
			new PerformanceObserver((list) => {
				const e = list.getEntries().find((e) => e.name === 'first-contentful-paint');
				if (e) resolve(e.startTime);
			}).observe({ type: 'paint', buffered: true });
			setTimeout(() => resolve(-1), 3000);
		})`)
		rows := evalJS[float64](tb, "rows timing", `performance.now()`)
		t.Logf("/admin/people: first contentful paint %.0f ms after navigation start; rows shown by %.0f ms (target: first paint under 1 s)", fp, rows)
		if fp < 0 || fp > 1000 {
			t.Errorf("first paint %.0f ms, want under 1000", fp)
		}
	})

	step("staff sign-in with return_to, and a support agent refused the staff page", func(t *testing.T) {
		out := n.CLI(t, "staff", "add", "--email", "sam@example.com", "--role", "support", "--print-link", "--json")
		var inv struct {
			Invited struct {
				Link string `json:"link"`
			} `json:"invited"`
		}
		if err := json.Unmarshal(out, &inv); err != nil || inv.Invited.Link == "" {
			t.Fatalf("staff add: %s (%v)", out, err)
		}
		w := newWebClient(t, n.URL)
		p := w.get(inv.Invited.Link)
		if p = w.submit(p, "/auth/invite", "password", "sam's long passphrase"); p.status != http.StatusOK {
			t.Fatalf("accept the invitation: %d at %s", p.status, p.url)
		}

		sam := newTab(t, bctx)
		sam.do("laptop viewport", chromedp.EmulateViewport(1280, 800))
		sam.do("open the people list signed out", chromedp.Navigate(n.URL+"/admin/people"))
		sam.wait("the sign-in page", `location.pathname === '/auth/sign-in' && new URLSearchParams(location.search).get('return_to') === '/admin/people'`, 10*time.Second)
		sam.do("type the email", chromedp.SendKeys(`#email`, "sam@example.com"))
		sam.do("type the password", chromedp.SendKeys(`#password`, "sam's long passphrase"))
		sam.do("sign in", chromedp.Click(`button[value="password"]`))
		sam.wait("back at the people list", `location.pathname === '/admin/people' && document.querySelector('#people-table tbody tr') !== null`, 10*time.Second)
		nav := evalJS[string](sam, "nav", `[...document.querySelectorAll('#nav a')].map(a => a.textContent).join(',')`)
		if nav != "Home,People,Properties" {
			t.Errorf("support's navigation = %q, want Home,People,Properties", nav)
		}
		status := evalJS[string](sam, "fetch the staff page and API", `Promise.all([fetch('/admin/staff'), fetch('/api/staff')]).then(rs => rs.map(r => r.status).join(','))`)
		if status != "403,403" {
			t.Errorf("support: GET /admin/staff, GET /api/staff = %s, want 403,403", status)
		}
		sam.do("open the staff page", chromedp.Navigate(n.URL+"/admin/staff"))
		sam.wait("the refusal", `document.body.innerText.includes('Not for your role') && document.body.innerText.includes('staff:manage')`, 10*time.Second)
	})
}
