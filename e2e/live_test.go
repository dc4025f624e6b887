package e2e

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeLiveStreamAndShutdown: on the real binary, an ingested event
// reaches an open GET /api/live stream, and SIGTERM ends the stream and
// the process promptly instead of waiting out the shutdown deadline.
func TestServeLiveStreamAndShutdown(t *testing.T) {
	n := StartNode(t, NodeOptions{})
	p := n.CreateProperty(t, "live")
	token := n.OwnerToken(t)

	req, _ := http.NewRequest(http.MethodGet, n.URL+"/api/live", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/live: %d", resp.StatusCode)
	}
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		br := bufio.NewReader(resp.Body)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			lines <- strings.TrimSpace(l)
		}
	}()
	// The first comment means the stream is registered.
	if l := <-lines; !strings.HasPrefix(l, "retry:") {
		t.Fatalf("first line %q", l)
	}

	user := "live-" + randomID(t)
	body, _ := smallBatch(t, user, user, 1)
	post, _ := http.NewRequest(http.MethodPost, n.URL+"/v1/batch", bytes.NewReader(body))
	post.SetBasicAuth(p.WriteKey, "")
	post.Header.Set("Content-Type", "application/json")
	pr, err := http.DefaultClient.Do(post)
	if err != nil || pr.StatusCode != http.StatusOK {
		t.Fatalf("ingest: %v %v", pr, err)
	}
	pr.Body.Close()
	deadline := time.After(10 * time.Second)
	for found := false; !found; {
		select {
		case l := <-lines:
			found = strings.HasPrefix(l, "data: ") && strings.Contains(l, user)
		case <-deadline:
			t.Fatal("the event did not reach the live stream within 10 s")
		}
	}

	start := time.Now()
	n.signalTerm(t)
	for range lines {
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the live stream ended %s after SIGTERM", d)
	}
	n.waitCleanExit(t, 20*time.Second)
}
