package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBenchAuthRuns keeps onramp bench auth working: each benchmark seeds
// its data into a real server's SQLite database, drives that server over
// loopback with a few requests, and reports without a failure.
func TestBenchAuthRuns(t *testing.T) {
	newCLI(t)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// A cheap hash keeps the sign-in benchmark fast; both sides use it.
	cheap := []string{"--data-dir", dir, "--argon2-memory-kib", "8", "--argon2-time", "1"}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- runServe(ctx, append([]string{"--addr", addr, "--log-level", "error"}, cheap...), io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	url := "http://" + addr
	for i := 0; ; i++ {
		if resp, err := http.Get(url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if i > 100 {
			t.Fatal("the server did not become ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, name := range []string{"exchange", "introspect", "userinfo", "session", "signin", "introspect --client nethttp", "session --pipeline 4"} {
		args := append(append([]string{"bench", "auth"}, strings.Fields(name)...), "--url", url, "--requests", "30", "--concurrency", "2", "--json")
		args = append(args, cheap...)
		if name != "exchange" {
			args = append(args, "--pool", "5")
		}
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 0 {
			t.Fatalf("bench auth %s: exit %d\n%s%s", name, code, out.String(), errOut.String())
		}
		var res benchResult
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("bench auth %s --json: %v\n%s", name, err, out.String())
		}
		if res.Requests != 30 || res.Failed != 0 || res.PerSecond <= 0 || res.P50ms <= 0 || res.Machine.CPUs == 0 {
			t.Errorf("bench auth %s = %+v", name, res)
		}
		if (name == "introspect" || name == "userinfo" || name == "session") && res.Client != "lean" {
			t.Errorf("bench auth %s does not use the lean client by default: %s", name, out.String())
		}
		if name == "signin" && res.Extra["argon2id"] == nil {
			t.Errorf("bench auth signin does not report the argon2 parameters: %s", out.String())
		}
	}
}
