package oidcop

import (
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// cachedCrypto is op's default token crypto (AES-256-GCM compact JWE,
// with the legacy AES-CFB decrypter as a fallback) that remembers what
// access tokens decrypt to. Introspection and userinfo decrypt the same
// token on every call, and parsing and decrypting the JWE was a fifth of
// the server's CPU per introspection. A ciphertext always decrypts to the
// same "tokenID:subject", so remembering it changes no answer: whether the
// token is still live is asked of auth.OAuth every time. Only successful
// decryptions are kept, so garbage tokens cannot fill the cache.
type cachedCrypto struct {
	op.Crypto
	mu sync.RWMutex
	m  map[string]decrypted
}

type decrypted struct {
	plain string
	at    time.Time
}

const (
	decryptCacheTTL = 10 * time.Second
	// A token is about 250 bytes: the cache stays under ~10 MB.
	decryptCacheMax = 20_000
)

func newCachedCrypto(key [32]byte, keyID string) *cachedCrypto {
	gcm := op.NewAES256GCMCrypto(key, keyID)
	return &cachedCrypto{
		Crypto: op.NewCompositeCrypto(gcm, []op.Decrypter{gcm, op.NewAESDecrypter(key)}),
		m:      map[string]decrypted{},
	}
}

func (c *cachedCrypto) Decrypt(s string) (string, error) {
	c.mu.RLock()
	e, ok := c.m[s]
	c.mu.RUnlock()
	if ok && time.Since(e.at) < decryptCacheTTL {
		return e.plain, nil
	}
	plain, err := c.Crypto.Decrypt(s)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	if len(c.m) >= decryptCacheMax {
		clear(c.m)
	}
	c.m[s] = decrypted{plain: plain, at: time.Now()}
	c.mu.Unlock()
	return plain, nil
}
