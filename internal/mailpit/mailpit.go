// Package mailpit runs a real Mailpit (github.com/axllent/mailpit) SMTP
// server for tests and reads what it received through its HTTP API.
//
// Without the mailpit binary tests skip, unless ONRAMP_REQUIRE_MAILPIT=1,
// which CI sets so that email tests can never be skipped silently there.
// Install it with: go install github.com/axllent/mailpit@v1.33.1
package mailpit

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvRequire names the variable that turns a missing mailpit from a skip
// into a failure.
const EnvRequire = "ONRAMP_REQUIRE_MAILPIT"

// TLS says how the SMTP port is encrypted.
type TLS int

const (
	// NoTLS offers no STARTTLS: plain SMTP, like the TESTING.md recipe.
	NoTLS TLS = iota
	// STARTTLS offers STARTTLS with a self-signed certificate, optional
	// for clients.
	STARTTLS
	// RequireSTARTTLS refuses mail until the client did STARTTLS.
	RequireSTARTTLS
	// ImplicitTLS speaks TLS from the first byte (smtps).
	ImplicitTLS
)

// Options are what StartWith can vary. The zero value is Start's setup.
type Options struct {
	TLS TLS
	// Chaos enables SetChaos (mailpit --enable-chaos).
	Chaos bool
	// Users, when set, makes the server accept only these user names and
	// passwords (no whitespace in either); otherwise any credentials, or
	// none, are accepted.
	Users map[string]string
	// AllowedRecipients, when set, is a regular expression; mailpit answers
	// other recipients with 550.
	AllowedRecipients string
}

// Server is a running mailpit, killed when the test ends.
type Server struct {
	smtpAddr string
	apiURL   string
	opts     Options
	roots    *x509.CertPool
	http     *http.Client
}

// Start runs mailpit as TESTING.md describes: plain SMTP, any credentials
// accepted.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith runs mailpit on free loopback ports with opts and waits until
// both its SMTP and HTTP ports answer.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := findBinary()
	if err != nil {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%s=1 but %v", EnvRequire, err)
		}
		t.Skipf("email test skipped: %v (go install github.com/axllent/mailpit@v1.33.1, or set %s=1 to fail instead)", err, EnvRequire)
	}
	dir := t.TempDir()
	s := &Server{opts: opts, http: &http.Client{Timeout: 10 * time.Second}}
	var extra []string
	if opts.TLS != NoTLS {
		certFile, keyFile, roots, err := selfSigned(dir)
		if err != nil {
			t.Fatalf("mailpit: certificate: %v", err)
		}
		s.roots = roots
		extra = append(extra, "--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile)
		switch opts.TLS {
		case RequireSTARTTLS:
			extra = append(extra, "--smtp-require-starttls")
		case ImplicitTLS:
			extra = append(extra, "--smtp-require-tls")
		}
	}
	if len(opts.Users) > 0 {
		var b strings.Builder
		for user, pass := range opts.Users {
			fmt.Fprintf(&b, "%s:%s\n", user, pass)
		}
		file := filepath.Join(dir, "smtp-users")
		if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
			t.Fatalf("mailpit: %v", err)
		}
		extra = append(extra, "--smtp-auth-file", file)
	} else {
		extra = append(extra, "--smtp-auth-accept-any")
	}
	// Mailpit refuses plain-text passwords without TLS, and refuses this
	// flag together with required TLS.
	if opts.TLS == NoTLS || opts.TLS == STARTTLS {
		extra = append(extra, "--smtp-auth-allow-insecure")
	}
	if opts.Chaos {
		extra = append(extra, "--enable-chaos")
	}
	if opts.AllowedRecipients != "" {
		extra = append(extra, "--smtp-allowed-recipients", opts.AllowedRecipients)
	}

	// Free ports are found by binding and releasing them, so another
	// process can take one before mailpit binds it; then mailpit exits and
	// we try again with new ports.
	var lastErr error
	for try := 0; try < 3; try++ {
		if lastErr = s.start(t, bin, dir, extra); lastErr == nil {
			return s
		}
	}
	t.Fatalf("mailpit: %v", lastErr)
	return nil
}

func (s *Server) start(t testing.TB, bin, dir string, extra []string) error {
	smtpPort, err := freePort()
	if err != nil {
		return err
	}
	httpPort, err := freePort()
	if err != nil {
		return err
	}
	s.smtpAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(smtpPort))
	httpAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort))
	s.apiURL = "http://" + httpAddr

	args := append([]string{
		"--smtp", s.smtpAddr,
		"--listen", httpAddr,
		// Its own database in the test's folder, so nothing outlives a
		// killed process.
		"--database", filepath.Join(dir, fmt.Sprintf("mailpit-%d.db", smtpPort)),
		// No lookups of anything off this machine.
		"--disable-version-check",
		"--smtp-disable-rdns",
	}, extra...)
	cmd := exec.Command(bin, args...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if s.ready(ctx) {
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("mailpit exited before it was ready:\n%s", out.String())
		case <-ctx.Done():
			stop()
			return fmt.Errorf("mailpit not ready after 30s:\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("mailpit output:\n%s", out.String())
		}
	})
	return nil
}

func (s *Server) ready(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.apiURL+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.smtpAddr)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// SMTPAddr is host:port of the SMTP listener.
func (s *Server) SMTPAddr() string { return s.smtpAddr }

// SMTPURL is the URL smtpmail.Config takes: smtps:// for ImplicitTLS,
// smtp:// otherwise.
func (s *Server) SMTPURL() string {
	if s.opts.TLS == ImplicitTLS {
		return "smtps://" + s.smtpAddr
	}
	return "smtp://" + s.smtpAddr
}

// APIURL is the base URL of the web UI and HTTP API.
func (s *Server) APIURL() string { return s.apiURL }

// TLSConfig trusts the server's self-signed certificate; nil when it has
// none.
func (s *Server) TLSConfig() *tls.Config {
	if s.roots == nil {
		return nil
	}
	return &tls.Config{RootCAs: s.roots, MinVersion: tls.VersionTLS12}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// findBinary looks in PATH, then where go install puts binaries, because a
// developer's shell often lacks $(go env GOPATH)/bin.
func findBinary() (string, error) {
	if p, err := exec.LookPath("mailpit"); err == nil {
		return p, nil
	}
	var dirs []string
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		// One line each, GOBIN's empty when unset: trimming the whole
		// output would shift GOPATH into its place.
		gobin, gopath, _ := strings.Cut(string(out), "\n")
		if gobin = strings.TrimSpace(gobin); gobin != "" {
			dirs = append(dirs, gobin)
		}
		for _, p := range filepath.SplitList(strings.TrimSpace(gopath)) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	for _, d := range slices.Compact(dirs) {
		p := filepath.Join(d, "mailpit")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("mailpit not found in PATH nor in %s", strings.Join(dirs, ", "))
}

// lockedBuffer collects mailpit's output, written by exec's copying
// goroutine and read by the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
