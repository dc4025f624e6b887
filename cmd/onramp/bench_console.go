package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/httpapi"
	"github.com/onramp-dev/onramp/identity"
	"github.com/onramp-dev/onramp/inmem"
	"github.com/onramp-dev/onramp/property"
)

// onramp bench console: the console's people list and a person's first
// timeline page, timed in-process through the HTTP handler (server time,
// no network and no client decoding), over a freshly seeded database.
// Target (issue 4): p99 ≤ 50 ms with 100,000 people.

const benchConsoleUsage = "bench console [--people N] [--requests N] [--database-url postgres://…] [--keep] [--json]"

var (
	benchFirstNames = []string{"Ada", "Grace", "Alan", "Katherine", "Edsger", "Barbara", "Donald", "Frances", "Dennis", "Margaret",
		"Ken", "Radia", "John", "Sophie", "Linus", "Hedy", "Tim", "Karen", "Niklaus", "Joan", "Émile", "Zoë", "Björn", "Aiko", "Ravi"}
	benchLastNames = []string{"Lovelace", "Hopper", "Turing", "Johnson", "Dijkstra", "Liskov", "Knuth", "Allen", "Ritchie", "Hamilton",
		"Thompson", "Perlman", "McCarthy", "Wilson", "Torvalds", "Lamarr", "Berners-Lee", "Spärck Jones", "Wirth", "Clarke"}
	benchPlans     = []string{"free", "free", "free", "trial", "trial", "pro", "pro", "enterprise"}
	benchRoles     = []string{"engineer", "marketing", "sales", "founder", "designer", "support"}
	benchCountries = []string{"GB", "DE", "FR", "US", "NL", "SE", "JP", "IN", "BR", "ES"}
)

// benchCompanies is how many companies the seeded people work for: a
// company:X filter keeps about one person in this many.
const benchCompanies = 400

// consoleQuery is one kind of request the bench times; path makes the
// i-th request of the kind.
type consoleQuery struct {
	kind string
	path func(rng *rand.Rand) string
}

func runBenchConsole(ctx context.Context, args []string, out io.Writer) error {
	fs, cf := newFlags("bench console", benchConsoleUsage)
	people := fs.Int("people", 100000, "people to seed")
	requests := fs.Int("requests", 300, "timed requests of each query kind")
	keep := fs.Bool("keep", false, "keep the seeded database (its folder or Postgres database is printed)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	if *people < 100 || *requests <= 0 {
		return onramp.Errorf(onramp.EINVALID, "--people must be at least 100 and --requests positive")
	}
	cfg.LogLevel = "warn"
	where, cleanup, err := benchConsoleDatabase(ctx, &cfg, *keep)
	if err != nil {
		return err
	}
	defer cleanup()
	log := slog.New(slog.DiscardHandler)
	a, err := openApp(ctx, cfg, log, inmem.NewBus(log), nil)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.openAccounts(ctx); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench console: %s database at %s\n", a.eng.name, where)
	seed, err := seedConsole(ctx, a, *people)
	if err != nil {
		return err
	}
	if a.eng.name == "postgres" {
		// A database in use has statistics; a bulk load has none until
		// autovacuum gets to it.
		if err := analyzePostgres(ctx, cfg.DatabaseURL); err != nil {
			return err
		}
	}
	tok, err := a.tokens.CreateToken(ctx, "bench console", auth.RoleOwner)
	if err != nil {
		return err
	}
	srv := httpapi.New(httpapi.Config{
		Events: a.events, Identity: a.identity, Properties: a.properties, Tokens: a.tokens, Accounts: a.accounts, OAuth: a.oauth,
		Log: log, Clock: a.clock, Registry: prometheus.NewRegistry(), Ready: a.eng.ping,
	})
	get := func(path string) (*httptest.ResponseRecorder, time.Duration) {
		r := httptest.NewRequestWithContext(ctx, http.MethodGet, path, nil)
		r.Header.Set("Authorization", "Bearer "+tok.Secret)
		w := httptest.NewRecorder()
		t0 := time.Now()
		srv.ServeHTTP(w, r)
		return w, time.Since(t0)
	}
	deep, err := deepCursors(get)
	if err != nil {
		return err
	}
	results := map[string]*latencies{}
	var order []string
	for _, q := range consoleQueries(seed, deep) {
		lat := &latencies{}
		results[q.kind], order = lat, append(order, q.kind)
		rng := rand.New(rand.NewPCG(7, uint64(len(order))))
		for i := 0; i < *requests; i++ {
			path := q.path(rng)
			w, d := get(path)
			if w.Code != http.StatusOK {
				return fmt.Errorf("%s: GET %s = %d %s", q.kind, path, w.Code, w.Body.String())
			}
			lat.add(d)
		}
		fmt.Fprintf(os.Stderr, "\r%d/%d query kinds timed   ", len(order), len(consoleQueries(seed, deep)))
	}
	fmt.Fprintln(os.Stderr)
	rows := make([]map[string]any, 0, len(order))
	for _, k := range order {
		l := results[k]
		rows = append(rows, map[string]any{"kind": k, "requests": len(l.d), "p50_ms": ms(l.pct(.5)), "p95_ms": ms(l.pct(.95)), "p99_ms": ms(l.pct(.99)), "max_ms": ms(l.pct(1))})
	}
	if *asJSON {
		return printJSON(out, map[string]any{"engine": a.eng.name, "people": *people, "results": rows})
	}
	fmt.Fprintf(out, "console reads on %s, %d people, %d requests per kind, server time (in-process handler):\n", a.eng.name, *people, *requests)
	fmt.Fprintf(out, "%-26s %9s %9s %9s %9s\n", "kind", "p50 ms", "p95 ms", "p99 ms", "max ms")
	for _, r := range rows {
		fmt.Fprintf(out, "%-26s %9.2f %9.2f %9.2f %9.2f\n", r["kind"], r["p50_ms"], r["p95_ms"], r["p99_ms"], r["max_ms"])
	}
	return nil
}

