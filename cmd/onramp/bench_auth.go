package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/inmem"
)

// onramp bench auth: load tests of sign-in, sessions and the OpenID
// Connect provider. Each drives a running server over HTTP and seeds what
// it needs (a client, accounts with passwords, sessions, finished auth
// requests with codes) by opening the server's database directly, through
// the same store code the server uses. Access tokens are not forged: they
// come from exchanging seeded codes at the server's token endpoint before
// the clock starts. Targets: docs/design/auth.md §7.

type authBench struct {
	usage       string
	summary     string
	concurrency int
	requests    int
	pool        int
	poolHelp    string
	// read benchmarks take --client and --pipeline.
	read bool
	run  func(b *authBenchRun) (*benchResult, error)
}

func authBenches() map[string]authBench {
	return map[string]authBench{
		"exchange": {
			usage: "bench auth exchange [--requests N] [--concurrency C] [--duration D]", summary: "authorization code → tokens at /oauth/token (confidential client, PKCE, openid email); one seeded code per request",
			concurrency: 16, requests: 20000, run: benchExchange,
		},
		"introspect": {
			usage: "bench auth introspect [--requests N] [--concurrency C] [--pool TOKENS] [--client lean|nethttp]", summary: "token introspection at /oauth/introspect by the token's own client",
			concurrency: 4, requests: 100000, pool: 1000, poolHelp: "access tokens to spread the requests over (made by exchanging seeded codes before timing)", read: true, run: benchIntrospect,
		},
		"userinfo": {
			usage: "bench auth userinfo [--requests N] [--concurrency C] [--pool TOKENS] [--client lean|nethttp]", summary: "/oauth/userinfo with openid profile email onramp:traits (standard and custom claims)",
			concurrency: 4, requests: 100000, pool: 1000, poolHelp: "access tokens (one person each) to spread the requests over", read: true, run: benchUserinfo,
		},
		"session": {
			usage: "bench auth session [--requests N] [--concurrency C] [--pool SESSIONS] [--client lean|nethttp]", summary: "GET /api/auth/session with a staff session cookie (the session check every signed-in console and API call makes)",
			concurrency: 4, requests: 200000, pool: 1000, poolHelp: "staff sessions to spread the requests over", read: true, run: benchSession,
		},
		"signin": {
			usage: "bench auth signin [--requests N] [--concurrency C] [--pool ACCOUNTS] [--pid PID]", summary: "password sign-ins through the hosted form (GET the form, POST email and password, get the session cookie); server CPU per sign-in beside the argon2id hash's own",
			concurrency: 4, requests: 600, pool: 200, poolHelp: "accounts with a password to sign in as, in turn", run: benchSignin,
		},
	}
}

const benchAuthUsage = "bench auth exchange|introspect|userinfo|session|signin [--url URL] [--requests N] [--duration D] [--concurrency C] [--json]"

