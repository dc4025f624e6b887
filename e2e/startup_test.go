package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// smallBatch is a /v1/batch body of n track calls by user.
func smallBatch(t *testing.T, prefix, user string, n int) ([]byte, []string) {
	t.Helper()
	var msgs []map[string]any
	var ids []string
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		ids = append(ids, id)
		msgs = append(msgs, map[string]any{"type": "track", "userId": user, "event": "Startup Test", "messageId": id, "properties": map[string]any{"i": i}})
	}
	b, err := json.Marshal(map[string]any{"batch": msgs})
	if err != nil {
		t.Fatal(err)
	}
	return b, ids
}

// mustPost sends a batch and requires 200 with every message accepted.
func mustPost(t *testing.T, n *Node, writeKey string, body []byte, wantAccepted int) collectAnswer {
	t.Helper()
	status, ans, err := postBatch(context.Background(), apiClient, n.URL, writeKey, body)
	if err != nil {
		t.Fatalf("POST /v1/batch: status %d: %v", status, err)
	}
	if ans.Accepted != wantAccepted || len(ans.Rejected) != 0 {
		t.Fatalf("POST /v1/batch: accepted %d (want %d), duplicates %d, rejected %v", ans.Accepted, wantAccepted, ans.Duplicates, ans.Rejected)
	}
	return ans
}

// get returns the status and body of a GET.
func get(t *testing.T, u string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricSum adds up every sample of a metric in Prometheus text format;
// found is false when the metric has no sample.
func metricSum(text, name string) (sum float64, found bool) {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err == nil {
			sum += v
			found = true
		}
	}
	return sum, found
}

// TestServeFirstStart: `onramp serve` on a data folder that does not exist
// yet starts, says where it is, prints a working owner token once, and
// serves health, readiness and metrics that count ingest.
func TestServeFirstStart(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "new", "data")
	n := StartNode(t, NodeOptions{DataDir: dataDir})

	var out string
	Eventually(t, 5*time.Second, func() (bool, string) {
		out = n.Stdout()
		return strings.Contains(out, "ready at "+n.URL), fmt.Sprintf("stdout has no %q line:\n%s", "ready at "+n.URL, out)
	})
	if c := strings.Count(out, "ready at"); c != 1 {
		t.Errorf("stdout has %d \"ready at\" lines, want 1:\n%s", c, out)
	}
	if !strings.Contains(out, filepath.Join(dataDir, "onramp.db")) {
		t.Errorf("ready line does not name the database %s:\n%s", filepath.Join(dataDir, "onramp.db"), out)
	}
	tokens := regexp.MustCompile(`ort_[0-9a-z]+`).FindAllString(out, -1)
	if !strings.Contains(out, "First start") || len(tokens) == 0 {
		t.Fatalf("first start printed no owner token:\n%s", out)
	}
	if st, body := get(t, n.URL+"/api/properties", "Authorization", "Bearer "+tokens[0]); st != http.StatusOK {
		t.Errorf("GET /api/properties with the first-start token: %d %s", st, body)
	}
	if st, body := get(t, n.URL+"/api/properties", "Authorization", "Bearer ort_not-a-token"); st != http.StatusUnauthorized {
		t.Errorf("GET /api/properties with a made-up token: %d %s, want 401", st, body)
	}

	if st, body := get(t, n.URL+"/healthz"); st != http.StatusOK || !strings.Contains(body, `"ok"`) {
		t.Errorf("/healthz: %d %s", st, body)
	}
	if st, body := get(t, n.URL+"/readyz"); st != http.StatusOK || !strings.Contains(body, `"ready"`) {
		t.Errorf("/readyz: %d %s", st, body)
	}
	st, metrics := get(t, n.URL+"/metrics")
	if st != http.StatusOK {
		t.Fatalf("/metrics: %d", st)
	}
	if v, _ := metricSum(metrics, "onramp_ingest_events_accepted_total"); v != 0 {
		t.Errorf("before any ingest onramp_ingest_events_accepted_total = %v, want 0", v)
	}

	p := n.CreateProperty(t, "first-start")
	body, _ := smallBatch(t, "first-"+randomID(t), "metrics-user", 3)
	mustPost(t, n, p.WriteKey, body, 3)
	mustPost(t, n, p.WriteKey, body, 0) // the same again: three duplicates

	_, metrics = get(t, n.URL+"/metrics")
	if v, ok := metricSum(metrics, "onramp_ingest_events_accepted_total"); !ok || v != 3 {
		t.Errorf("onramp_ingest_events_accepted_total = %v (present %v), want 3", v, ok)
	}
	if v, ok := metricSum(metrics, "onramp_ingest_events_duplicate_total"); !ok || v != 3 {
		t.Errorf("onramp_ingest_events_duplicate_total = %v (present %v), want 3", v, ok)
	}
	if _, ok := metricSum(metrics, "onramp_http_request_duration_seconds_count"); !ok {
		t.Errorf("/metrics has no onramp_http_request_duration_seconds")
	}
	n.Stop(t)
	if !strings.Contains(n.Stderr(), "stopped") {
		t.Errorf("no \"stopped\" log line after SIGTERM:\n%s", n.Stderr())
	}

	// The second start on the same folder prints no new owner token.
	n2 := StartNode(t, NodeOptions{DataDir: dataDir})
	Eventually(t, 5*time.Second, func() (bool, string) {
		return strings.Contains(n2.Stdout(), "ready at "+n2.URL), "no ready line on the second start:\n" + n2.Stdout()
	})
	if strings.Contains(n2.Stdout(), "owner API token") || strings.Contains(n2.Stdout(), "ort_") {
		t.Errorf("second start printed a new owner token:\n%s", n2.Stdout())
	}
	// Until someone creates the owner account, each start prints a fresh
	// setup link (and the one printed before stops working).
	link1 := ownerLinkLine.FindStringSubmatch(out)
	link2 := ownerLinkLine.FindStringSubmatch(n2.Stdout())
	if link1 == nil || link2 == nil || link1[1] == link2[1] {
		t.Errorf("owner setup links on the two starts: %q and %q, want two different ones", link1, link2)
	} else {
		_, token, _ := strings.Cut(link1[1], "/setup/owner")
		if st, _ := get(t, n2.URL+"/setup/owner"+token); st != http.StatusForbidden {
			t.Errorf("the first start's owner link on the second start: %d, want 403", st)
		}
		_, token, _ = strings.Cut(link2[1], "/setup/owner")
		if st, _ := get(t, n2.URL+"/setup/owner"+token); st != http.StatusOK {
			t.Errorf("the second start's owner link: %d, want 200", st)
		}
	}
	if got := len(n2.Timeline(t, p.SecretKey, "user_id:metrics-user")); got != 3 {
		t.Errorf("after restart metrics-user has %d events, want 3", got)
	}
}

