package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/httpapi"
	"github.com/onramp-dev/onramp/inmem"
	"github.com/onramp-dev/onramp/jobs"
	"github.com/onramp-dev/onramp/live"
	"github.com/onramp-dev/onramp/web"
)

func runServe(ctx context.Context, args []string, out io.Writer) error {
	start := time.Now()
	fs, cf := newFlags("serve", "serve [flags]")
	pprofAddr := fs.String("pprof-addr", os.Getenv("ONRAMP_PPROF_ADDR"), "serve Go's profiler (net/http/pprof) on this loopback address, for performance work [ONRAMP_PPROF_ADDR]")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	log := cfg.logger(os.Stderr)
	tuneGC(log)

	if *pprofAddr != "" {
		if err := servePprof(*pprofAddr, log); err != nil {
			return err
		}
	}
	reg := prometheus.NewRegistry()
	metrics := httpapi.NewMetrics(reg)
	bus := inmem.NewBus(log)
	a, err := openApp(ctx, cfg, log, bus, metrics)
	if err != nil {
		return err
	}
	defer a.Close()

	if nt, err := a.tokens.FirstStart(ctx); err != nil {
		return err
	} else if nt != nil {
		fmt.Fprintf(out, "\nFirst start: this owner API token is shown once. Keep it safe.\n\n    %s\n\n  Use it as: curl -H 'Authorization: Bearer %s' %s/api/properties\n\n", nt.Secret, nt.Secret, cfg.PublicURL)
	}
	if err := a.openAccounts(ctx); err != nil {
		return err
	}
	// Until an owner account exists, every start prints a fresh link
	// (which retires the one printed before).
	if link, err := a.accounts.OwnerLink(ctx); err != nil {
		return err
	} else if link != "" {
		fmt.Fprintf(out, "First start: create the owner account at %s\n  (the link works once, for 24 hours; restart to get a new one);\n  it leads into the staff console at %s/admin\n\n", link, cfg.PublicURL)
	}
	outbox, err := a.newOutbox()
	if err != nil {
		return err
	}
	var srv *httpapi.Server
	provider, login, logouts, err := a.openProvider(ctx, func(r *http.Request) string { return srv.SessionIDOf(r) }, func(r *http.Request) auth.RequestInfo { return srv.RequestInfo(r) })
	if err != nil {
		return err
	}
	outbox.Logout = logouts
	// The live feed subscribes before the publisher starts, so it sees
	// everything published from now on.
	hub, err := live.New(live.Config{Bus: bus, Roots: a.identity, Clock: a.clock, Log: log})
	if err != nil {
		return err
	}

	srv = httpapi.New(httpapi.Config{
		Events: a.events, Identity: a.identity, Properties: a.properties, Tokens: a.tokens, Accounts: a.accounts, OAuth: a.oauth, Jobs: a.jobs,
		OIDC: provider, Login: login,
		Log: log, Clock: a.clock, Registry: reg, Metrics: metrics, Assets: web.Assets, TrustProxy: cfg.TrustProxy, PublicURL: cfg.configuredPublicURL,
		Ready: a.eng.ping, Live: hub,
	})
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      10 * time.Minute, // exports stream for a while
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          nil,
	}
	// Live streams never end by themselves: Shutdown would wait for them
	// until its deadline. Closing the hub when it begins ends them.
	hs.RegisterOnShutdown(hub.Close)

	// The committer and the publisher outlive the HTTP server: in-flight
	// requests wait for their commit during shutdown.
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	if a.eng.background != nil {
		wg.Go(func() { a.eng.background(workCtx, log) })
	}
	wg.Go(func() { hub.Run(workCtx) })
	wg.Go(func() { a.oauth.RunUpkeep(workCtx) })
	// The job runner stops with the other workers, after the HTTP server:
	// a job in progress is queued again from its last checkpoint, and the
	// next start (of any node) resumes it.
	wg.Go(func() { a.jobs.NewRunner(jobs.RunnerConfig{}).Run(workCtx) })
	wg.Go(func() { a.events.Run(workCtx) })
	wg.Go(func() { outbox.Run(workCtx) })
	wg.Go(func() {
		if err := a.events.NewPublisher().Run(workCtx); err != nil {
			log.Error("publisher stopped", "err", err)
		}
	})

	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	where := a.eng.name
	if a.eng.name == "sqlite" {
		where += " " + cfg.sqlitePath()
	}
	fmt.Fprintf(out, "Onramp %s ready at %s (listening on %s, %s) in %s\n", version, cfg.PublicURL, ln.Addr(), where, time.Since(start).Round(time.Millisecond))

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		stopWork()
		wg.Wait()
		return fmt.Errorf("http server: %w", err)
	}
	log.Info("shutting down: finishing in-flight requests")
	srv.Drain()
	shutCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("shutdown", "err", err)
	}
	stopWork()
	wg.Wait()
	log.Info("stopped")
	return nil
}

func runMigrate(ctx context.Context, args []string, out io.Writer) error {
	fs, cf := newFlags("migrate", "migrate [flags]")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	eng, err := openEngine(ctx, cfg)
	if err != nil {
		return err
	}
	defer eng.close()
	applied, err := eng.migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintf(out, "%s: schema is up to date\n", eng.name)
	} else {
		fmt.Fprintf(out, "%s: applied migrations %v\n", eng.name, applied)
	}
	return nil
}

// servePprof exposes the profiler on its own listener, never on the public
// address, and only on loopback.
func servePprof(addr string, log *slog.Logger) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("pprof-addr: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("pprof-addr must be a loopback address, not %q", addr)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("pprof: %w", err)
	}
	go func() { _ = http.Serve(ln, mux) }()
	log.Info("profiler listening", "addr", ln.Addr().String())
	return nil
}
