package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onramp-dev/onramp/events"
)

// benchPeople builds the identity of bench person i: a stable anonymous id
// and, for most, a user id and email, so ingest exercises real resolution.
func benchPerson(run string, i int) (anon, user, email string) {
	anon = fmt.Sprintf("anon-%s-%d", run, i)
	if i%5 != 0 {
		user = fmt.Sprintf("bench-user-%d", i)
		email = fmt.Sprintf("person%d@bench.example.com", i)
	}
	return
}

var benchPages = []string{"/", "/pricing", "/blog/plg-stack", "/blog/identity", "/docs/start", "/events/summit", "/signup"}
var benchEvents = []string{"Signed Up", "Trial Started", "Event Registered", "Docs Searched", "Invite Sent", "Plan Upgraded"}

// benchMessage makes one realistic Segment message (about 700 bytes).
func benchMessage(rng *rand.Rand, run string, people int, seq int64, now time.Time) map[string]any {
	i := rng.IntN(people)
	anon, user, email := benchPerson(run, i)
	page := benchPages[rng.IntN(len(benchPages))]
	m := map[string]any{
		"messageId":   fmt.Sprintf("bench-%s-%d", run, seq),
		"anonymousId": anon,
		"timestamp":   now.Add(-time.Duration(rng.IntN(3600)) * time.Second).Format(time.RFC3339Nano),
		"context": map[string]any{
			"ip":        fmt.Sprintf("203.0.113.%d", i%250+1),
			"userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36",
			"locale":    "en-GB",
			"library":   map[string]any{"name": "onramp-bench", "version": version},
			"page":      map[string]any{"path": page, "url": "https://www.example.com" + page, "title": "Example " + page, "referrer": "https://news.example.org/"},
			"campaign":  map[string]any{"source": "newsletter", "medium": "email", "name": "autumn-launch"},
		},
	}
	if user != "" {
		m["userId"] = user
	}
	switch r := rng.IntN(10); {
	case r < 5:
		m["type"] = "page"
		m["name"] = "Example " + page
		m["properties"] = map[string]any{"path": page, "url": "https://www.example.com" + page, "title": "Example " + page, "search": "", "referrer": "https://news.example.org/"}
	case r < 9:
		m["type"] = "track"
		m["event"] = benchEvents[rng.IntN(len(benchEvents))]
		m["properties"] = map[string]any{"plan": "team", "seats": rng.IntN(50) + 1, "value": float64(rng.IntN(10000)) / 100, "currency": "EUR", "source": "web", "experiment": "onboarding-v2"}
	default:
		m["type"] = "identify"
		traits := map[string]any{"name": fmt.Sprintf("Person %d", i), "company": "Example Ltd", "role": "engineer", "plan": "trial"}
		if email != "" {
			traits["email"] = email
		}
		m["traits"] = traits
	}
	return m
}

type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) { l.mu.Lock(); l.d = append(l.d, d); l.mu.Unlock() }

func (l *latencies) pct(p float64) time.Duration {
	if len(l.d) == 0 {
		return 0
	}
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	return l.d[min(len(l.d)-1, int(p*float64(len(l.d))))]
}

