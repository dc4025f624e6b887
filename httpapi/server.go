// Package httpapi is Onramp's HTTP surface: the Segment-compatible
// collection API, the Profile API, the JSON API under /api, health and
// metrics. Handlers stay thin: decode, call a part's Service, encode.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/identity"
	"github.com/onramp-dev/onramp/jobs"
	"github.com/onramp-dev/onramp/live"
	"github.com/onramp-dev/onramp/property"
)

// Config wires a Server.
type Config struct {
	Events     *events.Service
	Identity   *identity.Service
	Properties *property.Service
	Tokens     *auth.Service
	// Jobs runs the console's CSV imports and exports.
	Jobs *jobs.Service
	// Accounts holds the account rules behind the hosted pages and staff
	// sessions on the JSON API.
	Accounts *auth.Accounts
	// Login, if set, finishes OIDC authorization requests after a hosted
	// sign-in (the OIDC provider implements it). Without it, or for a
	// sign-in that was not for an auth request, pages redirect to
	// return_to or /account.
	Login Login
	// OAuth makes each new property's default OpenID Connect client.
	OAuth *auth.OAuth
	// OIDC, if set, is the OpenID Connect provider (oidcop), served at
	// /oauth/ and /.well-known/openid-configuration.
	OIDC  http.Handler
	Log   *slog.Logger
	Clock onramp.Clock
	// Registry receives the server's metrics; /metrics serves it.
	Registry *prometheus.Registry
	// Metrics, if set, were made with NewMetrics on Registry (so ingest
	// can share them); otherwise New makes them.
	Metrics *Metrics
	// Ready reports whether the node can take traffic (database reachable).
	Ready func(ctx context.Context) error
	// Assets holds the browser SDK (sdk/onramp.js) and other static files.
	Assets fs.FS
	// TrustProxy makes X-Forwarded-For and X-Forwarded-Proto count; only
	// set it behind a proxy that overwrites them.
	TrustProxy bool
	// PublicURL, when the operator configured it, is where browsers reach
	// Onramp (https://host[:port]); the settings endpoint then tells
	// analytics.js this rather than what a request's Host header claims.
	// Empty: the request's Host (and X-Forwarded-Proto behind a trusted
	// proxy) are used, and the answer is not cacheable by shared caches.
	PublicURL string
	// Live, if set, feeds GET /api/live; close it when shutdown begins so
	// open streams end (http.Server.RegisterOnShutdown).
	Live *live.Hub
	// LiveHeartbeat spaces the comment lines of an idle live stream
	// (default 15 s).
	LiveHeartbeat time.Duration
}

// Server serves Onramp's HTTP API.
type Server struct {
	Config
	log     *slog.Logger
	mux     *http.ServeMux
	metrics *Metrics
	pages   *pageSet
	console *consoleSet
	// cop is the first CSRF layer of cookie-authenticated unsafe requests.
	cop      *http.CrossOriginProtection
	draining atomic.Bool
	// sdkGz is the SDK compressed once, on first request.
	sdkOnce sync.Once
	sdkGz   []byte
	// timelineBufs holds the *[]byte buffers timeline pages are encoded
	// into (writeTimeline).
	timelineBufs sync.Pool
}

// New returns a Server with every route registered.
func New(cfg Config) *Server {
	s := &Server{Config: cfg, log: cfg.Log, mux: http.NewServeMux(), pages: loadPages(), console: loadConsole(), cop: http.NewCrossOriginProtection()}
	s.metrics = cfg.Metrics
	if s.metrics == nil {
		s.metrics = NewMetrics(cfg.Registry)
	}
	s.routes()
	return s
}

// Drain makes /readyz fail so a load balancer stops sending new traffic
// while in-flight requests finish.
func (s *Server) Drain() { s.draining.Store(true) }

