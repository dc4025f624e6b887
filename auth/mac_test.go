package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"testing"
)

// TestMacStringPooled: the pooled HMACs give what a fresh one gives, per
// key, also when used from many goroutines at once.
func TestMacStringPooled(t *testing.T) {
	fresh := func(key []byte, parts ...string) string {
		m := hmac.New(sha256.New, key)
		for _, p := range parts {
			m.Write([]byte(p))
			m.Write([]byte{0})
		}
		return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	keys := [][]byte{[]byte("key-one-0123456789abcdef0123456789"), []byte("key-two"), make([]byte, 100)}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := keys[(g+i)%len(keys)]
				parts := []string{"csrf", string(rune('a' + i%26)), "ses_" + string(rune('A'+g))}
				if got, want := macString(k, parts...), fresh(k, parts...); got != want {
					t.Errorf("macString(%q, %q) = %s, want %s", k, parts, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}
