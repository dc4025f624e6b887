package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/onramp-dev/onramp/postgres/pgtest"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	crashWriters     = 8
	crashPeople      = 20
	crashBatchEvents = 100
	crashCycles      = 3
	// crashMaxBatches bounds what one cycle sends, so that reading every
	// timeline back stays fast on a fast machine.
	crashMaxBatches = 2500
)

// crashBatch is one /v1/batch request of the crash test.
type crashBatch struct {
	body  []byte
	ids   []string // messageIds, in batch order
	users []string // the user id of each message
	acked bool     // answered 200 with every message accepted
}

// crashLoad is the test's ledger: every batch it sent and what happened.
type crashLoad struct {
	run     string
	mu      sync.Mutex
	batches []*crashBatch
	user    map[string]string // messageId → user id
}

func (l *crashLoad) userID(i int) string { return fmt.Sprintf("crash-%s-u%02d", l.run, i) }

// newBatch builds batch number seq of writer w in cycle c: 100 messages
// over several people, some of them identify calls with traits.
func (l *crashLoad) newBatch(c, w, seq int, rng *rand.Rand) *crashBatch {
	b := &crashBatch{}
	msgs := make([]map[string]any, 0, crashBatchEvents)
	now := time.Now().UTC()
	for k := 0; k < crashBatchEvents; k++ {
		id := fmt.Sprintf("crash-%s-c%d-w%d-b%d-e%03d", l.run, c, w, seq, k)
		ui := rng.IntN(crashPeople)
		user := l.userID(ui)
		m := map[string]any{
			"messageId": id,
			"userId":    user,
			"timestamp": now.Add(time.Duration(k) * time.Microsecond).Format(time.RFC3339Nano),
		}
		if k%10 == 0 {
			m["type"] = "identify"
			m["traits"] = map[string]any{"email": user + "@example.com", "cycle": c}
		} else {
			m["type"] = "track"
			m["event"] = fmt.Sprintf("Crash Event %d", k%7)
			m["properties"] = map[string]any{"writer": w, "batch": seq, "n": k}
		}
		msgs = append(msgs, m)
		b.ids = append(b.ids, id)
		b.users = append(b.users, user)
	}
	body, err := json.Marshal(map[string]any{"batch": msgs, "sentAt": now.Format(time.RFC3339Nano)})
	if err != nil {
		panic(err)
	}
	b.body = body
	l.mu.Lock()
	defer l.mu.Unlock()
	l.batches = append(l.batches, b)
	for i, id := range b.ids {
		l.user[id] = b.users[i]
	}
	return b
}

// collectAnswer is the success body of the collection API.
type collectAnswer struct {
	Success    bool `json:"success"`
	Accepted   int  `json:"accepted"`
	Duplicates int  `json:"duplicates"`
	Rejected   []struct {
		Index  int    `json:"index"`
		Code   string `json:"code"`
		Reason string `json:"reason"`
	} `json:"rejected"`
}

// postBatch sends one batch; err is a transport failure, otherwise the
// status and the decoded answer.
func postBatch(ctx context.Context, client *http.Client, base, writeKey string, body []byte) (int, collectAnswer, error) {
	var ans collectAnswer
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/batch", bytes.NewReader(body))
	if err != nil {
		return 0, ans, err
	}
	req.SetBasicAuth(writeKey, "")
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, ans, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, ans, err
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &ans); err != nil {
			return resp.StatusCode, ans, fmt.Errorf("decode %q: %w", raw, err)
		}
	} else {
		return resp.StatusCode, ans, fmt.Errorf("status %d: %s", resp.StatusCode, raw)
	}
	return resp.StatusCode, ans, nil
}

func newLoadClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = crashWriters * 2
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// TestCrashNoAcknowledgedEventLost is the crash test of DESIGN §7: writers
// send batches as fast as they can, the node is SIGKILLed mid-load, a new
// node opens the same data folder, and every event of every acknowledged
// batch must be there exactly once, on the right person; no batch may be
// half stored. Resending everything afterwards must store nothing twice.
// Three kill cycles run on the same data folder, on SQLite and, when
// ONRAMP_TEST_POSTGRES_URL is set, on PostgreSQL (where a group's persons
// and events commit in two transactions, so a kill can land between them).
func TestCrashNoAcknowledgedEventLost(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testCrash(t, nil) })
	t.Run("postgres", func(t *testing.T) {
		testCrash(t, []string{"ONRAMP_DATABASE_URL=" + pgtest.Database(t, "the crash test on Postgres")})
	})
}

