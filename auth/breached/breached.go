// Package breached knows the passwords that attackers try first: the
// common-password list of zxcvbn-ts, ranked from breach corpora. It is
// embedded so the check works offline and costs no request to a third party.
package breached

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"io"
	"slices"
	"strings"
	"sync"
)

//go:generate go run gen.go

//go:embed passwords.txt.gz
var passwordsGz []byte

// sorted is parsed on first use rather than at init so that programs which
// never check a password (the CLI's other commands) don't pay ~1 MB and a few
// milliseconds for it.
var sorted = sync.OnceValue(func() []string {
	list, err := parse(passwordsGz)
	if err != nil {
		// The file is fixed at build time and its checksum is pinned by a
		// test, so this is a broken build, not a condition to handle.
		panic("breached: embedded passwords.txt.gz is corrupt: " + err.Error())
	}
	return list
})

func parse(gz []byte) ([]string, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	// Splitting one string keeps every entry in a single allocation.
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"), nil
}

// Contains reports whether pw, ignoring case, is on the list.
func Contains(pw string) bool {
	_, found := slices.BinarySearch(sorted(), strings.ToLower(pw))
	return found
}
