package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const benchLiveUsage = "bench live --url URL --write-key KEY --token API_TOKEN [--events 300] [--rate 20] [--streams 0] [--background-rate 0]"

// runBenchLive measures how long an ingested event takes to reach a live
// stream (GET /api/live?person=…) of a real server: from sending the
// ingest request, and from its 2xx answer, to the event's arrival.
func runBenchLive(ctx context.Context, args []string, out io.Writer) error {
	fs, _ := newFlags("bench live", benchLiveUsage)
	base := fs.String("url", "http://127.0.0.1:8080", "Onramp base URL")
	key := fs.String("write-key", "", "write key of a property (required)")
	token := fs.String("token", "", "API token with people:read, for /api/live and /api/people (required)")
	total := fs.Int("events", 300, "events to send to the watched person, one per request")
	rate := fs.Float64("rate", 20, "watched events per second")
	streams := fs.Int("streams", 0, "extra unfiltered streams open at the same time (other consoles' debuggers)")
	bgRate := fs.Float64("background-rate", 0, "events/s of other people sent alongside in batches of 100 (ingest load)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	if *key == "" || *token == "" {
		return errors.New("--write-key and --token are required (onramp property create --json and onramp token create print them)")
	}
	root := strings.TrimRight(*base, "/")
	run := fmt.Sprintf("%x", rand.Uint32())
	anon := "live-bench-" + run
	client := &http.Client{Timeout: 30 * time.Second}
	send := func(ctx context.Context, path string, body any) error {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, root+path, bytes.NewReader(b))
		req.SetBasicAuth(*key, "")
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("POST %s: %s", path, resp.Status)
		}
		return nil
	}

	// The watched person: made by a first event, found by its anonymous id.
	if err := send(ctx, "/v1/identify", map[string]any{"anonymousId": anon, "messageId": anon + "-hello", "traits": map[string]any{"name": "Live bench"}}); err != nil {
		return err
	}
	person, err := benchFindPerson(ctx, client, root, *token, anon)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	arrived := map[string]time.Time{}
	var mu sync.Mutex
	_, err = openBenchStream(ctx, root+"/api/live?person="+url.QueryEscape(person), *token, func(data []byte, at time.Time) {
		var e struct {
			MessageID string `json:"message_id"`
		}
		if json.Unmarshal(data, &e) == nil {
			mu.Lock()
			arrived[e.MessageID] = at
			mu.Unlock()
		}
	})
	if err != nil {
		return err
	}
	var extra atomic.Int64
	for range *streams {
		if _, err := openBenchStream(ctx, root+"/api/live", *token, func([]byte, time.Time) { extra.Add(1) }); err != nil {
			return err
		}
	}

	if *bgRate > 0 {
		go benchLiveBackground(ctx, send, run, *bgRate)
	}

	fromSend, fromOK := &latencies{}, &latencies{}
	sentAt := map[string][2]time.Time{}
	var n atomic.Int64
	start := time.Now()
	done := make(chan struct{})
	go progress(done, start, &n, int64(*total), "events")
	interval := time.Duration(float64(time.Second) / *rate)
	for i := 0; i < *total && ctx.Err() == nil; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		id := fmt.Sprintf("%s-%d", anon, i)
		t0 := time.Now()
		if err := send(ctx, "/v1/track", map[string]any{"anonymousId": anon, "messageId": id, "event": "Live Bench", "properties": map[string]any{"i": i}}); err != nil {
			close(done)
			return err
		}
		sentAt[id] = [2]time.Time{t0, time.Now()}
		n.Add(1)
	}
	close(done)
	fmt.Fprintln(os.Stderr)
	// Give the last events a moment to arrive.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		got := len(arrived)
		mu.Unlock()
		if got >= len(sentAt) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	missing := 0
	for id, t := range sentAt {
		at, ok := arrived[id]
		if !ok {
			missing++
			continue
		}
		fromSend.add(at.Sub(t[0]))
		fromOK.add(at.Sub(t[1]))
	}
	mu.Unlock()
	res := map[string]any{
		"events": len(sentAt), "missing": missing, "rate": *rate, "extra_streams": *streams, "background_rate": *bgRate,
		"from_2xx_p50_ms": ms(fromOK.pct(.5)), "from_2xx_p99_ms": ms(fromOK.pct(.99)), "from_2xx_max_ms": ms(fromOK.pct(1)),
		"from_send_p50_ms": ms(fromSend.pct(.5)), "from_send_p99_ms": ms(fromSend.pct(.99)), "from_send_max_ms": ms(fromSend.pct(1)),
		"extra_stream_messages": extra.Load(),
	}
	if *asJSON {
		return printJSON(out, res)
	}
	fmt.Fprintf(out, "live: %d events to one person at %.0f/s, %d extra streams, background %.0f events/s\n", len(sentAt), *rate, *streams, *bgRate)
	fmt.Fprintf(out, "from the ingest 2xx to the stream: p50 %.2f ms  p99 %.2f ms  max %.2f ms\n", res["from_2xx_p50_ms"], res["from_2xx_p99_ms"], res["from_2xx_max_ms"])
	fmt.Fprintf(out, "from sending to the stream:       p50 %.2f ms  p99 %.2f ms  max %.2f ms\n", res["from_send_p50_ms"], res["from_send_p99_ms"], res["from_send_max_ms"])
	if missing > 0 {
		return fmt.Errorf("%d events never arrived on the stream", missing)
	}
	return nil
}

// benchFindPerson returns the id of the person an anonymous id belongs to.
func benchFindPerson(ctx context.Context, client *http.Client, root, token, anon string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, root+"/api/people?q="+url.QueryEscape(anon), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var page struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /api/people: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || len(page.Data) != 1 {
		return "", fmt.Errorf("GET /api/people?q=%s: %d people (%v)", anon, len(page.Data), err)
	}
	return page.Data[0].ID, nil
}

// openBenchStream opens a live stream and calls onEvent with the data of
// each `event: event` message and when it was read. It returns once the
// server answered, so events sent afterwards are on the stream.
func openBenchStream(ctx context.Context, u, token string, onEvent func([]byte, time.Time)) (*http.Response, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	br := bufio.NewReader(resp.Body)
	// The first comment proves the hub registered the stream.
	if _, err := br.ReadString('\n'); err != nil {
		resp.Body.Close()
		return nil, err
	}
	go func() {
		defer resp.Body.Close()
		kind := ""
		for {
			line, err := br.ReadBytes('\n')
			if err != nil {
				return
			}
			at := time.Now()
			switch {
			case bytes.HasPrefix(line, []byte("event: ")):
				kind = string(bytes.TrimSpace(line[len("event: "):]))
			case bytes.HasPrefix(line, []byte("data: ")) && kind == "event":
				onEvent(bytes.TrimSpace(line[len("data: "):]), at)
			case len(bytes.TrimSpace(line)) == 0:
				kind = ""
			}
		}
	}()
	return resp, nil
}

// benchLiveBackground sends batches of other people's events at rate
// events/s until ctx ends.
func benchLiveBackground(ctx context.Context, send func(context.Context, string, any) error, run string, rate float64) {
	rng := rand.New(rand.NewPCG(3, 4))
	const batch = 100
	interval := time.Duration(float64(time.Second) * batch / rate)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var seq int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		msgs := make([]any, batch)
		for i := range msgs {
			msgs[i] = benchMessage(rng, "bg-"+run, 10000, seq, time.Now().UTC())
			seq++
		}
		go func() { _ = send(ctx, "/v1/batch", map[string]any{"batch": msgs}) }()
	}
}
