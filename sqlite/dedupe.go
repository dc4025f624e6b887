package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"

	"github.com/cespare/xxhash/v2"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/events"
)

// Retried batches are recognised by (property, messageId). A unique index
// on those two columns did that job, and cost more than the events table
// itself: client message ids are random, so every insert landed on a
// different page of the index, and each commit wrote thousands of such
// pages to the WAL while the events table only appended. Dropping it
// raised the raw insert rate by about 1.7×.
//
// Instead, the writer keeps a window of the most recent message ids in
// memory: a 64-bit hash of (property, messageId) → the event's seq. The
// hashes are also appended to message_hashes in the transaction that
// inserts the events (one row of packed hashes per 100 events, which
// appends like the events do), so the window survives restarts and sees
// what other processes (the CLI) inserted. A hash found in the window is
// checked against the event row it names before the message counts as a
// duplicate, so a hash collision can never drop an event.
//
// The window holds the last DefaultDedupeWindow events (Options.
// DedupeWindow): a retry of an older message is stored again. Segment
// promises deduplication within about a day; a million events is a day at
// 11 events a second. PostgreSQL keeps its unique index and dedupes
// forever.

// DefaultDedupeWindow is how many recent message ids SQLite dedupes
// against unless Options.DedupeWindow says otherwise (about 55 MB of
// memory when full: the map does not shrink as ids turn over).
const DefaultDedupeWindow = 1_000_000

// hashesPerRow is how many events one message_hashes row covers.
const hashesPerRow = 100

// messageSum is the window's key for a message id. It is never 0: 0 marks
// a seq without an event in message_hashes.
func messageSum(propertyID, messageID string) uint64 {
	d := xxhash.New()
	_, _ = d.WriteString(propertyID)
	_, _ = d.Write([]byte{0})
	_, _ = d.WriteString(messageID)
	if s := d.Sum64(); s != 0 {
		return s
	}
	return 1
}

type recentMessage struct {
	sum uint64
	seq int64
}

// dedupeWindow is the in-memory window. Only transactions on the pinned
// writer read or change it, so wmu guards it.
type dedupeWindow struct {
	size  int
	bySum map[uint64]int64
	// ring holds the window's entries in seq order, oldest at head, for
	// eviction.
	ring   []recentMessage
	head   int
	loaded bool
	// through is the highest seq whose message_hashes row the window has
	// read; oldestKept the oldest seq it still holds once full; sinceTrim
	// counts the entries added since message_hashes was last trimmed.
	through    int64
	oldestKept int64
	sinceTrim  int
}

func newDedupeWindow(size int) *dedupeWindow {
	return &dedupeWindow{size: size, bySum: map[uint64]int64{}}
}

func (w *dedupeWindow) add(m recentMessage) {
	if len(w.ring) < w.size {
		w.ring = append(w.ring, m)
	} else {
		old := w.ring[w.head]
		if w.bySum[old.sum] == old.seq {
			delete(w.bySum, old.sum)
		}
		w.ring[w.head] = m
		w.head = (w.head + 1) % w.size
		w.oldestKept = w.ring[w.head].seq
	}
	w.bySum[m.sum] = m.seq
}

// addRow adds the hashes of one message_hashes row.
func (w *dedupeWindow) addRow(firstSeq int64, packed []byte) {
	for i := 0; i+8 <= len(packed); i += 8 {
		if s := binary.LittleEndian.Uint64(packed[i:]); s != 0 {
			w.add(recentMessage{sum: s, seq: firstSeq + int64(i/8)})
		}
	}
	w.through = max(w.through, firstSeq+int64(len(packed)/8)-1)
}

