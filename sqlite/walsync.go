package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// Durable acknowledgement without a flush inside every commit.
//
// With synchronous=FULL SQLite flushes the WAL inside COMMIT, and the
// one writer waits for the disk there: a tenth of ingest's committer time
// (2026-11-26), during which nothing else can be written. So when Open is
// asked for FULL, the pinned writer connection runs at NORMAL instead (a
// commit reaches the operating system, which is enough to survive a crash
// of the process, not of the machine) and walSync flushes the WAL file
// from outside the connection: InTx does it after each commit, so its
// callers keep FULL's promise; InTxUnsynced leaves it to the caller, which
// calls SyncWAL before it acknowledges anything. Ingest does that on its
// own goroutine, one flush for every group committed meanwhile, while the
// next group is being written.
//
// Why this is as safe as FULL: a commit's frames are in the WAL file
// before COMMIT returns, and a flush of the file, from any descriptor,
// writes every byte written to it before the flush began. SQLite never
// drops frames that a flush may not have covered yet: it overwrites the
// WAL only after a checkpoint copied them into the database file, and at
// NORMAL a checkpoint flushes the WAL before it copies and the database
// file after. A frame half written when the machine fails belongs to a
// commit that nobody was told about, and recovery ignores it (checksums).
//
// A failed flush is final (walSync.failed): every later flush, every
// InTx and Ping fail, so the server stops acknowledging and /readyz says
// it is not ready, until it is restarted and SQLite recovers what the
// disk holds.
type walSync struct {
	path string
	// mu serialises flushes: one at a time is enough, since each covers
	// everything written before it began.
	mu sync.Mutex
	// f stays open from Open to Close: Linux reports a failed write-back
	// of the file only to descriptors that were open when it failed.
	f *os.File
	// dirSynced is the WAL file the folder was flushed for: a new WAL
	// file is durable only once the folder entry naming it is.
	dirSynced os.FileInfo
	// failed is the first flush's failure. It sticks: after a failed
	// flush the kernel may have dropped the pages and marked them clean,
	// so no later flush can vouch for them (PostgreSQL stops for the same
	// reason). Every flush and Ping then fail until Onramp is restarted.
	failed error
	// failedNow is failed for readers that must not wait on mu.
	failedNow atomic.Pointer[error]
	// syncFile flushes a file's data (dataSync; tests count the calls).
	syncFile func(*os.File) error
}

// openWALSync opens the WAL file of the database at path (it exists once
// a connection opened the database in WAL mode).
func openWALSync(path string) (*walSync, error) {
	w := &walSync{path: path + "-wal", syncFile: dataSync}
	f, err := os.Open(w.path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open WAL for flushing: %w", err)
	}
	w.f = f
	return w, nil
}

// SyncWAL makes every transaction committed so far survive power loss.
// It may run beside a transaction. With Options.Synchronous NORMAL or OFF
// it does nothing: those promise less.
func (db *DB) SyncWAL(ctx context.Context) error {
	if db.walSync == nil {
		return nil
	}
	return db.walSync.flush(ctx)
}

func (w *walSync) flush(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlite: sync: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed != nil {
		return w.failed
	}
	// SQLite keeps the WAL file while a connection is open, but should it
	// ever make a new one, that is the one to flush.
	cur, err := os.Stat(w.path)
	if err != nil {
		return fmt.Errorf("sqlite: sync: %w", err)
	}
	if fi, err := w.f.Stat(); err != nil || !os.SameFile(fi, cur) {
		f, err := os.Open(w.path)
		if err != nil {
			return fmt.Errorf("sqlite: sync: %w", err)
		}
		w.f.Close()
		w.f = f
	}
	if err := w.syncFile(w.f); err != nil {
		return w.fail(fmt.Errorf("sqlite: flushing %s failed, so writes acknowledged since the last flush may be lost; restart Onramp: %w", w.path, err))
	}
	if w.dirSynced == nil || !os.SameFile(w.dirSynced, cur) {
		d, err := os.Open(filepath.Dir(w.path))
		if err != nil {
			return fmt.Errorf("sqlite: sync: %w", err)
		}
		err = d.Sync()
		d.Close()
		if err != nil {
			return w.fail(fmt.Errorf("sqlite: flushing the folder %s failed, so the WAL file may not survive a power loss; restart Onramp: %w", filepath.Dir(w.path), err))
		}
		w.dirSynced = cur
	}
	return nil
}

// broken is the sticky failure of an earlier flush, if any. It does not
// wait for a flush under way (every transaction asks).
func (w *walSync) broken() error {
	if w == nil {
		return nil
	}
	if err := w.failedNow.Load(); err != nil {
		return *err
	}
	return nil
}

// fail makes err the sticky failure. The caller holds mu.
func (w *walSync) fail(err error) error {
	w.failed = err
	w.failedNow.Store(&err)
	return err
}

func (w *walSync) close() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Close()
}
