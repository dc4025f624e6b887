package e2e

// TestBrowserSDKRetryAndBatching: onramp.js's batching (flushAt /
// flushInterval), its retries with backoff (5xx, and 429 with Retry-After)
// and its localStorage queue across a reload. The SDK talks to a proxy that
// this test controls: it answers some POST /v1/batch requests with an
// injected failure and forwards everything else, unchanged, to a real node.
// What was stored is checked through the Profile API.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The retry test page. The inline script before the SDK wraps window.fetch so
// that the page itself records what each request carried and what it was
// answered, as the SDK saw it (a CORS failure shows up as "error: …"). It is in
// the page so that it is in place before the SDK runs, after a reload too.
var retryPageTmpl = template.Must(template.New("retry").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Onramp SDK test: retry and batching</title>
<style>
  body { font: 16px/1.4 system-ui, sans-serif; margin: 40px; color: #1d2433; background: #fff; }
  h1 { color: #0b3d91; }
  pre { background: #f1f4f9; border: 1px solid #d5dbe6; padding: 12px; white-space: pre-wrap; }
</style>
<script>
window.__e2e = {sent: []};
(function () {
  var f = window.fetch.bind(window);
  window.fetch = function (url, opts) {
    var rec = {ids: [], status: ''};
    try { rec.ids = JSON.parse(opts.body).batch.map(function (m) { return m.messageId; }); } catch (e) { rec.ids = ['unreadable body']; }
    window.__e2e.sent.push(rec);
    return f(url, opts).then(function (r) { rec.status = String(r.status); return r; },
      function (e) { rec.status = 'error: ' + e; throw e; });
  };
})();
</script>
<script src="{{.SDK}}" data-write-key="{{.WriteKey}}" data-api-host="{{.APIHost}}" data-flush-at="3" data-flush-interval="600000" async></script>
</head>
<body>
<h1>Retry and batching</h1>
<p>onramp.js sends to a proxy that fails on purpose, then forwards to Onramp.</p>
<pre id="status">waiting for onramp.js…</pre>
</body>
</html>
`))

// batchRec is one POST /v1/batch that reached the proxy.
type batchRec struct {
	At        time.Time // when the request arrived
	IDs       []string  // messageId of each message in the batch
	Status    int       // the answer; 0 while none was written
	Forwarded bool      // answered by the node (not injected)
	ACAO      string    // Access-Control-Allow-Origin of the answer
}

// faultProxy forwards requests to a node, except for the POST /v1/batch
// requests it is told to fail.
type faultProxy struct {
	target string
	client *http.Client

	mu      sync.Mutex
	faults  []int // statuses for the next POST /v1/batch requests, in order
	failAll bool  // answer every POST /v1/batch with 503
	recs    []batchRec
}

func (p *faultProxy) inject(statuses ...int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append(p.faults, statuses...)
}

func (p *faultProxy) setFailAll(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failAll = on
}

// records returns a copy of the batch requests from index from on.
func (p *faultProxy) records(from int) []batchRec {
	p.mu.Lock()
	defer p.mu.Unlock()
	if from > len(p.recs) {
		from = len(p.recs)
	}
	return slices.Clone(p.recs[from:])
}

func (p *faultProxy) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.recs)
}

// hopByHop headers belong to one connection and are not forwarded.
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Proxy-Connection": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

func copyHeaders(dst, src http.Header) {
	for k, vs := range src {
		if !hopByHop[http.CanonicalHeaderKey(k)] {
			dst[k] = slices.Clone(vs)
		}
	}
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "proxy: read body: "+err.Error(), http.StatusBadGateway)
		return
	}
	isBatch := r.Method == http.MethodPost && r.URL.Path == "/v1/batch"
	idx, fault := -1, 0
	if isBatch {
		var b struct {
			Batch []struct {
				MessageID string `json:"messageId"`
			} `json:"batch"`
		}
		rec := batchRec{At: at}
		if err := json.Unmarshal(body, &b); err != nil {
			rec.IDs = []string{"unreadable body: " + err.Error()}
		}
		for _, m := range b.Batch {
			rec.IDs = append(rec.IDs, m.MessageID)
		}
		p.mu.Lock()
		switch {
		case p.failAll:
			fault = http.StatusServiceUnavailable
		case len(p.faults) > 0:
			fault, p.faults = p.faults[0], p.faults[1:]
		}
		idx = len(p.recs)
		p.recs = append(p.recs, rec)
		p.mu.Unlock()
	}
	done := func(status int, forwarded bool, acao string) {
		if idx < 0 {
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		p.recs[idx].Status, p.recs[idx].Forwarded, p.recs[idx].ACAO = status, forwarded, acao
	}

	if fault != 0 {
		// Answer the way the node answers its own refusals: readable by the page.
		h := w.Header()
		if origin := r.Header.Get("Origin"); origin != "" {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", "Retry-After, X-Request-Id")
			h.Add("Vary", "Origin")
		}
		if fault == http.StatusTooManyRequests {
			h.Set("Retry-After", "1")
		}
		h.Set("Content-Type", "application/problem+json")
		w.WriteHeader(fault)
		fmt.Fprintf(w, `{"type":"/problems/e2e-injected","title":"Injected by the test proxy","status":%d}`, fault)
		done(fault, false, h.Get("Access-Control-Allow-Origin"))
		return
	}

	out, err := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, "proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	copyHeaders(out.Header, r.Header)
	resp, err := p.client.Do(out)
	if err != nil {
		// A 502 is retried by the SDK: the test notices through the records.
		http.Error(w, "proxy: "+err.Error(), http.StatusBadGateway)
		done(http.StatusBadGateway, false, "")
		return
	}
	defer resp.Body.Close()
	copyHeaders(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
	done(resp.StatusCode, true, resp.Header.Get("Access-Control-Allow-Origin"))
}

// pageSend is one fetch the SDK made, as the page's fetch wrapper saw it.
type pageSend struct {
	IDs    []string `json:"ids"`
	Status string   `json:"status"`
}

func TestBrowserSDKRetryAndBatching(t *testing.T) {
	requireChromium(t)
	start := time.Now()
	node := StartNode(t, NodeOptions{})
	run := browserRunID(t)

	proxy := &faultProxy{
		target: node.URL,
		// No compression of our own: the browser's Accept-Encoding is
		// forwarded and the node's answer goes back as it is.
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true}},
	}
	api := httptest.NewServer(proxy)
	t.Cleanup(api.Close)

	siteMux := http.NewServeMux()
	site := httptest.NewServer(siteMux)
	t.Cleanup(site.Close)
	prop := node.CreateProperty(t, "browser-retry-"+run, site.URL)
	siteMux.HandleFunc("GET /retry", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		data := struct{ SDK, WriteKey, APIHost string }{node.URL + "/sdk/onramp.js", prop.WriteKey, api.URL}
		if err := retryPageTmpl.Execute(w, data); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	queueKey := "onramp_queue:" + prop.WriteKey

	browser := startBrowser(t)
	tb := newTab(t, browser)
	tb.do("open page", chromedp.Navigate(site.URL+"/retry"))
	tb.waitJS("SDK load", sdkReady, 10*time.Second)
	anon := evalJS[string](tb, "anonymous id", `onramp.anonymousId()`)
	t.Logf("setup (node, proxy, browser, page) took %v", time.Since(start).Round(time.Millisecond))

	pageSends := func() []pageSend {
		return evalJS[[]pageSend](tb, "read the page's fetch log", `window.__e2e.sent`)
	}
	storedQueue := func() []string {
		return evalJS[[]string](tb, "read the stored queue",
			`JSON.parse(localStorage.getItem(`+jsLit(queueKey)+`) || '[]').map(m => m.messageId)`)
	}
	track := func(names ...string) []string {
		t.Helper()
		js := `(async () => {
			const ids = [];
			for (const name of ` + jsLit(names) + `) {
				const m = await onramp.track(name, {run: ` + jsLit(run) + `});
				ids.push(m ? m.messageId : '');
			}
			return ids;
		})()`
		ids := evalJS[[]string](tb, "track "+strings.Join(names, ", "), js)
		for i, id := range ids {
			if id == "" {
				t.Fatalf("track(%q) was dropped", names[i])
			}
		}
		return ids
	}
	// waitRec waits for an answered batch request, from index from on, that
	// carries exactly ids and was answered status.
	waitRec := func(what string, from int, ids []string, status int, timeout time.Duration) batchRec {
		t.Helper()
		var found batchRec
		Eventually(t, timeout, func() (bool, string) {
			recs := proxy.records(from)
			for _, r := range recs {
				if r.Status == status && slices.Equal(r.IDs, ids) {
					found = r
					return true, ""
				}
			}
			return false, fmt.Sprintf("%s: no POST /v1/batch with %v answered %d; the proxy saw %+v", what, ids, status, recs)
		})
		return found
	}
	names := map[string]string{} // messageId -> event name, everything that must be stored

	// 1. Batching: with flushAt 3 and a 10-minute flushInterval, two calls
	// send nothing and the third sends all three in one request.
	phase := time.Now()
	aNames := []string{"Batch A1", "Batch A2", "Batch A3"}
	aIDs := track(aNames[:2]...)
	time.Sleep(400 * time.Millisecond)
	if recs := proxy.records(0); len(recs) != 0 {
		t.Fatalf("2 events queued with flushAt 3 and flushInterval 600000, but the SDK sent already: %+v", recs)
	}
	if q := storedQueue(); !slices.Equal(q, aIDs) {
		t.Errorf("stored queue %v, want the 2 unsent events %v", q, aIDs)
	}
	aIDs = append(aIDs, track(aNames[2])...)
	a := waitRec("flushAt 3", 0, aIDs, http.StatusOK, 5*time.Second)
	time.Sleep(300 * time.Millisecond) // nothing else may follow
	if recs := proxy.records(0); len(recs) != 1 {
		t.Fatalf("3 events with flushAt 3: want ONE request with all 3, the proxy saw %d: %+v", len(recs), recs)
	}
	if !a.Forwarded || a.ACAO != site.URL {
		t.Errorf("the batch was not answered by the node with Access-Control-Allow-Origin %s: %+v", site.URL, a)
	}
	if s := pageSends(); len(s) != 1 || s[0].Status != "200" || !slices.Equal(s[0].IDs, aIDs) {
		t.Errorf("the page's fetch log = %+v, want one request with %v answered 200", s, aIDs)
	}
	if q := storedQueue(); len(q) != 0 {
		t.Errorf("after a 200 the stored queue should be empty, holds %v", q)
	}
	for i, id := range aIDs {
		names[id] = aNames[i]
	}
	t.Logf("batching: 3 events in 1 request (%v)", time.Since(phase).Round(time.Millisecond))

	// 2. Retries: 503, 503, then 429 with Retry-After: 1, then the node.
	phase = time.Now()
	proxy.inject(http.StatusServiceUnavailable, http.StatusServiceUnavailable, http.StatusTooManyRequests)
	fromB, sendsB := proxy.count(), len(pageSends())
	bNames := []string{"Retry B1", "Retry B2", "Retry B3"}
	bIDs := track(bNames...)
	// As soon as the page has seen the 429, flush(): Retry-After must hold
	// even against an explicit flush (and for a 503 it would not).
	flushed := evalJS[bool](tb, "flush() during Retry-After", `(async () => {
		const seen = () => window.__e2e.sent.some(r => r.status === '429');
		while (!seen()) await new Promise(r => setTimeout(r, 5));
		return await onramp.flush();
	})()`)
	if flushed {
		t.Errorf("flush() right after a 429 with Retry-After: 1 resolved true; want false (the server asked us to wait)")
	}
	waitRec("retries", fromB, bIDs, http.StatusOK, 15*time.Second)
	time.Sleep(300 * time.Millisecond) // no further request may follow the 200
	recs := proxy.records(fromB)
	var statuses []int
	for _, r := range recs {
		statuses = append(statuses, r.Status)
		if !slices.Equal(r.IDs, bIDs) {
			t.Errorf("every retry should carry the same batch %v, one carried %v", bIDs, r.IDs)
		}
	}
	if !slices.Equal(statuses, []int{503, 503, 429, 200}) {
		t.Fatalf("answers to the retried batch = %v, want [503 503 429 200]; records %+v", statuses, recs)
	}
	var pageStatuses []string
	for _, s := range pageSends()[sendsB:] {
		pageStatuses = append(pageStatuses, s.Status)
	}
	if !slices.Equal(pageStatuses, []string{"503", "503", "429", "200"}) {
		t.Errorf("the page saw %v, want [503 503 429 200] (an \"error\" means the failure was not readable through CORS)", pageStatuses)
	}
	var gaps []time.Duration
	for i := 1; i < len(recs); i++ {
		gaps = append(gaps, recs[i].At.Sub(recs[i-1].At))
	}
	t.Logf("retries: gaps between attempts %v (backoff ~1 s, ~2 s, ~4 s ±25%%; Retry-After 1 s on the third)", gaps)
	// Timers never fire early, so the documented floors hold whatever the
	// load: attempt n waits at least 0.75 × 2^(n-1) s (backoff minus 25% jitter).
	for i, g := range gaps {
		if floor := time.Duration(750<<i)*time.Millisecond - 20*time.Millisecond; g < floor {
			t.Errorf("retry %d came %v after the previous attempt; want >= %v (backoff ~%d s, ±25%%)", i+1, g, floor, 1<<i)
		}
	}
	for i := 1; i < len(gaps); i++ {
		if gaps[i] < gaps[i-1] {
			t.Errorf("backoff did not grow: gap %d is %v, gap %d was %v (all gaps %v)", i+1, gaps[i], i, gaps[i-1], gaps)
		}
	}
	if gaps[2] < time.Second {
		t.Errorf("the request after a 429 with Retry-After: 1 came after %v; want >= 1 s", gaps[2])
	}
	if q := storedQueue(); len(q) != 0 {
		t.Errorf("after the retries succeeded the stored queue should be empty, holds %v", q)
	}
	for i, id := range bIDs {
		names[id] = bNames[i]
	}
	t.Logf("retries: delivered after %d attempts (%v)", len(recs), time.Since(phase).Round(time.Millisecond))

	// 3. A reload while the server is failing: the queue in localStorage
	// survives and the next page sends it.
	phase = time.Now()
	proxy.setFailAll(true)
	fromC := proxy.count()
	cNames := []string{"Reload C1", "Reload C2", "Reload C3"}
	cIDs := track(cNames...)
	waitRec("before the reload", fromC, cIDs, http.StatusServiceUnavailable, 5*time.Second)
	if q := storedQueue(); !slices.Equal(q, cIDs) {
		t.Fatalf("after a 503 the stored queue holds %v, want %v", q, cIDs)
	}
	tb.do("reload", chromedp.Reload())
	tb.waitJS("SDK load after reload", sdkReady, 10*time.Second)
	if got := evalJS[string](tb, "anonymous id after reload", `onramp.anonymousId()`); got != anon {
		t.Errorf("anonymous id after reload = %q, want %q", got, anon)
	}
	// The new page (its own fetch log starts empty) sends the stored events
	// at once; the proxy still fails them, and they stay stored.
	var sendsC []pageSend
	Eventually(t, 10*time.Second, func() (bool, string) {
		sendsC = pageSends()
		return len(sendsC) > 0 && sendsC[0].Status != "", fmt.Sprintf("the reloaded page sent %+v", sendsC)
	})
	if !slices.Equal(sendsC[0].IDs, cIDs) || sendsC[0].Status != "503" {
		t.Fatalf("the reloaded page's first request = %+v, want the stored %v (answered 503)", sendsC[0], cIDs)
	}
	if q := storedQueue(); !slices.Equal(q, cIDs) {
		t.Errorf("after the reloaded page's 503 the stored queue holds %v, want %v", q, cIDs)
	}
	proxy.setFailAll(false)
	c := waitRec("after the reload", fromC, cIDs, http.StatusOK, 10*time.Second)
	if !c.Forwarded {
		t.Errorf("the stored events were not answered by the node: %+v", c)
	}
	Eventually(t, 5*time.Second, func() (bool, string) {
		sendsC = pageSends()
		last := sendsC[len(sendsC)-1]
		return last.Status == "200" && slices.Equal(last.IDs, cIDs), fmt.Sprintf("the reloaded page sent %+v", sendsC)
	})
	if q := storedQueue(); len(q) != 0 {
		t.Errorf("after delivery the stored queue should be empty, holds %v", q)
	}
	for i, id := range cIDs {
		names[id] = cNames[i]
	}
	t.Logf("reload: the stored events were sent by the next page (%v)", time.Since(phase).Round(time.Millisecond))

	// Every event is on the node's timeline exactly once, whatever the retries.
	var evs []map[string]any
	Eventually(t, 10*time.Second, func() (bool, string) {
		evs = node.Timeline(t, prop.SecretKey, "anonymous_id:"+anon)
		return len(evs) >= len(names), fmt.Sprintf("timeline of %s has %d events, want %d:%s", anon, len(evs), len(names), describeEvents(evs))
	})
	seen := map[string]int{}
	for _, e := range evs {
		id := evStr(e, "message_id")
		seen[id]++
		if want, ok := names[id]; !ok {
			t.Errorf("unexpected event on the timeline: %s %q", id, evStr(e, "event"))
		} else if evStr(e, "type") != "track" || evStr(e, "event") != want || evStr(e, "properties", "run") != run {
			t.Errorf("event %s = %s %q (run %q), want track %q (run %q)", id, evStr(e, "type"), evStr(e, "event"), evStr(e, "properties", "run"), want, run)
		}
	}
	for id, name := range names {
		if seen[id] != 1 {
			t.Errorf("%s (%s) is on the timeline %d times, want exactly once:%s", name, id, seen[id], describeEvents(evs))
		}
	}
	if len(evs) != len(names) {
		t.Errorf("timeline has %d events, want %d:%s", len(evs), len(names), describeEvents(evs))
	}

	tb.showStatus(fmt.Sprintf("%d events, each stored once:\n1 batch of 3 (flushAt 3)\nretried after 503, 503, 429 (gaps %v)\n3 events sent from localStorage after a reload", len(names), gaps))
	tb.screenshot("browser-sdk-retry")
	tb.noExceptions()
	t.Logf("TestBrowserSDKRetryAndBatching took %v", time.Since(start).Round(time.Millisecond))
}
