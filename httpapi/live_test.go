package httpapi_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/onramp-dev/onramp/auth"
)

// sseMessage is one Server-Sent Events message; comment lines are
// reported as messages with only Comment set.
type sseMessage struct {
	Event, ID, Data, Comment string
}

// sseStream reads GET path as an EventSource would.
type sseStream struct {
	t    *testing.T
	resp *http.Response
	msgs chan sseMessage
}

func (s *testStack) openLive(t *testing.T, path string, headers ...string) *sseStream {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type %q", ct)
	}
	st := &sseStream{t: t, resp: resp, msgs: make(chan sseMessage, 100)}
	go func() {
		defer close(st.msgs)
		br := bufio.NewReader(resp.Body)
		var m sseMessage
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "":
				if m != (sseMessage{}) {
					st.msgs <- m
				}
				m = sseMessage{}
			case strings.HasPrefix(line, ":"):
				m.Comment = strings.TrimSpace(line[1:])
			default:
				k, v, _ := strings.Cut(line, ":")
				v = strings.TrimPrefix(v, " ")
				switch k {
				case "event":
					m.Event = v
				case "id":
					m.ID = v
				case "data":
					m.Data += v
				}
			}
		}
	}()
	t.Cleanup(st.close)
	return st
}

func (st *sseStream) close() { st.resp.Body.Close() }

// next returns the next message that is not a comment.
func (st *sseStream) next() sseMessage {
	st.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case m, ok := <-st.msgs:
			if !ok {
				st.t.Fatal("stream ended")
			}
			if m.Event == "" && m.Comment != "" {
				continue
			}
			return m
		case <-timeout:
			st.t.Fatal("no message within 5 s")
		}
	}
}