func testCrash(t *testing.T, env []string) {
	dataDir := t.TempDir()
	node := StartNode(t, NodeOptions{DataDir: dataDir, Env: env})
	prop := node.CreateProperty(t, "crash")
	load := &crashLoad{run: randomID(t), user: map[string]string{}}
	client := newLoadClient()

	for cycle := 1; cycle <= crashCycles; cycle++ {
		first := len(load.batches)
		runFor := 1500*time.Millisecond + rand.N(1500*time.Millisecond)

		loadStart := time.Now()
		var (
			stop      atomic.Bool
			wg        sync.WaitGroup
			inFlight  atomic.Int64 // requests that failed because of the kill
			ackedN    atomic.Int64
			loadErrMu sync.Mutex
			loadErrs  []string
		)
		for w := 0; w < crashWriters; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(cycle), uint64(w)))
				for seq := 0; !stop.Load() && seq < crashMaxBatches/crashWriters; seq++ {
					b := load.newBatch(cycle, w, seq, rng)
					status, ans, err := postBatch(context.Background(), client, node.URL, prop.WriteKey, b.body)
					if err != nil {
						if stop.Load() && status == 0 {
							inFlight.Add(1) // cut off by the kill
							return
						}
						loadErrMu.Lock()
						loadErrs = append(loadErrs, fmt.Sprintf("writer %d batch %d: status %d: %v", w, seq, status, err))
						loadErrMu.Unlock()
						return
					}
					if ans.Accepted != crashBatchEvents || ans.Duplicates != 0 || len(ans.Rejected) != 0 {
						loadErrMu.Lock()
						loadErrs = append(loadErrs, fmt.Sprintf("writer %d batch %d: 200 but accepted %d, duplicates %d, rejected %v", w, seq, ans.Accepted, ans.Duplicates, ans.Rejected))
						loadErrMu.Unlock()
						return
					}
					load.mu.Lock()
					b.acked = true
					load.mu.Unlock()
					ackedN.Add(1)
				}
			}()
		}
		time.Sleep(runFor)
		// On a slow machine (or a race-built server) the first answers can
		// take longer than that: a crash before any acknowledgement proves
		// nothing, so wait for some, then kill at a random moment.
		failing := func() bool { loadErrMu.Lock(); defer loadErrMu.Unlock(); return len(loadErrs) > 0 }
		for deadline := time.Now().Add(30 * time.Second); ackedN.Load() < crashWriters && time.Now().Before(deadline) && !failing(); {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(rand.N(100 * time.Millisecond))
		stop.Store(true)
		node.Kill(t)
		killedAt := time.Now()
		wg.Wait()
		failCapped(t, fmt.Sprintf("cycle %d: requests failed before the kill", cycle), loadErrs)
		if t.Failed() {
			t.FailNow()
		}
		sent := len(load.batches) - first
		t.Logf("cycle %d: killed after %s, sent %d batches, %d acknowledged, %d cut off by the kill",
			cycle, killedAt.Sub(loadStart).Round(time.Millisecond), sent, ackedN.Load(), inFlight.Load())
		if ackedN.Load() == 0 {
			t.Fatalf("cycle %d: no batch was acknowledged in %s", cycle, runFor)
		}
		if sent == crashMaxBatches/crashWriters*crashWriters {
			t.Logf("cycle %d: every writer reached its cap of %d batches before the kill; raise crashMaxBatches for a harder test", cycle, crashMaxBatches/crashWriters)
		} else if inFlight.Load() == 0 {
			t.Fatalf("cycle %d: no request was in flight when the node was killed; the kill did not land mid-load", cycle)
		}

		node = StartNode(t, NodeOptions{DataDir: dataDir, Env: env})
		t.Logf("cycle %d: restarted in %s", cycle, time.Since(killedAt).Round(time.Millisecond))

		// Every acknowledged event is there, exactly once, on its person;
		// no batch is half there.
		stored := readCrashTimelines(t, node, prop.SecretKey, load)
		var problems []string
		report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
		var wantAcked, unackedStored, unackedLost int
		for _, b := range load.batches {
			have := 0
			for _, id := range b.ids {
				have += stored[id]
			}
			if b.acked {
				wantAcked += len(b.ids)
				if have != len(b.ids) {
					missing := 0
					for _, id := range b.ids {
						if stored[id] == 0 {
							missing++
						}
					}
					report("acknowledged batch %s…: %d of %d events missing", b.ids[0], missing, len(b.ids))
				}
				continue
			}
			switch have {
			case 0:
				unackedLost++
			case len(b.ids):
				unackedStored++
			default:
				report("unacknowledged batch %s… is half stored: %d of %d events", b.ids[0], have, len(b.ids))
			}
		}
		total := 0
		for id, c := range stored {
			total += c
			if c != 1 {
				report("message %s stored %d times", id, c)
			}
		}
		failCapped(t, fmt.Sprintf("cycle %d after restart", cycle), problems)
		t.Logf("cycle %d after restart: %d events stored; %d from acknowledged batches; unacknowledged batches: %d stored whole, %d not stored",
			cycle, total, wantAcked, unackedStored, unackedLost)
		if total != wantAcked+unackedStored*crashBatchEvents {
			t.Errorf("cycle %d: %d events stored, want %d (acknowledged) + %d (whole unacknowledged batches)", cycle, total, wantAcked, unackedStored*crashBatchEvents)
		}
		if t.Failed() {
			t.FailNow()
		}

		// A client that never got its answer sends again; so do those that
		// did (at-least-once delivery). Nothing may be stored twice.
		var resendErrs []string
		var rmu sync.Mutex
		var accepted, dups atomic.Int64
		work := make(chan *crashBatch)
		var rwg sync.WaitGroup
		for w := 0; w < crashWriters; w++ {
			rwg.Add(1)
			go func() {
				defer rwg.Done()
				for b := range work {
					_, ans, err := postBatch(context.Background(), client, node.URL, prop.WriteKey, b.body)
					if err == nil && ans.Accepted+ans.Duplicates != len(b.ids) {
						err = fmt.Errorf("accepted %d + duplicates %d != %d (rejected %v)", ans.Accepted, ans.Duplicates, len(b.ids), ans.Rejected)
					}
					if err == nil {
						have := 0
						for _, id := range b.ids {
							have += stored[id]
						}
						if ans.Duplicates != have {
							err = fmt.Errorf("duplicates %d, but %d of its events were stored", ans.Duplicates, have)
						}
					}
					if err != nil {
						rmu.Lock()
						resendErrs = append(resendErrs, fmt.Sprintf("resend %s…: %v", b.ids[0], err))
						rmu.Unlock()
						continue
					}
					accepted.Add(int64(ans.Accepted))
					dups.Add(int64(ans.Duplicates))
				}
			}()
		}
		for _, b := range load.batches[first:] {
			work <- b
		}
		close(work)
		rwg.Wait()
		failCapped(t, fmt.Sprintf("cycle %d resending", cycle), resendErrs)
		if t.Failed() {
			t.FailNow()
		}
		for _, b := range load.batches[first:] {
			b.acked = true // now every batch of the ledger is acknowledged
		}

		stored = readCrashTimelines(t, node, prop.SecretKey, load)
		total, problems = 0, nil
		for id, c := range stored {
			total += c
			if c != 1 {
				report("message %s stored %d times", id, c)
			}
		}
		failCapped(t, fmt.Sprintf("cycle %d after resend", cycle), problems)
		if total != len(load.user) {
			t.Errorf("cycle %d after resend: %d events stored, want every one of the %d sent", cycle, total, len(load.user))
		}
		t.Logf("cycle %d resend: %d accepted, %d duplicates; %d events stored in all", cycle, accepted.Load(), dups.Load(), total)

		// Nobody else appeared: the ledger's people are all there is.
		var people []struct {
			ID     string `json:"id"`
			UserID string `json:"user_id"`
		}
		out := node.CLI(t, "user", "list", "--limit", "500", "--json")
		if err := json.Unmarshal(out, &people); err != nil {
			t.Fatalf("user list --json: %v: %s", err, out)
		}
		if len(people) != crashPeople {
			t.Errorf("cycle %d: user list shows %d people, want %d", cycle, len(people), crashPeople)
		}
		for _, p := range people {
			if !strings.HasPrefix(p.UserID, "crash-"+load.run+"-u") {
				t.Errorf("cycle %d: unexpected person %s with user id %q", cycle, p.ID, p.UserID)
			}
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	for i := 0; i < crashPeople; i++ {
		u := load.userID(i)
		if tr := node.Traits(t, prop.SecretKey, "user_id:"+u); tr["email"] != u+"@example.com" || tr["cycle"] != float64(crashCycles) {
			t.Errorf("traits of %s = %v, want email %s@example.com and cycle %d", u, tr, u, crashCycles)
		}
	}
	node.Stop(t)
}

// crashEvent is the part of a timeline row the crash test reads.
type crashEvent struct {
	MessageID string `json:"message_id"`
	PersonID  string `json:"person_id"`
	UserID    string `json:"user_id"`
}

// readCrashTimelines reads every person's whole timeline and returns how
// often each messageId is stored. It checks that each event is on its own
// person's timeline and that each timeline is one person.
func readCrashTimelines(t *testing.T, n *Node, secretKey string, load *crashLoad) map[string]int {
	t.Helper()
	stored := map[string]int{}
	persons := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan string, crashPeople)
	for i := 0; i < crashPeople; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := load.userID(i)
			evs, err := leanTimeline(n, secretKey, "user_id:"+user)
			if err != nil {
				errs <- err.Error()
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, e := range evs {
				stored[e.MessageID]++
				if want, ok := load.user[e.MessageID]; !ok {
					errs <- fmt.Sprintf("user %s: timeline has message %s that the test never sent", user, e.MessageID)
				} else if want != user || e.UserID != user {
					errs <- fmt.Sprintf("message %s of %s is on %s's timeline (user_id %q)", e.MessageID, want, user, e.UserID)
				}
				if p, ok := persons[e.PersonID]; ok && p != user {
					errs <- fmt.Sprintf("person %s has events on the timelines of %s and %s", e.PersonID, p, user)
				}
				persons[e.PersonID] = user
			}
		}()
	}
	wg.Wait()
	close(errs)
	seen := 0
	for e := range errs {
		if seen++; seen <= 20 {
			t.Error(e)
		}
	}
	if seen > 0 {
		t.Fatalf("%d timeline errors", seen)
	}
	return stored
}