func runBenchAuth(ctx context.Context, args []string, out io.Writer) error {
	benches := authBenches()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		names := make([]string, 0, len(benches))
		for n := range benches {
			names = append(names, n)
		}
		sort.Strings(names)
		w := out
		if len(args) == 0 {
			w = os.Stderr
		}
		fmt.Fprintf(w, "Usage: onramp %s\n\nLoad tests of sign-in and the OpenID Connect provider against a running server (--url).\nThey seed what they need by opening the server's database (the same --data-dir or --database-url).\n\n", benchAuthUsage)
		for _, n := range names {
			fmt.Fprintf(w, "  %-11s %s\n", n, benches[n].summary)
		}
		fmt.Fprint(w, "\nonramp bench auth NAME --help shows the flags.\n")
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	name := args[0]
	bench, ok := benches[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "onramp bench auth: unknown benchmark %q; choose exchange, introspect, userinfo, session or signin\n", name)
		return errUsage
	}
	fs, cf := newFlags("bench auth "+name, bench.usage)
	b := &authBenchRun{ctx: ctx, name: name, out: out}
	fs.StringVar(&b.url, "url", "http://127.0.0.1:8080", "base URL of the running Onramp server")
	fs.IntVar(&b.requests, "requests", bench.requests, "requests to make (the timed part stops after this many)")
	fs.DurationVar(&b.duration, "duration", 2*time.Minute, "stop the timed part after this long, even if requests remain")
	fs.IntVar(&b.concurrency, "concurrency", bench.concurrency, "requests in flight")
	if bench.pool > 0 {
		fs.IntVar(&b.pool, "pool", bench.pool, bench.poolHelp)
	}
	b.client, b.pipeline = "nethttp", 1
	if bench.read {
		fs.StringVar(&b.client, "client", "lean", "load generator: lean (persistent HTTP/1.1 connections, requests serialised before timing, a minimal response parser, as wrk does) or nethttp (Go's net/http client, which costs about as much CPU per request as the server)")
		fs.IntVar(&b.pipeline, "pipeline", 1, "lean client: requests sent at once on a connection before reading their answers (1: no pipelining, as real clients do)")
	}
	fs.IntVar(&b.pid, "pid", 0, "process id of the server, to read its CPU time from /proc (default: process_cpu_seconds_total from its /metrics)")
	fs.StringVar(&b.runID, "run", "", "run id, so that repeated runs seed distinct data (default: random)")
	fs.BoolVar(&b.asJSON, "json", false, "print the result as JSON")
	if _, err := parseArgs(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	if b.requests <= 0 || b.concurrency <= 0 || b.duration <= 0 || (bench.pool > 0 && b.pool <= 0) || b.pipeline <= 0 {
		return onramp.Errorf(onramp.EINVALID, "--requests, --concurrency, --duration, --pool and --pipeline must be positive")
	}
	if b.client != "lean" && b.client != "nethttp" {
		return onramp.Errorf(onramp.EINVALID, "--client must be lean or nethttp")
	}
	if b.pipeline > 1 && b.client != "lean" {
		return onramp.Errorf(onramp.EINVALID, "--pipeline needs --client lean")
	}
	if b.runID == "" {
		b.runID = fmt.Sprintf("%08x", mrand.Uint32())
	}
	b.url = strings.TrimRight(b.url, "/")
	cfg.LogLevel = "warn"
	b.cfg = cfg
	a, err := openApp(ctx, cfg, cfg.logger(os.Stderr), inmem.NewBus(slog.New(slog.DiscardHandler)), nil)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.openAccounts(ctx); err != nil {
		return err
	}
	b.a = a
	b.hc = &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: b.concurrency * 2, MaxConnsPerHost: b.concurrency * 2, DisableCompression: true},
		Timeout:   30 * time.Second,
		// A redirect is an answer to check, never to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if _, err := b.serverCPU(); err != nil {
		return fmt.Errorf("cannot read the server's CPU time (%w); is it running at --url, or give --pid", err)
	}
	res, err := bench.run(b)
	if err != nil {
		return err
	}
	return b.report(res)
}

// authBenchRun is one run of a bench auth command.
type authBenchRun struct {
	ctx         context.Context
	name        string
	title       string // the report's first word, when not "auth NAME"
	out         io.Writer
	url         string
	requests    int
	duration    time.Duration
	concurrency int
	pool        int
	pid         int
	runID       string
	asJSON      bool
	client      string // read benchmarks: lean or nethttp
	pipeline    int
	cfg         Config
	a           *app
	hc          *http.Client
}

