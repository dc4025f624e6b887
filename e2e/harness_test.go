// Package e2e runs the real onramp binary as a subprocess and drives it
// through its public surfaces only: the CLI, the collection API and the
// Profile API. Nothing here imports the product's packages.
//
// TestMain builds ./cmd/onramp once. Settings:
//
//	ONRAMP_E2E_BIN=path   use this binary instead (e.g. one built from another commit)
//	ONRAMP_E2E_RACE=1     build the server with the race detector (slow: minutes)
//	ONRAMP_REQUIRE_NODE=1 fail instead of skip when clients/node is not installed
package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// onrampBin is the binary built once by TestMain (or ONRAMP_E2E_BIN).
var onrampBin string

// repoRoot is the module root (the parent of e2e/).
var repoRoot string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	repoRoot = filepath.Dir(wd)
	if bin := os.Getenv("ONRAMP_E2E_BIN"); bin != "" {
		// A binary built elsewhere, e.g. from another commit to bisect.
		onrampBin = bin
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "onramp-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	onrampBin = filepath.Join(dir, "onramp")
	args := []string{"build", "-o", onrampBin}
	if os.Getenv("ONRAMP_E2E_RACE") == "1" {
		// The server is where the concurrency is. A race-built server is
		// 10-50x slower (the pure-Go SQLite above all), so the whole
		// package takes several minutes: opt in when hunting races.
		args = append(args, "-race")
	}
	args = append(args, "./cmd/onramp")
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: go build ./cmd/onramp:", err)
		return 1
	}
	return m.Run()
}

// NodeOptions configure StartNode.
type NodeOptions struct {
	// DataDir is the data folder; "" means a new t.TempDir().
	DataDir string
	// Env is extra KEY=VALUE settings for the server process.
	Env []string
	// PublicHost, if set, is the host name browsers reach the node at
	// (with its port), such as "localhost": a second node on another host
	// name than 127.0.0.1 keeps its cookies apart, as two sites do.
	PublicHost string
}

// Node is one running `onramp serve`.
type Node struct {
	URL     string
	DataDir string
	Addr    string // host:port

	env    []string // the process environment (also used by CLI)
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // Wait's result, valid after done
}

// syncBuffer is a bytes.Buffer safe for the process's writer goroutine and
// the test reading it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// baseEnv is the environment of every onramp process: ours without any
// ONRAMP_ setting that could leak in from the developer's shell.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ONRAMP_") {
			env = append(env, kv)
		}
	}
	return env
}

