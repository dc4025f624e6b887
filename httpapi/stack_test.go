package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/httpapi"
	"github.com/onramp-dev/onramp/identity"
	"github.com/onramp-dev/onramp/inmem"
	"github.com/onramp-dev/onramp/jobs"
	"github.com/onramp-dev/onramp/live"
	"github.com/onramp-dev/onramp/oidcop"
	"github.com/onramp-dev/onramp/property"
	"github.com/onramp-dev/onramp/sqlite"
)

// testStack is the whole server over a real SQLite database, as
// `onramp serve` wires it, behind httptest.
type testStack struct {
	t      *testing.T
	db     *sqlite.DB
	url    string
	events *events.Service
	ids    *identity.Service
	props  *property.Service
	tokens *auth.Service
	jobs   *jobs.Service
	// accounts are the account rules behind the hosted pages; their clock
	// is clock, which tests move by hand. outbox delivers what they queue
	// to mailer when a test asks (mails).
	accounts *auth.Accounts
	clock    *testClock
	outbox   *auth.Outbox
	mailer   *recordingMailer
	login    *recordingLogin
	oauth    *auth.OAuth
	// provider is the real OpenID Connect provider when the stack was made
	// with stackOptions.oidc (then login is nil and the pages finish
	// sign-ins through oidcop.Login).
	provider *oidcop.Provider
	// hub feeds GET /api/live, from the bus the events publisher fills.
	hub *live.Hub
	// srv is the handler behind url.
	srv *httpapi.Server
	// prop is a property that accepts any origin; owner an owner API token.
	prop  *property.Created
	owner string
}

func newTestStack(t *testing.T) *testStack {
	t.Helper()
	return newTestStackAt(t, "http://onramp.test:8080")
}

// newTestStackAt is newTestStack with another public URL (https turns on
// Secure and __Host- cookies).
func newTestStackAt(t *testing.T, publicURL string) *testStack {
	t.Helper()
	return newTestStackWith(t, stackOptions{publicURL: publicURL})
}

type stackOptions struct {
	publicURL string
	// oidc mounts the real OpenID Connect provider, with the server's own
	// URL as the issuer and public URL, as `onramp serve` does.
	oidc bool
	// hostname serves the oidc stack as http://localhost:<port> instead of
	// 127.0.0.1: passkeys need a host name for their relying party id.
	hostname bool
	// liveHeartbeat spaces the live stream's comment lines (default 15 s).
	liveHeartbeat time.Duration
}

