package sqlite

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A person's timeline is read through the timeline table, (person_id, ts,
// seq) → the event's seq. As an index on events it cost half of ingest:
// events come from thousands of people at once, every person's newest
// entries sit on a leaf page of their own, and each commit rewrote about
// one such page (4 KiB of WAL, and again at checkpoint) per event it held,
// however small the entry.
//
// So the writer fills the table in sweeps. Events are committed without
// their timeline rows; the writer remembers them in a backlog, person →
// seqs, and every write transaction also indexes a slice of the backlog:
// the persons from a cursor onwards, in key order, as many entries as make
// the cursor go round the backlog about once every sweepCycle. A leaf page
// is then written once per round with all the entries of that round,
// instead of once per commit.
//
// Readers find the rest in events itself: an event is in the timeline
// table, or in the backlog, or newer than the backlog knows (committed by
// another connection since the writer last looked, or by this writer a
// moment before it updated the backlog). timeline_state.indexed_through
// is the seq up to which every event has its timeline row, for processes
// that have no backlog of their own (the CLI): they scan the events after
// it. The backlog lives only in memory; after a crash the first write
// transaction rebuilds it from the events after indexed_through, and
// indexing an event twice is harmless (INSERT OR IGNORE).

// sweepMode is how much of the backlog a transaction indexes.
type sweepMode int

const (
	// sweepDue indexes the slice the cursor is due to cover by now.
	sweepDue sweepMode = iota
	// sweepIdle indexes at least idleSweep entries: no ingest commit has
	// swept for a while, so nothing waits behind a bigger transaction.
	sweepIdle
	// sweepAll indexes the whole backlog.
	sweepAll
)

const (
	// idleSweep is how many entries an idle sweep takes at least: enough
	// to empty a full backlog in a few seconds of idle ticks, little
	// enough to keep the transaction short for whatever write comes.
	idleSweep = 20_000
	// sweepCycle is about how long the sweep cursor takes to go once round
	// the persons with unindexed events: longer means fewer page writes
	// per event and a longer tail for other processes to scan.
	sweepCycle = 2 * time.Second
	// maxBacklog bounds the backlog: past it a sweep takes enough entries
	// to bring it back to half.
	maxBacklog = 200_000
	// idleAfter is how long without a sweep makes the writer idle.
	idleAfter = 150 * time.Millisecond
)

// timelineBacklog is the writer's memory of committed events without
// timeline rows. The writer changes it after commits (holding wmu and mu);
// readers take mu to copy what they need.
type timelineBacklog struct {
	mu sync.Mutex
	// loaded says the backlog mirrors the database: every event with seq
	// <= covered is in the timeline table or in byPerson.
	loaded   bool
	covered  int64
	byPerson map[string][]timelineRow
	// persons are the keys of byPerson, sorted, for the sweep's cursor.
	persons []string
	n       int

	// Only the writer (under wmu) reads or writes these.
	cursor    string
	lastSweep time.Time
	// written is the indexed_through this DB last wrote, and upToAt when
	// a transaction last computed it.
	written int64
	upToAt  time.Time
	// version is the writer's last reading of PRAGMA data_version, and
	// suspectUpTo the newest event that existed when it last changed: the
	// backlog's entries up to it may name events another connection has
	// deleted since (see sweepSlice).
	version     int64
	suspectUpTo int64
}

// timelineRow is a timeline row to be written, for one person.
type timelineRow struct{ seq, ts int64 }

func newTimelineBacklog() *timelineBacklog {
	return &timelineBacklog{byPerson: map[string][]timelineRow{}}
}

// timelineEntry is one event waiting for its timeline row.
type timelineEntry struct {
	person  string
	seq, ts int64
}

// timelineTx is what one write transaction did to the backlog, applied
// once it commits.
type timelineTx struct {
	// staged are the events this transaction inserted, and those other
	// connections committed since the backlog last looked, in seq order.
	staged []timelineEntry
	// swept counts, per person, how many of the oldest backlog entries
	// this transaction indexed; lastSwept is the last such person.
	swept     map[string]int
	lastSwept string
	// deleted are the persons this transaction deleted: their entries in
	// the backlog go (staged holds only what the transaction stored of
	// them after the deletion).
	deleted map[string]bool
	// loaded says this transaction read the backlog from the database:
	// staged is then all of it.
	loaded bool
	// indexedUpTo is the indexed_through the transaction leaves;
	// upToFound says it walked the backlog for it (see upToEvery).
	indexedUpTo int64
	upToFound   bool
	// version and suspectUpTo are the backlog's, as this transaction
	// leaves them.
	version, suspectUpTo int64
}

