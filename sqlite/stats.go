package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/onramp-dev/onramp/events"
)

const hourMicros = int64(time.Hour / time.Microsecond)

// windowStart is the first seq of the events received from since on (minus
// events.ReceivedSlack); ok is false when no stored event is that recent.
func (q *Queries) windowStart(ctx context.Context, since time.Time) (int64, bool, error) {
	var lo, hi sql.NullInt64
	if err := q.x.QueryRowContext(ctx, `SELECT min(seq), max(seq) FROM events`).Scan(&lo, &hi); err != nil {
		return 0, false, err
	}
	if !lo.Valid {
		return 0, false, nil
	}
	probe := func(ctx context.Context, seq int64) (int64, time.Time, bool, error) {
		var s, recv int64
		err := q.x.QueryRowContext(ctx, `SELECT seq, received_at FROM events WHERE seq >= ? ORDER BY seq LIMIT 1`, seq).Scan(&s, &recv)
		if err == sql.ErrNoRows {
			return 0, time.Time{}, false, nil
		}
		return s, fromMicros(recv), err == nil, err
	}
	first, err := events.FirstSeqFrom(ctx, probe, lo.Int64, hi.Int64, since.Add(-events.ReceivedSlack))
	return first, err == nil && first <= hi.Int64, err
}

func (q *Queries) EventsPerHour(ctx context.Context, since time.Time) ([]events.HourCount, error) {
	out := []events.HourCount{}
	start, ok, err := q.windowStart(ctx, since)
	if err != nil || !ok {
		return out, wrapErr("events per hour", err)
	}
	rows, err := q.x.QueryContext(ctx, `SELECT received_at / ?, property_id, count(*) FROM events WHERE seq >= ? AND received_at >= ? GROUP BY 1, 2 ORDER BY 1, 2`,
		hourMicros, start, micros(since))
	if err != nil {
		return nil, wrapErr("events per hour", err)
	}
	defer rows.Close()
	for rows.Next() {
		var h events.HourCount
		var hour int64
		if err := rows.Scan(&hour, &h.PropertyID, &h.Count); err != nil {
			return nil, wrapErr("events per hour", err)
		}
		h.Hour = fromMicros(hour * hourMicros)
		out = append(out, h)
	}
	return out, wrapErr("events per hour", rows.Err())
}

func (q *Queries) TopEvents(ctx context.Context, since time.Time, limit int) ([]events.NameCount, error) {
	out := []events.NameCount{}
	start, ok, err := q.windowStart(ctx, since)
	if err != nil || !ok {
		return out, wrapErr("top events", err)
	}
	rows, err := q.x.QueryContext(ctx, `SELECT name, count(*) FROM events WHERE seq >= ? AND received_at >= ? AND type = 'track'
		GROUP BY name ORDER BY 2 DESC, name LIMIT ?`, start, micros(since), limit)
	if err != nil {
		return nil, wrapErr("top events", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n events.NameCount
		if err := rows.Scan(&n.Event, &n.Count); err != nil {
			return nil, wrapErr("top events", err)
		}
		out = append(out, n)
	}
	return out, wrapErr("top events", rows.Err())
}

// wrapErr names the failed read; nil stays nil.
func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sqlite: %s: %w", what, err)
}