// catchUpDedupe brings the window up to date inside a write transaction: on
// first use it loads the newest rows of message_hashes (and hashes the
// events written before that table existed); later it reads the rows
// other connections appended since. With the write lock held, nothing can
// be appended between this read and the transaction's own inserts.
func (q *Queries) catchUpDedupe(ctx context.Context) (*dedupeWindow, error) {
	if q.dedupeReady {
		return q.window(), nil
	}
	w := q.db.dedupe
	if !w.loaded {
		// Loaded into a fresh window that replaces the shared one only
		// when this transaction commits (InTx): a failed load or a rolled
		// back backfill leaves nothing half-read behind.
		nw := newDedupeWindow(w.size)
		if err := q.loadDedupe(ctx, nw); err != nil {
			return nil, fmt.Errorf("sqlite: load dedupe window: %w", err)
		}
		nw.loaded = true
		q.loadedWindow = nw
		q.dedupeReady = true
		return nw, nil
	}
	q.dedupeReady = true
	rows, err := q.queryHot(ctx, `SELECT first_seq, hashes FROM message_hashes WHERE first_seq > ? ORDER BY first_seq`, w.through)
	if err != nil {
		return nil, fmt.Errorf("sqlite: dedupe catch-up: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var first int64
		var packed []byte
		if err := rows.Scan(&first, &packed); err != nil {
			return nil, fmt.Errorf("sqlite: dedupe catch-up: %w", err)
		}
		w.addRow(first, packed)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: dedupe catch-up: %w", err)
	}
	return w, nil
}

func (q *Queries) loadDedupe(ctx context.Context, w *dedupeWindow) error {
	rows, err := q.x.QueryContext(ctx, `SELECT first_seq, hashes FROM message_hashes ORDER BY first_seq DESC`)
	if err != nil {
		return err
	}
	type row struct {
		first  int64
		packed []byte
	}
	var newest []row
	held := 0
	for held < w.size && rows.Next() {
		var r row
		if err := rows.Scan(&r.first, &r.packed); err != nil {
			rows.Close()
			return err
		}
		newest = append(newest, r)
		held += len(r.packed) / 8
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for i := len(newest) - 1; i >= 0; i-- {
		w.addRow(newest[i].first, newest[i].packed)
	}
	// Events newer than every row: written before message_hashes existed
	// (a database from before this window). Hash the newest of them once
	// and keep the rows, so the next start need not.
	var maxSeq sql.NullInt64
	if err := q.x.QueryRowContext(ctx, `SELECT max(seq) FROM events`).Scan(&maxSeq); err != nil {
		return err
	}
	from := max(w.through, maxSeq.Int64-int64(w.size))
	if !maxSeq.Valid || maxSeq.Int64 <= from {
		return nil
	}
	erows, err := q.x.QueryContext(ctx, `SELECT seq, property_id, message_id FROM events WHERE seq > ? ORDER BY seq`, from)
	if err != nil {
		return err
	}
	var seqs []int64
	var sums []uint64
	for erows.Next() {
		var seq int64
		var prop, msg string
		if err := erows.Scan(&seq, &prop, &msg); err != nil {
			erows.Close()
			return err
		}
		seqs, sums = append(seqs, seq), append(sums, messageSum(prop, msg))
	}
	erows.Close()
	if err := erows.Err(); err != nil {
		return err
	}
	// Rows of hashesPerRow consecutive seqs; seqs without an event (deleted
	// since) hold 0.
	for i := 0; i < len(seqs); {
		first := seqs[i]
		packed := make([]byte, 0, 8*hashesPerRow)
		for i < len(seqs) && seqs[i] < first+hashesPerRow {
			for int64(len(packed)/8) < seqs[i]-first {
				packed = binary.LittleEndian.AppendUint64(packed, 0)
			}
			packed = binary.LittleEndian.AppendUint64(packed, sums[i])
			i++
		}
		if _, err := q.x.ExecContext(ctx, `INSERT INTO message_hashes (first_seq, hashes) VALUES (?, ?)`, first, packed); err != nil {
			return err
		}
		w.addRow(first, packed)
	}
	return nil
}

func (q *Queries) ExistingMessageIDs(ctx context.Context, propertyID string, ids []string) (map[string]bool, error) {
	if q.db == nil {
		// The window belongs to the writer: outside a transaction (tools,
		// tests) the check takes one.
		var out map[string]bool
		err := q.home.InTx(ctx, func(tq *Queries) error {
			var err error
			out, err = tq.ExistingMessageIDs(ctx, propertyID, ids)
			return err
		})
		return out, err
	}
	w, err := q.catchUpDedupe(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool)
	// Hits are retries, rare: each is confirmed against the event it names.
	bySeq := map[int64]string{}
	for _, id := range ids {
		sum := messageSum(propertyID, id)
		// This transaction's own inserts are not in the window until it
		// commits, but a query inside it must see them, as it would a row.
		if seq, ok := q.stagedSums[sum]; ok {
			bySeq[seq] = id
		} else if seq, ok := w.bySum[sum]; ok {
			bySeq[seq] = id
		}
	}
	if len(bySeq) == 0 {
		return out, nil
	}
	err = q.confirmMessages(ctx, bySeq, func(seq int64, prop, msg string) {
		if prop == propertyID {
			out[msg] = true
		}
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: existing message ids: %w", err)
	}
	return out, nil
}

// confirmMessages reads the events that window hits name and calls found
// for each whose message id is the one expected at that seq.
func (q *Queries) confirmMessages(ctx context.Context, bySeq map[int64]string, found func(seq int64, prop, msg string)) error {
	seqs := make([]int64, 0, len(bySeq))
	for s := range bySeq {
		seqs = append(seqs, s)
	}
	return chunk(seqs, 512, func(seqs []int64) error {
		args := make([]any, len(seqs))
		for i, s := range seqs {
			args[i] = s
		}
		rows, err := q.x.QueryContext(ctx, `SELECT seq, property_id, message_id FROM events WHERE seq IN (`+placeholders(len(seqs))+`)`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var seq int64
			var prop, msg string
			if err := rows.Scan(&seq, &prop, &msg); err != nil {
				return err
			}
			if msg == bySeq[seq] {
				found(seq, prop, msg)
			}
		}
		return rows.Err()
	})
}

// noteMessageHashes appends the hashes of consecutive events (one
// InsertEvents chunk) to message_hashes and stages them for the window,
// which takes them when the transaction commits.
func (q *Queries) noteMessageHashes(ctx context.Context, evs []*events.Event) error {
	packed := make([]byte, 0, 8*len(evs))
	for _, e := range evs {
		s := messageSum(e.PropertyID, e.MessageID)
		packed = binary.LittleEndian.AppendUint64(packed, s)
		if q.db != nil {
			if err := q.refuseRepeat(ctx, s, e); err != nil {
				return err
			}
			q.staged = append(q.staged, recentMessage{sum: s, seq: e.Seq})
		}
	}
	if _, err := q.execHot(ctx, `INSERT INTO message_hashes (first_seq, hashes) VALUES (?, ?)`, evs[0].Seq, packed); err != nil {
		return fmt.Errorf("sqlite: message hashes: %w", err)
	}
	return nil
}

// errDuplicateMessage refuses an insert of a message id already stored
// for the property, as the unique index did: callers check
// ExistingMessageIDs first, so only a bug reaches it.
var errDuplicateMessage = onramp.Errorf(onramp.ECONFLICT, "An event with this property and message id is already stored.")

// refuseRepeat fails when e repeats a message id of the window or of this
// transaction. Its hash was just computed, so the check costs a map probe;
// a hit (a bug upstream, or a hash collision) is confirmed by reading the
// event it names.
func (q *Queries) refuseRepeat(ctx context.Context, sum uint64, e *events.Event) error {
	if q.stagedSums == nil {
		q.stagedSums = map[uint64]int64{}
	}
	seq, hit := q.stagedSums[sum]
	if !hit {
		seq, hit = q.window().bySum[sum]
	}
	q.stagedSums[sum] = e.Seq
	if !hit {
		return nil
	}
	dup := false
	err := q.confirmMessages(ctx, map[int64]string{seq: e.MessageID}, func(_ int64, prop, _ string) {
		dup = dup || prop == e.PropertyID
	})
	if err != nil {
		return fmt.Errorf("sqlite: insert events: %w", err)
	}
	if dup {
		return fmt.Errorf("sqlite: insert events: message %q: %w", e.MessageID, errDuplicateMessage)
	}
	return nil
}

// commitDedupe moves a committed transaction's staged hashes into the
// window. The caller holds wmu.
func (db *DB) commitDedupe(loaded *dedupeWindow, staged []recentMessage) {
	if loaded != nil {
		db.dedupe = loaded
	}
	w := db.dedupe
	if len(staged) == 0 || !w.loaded {
		// Not loaded yet: the first catch-up reads them from the table.
		return
	}
	for _, m := range staged {
		w.add(m)
	}
	w.through = max(w.through, staged[len(staged)-1].seq)
	w.sinceTrim += len(staged)
}

// prepareDedupe runs before a transaction inserts events: the window must
// read the rows other connections appended before this transaction adds
// its own (or it would skip past them, and a first load would hash the
// new events as old ones); and now and then the table sheds the rows the
// window no longer holds.
func (q *Queries) prepareDedupe(ctx context.Context) error {
	w, err := q.catchUpDedupe(ctx)
	if err != nil {
		return err
	}
	return q.trimDedupe(ctx, w)
}

// trimDedupe drops message_hashes rows the window no longer holds, once
// per quarter window of inserts.
func (q *Queries) trimDedupe(ctx context.Context, w *dedupeWindow) error {
	if w.sinceTrim < w.size/4 || w.oldestKept == 0 {
		return nil
	}
	w.sinceTrim = 0
	if _, err := q.x.ExecContext(ctx, `DELETE FROM message_hashes WHERE first_seq < ?`, w.oldestKept-hashesPerRow); err != nil {
		return fmt.Errorf("sqlite: trim message hashes: %w", err)
	}
	return nil
}

// window is the window this transaction works with: the one it loaded, if
// it did, else the shared one.
func (q *Queries) window() *dedupeWindow {
	if q.loadedWindow != nil {
		return q.loadedWindow
	}
	return q.db.dedupe
}
