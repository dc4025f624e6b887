package httpapi_test

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/property"
)

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

func zlibbed(b []byte) []byte {
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

func rawDeflate(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := flate.NewWriter(&buf, flate.BestCompression)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// gzipBomb is a small gzip body that inflates to size bytes of a JSON
// batch.
func gzipBomb(size int) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write([]byte(`{"batch":[{"type":"track","event":"x","anonymousId":"a","properties":{"pad":"`))
	chunk := bytes.Repeat([]byte("a"), 64<<10)
	for n := 0; n < size; n += len(chunk) {
		_, _ = zw.Write(chunk)
	}
	_, _ = zw.Write([]byte(`"}}]}`))
	_ = zw.Close()
	return buf.Bytes()
}

func trackMsg(mid string) string {
	return fmt.Sprintf(`{"type":"track","event":"Clicked","anonymousId":"anon-%s","messageId":"%s"}`, mid, mid)
}

func bigTrack(mid string, size int) string {
	return fmt.Sprintf(`{"type":"track","event":"Big","anonymousId":"anon-big","messageId":"%s","properties":{"pad":"%s"}}`, mid, strings.Repeat("p", size))
}

type wantRejection struct {
	Index int
	Code  string
}

type collectResponse struct {
	Success    bool `json:"success"`
	Accepted   int  `json:"accepted"`
	Duplicates int  `json:"duplicates"`
	Rejected   []struct {
		Index  int    `json:"index"`
		Code   string `json:"code"`
		Reason string `json:"reason"`
	} `json:"rejected"`
}

func TestCollectBadInput(t *testing.T) {
	s := newTestStack(t)
	ctx := context.Background()
	restricted := s.createProperty("Community", "https://community.example.com")
	revoked := s.createProperty("Old site")
	if _, err := s.props.RevokeKey(ctx, revoked.ID, property.WriteKey); err != nil {
		t.Fatal(err)
	}
	wk := s.prop.WriteKey
	okBatch := func(mids ...string) []byte {
		var ms []string
		for _, m := range mids {
			ms = append(ms, trackMsg(m))
		}
		return []byte(`{"batch":[` + strings.Join(ms, ",") + `]}`)
	}
	huge := append(append([]byte(`{"batch":[{"type":"track","event":"x","anonymousId":"a","properties":{"pad":"`), bytes.Repeat([]byte("a"), 600<<10)...), `"}}]}`...)
	deep := `{"type":"track","event":"x","anonymousId":"a","properties":` + strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100) + `}`
	auth := []string{"Authorization", basic(wk)}
	with := func(h ...string) []string { return append(slices.Clone(auth), h...) }

	tests := []struct {
		name    string
		method  string // POST when empty
		path    string
		body    []byte
		headers []string
		status  int
		// accepted is the number of events stored (0 for failures, which
		// must write nothing).
		accepted int
		rejected []wantRejection
		check    func(t *testing.T, r reply)
	}{
		{name: "malformed JSON", path: "/v1/batch", body: []byte(`{"batch":[{"type":"track",`), headers: auth, status: 400},
		{name: "malformed JSON on a single call", path: "/v1/track", body: []byte(`{"event":`), headers: auth, status: 400},
		{name: "body over 500 KB", path: "/v1/batch", body: huge, headers: auth, status: 413},
		{name: "gzip bomb inflating past 500 KB", path: "/v1/batch", body: gzipBomb(20 << 20), headers: with("Content-Encoding", "gzip"), status: 413},
		{name: "not gzip", path: "/v1/batch", body: okBatch("ng1"), headers: with("Content-Encoding", "gzip"), status: 400},
		{name: "truncated gzip", path: "/v1/batch", body: gz(okBatch("tg1"))[:30], headers: with("Content-Encoding", "gzip"), status: 400},
		{name: "unknown Content-Encoding", path: "/v1/batch", body: okBatch("br1"), headers: with("Content-Encoding", "br"), status: 400},
		{name: "missing write key", path: "/v1/batch", body: okBatch("mk1"), status: 401},
		{name: "wrong write key (Basic)", path: "/v1/batch", body: okBatch("wk1"), headers: []string{"Authorization", basic("wk_nope")}, status: 401},
		{name: "wrong write key (X-Write-Key)", path: "/v1/batch", body: okBatch("wk2"), headers: []string{"X-Write-Key", "wk_nope"}, status: 401},
		{name: "wrong write key (body)", path: "/v1/batch", body: []byte(`{"writeKey":"wk_nope","batch":[` + trackMsg("wk3") + `]}`), status: 401},
		{name: "revoked write key", path: "/v1/batch", body: okBatch("rk1"), headers: []string{"Authorization", basic(revoked.WriteKey)}, status: 401},
		{name: "write key by Basic auth", path: "/v1/batch", body: okBatch("ok-basic"), headers: auth, status: 200, accepted: 1},
		{name: "write key by X-Write-Key", path: "/v1/batch", body: okBatch("ok-header"), headers: []string{"X-Write-Key", wk}, status: 200, accepted: 1},
		{name: "write key in the batch body", path: "/v1/batch", body: []byte(`{"writeKey":"` + wk + `","batch":[` + trackMsg("ok-body") + `]}`), status: 200, accepted: 1},
		{name: "write key in a single call's body", path: "/v1/track", body: []byte(`{"writeKey":"` + wk + `","event":"x","anonymousId":"a","messageId":"ok-body-single"}`), status: 200, accepted: 1},
		{name: "single track of 40 KB", path: "/v1/track", body: []byte(bigTrack("big-single", 40<<10)), headers: auth, status: 413, rejected: []wantRejection{{0, events.CodeTooLarge}}},
		{name: "batch with one 40 KB event", path: "/v1/batch", body: []byte(`{"batch":[` + trackMsg("b1") + `,` + bigTrack("b2", 40<<10) + `,` + trackMsg("b3") + `]}`), headers: auth, status: 200, accepted: 2, rejected: []wantRejection{{1, events.CodeTooLarge}}},
		{name: "batch with an event without ids", path: "/v1/batch", body: []byte(`{"batch":[` + trackMsg("n1") + `,{"type":"track","event":"x","userId":"undefined"}]}`), headers: auth, status: 200, accepted: 1, rejected: []wantRejection{{1, events.CodeMissingIdentity}}},
		{name: "single call without ids", path: "/v1/track", body: []byte(`{"event":"x"}`), headers: auth, status: 400, rejected: []wantRejection{{0, events.CodeMissingIdentity}}},
		{name: "track without event", path: "/v1/batch", body: []byte(`{"batch":[{"type":"track","anonymousId":"a"},` + trackMsg("te1") + `]}`), headers: auth, status: 200, accepted: 1, rejected: []wantRejection{{0, events.CodeMissingEvent}}},
		{name: "single track without event", path: "/v1/track", body: []byte(`{"anonymousId":"a"}`), headers: auth, status: 400, rejected: []wantRejection{{0, events.CodeMissingEvent}}},
		{name: "nested 100 levels", path: "/v1/batch", body: []byte(`{"batch":[` + trackMsg("d1") + `,` + deep + `]}`), headers: auth, status: 200, accepted: 1, rejected: []wantRejection{{1, events.CodeTooDeep}}},
		{name: "single call nested 100 levels", path: "/v1/track", body: []byte(deep), headers: auth, status: 400, rejected: []wantRejection{{0, events.CodeTooDeep}}},
		{name: "invalid UTF-8", path: "/v1/batch", body: []byte("{\"batch\":[{\"type\":\"track\",\"event\":\"\xff\xfe\",\"anonymousId\":\"a\"}]}"), headers: auth, status: 400},
		{name: "number 1e400", path: "/v1/batch", body: []byte(`{"batch":[{"type":"track","event":"x","anonymousId":"a","properties":{"n":1e400}},` + trackMsg("num1") + `]}`), headers: auth, status: 200, accepted: 1, rejected: []wantRejection{{0, events.CodeBadNumber}}},
		{name: "timestamp in 1900", path: "/v1/batch", body: []byte(`{"batch":[` + trackMsg("ts0") + `,{"type":"track","event":"x","anonymousId":"a","timestamp":"1900-01-01T00:00:00Z"}]}`), headers: auth, status: 200, accepted: 1, rejected: []wantRejection{{1, events.CodeBadTimestamp}}},
		{name: "timestamp in 2300", path: "/v1/track", body: []byte(`{"event":"x","anonymousId":"a","timestamp":"2300-01-01T00:00:00Z"}`), headers: auth, status: 400, rejected: []wantRejection{{0, events.CodeBadTimestamp}}},
		{name: "every event rejected", path: "/v1/batch", body: []byte(`{"batch":[{"type":"track"},{"type":"nope","anonymousId":"a"}]}`), headers: auth, status: 400, rejected: []wantRejection{{0, events.CodeMissingEvent}, {1, events.CodeBadType}}},
		{name: "empty batch", path: "/v1/batch", body: []byte(`{"batch":[]}`), headers: auth, status: 200},
		{name: "text/plain body (analytics.js)", path: "/v1/t", body: []byte(`{"event":"x","anonymousId":"a","messageId":"plain","writeKey":"` + wk + `"}`), headers: []string{"Content-Type", "text/plain;charset=UTF-8"}, status: 200, accepted: 1},
		{name: "rudderstack form content type with gzip", path: "/v1/batch", body: gz(okBatch("rudder1", "rudder2")), headers: with("Content-Type", "application/x-www-form-urlencoded", "Content-Encoding", "gzip", "AnonymousId", "anon-rudder"), status: 200, accepted: 2},
		{name: "gzip", path: "/v1/batch", body: gz(okBatch("gz1")), headers: with("Content-Encoding", "gzip"), status: 200, accepted: 1},
		{name: "deflate (zlib)", path: "/v1/batch", body: zlibbed(okBatch("zl1")), headers: with("Content-Encoding", "deflate"), status: 200, accepted: 1},
		{name: "deflate (raw)", path: "/v1/batch", body: rawDeflate(okBatch("rd1")), headers: with("Content-Encoding", "deflate"), status: 200, accepted: 1},
		{name: "short path /v1/t", path: "/v1/t", body: []byte(`{"event":"x","anonymousId":"a","messageId":"sp-t"}`), headers: auth, status: 200, accepted: 1},
		{name: "short path /v1/i", path: "/v1/i", body: []byte(`{"userId":"u-short","traits":{"name":"Ada"},"messageId":"sp-i"}`), headers: auth, status: 200, accepted: 1},
		{name: "short path /v1/p", path: "/v1/p", body: []byte(`{"anonymousId":"a","name":"Home","messageId":"sp-p"}`), headers: auth, status: 200, accepted: 1},
		{name: "short path /v1/s", path: "/v1/s", body: []byte(`{"anonymousId":"a","name":"Home","messageId":"sp-s"}`), headers: auth, status: 200, accepted: 1},
		{name: "short path /v1/g", path: "/v1/g", body: []byte(`{"anonymousId":"a","groupId":"acme","messageId":"sp-g"}`), headers: auth, status: 200, accepted: 1},
		{name: "short path /v1/a", path: "/v1/a", body: []byte(`{"previousId":"a","userId":"u-short","messageId":"sp-a"}`), headers: auth, status: 200, accepted: 1},
		{name: "short path /v1/b", path: "/v1/b", body: okBatch("sp-b"), headers: auth, status: 200, accepted: 1},
		{name: "long path /v1/identify", path: "/v1/identify", body: []byte(`{"userId":"u-long","messageId":"lp-i"}`), headers: auth, status: 200, accepted: 1},
		{name: "long path /v1/alias", path: "/v1/alias", body: []byte(`{"previousId":"a9","userId":"u-long","messageId":"lp-a"}`), headers: auth, status: 200, accepted: 1},
		{name: "/v1/import", path: "/v1/import", body: okBatch("imp1"), headers: auth, status: 200, accepted: 1},
		{name: "single call says another type", path: "/v1/page", body: []byte(`{"type":"track","event":"x","anonymousId":"a"}`), headers: auth, status: 400, rejected: []wantRejection{{0, events.CodeBadType}}},
		{name: "retried batch is a duplicate", path: "/v1/batch", body: okBatch("ok-basic"), headers: auth, status: 200, check: func(t *testing.T, r reply) {
			var cr collectResponse
			r.json(t, &cr)
			if cr.Duplicates != 1 || cr.Accepted != 0 {
				t.Errorf("retry = %+v, want 1 duplicate", cr)
			}
		}},
		{name: "origin not allowed (header key)", path: "/v1/batch", body: okBatch("or1"), headers: []string{"Authorization", basic(restricted.WriteKey), "Origin", "https://evil.example.net"}, status: 403},
		{name: "origin not allowed (body key)", path: "/v1/t", body: []byte(`{"writeKey":"` + restricted.WriteKey + `","event":"x","anonymousId":"a","messageId":"or2"}`), headers: []string{"Origin", "https://evil.example.net", "Content-Type", "text/plain"}, status: 403},
		{name: "allowed origin", path: "/v1/batch", body: okBatch("or3"), headers: []string{"Authorization", basic(restricted.WriteKey), "Origin", "https://community.example.com"}, status: 200, accepted: 1, check: func(t *testing.T, r reply) {
			if got := r.header.Get("Access-Control-Allow-Origin"); got != "https://community.example.com" {
				t.Errorf("Access-Control-Allow-Origin = %q", got)
			}
		}},
		{name: "allowed origin in other case", path: "/v1/batch", body: okBatch("or4"), headers: []string{"Authorization", basic(restricted.WriteKey), "Origin", "https://Community.Example.com"}, status: 200, accepted: 1},
		{name: "server-side call without Origin to a restricted property", path: "/v1/batch", body: okBatch("or5"), headers: []string{"Authorization", basic(restricted.WriteKey)}, status: 200, accepted: 1},
		{name: "GET on a collection path", method: http.MethodGet, path: "/v1/track", headers: auth, status: 405},
		{name: "unknown collection path", path: "/v1/purchase", body: okBatch("unk"), headers: auth, status: 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := s.eventCount()
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			r := s.do(method, tc.path, tc.body, tc.headers...)
			if r.status != tc.status {
				t.Fatalf("status = %d, want %d: %.300s", r.status, tc.status, r.body)
			}
			if got := s.eventCount() - before; got != int64(tc.accepted) {
				t.Errorf("%d events stored, want %d", got, tc.accepted)
			}
			if r.header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("no X-Content-Type-Options: nosniff")
			}
			var got []wantRejection
			if tc.status >= 400 {
				p := wantProblem(t, r, tc.status)
				for _, rj := range p.Rejected {
					got = append(got, wantRejection{rj.Index, rj.Code})
				}
			} else {
				if ct := r.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", ct)
				}
				var cr collectResponse
				r.json(t, &cr)
				if !cr.Success || cr.Accepted != tc.accepted || cr.Rejected == nil {
					t.Errorf("response = %s, want success with %d accepted and a rejected list", r.body, tc.accepted)
				}
				for _, rj := range cr.Rejected {
					got = append(got, wantRejection{rj.Index, rj.Code})
					if rj.Reason == "" {
						t.Errorf("rejection %d has no reason", rj.Index)
					}
				}
			}
			if !slices.Equal(got, tc.rejected) {
				t.Errorf("rejected = %v, want %v", got, tc.rejected)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}

	t.Run("rejections are visible in the rejected-events log", func(t *testing.T) {
		r := s.api(s.owner, http.MethodGet, "/api/rejections?property="+s.prop.ID+"&limit=1000", nil)
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		var out struct {
			Data []struct {
				PropertyID  string          `json:"property_id"`
				Index       int             `json:"index"`
				Code        string          `json:"code"`
				Reason      string          `json:"reason"`
				Payload     json.RawMessage `json:"payload"`
				PayloadText string          `json:"payload_text"`
			} `json:"data"`
		}
		r.json(t, &out)
		find := func(index int, code string, payload string) bool {
			for _, d := range out.Data {
				if d.Index == index && d.Code == code && d.Reason != "" && d.PropertyID == s.prop.ID &&
					(payload == "" || strings.Contains(string(d.Payload)+d.PayloadText, payload)) {
					return true
				}
			}
			return false
		}
		for _, c := range []struct {
			name    string
			index   int
			code    string
			payload string
		}{
			{"40 KB event in a batch", 1, events.CodeTooLarge, "b2"},
			{"event without ids", 1, events.CodeMissingIdentity, "undefined"},
			{"too deep", 1, events.CodeTooDeep, ""},
			{"1e400", 0, events.CodeBadNumber, "1e400"},
			{"timestamp 1900", 1, events.CodeBadTimestamp, "1900"},
			{"malformed request", -1, events.CodeInvalidJSON, `{"batch":[{"type":"track",`},
			{"request over 500 KB", -1, events.CodeTooLarge, ""},
		} {
			if !find(c.index, c.code, c.payload) {
				t.Errorf("%s: no rejection with index %d code %s payload %q in the log", c.name, c.index, c.code, c.payload)
			}
		}
		// Nothing from a request refused before its property was known.
		for _, d := range out.Data {
			if d.PropertyID != s.prop.ID {
				t.Errorf("rejection of property %s in the list filtered by %s", d.PropertyID, s.prop.ID)
			}
		}
	})
}