// benchResult is what a bench reports.
type benchResult struct {
	What      string  `json:"what"`
	Requests  int64   `json:"requests"`
	Failed    int64   `json:"failed"`
	FirstErr  string  `json:"first_error,omitempty"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
	P999ms    float64 `json:"p999_ms"`
	MaxMs     float64 `json:"max_ms"`
	ServerCPU float64 `json:"server_cpu_us_per_request"`
	// ServerCapacity is what the server's CPU per request allows on all
	// of the machine's cores: the load generator shares them here.
	ServerCapacity float64 `json:"server_capacity_per_second"`
	BenchCPU       float64 `json:"bench_cpu_us_per_request"`
	// Client is the load generator of a read benchmark (lean or nethttp).
	Client   string         `json:"client,omitempty"`
	Pipeline int            `json:"pipeline,omitempty"`
	Machine  benchMachine   `json:"machine"`
	Extra    map[string]any `json:"extra,omitempty"`
	// notes are lines printed under the result.
	notes []string
}

type benchMachine struct {
	CPUs      int    `json:"cpus"`
	Model     string `json:"model"`
	LoadStart string `json:"load_average_start"`
	LoadEnd   string `json:"load_average_end"`
}

func (b *authBenchRun) report(r *benchResult) error {
	if b.asJSON {
		return printJSON(b.out, r)
	}
	title := b.title
	if title == "" {
		title = "auth " + b.name
	}
	fmt.Fprintf(b.out, "%s: %d %s in %.2fs = %.0f/s (concurrency %d); %d failed\n", title, r.Requests, r.What, r.Seconds, r.PerSecond, b.concurrency, r.Failed)
	fmt.Fprintf(b.out, "latency: p50 %.2f ms  p99 %.2f ms  p999 %.2f ms  max %.2f ms\n", r.P50ms, r.P99ms, r.P999ms, r.MaxMs)
	gen := "this load generator"
	if r.Client != "" {
		gen = "this load generator (" + r.Client + " client"
		if r.Pipeline > 1 {
			gen += fmt.Sprintf(", %d pipelined", r.Pipeline)
		}
		gen += ")"
	}
	fmt.Fprintf(b.out, "CPU per request: server %.0f µs (%.0f/s if it had all %d cores to itself), %s %.0f µs\n", r.ServerCPU, r.ServerCapacity, r.Machine.CPUs, gen, r.BenchCPU)
	for _, n := range r.notes {
		fmt.Fprintln(b.out, n)
	}
	fmt.Fprintf(b.out, "machine: %d CPUs, %s; load average %s at the start, %s at the end\n", r.Machine.CPUs, r.Machine.Model, r.Machine.LoadStart, r.Machine.LoadEnd)
	if r.Failed > 0 {
		fmt.Fprintf(b.out, "FAILED: first error: %s\n", r.FirstErr)
		return errors.New("some requests failed")
	}
	return nil
}

// --- driving ---

// drive runs do for each request number, concurrency at a time, until
// the count or the duration runs out, and measures throughput, latency
// and the CPU the server and this process spent.
func (b *authBenchRun) drive(what string, do func(worker, i int) error) (*benchResult, error) {
	return b.driveBatch(what, 1, func(w, first, _ int, lat []time.Duration) (int, error) {
		t0 := time.Now()
		if err := do(w, first); err != nil {
			return 0, err
		}
		lat[0] = time.Since(t0)
		return 1, nil
	})
}

// driveBatch is drive for a client that sends up to depth requests at a
// time on one connection (pipelining): do gets request numbers first to
// first+n-1, fills the latency of each it answered in lat, and returns
// how many were answered right before the first error. The ones after
// an error count as failed.
func (b *authBenchRun) driveBatch(what string, depth int, do func(worker, first, n int, lat []time.Duration) (int, error)) (*benchResult, error) {
	res := &benchResult{What: what, Machine: benchMachine{CPUs: runtime.NumCPU(), Model: cpuModel(), LoadStart: loadAverage()}}
	cpu0, err := b.serverCPU()
	if err != nil {
		return nil, err
	}
	self0 := selfCPU()
	var next, okN, failed atomic.Int64
	var firstErr atomic.Value
	lat := &latencies{}
	start := time.Now()
	deadline := start.Add(b.duration)
	done := make(chan struct{})
	go progress(done, start, &okN, int64(b.requests), what)
	var wg sync.WaitGroup
	for w := range b.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			defer func() { lat.mu.Lock(); lat.d = append(lat.d, mine...); lat.mu.Unlock() }()
			batch := make([]time.Duration, depth)
			for {
				i := next.Add(int64(depth)) - int64(depth)
				if i >= int64(b.requests) || b.ctx.Err() != nil || time.Now().After(deadline) {
					return
				}
				n := int(min(int64(depth), int64(b.requests)-i))
				k, err := do(w, int(i), n, batch[:n])
				mine = append(mine, batch[:k]...)
				okN.Add(int64(k))
				if err != nil {
					// A setup that fails every request should stop early.
					if failed.Add(int64(n-k)) >= 200 && okN.Load() == 0 {
						next.Store(int64(b.requests))
					}
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(done)
	fmt.Fprintln(os.Stderr)
	self := selfCPU() - self0
	// Work the requests left behind (outbox jobs, a commit) is still theirs:
	// wait until the server's CPU stops growing, at most 5 s.
	cpu1, err := b.settledServerCPU()
	if err != nil {
		return nil, err
	}
	res.Requests, res.Failed, res.Seconds = okN.Load(), failed.Load(), elapsed.Seconds()
	if e := firstErr.Load(); e != nil {
		res.FirstErr = e.(string)
	}
	res.PerSecond = float64(res.Requests) / elapsed.Seconds()
	res.P50ms, res.P99ms, res.P999ms, res.MaxMs = ms(lat.pct(.50)), ms(lat.pct(.99)), ms(lat.pct(.999)), ms(lat.pct(1))
	if n := res.Requests + res.Failed; n > 0 {
		res.ServerCPU = float64((cpu1 - cpu0).Microseconds()) / float64(n)
		if res.ServerCPU > 0 {
			res.ServerCapacity = float64(res.Machine.CPUs) * 1e6 / res.ServerCPU
		}
		res.BenchCPU = float64(self.Microseconds()) / float64(n)
	}
	res.Machine.LoadEnd = loadAverage()
	return res, nil
}

// serverCPU is the server process's CPU time (user + system): from
// /proc/<pid>/stat with --pid, else from its /metrics.
func (b *authBenchRun) serverCPU() (time.Duration, error) {
	if b.pid > 0 {
		return procCPU(b.pid)
	}
	resp, err := b.hc.Get(b.url + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_cpu_seconds_total "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, err
			}
			return time.Duration(f * float64(time.Second)), nil
		}
	}
	return 0, fmt.Errorf("no process_cpu_seconds_total at %s/metrics", b.url)
}

// settledServerCPU waits until the server has been idle for a moment and
// returns its CPU time then.
func (b *authBenchRun) settledServerCPU() (time.Duration, error) {
	prev, err := b.serverCPU()
	if err != nil {
		return 0, err
	}
	for range 25 {
		time.Sleep(200 * time.Millisecond)
		cur, err := b.serverCPU()
		if err != nil {
			return 0, err
		}
		// Scraping /metrics costs the server about a millisecond.
		if cur-prev <= 4*time.Millisecond {
			return cur, nil
		}
		prev = cur
	}
	return prev, nil
}

// procCPU reads utime+stime of a process (Linux, USER_HZ = 100).
func procCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; fields start after its ')'.
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad times", pid)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// selfCPU is this process's CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// --- the OpenID Connect endpoints ---

// exchange redeems a code at the token endpoint and returns the answer.
func (b *authBenchRun) exchange(client *auth.NewClient, code string) ([]byte, error) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {benchRedirect}, "code_verifier": {benchVerifier}}
	req, _ := http.NewRequestWithContext(b.ctx, http.MethodPost, b.url+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client.ID, client.Secret)
	return b.expect(req, http.StatusOK, `"access_token"`)
}

// expect sends req and checks the status and that the body holds want.
func (b *authBenchRun) expect(req *http.Request, status int, want string) ([]byte, error) {
	resp, err := b.hc.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != status || !bytes.Contains(body, []byte(want)) {
		return nil, fmt.Errorf("%s %s: %s: %.200s", req.Method, req.URL.Path, resp.Status, body)
	}
	return body, nil
}

func benchExchange(b *authBenchRun) (*benchResult, error) {
	pc, err := b.seedClient()
	if err != nil {
		return nil, err
	}
	accs, err := b.seedAccounts(min(b.requests, 1000), "")
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "seeding %d finished auth requests with codes…\n", b.requests)
	codes, err := b.seedCodes(pc.Client.ID, accs, []string{auth.ScopeOpenID, auth.ScopeEmail}, b.requests)
	if err != nil {
		return nil, err
	}
	return b.drive("exchanges", func(_, i int) error {
		_, err := b.exchange(pc.Client, codes[i])
		return err
	})
}

// issueTokens makes n access tokens of the scopes by exchanging seeded
// codes at the server, concurrently, before the clock starts.
func (b *authBenchRun) issueTokens(pc *auth.PropertyCreated, scopes []string, n int) ([]string, error) {
	accs, err := b.seedAccounts(n, "")
	if err != nil {
		return nil, err
	}
	codes, err := b.seedCodes(pc.Client.ID, accs, scopes, n)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "warm-up: exchanging %d codes for access tokens…\n", n)
	tokens := make([]string, n)
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range b.concurrency * 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || firstErr.Load() != nil {
					return
				}
				body, err := b.exchange(pc.Client, codes[i])
				var t struct {
					AccessToken string `json:"access_token"`
				}
				if err == nil {
					err = json.Unmarshal(body, &t)
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				tokens[i] = t.AccessToken
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return nil, fmt.Errorf("warm-up exchange: %w", e.(error))
	}
	return tokens, nil
}

func benchIntrospect(b *authBenchRun) (*benchResult, error) {
	pc, err := b.seedClient()
	if err != nil {
		return nil, err
	}
	tokens, err := b.issueTokens(pc, []string{auth.ScopeOpenID, auth.ScopeEmail}, b.pool)
	if err != nil {
		return nil, err
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(pc.Client.ID+":"+pc.Client.Secret)) // as http.Request.SetBasicAuth
	rb := &readBench{what: "introspections", want: []byte(`"active":true`), check: func(_ int, body []byte) error {
		var v struct {
			Active   bool   `json:"active"`
			Subject  string `json:"sub"`
			ClientID string `json:"client_id"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			return err
		}
		if !v.Active || v.Subject == "" || v.ClientID != pc.Client.ID {
			return errors.New("not an active token of the bench's client")
		}
		return nil
	}}
	for _, t := range tokens {
		rb.requests = append(rb.requests, readRequest{method: http.MethodPost, path: "/oauth/introspect",
			header: [][2]string{{"Authorization", basic}, {"Content-Type", "application/x-www-form-urlencoded"}},
			body:   "token=" + url.QueryEscape(t)})
	}
	return b.runRead(rb)
}