// ends reports whether the server ends the stream within d.
func (st *sseStream) ends(d time.Duration) bool {
	timeout := time.After(d)
	for {
		select {
		case _, ok := <-st.msgs:
			if !ok {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

// quiet fails if a message other than a comment arrives within d.
func (st *sseStream) quiet(d time.Duration) {
	st.t.Helper()
	timeout := time.After(d)
	for {
		select {
		case m := <-st.msgs:
			if m.Event != "" {
				st.t.Fatalf("unexpected %s: %s", m.Event, m.Data)
			}
		case <-timeout:
			return
		}
	}
}

// waitStreams waits until the hub has n streams open.
func (s *testStack) waitStreams(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.hub.Streams() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d live streams open, want %d", s.hub.Streams(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLiveStream(t *testing.T) {
	s := newTestStack(t)
	s.ingest(`{"type":"track","event":"Warm","anonymousId":"ada","messageId":"w1"}`, `{"type":"track","event":"Warm","anonymousId":"bob","messageId":"w2"}`)
	ada := s.personOf("anonymous_id", "ada")
	support := s.token("support", auth.RoleSupport)

	// Last-Event-ID 2: the warm-up events may still be on their way.
	all := s.openLive(t, "/api/live", "Authorization", "Bearer "+support, "Last-Event-ID", "2")
	mine := s.openLive(t, "/api/live?person="+ada, "Authorization", "Bearer "+support, "Last-Event-ID", "2")
	s.waitStreams(t, 2)

	s.ingest(`{"type":"track","event":"Bob Clicked","anonymousId":"bob","messageId":"b1"}`)
	s.ingest(`{"type":"track","event":"Ada Paid","anonymousId":"ada","messageId":"a1","properties":{"plan":"<script>x</script>"}}`)
	if r := s.track("/v1/track", `{"type":"track","anonymousId":"ada","messageId":"bad"}`); r.status != http.StatusBadRequest {
		t.Fatalf("invalid track: %d %s", r.status, r.body)
	}

	// The event arrives exactly as the timeline shows it.
	r := s.api(support, http.MethodGet, "/api/people/"+ada+"/events?limit=1", nil)
	var page struct {
		Data []json.RawMessage `json:"data"`
	}
	r.json(t, &page)
	if len(page.Data) != 1 {
		t.Fatalf("timeline: %s", r.body)
	}
	var want map[string]any
	_ = json.Unmarshal(page.Data[0], &want)

	m := mine.next()
	var got map[string]any
	if m.Event != "event" || json.Unmarshal([]byte(m.Data), &got) != nil || got["event"] != "Ada Paid" || m.ID != jsonNumber(got["seq"]) {
		t.Fatalf("person stream: %+v", m)
	}
	if g, w := canon(got), canon(want); g != w {
		t.Errorf("live event differs from the timeline item:\n live %s\n page %s", g, w)
	}
	// The person stream leaves out bob's event and the rejection.
	mine.quiet(200 * time.Millisecond)

	var names []string
	var rejection map[string]any
	for range 3 {
		m := all.next()
		switch m.Event {
		case "event":
			var e map[string]any
			_ = json.Unmarshal([]byte(m.Data), &e)
			names = append(names, e["event"].(string))
		case "rejection":
			if m.ID != "" {
				t.Errorf("rejection with id %q", m.ID)
			}
			_ = json.Unmarshal([]byte(m.Data), &rejection)
		default:
			t.Fatalf("unexpected %+v", m)
		}
	}
	if strings.Join(names, ",") != "Bob Clicked,Ada Paid" {
		t.Errorf("events in order: %v", names)
	}
	// The rejection is as GET /api/rejections shows it.
	var log struct {
		Data []map[string]any `json:"data"`
	}
	s.api(support, http.MethodGet, "/api/rejections?limit=1", nil).json(t, &log)
	if len(log.Data) != 1 || canon(rejection) != canon(log.Data[0]) {
		t.Errorf("live rejection %v\nlog %v", rejection, log.Data)
	}

	// Disconnecting unsubscribes.
	mine.close()
	all.close()
	s.waitStreams(t, 0)
}

func TestLiveStreamAuth(t *testing.T) {
	s := newTestStack(t)
	if r := s.do(http.MethodGet, "/api/live", nil); r.status != http.StatusUnauthorized || !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("no credentials: %d %s", r.status, r.body)
	}
	// No role lacks people:read today; a token whose role a later version
	// retired stands in for one.
	retired := s.token("retired", auth.RoleSupport)
	// Another connection to the stack's file: it must wait while the
	// stack's own writer commits (the race detector's CI run once found
	// it busy).
	db, err := sql.Open("sqlite", "file:"+s.db.Path()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE api_tokens SET role = 'retired' WHERE name = 'retired'`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	wantProblem(t, s.api(retired, http.MethodGet, "/api/live", nil), http.StatusForbidden)
	// A signed-in person who is not staff is refused too.
	b := s.browser()
	b.signUp("ann@example.com", "a long customer passphrase", "Ann")
	wantProblem(t, s.sessionAPI(b, http.MethodGet, "/api/live", "", nil), http.StatusForbidden)
	wantProblem(t, s.api(s.owner, http.MethodGet, "/api/live?person=per_nobody", nil), http.StatusNotFound)
	wantProblem(t, s.api(s.owner, http.MethodGet, "/api/live?property=prp_nope", nil), http.StatusNotFound)

	// Staff use their session cookie (EventSource sends it; GET needs no
	// CSRF header).
	link, err := s.accounts.OwnerLink(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(link)
	owner := s.browser()
	p := owner.get(u.RequestURI())
	owner.submit(p.form(t, "/setup/owner"), "email", "owner@example.com", "password", "a long founder passphrase")
	var cookies []string
	for _, c := range owner.jar.Cookies(owner.base) {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	st := s.openLive(t, "/api/live?property="+s.prop.ID, "Cookie", strings.Join(cookies, "; "))
	s.waitStreams(t, 1)
	s.ingest(`{"type":"track","event":"Hello","anonymousId":"x","messageId":"h1"}`)
	if m := st.next(); m.Event != "event" || !strings.Contains(m.Data, `"Hello"`) {
		t.Fatalf("cookie stream: %+v", m)
	}
}

// TestLiveStreamHeartbeatAndShutdown: idle streams get comment lines,
// outlive the server's read and write timeouts, end when their token is
// revoked, and end when the hub closes (as serve does when shutdown
// begins).
func TestLiveStreamHeartbeatAndShutdown(t *testing.T) {
	s := newTestStackWith(t, stackOptions{publicURL: "http://onramp.test:8080", liveHeartbeat: 50 * time.Millisecond})
	// serve's timeouts, shrunk: without lifting them the stream would be
	// cancelled after ReadTimeout and cut after WriteTimeout.
	hs := httptest.NewUnstartedServer(s.srv)
	hs.Config.ReadTimeout, hs.Config.WriteTimeout = 200*time.Millisecond, 300*time.Millisecond
	hs.Start()
	defer hs.Close()
	s.url, s.t = hs.URL, t
	st := s.openLive(t, "/api/live", "Authorization", "Bearer "+s.owner)
	comments := 0
	timeout := time.After(5 * time.Second)
	for comments < 15 { // 750 ms, past both timeouts
		select {
		case m := <-st.msgs:
			if m.Comment == "keep-alive" {
				comments++
			}
		case <-timeout:
			t.Fatalf("%d heartbeats in 5 s", comments)
		}
	}
	// A revoked token's stream ends at its next heartbeat.
	id, secret := s.newToken("leaving", auth.RoleSupport)
	revoked := s.openLive(t, "/api/live", "Authorization", "Bearer "+secret)
	if err := s.tokens.Revoke(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if !revoked.ends(5 * time.Second) {
		t.Fatal("the stream of a revoked token is still open")
	}

	s.hub.Close()
	if !st.ends(5 * time.Second) {
		t.Fatal("stream still open after the hub closed")
	}
	wantProblem(t, s.api(s.owner, http.MethodGet, "/api/live", nil), http.StatusServiceUnavailable)
}

// canon re-encodes a decoded JSON value with sorted keys.
func canon(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func jsonNumber(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
