package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The SDK test page. The stub is the one-liner from docs/sdk.md, so calls
// made before the async script has loaded are replayed by the SDK.
var sdkPageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
  body { font: 16px/1.4 system-ui, sans-serif; margin: 40px; color: #1d2433; background: #fff; }
  h1 { color: #0b3d91; }
  .cta { display: inline-block; padding: 14px 28px; background: #0b5fff; color: #fff; border-radius: 8px; font-weight: 600; }
  pre { background: #f1f4f9; border: 1px solid #d5dbe6; padding: 12px; white-space: pre-wrap; }
</style>
<script>!function(w){var o=w.onramp=w.onramp||[];"load page track identify group alias reset consent flush ready debug".split(" ").forEach(function(m){o[m]=o[m]||function(){o.push([m].concat([].slice.call(arguments)))}})}(window);{{.Stub}}</script>
<script src="{{.SDK}}" data-write-key="{{.WriteKey}}"{{if .Consent}} data-consent="{{.Consent}}"{{end}}{{if .FlushInterval}} data-flush-interval="{{.FlushInterval}}"{{end}} async></script>
</head>
<body>
<h1>{{.Heading}}</h1>
<p>This page is served from its own origin and loads onramp.js from the Onramp server.</p>
<p><span class="cta" id="cta">Start free trial</span></p>
<pre id="status">waiting for onramp.js…</pre>
</body>
</html>
`))

type sdkPage struct {
	Title, Heading string
	SDK, WriteKey  string
	Consent        string // data-consent, "" for none
	FlushInterval  string // data-flush-interval, "" for the default
	Stub           template.JS
}

func (p sdkPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := sdkPageTmpl.Execute(w, p); err != nil {
		http.Error(w, err.Error(), 500)
	}
}

// byePage is where pages navigate to when a test leaves them.
func byePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.WriteString(w, "<!doctype html><title>bye</title><h1>You left the page</h1>")
}

// sdkReady waits until onramp.js has loaded and replaced the stub.
const sdkReady = `!!(window.onramp && window.onramp.VERSION)`

// showStatus writes a summary into the page, so the screenshot tells the story.
func (tb *browserTab) showStatus(text string) {
	tb.t.Helper()
	evalJS[bool](tb, "show status", `(document.getElementById('status').textContent = `+jsLit(text)+`, true)`)
}

func TestBrowserSDK(t *testing.T) {
	requireChromium(t)
	start := time.Now()
	node := StartNode(t, NodeOptions{})
	run := browserRunID(t)

	// Two page servers: "site" is the property's allowed origin, "other" is not.
	siteMux, otherMux := http.NewServeMux(), http.NewServeMux()
	site := httptest.NewServer(siteMux)
	t.Cleanup(site.Close)
	other := httptest.NewServer(otherMux)
	t.Cleanup(other.Close)
	prop := node.CreateProperty(t, "browser-"+run, site.URL)
	sdkURL := node.URL + "/sdk/onramp.js"
	batchURL := node.URL + "/v1/batch"
	apiPrefix := node.URL + "/v1/"
	page := func(heading string) sdkPage {
		return sdkPage{Title: "Onramp SDK test: " + heading, Heading: heading, SDK: sdkURL, WriteKey: prop.WriteKey, FlushInterval: "50"}
	}
	landing := page("Landing page")
	landing.Stub = `onramp.page();` // before the SDK has loaded: replayed by it
	siteMux.Handle("GET /landing", landing)
	denied := page("Consent denied by data-consent")
	denied.Consent = "denied"
	denied.Stub = `onramp.page();`
	siteMux.Handle("GET /consent-denied", denied)
	siteMux.Handle("GET /plain", page("Plain page"))
	beacon := page("Beacon on page hide")
	beacon.FlushInterval = "600000" // only the page-hide beacon can deliver
	siteMux.Handle("GET /beacon", beacon)
	siteMux.HandleFunc("GET /bye", byePage)
	blocked := page("Origin not allowed")
	blocked.Stub = `onramp.page();`
	otherMux.Handle("GET /landing", blocked)
	otherMux.HandleFunc("GET /bye", byePage)

	browser := startBrowser(t)
	t.Logf("setup (node, property, browser) took %v", time.Since(start).Round(time.Millisecond))

	t.Run("size", func(t *testing.T) {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true}}
		get := func(enc string) (*http.Response, []byte) {
			req, _ := http.NewRequest(http.MethodGet, sdkURL, nil)
			if enc != "" {
				req.Header.Set("Accept-Encoding", enc)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("GET %s: %v", sdkURL, err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET %s: status %d, %v", sdkURL, resp.StatusCode, err)
			}
			return resp, b
		}
		resp, gz := get("gzip")
		if ce := resp.Header.Get("Content-Encoding"); ce != "gzip" {
			t.Fatalf("Accept-Encoding: gzip answered with Content-Encoding %q", ce)
		}
		t.Logf("/sdk/onramp.js gzipped: %d bytes (Content-Type %s)", len(gz), resp.Header.Get("Content-Type"))
		if len(gz) >= 10240 {
			t.Errorf("/sdk/onramp.js is %d bytes gzipped, want < 10240", len(gz))
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatalf("not gzip: %v", err)
		}
		unzipped, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("gunzip: %v", err)
		}
		_, plain := get("")
		src, err := os.ReadFile(filepath.Join(repoRoot, "web", "sdk", "onramp.js"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(unzipped, plain) || !bytes.Equal(plain, src) {
			t.Errorf("served SDK differs: gunzipped %d bytes, identity %d bytes, web/sdk/onramp.js %d bytes", len(unzipped), len(plain), len(src))
		}
	})

	t.Run("stitch", func(t *testing.T) {
		tb := newTab(t, browser)
		user := "u-" + run
		email := user + "@example.com"
		tb.do("open landing page", chromedp.Navigate(site.URL+"/landing?utm_source=e2e"))
		tb.waitJS("SDK load", sdkReady, 10*time.Second)

		// 1. The stubbed page() goes out while the visitor is still anonymous.
		first := evalJS[struct {
			Anon    string `json:"anon"`
			Flushed bool   `json:"flushed"`
		}](tb, "flush page()", `(async () => ({flushed: await onramp.flush(), anon: onramp.anonymousId()}))()`)
		if !first.Flushed || first.Anon == "" {
			t.Fatalf("flush after page() = %+v", first)
		}
		cookie, ok := tb.cookie(site.URL, "onramp_anon_id")
		if !ok || cookie != first.Anon {
			t.Fatalf("onramp_anon_id cookie = %q (present %v), onramp.anonymousId() = %q", cookie, ok, first.Anon)
		}
		var anonEvents []map[string]any
		Eventually(t, 10*time.Second, func() (bool, string) {
			anonEvents = node.Timeline(t, prop.SecretKey, "anonymous_id:"+cookie)
			return len(anonEvents) == 1, "anonymous timeline:" + describeEvents(anonEvents)
		})
		if e := anonEvents[0]; evStr(e, "type") != "page" || evStr(e, "user_id") != "" {
			t.Fatalf("before identify, the anonymous timeline should hold one anonymous page view:%s", describeEvents(anonEvents))
		}

		// 2. track and identify; identify links the anonymous id to the user.
		second := evalJS[struct {
			Track     string `json:"track"`
			Identify  string `json:"identify"`
			TrackUser string `json:"trackUser"`
			Flushed   bool   `json:"flushed"`
			Anon      string `json:"anon"`
			User      string `json:"user"`
		}](tb, "track and identify", `(async () => {
			const t = await onramp.track('Clicked CTA', {button: 'hero', plan: 'pro', run: `+jsLit(run)+`});
			const i = await onramp.identify(`+jsLit(user)+`, {email: `+jsLit(email)+`, name: 'Ada'});
			const flushed = await onramp.flush();
			return {track: t && t.messageId, identify: i && i.messageId, trackUser: (t && t.userId) || '',
				flushed, anon: onramp.anonymousId(), user: onramp.user().userId};
		})()`)
		if second.Track == "" || second.Identify == "" || !second.Flushed || second.Anon != cookie || second.User != user {
			t.Fatalf("track/identify = %+v (cookie %q)", second, cookie)
		}
		for _, r := range tb.settled(apiPrefix) {
			if r.URL != batchURL || r.Method != "POST" || r.Status != 200 || r.ACAO != site.URL {
				t.Errorf("request %s (ACAO %q): want POST %s -> 200 with Access-Control-Allow-Origin %s", r, r.ACAO, batchURL, site.URL)
			}
		}

		var evs []map[string]any
		Eventually(t, 10*time.Second, func() (bool, string) {
			evs = node.Timeline(t, prop.SecretKey, "user_id:"+user)
			return len(evs) >= 3, "user timeline:" + describeEvents(evs)
		})
		if len(evs) != 3 {
			t.Fatalf("want exactly page, track, identify on %s's timeline:%s", user, describeEvents(evs))
		}
		pages, tracks, ids := eventsOfType(evs, "page"), eventsOfType(evs, "track"), eventsOfType(evs, "identify")
		if len(pages) != 1 || len(tracks) != 1 || len(ids) != 1 {
			t.Fatalf("want one page, one track, one identify:%s", describeEvents(evs))
		}
		pg, tr, id := pages[0], tracks[0], ids[0]
		if got := evStr(pg, "message_id"); got != evStr(anonEvents[0], "message_id") {
			t.Errorf("the stitched page view %s is not the anonymous one %s", got, evStr(anonEvents[0], "message_id"))
		}
		if evStr(pg, "user_id") != "" || evStr(tr, "user_id") != "" || second.TrackUser != "" {
			t.Errorf("page and track were sent before identify and should carry no user_id:%s", describeEvents(evs))
		}
		if evStr(tr, "message_id") != second.Track || evStr(id, "message_id") != second.Identify {
			t.Errorf("message ids: timeline track %s identify %s, SDK returned %s and %s",
				evStr(tr, "message_id"), evStr(id, "message_id"), second.Track, second.Identify)
		}
		if evStr(id, "user_id") != user {
			t.Errorf("identify user_id = %q, want %q", evStr(id, "user_id"), user)
		}
		if evStr(tr, "event") != "Clicked CTA" || evStr(tr, "properties", "button") != "hero" ||
			evStr(tr, "properties", "plan") != "pro" || evStr(tr, "properties", "run") != run {
			t.Errorf("track event = %q properties %v", evStr(tr, "event"), evField(tr, "properties"))
		}
		if evStr(pg, "properties", "path") != "/landing" || evStr(pg, "properties", "title") != landing.Title {
			t.Errorf("page properties = %v", evField(pg, "properties"))
		}
		for _, e := range evs {
			typ := evStr(e, "type")
			if a := evStr(e, "anonymous_id"); a != cookie {
				t.Errorf("%s anonymous_id = %q, want the onramp_anon_id cookie %q", typ, a, cookie)
			}
			if lib := evStr(e, "context", "library", "name"); lib != "onramp.js" {
				t.Errorf("%s context.library.name = %q, want onramp.js", typ, lib)
			}
			if u := evStr(e, "context", "page", "url"); !strings.HasPrefix(u, site.URL+"/landing") {
				t.Errorf("%s context.page.url = %q, want %s/landing…", typ, u, site.URL)
			}
			if src := evStr(e, "context", "campaign", "source"); src != "e2e" {
				t.Errorf("%s context.campaign.source = %q, want e2e (from utm_source)", typ, src)
			}
		}
		if tr := node.Traits(t, prop.SecretKey, "user_id:"+user); tr["email"] != email || tr["name"] != "Ada" {
			t.Errorf("traits = %v, want email %s and name Ada", tr, email)
		}
		if got := node.Timeline(t, prop.SecretKey, "anonymous_id:"+cookie); len(got) != 3 {
			t.Errorf("the anonymous id's timeline should now be the user's (3 events):%s", describeEvents(got))
		}
		tb.showStatus(fmt.Sprintf("page, track and identify delivered and stitched\nuser:        %s\nanonymousId: %s (cookie onramp_anon_id)", user, cookie))
		tb.screenshot("browser-sdk-landing")

		// 3. A reload keeps the anonymous id (cookie) and the user (localStorage).
		tb.do("reload", chromedp.Reload())
		tb.waitJS("SDK load after reload", sdkReady, 10*time.Second)
		third := evalJS[struct {
			Anon    string `json:"anon"`
			User    string `json:"user"`
			Page    string `json:"page"`
			Flushed bool   `json:"flushed"`
		}](tb, "after reload", `(async () => {
			await onramp.ready();
			const p = await onramp.page('Pricing');
			return {anon: onramp.anonymousId(), user: onramp.user().userId, page: p && p.messageId, flushed: await onramp.flush()};
		})()`)
		if third.Anon != cookie || third.User != user || !third.Flushed {
			t.Fatalf("after reload: %+v, want anonymousId %q and user %q", third, cookie, user)
		}
		if c, _ := tb.cookie(site.URL, "onramp_anon_id"); c != cookie {
			t.Errorf("cookie after reload = %q, want %q", c, cookie)
		}
		// The reloaded page's own stubbed page() and the page('Pricing') above.
		Eventually(t, 10*time.Second, func() (bool, string) {
			evs = node.Timeline(t, prop.SecretKey, "user_id:"+user)
			return len(evs) >= 5, "user timeline after reload:" + describeEvents(evs)
		})
		if len(evs) != 5 || evStr(evs[0], "message_id") != third.Page || evStr(evs[0], "name") != "Pricing" {
			t.Fatalf("want the two page views of the reloaded page on top of the 3 events, newest %s:%s", third.Page, describeEvents(evs))
		}
		for _, e := range evs[:2] {
			if evStr(e, "type") != "page" || evStr(e, "user_id") != user || evStr(e, "anonymous_id") != cookie {
				t.Errorf("after reload, page views should carry the remembered user %s and the same anonymous id %s:%s", user, cookie, describeEvents(evs))
			}
		}
		tb.noExceptions()
	})

	t.Run("origin-not-allowed", func(t *testing.T) {
		tb := newTab(t, browser)
		user := "blocked-" + run
		tb.do("open page on other origin", chromedp.Navigate(other.URL+"/landing"))
		tb.waitJS("SDK load", sdkReady, 10*time.Second)
		res := evalJS[struct {
			Anon    string `json:"anon"`
			Flushed bool   `json:"flushed"`
		}](tb, "send from a foreign origin", `(async () => {
			await onramp.track('Clicked CTA', {run: `+jsLit(run)+`});
			await onramp.identify(`+jsLit(user)+`, {email: 'blocked@example.com'});
			return {flushed: await onramp.flush(), anon: onramp.anonymousId()};
		})()`)
		reqs := tb.settled(apiPrefix)
		if len(reqs) == 0 {
			t.Fatal("the SDK sent nothing")
		}
		for _, r := range reqs {
			if r.URL != batchURL || r.Status != http.StatusForbidden {
				t.Errorf("request %s: want POST %s -> 403", r, batchURL)
			}
			if r.ACAO != other.URL {
				t.Errorf("403 without Access-Control-Allow-Origin %s (got %q): the SDK cannot see the refusal and will retry", other.URL, r.ACAO)
			}
		}
		// The browser does not keep the body of the refused request; ask the
		// same question from Go to check the refusal explains itself.
		if status, body := postFromOrigin(t, batchURL, other.URL, prop.WriteKey); status != http.StatusForbidden || !strings.Contains(body, other.URL) {
			t.Errorf("POST from origin %s: %d %s; want 403 naming the origin", other.URL, status, body)
		}
		if !res.Flushed {
			t.Errorf("a 403 should not be retried: flush() = false")
		}
		if got := node.Timeline(t, prop.SecretKey, "user_id:"+user); got != nil {
			t.Errorf("events from a foreign origin were stored for %s:%s", user, describeEvents(got))
		}
		if got := node.Timeline(t, prop.SecretKey, "anonymous_id:"+res.Anon); got != nil {
			t.Errorf("events from a foreign origin were stored for anonymous id %s:%s", res.Anon, describeEvents(got))
		}
		time.Sleep(1500 * time.Millisecond) // a retry would come after ~1 s
		if n := len(tb.requests(apiPrefix)); n != len(reqs) {
			t.Errorf("the SDK retried a 403: %d requests, then %d", len(reqs), n)
		}
		tb.showStatus(fmt.Sprintf("origin %s is not allowed:\n%d request(s), all answered 403; nothing stored", other.URL, len(reqs)))
		tb.screenshot("browser-sdk-origin-not-allowed")
		tb.noExceptions()
	})

	// expectNothing checks that nothing reached the server and no cookie is set.
	expectNothing := func(t *testing.T, tb *browserTab, user string) {
		t.Helper()
		if reqs := tb.requests(apiPrefix); len(reqs) > 0 {
			t.Errorf("consent denied, but the browser sent:\n  %v", reqs)
		}
		if c, ok := tb.cookie(site.URL, "onramp_anon_id"); ok {
			t.Errorf("consent denied, but the onramp_anon_id cookie is set: %q", c)
		}
		if got := node.Timeline(t, prop.SecretKey, "user_id:"+user); got != nil {
			t.Errorf("consent denied, but events were stored for %s:%s", user, describeEvents(got))
		}
	}
	type consentResult struct {
		Consent  string `json:"consent"`
		Page     any    `json:"page"`
		Track    any    `json:"track"`
		Identify any    `json:"identify"`
		Cookie   string `json:"cookie"`
		Stored   []string
	}
	callAll := func(user, prelude string) string {
		return `(async () => {
			` + prelude + `
			const page = await onramp.page('Denied');
			const track = await onramp.track('Clicked CTA', {run: ` + jsLit(run) + `});
			const identify = await onramp.identify(` + jsLit(user) + `, {email: 'denied@example.com'});
			await onramp.flush();
			await new Promise(r => setTimeout(r, 300)); // several flush intervals
			return {consent: await onramp.consent(), page, track, identify, cookie: document.cookie,
				Stored: Object.keys(localStorage).filter(k => k !== 'onramp_consent')};
		})()`
	}
	checkDenied := func(t *testing.T, r consentResult) {
		t.Helper()
		if r.Consent != "denied" || r.Page != nil || r.Track != nil || r.Identify != nil {
			t.Errorf("with consent denied, calls should resolve to null: consent() = %q, page/track/identify queued a message: %v/%v/%v",
				r.Consent, r.Page != nil, r.Track != nil, r.Identify != nil)
		}
		if strings.Contains(r.Cookie, "onramp_anon_id") || len(r.Stored) > 0 {
			t.Errorf("with consent denied, nothing should be stored: document.cookie %q, localStorage %v", r.Cookie, r.Stored)
		}
	}

	t.Run("consent-denied-attribute", func(t *testing.T) {
		tb := newTab(t, browser)
		user := "denied-attr-" + run
		tb.do("open page", chromedp.Navigate(site.URL+"/consent-denied"))
		tb.waitJS("SDK load", sdkReady, 10*time.Second)
		r := evalJS[consentResult](tb, "calls with data-consent=denied", callAll(user, ""))
		checkDenied(t, r)
		tb.showStatus("data-consent=\"denied\": page, track and identify dropped; no cookie, nothing sent")
		tb.screenshot("browser-sdk-consent-denied")
		tb.do("leave the page", chromedp.Navigate(site.URL+"/bye")) // page hide must not beacon either
		time.Sleep(300 * time.Millisecond)
		expectNothing(t, tb, user)
		tb.noExceptions()
	})

	t.Run("consent-denied-call", func(t *testing.T) {
		tb := newTab(t, browser)
		user := "denied-call-" + run
		tb.do("open page", chromedp.Navigate(site.URL+"/plain"))
		tb.waitJS("SDK load", sdkReady, 10*time.Second)
		if _, ok := tb.cookie(site.URL, "onramp_anon_id"); !ok {
			t.Fatal("before any choice (default granted) the SDK should set onramp_anon_id")
		}
		r := evalJS[consentResult](tb, "onramp.consent('denied')", callAll(user, `await onramp.consent('denied');`))
		checkDenied(t, r)
		// The choice is remembered: still denied after a reload.
		tb.do("reload", chromedp.Reload())
		tb.waitJS("SDK load after reload", sdkReady, 10*time.Second)
		r = evalJS[consentResult](tb, "calls after reload", callAll(user, ""))
		checkDenied(t, r)
		tb.do("leave the page", chromedp.Navigate(site.URL+"/bye"))
		time.Sleep(300 * time.Millisecond)
		expectNothing(t, tb, user)
		tb.noExceptions()
	})

	t.Run("beacon-on-page-hide", func(t *testing.T) {
		tb := newTab(t, browser)
		tb.do("open page", chromedp.Navigate(site.URL+"/beacon"))
		tb.waitJS("SDK load", sdkReady, 10*time.Second)
		anon := evalJS[string](tb, "anonymous id", `onramp.anonymousId()`)
		tb.screenshot("browser-sdk-beacon")
		// Track, then leave at once for another origin: the flush timer (10 min)
		// never fires and the other origin cannot see this one's stored queue,
		// so only the page-hide beacon can deliver the event.
		// A spy on sendBeacon notes in localStorage what the SDK handed over.
		evalJS[bool](tb, "track and leave", `(() => {
			const send = navigator.sendBeacon.bind(navigator);
			navigator.sendBeacon = (url, data) => {
				const ok = send(url, data);
				localStorage.setItem('e2e_beacon', JSON.stringify({url, ok}));
				return ok;
			};
			onramp.track('Left Page', {run: `+jsLit(run)+`});
			location.href = `+jsLit(other.URL+"/bye")+`;
			return true;
		})()`)
		tb.waitLocation(other.URL + "/bye")
		var evs []map[string]any
		Eventually(t, 10*time.Second, func() (bool, string) {
			evs = node.Timeline(t, prop.SecretKey, "anonymous_id:"+anon)
			return len(evs) == 1, "timeline of the anonymous visitor:" + describeEvents(evs)
		})
		if evStr(evs[0], "event") != "Left Page" || evStr(evs[0], "properties", "run") != run {
			t.Errorf("want the Left Page track:%s", describeEvents(evs))
		}
		// Back on the site's origin (a page without the SDK), read what the spy
		// wrote: the beacon went to /v1/batch, and the SDK's stored queue is empty.
		tb.do("back to the site", chromedp.Navigate(site.URL+"/bye"))
		stored := evalJS[map[string]string](tb, "read localStorage", `Object.assign({}, localStorage)`)
		var spy struct {
			URL string `json:"url"`
			OK  bool   `json:"ok"`
		}
		if err := json.Unmarshal([]byte(stored["e2e_beacon"]), &spy); err != nil || spy.URL != batchURL || !spy.OK {
			t.Errorf("sendBeacon was not used (or refused) on page hide: %q, want a beacon to %s", stored["e2e_beacon"], batchURL)
		}
		if q := stored["onramp_queue:"+prop.WriteKey]; q != "" && q != "[]" {
			t.Errorf("the beaconed event is still in the stored queue: %s", q)
		}
		if reqs := tb.requests(apiPrefix); len(reqs) > 0 {
			t.Errorf("the event should leave only by beacon, but the page also sent: %v", reqs)
		}
		tb.noExceptions()
	})
	t.Logf("TestBrowserSDK took %v", time.Since(start).Round(time.Millisecond))
}