func benchUserinfo(b *authBenchRun) (*benchResult, error) {
	pc, err := b.seedClient()
	if err != nil {
		return nil, err
	}
	tokens, err := b.issueTokens(pc, []string{auth.ScopeOpenID, auth.ScopeProfile, auth.ScopeEmail, auth.ScopeTraits}, b.pool)
	if err != nil {
		return nil, err
	}
	rb := &readBench{what: "userinfo reads", want: []byte(`"company":"Example Ltd"`), check: func(_ int, body []byte) error {
		var v struct {
			Subject string `json:"sub"`
			Email   string `json:"email"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			return err
		}
		if v.Subject == "" || v.Email == "" {
			return errors.New("no sub or email")
		}
		return nil
	}}
	for _, t := range tokens {
		rb.requests = append(rb.requests, readRequest{method: http.MethodGet, path: "/oauth/userinfo",
			header: [][2]string{{"Authorization", "Bearer " + t}}})
	}
	return b.runRead(rb)
}

// --- sessions ---

// sessionCookieName is the session cookie of the server at --url.
func (b *authBenchRun) sessionCookieName() string {
	if strings.HasPrefix(b.url, "https://") {
		return "__Host-onramp_session"
	}
	return "onramp_session"
}

// benchSession checks staff sessions through GET /api/auth/session: it is
// what the console calls to learn who is signed in, and every
// cookie-authenticated API call makes the same check (session, then the
// staff row) before its own work. Cheaper pages that look at the session
// (/account, /auth/sign-in) render HTML, so they would measure templates,
// not the check.
func benchSession(b *authBenchRun) (*benchResult, error) {
	accs, err := b.seedAccounts(1, "")
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	err = b.a.eng.inTx(b.ctx, func(s store) error {
		return s.PutStaff(b.ctx, &auth.Staff{PersonID: accs[0].personID, Role: auth.RoleSupport, CreatedAt: now, CreatedBy: "onramp-bench", UpdatedAt: now})
	})
	if err != nil {
		return nil, fmt.Errorf("seed staff: %w", err)
	}
	secrets, err := b.seedSessions(accs[0].personID, b.pool, 12*time.Hour)
	if err != nil {
		return nil, err
	}
	cookie := b.sessionCookieName()
	rb := &readBench{what: "session checks", want: []byte(`"kind":"session"`), check: func(_ int, body []byte) error {
		var v struct {
			Kind    string `json:"kind"`
			Role    string `json:"role"`
			Session struct {
				PersonID string `json:"person_id"`
			} `json:"session"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			return err
		}
		if v.Kind != "session" || v.Role != string(auth.RoleSupport) || v.Session.PersonID != accs[0].personID {
			return errors.New("not the seeded staff session")
		}
		return nil
	}}
	for _, sec := range secrets {
		rb.requests = append(rb.requests, readRequest{method: http.MethodGet, path: "/api/auth/session",
			header: [][2]string{{"Cookie", cookie + "=" + sec}}})
	}
	return b.runRead(rb)
}

