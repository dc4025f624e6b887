package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/onramp-dev/onramp"
)

// Hasher turns passwords into stored PHC strings and checks them. Passwords
// are passed as the person typed them; implementations normalise them with
// NormalizePassword so that a password set on one keyboard verifies on another.
type Hasher interface {
	Hash(ctx context.Context, password string) (phc string, err error)
	// Verify reports whether password matches phc, and whether phc should
	// be replaced by a fresh Hash because it was made with other parameters
	// or another algorithm. needsRehash is only true when ok is.
	Verify(ctx context.Context, phc, password string) (ok bool, needsRehash bool, err error)
}

// Argon2Params are the argon2id cost parameters.
type Argon2Params struct {
	MemoryKiB uint32
	Time      uint32 // passes over memory
	Threads   uint8
}

// DefaultArgon2Params are OWASP's recommendation for argon2id
// (m=19456 KiB, t=2, p=1): about 30 ms of one core per hash.
func DefaultArgon2Params() Argon2Params {
	return Argon2Params{MemoryKiB: 19456, Time: 2, Threads: 1}
}

const (
	argon2SaltLen = 16
	argon2KeyLen  = 32

	// Limits on parameters, for configuration and for stored hashes alike:
	// a stored PHC is read back into an allocation of m KiB, so a corrupt or
	// hostile row must not be able to ask for gigabytes or hours.
	maxArgon2MemoryKiB = 1 << 20 // 1 GiB
	maxArgon2Time      = 32
	maxArgon2Threads   = 64
	minArgon2Salt      = 8
	maxArgon2Salt      = 64
	minArgon2Key       = 16
	maxArgon2Key       = 64

	// bcrypt cost 16 takes several seconds; anything above would let one
	// imported row stall a core for minutes.
	maxBcryptCost = 16
	bcryptLen     = 60
)

func (p Argon2Params) validate() error {
	switch {
	case p.Time < 1 || p.Time > maxArgon2Time:
		return fmt.Errorf("argon2 time must be 1 to %d, not %d", maxArgon2Time, p.Time)
	case p.Threads < 1 || p.Threads > maxArgon2Threads:
		return fmt.Errorf("argon2 threads must be 1 to %d, not %d", maxArgon2Threads, p.Threads)
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxArgon2MemoryKiB:
		// 8 KiB per thread is argon2's own minimum (RFC 9106 §3.1).
		return fmt.Errorf("argon2 memory must be %d to %d KiB, not %d", 8*uint32(p.Threads), maxArgon2MemoryKiB, p.MemoryKiB)
	}
	return nil
}

// Argon2idConfig configures NewArgon2id. Zero fields take the defaults.
type Argon2idConfig struct {
	Params Argon2Params // each zero field: DefaultArgon2Params
	// MaxConcurrent bounds the hashes computed at once (default GOMAXPROCS).
	// Each argon2id hash holds Params.MemoryKiB of memory and a core, so a
	// burst of sign-ins queues instead of exhausting memory.
	MaxConcurrent int
	// SlotWait is how long a hash waits for a free slot before failing with
	// onramp.EUNAVAILABLE (default 2 s): a fast "try again" beats a request
	// that times out behind a queue it cannot see.
	SlotWait time.Duration
}

// Argon2id is the Hasher for passwords: argon2id in PHC strings, plus
// verification of bcrypt hashes imported from other systems.
type Argon2id struct {
	params   Argon2Params
	slots    chan struct{}
	slotWait time.Duration
	dummy    string
}

var _ Hasher = (*Argon2id)(nil)

// NewArgon2id returns a Hasher with cfg's parameters. It computes one hash
// (DummyPHC) before returning, so it takes as long as one sign-in.
func NewArgon2id(cfg Argon2idConfig) (*Argon2id, error) {
	p, def := cfg.Params, DefaultArgon2Params()
	if p.MemoryKiB == 0 {
		p.MemoryKiB = def.MemoryKiB
	}
	if p.Time == 0 {
		p.Time = def.Time
	}
	if p.Threads == 0 {
		p.Threads = def.Threads
	}
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	n := cfg.MaxConcurrent
	if n < 0 {
		return nil, fmt.Errorf("auth: argon2 max concurrent hashes must not be negative, not %d", n)
	}
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	wait := cfg.SlotWait
	if wait < 0 {
		return nil, fmt.Errorf("auth: argon2 slot wait must not be negative, not %s", wait)
	}
	if wait == 0 {
		wait = 2 * time.Second
	}
	h := &Argon2id{params: p, slots: make(chan struct{}, n), slotWait: wait}
	// A random password nobody knows: verifying against it fails, slowly.
	h.dummy = h.hash(rand.Text())
	return h, nil
}

