package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/onramp-dev/onramp/events"
)

// windowStart is the first seq of the events received from since on (minus
// events.ReceivedSlack); ok is false when no stored event is that recent.
func (q *Queries) windowStart(ctx context.Context, since time.Time) (int64, bool, error) {
	var lo, hi pgtype.Int8
	if err := q.x.QueryRow(ctx, `SELECT min(seq), max(seq) FROM events`).Scan(&lo, &hi); err != nil {
		return 0, false, err
	}
	if !lo.Valid {
		return 0, false, nil
	}
	probe := func(ctx context.Context, seq int64) (int64, time.Time, bool, error) {
		var s int64
		var recv pgtype.Timestamptz
		err := q.x.QueryRow(ctx, `SELECT seq, received_at FROM events WHERE seq >= $1 ORDER BY seq LIMIT 1`, seq).Scan(&s, &recv)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, time.Time{}, false, nil
		}
		return s, fromTS(recv), err == nil, err
	}
	first, err := events.FirstSeqFrom(ctx, probe, lo.Int64, hi.Int64, since.Add(-events.ReceivedSlack))
	return first, err == nil && first <= hi.Int64, err
}

func (q *Queries) EventsPerHour(ctx context.Context, since time.Time) ([]events.HourCount, error) {
	out := []events.HourCount{}
	start, ok, err := q.windowStart(ctx, since)
	if err != nil {
		return nil, fmt.Errorf("postgres: events per hour: %w", err)
	}
	if !ok {
		return out, nil
	}
	rows, err := q.x.Query(ctx, `SELECT date_trunc('hour', received_at, 'UTC'), property_id, count(*) FROM events
		WHERE seq >= $1 AND received_at >= $2 GROUP BY 1, 2 ORDER BY 1, 2`, start, ts(since))
	if err != nil {
		return nil, fmt.Errorf("postgres: events per hour: %w", err)
	}
	out, err = pgx.AppendRows(out, rows, func(row pgx.CollectableRow) (events.HourCount, error) {
		var h events.HourCount
		var hour pgtype.Timestamptz
		err := row.Scan(&hour, &h.PropertyID, &h.Count)
		h.Hour = fromTS(hour)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: events per hour: %w", err)
	}
	return out, nil
}

func (q *Queries) TopEvents(ctx context.Context, since time.Time, limit int) ([]events.NameCount, error) {
	out := []events.NameCount{}
	start, ok, err := q.windowStart(ctx, since)
	if err != nil {
		return nil, fmt.Errorf("postgres: top events: %w", err)
	}
	if !ok {
		return out, nil
	}
	rows, err := q.x.Query(ctx, `SELECT name, count(*) FROM events WHERE seq >= $1 AND received_at >= $2 AND type = 'track'
		GROUP BY name ORDER BY 2 DESC, name COLLATE "C" LIMIT $3`, start, ts(since), limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: top events: %w", err)
	}
	out, err = pgx.AppendRows(out, rows, pgx.RowToStructByPos[events.NameCount])
	if err != nil {
		return nil, fmt.Errorf("postgres: top events: %w", err)
	}
	return out, nil
}