// freeAddr finds a free loopback port. The port is released before the
// server binds it, so another process could in theory take it: StartNode
// retries once on a bind failure.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// StartNode starts `onramp serve` on a free loopback port and waits until
// /readyz answers 200. The node is stopped when the test ends.
func StartNode(t *testing.T, opts NodeOptions) *Node {
	t.Helper()
	dataDir := opts.DataDir
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		n, err := startNode(t, dataDir, opts.Env, opts.PublicHost)
		if err == nil {
			return n
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatalf("start onramp: %v", lastErr)
	return nil
}

func startNode(t *testing.T, dataDir string, extra []string, publicHost string) (*Node, error) {
	t.Helper()
	addr := freeAddr(t)
	public := "http://" + addr
	if publicHost != "" {
		_, port, _ := net.SplitHostPort(addr)
		public = "http://" + net.JoinHostPort(publicHost, port)
		extra = append(extra, "ONRAMP_PUBLIC_URL="+public)
	}
	n := &Node{
		URL:     public,
		DataDir: dataDir,
		Addr:    addr,
		stdout:  &syncBuffer{},
		stderr:  &syncBuffer{},
		done:    make(chan struct{}),
	}
	n.env = append(baseEnv(), "ONRAMP_DATA_DIR="+dataDir, "ONRAMP_ADDR="+addr)
	n.env = append(n.env, extra...)
	n.cmd = exec.Command(onrampBin, "serve")
	n.cmd.Env = n.env
	n.cmd.Stdout = n.stdout
	n.cmd.Stderr = n.stderr
	if err := n.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		n.err = n.cmd.Wait()
		close(n.done)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("onramp at %s: stdout:\n%s\nstderr:\n%s", n.Addr, n.stdout.String(), n.stderr.String())
		}
		n.terminate(t)
	})

	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-n.done:
			return nil, fmt.Errorf("onramp serve exited before it was ready (%v); stderr:\n%s", n.err, n.stderr.String())
		default:
		}
		resp, err := client.Get(n.URL + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return n, nil
			}
		}
		if time.Now().After(deadline) {
			n.kill()
			return nil, fmt.Errorf("onramp at %s not ready within 15s (last: %v); stderr:\n%s", addr, err, n.stderr.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// exited reports whether the process has ended.
func (n *Node) exited() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

func (n *Node) kill() {
	if n.exited() {
		return
	}
	_ = n.cmd.Process.Kill()
	<-n.done
}

// terminate is the cleanup: SIGTERM, then SIGKILL after 10 s. A node that
// exits uncleanly or reported a data race fails the test.
func (n *Node) terminate(t *testing.T) {
	defer func() {
		if strings.Contains(n.stderr.String(), "WARNING: DATA RACE") {
			t.Errorf("onramp at %s reported a data race; stderr:\n%s", n.Addr, n.stderr.String())
		}
	}()
	if n.exited() {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
		if n.err != nil {
			t.Errorf("onramp at %s exited uncleanly after SIGTERM: %v; stderr:\n%s", n.Addr, n.err, n.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Errorf("onramp at %s did not stop within 10s of SIGTERM; killing it", n.Addr)
		n.kill()
	}
}

// Kill crashes the node: SIGKILL, and waits for it to be gone.
func (n *Node) Kill(t *testing.T) {
	t.Helper()
	n.kill()
}

// Stop asks the node to shut down (SIGTERM) and asserts a clean exit.
func (n *Node) Stop(t *testing.T) {
	t.Helper()
	n.signalTerm(t)
	n.waitCleanExit(t, 30*time.Second)
}

// signalTerm sends SIGTERM to a running node.
func (n *Node) signalTerm(t *testing.T) {
	t.Helper()
	if n.exited() {
		t.Fatalf("onramp at %s had already exited (%v); stderr:\n%s", n.Addr, n.err, n.stderr.String())
	}
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
}

// waitCleanExit waits for the process to end and asserts exit code 0.
func (n *Node) waitCleanExit(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-n.done:
	case <-time.After(timeout):
		n.kill()
		t.Fatalf("onramp at %s did not stop within %s of SIGTERM; stderr:\n%s", n.Addr, timeout, n.stderr.String())
	}
	if n.err != nil {
		t.Fatalf("onramp at %s exited uncleanly after SIGTERM: %v; stderr:\n%s", n.Addr, n.err, n.stderr.String())
	}
}

// Stdout is what the server printed so far.
func (n *Node) Stdout() string { return n.stdout.String() }

// Stderr is what the server logged so far.
func (n *Node) Stderr() string { return n.stderr.String() }

// CLI runs an onramp command on the node's data folder and returns its
// stdout; a non-zero exit fails the test.
func (n *Node) CLI(t *testing.T, args ...string) []byte {
	t.Helper()
	out, errOut, err := runCLI(n.env, args...)
	if err != nil {
		t.Fatalf("onramp %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// runCLI runs the binary with env and a 60 s limit.
func runCLI(env []string, args ...string) (stdout, stderr []byte, err error) {
	cmd := exec.Command(onrampBin, args...)
	cmd.Env = env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		err = errors.New("timed out after 60s")
	}
	return o.Bytes(), e.Bytes(), err
}

// Property is a web property with its keys.
type Property struct {
	ID, Name, WriteKey, SecretKey string
}

// CreateProperty adds a property through the CLI.
func (n *Node) CreateProperty(t *testing.T, name string, origins ...string) Property {
	t.Helper()
	args := []string{"property", "create", "--name", name, "--json"}
	for _, o := range origins {
		args = append(args, "--origin", o)
	}
	out := n.CLI(t, args...)
	var p struct {
		ID        string `json:"id"`
		Name      string `json:"name"`
		WriteKey  string `json:"write_key"`
		SecretKey string `json:"secret_key"`
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("property create --json printed %q: %v", out, err)
	}
	if p.ID == "" || p.WriteKey == "" || p.SecretKey == "" {
		t.Fatalf("property create --json printed incomplete property: %s", out)
	}
	return Property{ID: p.ID, Name: p.Name, WriteKey: p.WriteKey, SecretKey: p.SecretKey}
}

// OwnerToken makes an owner API token through the CLI.
func (n *Node) OwnerToken(t *testing.T) string {
	t.Helper()
	out := n.CLI(t, "token", "create", "--json")
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(out, &tok); err != nil || tok.Token == "" {
		t.Fatalf("token create --json printed %q: %v", out, err)
	}
	return tok.Token
}

var apiClient = &http.Client{Timeout: 30 * time.Second}

// getJSON GETs path with the secret key as Basic auth user and decodes the
// answer into v. It returns the status; on 404 v is left alone.
func (n *Node) getJSON(t *testing.T, secretKey, path string, v any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, n.URL+path, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	req.SetBasicAuth(secretKey, "")
	resp, err := apiClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return resp.StatusCode
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", path, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: decode %q: %v", path, body, err)
	}
	return resp.StatusCode
}

// Timeline returns every event of a profile ("user_id:u1"), newest first,
// following the cursor; nil when the profile does not exist.
func (n *Node) Timeline(t *testing.T, secretKey, profile string) []map[string]any {
	t.Helper()
	base := "/v1/profiles/" + url.PathEscape(profile) + "/events?limit=1000"
	var all []map[string]any
	cursor := ""
	for page := 0; ; page++ {
		if page > 10000 {
			t.Fatalf("timeline %s: more than 10000 pages; the cursor does not advance", profile)
		}
		path := base
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		var resp struct {
			Data   []map[string]any `json:"data"`
			Cursor struct {
				HasMore bool   `json:"has_more"`
				Next    string `json:"next"`
			} `json:"cursor"`
		}
		if n.getJSON(t, secretKey, path, &resp) == http.StatusNotFound {
			if page == 0 {
				return nil
			}
			t.Fatalf("timeline %s: 404 on page %d", profile, page+1)
		}
		if all == nil {
			all = []map[string]any{}
		}
		all = append(all, resp.Data...)
		if resp.Cursor.Next == "" || !resp.Cursor.HasMore {
			return all
		}
		if resp.Cursor.Next == cursor {
			t.Fatalf("timeline %s: cursor did not advance (%q)", profile, cursor)
		}
		cursor = resp.Cursor.Next
	}
}

// Traits returns a profile's traits; nil when the profile does not exist.
func (n *Node) Traits(t *testing.T, secretKey, profile string) map[string]any {
	t.Helper()
	var resp struct {
		Traits map[string]any `json:"traits"`
	}
	if n.getJSON(t, secretKey, "/v1/profiles/"+url.PathEscape(profile)+"/traits", &resp) == http.StatusNotFound {
		return nil
	}
	if resp.Traits == nil {
		resp.Traits = map[string]any{}
	}
	return resp.Traits
}

// Eventually polls cond every 50 ms until it holds or timeout passes, then
// fails the test with cond's last message.
func Eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %s: %s", timeout, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// messageIDs returns the message_id of each event.
func messageIDs(evs []map[string]any) []string {
	ids := make([]string, 0, len(evs))
	for _, e := range evs {
		id, _ := e["message_id"].(string)
		ids = append(ids, id)
	}
	return ids
}