func (s *Server) routes() {
	m := s.mux
	// Collection (Segment-compatible).
	for _, typ := range []string{"track", "identify", "page", "screen", "group", "alias"} {
		h := s.collect(typ)
		m.Handle("POST /v1/"+typ, h)
		m.Handle("POST /v1/"+typ[:1], h)
	}
	m.Handle("POST /v1/batch", s.collect(""))
	m.Handle("POST /v1/b", s.collect(""))
	m.Handle("POST /v1/import", s.collect(""))
	m.HandleFunc("OPTIONS /v1/", s.preflight)
	m.HandleFunc("GET /v1/projects/{writeKey}/settings", s.settings)
	m.HandleFunc("OPTIONS /v1/projects/{writeKey}/settings", s.preflight)
	m.HandleFunc("POST /v1/m", s.clientMetrics)

	// Profile API (secret key).
	m.HandleFunc("GET /v1/profiles/{id}/traits", s.withSecret(s.profileTraits))
	m.HandleFunc("GET /v1/profiles/{id}/identifiers", s.withSecret(s.profileIdentifiers))
	m.HandleFunc("GET /v1/profiles/{id}/external_ids", s.withSecret(s.profileIdentifiers))
	m.HandleFunc("GET /v1/profiles/{id}/events", s.withSecret(s.profileEvents))

	// JSON API (API token).
	m.HandleFunc("GET /api/openapi.json", s.openAPI)
	m.HandleFunc("GET /api/properties", s.withToken(auth.ReadProperties, s.listProperties))
	m.HandleFunc("POST /api/properties", s.withToken(auth.ManageProperties, s.createProperty))
	m.HandleFunc("GET /api/properties/{id}", s.withToken(auth.ReadProperties, s.getProperty))
	m.HandleFunc("PATCH /api/properties/{id}", s.withToken(auth.ManageProperties, s.updateProperty))
	m.HandleFunc("POST /api/properties/{id}/revoke-key", s.withToken(auth.ManageProperties, s.revokeKey))
	m.HandleFunc("GET /api/rejections", s.withToken(auth.ReadProperties, s.listRejections))
	m.HandleFunc("GET /api/people", s.withToken(auth.ReadPeople, s.listPeople))
	m.HandleFunc("GET /api/people/{id}", s.withToken(auth.ReadPeople, s.getPerson))
	m.HandleFunc("GET /api/people/{id}/events", s.withToken(auth.ReadPeople, s.personEvents))
	m.HandleFunc("GET /api/live", s.withToken(auth.ReadPeople, s.liveStream))
	m.HandleFunc("GET /api/people/{id}/merges", s.withToken(auth.ReadPeople, s.personMerges))
	m.HandleFunc("GET /api/people/{id}/export", s.withToken(auth.ReadPeople, s.exportPerson))
	m.HandleFunc("POST /api/people/{id}/merge", s.withToken(auth.WritePeople, s.mergePerson))
	m.HandleFunc("PATCH /api/people/{id}/traits", s.withToken(auth.WritePeople, s.editTraits))
	m.HandleFunc("GET /api/stats/overview", s.withToken(auth.ReadPeople, s.statsOverview))
	m.HandleFunc("POST /api/people/{id}/suppress", s.withToken(auth.WritePeople, s.suppressPerson))
	m.HandleFunc("DELETE /api/people/{id}", s.withToken(auth.WritePeople, s.deletePerson))
	m.HandleFunc("POST /api/merges/{id}/undo", s.withToken(auth.WritePeople, s.undoMerge))
	m.HandleFunc("POST /api/unsuppress", s.withToken(auth.WritePeople, s.unsuppress))
	m.HandleFunc("GET /api/conflicts", s.withToken(auth.ReadPeople, s.listConflicts))
	m.HandleFunc("GET /api/tokens", s.withToken(auth.ManageTokens, s.listTokens))
	m.HandleFunc("POST /api/tokens", s.withToken(auth.ManageTokens, s.createToken))
	m.HandleFunc("DELETE /api/tokens/{id}", s.withToken(auth.ManageTokens, s.revokeToken))
	m.HandleFunc("GET /api/staff", s.withToken(auth.ManageStaff, s.listStaff))
	m.HandleFunc("POST /api/staff", s.withToken(auth.ManageStaff, s.addStaff))
	m.HandleFunc("PATCH /api/staff/{person_id}", s.withToken(auth.ManageStaff, s.setStaffRole))
	m.HandleFunc("DELETE /api/staff/{person_id}", s.withToken(auth.ManageStaff, s.removeStaff))
	m.HandleFunc("GET /api/people/{id}/sessions", s.withToken(auth.RevokeSessions, s.personSessions))
	m.HandleFunc("DELETE /api/sessions/{id}", s.withToken(auth.RevokeSessions, s.revokeSession))
	m.HandleFunc("GET /api/auth/session", s.withToken(anyPrincipal, s.whoAmI))
	m.HandleFunc("GET /api/audit", s.withToken(auth.ReadAudit, s.listAudit))
	m.HandleFunc("GET /api/auth/settings", s.withToken(auth.ManageAuthSettings, s.getAuthSettings))
	m.HandleFunc("PUT /api/auth/settings", s.withToken(auth.ManageAuthSettings, s.putAuthSettings))
	s.jobRoutes(m)
	m.HandleFunc("/api", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, onramp.Errorf(onramp.ENOTFOUND, "No API endpoint %s %s; the API is described at /api/openapi.json.", r.Method, r.URL.Path))
	})
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		if s.wrongMethod(w, r) {
			return
		}
		s.writeError(w, r, onramp.Errorf(onramp.ENOTFOUND, "No API endpoint %s %s.", r.Method, r.URL.Path))
	})

	// Hosted sign-in and account pages.
	s.authPageRoutes(m)
	s.upstreamRoutes(m)
	s.oidcPageRoutes(m)
	s.mfaPageRoutes(m)
	s.headlessRoutes(m)
	// The staff console.
	s.consoleRoutes(m)
	// OpenID Connect provider. Registered whether or not one is
	// configured, so the routes (and their documentation) do not depend
	// on configuration.
	m.HandleFunc("/oauth/", s.oidc)
	m.HandleFunc("GET /.well-known/openid-configuration", s.oidc)

	// Operations.
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	m.HandleFunc("GET /readyz", s.readyz)
	m.Handle("GET /metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{Registry: s.Registry}))
	m.HandleFunc("GET /sdk/onramp.js", s.sdk)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" && r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprintln(w, "Onramp is running. API: /api/openapi.json  SDK: /sdk/onramp.js  Health: /healthz")
			return
		}
		if s.wrongMethod(w, r) {
			return
		}
		s.writeError(w, r, onramp.Errorf(onramp.ENOTFOUND, "Nothing at %s %s.", r.Method, r.URL.Path))
	})
}

