package oidcop

import (
	"strings"
	"testing"
)

// TestCachedCrypto: the cache answers what the ciphertext decrypts to and
// nothing else: a tampered token is refused every time and never kept.
func TestCachedCrypto(t *testing.T) {
	c := newCachedCrypto([32]byte{1, 2, 3}, "k1")
	tok, err := c.Encrypt("atk_1:usr_1")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got, err := c.Decrypt(tok); err != nil || got != "atk_1:usr_1" {
			t.Fatalf("Decrypt = %q, %v", got, err)
		}
	}
	tampered := tok[:len(tok)-2] + strings.Map(func(r rune) rune { return r ^ 1 }, tok[len(tok)-2:])
	for range 2 {
		if got, err := c.Decrypt(tampered); err == nil {
			t.Fatalf("a tampered token decrypted to %q", got)
		}
	}
	other := newCachedCrypto([32]byte{9}, "k1")
	if _, err := other.Decrypt(tok); err == nil {
		t.Error("another key decrypted the token")
	}
	if len(c.m) != 1 {
		t.Errorf("cache holds %d entries, want only the good token", len(c.m))
	}
}
