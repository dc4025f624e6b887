package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/sqlite"
)

func TestIngestDuringShutdownAnswers(t *testing.T) {
	// Requests that race the committer's shutdown are either committed or
	// refused as unavailable at once: none may wait for its own deadline
	// because it was queued after the last drain.
	db := openDB(t, sqlite.Options{Synchronous: "OFF"})
	for round := range 20 {
		// Every other round without the flushing goroutine.
		svc := newService(db, events.Config{})
		if round%2 == 1 {
			svc = newPlainService(db, events.Config{})
		}
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan struct{})
		go func() { svc.Run(ctx); close(stopped) }()
		var wg sync.WaitGroup
		var mu sync.Mutex
		var slow []string
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					msg := fmt.Sprintf(`{"type": "track", "messageId": "r%d-w%d-%d", "anonymousId": "anon-%d", "event": "E"}`, round, w, i, w)
					reqCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
					start := time.Now()
					_, err := svc.Ingest(reqCtx, events.IngestParams{
						Batch:    &events.Batch{Messages: []json.RawMessage{json.RawMessage(msg)}},
						Envelope: events.Envelope{PropertyID: "prp_a", ReceivedAt: time.Now()},
					})
					done()
					if took := time.Since(start); took > 2*time.Second {
						mu.Lock()
						slow = append(slow, fmt.Sprintf("round %d: a request took %v (err %v)", round, took, err))
						mu.Unlock()
					}
					if err != nil {
						if !errors.Is(err, context.DeadlineExceeded) && onramp.ErrorCode(err) != onramp.EUNAVAILABLE {
							t.Errorf("round %d: %v", round, err)
						}
						return
					}
				}
			}()
		}
		time.Sleep(20 * time.Millisecond)
		cancel()
		<-stopped
		wg.Wait()
		for _, s := range slow {
			t.Error(s)
		}
	}
}