// Params returns the parameters new hashes are made with.
func (h *Argon2id) Params() Argon2Params { return h.params }

// DummyPHC returns a hash made with the current parameters of a password
// nobody knows. Sign-in with an unknown email verifies against it so that
// the answer takes as long as for a known one and does not reveal which
// emails have accounts.
func (h *Argon2id) DummyPHC() string { return h.dummy }

// Hash returns the PHC string of password under the current parameters.
func (h *Argon2id) Hash(ctx context.Context, password string) (string, error) {
	release, err := h.acquire(ctx)
	if err != nil {
		return "", fmt.Errorf("auth: hash password: %w", err)
	}
	defer release()
	return h.hash(NormalizePassword(password)), nil
}

func (h *Argon2id) hash(password string) string {
	salt := make([]byte, argon2SaltLen)
	rand.Read(salt) // never fails (crypto/rand, Go 1.24+): it crashes the program instead
	key := argon2.IDKey([]byte(password), salt, h.params.Time, h.params.MemoryKiB, h.params.Threads, argon2KeyLen)
	return argon2PHC{params: h.params, salt: salt, key: key}.String()
}

// Verify checks password against an argon2id or bcrypt PHC string. A
// malformed or unknown phc is an error (the stored row is broken), not a
// wrong password.
func (h *Argon2id) Verify(ctx context.Context, phc, password string) (ok, needsRehash bool, err error) {
	switch {
	case strings.HasPrefix(phc, "$argon2id$"):
		stored, err := parseArgon2PHC(phc)
		if err != nil {
			return false, false, err
		}
		release, err := h.acquire(ctx)
		if err != nil {
			return false, false, fmt.Errorf("auth: verify password: %w", err)
		}
		defer release()
		key := argon2.IDKey([]byte(NormalizePassword(password)), stored.salt, stored.params.Time, stored.params.MemoryKiB, stored.params.Threads, uint32(len(stored.key)))
		if subtle.ConstantTimeCompare(key, stored.key) != 1 {
			return false, false, nil
		}
		current := stored.params == h.params && len(stored.salt) == argon2SaltLen && len(stored.key) == argon2KeyLen
		return true, !current, nil
	case isBcryptPrefix(phc):
		if err := checkBcrypt(phc); err != nil {
			return false, false, err
		}
		release, err := h.acquire(ctx)
		if err != nil {
			return false, false, fmt.Errorf("auth: verify password: %w", err)
		}
		defer release()
		ok, err := verifyBcrypt(phc, password)
		// Any bcrypt match moves the account to argon2id.
		return ok, ok, err
	}
	return false, false, fmt.Errorf("auth: stored password hash has an unknown scheme")
}

// acquire takes a hashing slot, waiting at most slotWait, and returns the
// function that gives it back.
func (h *Argon2id) acquire(ctx context.Context) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	release = func() { <-h.slots }
	select {
	case h.slots <- struct{}{}:
		return release, nil
	default:
	}
	timer := time.NewTimer(h.slotWait)
	defer timer.Stop()
	select {
	case h.slots <- struct{}{}:
		return release, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timer.C:
		return nil, onramp.Errorf(onramp.EUNAVAILABLE, "Too many passwords are being checked right now. Please try again in a few seconds.")
	}
}

// argon2PHC is a parsed "$argon2id$v=19$m=…,t=…,p=…$salt$key" string, with
// salt and key in unpadded standard base64 as the PHC format and the
// argon2 reference implementation write them.
type argon2PHC struct {
	params    Argon2Params
	salt, key []byte
}

func (p argon2PHC) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		p.params.MemoryKiB, p.params.Time, p.params.Threads,
		base64.RawStdEncoding.EncodeToString(p.salt), base64.RawStdEncoding.EncodeToString(p.key))
}