// --- password sign-in ---

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signInClients gives each worker HTTP clients whose connections come
// from their own loopback address, a new one every few sign-ins. The
// server limits password attempts per IP (10/s, bursts of 30), rightly;
// a load test from one address would measure that limit, not sign-in.
// Linux routes all of 127.0.0.0/8 to the loopback interface.
type signInClients struct {
	loopback bool
	next     atomic.Int64
}

const signInsPerAddress = 20

func (c *signInClients) client() *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if c.loopback {
		k := c.next.Add(1)
		d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, byte(10+k/(254*256)%200), byte(k/254%256), byte(1+k%254))}
	}
	return &http.Client{
		Transport:     &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 2, DisableCompression: true},
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// signIn makes one sign-in as a browser would: the form, then the post.
func (b *authBenchRun) signIn(hc *http.Client, email, password string) error {
	req, _ := http.NewRequestWithContext(b.ctx, http.MethodGet, b.url+"/auth/sign-in", nil)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	m := csrfField.FindSubmatch(page)
	var flow *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "onramp_flow" {
			flow = c
		}
	}
	if resp.StatusCode != http.StatusOK || m == nil || flow == nil {
		return fmt.Errorf("GET /auth/sign-in: %s, csrf field %v, flow cookie %v", resp.Status, m != nil, flow != nil)
	}
	form := url.Values{"csrf": {string(m[1])}, "email": {email}, "password": {password}}
	req, _ = http.NewRequestWithContext(b.ctx, http.MethodPost, b.url+"/auth/sign-in", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(flow)
	resp, err = hc.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == b.sessionCookieName() && c.Value != "" && resp.StatusCode == http.StatusSeeOther {
			return nil
		}
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		return fmt.Errorf("POST /auth/sign-in: 429: the server's per-IP limit; from a non-loopback --url every sign-in comes from one address")
	}
	return fmt.Errorf("POST /auth/sign-in: %s without a session cookie: %.200s", resp.Status, body)
}