// oidc hands a request to the OpenID Connect provider. The provider
// answers in OAuth's own error format, not with problem documents.
func (s *Server) oidc(w http.ResponseWriter, r *http.Request) {
	if s.OIDC == nil {
		s.writeError(w, r, onramp.Errorf(onramp.ENOTFOUND, "The OpenID Connect provider is not configured on this server."))
		return
	}
	s.OIDC.ServeHTTP(w, r)
}

// wrongMethod answers 405 with an Allow header when the path exists for
// other methods. The catch-all routes would otherwise turn a wrong method
// into a misleading 404.
func (s *Server) wrongMethod(w http.ResponseWriter, r *http.Request) bool {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" && pattern != "/api/" && pattern != "/api" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) == 0 {
		return false
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	s.writeError(w, r, onramp.Errorf(EMETHOD, "%s is not allowed on %s; use %s.", r.Method, r.URL.Path, strings.Join(allowed, " or ")))
	return true
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		s.writeError(w, r, onramp.Errorf(onramp.EUNAVAILABLE, "Shutting down."))
		return
	}
	if s.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.Ready(ctx); err != nil {
			s.log.Warn("not ready", "err", err)
			s.writeError(w, r, onramp.Errorf(onramp.EUNAVAILABLE, "The database does not answer."))
			return
		}
	}
	writeJSON(w, 200, map[string]string{"status": "ready"})
}

// ServeHTTP adds request ids, security headers, panic recovery, metrics
// and logging around every route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := r.Header.Get("X-Request-Id")
	if id == "" || len(id) > 64 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	ctx := context.WithValue(r.Context(), requestIDKey{}, id)
	r = r.WithContext(ctx)
	w.Header().Set("X-Request-Id", id)
	sw := &statusWriter{ResponseWriter: w, status: 200}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.ErrorContext(ctx, "panic", "panic", v, "stack", string(debug.Stack()), "request_id", id)
			if !sw.wrote {
				s.writeError(sw, r, errors.New("panic"))
			}
		}
		// The mux sets the pattern it routed by on r; asking it again
		// here was a second routing per request.
		d := time.Since(start)
		s.metrics.requestObserver(routeLabel(r.Pattern), sw.status).Observe(d.Seconds())
		if s.log.Enabled(ctx, slog.LevelDebug) {
			s.log.DebugContext(ctx, "request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "duration", d, "request_id", id)
		}
	}()
	s.mux.ServeHTTP(sw, r)
}

func routeLabel(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	return pattern
}

type requestIDKey struct{}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (deadlines of
// the live stream).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// clientIP is the address of the caller, from the proxy header only when
// the operator said a proxy sets it.
func (s *Server) clientIP(r *http.Request) string {
	if s.TrustProxy {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			first, _, _ := strings.Cut(xff, ",")
			if ip := net.ParseIP(strings.TrimSpace(first)); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) sdk(w http.ResponseWriter, r *http.Request) {
	b, err := fs.ReadFile(s.Assets, "sdk/onramp.js")
	if err != nil {
		s.writeError(w, r, onramp.Errorf(onramp.ENOTFOUND, "The SDK is not built into this binary."))
		return
	}
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		if gz := s.gzippedSDK(b); gz != nil {
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Set("Vary", "Accept-Encoding")
			_, _ = w.Write(gz)
			return
		}
	}
	_, _ = w.Write(b)
}