// TestServeGracefulShutdown: SIGTERM while a client is still uploading a
// batch lets that request finish and commit; new connections are refused
// meanwhile, and the process exits 0.
func TestServeGracefulShutdown(t *testing.T) {
	n := StartNode(t, NodeOptions{})
	p := n.CreateProperty(t, "graceful")
	const events = 50
	user := "slow-" + randomID(t)
	body, ids := smallBatch(t, user, user, events)

	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, n.URL+"/v1/batch", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	req.SetBasicAuth(p.WriteKey, "")
	req.Header.Set("Content-Type", "application/json")
	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{status: resp.StatusCode, body: string(b), err: err}
	}()

	const parts = 10
	chunk := (len(body) + parts - 1) / parts
	var termSent bool
	for i := 0; i < parts; i++ {
		part := body[i*chunk : min(len(body), (i+1)*chunk)]
		if _, err := pw.Write(part); err != nil {
			t.Fatalf("writing part %d of the body: %v (the server dropped the upload)", i, err)
		}
		time.Sleep(100 * time.Millisecond)
		if i == 3 {
			n.signalTerm(t)
			termSent = true
			time.Sleep(100 * time.Millisecond)
			// Draining: a new connection must not be served as ready.
			c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			if resp, err := c.Get(n.URL + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					t.Errorf("/readyz answered 200 after SIGTERM")
				}
			}
			if n.exited() {
				t.Fatalf("the process exited during an upload (%v); stderr:\n%s", n.err, n.Stderr())
			}
		}
	}
	if !termSent {
		t.Fatal("SIGTERM was never sent")
	}
	pw.Close()
	var res result
	select {
	case res = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the slow upload got no answer within 30s")
	}
	if res.err != nil || res.status != http.StatusOK {
		t.Fatalf("slow upload across SIGTERM: status %d, err %v, body %s; stderr:\n%s", res.status, res.err, res.body, n.Stderr())
	}
	var ans collectAnswer
	if err := json.Unmarshal([]byte(res.body), &ans); err != nil || ans.Accepted != events {
		t.Fatalf("slow upload answer %s: accepted %d, want %d (%v)", res.body, ans.Accepted, events, err)
	}
	n.waitCleanExit(t, 30*time.Second)

	n2 := StartNode(t, NodeOptions{DataDir: n.DataDir})
	evs := n2.Timeline(t, p.SecretKey, "user_id:"+user)
	got := map[string]int{}
	for _, id := range messageIDs(evs) {
		got[id]++
	}
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("message %s stored %d times after the graceful restart, want 1", id, got[id])
		}
	}
	if len(evs) != events {
		t.Errorf("%d events after restart, want %d", len(evs), events)
	}
}

