package events

import (
	"context"
	"fmt"
	"time"
)

// HourCount is how many events one property received in one UTC hour.
type HourCount struct {
	Hour       time.Time `json:"hour"`
	PropertyID string    `json:"property_id"`
	Count      int64     `json:"count"`
}

// NameCount is how often a track event name was received.
type NameCount struct {
	Event string `json:"event"`
	Count int64  `json:"count"`
}

// ReceivedSlack is how far out of received_at order events may be stored.
// Engines find the start of a window by seq (events are numbered in commit
// order, which follows received_at but for batches committed a little
// later), so they step back this far and then filter by received_at.
const ReceivedSlack = 10 * time.Minute

// EventsPerHour counts received events per hour and property from since on.
// Its cost grows with the events of the window, not of the whole table.
func (s *Service) EventsPerHour(ctx context.Context, since time.Time) ([]HourCount, error) {
	out, err := s.cfg.Read.EventsPerHour(ctx, since)
	if err != nil {
		return nil, fmt.Errorf("events: events per hour: %w", err)
	}
	return out, nil
}

// TopEvents lists the most received track event names from since on.
func (s *Service) TopEvents(ctx context.Context, since time.Time, limit int) ([]NameCount, error) {
	out, err := s.cfg.Read.TopEvents(ctx, since, limit)
	if err != nil {
		return nil, fmt.Errorf("events: top events: %w", err)
	}
	return out, nil
}

// SeqProbe returns the first stored event at or after seq: its seq and
// received_at; ok is false when there is none.
type SeqProbe func(ctx context.Context, seq int64) (at int64, received time.Time, ok bool, err error)

// FirstSeqFrom finds, by bisection over seqs lo..hi (the smallest and
// largest stored), the first seq received at or after from. Engines use it
// to read a recent window of events through the primary key alone: seqs
// follow received_at closely (see ReceivedSlack), and an index on
// received_at would cost every ingested event a write.
func FirstSeqFrom(ctx context.Context, probe SeqProbe, lo, hi int64, from time.Time) (int64, error) {
	hi++ // past the end: "none is that recent"
	for lo < hi {
		mid := lo + (hi-lo)/2
		seq, received, ok, err := probe(ctx, mid)
		if err != nil {
			return 0, err
		}
		switch {
		case !ok || seq >= hi:
			// Nothing stored in [mid, hi): mid answers as well as hi.
			hi = mid
		case received.Before(from):
			lo = seq + 1
		default:
			hi = seq
		}
	}
	return lo, nil
}
