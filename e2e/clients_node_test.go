package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// TestClientsNode runs clients/node/segment-clients.mjs: the real
// @segment/analytics-node and @rudderstack/rudder-sdk-node libraries send to
// the binary, and the script checks through the Profile API that every
// message is on the right person exactly once (see clients/node/README.md).
func TestClientsNode(t *testing.T) {
	dir := filepath.Join(repoRoot, "clients", "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
		msg := "clients/node/node_modules is missing: run `cd clients/node && npm ci` to run the Node client tests"
		if os.Getenv("ONRAMP_REQUIRE_NODE") == "1" {
			t.Fatal(msg + " (ONRAMP_REQUIRE_NODE=1 makes this a failure)")
		}
		t.Skip(msg)
	}
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("ONRAMP_REQUIRE_NODE") == "1" {
			t.Fatal("node is not on PATH (ONRAMP_REQUIRE_NODE=1)")
		}
		t.Skip("node is not on PATH")
	}

	n := StartNode(t, NodeOptions{})
	prop := n.CreateProperty(t, "node-clients")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, "segment-clients.mjs")
	cmd.Dir = dir
	cmd.Env = append(baseEnv(),
		"ONRAMP_URL="+n.URL,
		"ONRAMP_WRITE_KEY="+prop.WriteKey,
		"ONRAMP_SECRET_KEY="+prop.SecretKey,
		"ONRAMP_RUN_ID="+randomID(t),
		"ONRAMP_VERIFY_TIMEOUT_MS=15000",
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("segment-clients.mjs did not finish within 90s; output:\n%s", out.String())
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("segment-clients.mjs failed (exit %d); output:\n%s", ee.ExitCode(), out.String())
		}
		t.Fatalf("segment-clients.mjs: %v; output:\n%s", err, out.String())
	}
	// The script must have checked something: an exit 0 with no passing
	// checks would be a broken harness, not a pass.
	m := regexp.MustCompile(`segment-clients: (\d+) passed, 0 failed`).FindStringSubmatch(out.String())
	if m == nil || m[1] == "0" {
		t.Fatalf("segment-clients.mjs exited 0 without a summary of passed checks; output:\n%s", out.String())
	}
	t.Logf("segment-clients.mjs: %s checks passed", m[1])
}
