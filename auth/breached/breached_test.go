package breached

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"
)

// The list changes only with a new pinned npm version and `go generate`;
// these numbers make such a change visible in review.
const (
	wantCount  = 49233
	wantSHA256 = "84744d1750661f5b290520a942949d1a724eb32181b94db6f54f2dcb9e981f64"
)

func TestListPinned(t *testing.T) {
	sum := sha256.Sum256(passwordsGz)
	if got := hex.EncodeToString(sum[:]); got != wantSHA256 {
		t.Errorf("passwords.txt.gz SHA-256 = %s, want %s", got, wantSHA256)
	}
	list := sorted()
	if len(list) != wantCount {
		t.Errorf("list has %d entries, want %d", len(list), wantCount)
	}
	// Contains relies on byte order and on every entry being unique and
	// lower-case, which gen.go promises; check the promise was kept.
	if !slices.IsSorted(list) {
		t.Error("list is not sorted")
	}
	for i, pw := range list {
		if pw == "" {
			t.Fatalf("entry %d is empty", i)
		}
		if i > 0 && list[i-1] == pw {
			t.Fatalf("entry %q appears twice", pw)
		}
	}
}

func TestContains(t *testing.T) {
	tests := []struct {
		pw   string
		want bool
	}{
		{"123456", true},     // first in the source, by rank
		{"password", true},   // second
		{"PassWord", true},   // case is ignored
		{"xpcrew", true},     // last in the source
		{"!qaz2wsx", true},   // first after sorting
		{"trustno1", true},   // mid-list
		{"", false},          // nothing
		{"password ", false}, // no trimming: a different password
		{"correct horse battery staple onramp", false},
		{"zzzzzzzzzzzzzzzzzzzzzzzzz", false}, // beyond the last entry
	}
	for _, tt := range tests {
		if got := Contains(tt.pw); got != tt.want {
			t.Errorf("Contains(%q) = %v, want %v", tt.pw, got, tt.want)
		}
	}
}

func TestParseRejectsCorruptData(t *testing.T) {
	if _, err := parse([]byte("not gzip")); err == nil {
		t.Error("parse accepted data that is not gzip")
	}
	if _, err := parse(passwordsGz[:len(passwordsGz)/2]); err == nil {
		t.Error("parse accepted a truncated file")
	}
}

func BenchmarkBreachedContains(b *testing.B) {
	sorted() // load outside the timed loop: the cost is per process, not per call
	pws := []string{"password", "Tr0ub4dor&3", "letmein", "an unusual passphrase"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		Contains(pws[i%len(pws)])
	}
}