// stageTimeline notes inserted events for the backlog.
func (q *Queries) stageTimeline(person string, seq, ts int64) {
	q.timeline.staged = append(q.timeline.staged, timelineEntry{person, seq, ts})
}

// forgetTimeline notes persons deleted: their backlog entries go, and so
// do the entries this transaction staged for them so far, whose events the
// deletion removes. Events the transaction stores for the same person ids
// afterwards are staged again and stay: they exist, and commit moves the
// backlog's covered mark past them, so an event left out there would never
// be indexed.
func (q *Queries) forgetTimeline(persons []string) {
	if q.db == nil {
		return
	}
	if q.timeline.deleted == nil {
		q.timeline.deleted = map[string]bool{}
	}
	// Only these persons: an earlier deletion's persons may have events
	// staged since, which this deletion leaves alone.
	now := make(map[string]bool, len(persons))
	for _, p := range persons {
		q.timeline.deleted[p] = true
		now[p] = true
	}
	q.timeline.staged = slices.DeleteFunc(q.timeline.staged, func(e timelineEntry) bool { return now[e.person] })
}

// sweepTimeline runs inside InTx before COMMIT: it catches up with events
// other connections committed, indexes a slice of the backlog (all of it
// as mode says), and records how far the timeline table is complete.
func (q *Queries) sweepTimeline(ctx context.Context, mode sweepMode) error {
	b := q.db.timeline
	tx := &q.timeline
	if !b.loaded {
		if len(tx.staged) == 0 && mode != sweepAll {
			// This connection has written no events yet: leave the
			// backlog to whoever does.
			return nil
		}
		return q.loadTimeline(ctx)
	}
	// Events another connection committed since the backlog last looked
	// sit between covered and this transaction's first insert. Seqs only
	// grow (AUTOINCREMENT), so a gap there is the only place they can be.
	if len(tx.staged) == 0 || tx.staged[0].seq != b.covered+1 {
		upTo := int64(1<<63 - 1)
		if len(tx.staged) > 0 {
			upTo = tx.staged[0].seq
		}
		gap, err := q.unindexedEvents(ctx, b.covered, upTo)
		if err != nil {
			return err
		}
		tx.staged = append(gap, tx.staged...)
	}
	// Another connection committed since the last look (data_version
	// changed): it may have deleted events the backlog names.
	var version int64
	if err := q.db.wconn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&version); err != nil {
		return fmt.Errorf("sqlite: data_version: %w", err)
	}
	tx.version, tx.suspectUpTo = version, b.suspectUpTo
	if version != b.version {
		tx.suspectUpTo = b.covered
		if len(tx.staged) > 0 {
			tx.suspectUpTo = max(tx.suspectUpTo, tx.staged[len(tx.staged)-1].seq)
		}
	}
	quota := b.n
	if mode != sweepAll {
		elapsed := time.Since(b.lastSweep)
		if elapsed < sweepCycle {
			quota = int((int64(b.n)*int64(elapsed) + int64(sweepCycle) - 1) / int64(sweepCycle))
		}
		if b.n > maxBacklog {
			quota = max(quota, b.n-maxBacklog/2)
		}
		if mode == sweepIdle {
			quota = max(quota, min(b.n, idleSweep))
		}
	}
	if quota > 0 && len(b.persons) > 0 {
		if err := q.sweepSlice(ctx, quota); err != nil {
			return err
		}
	}
	if mode == sweepDue && time.Since(b.upToAt) < upToEvery {
		// indexed_through as last written is still true (events only get
		// indexed, and new ones have higher seqs), just lower than it
		// could be: finding the oldest waiting event walks the whole
		// backlog, too much for every transaction (3 % of ingest's
		// committer).
		tx.indexedUpTo = b.written
		return nil
	}
	// Every event up to the oldest one still waiting is indexed.
	upTo := b.covered
	if len(tx.staged) > 0 {
		upTo = min(upTo, tx.staged[0].seq-1)
	}
	for p, s := range b.byPerson {
		if n := tx.swept[p]; n < len(s) && !tx.deleted[p] {
			upTo = min(upTo, s[n].seq-1)
		}
	}
	if upTo >= tx.suspectUpTo {
		tx.suspectUpTo = 0
	}
	tx.upToFound = true
	return q.writeIndexedThrough(ctx, upTo)
}

// upToEvery spaces the walks of the backlog that move indexed_through.
const upToEvery = 250 * time.Millisecond