// benchConsoleDatabase points cfg at an empty database: a new Postgres
// database beside --database-url, or SQLite in a new temp folder.
func benchConsoleDatabase(ctx context.Context, cfg *Config, keep bool) (string, func(), error) {
	if strings.HasPrefix(cfg.DatabaseURL, "postgres") {
		u, drop, err := freshPostgres(ctx, cfg.DatabaseURL)
		if err != nil {
			return "", nil, err
		}
		cfg.DatabaseURL = u
		if keep {
			return u, func() {}, nil
		}
		return u, drop, nil
	}
	dir, err := os.MkdirTemp("", "onramp-bench-console-")
	if err != nil {
		return "", nil, err
	}
	cfg.DatabaseURL, cfg.DataDir = "", dir
	// The bench measures reads; the seed need not survive a power cut.
	cfg.SQLiteSync = "OFF"
	if keep {
		return dir, func() {}, nil
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// consoleSeed is what the queries pick from.
type consoleSeed struct {
	props      []string // web, app, community
	personIDs  []string
	anonIDs    []string
	emails     []string
	names      []string // "first last" of identified people
	identified int
}

// seedConsole writes n people through the stores in large transactions:
// 30% anonymous visitors, the rest identified with a name, an email, a
// company, a plan; 5% of those with an account; each with 2 to 6 events
// on up to 3 properties over the last 90 days.
func seedConsole(ctx context.Context, a *app, n int) (*consoleSeed, error) {
	s := &consoleSeed{}
	for _, name := range []string{"Website", "Product app", "Community"} {
		p, err := a.properties.Create(ctx, property.CreateParams{Name: name})
		if err != nil {
			return nil, err
		}
		s.props = append(s.props, p.Property.ID)
	}
	rng := rand.New(rand.NewPCG(42, 4242))
	now := time.Now().UTC()
	const chunk = 2000
	start := time.Now()
	for from := 0; from < n; from += chunk {
		var ps []*identity.Person
		var ids []*identity.Identifier
		var evs []*events.Event
		var accs []*auth.Account
		for i := from; i < min(n, from+chunk); i++ {
			created := now.Add(-time.Duration(rng.Int64N(int64(90 * 24 * time.Hour))))
			p := &identity.Person{ID: onramp.NewID("per"), CreatedAt: created, UpdatedAt: created, Traits: json.RawMessage(`{}`)}
			p.RootID = p.ID
			anon := fmt.Sprintf("anon-%d-%x", i, rng.Uint32())
			ids = append(ids, &identity.Identifier{Key: identity.Key{Type: identity.AnonymousID, Value: anon}, PersonID: p.ID, FirstSeenAt: created})
			s.personIDs, s.anonIDs = append(s.personIDs, p.ID), append(s.anonIDs, anon)
			if rng.IntN(10) >= 3 {
				first, last := benchFirstNames[rng.IntN(len(benchFirstNames))], benchLastNames[rng.IntN(len(benchLastNames))]
				company := fmt.Sprintf("company-%d", rng.IntN(benchCompanies))
				email := strings.ToLower(fmt.Sprintf("%s.%s%d@%s.example.com", first[:1], strings.ReplaceAll(last, " ", ""), i, company))
				traits := map[string]any{"email": email, "company": company, "plan": benchPlans[rng.IntN(len(benchPlans))],
					"role": benchRoles[rng.IntN(len(benchRoles))], "country": benchCountries[rng.IntN(len(benchCountries))], "seats": rng.IntN(200) + 1}
				if rng.IntN(2) == 0 {
					traits["name"] = first + " " + last
				} else {
					traits["first_name"], traits["last_name"] = first, last
				}
				p.Traits, _ = json.Marshal(traits)
				p.UserID = fmt.Sprintf("user-%d", i)
				ids = append(ids,
					&identity.Identifier{Key: identity.Key{Type: identity.UserID, Value: p.UserID}, PersonID: p.ID, Verified: true, FirstSeenAt: created},
					&identity.Identifier{Key: identity.Key{Type: identity.Email, Value: email}, PersonID: p.ID, FirstSeenAt: created})
				s.emails, s.names = append(s.emails, email), append(s.names, strings.ToLower(first+" "+last))
				s.identified++
				if rng.IntN(20) == 0 {
					accs = append(accs, &auth.Account{PersonID: p.ID, Subject: onramp.NewID("sub"), Status: auth.AccountActive, PrimaryEmail: email, CreatedAt: created, UpdatedAt: created})
				}
			}
			// Events between first and last seen; the website sees
			// everyone, the app 40%, the community 15%.
			p.LastSeenAt = created
			for k, nev := 0, 2+rng.IntN(5); k < nev; k++ {
				prop := s.props[0]
				if r := rng.IntN(100); r < 15 {
					prop = s.props[2]
				} else if r < 40 {
					prop = s.props[1]
				}
				at := created.Add(time.Duration(rng.Int64N(int64(now.Sub(created)) + 1)))
				if at.After(p.LastSeenAt) {
					p.LastSeenAt = at
				}
				e := &events.Event{PropertyID: prop, MessageID: fmt.Sprintf("seed-%d-%d", i, k), PersonID: p.ID, AnonymousID: anon, UserID: p.UserID,
					Timestamp: at, ReceivedAt: at, Properties: json.RawMessage(`{"path":"/pricing","plan":"team"}`),
					Context: json.RawMessage(`{"ip":"203.0.113.5","locale":"en-GB","page":{"path":"/pricing","url":"https://www.example.com/pricing"}}`)}
				if k%2 == 0 {
					e.Type, e.Name = events.TypePage, "Pricing"
				} else {
					e.Type, e.Event = events.TypeTrack, benchEvents[rng.IntN(len(benchEvents))]
				}
				evs = append(evs, e)
			}
			p.LastSeenAt = p.LastSeenAt.Truncate(time.Minute)
			ps = append(ps, p)
		}
		// Events in received order, as ingest stores them.
		sort.Slice(evs, func(i, j int) bool { return evs[i].ReceivedAt.Before(evs[j].ReceivedAt) })
		err := a.eng.inTx(ctx, func(st store) error {
			if err := st.CreatePersons(ctx, ps); err != nil {
				return err
			}
			if err := st.AddIdentifiers(ctx, ids); err != nil {
				return err
			}
			for _, acc := range accs {
				if err := st.CreateAccount(ctx, acc); err != nil {
					return err
				}
			}
			return st.InsertEvents(ctx, evs)
		})
		if err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
		done := min(n, from+chunk)
		fmt.Fprintf(os.Stderr, "\rseeding %d/%d people (%.0f%%), %.0f/s   ", done, n, 100*float64(done)/float64(n), float64(done)/time.Since(start).Seconds())
	}
	fmt.Fprintln(os.Stderr)
	return s, nil
}

// deepCursors pages through the whole default list 500 at a time and
// keeps the cursors of pages past the first tenth: "a page deep in the
// list" picks among them.
func deepCursors(get func(string) (*httptest.ResponseRecorder, time.Duration)) ([]string, error) {
	var all []string
	next := ""
	for {
		path := "/api/people?limit=500"
		if next != "" {
			path += "&cursor=" + url.QueryEscape(next)
		}
		w, _ := get(path)
		if w.Code != http.StatusOK {
			return nil, fmt.Errorf("page through people: %d %s", w.Code, w.Body.String())
		}
		var page struct {
			Next string `json:"next"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil {
			return nil, err
		}
		if page.Next == "" {
			break
		}
		all, next = append(all, page.Next), page.Next
	}
	if len(all) < 2 {
		return all, nil
	}
	return all[len(all)/10:], nil
}

func consoleQueries(s *consoleSeed, deep []string) []consoleQuery {
	pick := func(rng *rand.Rand, xs []string) string { return xs[rng.IntN(len(xs))] }
	fixed := func(p string) func(*rand.Rand) string { return func(*rand.Rand) string { return p } }
	qs := []consoleQuery{
		{"list (last_seen)", fixed("/api/people")},
		{"sort -last_seen", fixed("/api/people?sort=-last_seen")},
		{"sort first_seen", fixed("/api/people?sort=first_seen")},
		{"sort -first_seen", fixed("/api/people?sort=-first_seen")},
		{"email prefix", func(r *rand.Rand) string {
			return "/api/people?q=" + url.QueryEscape(runePrefix(pick(r, s.emails), 4+r.IntN(6)))
		}},
		{"name prefix", func(r *rand.Rand) string {
			n := pick(r, s.names)
			return "/api/people?q=" + url.QueryEscape(runePrefix(n, 3+r.IntN(len(n)-2)))
		}},
		{"exact identifier", func(r *rand.Rand) string {
			if r.IntN(2) == 0 {
				return "/api/people?q=" + url.QueryEscape(pick(r, s.anonIDs))
			}
			return "/api/people?q=" + url.QueryEscape(pick(r, s.emails))
		}},
		{"trait plan (common)", func(r *rand.Rand) string { return "/api/people?trait=plan:" + pick(r, benchPlans) }},
		{"trait company (rare)", func(r *rand.Rand) string {
			return fmt.Sprintf("/api/people?trait=company:company-%d", r.IntN(benchCompanies))
		}},
		{"property", func(r *rand.Rand) string { return "/api/people?property=" + pick(r, s.props) }},
		{"has_account=true", fixed("/api/people?has_account=true")},
		{"has_account=false", fixed("/api/people?has_account=false")},
		{"name + property + account", func(r *rand.Rand) string {
			n := pick(r, s.names)
			return "/api/people?has_account=false&property=" + s.props[1] + "&q=" + url.QueryEscape(runePrefix(n, 3))
		}},
		{"seen_after 7 days", fixed("/api/people?seen_after=" + url.QueryEscape(time.Now().UTC().Add(-7*24*time.Hour).Format(time.RFC3339)))},
		{"timeline first page", func(r *rand.Rand) string { return "/api/people/" + pick(r, s.personIDs) + "/events" }},
	}
	if len(deep) > 0 {
		qs = append(qs, consoleQuery{"deep page by cursor", func(r *rand.Rand) string {
			return "/api/people?cursor=" + url.QueryEscape(pick(r, deep))
		}})
	}
	return qs
}

// runePrefix is the first n runes of s (all of it when shorter).
func runePrefix(s string, n int) string {
	r := []rune(s)
	return string(r[:min(n, len(r))])
}
