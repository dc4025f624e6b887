package sqlite

import (
	"os"
	"syscall"
)

// dataSync flushes f's data (and the size, not the times), as SQLite does
// on Linux.
func dataSync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