// parseArgon2PHC accepts only the canonical form String writes, so one
// password has exactly one stored spelling per salt. Its errors never quote
// the input: it holds a salt and a hash.
func parseArgon2PHC(s string) (argon2PHC, error) {
	bad := func(why string) (argon2PHC, error) {
		return argon2PHC{}, fmt.Errorf("auth: stored argon2id hash is malformed: %s", why)
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return bad("want 5 $-separated fields")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("unsupported version")
	}
	var p argon2PHC
	m, rest, ok := strings.Cut(parts[3], ",")
	if !ok {
		return bad("want m=,t=,p=")
	}
	t, pp, ok := strings.Cut(rest, ",")
	if !ok {
		return bad("want m=,t=,p=")
	}
	mem, err := paramUint(m, "m=", 32)
	if err != nil {
		return bad(err.Error())
	}
	tm, err := paramUint(t, "t=", 32)
	if err != nil {
		return bad(err.Error())
	}
	th, err := paramUint(pp, "p=", 8)
	if err != nil {
		return bad(err.Error())
	}
	p.params = Argon2Params{MemoryKiB: uint32(mem), Time: uint32(tm), Threads: uint8(th)}
	if err := p.params.validate(); err != nil {
		return bad(err.Error())
	}
	if p.salt, err = decodeB64(parts[4]); err != nil {
		return bad("salt is not unpadded base64")
	}
	if len(p.salt) < minArgon2Salt || len(p.salt) > maxArgon2Salt {
		return bad(fmt.Sprintf("salt must be %d to %d bytes", minArgon2Salt, maxArgon2Salt))
	}
	if p.key, err = decodeB64(parts[5]); err != nil {
		return bad("hash is not unpadded base64")
	}
	if len(p.key) < minArgon2Key || len(p.key) > maxArgon2Key {
		return bad(fmt.Sprintf("hash must be %d to %d bytes", minArgon2Key, maxArgon2Key))
	}
	return p, nil
}

// paramUint parses "k=123" with no sign, no leading zero and no spaces.
func paramUint(s, prefix string, bits int) (uint64, error) {
	digits, ok := strings.CutPrefix(s, prefix)
	if !ok || digits == "" || (digits[0] == '0' && len(digits) > 1) || digits[0] == '+' {
		return 0, fmt.Errorf("want %sN", prefix)
	}
	n, err := strconv.ParseUint(digits, 10, bits)
	if err != nil {
		return 0, fmt.Errorf("%s is not a number in range", prefix)
	}
	return n, nil
}

// decodeB64 decodes unpadded standard base64 and refuses other spellings of
// the same bytes (line breaks, non-zero trailing bits), which the decoder
// alone would let through.
func decodeB64(s string) ([]byte, error) {
	b, err := base64.RawStdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, err
	}
	if base64.RawStdEncoding.EncodeToString(b) != s {
		return nil, fmt.Errorf("non-canonical base64")
	}
	return b, nil
}

func isBcryptPrefix(s string) bool {
	return strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$")
}

// checkBcrypt validates "$2b$NN$" + 53 characters of bcrypt's base64 before
// x/crypto sees it: its parser slices without bounds checks on some inputs
// and accepts costs that would run for days.
func checkBcrypt(s string) error {
	bad := func(why string) error { return fmt.Errorf("auth: stored bcrypt hash is malformed: %s", why) }
	if len(s) != bcryptLen || s[6] != '$' {
		return bad("want $2b$NN$ and 53 characters")
	}
	if !isDigit(s[4]) || !isDigit(s[5]) {
		return bad("cost is not two digits")
	}
	cost := int(s[4]-'0')*10 + int(s[5]-'0')
	if cost < bcrypt.MinCost || cost > maxBcryptCost {
		return bad(fmt.Sprintf("cost must be %d to %d", bcrypt.MinCost, maxBcryptCost))
	}
	for i := 7; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) || c == '.' || c == '/') {
			return bad("salt and hash must be bcrypt base64")
		}
	}
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// verifyBcrypt tries the password as typed first: the system that made an
// imported hash most likely did not normalise. The normalised form is tried
// too, in case it did.
func verifyBcrypt(phc, password string) (bool, error) {
	candidates := []string{password}
	if n := NormalizePassword(password); n != password {
		candidates = append(candidates, n)
	}
	for _, pw := range candidates {
		switch err := bcrypt.CompareHashAndPassword([]byte(phc), []byte(pw)); {
		case err == nil:
			return true, nil
		case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		default:
			return false, fmt.Errorf("auth: stored bcrypt hash is malformed: %w", err)
		}
	}
	return false, nil
}
