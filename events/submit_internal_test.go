package events

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestSubmitAfterLastDrainIsRefused(t *testing.T) {
	// The race TestIngestDuringShutdownAnswers finds now and then, made
	// certain: a request read "not closed", and Run drained the queue and
	// stopped before the request was queued. Nobody will take it; it must
	// be refused at once, not wait for its deadline.
	s := NewService(Config{})
	close(s.stopped) // Run has returned; closed was never seen set
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := s.submit(ctx, &pending{done: make(chan result, 1)})
	if !errors.Is(err, errClosed) {
		t.Fatalf("submit = %v; want errClosed", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("submit took %v", took)
	}
}
