package auth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/onramp-dev/onramp"
)

// This file holds the keys that sign ID and logout tokens. ES256: about 30
// µs a signature against about 1 ms for RSA-2048, which a target of 2,000
// code exchanges a second on two cores cannot absorb.
//
// The schedule: a key is published (in the key set) a day before it signs,
// signs for 30 days, and stays published 7 days after it retires, so that
// relying parties that cache the key set never meet an unknown kid and
// tokens it signed still verify until they expire. Every node runs
// RotateKeys hourly; the next key's activation time is derived from the
// current key's retirement, so nodes planning the same rotation insert one
// key (active_from is unique).

// Key schedule.
const (
	keyPublishAhead = 24 * time.Hour
	keyActiveFor    = 30 * 24 * time.Hour
	keyKeptAfter    = 7 * 24 * time.Hour
	// AlgES256 is the signature algorithm of the keys made here.
	AlgES256 = "ES256"
)

// ActiveKey is the key that signs now.
type ActiveKey struct {
	KID     string
	Alg     string
	Private *ecdsa.PrivateKey
}

// PublicKey is a key of the published key set.
type PublicKey struct {
	KID    string
	Alg    string
	Public *ecdsa.PublicKey
}

// keyCache holds the decrypted key set for keySetCacheTTL.
type keyCache struct {
	mu   sync.Mutex
	at   time.Time
	keys []*loadedKey
}

type loadedKey struct {
	row  *SigningKey
	priv *ecdsa.PrivateKey
}

// RotateKeysParams tunes RotateKeys.
type RotateKeysParams struct {
	// Now makes a new key that signs at once (emergency), instead of
	// following the schedule.
	Now bool
	// DropOld, with Now, withdraws every other key from the key set at
	// once: tokens they signed stop verifying. For a leaked key.
	DropOld bool
}