func benchSignin(b *authBenchRun) (*benchResult, error) {
	hasher, err := auth.NewArgon2id(auth.Argon2idConfig{Params: b.cfg.Argon2})
	if err != nil {
		return nil, err
	}
	params := hasher.Params()
	password := "bench-" + b.runID + "-correct-horse"
	phc, err := hasher.Hash(b.ctx, password)
	if err != nil {
		return nil, err
	}
	// Every account gets the same hash: making one per account would take
	// a hash each, and verifying costs the same either way.
	accs, err := b.seedAccounts(b.pool, phc)
	if err != nil {
		return nil, err
	}
	// The hash's own CPU, measured here with the server's parameters (the
	// same settings as the server: flags, ONRAMP_ARGON2_* or config), as
	// many at once as the server runs under this load: argon2 is bound by
	// memory bandwidth, so two at once cost each more CPU than one alone.
	// Measured before and after the run: on a shared machine it moves.
	parallel := min(b.concurrency, runtime.NumCPU())
	fmt.Fprintf(os.Stderr, "measuring argon2id m=%d KiB t=%d p=%d in this process, %d at once…\n", params.MemoryKiB, params.Time, params.Threads, parallel)
	hashBefore, hashWall, err := measureHash(b.ctx, hasher, phc, password, parallel)
	if err != nil {
		return nil, err
	}
	host := b.url
	if u, err := url.Parse(b.url); err == nil {
		host = u.Hostname()
	}
	ip := net.ParseIP(host)
	clients := &signInClients{loopback: host == "localhost" || ip != nil && ip.IsLoopback() && ip.To4() != nil}
	if !clients.loopback {
		fmt.Fprintln(os.Stderr, "warning: --url is not an IPv4 loopback address; every sign-in comes from one address and meets the per-IP limit (10/s)")
	}
	hcs := make([]*http.Client, b.concurrency)
	used := make([]int, b.concurrency)
	res, err := b.drive("sign-ins", func(w, i int) error {
		if hcs[w] == nil || used[w] >= signInsPerAddress {
			if hcs[w] != nil {
				hcs[w].CloseIdleConnections()
			}
			hcs[w], used[w] = clients.client(), 0
		}
		used[w]++
		acc := accs[i%len(accs)]
		return b.signIn(hcs[w], acc.email, password)
	})
	if err != nil {
		return nil, err
	}
	for _, hc := range hcs {
		if hc != nil {
			hc.CloseIdleConnections()
		}
	}
	hashAfter, _, err := measureHash(b.ctx, hasher, phc, password, parallel)
	if err != nil {
		return nil, err
	}
	hashCPU := (hashBefore + hashAfter) / 2
	res.Extra = map[string]any{
		"argon2id":    map[string]any{"memory_kib": params.MemoryKiB, "time": params.Time, "threads": params.Threads},
		"hash_cpu_us": hashCPU.Microseconds(), "hash_cpu_us_before": hashBefore.Microseconds(), "hash_cpu_us_after": hashAfter.Microseconds(),
		"hash_wall_us":                          hashWall.Microseconds(),
		"server_cpu_outside_hash_us_per_signin": res.ServerCPU - float64(hashCPU.Microseconds()),
	}
	outside := res.ServerCPU/1000 - ms(hashCPU)
	res.notes = append(res.notes,
		fmt.Sprintf("argon2id m=%d KiB t=%d p=%d: %.1f ms CPU per hash here before the run, %.1f ms after, %d at once (%.1f ms wall each); one hash per sign-in",
			params.MemoryKiB, params.Time, params.Threads, ms(hashBefore), ms(hashAfter), parallel, ms(hashWall)),
		fmt.Sprintf("server CPU per sign-in outside the hash: %.2f ms (target < 2 ms); a sign-in is GET /auth/sign-in + POST /auth/sign-in", outside))
	if spread := (hashBefore - hashAfter).Abs(); hashCPU > time.Millisecond && (outside < 0 || spread > hashCPU/10) {
		res.notes = append(res.notes, fmt.Sprintf("NOTE: the hash's CPU moved by %.1f ms between its measurements: the difference above is within that noise. For the sign-in's own CPU directly, run server and benchmark with a negligible hash (ONRAMP_ARGON2_MEMORY_KIB=8 ONRAMP_ARGON2_TIME=1)", ms(spread)))
	}
	// A server with other argon2 parameters rehashes each password on
	// sign-in, which doubles the hashing: say so rather than report it.
	if stored, err := b.a.eng.read.PasswordOf(b.ctx, accs[0].personID); err == nil && stored != phc {
		res.notes = append(res.notes, "WARNING: the server rehashed the seeded passwords: its argon2 settings differ from this command's; run both with the same ONRAMP_ARGON2_* settings")
	}
	return res, nil
}

// measureHash verifies a password parallel at a time, ten times each, and
// returns the CPU and the wall time of one verification.
func measureHash(ctx context.Context, h *auth.Argon2id, phc, password string, parallel int) (cpu, wall time.Duration, err error) {
	runtime.GC()
	hashes := 10 * parallel
	c0, t0 := selfCPU(), time.Now()
	var failed atomic.Value
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range hashes / parallel {
				if ok, _, err := h.Verify(ctx, phc, password); err != nil || !ok {
					failed.CompareAndSwap(nil, fmt.Sprintf("argon2id verify: %v %v", ok, err))
					return
				}
			}
		}()
	}
	wg.Wait()
	if e := failed.Load(); e != nil {
		return 0, 0, errors.New(e.(string))
	}
	return (selfCPU() - c0) / time.Duration(hashes), time.Since(t0) * time.Duration(parallel) / time.Duration(hashes), nil
}
