package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

func TestAnalyticsNext(t *testing.T) {
	requireChromium(t)
	start := time.Now()
	clientDir := filepath.Join(repoRoot, "clients", "node")
	bundle := filepath.Join(clientDir, "node_modules", "@segment", "analytics-next", "dist", "umd", "index.js")
	if _, err := os.Stat(bundle); err != nil {
		if os.Getenv("ONRAMP_REQUIRE_NODE") == "1" {
			t.Fatalf("ONRAMP_REQUIRE_NODE=1 but %s is missing (cd clients/node && npm ci): %v", bundle, err)
		}
		t.Skipf("%s missing (cd clients/node && npm ci); ONRAMP_REQUIRE_NODE=1 makes this a failure", bundle)
	}
	pageFile := filepath.Join(clientDir, "analytics-next-page.html")

	node := StartNode(t, NodeOptions{})
	run := browserRunID(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /analytics-next-page.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFile(w, r, pageFile)
	})
	mux.HandleFunc("GET /analytics-next.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/javascript")
		http.ServeFile(w, r, bundle)
	})
	site := httptest.NewServer(mux)
	t.Cleanup(site.Close)
	prop := node.CreateProperty(t, "analytics-next-"+run, site.URL)
	browser := startBrowser(t)
	t.Logf("setup (node, property, browser) took %v", time.Since(start).Round(time.Millisecond))

	for _, tc := range []struct {
		name   string
		cdnURL string // "" for inline cdnSettings
	}{
		{"settings-endpoint", node.URL}, // GET {node}/v1/projects/{writeKey}/settings
		{"inline-settings", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := newTab(t, browser)
			user := "ajs-" + tc.name + "-" + run
			q := fmt.Sprintf("writeKey=%s&apiHost=%s&user=%s&run=%s&protocol=http&timeoutMs=10000",
				prop.WriteKey, node.Addr+"/v1", user, run)
			if tc.cdnURL != "" {
				q += "&cdnURL=" + tc.cdnURL
			}
			tb.do("open analytics-next page", chromedp.Navigate(site.URL+"/analytics-next-page.html?"+q))
			tb.waitJS("analytics-next", `window.__done || window.__error`, 20*time.Second)
			out := evalJS[struct {
				Done   bool   `json:"done"`
				Error  string `json:"error"`
				Result struct {
					UserID      string            `json:"userId"`
					AnonymousID string            `json:"anonymousId"`
					MessageIDs  map[string]string `json:"messageIds"`
					Library     struct {
						Name    string `json:"name"`
						Version string `json:"version"`
					} `json:"library"`
				} `json:"result"`
			}](tb, "read outcome", `({done: !!window.__done, error: window.__error || '', result: window.__result || {}})`)
			tb.screenshot("analytics-next-" + tc.name)
			if !out.Done {
				t.Fatalf("analytics-next page failed: %s\nrequests to the node:\n  %v", out.Error, tb.requests(node.URL+"/"))
			}
			reqs := tb.settled(node.URL + "/")
			t.Logf("analytics-next %s requests:\n  %v", out.Result.Library.Version, reqs)
			res := out.Result
			if res.AnonymousID == "" || res.UserID != user || len(res.MessageIDs) != 3 {
				t.Fatalf("page result = %+v", res)
			}
			if tc.cdnURL != "" && !slices.ContainsFunc(reqs, func(r netReq) bool {
				return r.Method == "GET" && r.URL == node.URL+"/v1/projects/"+prop.WriteKey+"/settings" && r.Status == 200
			}) {
				t.Errorf("settings were not loaded from the node's /v1/projects/{writeKey}/settings")
			}

			var evs []map[string]any
			Eventually(t, 10*time.Second, func() (bool, string) {
				evs = node.Timeline(t, prop.SecretKey, "user_id:"+user)
				return len(evs) >= 3, "user timeline:" + describeEvents(evs)
			})
			if len(evs) != 3 {
				t.Errorf("want exactly 3 events on %s's timeline:%s", user, describeEvents(evs))
			}
			for _, typ := range []string{"page", "track", "identify"} {
				want := res.MessageIDs[typ]
				var found []map[string]any
				for _, e := range evs {
					if evStr(e, "message_id") == want {
						found = append(found, e)
					}
				}
				if len(found) != 1 {
					t.Errorf("%s %s is on the timeline %d times, want once:%s", typ, want, len(found), describeEvents(evs))
					continue
				}
				e := found[0]
				if evStr(e, "type") != typ {
					t.Errorf("%s has type %q", want, evStr(e, "type"))
				}
				if a := evStr(e, "anonymous_id"); a != res.AnonymousID {
					t.Errorf("%s anonymous_id = %q, want the browser's %q", typ, a, res.AnonymousID)
				}
				wantUser := ""
				if typ == "identify" {
					wantUser = user
				}
				if u := evStr(e, "user_id"); u != wantUser {
					t.Errorf("%s user_id = %q, want %q (page and track were sent before identify)", typ, u, wantUser)
				}
				if lib := evStr(e, "context", "library", "name"); lib != "analytics.js" {
					t.Errorf("%s context.library.name = %q, want analytics.js", typ, lib)
				}
				if typ == "track" && (evStr(e, "event") != "Browser Event" || evStr(e, "properties", "run") != run) {
					t.Errorf("track = %q %v", evStr(e, "event"), evField(e, "properties"))
				}
			}
			if got := node.Timeline(t, prop.SecretKey, "anonymous_id:"+res.AnonymousID); len(got) != len(evs) {
				t.Errorf("the browser's anonymous id should resolve to the same person (%d events):%s", len(evs), describeEvents(got))
			}
			if tr := node.Traits(t, prop.SecretKey, "user_id:"+user); tr["email"] != user+"@example.com" {
				t.Errorf("traits = %v", tr)
			}
			tb.noExceptions()
		})
	}
	t.Logf("TestAnalyticsNext took %v", time.Since(start).Round(time.Millisecond))
}
