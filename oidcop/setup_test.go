package oidcop_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/identity"
	"github.com/onramp-dev/onramp/oidcop"
	"github.com/onramp-dev/onramp/property"
	"github.com/onramp-dev/onramp/sqlite"
)

// accounts implements oidcop.Accounts over a real identity store: the
// subject is the person id and claims come from the person's traits and
// identifiers. Sessions are a map, as the account store is not this
// package's.
type accounts struct {
	ids *identity.Service

	mu       sync.Mutex
	sessions map[string]string // live session id → subject
	ended    []oidcop.EndSession
}

func (a *accounts) Claimant(ctx context.Context, subject string) (*auth.Claimant, error) {
	p, err := a.ids.Person(ctx, subject)
	if err != nil {
		return nil, err
	}
	c := &auth.Claimant{Subject: subject, Traits: p.Person.Traits}
	for _, id := range p.Identifiers {
		switch id.Type {
		case identity.Email:
			c.Email, c.EmailVerified = id.Value, id.Verified
		case identity.Phone:
			c.Phone, c.PhoneVerified = id.Value, id.Verified
		}
	}
	return c, nil
}

func (a *accounts) SessionActive(_ context.Context, sessionID, subject string) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sessions[sessionID] == subject, nil
}

func (a *accounts) EndSession(_ context.Context, e oidcop.EndSession) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.sessions, e.SessionID)
	a.ended = append(a.ended, e)
	return nil
}

func (a *accounts) startSession(subject string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	sid := onramp.NewID("ses")
	a.sessions[sid] = subject
	return sid
}

func (a *accounts) endedSessions() []oidcop.EndSession {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]oidcop.EndSession(nil), a.ended...)
}

// world is the real provider over a real SQLite store behind an httptest
// server, with a stand-in sign-in page that signs in whoever the test
// names.
type world struct {
	t        testing.TB
	ctx      context.Context
	db       *sqlite.DB
	oauth    *auth.OAuth
	provider *oidcop.Provider
	accounts *accounts
	srv      *httptest.Server
	mux      *http.ServeMux
	issuer   string
	// person is a person with traits, a verified email and a phone.
	person string
	// signIn is who the sign-in page signs in next (a subject and a
	// session); set by login.
	mu      sync.Mutex
	subject string
	session string
}

type worldOptions struct {
	sync string // SQLite synchronous pragma; default NORMAL
	// sessionCookie, if set, names the cookie the provider reads the
	// browser's session from (Config.SessionOf).
	sessionCookie string
}

func newWorld(t testing.TB, opt worldOptions) *world {
	t.Helper()
	if opt.sync == "" {
		opt.sync = "NORMAL"
	}
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "onramp.db"), sqlite.Options{Synchronous: opt.sync})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	clock := onramp.SystemClock{}
	ids := identity.NewService(db.Reader(), func(ctx context.Context, fn func(identity.Store) error) error {
		return db.InTx(ctx, func(q *sqlite.Queries) error { return fn(q) })
	}, clock, log)
	props := property.NewService(db.Writer(), db.Reader(), clock, log)

	w := &world{t: t, ctx: ctx, db: db, accounts: &accounts{ids: ids, sessions: map[string]string{}}}
	mux := http.NewServeMux()
	w.srv = httptest.NewServer(mux)
	t.Cleanup(w.srv.Close)
	w.issuer = w.srv.URL

	w.oauth, err = auth.NewOAuth(auth.OAuthConfig{
		Read: db.Reader(),
		InTx: func(ctx context.Context, fn func(auth.OAuthTxStore) error) error {
			return db.InTx(ctx, func(q *sqlite.Queries) error { return fn(q) })
		},
		IsRetryable: sqlite.IsRetryable, Properties: props, Clock: clock, Log: log, Issuer: w.issuer,
	})
	if err != nil {
		t.Fatal(err)
	}
	var key [32]byte
	_, _ = rand.Read(key[:])
	cfg := oidcop.Config{OAuth: w.oauth, Properties: props, Accounts: w.accounts, Log: log, CryptoKey: key, CryptoKeyID: "k1", Ping: db.Ping}
	if opt.sessionCookie != "" {
		cfg.SessionOf = func(r *http.Request) string {
			if c, err := r.Cookie(opt.sessionCookie); err == nil {
				return c.Value
			}
			return ""
		}
	}
	w.provider, err = oidcop.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/oauth/", w.provider)
	mux.Handle("/.well-known/openid-configuration", w.provider)
	mux.HandleFunc("GET /auth/sign-in", w.signInPage)
	w.mux = mux

	w.person = w.makePerson(ids)
	return w
}

