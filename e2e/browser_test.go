package e2e

// Browser tests: a real headless chromium (driven over the DevTools protocol
// with chromedp) loads pages from a test web server on another origin, and
// those pages send events to a real onramp process. What arrived is checked
// through the Profile API only.
//
//   - TestBrowserSDK: our own SDK, /sdk/onramp.js as the binary serves it.
//   - TestAnalyticsNext: Segment's stock browser library @segment/analytics-next
//     (clients/node/node_modules, installed by `npm ci`).
//
// Chromium missing: skipped, unless ONRAMP_REQUIRE_BROWSER=1. The npm packages
// missing: TestAnalyticsNext is skipped, unless ONRAMP_REQUIRE_NODE=1.
// Screenshots go to e2e/testdata/out/ (or $ONRAMP_TEST_ARTIFACTS).

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

const chromiumPath = "/usr/bin/chromium"

// requireChromium skips the test when chromium is not installed, or fails it
// when ONRAMP_REQUIRE_BROWSER=1 (CI).
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("ONRAMP_REQUIRE_BROWSER") == "1" {
			t.Fatalf("ONRAMP_REQUIRE_BROWSER=1 but %s is missing (apt-get install -y chromium): %v", chromiumPath, err)
		}
		t.Skipf("%s not found (apt-get install -y chromium); ONRAMP_REQUIRE_BROWSER=1 makes this a failure", chromiumPath)
	}
}

// startBrowser starts headless chromium with a fresh profile and the flags of
// ../shared/TESTING.md. It is stopped when the test ends.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	requireChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc) // kills chromium and waits for it
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	// The first Run starts the browser and binds it to bctx: no timeout here.
	start := time.Now()
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Logf("chromium started in %v", time.Since(start).Round(time.Millisecond))
	return bctx
}

// browserTab is one page in its own browser context (separate cookies and storage,
// like a separate visitor). It records the page's network requests and
// uncaught exceptions.
type browserTab struct {
	t   *testing.T
	ctx context.Context

	mu         sync.Mutex
	reqs       []*netReq
	byID       map[network.RequestID]*netReq
	exceptions []string
}

// netReq is one request the page made, as the browser saw it.
type netReq struct {
	ID     network.RequestID
	URL    string
	Method string
	Type   network.ResourceType
	Body   string
	Status int64  // 0 while no response arrived
	ACAO   string // Access-Control-Allow-Origin of the response
	Failed string // network error, CORS refusal…
}

func (r netReq) String() string {
	s := fmt.Sprintf("%s %s [%s] -> %d", r.Method, r.URL, r.Type, r.Status)
	if r.Failed != "" {
		s += " failed: " + r.Failed
	}
	return s
}

func newTab(t *testing.T, browser context.Context) *browserTab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tb := &browserTab{t: t, ctx: ctx, byID: map[network.RequestID]*netReq{}}
	// First Run on the tab context creates the target: no timeout.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1024, 720)); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	if err := chromedp.Listen(ctx, tb.onEvent); err != nil {
		t.Fatalf("listen: %v", err)
	}
	return tb
}

// onEvent runs on chromedp's reader goroutine: record and return.
func (tb *browserTab) onEvent(ev any) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		r := &netReq{ID: e.RequestID, URL: e.Request.URL, Method: e.Request.Method, Type: e.Type}
		for _, pd := range e.Request.PostDataEntries {
			r.Body += string(pd.Bytes)
		}
		tb.reqs = append(tb.reqs, r)
		tb.byID[e.RequestID] = r
	case *network.EventResponseReceived:
		if r := tb.byID[e.RequestID]; r != nil && e.Response != nil {
			r.Status = e.Response.Status
			for k, v := range e.Response.Headers {
				if strings.EqualFold(k, "Access-Control-Allow-Origin") {
					r.ACAO = fmt.Sprint(v)
				}
			}
		}
	case *network.EventLoadingFailed:
		if r := tb.byID[e.RequestID]; r != nil {
			r.Failed = e.ErrorText
			if e.CorsErrorStatus != nil {
				r.Failed += " (CORS " + string(e.CorsErrorStatus.CorsError) + ")"
			}
		}
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		msg := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg += " " + d.Exception.Description
		}
		tb.exceptions = append(tb.exceptions, fmt.Sprintf("%s:%d: %s", d.URL, d.LineNumber+1, msg))
	}
}

// requests returns copies of the recorded requests whose URL starts with prefix.
func (tb *browserTab) requests(prefix string) []netReq {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var out []netReq
	for _, r := range tb.reqs {
		if strings.HasPrefix(r.URL, prefix) {
			out = append(out, *r)
		}
	}
	return out
}

// settled waits until every request to prefix has an answer or failed.
func (tb *browserTab) settled(prefix string) []netReq {
	tb.t.Helper()
	var reqs []netReq
	Eventually(tb.t, 10*time.Second, func() (bool, string) {
		reqs = tb.requests(prefix)
		for _, r := range reqs {
			if r.Status == 0 && r.Failed == "" {
				return false, "still open: " + r.String()
			}
		}
		return true, ""
	})
	return reqs
}

