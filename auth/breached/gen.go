//go:build ignore

// gen.go turns the zxcvbn-ts common-password list into passwords.txt.gz.
// It reads the npm package pinned in clients/node/package.json, so run
// `npm ci` in clients/node first, then `go generate ./auth/breached`.
// The output is deterministic (no gzip name or time) so a regeneration from
// the same package version reproduces the committed file byte for byte.
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

const (
	pkgDir  = "../../clients/node/node_modules/@zxcvbn-ts/language-common"
	version = "4.1.3"
)

func main() {
	if err := run(); err != nil {
		log.Fatalf("breached: %v", err)
	}
}

func run() error {
	// The version check stops a silent list change when package.json moves:
	// the pinned count and SHA-256 in the tests must change in the same commit.
	var meta struct{ Version string }
	if err := readJSON(filepath.Join(pkgDir, "package.json"), &meta); err != nil {
		return fmt.Errorf("%w (run `npm ci` in clients/node)", err)
	}
	if meta.Version != version {
		return fmt.Errorf("@zxcvbn-ts/language-common is %s, gen.go expects %s", meta.Version, version)
	}

	var raw []string
	if err := readJSON(filepath.Join(pkgDir, "src", "passwords.json"), &raw); err != nil {
		return err
	}
	list := make([]string, 0, len(raw))
	for _, pw := range raw {
		pw = strings.ToLower(pw)
		// A newline inside an entry would split it in the line-based file.
		if pw == "" || strings.ContainsAny(pw, "\r\n") {
			continue
		}
		list = append(list, pw)
	}
	slices.Sort(list)
	list = slices.Compact(list)

	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	for _, pw := range list {
		if _, err := io.WriteString(zw, pw+"\n"); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile("passwords.txt.gz", buf.Bytes(), 0o644); err != nil {
		return err
	}

	license, err := os.ReadFile(filepath.Join(pkgDir, "LICENSE.txt"))
	if err != nil {
		return err
	}
	notice := "passwords.txt.gz is derived from src/passwords.json of the npm package\n" +
		"@zxcvbn-ts/language-common " + version + " (lower-cased, deduplicated, sorted),\n" +
		"which is distributed under the following licence:\n\n"
	if err := os.WriteFile("LICENSE", append([]byte(notice), license...), 0o644); err != nil {
		return err
	}
	fmt.Printf("breached: wrote %d passwords (%d bytes gzipped) from %d entries\n", len(list), buf.Len(), len(raw))
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