func runBenchIngest(ctx context.Context, args []string, out io.Writer) error {
	fs, cf := newFlags("bench ingest", commands()["bench ingest"].usage)
	url := fs.String("url", "http://127.0.0.1:8080", "Onramp base URL")
	key := fs.String("write-key", "", "write key of a property (required)")
	total := fs.Int("events", 100000, "events to send")
	batch := fs.Int("batch", 100, "events per request")
	conc := fs.Int("concurrency", 8, "requests in flight")
	people := fs.Int("people", 10000, "distinct people the events come from")
	rate := fs.Float64("rate", 0, "target events/s (0 = as fast as possible); use half the max to measure latency under load")
	gz := fs.Bool("gzip", false, "gzip request bodies")
	raw := fs.Bool("compare-raw", true, "also insert the same rows straight into a fresh database of the engine --database-url names (SQLite by default) and print the ratio")
	run := fs.String("run", "", "run id, so repeated runs do not dedupe each other (default: random)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	clientKind := fs.String("client", "lean", "load generator: lean (persistent HTTP/1.1 connections, requests serialised before timing, a minimal response parser, as wrk does) or nethttp (Go's net/http client, which spends about a third as much CPU per event as the server, on the same two cores)")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	if *clientKind != "lean" && *clientKind != "nethttp" {
		return errors.New("--client must be lean or nethttp")
	}
	if *key == "" {
		return errors.New("--write-key is required (onramp property create --name bench --json prints one)")
	}
	if *run == "" {
		*run = fmt.Sprintf("%x", rand.Uint32())
	}
	// Build every request body first, so the client's own JSON work does
	// not count against the server and the raw comparison sees the same rows.
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now().UTC()
	var bodies [][]byte
	var msgs []json.RawMessage
	for seq := int64(0); seq < int64(*total); {
		var b []any
		for j := 0; j < *batch && seq < int64(*total); j++ {
			m := benchMessage(rng, *run, *people, seq, now)
			b = append(b, m)
			mb, _ := json.Marshal(m)
			msgs = append(msgs, mb)
			seq++
		}
		body, _ := json.Marshal(map[string]any{"batch": b, "sentAt": now.Format(time.RFC3339Nano)})
		if *gz {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			_, _ = zw.Write(body)
			_ = zw.Close()
			body = buf.Bytes()
		}
		bodies = append(bodies, body)
	}
	send, closeClient, err := ingestSender(*clientKind, strings.TrimRight(*url, "/"), *key, *gz, *conc, bodies)
	if err != nil {
		return err
	}
	defer closeClient()
	var next, sent, failed atomic.Int64
	lat := &latencies{}
	var firstErr atomic.Value
	start := time.Now()
	var interval time.Duration
	if *rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(*batch) / *rate)
	}
	done := make(chan struct{})
	go progress(done, start, &sent, int64(*total), "events")
	var wg sync.WaitGroup
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(bodies)) || ctx.Err() != nil {
					return
				}
				if interval > 0 {
					// Open-loop pacing: request i starts at start + i*interval,
					// whatever happened to earlier ones.
					if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
						time.Sleep(d)
					}
				}
				t0 := time.Now()
				status, err := send(ctx, w, int(i))
				d := time.Since(t0)
				n := int64(min(*batch, *total-int(i)*(*batch)))
				if err == nil && status != http.StatusOK {
					err = fmt.Errorf("%d %s", status, http.StatusText(status))
				}
				if err != nil {
					failed.Add(n)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				lat.add(d)
				sent.Add(n)
			}
		}()
	}
	wg.Wait()
	close(done)
	elapsed := time.Since(start)
	fmt.Fprintln(os.Stderr)
	res := map[string]any{
		"events": sent.Load(), "failed": failed.Load(), "seconds": elapsed.Seconds(),
		"events_per_sec": float64(sent.Load()) / elapsed.Seconds(),
		"p50_ms":         ms(lat.pct(.50)), "p95_ms": ms(lat.pct(.95)), "p99_ms": ms(lat.pct(.99)), "max_ms": ms(lat.pct(1)),
		"batch": *batch, "concurrency": *conc, "people": *people, "client": *clientKind,
	}
	if e := firstErr.Load(); e != nil {
		res["first_error"] = e
	}
	if *raw {
		rawRate, engine, err := rawInsertRate(ctx, cfg, msgs, *batch)
		if err != nil {
			return fmt.Errorf("raw insert: %w", err)
		}
		res["raw_engine"] = engine
		res["raw_events_per_sec"] = rawRate
		res["ratio_http_to_raw"] = res["events_per_sec"].(float64) / rawRate
	}
	if *asJSON {
		return printJSON(out, res)
	}
	fmt.Fprintf(out, "ingest: %d events in %.2fs = %.0f events/s (batch %d, concurrency %d, %d people)\n", sent.Load(), elapsed.Seconds(), res["events_per_sec"], *batch, *conc, *people)
	fmt.Fprintf(out, "latency per batch: p50 %.2f ms  p95 %.2f ms  p99 %.2f ms  max %.2f ms\n", res["p50_ms"], res["p95_ms"], res["p99_ms"], res["max_ms"])
	if failed.Load() > 0 {
		fmt.Fprintf(out, "FAILED: %d events (first error: %v)\n", failed.Load(), res["first_error"])
	}
	if *raw {
		fmt.Fprintf(out, "raw insert of the same rows into %s: %.0f events/s; HTTP ingest reaches %.2f of it\n", res["raw_engine"], res["raw_events_per_sec"], res["ratio_http_to_raw"])
	}
	if failed.Load() > 0 {
		return errors.New("some requests failed")
	}
	return nil
}