// noExceptions fails the test if the page threw anything uncaught.
func (tb *browserTab) noExceptions() {
	tb.t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.exceptions) > 0 {
		tb.t.Errorf("uncaught exceptions in the page:\n  %s", strings.Join(tb.exceptions, "\n  "))
	}
}

func (tb *browserTab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
}

// evalJS evaluates js in the page (awaiting a Promise) and decodes the result into T.
func evalJS[T any](tb *browserTab, what, js string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("%s: %v\njs: %s", what, err, js)
	}
	return v
}

// waitJS waits until the expression is truthy in the page. A navigation
// that lands while it polls destroys the page's JavaScript context under
// the poll ("Cannot find context with specified id"): it polls again in the
// new page until the timeout.
func (tb *browserTab) waitJS(what, expr string, timeout time.Duration) {
	tb.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		ctx, cancel := context.WithTimeout(tb.ctx, left+5*time.Second)
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
			chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(left)))
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || !strings.Contains(err.Error(), "Cannot find context") && !strings.Contains(err.Error(), "context was destroyed") {
			tb.t.Fatalf("%s: waiting for %s: %v", what, expr, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// cookie returns the browser's cookie name for url, as the cookie jar holds it.
func (tb *browserTab) cookie(url, name string) (string, bool) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
	if err != nil {
		tb.t.Fatalf("get cookies of %s: %v", url, err)
	}
	for _, c := range res.Cookies {
		if c.Name == name {
			return c.Value, true
		}
	}
	return "", false
}

// waitLocation waits until the tab shows url (during a navigation the page's
// JavaScript context comes and goes, so ask the browser for the location).
func (tb *browserTab) waitLocation(url string) {
	tb.t.Helper()
	Eventually(tb.t, 10*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
		defer cancel()
		loc, err := chromedp.Run(ctx, chromedp.Location())
		return err == nil && loc == url, fmt.Sprintf("location %q (%v), want %q", loc, err, url)
	})
}

// postFromOrigin sends one event the way the SDK does, with an Origin header.
func postFromOrigin(t *testing.T, url, origin, writeKey string) (int, string) {
	t.Helper()
	body := `{"batch":[{"type":"track","event":"Probe","anonymousId":"probe-anon","messageId":"probe-` + browserRunID(t) + `"}],"writeKey":` + jsLit(writeKey) + `}`
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Origin", origin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// screenshot saves what the page shows and fails the test if it is blank.
func (tb *browserTab) screenshot(name string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Fatalf("screenshot %s: %v", name, err)
	}
	saveScreenshot(tb.t, artifactsDir(tb.t), name, buf)
}

func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ONRAMP_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(repoRoot, "e2e", "testdata", "out")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts dir: %v", err)
	}
	return dir
}

// saveScreenshot writes the PNG and checks that it is not blank: enough pixels
// differ from the background (the top-left pixel) and there are several colours.
func saveScreenshot(t *testing.T, dir, name string, buf []byte) {
	t.Helper()
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatalf("save screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		t.Fatalf("screenshot %s is not a PNG: %v", path, err)
	}
	b := img.Bounds()
	bg := color.RGBAModel.Convert(img.At(b.Min.X, b.Min.Y))
	colours := map[color.Color]bool{}
	differ := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y))
			if c != bg {
				differ++
			}
			if len(colours) < 256 {
				colours[c] = true
			}
		}
	}
	total := b.Dx() * b.Dy()
	frac := float64(differ) / float64(max(total, 1))
	t.Logf("screenshot %s: %dx%d, %.2f%% of pixels differ from the background, %d+ colours", path, b.Dx(), b.Dy(), 100*frac, len(colours))
	if total == 0 || frac < 0.002 || len(colours) < 3 {
		t.Errorf("screenshot %s looks blank (%.3f%% non-background pixels, %d colours)", path, 100*frac, len(colours))
	}
}

// browserRunID is a random id so that runs never share users.
func browserRunID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// jsLit encodes a Go value as a JavaScript literal.
func jsLit(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// evField reads a nested value of a timeline event: evField(ev, "context", "library", "name").
func evField(m map[string]any, path ...string) any {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

func evStr(m map[string]any, path ...string) string {
	s, _ := evField(m, path...).(string)
	return s
}

// describeEvents prints a timeline for failure messages.
func describeEvents(evs []map[string]any) string {
	var sb strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&sb, "\n  %-8s %-14q user=%q anon=%q msg=%s lib=%s", evStr(e, "type"),
			evStr(e, "event")+evStr(e, "name"), evStr(e, "user_id"), evStr(e, "anonymous_id"),
			evStr(e, "message_id"), evStr(e, "context", "library", "name"))
	}
	if len(evs) == 0 {
		sb.WriteString(" (none)")
	}
	return sb.String()
}

// eventsOfType returns the events of one type.
func eventsOfType(evs []map[string]any, typ string) []map[string]any {
	var out []map[string]any
	for _, e := range evs {
		if evStr(e, "type") == typ {
			out = append(out, e)
		}
	}
	return out
}