// sweepSlice indexes the backlog's persons from the cursor on, until
// quota entries.
func (q *Queries) sweepSlice(ctx context.Context, quota int) error {
	b, tx := q.db.timeline, &q.timeline
	tx.swept = map[string]int{}
	start, _ := slices.BinarySearch(b.persons, b.cursor)
	var taken []string
	entries := 0
	for i := range len(b.persons) {
		p := b.persons[(start+i)%len(b.persons)]
		tx.swept[p] = len(b.byPerson[p])
		tx.lastSwept = p
		entries += len(b.byPerson[p])
		if !tx.deleted[p] {
			taken = append(taken, p)
		}
		if entries >= quota {
			break
		}
	}
	// In key order, so the table's pages fill left to right.
	if len(taken) > 0 && taken[len(taken)-1] < taken[0] {
		slices.Sort(taken)
	}
	// The rows come from memory, except those of events that existed when
	// another connection last committed: it may have deleted them, and a
	// row of the timeline table must not outlive its event. Those come
	// from the events that are still there.
	var suspect []int64
	const perStatement = 256
	args := make([]any, 0, 3*perStatement)
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		n := padded(len(args) / 3)
		args = padArgs(args, 3, n)
		if _, err := q.execHot(ctx, `INSERT OR IGNORE INTO timeline (person_id, ts, seq) VALUES `+rowsOf(n, 3), args...); err != nil {
			return fmt.Errorf("sqlite: index timeline: %w", err)
		}
		args = args[:0]
		return nil
	}
	for _, p := range taken {
		rows := b.byPerson[p]
		if !slices.IsSortedFunc(rows, compareTimelineRows) {
			rows = slices.SortedFunc(slices.Values(rows), compareTimelineRows)
		}
		for _, r := range rows {
			if r.seq <= tx.suspectUpTo {
				suspect = append(suspect, r.seq)
				continue
			}
			args = append(args, p, r.ts, r.seq)
			if len(args) == 3*perStatement {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if len(suspect) > 0 {
		if _, err := q.execHot(ctx, `INSERT OR IGNORE INTO timeline (person_id, ts, seq)
			SELECT person_id, ts, seq FROM events WHERE seq IN (SELECT value FROM json_each(?)) ORDER BY 1, 2, 3`, seqList(suspect)); err != nil {
			return fmt.Errorf("sqlite: index timeline: %w", err)
		}
	}
	return nil
}

func compareTimelineRows(a, b timelineRow) int {
	if a.ts != b.ts {
		return cmp.Compare(a.ts, b.ts)
	}
	return cmp.Compare(a.seq, b.seq)
}

// loadTimeline reads the backlog from the database: the events after
// indexed_through, this transaction's own included.
func (q *Queries) loadTimeline(ctx context.Context) error {
	var through int64
	if err := q.queryRowHot(ctx, `SELECT indexed_through FROM timeline_state WHERE id = 1`).Scan(&through); err != nil {
		return fmt.Errorf("sqlite: timeline state: %w", err)
	}
	staged, err := q.unindexedEvents(ctx, through, 1<<63-1)
	if err != nil {
		return err
	}
	q.timeline = timelineTx{staged: staged, loaded: true, indexedUpTo: through}
	return nil
}

// unindexedEvents lists the events with after < seq < before.
func (q *Queries) unindexedEvents(ctx context.Context, after, before int64) ([]timelineEntry, error) {
	rows, err := q.queryHot(ctx, `SELECT person_id, seq, ts FROM events WHERE seq > ? AND seq < ? ORDER BY seq`, after, before)
	if err != nil {
		return nil, fmt.Errorf("sqlite: unindexed events: %w", err)
	}
	defer rows.Close()
	var out []timelineEntry
	for rows.Next() {
		var e timelineEntry
		if err := rows.Scan(&e.person, &e.seq, &e.ts); err != nil {
			return nil, fmt.Errorf("sqlite: unindexed events: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: unindexed events: %w", err)
	}
	return out, nil
}

func (q *Queries) writeIndexedThrough(ctx context.Context, upTo int64) error {
	q.timeline.indexedUpTo = upTo
	if upTo == q.db.timeline.written {
		return nil
	}
	if _, err := q.execHot(ctx, `UPDATE timeline_state SET indexed_through = ? WHERE id = 1`, upTo); err != nil {
		return fmt.Errorf("sqlite: timeline state: %w", err)
	}
	return nil
}

// commit applies a committed transaction's timelineTx. The caller holds
// wmu.
func (b *timelineBacklog) commit(tx *timelineTx, now time.Time) {
	if !b.loaded && !tx.loaded {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if tx.loaded {
		b.loaded = true
		b.covered = tx.indexedUpTo
	}
	if tx.swept != nil || tx.deleted != nil {
		var emptied []string
		for p := range tx.deleted {
			if s, ok := b.byPerson[p]; ok {
				b.n -= len(s)
				delete(b.byPerson, p)
				emptied = append(emptied, p)
			}
		}
		for p, n := range tx.swept {
			if tx.deleted[p] {
				continue
			}
			rest := b.byPerson[p][n:]
			b.n -= n
			if len(rest) == 0 {
				delete(b.byPerson, p)
				emptied = append(emptied, p)
			} else {
				b.byPerson[p] = rest
			}
		}
		b.persons = removeSorted(b.persons, emptied)
		if tx.swept != nil {
			// Just after the last person swept: the next sweep goes on
			// from there.
			b.cursor = tx.lastSwept + "\x00"
			b.lastSweep = now
		}
	}
	b.version, b.suspectUpTo = tx.version, tx.suspectUpTo
	var added []string
	for _, e := range tx.staged {
		b.covered = max(b.covered, e.seq)
		s, ok := b.byPerson[e.person]
		if !ok {
			added = append(added, e.person)
		}
		b.byPerson[e.person] = append(s, timelineRow{e.seq, e.ts})
		b.n++
	}
	if len(added) > 0 {
		slices.Sort(added)
		b.persons = mergeSorted(b.persons, added)
	}
	if b.lastSweep.IsZero() {
		b.lastSweep = now
	}
	b.written = tx.indexedUpTo
	if tx.upToFound {
		b.upToAt = now
	}
}

// removeSorted removes from the sorted a the strings of gone (all in a),
// in place. It finds them by binary search and moves what lies between
// them: a sweep empties a few hundred persons of a backlog of many
// thousand, each commit.
func removeSorted(a, gone []string) []string {
	if len(gone) == 0 {
		return a
	}
	slices.Sort(gone)
	out := a[:0]
	from := 0
	for _, g := range gone {
		i, found := slices.BinarySearch(a[from:], g)
		if !found {
			continue
		}
		out = append(out, a[from:from+i]...)
		from += i + 1
	}
	out = append(out, a[from:]...)
	clear(a[len(out):])
	return out
}

// mergeSorted merges two sorted lists of distinct strings.
func mergeSorted(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if a[i] < b[j] {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// pending returns, for a reader, the backlog's seqs of these persons and
// the seq up to which the backlog knows every event; ok is false when the
// backlog does not mirror the database (nothing written yet by this
// process).
func (b *timelineBacklog) pending(persons []string) (seqs []int64, covered int64, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.loaded {
		return nil, 0, false
	}
	for _, p := range persons {
		for _, r := range b.byPerson[p] {
			seqs = append(seqs, r.seq)
		}
	}
	return seqs, b.covered, true
}

// backlogDB is the database whose backlog these Queries may consult.
func (q *Queries) backlogDB() *DB {
	switch {
	case q.db != nil:
		return q.db
	case q.rdb != nil:
		return q.rdb
	}
	return q.home
}

// unindexedCond is the condition that picks, among the events of the
// persons, those that may lack a timeline row, and its arguments.
func (q *Queries) unindexedCond(persons []string) (string, []any) {
	if db := q.backlogDB(); db != nil {
		if seqs, covered, ok := db.timeline.pending(persons); ok {
			if len(seqs) == 0 {
				return `seq > ?`, []any{covered}
			}
			return `(seq IN (SELECT value FROM json_each(?)) OR seq > ?)`, []any{seqList(seqs), covered}
		}
	}
	return `seq > (SELECT indexed_through FROM timeline_state WHERE id = 1)`, nil
}

// seqList is seqs as a JSON array, for json_each.
func seqList(seqs []int64) string {
	var b strings.Builder
	b.Grow(len(seqs)*8 + 2)
	b.WriteByte('[')
	for i, s := range seqs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(s, 10))
	}
	b.WriteByte(']')
	return b.String()
}

// waiting reports whether the backlog holds entries to index.
func (b *timelineBacklog) waiting() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.loaded && b.n > 0
}

// FlushTimeline indexes the whole backlog, for a clean shutdown (so the
// next start has nothing to rebuild) and for tests.
func (db *DB) FlushTimeline(ctx context.Context) error {
	if !db.timeline.waiting() {
		return nil
	}
	return db.inTx(ctx, sweepAll, func(*Queries) error { return nil })
}

// sweepWhenIdle indexes part of the backlog when no write transaction has
// done it for a while (ingest stopped), so that it empties soon after.
func (db *DB) sweepWhenIdle(ctx context.Context) error {
	if !db.timeline.waiting() {
		return nil
	}
	db.wmu.Lock()
	due := time.Since(db.timeline.lastSweep) >= idleAfter
	db.wmu.Unlock()
	if !due {
		return nil
	}
	return db.inTx(ctx, sweepIdle, func(*Queries) error { return nil })
}