// ingestSender returns a function that sends body i on worker w's
// connection and answers the status, for the client kind asked for.
func ingestSender(kind, base, key string, gz bool, workers int, bodies [][]byte) (send func(ctx context.Context, w, i int) (int, error), closeAll func(), err error) {
	if kind == "nethttp" {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers * 2, MaxConnsPerHost: workers * 2}, Timeout: 60 * time.Second}
		return func(ctx context.Context, _, i int) (int, error) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/batch", bytes.NewReader(bodies[i]))
			req.SetBasicAuth(key, "")
			req.Header.Set("Content-Type", "application/json")
			if gz {
				req.Header.Set("Content-Encoding", "gzip")
			}
			resp, err := client.Do(req)
			if err != nil {
				return 0, err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode, nil
		}, client.CloseIdleConnections, nil
	}
	u, err := neturl.Parse(base)
	if err != nil {
		return nil, nil, err
	}
	header := [][2]string{{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(key+":"))}, {"Content-Type", "application/json"}}
	if gz {
		header = append(header, [2]string{"Content-Encoding", "gzip"})
	}
	wires := make([][]byte, len(bodies))
	for i, b := range bodies {
		rr := readRequest{method: http.MethodPost, path: u.Path + "/v1/batch", header: header, body: string(b)}
		wires[i] = rr.wire(u.Host)
	}
	conns := make([]*leanConn, workers)
	for w := range conns {
		if conns[w], err = dialLean(u); err != nil {
			return nil, nil, err
		}
	}
	return func(_ context.Context, w, i int) (int, error) {
			c := conns[w]
			if c.conn == nil {
				if err := c.redial(); err != nil {
					return 0, err
				}
			}
			if _, err := c.conn.Write(wires[i]); err != nil {
				c.close()
				return 0, err
			}
			status, _, err := c.readResponse()
			if err != nil {
				c.close()
			}
			return status, err
		}, func() {
			for _, c := range conns {
				c.close()
			}
		}, nil
}

// rawInsertRate inserts the rows the messages make straight into a fresh
// database of the configured engine, in transactions of ten batches (what
// the committer typically groups under load), and returns rows/s.
func rawInsertRate(ctx context.Context, cfg Config, msgs []json.RawMessage, batch int) (float64, string, error) {
	dir, err := os.MkdirTemp("", "onramp-bench-raw-")
	if err != nil {
		return 0, "", err
	}
	defer os.RemoveAll(dir)
	rcfg := cfg
	rcfg.DataDir = dir
	if !strings.HasPrefix(cfg.DatabaseURL, "postgres") {
		rcfg.DatabaseURL = "sqlite:" + filepath.Join(dir, "raw.db")
	} else {
		url, cleanup, err := freshPostgres(ctx, cfg.DatabaseURL)
		if err != nil {
			return 0, "", err
		}
		defer cleanup()
		rcfg.DatabaseURL = url
	}
	eng, err := openEngine(ctx, rcfg)
	if err != nil {
		return 0, "", err
	}
	defer eng.close()
	if _, err := eng.migrate(ctx); err != nil {
		return 0, "", err
	}
	now := time.Now().UTC()
	rows := make([]*events.Event, 0, len(msgs))
	for i, m := range msgs {
		p, rej := events.Parse(m, i, "", events.Envelope{PropertyID: "prp_bench", ReceivedAt: now, BatchSentAt: now})
		if rej != nil {
			return 0, "", fmt.Errorf("bench message %d rejected: %s", i, rej.Reason)
		}
		p.Event.PersonID = "per_" + p.Obs.Keys[0].Value
		rows = append(rows, p.Event)
	}
	group := batch * 10
	start := time.Now()
	for i := 0; i < len(rows); i += group {
		part := rows[i:min(i+group, len(rows))]
		if err := eng.inTx(ctx, func(s store) error { return s.InsertEvents(ctx, part) }); err != nil {
			return 0, "", err
		}
	}
	return float64(len(rows)) / time.Since(start).Seconds(), eng.name, nil
}

