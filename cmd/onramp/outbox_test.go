package main

import (
	"context"
	"errors"
	"testing"

	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/identity"
)

// TestTimelineSinkTrackAll: a batch of auth events goes through ingest in
// one call, each with its own answer: a refused event does not fail the
// others, and the accepted ones are on the person's timeline.
func TestTimelineSinkTrackAll(t *testing.T) {
	a := newCLI(t).app()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.events.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	sink := timelineSink{events: a.events, clock: a.clock}
	now := a.clock.Now()
	errs := sink.TrackAll(ctx, []auth.TimelineEvent{
		{MessageID: "aev_1", Event: "auth.logged_in", Subject: "usr_trackall", At: now, Properties: map[string]any{"method": "password"}},
		{MessageID: "aev_2", Event: "", Subject: "usr_trackall", At: now}, // a track call needs an event name
		{MessageID: "aev_3", Event: "auth.logged_out", Subject: "usr_trackall", At: now},
	})
	if len(errs) != 3 || errs[0] != nil || !errors.Is(errs[1], errEventRefused) || errs[2] != nil {
		t.Fatalf("TrackAll = %v, want nil, refused, nil", errs)
	}
	p, err := a.identity.Lookup(ctx, identity.Key{Type: identity.UserID, Value: "usr_trackall"})
	if err != nil {
		t.Fatal(err)
	}
	page, err := a.events.Timeline(ctx, events.TimelineParams{PersonIDs: []string{p.Person.ID}})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, ev := range page.Events {
		names[ev.Event] = true
	}
	if len(page.Events) != 2 || !names["auth.logged_in"] || !names["auth.logged_out"] {
		t.Errorf("timeline has %d events %v, want auth.logged_in and auth.logged_out", len(page.Events), names)
	}
	// The outbox may deliver twice: the same batch again adds nothing.
	if errs := sink.TrackAll(ctx, []auth.TimelineEvent{{MessageID: "aev_1", Event: "auth.logged_in", Subject: "usr_trackall", At: now}}); errs[0] != nil {
		t.Fatalf("again: %v", errs[0])
	}
	if page, _ := a.events.Timeline(ctx, events.TimelineParams{PersonIDs: []string{p.Person.ID}}); len(page.Events) != 2 {
		t.Errorf("a repeated event was stored again: %d events", len(page.Events))
	}
}