// leanTimeline reads a whole timeline, decoding only what the crash test
// needs (the harness's Timeline decodes everything into maps, which is slow
// for the hundreds of thousands of events here).
func leanTimeline(n *Node, secretKey, profile string) ([]crashEvent, error) {
	var all []crashEvent
	cursor := ""
	for {
		u := n.URL + "/v1/profiles/" + url.PathEscape(profile) + "/events?limit=1000"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.SetBasicAuth(secretKey, "")
		resp, err := apiClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", profile, err)
		}
		var page struct {
			Data   []crashEvent `json:"data"`
			Cursor struct {
				HasMore bool   `json:"has_more"`
				Next    string `json:"next"`
			} `json:"cursor"`
		}
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return nil, fmt.Errorf("%s: status %d: %s", profile, resp.StatusCode, b)
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: decode: %w", profile, err)
		}
		all = append(all, page.Data...)
		if !page.Cursor.HasMore || page.Cursor.Next == "" {
			return all, nil
		}
		if page.Cursor.Next == cursor {
			return nil, fmt.Errorf("%s: cursor does not advance", profile)
		}
		cursor = page.Cursor.Next
	}
}

// failCapped reports the first problems and how many there were in all.
func failCapped(t *testing.T, what string, problems []string) {
	t.Helper()
	if len(problems) == 0 {
		return
	}
	sort.Strings(problems)
	shown := problems[:min(len(problems), 10)]
	t.Errorf("%s: %d problems; the first %d:\n  %s", what, len(problems), len(shown), strings.Join(shown, "\n  "))
}