// RotateKeys makes the next signing key when the schedule calls for one,
// and reports whether it made one. Safe to run on every node at once.
func (o *OAuth) RotateKeys(ctx context.Context, p RotateKeysParams) (bool, error) {
	now := o.clock.Now()
	made := false
	err := o.tx(ctx, func(st OAuthTxStore) error {
		made = false
		keys, err := st.SigningKeys(ctx, now)
		if err != nil {
			return err
		}
		var activeFrom time.Time
		var latest *SigningKey
		if len(keys) > 0 {
			latest = keys[len(keys)-1]
		}
		switch {
		case p.Now:
			activeFrom = now
		case latest == nil || !now.Before(latest.RetireAt):
			// The first key, or every key retired while no node ran: one
			// that signs at once. Whole hours, so nodes starting together
			// plan the same key.
			activeFrom = now.Truncate(time.Hour)
		case !now.Before(latest.RetireAt.Add(-keyPublishAhead)):
			activeFrom = latest.RetireAt
		default:
			return nil
		}
		k, err := o.newSigningKey(activeFrom, now)
		if err != nil {
			return err
		}
		if made, err = st.InsertSigningKey(ctx, k); err != nil {
			return err
		}
		if p.Now && p.DropOld {
			for _, old := range keys {
				old.RetireAt, old.ExpiresAt = now, now
				if err := st.UpdateSigningKey(ctx, old); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("auth: rotate keys: %w", err)
	}
	o.keys.mu.Lock()
	o.keys.at = time.Time{}
	o.keys.mu.Unlock()
	if made {
		o.log.InfoContext(ctx, "oauth: new signing key", "now", p.Now, "drop_old", p.DropOld)
	}
	return made, nil
}

func (o *OAuth) newSigningKey(activeFrom, now time.Time) (*SigningKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	kid := onramp.NewID("key")
	sealed, err := o.seal(der, kid)
	if err != nil {
		return nil, err
	}
	jwk, err := publicJWK(&priv.PublicKey, kid)
	if err != nil {
		return nil, err
	}
	return &SigningKey{
		KID: kid, Alg: AlgES256, PrivateKey: sealed, PublicJWK: jwk, CreatedAt: now,
		ActiveFrom: activeFrom, RetireAt: activeFrom.Add(keyActiveFor), ExpiresAt: activeFrom.Add(keyActiveFor + keyKeptAfter),
	}, nil
}

// publicJWK is the key as RFC 7517 writes it, for operators and exports;
// the key set endpoint builds its own from PublicKey.
func publicJWK(pub *ecdsa.PublicKey, kid string) (json.RawMessage, error) {
	e, err := pub.ECDH()
	if err != nil {
		return nil, err
	}
	b := e.Bytes() // 0x04 || X || Y
	enc := base64.RawURLEncoding.EncodeToString
	return json.Marshal(map[string]string{"kty": "EC", "crv": "P-256", "x": enc(b[1:33]), "y": enc(b[33:65]), "kid": kid, "alg": AlgES256, "use": "sig"})
}

// Sealed private keys start with a version byte: 0 plain PKCS #8, 1
// AES-256-GCM (nonce, then ciphertext) with the kid as associated data, so
// a sealed key cannot be moved to another row.
const (
	keyPlain  = 0
	keySealed = 1
)

func (o *OAuth) seal(der []byte, kid string) ([]byte, error) {
	if len(o.kek) == 0 {
		return append([]byte{keyPlain}, der...), nil
	}
	gcm, err := o.gcm()
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append([]byte{keySealed}, nonce...)
	return gcm.Seal(out, nonce, der, []byte(kid)), nil
}

func (o *OAuth) open(blob []byte, kid string) (*ecdsa.PrivateKey, error) {
	if len(blob) < 2 {
		return nil, errors.New("empty key")
	}
	der := blob[1:]
	switch blob[0] {
	case keyPlain:
	case keySealed:
		if len(o.kek) == 0 {
			return nil, errors.New("the key is sealed and no key encryption key is configured")
		}
		gcm, err := o.gcm()
		if err != nil {
			return nil, err
		}
		if len(der) < gcm.NonceSize() {
			return nil, errors.New("sealed key too short")
		}
		if der, err = gcm.Open(nil, der[:gcm.NonceSize()], der[gcm.NonceSize():], []byte(kid)); err != nil {
			return nil, errors.New("the key encryption key does not open the key")
		}
	default:
		return nil, fmt.Errorf("unknown key format %d", blob[0])
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is a %T, not ECDSA", k)
	}
	return ec, nil
}

func (o *OAuth) gcm() (cipher.AEAD, error) {
	block, err := aes.NewCipher(o.kek)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// loadKeys returns the key set, from memory for keySetCacheTTL.
func (o *OAuth) loadKeys(ctx context.Context) ([]*loadedKey, error) {
	o.keys.mu.Lock()
	defer o.keys.mu.Unlock()
	if !o.keys.at.IsZero() && time.Since(o.keys.at) < keySetCacheTTL {
		return o.keys.keys, nil
	}
	rows, err := o.read.SigningKeys(ctx, o.clock.Now())
	if err != nil {
		return nil, fmt.Errorf("auth: signing keys: %w", err)
	}
	keys := make([]*loadedKey, 0, len(rows))
	for _, r := range rows {
		priv, err := o.open(r.PrivateKey, r.KID)
		if err != nil {
			// One unreadable key must not take signing down; it is left out
			// of the set, loudly.
			o.log.ErrorContext(ctx, "oauth: signing key unreadable", "kid", r.KID, "err", err)
			continue
		}
		keys = append(keys, &loadedKey{row: r, priv: priv})
	}
	o.keys.keys, o.keys.at = keys, time.Now()
	return keys, nil
}

// SigningKey returns the key that signs now, making the first key if there
// is none.
func (o *OAuth) SigningKey(ctx context.Context) (*ActiveKey, error) {
	for attempt := range 2 {
		keys, err := o.loadKeys(ctx)
		if err != nil {
			return nil, err
		}
		now := o.clock.Now()
		var active *loadedKey
		for _, k := range keys {
			if !k.row.ActiveFrom.After(now) && now.Before(k.row.RetireAt) {
				active = k // keys are ordered by ActiveFrom: the last one wins
			}
		}
		if active != nil {
			return &ActiveKey{KID: active.row.KID, Alg: active.row.Alg, Private: active.priv}, nil
		}
		if attempt == 0 {
			if _, err := o.RotateKeys(ctx, RotateKeysParams{}); err != nil {
				return nil, err
			}
		}
	}
	return nil, errors.New("auth: no signing key is active")
}

// KeySet returns the published keys: the active one, the next one and
// those retired less than a week ago.
func (o *OAuth) KeySet(ctx context.Context) ([]PublicKey, error) {
	keys, err := o.loadKeys(ctx)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		// Never publish an empty set: make the first key now.
		if _, err := o.SigningKey(ctx); err != nil {
			return nil, err
		}
		if keys, err = o.loadKeys(ctx); err != nil {
			return nil, err
		}
	}
	now := o.clock.Now()
	out := make([]PublicKey, 0, len(keys))
	for _, k := range keys {
		if now.Before(k.row.ExpiresAt) {
			out = append(out, PublicKey{KID: k.row.KID, Alg: k.row.Alg, Public: &k.priv.PublicKey})
		}
	}
	return out, nil
}

// RunUpkeep rotates keys now and then hourly, and prunes expired rows
// daily, until ctx ends. Every node may run it.
func (o *OAuth) RunUpkeep(ctx context.Context) {
	rotate := time.NewTicker(time.Hour)
	defer rotate.Stop()
	prune := time.NewTicker(24 * time.Hour)
	defer prune.Stop()
	for {
		if _, err := o.RotateKeys(ctx, RotateKeysParams{}); err != nil && ctx.Err() == nil {
			o.log.ErrorContext(ctx, "oauth: key rotation", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-rotate.C:
		case <-prune.C:
			if err := o.Prune(ctx); err != nil && ctx.Err() == nil {
				o.log.ErrorContext(ctx, "oauth: prune", "err", err)
			}
		}
	}
}
