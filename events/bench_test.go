package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/sqlite"
)

// benchBatch makes a Segment batch of n realistic events from people
// drawn from a pool of `people`, with fresh messageIds from seq.
func benchBatch(n, people int, seq *atomic.Int64) []byte {
	var b []any
	for i := 0; i < n; i++ {
		s := seq.Add(1)
		p := int(s*7919) % people
		m := map[string]any{"type": "track", "event": "Signed Up", "messageId": fmt.Sprintf("m%09d-%03d", s, i), "anonymousId": fmt.Sprintf("anon-%d", p), "timestamp": "2026-11-25T10:00:00Z",
			"properties": map[string]any{"plan": "team", "seats": 12, "value": 12.5, "currency": "EUR", "source": "web", "experiment": "onboarding-v2"},
			"context":    map[string]any{"ip": "203.0.113.5", "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36", "locale": "en-GB", "library": map[string]any{"name": "x", "version": "1"}, "page": map[string]any{"path": "/pricing", "url": "https://www.example.com/pricing", "title": "Example", "referrer": "https://news.example.org/"}, "campaign": map[string]any{"source": "newsletter", "medium": "email", "name": "autumn"}}}
		if p%5 != 0 {
			m["userId"] = fmt.Sprintf("user-%d", p)
		}
		if s%10 == 0 {
			m["type"] = "identify"
			delete(m, "event")
			m["traits"] = map[string]any{"email": fmt.Sprintf("p%d@example.com", p), "name": "Ada", "plan": "trial"}
		}
		b = append(b, m)
	}
	body, _ := json.Marshal(map[string]any{"batch": b, "sentAt": "2026-11-25T10:00:01Z"})
	return body
}

// BenchmarkDecodeAndParse measures the request-goroutine half of ingest:
// decoding a 100-event batch and validating every message.
func BenchmarkDecodeAndParse(b *testing.B) {
	var seq atomic.Int64
	body := benchBatch(100, 10000, &seq)
	now := time.Now()
	b.SetBytes(int64(len(body)))
	for i := 0; i < b.N; i++ {
		bt, err := events.DecodeBody(body, "")
		if err != nil {
			b.Fatal(err)
		}
		for j, m := range bt.Messages {
			if _, rej := events.Parse(m, j, "", events.Envelope{ReceivedAt: now}); rej != nil {
				b.Fatal(rej.Reason)
			}
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkIngestSQLite measures the whole ingest path without HTTP:
// parse, group commit with identity resolution, durable commit (FULL).
func BenchmarkIngestSQLite(b *testing.B) { benchIngestSQLite(b, 0) }

// BenchmarkIngestSQLiteRejections is BenchmarkIngestSQLite with 10 of
// every 100 events invalid: the rejected-events log and the hand-off of
// rejections to the bus publisher are on the path.
func BenchmarkIngestSQLiteRejections(b *testing.B) { benchIngestSQLite(b, 10) }

// benchIngestSQLite ingests batches of 100 events of which bad are
// refused (a track call without its event name).
func benchIngestSQLite(b *testing.B, bad int) {
	ctx := context.Background()
	page, _ := strconv.Atoi(os.Getenv("BENCH_PAGE_SIZE"))
	db := openDB(b, sqlite.Options{Synchronous: os.Getenv("BENCH_SYNC"), PageSize: page})
	svc := newService(db, events.Config{})
	run(b, svc)
	ckCtx, stop := context.WithCancel(ctx)
	defer stop()
	go db.RunCheckpointer(ckCtx, time.Second, slog.New(slog.DiscardHandler))
	// Bodies come from templates whose messageIds are patched in place, so
	// making a batch costs a copy, not a JSON encoding.
	var seq atomic.Int64
	templates := make([][]byte, 16)
	for i := range templates {
		templates[i] = benchBatch(100, 10000, &seq)
		// Same length, so patching messageIds still works.
		templates[i] = bytes.Replace(templates[i], []byte(`"event":"Signed Up"`), []byte(`"evxnt":"Signed Up"`), bad)
	}
	var n atomic.Int64
	b.SetParallelism(8)
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			body := bytes.Clone(templates[i%int64(len(templates))])
			patchMessageIDs(body, i)
			bt, err := events.DecodeBody(body, "")
			if err != nil {
				b.Error(err)
				return
			}
			res, err := svc.Ingest(ctx, events.IngestParams{Batch: bt, Envelope: events.Envelope{PropertyID: "prp_bench", ReceivedAt: time.Now().UTC()}})
			if err != nil || res.Accepted+len(res.Rejected) != 100 || (bad == 0 && res.Accepted != 100) {
				b.Errorf("batch %d: %v %+v", i, err, res)
				return
			}
		}
	})
	// CPU time per event is steadier than events/s on a shared machine.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N*100), "cpu-µs/event")
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
}

// patchMessageIDs makes the messageIds of a template body unique for
// iteration i by overwriting their first nine digits.
func patchMessageIDs(body []byte, i int64) {
	key := []byte(`"messageId":"m`)
	digits := fmt.Appendf(nil, "%09d", i)
	for off := 0; ; {
		j := bytes.Index(body[off:], key)
		if j < 0 {
			return
		}
		start := off + j + len(key)
		copy(body[start:start+9], digits)
		off = start + 9
	}
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
