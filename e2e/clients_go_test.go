package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	analytics "github.com/segmentio/analytics-go/v3"
)

// recordingCallback collects what analytics-go reports per message.
type recordingCallback struct {
	mu        sync.Mutex
	succeeded []analytics.Message
	failed    []string
}

func (c *recordingCallback) Success(m analytics.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.succeeded = append(c.succeeded, m)
}

func (c *recordingCallback) Failure(m analytics.Message, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed = append(c.failed, fmt.Sprintf("%T: %v", m, err))
}

// statusRecorder records the status of every request the library made.
type statusRecorder struct {
	mu       sync.Mutex
	statuses []int
	paths    []string
}

func (s *statusRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paths = append(s.paths, r.URL.Path)
	if err != nil {
		s.statuses = append(s.statuses, -1)
	} else {
		s.statuses = append(s.statuses, resp.StatusCode)
	}
	return resp, err
}

func randomID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// expected is what one message should look like on a timeline.
type expected struct {
	typ, name, userID, anonymousID string
}

// TestClientAnalyticsGo drives Segment's own Go library (analytics-go v3)
// against the binary: two identified users, and an anonymous visitor who
// later identifies. Every message the library reports as delivered must be
// on the right person's timeline exactly once, with its fields intact.
func TestClientAnalyticsGo(t *testing.T) {
	node := StartNode(t, NodeOptions{})
	prop := node.CreateProperty(t, "go-clients")
	run := randomID(t)

	cb := &recordingCallback{}
	rec := &statusRecorder{}
	client, err := analytics.NewWithConfig(prop.WriteKey, analytics.Config{
		Endpoint:  node.URL,
		BatchSize: 4, // several requests, some of them mixing users
		Interval:  50 * time.Millisecond,
		Callback:  cb,
		Transport: rec,
		Logger:    testLogger{t},
		// One attempt is enough against a local server; a retry would hide a
		// refused request.
		RetryAfter: func(int) time.Duration { return 10 * time.Millisecond },
	})
	if err != nil {
		t.Fatal(err)
	}

	ada, bob, carol, dave := "ada-"+run, "bob-"+run, "carol-"+run, "dave-"+run
	carolAnon, daveAnon := "anon-carol-"+run, "anon-dave-"+run
	want := map[string]map[string]expected{ada: {}, bob: {}, carol: {}, dave: {}} // user → messageId → expected
	var sent []analytics.Message
	enqueue := func(user string, m analytics.Message, e expected) {
		t.Helper()
		id := "go-" + run + "-" + fmt.Sprint(len(sent))
		switch v := m.(type) {
		case analytics.Identify:
			v.MessageId = id
			m = v
		case analytics.Track:
			v.MessageId = id
			m = v
		case analytics.Page:
			v.MessageId = id
			m = v
		}
		if err := client.Enqueue(m); err != nil {
			t.Fatalf("enqueue %T: %v", m, err)
		}
		sent = append(sent, m)
		want[user][id] = e
	}

	for _, u := range []struct{ id, name, plan string }{{ada, "Ada", "pro"}, {bob, "Bob", "free"}} {
		enqueue(u.id, analytics.Identify{UserId: u.id, Traits: analytics.NewTraits().SetEmail(u.id+"@example.com").SetName(u.name).Set("plan", u.plan)},
			expected{typ: "identify", userID: u.id})
		for i, ev := range []string{"Signed Up", "Project Created", "Invited Teammate"} {
			enqueue(u.id, analytics.Track{UserId: u.id, Event: ev, Properties: analytics.NewProperties().Set("step", i).Set("user", u.id)},
				expected{typ: "track", name: ev, userID: u.id})
		}
		for _, pg := range []string{"Docs", "Pricing"} {
			enqueue(u.id, analytics.Page{UserId: u.id, Name: pg, Properties: analytics.NewProperties().SetURL("https://example.com/" + pg)},
				expected{typ: "page", name: pg, userID: u.id})
		}
	}
	// An anonymous visitor browses, then signs up: everything they did
	// before belongs to the person they turned out to be.
	enqueue(carol, analytics.Page{AnonymousId: carolAnon, Name: "Landing"}, expected{typ: "page", name: "Landing", anonymousID: carolAnon})
	enqueue(carol, analytics.Track{AnonymousId: carolAnon, Event: "Viewed Pricing"}, expected{typ: "track", name: "Viewed Pricing", anonymousID: carolAnon})
	enqueue(carol, analytics.Track{AnonymousId: carolAnon, Event: "Started Checkout"}, expected{typ: "track", name: "Started Checkout", anonymousID: carolAnon})
	enqueue(carol, analytics.Identify{UserId: carol, AnonymousId: carolAnon, Traits: analytics.NewTraits().SetEmail(carol + "@example.com").SetName("Carol")},
		expected{typ: "identify", userID: carol, anonymousID: carolAnon})
	enqueue(carol, analytics.Track{UserId: carol, Event: "Order Completed", Properties: analytics.NewProperties().SetRevenue(42)},
		expected{typ: "track", name: "Order Completed", userID: carol})

	// A known user comes back on a new device, anonymous at first, then
	// signs in: two persons merge, and the timeline is one person's.
	enqueue(dave, analytics.Identify{UserId: dave, Traits: analytics.NewTraits().SetEmail(dave + "@example.com").SetName("Dave")}, expected{typ: "identify", userID: dave})
	enqueue(dave, analytics.Track{UserId: dave, Event: "Signed Up"}, expected{typ: "track", name: "Signed Up", userID: dave})
	enqueue(dave, analytics.Page{AnonymousId: daveAnon, Name: "Home"}, expected{typ: "page", name: "Home", anonymousID: daveAnon})
	enqueue(dave, analytics.Track{AnonymousId: daveAnon, Event: "Opened App"}, expected{typ: "track", name: "Opened App", anonymousID: daveAnon})
	enqueue(dave, analytics.Identify{UserId: dave, AnonymousId: daveAnon}, expected{typ: "identify", userID: dave, anonymousID: daveAnon})

	if err := client.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	cb.mu.Lock()
	if len(cb.failed) > 0 {
		t.Fatalf("analytics-go reported %d failed messages: %v", len(cb.failed), cb.failed)
	}
	if len(cb.succeeded) != len(sent) {
		t.Fatalf("analytics-go reported %d delivered messages, want %d", len(cb.succeeded), len(sent))
	}
	cb.mu.Unlock()
	rec.mu.Lock()
	for i, st := range rec.statuses {
		if st != http.StatusOK || rec.paths[i] != "/v1/batch" {
			t.Errorf("request %d: %s answered %d, want /v1/batch 200", i, rec.paths[i], st)
		}
	}
	if len(rec.statuses) < len(sent)/4 {
		t.Errorf("library made %d requests for %d messages with BatchSize 4", len(rec.statuses), len(sent))
	}
	rec.mu.Unlock()

	persons := map[string]string{}
	for _, user := range []string{ada, bob, carol, dave} {
		evs := node.Timeline(t, prop.SecretKey, "user_id:"+user)
		if evs == nil {
			t.Fatalf("user_id:%s: no profile (404)", user)
		}
		exp := want[user]
		seen := map[string]int{}
		for _, e := range evs {
			seen[e["message_id"].(string)]++
		}
		for id := range exp {
			if seen[id] != 1 {
				t.Errorf("user %s: message %s is on the timeline %d times, want 1", user, id, seen[id])
			}
		}
		if len(evs) != len(exp) {
			got := messageIDs(evs)
			sort.Strings(got)
			t.Errorf("user %s: timeline has %d events, want %d: %v", user, len(evs), len(exp), got)
		}
		for i, e := range evs {
			id, _ := e["message_id"].(string)
			x, ok := exp[id]
			if !ok {
				t.Errorf("user %s: unexpected event %v", user, e)
				continue
			}
			str := func(k string) string { s, _ := e[k].(string); return s }
			if str("type") != x.typ {
				t.Errorf("user %s, %s: type %q, want %q", user, id, str("type"), x.typ)
			}
			name := str("event")
			if x.typ != "track" {
				name = str("name")
			}
			if name != x.name {
				t.Errorf("user %s, %s (%s): name %q, want %q", user, id, x.typ, name, x.name)
			}
			if str("user_id") != x.userID {
				t.Errorf("user %s, %s: user_id %q, want %q", user, id, str("user_id"), x.userID)
			}
			if str("anonymous_id") != x.anonymousID {
				t.Errorf("user %s, %s: anonymous_id %q, want %q", user, id, str("anonymous_id"), x.anonymousID)
			}
			pid := str("person_id")
			if pid == "" {
				t.Errorf("user %s, %s: no person_id", user, id)
			}
			if persons[user] == "" {
				persons[user] = pid
			} else if persons[user] != pid {
				t.Errorf("user %s: events of two persons on one timeline: %s and %s", user, persons[user], pid)
			}
			if i > 0 {
				prev, _ := time.Parse(time.RFC3339Nano, str("timestamp"))
				cur, _ := time.Parse(time.RFC3339Nano, evs[i-1]["timestamp"].(string))
				if prev.After(cur) {
					t.Errorf("user %s: timeline not newest first at %d: %s after %s", user, i, prev, cur)
				}
			}
		}
	}
	distinct := map[string]bool{}
	for _, p := range persons {
		distinct[p] = true
	}
	if len(distinct) != 4 {
		t.Errorf("four users are %d persons: %v", len(distinct), persons)
	}

	// The anonymous ids now name Carol and Dave too.
	for user, anonID := range map[string]string{carol: carolAnon, dave: daveAnon} {
		if anon := node.Timeline(t, prop.SecretKey, "anonymous_id:"+anonID); len(anon) != len(want[user]) {
			t.Errorf("anonymous_id:%s: %d events, want %s's %d", anonID, len(anon), user, len(want[user]))
		}
	}

	for _, u := range []struct{ id, name, plan string }{{ada, "Ada", "pro"}, {bob, "Bob", "free"}, {carol, "Carol", ""}, {dave, "Dave", ""}} {
		tr := node.Traits(t, prop.SecretKey, "user_id:"+u.id)
		if tr["email"] != u.id+"@example.com" || tr["name"] != u.name {
			t.Errorf("traits of %s = %v, want email %s and name %s", u.id, tr, u.id+"@example.com", u.name)
		}
		if u.plan != "" && tr["plan"] != u.plan {
			t.Errorf("traits of %s: plan %v, want %s", u.id, tr["plan"], u.plan)
		}
		// The email identifies the same person.
		if byEmail := node.Timeline(t, prop.SecretKey, "email:"+u.id+"@example.com"); len(byEmail) != len(want[u.id]) {
			t.Errorf("email:%s@example.com: %d events, want %d", u.id, len(byEmail), len(want[u.id]))
		}
	}

	// analytics-go stamps context.library once per request, in the batch's
	// top-level context (Segment's HTTP API applies it to every message).
	t.Run("context.library from the batch context", func(t *testing.T) {
		total, wrong, example := 0, 0, ""
		for _, user := range []string{ada, bob, carol, dave} {
			for _, e := range node.Timeline(t, prop.SecretKey, "user_id:"+user) {
				total++
				ctx, _ := e["context"].(map[string]any)
				lib, _ := ctx["library"].(map[string]any)
				if lib["name"] != "analytics-go" || lib["version"] == nil {
					wrong++
					if example == "" {
						example = fmt.Sprintf("%s: context %v", e["message_id"], e["context"])
					}
				}
			}
		}
		if total != len(sent) || wrong > 0 {
			t.Errorf("%d of %d events lack context.library {name: analytics-go, version}; analytics-go sends it once per request as the batch-level \"context\", which Segment's API applies to every message of the batch. First: %s", wrong, total, example)
		}
	})
}

// testLogger routes analytics-go's log lines into the test log.
type testLogger struct{ t *testing.T }

func (l testLogger) Logf(format string, args ...any) { l.t.Logf("analytics-go: "+format, args...) }
func (l testLogger) Errorf(format string, args ...any) {
	l.t.Logf("analytics-go error: "+format, args...)
}