func newTestStackWith(t *testing.T, opt stackOptions) *testStack {
	t.Helper()
	ctx := context.Background()
	// The server starts first, so the provider can use its URL as issuer.
	var handler http.Handler
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	publicURL, issuer := opt.publicURL, "http://onramp.test:8080"
	base := hs.URL
	if opt.oidc {
		if opt.hostname {
			base = strings.Replace(hs.URL, "://127.0.0.1:", "://localhost:", 1)
		}
		publicURL, issuer = base, base
	}
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "onramp.db"), sqlite.Options{Synchronous: "OFF"})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	log := slog.New(slog.DiscardHandler)
	clock := onramp.SystemClock{}
	reg := prometheus.NewRegistry()
	metrics := httpapi.NewMetrics(reg)
	bus := inmem.NewBus(log)
	evs := events.NewService(events.Config{
		Read: db.Reader(),
		InTx: func(ctx context.Context, fn func(events.Store) error) error {
			return db.InTx(ctx, func(q *sqlite.Queries) error { return fn(q) })
		},
		Clock: clock, Log: log, Bus: bus, Metrics: metrics, IsRetryable: sqlite.IsRetryable,
	})
	ids := identity.NewService(db.Reader(), func(ctx context.Context, fn func(identity.Store) error) error {
		return db.InTx(ctx, func(q *sqlite.Queries) error { return fn(q) })
	}, clock, log)
	evs.ConnectIdentity(ids)
	hub, err := live.New(live.Config{Bus: bus, Roots: ids, Clock: clock, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	props := property.NewService(db.Writer(), db.Reader(), clock, log)
	tokens := auth.NewService(db.Writer(), db.Reader(), clock, log)
	oauth, err := auth.NewOAuth(auth.OAuthConfig{
		Read: db.Reader(),
		InTx: func(ctx context.Context, fn func(auth.OAuthTxStore) error) error {
			return db.InTx(ctx, func(q *sqlite.Queries) error { return fn(q) })
		},
		IsRetryable: sqlite.IsRetryable, Properties: props, Clock: clock, Log: log, Issuer: issuer,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Tiny argon2 parameters: the tests are about the rules, not the cost.
	hasher, err := auth.NewArgon2id(auth.Argon2idConfig{Params: auth.Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	authClock := newTestClock()
	accTx := func(ctx context.Context, fn func(auth.TxStore) error) error {
		return db.InTx(ctx, func(q *sqlite.Queries) error { return fn(q) })
	}
	accounts := auth.NewAccounts(auth.Config{
		Read: db.Reader(), InTx: accTx, Identity: ids, Clock: authClock, Log: log, Hasher: hasher,
		PublicURL: publicURL,
		// The clock stands still, so the per-IP token bucket would never
		// refill: make it roomy. The failure limits are the real ones.
		Limits: auth.Limits{IPRate: 1e6, IPBurst: 1e6, RefusalRate: 1e6, RefusalBurst: 1e6},
	})
	if err := accounts.Init(ctx); err != nil {
		t.Fatalf("accounts init: %v", err)
	}
	mailer := &recordingMailer{}
	outbox := &auth.Outbox{Store: db.Reader(), InTx: accTx, Clock: authClock, Log: log, Mailer: mailer}
	var login httpapi.Login
	var recLogin *recordingLogin
	var provider *oidcop.Provider
	var srv *httpapi.Server
	if opt.oidc {
		var key [32]byte
		_, _ = rand.Read(key[:])
		provider, err = oidcop.New(oidcop.Config{
			OAuth: oauth, Properties: props, Accounts: oidcAccounts{accounts}, Log: log, CryptoKey: key, CryptoKeyID: "k1",
			SessionOf: func(r *http.Request) string { return srv.SessionIDOf(r) }, RequestInfo: func(r *http.Request) auth.RequestInfo { return srv.RequestInfo(r) },
		})
		if err != nil {
			t.Fatal(err)
		}
		login = &oidcop.Login{P: provider, Accounts: accounts, Log: log, Clock: authClock}
	} else {
		recLogin = &recordingLogin{}
		login = recLogin
	}
	bulk := jobs.NewService(jobs.Config{
		Read: db.Reader(),
		InTx: func(ctx context.Context, fn func(jobs.Store) error) error {
			return db.InTx(ctx, func(q *sqlite.Queries) error { return fn(q) })
		},
		Ingest: evs, Clock: clock, Log: log, IsRetryable: sqlite.IsRetryable,
	})
	cfg := httpapi.Config{
		Events: evs, Identity: ids, Properties: props, Tokens: tokens, Accounts: accounts, Login: login, OAuth: oauth, Jobs: bulk,
		Log: log, Clock: clock, Registry: reg, Metrics: metrics, Ready: db.Ping,
		PublicURL: publicURL, Live: hub, LiveHeartbeat: opt.liveHeartbeat,
	}
	if provider != nil {
		cfg.OIDC = provider
	}
	srv = httpapi.New(cfg)
	handler = srv
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { evs.Run(runCtx) })
	wg.Go(func() { _ = evs.NewPublisher().Run(runCtx) })
	wg.Go(func() { hub.Run(runCtx) })
	wg.Go(func() { bulk.NewRunner(jobs.RunnerConfig{Poll: 20 * time.Millisecond}).Run(runCtx) })
	t.Cleanup(func() {
		// As serve does at shutdown: open live streams end first.
		hub.Close()
		hs.Close()
		cancel()
		wg.Wait()
		if err := db.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	s := &testStack{t: t, db: db, url: base, events: evs, ids: ids, props: props, tokens: tokens, jobs: bulk,
		accounts: accounts, clock: authClock, outbox: outbox, mailer: mailer, login: recLogin, oauth: oauth, provider: provider, hub: hub, srv: srv}
	s.prop = s.createProperty("Website")
	s.owner = s.token("owner", auth.RoleOwner)
	return s
}

// oidcAccounts gives the provider what it needs from accounts, as
// `onramp serve` does.
type oidcAccounts struct{ *auth.Accounts }

func (o oidcAccounts) EndSession(ctx context.Context, e oidcop.EndSession) error {
	return o.EndSessionByID(ctx, e.SessionID, e.Info)
}

func (s *testStack) createProperty(name string, origins ...string) *property.Created {
	s.t.Helper()
	p, err := s.props.Create(context.Background(), property.CreateParams{Name: name, Origins: origins})
	if err != nil {
		s.t.Fatalf("create property: %v", err)
	}
	return p
}

func (s *testStack) token(name, role string) string {
	s.t.Helper()
	nt, err := s.tokens.CreateToken(context.Background(), name, role)
	if err != nil {
		s.t.Fatalf("create token: %v", err)
	}
	return nt.Secret
}

func (s *testStack) eventCount() int64 {
	s.t.Helper()
	n, err := s.db.Reader().CountEvents(context.Background())
	if err != nil {
		s.t.Fatalf("CountEvents: %v", err)
	}
	return n
}

// reply is a response with its body read.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response %d is not JSON (%v): %s", r.status, err, r.body)
	}
}

// do sends a request; headers are name, value pairs.
func (s *testStack) do(method, path string, body []byte, headers ...string) reply {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "Host") {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// api calls the JSON API with a bearer token ("" for none) and a JSON body
// (nil for none).
func (s *testStack) api(token, method, path string, body any) reply {
	s.t.Helper()
	var b []byte
	var headers []string
	if body != nil {
		switch v := body.(type) {
		case string:
			b = []byte(v)
		default:
			var err error
			if b, err = json.Marshal(v); err != nil {
				s.t.Fatal(err)
			}
		}
		headers = append(headers, "Content-Type", "application/json")
	}
	if token != "" {
		headers = append(headers, "Authorization", "Bearer "+token)
	}
	return s.do(method, path, b, headers...)
}

// track sends events with the main property's write key.
func (s *testStack) track(path, body string) reply {
	s.t.Helper()
	return s.do(http.MethodPost, path, []byte(body), "Authorization", basic(s.prop.WriteKey), "Content-Type", "application/json")
}

func basic(user string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"))
}

// problem is an RFC 9457 problem document.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Rejected []struct {
		Index int    `json:"index"`
		Code  string `json:"code"`
	} `json:"rejected"`
}

// wantProblem checks that r is a problem document with status.
func wantProblem(t *testing.T, r reply, status int) problem {
	t.Helper()
	if r.status != status {
		t.Errorf("status = %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	var p problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem is not JSON (%v): %s", err, r.body)
	}
	if !strings.HasPrefix(p.Type, "/problems/") || p.Title == "" || p.Status != r.status || p.Detail == "" {
		t.Errorf("problem document incomplete: %s", r.body)
	}
	if strings.Contains(p.Detail, "sqlite") || strings.Contains(p.Detail, "onramp: ") {
		t.Errorf("problem detail leaks internals: %q", p.Detail)
	}
	return p
}
