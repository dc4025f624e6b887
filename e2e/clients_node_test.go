package e2e

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// TestClientsNode runs clients/node/segment-clients.mjs: the real
// @segment/analytics-node and @rudderstack/rudder-sdk-node libraries send to
// the binary, and the script checks through the Profile API that every
// message is on the right person exactly once (see clients/node/README.md).
func TestClientsNode(t *testing.T) {
	dir, nodeBin := requireNode(t)
	n := StartNode(t, NodeOptions{})
	prop := n.CreateProperty(t, "node-clients")

	out := runNodeScript(t, dir, nodeBin, "segment-clients.mjs",
		"ONRAMP_URL="+n.URL,
		"ONRAMP_WRITE_KEY="+prop.WriteKey,
		"ONRAMP_SECRET_KEY="+prop.SecretKey,
		"ONRAMP_RUN_ID="+randomID(t),
		"ONRAMP_VERIFY_TIMEOUT_MS=15000",
	)
	t.Logf("segment-clients.mjs: %s checks passed", passedChecks(t, "segment-clients", out))
}

// requireNode returns clients/node and the node binary; it skips the test
// when either is missing, or fails it with ONRAMP_REQUIRE_NODE=1 (CI).
func requireNode(t *testing.T) (dir, nodeBin string) {
	t.Helper()
	dir = filepath.Join(repoRoot, "clients", "node")
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
	return dir, nodeBin
}

// runNodeScript runs a script of clients/node with env added to ours and
// a 90 s limit; a non-zero exit fails the test. It returns the output.
func runNodeScript(t *testing.T, dir, nodeBin, script string, env ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, script)
	cmd.Dir = dir
	cmd.Env = append(baseEnv(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within 90s; output:\n%s", script, out.String())
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("%s failed (exit %d); output:\n%s", script, ee.ExitCode(), out.String())
		}
		t.Fatalf("%s: %v; output:\n%s", script, err, out.String())
	}
	return out.String()
}

// passedChecks reads a script's "<name>: N passed, 0 failed" line. The
// script must have checked something: an exit 0 with no passing checks
// would be a broken harness, not a pass.
func passedChecks(t *testing.T, name, out string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `: (\d+) passed, 0 failed$`).FindStringSubmatch(out)
	if m == nil || m[1] == "0" {
		t.Fatalf("%s exited 0 without a summary of passed checks; output:\n%s", name, out)
	}
	return m[1]
}

// TestOIDCNode runs clients/node/oidc-clients.mjs: the npm openid-client
// library (v6) as a public and a confidential client of the binary's
// OpenID Connect provider (see clients/node/README.md). This test makes
// the account (signed up on the hosted pages, the code read from Mailpit)
// and the clients, and checks afterwards that the logout the script did
// reached the confidential client's back-channel logout endpoint.
func TestOIDCNode(t *testing.T) {
	dir, nodeBin := requireNode(t)
	start := time.Now()
	n, mp := startSSONode(t)
	email := "node-" + randomID(t) + "@example.com"
	const password = "a long node passphrase 7"
	subject := signUp(t, newOIDCBrowser(t, n.URL), mp, email, "Grace Hopper", password)

	bcl := &logoutReceiver{}
	rpSrv := httptest.NewServer(bcl)
	t.Cleanup(rpSrv.Close)
	// The script never loads these: it stops where Onramp sends the
	// browser back, as a browser leaves the site.
	const redirect, afterLogout = "http://app.localhost:3000/callback", "http://app.localhost:3000/logged-out"
	spa := n.CreateClient(t, "node-spa", clientOptions{RedirectURIs: []string{redirect}, Public: true, FirstParty: true})
	app := n.CreateClient(t, "node-app", clientOptions{
		RedirectURIs: []string{redirect}, PostLogoutURIs: []string{afterLogout}, BackchannelURI: rpSrv.URL + "/backchannel-logout", FirstParty: true,
	})
	provider, err := oidc.NewProvider(context.Background(), n.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	bcl.setVerifier(provider.Verifier(&oidc.Config{ClientID: app.ClientID}))
	t.Logf("node, mailpit, account and clients ready in %v", time.Since(start).Round(time.Millisecond))

	out := runNodeScript(t, dir, nodeBin, "oidc-clients.mjs",
		"ONRAMP_URL="+n.URL,
		"ONRAMP_EMAIL="+email,
		"ONRAMP_PASSWORD="+password,
		"ONRAMP_SUBJECT="+subject,
		"ONRAMP_PUBLIC_CLIENT_ID="+spa.ClientID,
		"ONRAMP_CLIENT_ID="+app.ClientID,
		"ONRAMP_CLIENT_SECRET="+app.ClientSecret,
		"ONRAMP_REDIRECT_URI="+redirect,
		"ONRAMP_POST_LOGOUT_URI="+afterLogout,
	)
	t.Logf("oidc-clients.mjs: %s checks passed, %v in all", passedChecks(t, "oidc-clients", out), time.Since(start).Round(time.Millisecond))

	m := regexp.MustCompile(`(?m)^logged-out-session: (ses_\S+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the script did not name the session it logged out; output:\n%s", out)
	}
	if lt := bcl.waitFor(t, m[1], 15*time.Second); lt.Subject != subject {
		t.Errorf("back-channel logout token sub %q, want %q", lt.Subject, subject)
	}
}