func TestCollectSettingsAndCORS(t *testing.T) {
	s := newTestStack(t)
	tests := []struct {
		name    string
		method  string
		path    string
		headers []string
		status  int
		check   func(t *testing.T, r reply)
	}{
		{name: "settings for a write key", method: http.MethodGet, path: "/v1/projects/" + s.prop.WriteKey + "/settings", status: 200, check: func(t *testing.T, r reply) {
			var out struct {
				Integrations map[string]struct {
					APIKey  string `json:"apiKey"`
					APIHost string `json:"apiHost"`
				} `json:"integrations"`
			}
			r.json(t, &out)
			seg := out.Integrations["Segment.io"]
			if seg.APIKey != s.prop.WriteKey || seg.APIHost != "onramp.test:8080/v1" {
				t.Errorf("Segment.io settings = %+v, want the key and the public URL's host", seg)
			}
			if r.header.Get("Access-Control-Allow-Origin") != "*" {
				t.Errorf("settings are not readable cross-origin")
			}
		}},
		{name: "settings ignore a forged Host header", method: http.MethodGet, path: "/v1/projects/" + s.prop.WriteKey + "/settings", headers: []string{"Host", "evil.example.net"}, status: 200, check: func(t *testing.T, r reply) {
			if bytes.Contains(r.body, []byte("evil.example.net")) {
				t.Errorf("the forged host is in a cacheable answer: %s", r.body)
			}
		}},
		{name: "settings for an unknown key", method: http.MethodGet, path: "/v1/projects/wk_unknown/settings", status: 404},
		{name: "preflight for the batch endpoint", method: http.MethodOptions, path: "/v1/batch", headers: []string{"Origin", "https://www.example.com", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type"}, status: 204, check: func(t *testing.T, r reply) {
			h := r.header
			if h.Get("Access-Control-Allow-Origin") != "https://www.example.com" || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
				!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "content-type") {
				t.Errorf("preflight headers = %v", h)
			}
		}},
		{name: "preflight for a short path", method: http.MethodOptions, path: "/v1/t", headers: []string{"Origin", "https://app.example.com", "Access-Control-Request-Method", "POST"}, status: 204, check: func(t *testing.T, r reply) {
			if r.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
				t.Errorf("Access-Control-Allow-Origin = %q", r.header.Get("Access-Control-Allow-Origin"))
			}
		}},
		{name: "preflight for settings", method: http.MethodOptions, path: "/v1/projects/" + s.prop.WriteKey + "/settings", headers: []string{"Origin", "https://www.example.com", "Access-Control-Request-Method", "GET"}, status: 204},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(tc.method, tc.path, nil, tc.headers...)
			if r.status != tc.status {
				t.Fatalf("status = %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.status >= 400 {
				wantProblem(t, r, tc.status)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}