// helpCommands reads the command list from `onramp --help`.
func helpCommands(t *testing.T, usage string) []string {
	t.Helper()
	word := regexp.MustCompile(`^[a-z][a-z-]*$`)
	var cmds []string
	columns := regexp.MustCompile(`\s{2,}`)
	for _, line := range strings.Split(usage, "\n") {
		// "  onramp user show ID|TYPE:VALUE [--json]      show a person…"
		f := strings.Fields(columns.Split(strings.TrimSpace(line), 2)[0])
		if len(f) < 2 || f[0] != "onramp" {
			continue
		}
		var name []string
		for _, w := range f[1:] {
			if !word.MatchString(w) {
				break
			}
			name = append(name, w)
		}
		if len(name) > 0 {
			cmds = append(cmds, strings.Join(name, " "))
		}
	}
	return cmds
}

// TestHelp: `onramp --help` lists the commands and exits 0; every command
// listed answers --help with its usage and exits 0, touching no data.
func TestHelp(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "untouched")
	env := append(baseEnv(), "ONRAMP_DATA_DIR="+dataDir)
	out, errOut, err := runCLI(env, "--help")
	if err != nil {
		t.Fatalf("onramp --help: %v\n%s%s", err, out, errOut)
	}
	usage := string(out) + string(errOut)
	cmds := helpCommands(t, usage)
	for _, want := range []string{"serve", "migrate", "property create", "property list", "user list", "user show", "user delete", "token create", "version"} {
		found := false
		for _, c := range cmds {
			found = found || c == want
		}
		if !found {
			t.Errorf("onramp --help does not list %q (DESIGN §4); it lists %q", want, cmds)
		}
	}
	if len(cmds) < 10 {
		t.Fatalf("onramp --help lists only %d commands:\n%s", len(cmds), usage)
	}
	for _, c := range cmds {
		t.Run(strings.ReplaceAll(c, " ", "_"), func(t *testing.T) {
			args := append(strings.Fields(c), "--help")
			out, errOut, err := runCLI(env, args...)
			text := string(out) + string(errOut)
			if err != nil {
				t.Fatalf("onramp %s: %v\n%s", strings.Join(args, " "), err, text)
			}
			if !strings.Contains(text, "Usage: onramp "+c) {
				t.Errorf("onramp %s --help does not print %q:\n%s", c, "Usage: onramp "+c, text)
			}
			if !strings.Contains(text, "-data-dir") {
				t.Errorf("onramp %s --help does not show the shared settings (--data-dir):\n%s", c, text)
			}
		})
	}
	if m, _ := filepath.Glob(filepath.Join(dataDir, "*")); len(m) > 0 {
		t.Errorf("--help created data: %v", m)
	}
	// Asking for help is not an error; a wrong command is.
	if _, _, err := runCLI(env, "no-such-command"); err == nil {
		t.Errorf("onramp no-such-command exited 0")
	}
	if _, _, err := runCLI(env); err == nil {
		t.Errorf("onramp with no command exited 0")
	}
}

