//go:build !linux

package sqlite

import "os"

// dataSync flushes f (on macOS with F_FULLFSYNC, stronger than SQLite's
// default there).
func dataSync(f *os.File) error { return f.Sync() }
