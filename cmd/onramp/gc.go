package main

import (
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// serveGCPercent is the garbage collector's target for `onramp serve` when
// GOGC is not set. Go's default of 100 collects whenever the heap doubles;
// under sustained ingest that was 8–9 % of the server's CPU, and the
// committer, whose one goroutine bounds ingest, paid for it in assists.
// At 400 the same load ran about 10 % faster on SQLite, at 10–18 % less
// server CPU per event, for about 40 % more peak heap; idle memory does
// not change (docs/operations.md).
const serveGCPercent = 400

// cgroupMemoryMax is where a container's memory limit is (cgroup v2).
const cgroupMemoryMax = "/sys/fs/cgroup/memory.max"

// tuneGC sets the collector for a long-running server: GOGC=400 unless the
// operator set GOGC, and, unless GOMEMLIMIT is set, a soft memory limit of
// 80 % of the container's memory limit when there is one, so that the
// bigger heap target cannot carry the process into the container's OOM
// killer (Go does not read cgroup memory limits by itself).
func tuneGC(log *slog.Logger) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	b, err := os.ReadFile(cgroupMemoryMax)
	if err != nil {
		return
	}
	if limit, ok := softMemoryLimit(string(b)); ok {
		debug.SetMemoryLimit(limit)
		log.Debug("memory limit from the container", "cgroup_bytes", strings.TrimSpace(string(b)), "soft_limit_bytes", limit)
	}
}

// softMemoryLimit is 80 % of a cgroup memory.max value ("max" means none).
func softMemoryLimit(memoryMax string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(memoryMax), 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n / 10 * 8, true
}