// TestCLIWhileServing: the data commands work on the data folder of a
// running server that is busy ingesting, and the server sees their changes.
func TestCLIWhileServing(t *testing.T) {
	n := StartNode(t, NodeOptions{})
	p := n.CreateProperty(t, "busy")
	run := randomID(t)

	// Keep the server writing while the CLI works on the same database.
	var stop atomic.Bool
	var wg sync.WaitGroup
	var sent atomic.Int64
	var loadErr atomic.Value
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			body, _ := smallBatch(t, fmt.Sprintf("bg-%s-%d", run, i), "bg-"+run, 50)
			status, ans, err := postBatch(context.Background(), apiClient, n.URL, p.WriteKey, body)
			if err == nil && ans.Accepted != 50 {
				err = fmt.Errorf("accepted %d of 50", ans.Accepted)
			}
			if err != nil {
				loadErr.Store(fmt.Sprintf("background batch %d: status %d: %v", i, status, err))
				return
			}
			sent.Add(50)
		}
	}()
	defer func() { stop.Store(true); wg.Wait() }()
	Eventually(t, 10*time.Second, func() (bool, string) { return sent.Load() > 0, "no background batch accepted" })

	timed := func(args ...string) []byte {
		t.Helper()
		start := time.Now()
		out := n.CLI(t, args...)
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("onramp %s took %s while the server was busy", strings.Join(args, " "), d)
		}
		return out
	}

	var props []struct {
		ID       string `json:"id"`
		Name     string `json:"name"`
		WriteKey string `json:"write_key"`
	}
	if err := json.Unmarshal(timed("property", "list", "--json"), &props); err != nil {
		t.Fatalf("property list --json: %v", err)
	}
	if len(props) != 1 || props[0].ID != p.ID || props[0].WriteKey != p.WriteKey {
		t.Errorf("property list = %+v, want just %s", props, p.ID)
	}
	if text := string(timed("property", "list")); !strings.Contains(text, p.ID) || !strings.Contains(text, "busy") {
		t.Errorf("property list does not show %s:\n%s", p.ID, text)
	}

	// A property made by the CLI is usable on the running server at once.
	p2 := n.CreateProperty(t, "made-while-serving")
	body, _ := smallBatch(t, "p2-"+run, "p2-user-"+run, 2)
	mustPost(t, n, p2.WriteKey, body, 2)
	if got := len(n.Timeline(t, p2.SecretKey, "user_id:p2-user-"+run)); got != 2 {
		t.Errorf("p2-user has %d events, want 2", got)
	}

	var people []struct {
		ID     string `json:"id"`
		UserID string `json:"user_id"`
	}
	Eventually(t, 10*time.Second, func() (bool, string) {
		if err := json.Unmarshal(timed("user", "list", "--json"), &people); err != nil {
			return false, err.Error()
		}
		return len(people) == 2, fmt.Sprintf("user list --json = %+v, want bg-%s and p2-user-%s", people, run, run)
	})
	var shown struct {
		Profile struct {
			Person struct {
				ID string `json:"id"`
			} `json:"person"`
		} `json:"profile"`
		Events []map[string]any `json:"events"`
	}
	if err := json.Unmarshal(timed("user", "show", "user_id:bg-"+run, "--events", "5", "--json"), &shown); err != nil {
		t.Fatalf("user show --json: %v", err)
	}
	if shown.Profile.Person.ID == "" || len(shown.Events) != 5 {
		t.Errorf("user show: person %q with %d events, want a person and 5 events", shown.Profile.Person.ID, len(shown.Events))
	}
	if tok := n.OwnerToken(t); tok == "" {
		t.Error("token create --json gave no token")
	}
	timed("events", "rejected", "--json")

	// A write key revoked by the CLI stops working on the running server.
	var revoked struct {
		WriteKey string `json:"write_key"`
	}
	if err := json.Unmarshal(timed("property", "revoke-key", "--property", p2.ID, "--key", "write", "--json"), &revoked); err != nil || revoked.WriteKey == "" || revoked.WriteKey == p2.WriteKey {
		t.Fatalf("property revoke-key --json: %+v %v", revoked, err)
	}
	Eventually(t, 10*time.Second, func() (bool, string) {
		body, _ := smallBatch(t, "old-key-"+randomID(t), "p2-user-"+run, 1)
		status, _, err := postBatch(context.Background(), apiClient, n.URL, p2.WriteKey, body)
		return status == http.StatusUnauthorized || status == http.StatusForbidden, fmt.Sprintf("the revoked write key still gets %d (%v)", status, err)
	})
	body, _ = smallBatch(t, "new-key-"+run, "p2-user-"+run, 1)
	mustPost(t, n, revoked.WriteKey, body, 1)

	stop.Store(true)
	wg.Wait()
	if v := loadErr.Load(); v != nil {
		t.Fatalf("the server failed while the CLI worked: %s", v)
	}
	if got := int64(len(n.Timeline(t, p.SecretKey, "user_id:bg-"+run))); got != sent.Load() {
		t.Errorf("bg user has %d events, want the %d acknowledged", got, sent.Load())
	}
}