// makePerson stores a person as identity does, with a verified email.
func (w *world) makePerson(ids *identity.Service) string {
	w.t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	id := onramp.NewID("per")
	traits := json.RawMessage(`{"firstName":"Ada","lastName":"Lovelace","avatar":"https://img.example/ada.png",
		"company":{"name":"Analytical Engines <Ltd>","size":12},"plan":"pro"}`)
	err := w.db.InTx(w.ctx, func(q *sqlite.Queries) error {
		if err := q.CreatePersons(w.ctx, []*identity.Person{{ID: id, RootID: id, Traits: traits, CreatedAt: now, UpdatedAt: now, LastSeenAt: now}}); err != nil {
			return err
		}
		return q.AddIdentifiers(w.ctx, []*identity.Identifier{
			{Key: identity.Key{Type: identity.Email, Value: "ada@example.com"}, PersonID: id, Verified: true, FirstSeenAt: now},
			{Key: identity.Key{Type: identity.Phone, Value: "+442079460000"}, PersonID: id, FirstSeenAt: now},
		})
	})
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := ids.Person(w.ctx, id); err != nil {
		w.t.Fatal(err)
	}
	return id
}

// signInPage stands in for the hosted sign-in: it signs in the person the
// test chose and finishes the request.
func (w *world) signInPage(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	sub, sid := w.subject, w.session
	w.mu.Unlock()
	err := w.provider.FinishAuthRequest(r.Context(), rw, r, r.URL.Query().Get("authRequest"), oidcop.SessionGrant{Subject: sub, SessionID: sid, AMR: []string{"pwd"}})
	if err != nil {
		http.Error(rw, onramp.ErrorMessage(err), http.StatusForbidden)
	}
}

// signInAs makes the sign-in page sign in subject with a new session and
// returns the session id.
func (w *world) signInAs(subject string) string {
	sid := w.accounts.startSession(subject)
	w.mu.Lock()
	w.subject, w.session = subject, sid
	w.mu.Unlock()
	return sid
}

type clientParams = auth.ClientParams

// property makes a property whose client redirects to the given URIs.
func (w *world) property(name string, p clientParams) *auth.PropertyCreated {
	w.t.Helper()
	pc, err := w.oauth.CreateProperty(w.ctx, auth.CreatePropertyParams{
		Property: property.CreateParams{Name: name, Origins: []string{"https://" + name + ".example.com"}}, Client: p,
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return pc
}

// browser follows redirects on the provider's own host and stops at the
// first one that leaves it (to a relying party).
func (w *world) browser() *http.Client {
	return &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != strings.TrimPrefix(w.issuer, "http://") {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

// authorize runs an authorization request through sign-in and returns the
// final response: a redirect to the relying party, or an error page.
func (w *world) authorize(authURL string) *http.Response {
	w.t.Helper()
	resp, err := w.browser().Get(authURL)
	if err != nil {
		w.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// codeFrom returns the code and state of a redirect to the relying party.
func (w *world) codeFrom(resp *http.Response) (code, state string) {
	w.t.Helper()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		w.t.Fatalf("authorize ended with %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	q := loc.Query()
	if q.Get("error") != "" {
		w.t.Fatalf("authorize error %s: %s", q.Get("error"), q.Get("error_description"))
	}
	return q.Get("code"), q.Get("state")
}

// form posts a form to the provider, with basic auth when user is set.
func (w *world) form(path, user, pass string, v url.Values) (int, map[string]any) {
	w.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, w.issuer+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if len(b) > 0 && json.Unmarshal(b, &out) != nil {
		out = map[string]any{"_raw": string(b)}
	}
	return resp.StatusCode, out
}

// introspect asks whether token is active, as client.
func (w *world) introspect(c *auth.PropertyCreated, token string) map[string]any {
	w.t.Helper()
	status, out := w.form(oidcop.IntrospectPath, c.Client.ID, c.Client.Secret, url.Values{"token": {token}})
	if status != http.StatusOK {
		w.t.Fatalf("introspect = %d %v", status, out)
	}
	return out
}

func active(m map[string]any) bool { return m["active"] == true }

// TestMain quiets op, which logs every refused request through slog's
// default logger.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}