func progress(done <-chan struct{}, start time.Time, n *atomic.Int64, total int64, what string) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			el := time.Since(start).Seconds()
			fmt.Fprintf(os.Stderr, "\r%d/%d %s (%.0f%%), %.0f/s   ", n.Load(), total, what, 100*float64(n.Load())/float64(total), float64(n.Load())/el)
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func runBenchTimeline(ctx context.Context, args []string, out io.Writer) error {
	fs, _ := newFlags("bench timeline", commands()["bench timeline"].usage)
	b := &authBenchRun{ctx: ctx, name: "timeline", title: "timeline", out: out, pipeline: 1}
	fs.StringVar(&b.url, "url", "http://127.0.0.1:8080", "Onramp base URL")
	secret := fs.String("secret-key", "", "secret key of a property (required)")
	fs.IntVar(&b.requests, "requests", 20000, "timeline reads to make")
	fs.DurationVar(&b.duration, "duration", 2*time.Minute, "stop after this long, even if reads remain")
	fs.IntVar(&b.concurrency, "concurrency", 8, "requests in flight")
	people := fs.Int("people", 10000, "people of the earlier bench ingest run (reads pick user ids bench-user-N below this)")
	limit := fs.Int("limit", 50, "events per read")
	fs.StringVar(&b.client, "client", "lean", "load generator: lean (persistent HTTP/1.1 connections, requests serialised before timing, a minimal response parser, as wrk does) or nethttp (Go's net/http client, which costs about as much CPU per request as the server)")
	fs.IntVar(&b.pid, "pid", 0, "process id of the server, to read its CPU time from /proc (default: process_cpu_seconds_total from its /metrics)")
	fs.BoolVar(&b.asJSON, "json", false, "print the result as JSON")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	if *secret == "" {
		return errors.New("--secret-key is required")
	}
	if b.requests <= 0 || b.concurrency <= 0 || b.duration <= 0 || *people < 2 || *limit <= 0 {
		return errors.New("--requests, --concurrency, --duration and --limit must be positive, --people at least 2")
	}
	if b.client != "lean" && b.client != "nethttp" {
		return errors.New("--client must be lean or nethttp")
	}
	b.url = strings.TrimRight(b.url, "/")
	b.hc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: b.concurrency * 2, MaxConnsPerHost: b.concurrency * 2, DisableCompression: true}, Timeout: 30 * time.Second}
	if _, err := b.serverCPU(); err != nil {
		return fmt.Errorf("cannot read the server's CPU time (%w); is it running at --url, or give --pid", err)
	}
	// The people to read, chosen before the clock starts: every answer must
	// be a page of that person's events (its first carries the user id),
	// and every sampleEvery-th is decoded and checked whole.
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(*secret+":")) // as http.Request.SetBasicAuth
	users := make([]string, min(b.requests, 100000))
	rb := &readBench{what: "reads", want: []byte(`"data":[{`), requests: make([]readRequest, len(users))}
	rng := rand.New(rand.NewPCG(1, 7))
	for k := range users {
		i := rng.IntN(*people)
		if i%5 == 0 {
			i++ // people with i%5==0 have no user id
		}
		users[k] = fmt.Sprintf("bench-user-%d", i)
		rb.requests[k] = readRequest{method: http.MethodGet, path: fmt.Sprintf("/v1/profiles/user_id:%s/events?limit=%d", users[k], *limit),
			header: [][2]string{{"Authorization", basic}}, want: []byte(`"user_id":"` + users[k] + `"`)}
	}
	rb.check = func(k int, body []byte) error {
		var page struct {
			Data []struct {
				PersonID  string    `json:"person_id"`
				UserID    string    `json:"user_id"`
				Timestamp time.Time `json:"timestamp"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return err
		}
		if n := len(page.Data); n == 0 || n > *limit {
			return fmt.Errorf("%d events, want 1 to %d", n, *limit)
		}
		for j, e := range page.Data {
			switch {
			case e.UserID != users[k] || e.PersonID != page.Data[0].PersonID:
				return fmt.Errorf("event %d is of %s (%s), not %s", j, e.UserID, e.PersonID, users[k])
			case j > 0 && e.Timestamp.After(page.Data[j-1].Timestamp):
				return fmt.Errorf("event %d is newer than the one before it", j)
			}
		}
		return nil
	}
	res, err := b.runRead(rb)
	if err != nil {
		return err
	}
	res.Extra = map[string]any{"limit": *limit, "people": *people}
	return b.report(res)
}
