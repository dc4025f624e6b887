package auth

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/onramp-dev/onramp"
)

// testParams keep real argon2id hashing in tests to about a millisecond.
var testParams = Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1}

func newTestHasher(t testing.TB, cfg Argon2idConfig) *Argon2id {
	t.Helper()
	if cfg.Params == (Argon2Params{}) {
		cfg.Params = testParams
	}
	h, err := NewArgon2id(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func argon2IDKeyForTest(password string, salt []byte, p Argon2Params, keyLen uint32) []byte {
	return argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, keyLen)
}

var phcPattern = regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestArgon2idHashVerify(t *testing.T) {
	ctx := context.Background()
	h := newTestHasher(t, Argon2idConfig{})
	tests := []struct {
		name, password, wrong string
	}{
		{"ascii", "correct horse battery staple", "correct horse battery stapl"},
		{"case matters", "Tr0ub4dor&3", "tr0ub4dor&3"},
		{"unicode", "пароль-密码-🔑", "пароль-密码-🔐"},
		{"empty", "", " "},
		{"long", strings.Repeat("long passphrase ", 64), strings.Repeat("long passphrase ", 63)},
		{"nul byte", "a\x00b", "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			phc, err := h.Hash(ctx, tt.password)
			if err != nil {
				t.Fatal(err)
			}
			if !phcPattern.MatchString(phc) {
				t.Fatalf("Hash = %q, not a PHC string with 16-byte salt and 32-byte key", phc)
			}
			ok, rehash, err := h.Verify(ctx, phc, tt.password)
			if err != nil || !ok || rehash {
				t.Errorf("Verify(right) = %v, %v, %v; want true, false, nil", ok, rehash, err)
			}
			ok, rehash, err = h.Verify(ctx, phc, tt.wrong)
			if err != nil || ok || rehash {
				t.Errorf("Verify(wrong) = %v, %v, %v; want false, false, nil", ok, rehash, err)
			}
			again, _ := h.Hash(ctx, tt.password)
			if again == phc {
				t.Error("two hashes of one password are equal: the salt is not random")
			}
		})
	}
}

// TestArgon2idNormalises: a password set as typed on one system verifies as
// typed on another that composes characters differently.
func TestArgon2idNormalises(t *testing.T) {
	ctx := context.Background()
	h := newTestHasher(t, Argon2idConfig{})
	tests := []struct{ set, typed string }{
		{"caf\u00e9 au lait", "cafe\u0301 au lait"},   // composed vs combining accent
		{"ｐａｓｓ１２３４", "pass1234"},                      // full-width vs ASCII (NFKC)
		{"\u212bngstr\u00f6m", "\u00c5ngstro\u0308m"}, // Angstrom sign vs letter
	}
	for _, tt := range tests {
		phc, err := h.Hash(ctx, tt.set)
		if err != nil {
			t.Fatal(err)
		}
		if ok, _, err := h.Verify(ctx, phc, tt.typed); err != nil || !ok {
			t.Errorf("set %q, typed %q: Verify = %v, %v; want true", tt.set, tt.typed, ok, err)
		}
	}
}

// TestVerifyReferenceVectors: hashes made by other implementations (the
// argon2 reference CLI, crypt_blowfish and libxcrypt) verify, so imported and
// hand-made hashes work, and none of them uses the current parameters.
func TestVerifyReferenceVectors(t *testing.T) {
	ctx := context.Background()
	h := newTestHasher(t, Argon2idConfig{Params: Argon2Params{MemoryKiB: 128, Time: 1, Threads: 1}})
	tests := []struct {
		name, phc, password string
	}{
		// echo -n "correct horse" | argon2 onramp-salt-1234 -id -t 2 -k 64 -p 1 -l 32 -e
		{"argon2 reference", "$argon2id$v=19$m=64,t=2,p=1$b25yYW1wLXNhbHQtMTIzNA$k/Qu/kZXSS5aJI/LqFcKEYQhtsCFki5w9XYIZDxg1qI", "correct horse"},
		{"argon2 reference p=2", "$argon2id$v=19$m=256,t=1,p=2$b25yYW1wLXNhbHQtMTIzNA$C6PoKFbiSzoGnmRZ6skIkDLezeisra4hkXU9+abUDZw", "correct horse"},
		// crypt_blowfish's own test vector, in three prefixes.
		{"bcrypt 2a", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U"},
		{"bcrypt 2b", "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U"},
		{"bcrypt 2y", "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U"},
		// libxcrypt, of the composed "pässwörd"; the person types it decomposed.
		{"bcrypt normalised", "$2b$04$abcdefghijklmnopqrstuuyx2n0Zzopyr9QuYTMCfOJJOj526QVoC", "pa\u0308sswo\u0308rd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(ctx, tt.phc, tt.password)
			if err != nil || !ok || !rehash {
				t.Errorf("Verify(right) = %v, %v, %v; want true, true, nil", ok, rehash, err)
			}
			ok, rehash, err = h.Verify(ctx, tt.phc, tt.password+"x")
			if err != nil || ok || rehash {
				t.Errorf("Verify(wrong) = %v, %v, %v; want false, false, nil", ok, rehash, err)
			}
		})
	}
}

// TestVerifyBcryptAsTyped: a bcrypt hash of an unnormalised password (the
// importing system did not normalise) still verifies as typed.
func TestVerifyBcryptAsTyped(t *testing.T) {
	typed := "ｐａｓｓ１２３４" // NFKC would make it "pass1234"
	b, err := bcrypt.GenerateFromPassword([]byte(typed), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	h := newTestHasher(t, Argon2idConfig{})
	ok, rehash, err := h.Verify(context.Background(), string(b), typed)
	if err != nil || !ok || !rehash {
		t.Errorf("Verify = %v, %v, %v; want true, true, nil", ok, rehash, err)
	}
}

func TestVerifyNeedsRehash(t *testing.T) {
	ctx := context.Background()
	old := newTestHasher(t, Argon2idConfig{Params: testParams})
	phc, err := old.Hash(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	stored, err := parseArgon2PHC(phc)
	if err != nil {
		t.Fatal(err)
	}
	shortSalt := argon2PHC{params: testParams, salt: stored.salt[:8]}
	shortSalt.key = argon2IDKeyForTest("correct horse", shortSalt.salt, testParams, 32)
	longKey := argon2PHC{params: testParams, salt: stored.salt}
	longKey.key = argon2IDKeyForTest("correct horse", longKey.salt, testParams, 64)

	tests := []struct {
		name   string
		params Argon2Params
		phc    string
		want   bool
	}{
		{"same params", testParams, phc, false},
		{"more memory", Argon2Params{MemoryKiB: 128, Time: 1, Threads: 1}, phc, true},
		{"more time", Argon2Params{MemoryKiB: 64, Time: 2, Threads: 1}, phc, true},
		{"more threads", Argon2Params{MemoryKiB: 64, Time: 1, Threads: 2}, phc, true},
		{"8-byte salt", testParams, shortSalt.String(), true},
		{"64-byte key", testParams, longKey.String(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHasher(t, Argon2idConfig{Params: tt.params})
			ok, rehash, err := h.Verify(ctx, tt.phc, "correct horse")
			if err != nil || !ok || rehash != tt.want {
				t.Errorf("Verify = %v, %v, %v; want true, %v, nil", ok, rehash, err, tt.want)
			}
			if ok, rehash, _ := h.Verify(ctx, tt.phc, "wrong horse"); ok || rehash {
				t.Errorf("Verify(wrong) = %v, %v; want false, false", ok, rehash)
			}
		})
	}
}

func TestVerifyMalformed(t *testing.T) {
	ctx := context.Background()
	h := newTestHasher(t, Argon2idConfig{})
	good, err := h.Hash(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$") // "", argon2id, v=19, m=…, salt, key
	salt, key := parts[4], parts[5]
	with := func(field int, v string) string {
		p := append([]string(nil), parts...)
		p[field] = v
		return strings.Join(p, "$")
	}
	const bc = "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
	tests := []struct{ name, phc string }{
		{"empty", ""},
		{"plain text", "correct horse"},
		{"argon2i", strings.Replace(good, "argon2id", "argon2i", 1)},
		{"scheme only", "$argon2id$"},
		{"missing key", strings.Join(parts[:5], "$")},
		{"extra field", good + "$x"},
		{"version 16", with(2, "v=16")},
		{"no version", "$argon2id$m=64,t=1,p=1$" + salt + "$" + key},
		{"params out of order", with(3, "t=1,m=64,p=1")},
		{"missing p", with(3, "m=64,t=1")},
		{"spaces", with(3, "m=64, t=1, p=1")},
		{"leading zero", with(3, "m=064,t=1,p=1")},
		{"plus sign", with(3, "m=+64,t=1,p=1")},
		{"negative", with(3, "m=-64,t=1,p=1")},
		{"t=0", with(3, "m=64,t=0,p=1")},
		{"p=0", with(3, "m=64,t=1,p=0")},
		{"p over uint8", with(3, "m=64,t=1,p=256")},
		{"m over uint32", with(3, "m=4294967296,t=1,p=1")},
		{"m of 4 TiB", with(3, "m=4294967295,t=1,p=1")},
		{"m below 8 per thread", with(3, "m=8,t=1,p=2")},
		{"t of hours", with(3, "m=64,t=4294967295,p=1")},
		{"padded salt", with(4, salt+"==")},
		{"url base64 salt", with(4, strings.NewReplacer("+", "-", "/", "_").Replace(salt)+"-_")},
		{"salt with newline", with(4, salt[:10]+"\n"+salt[10:])},
		{"salt trailing bits", with(4, salt[:21]+"B")},
		{"short salt", with(4, "c2FsdA")},
		{"empty salt", with(4, "")},
		{"short key", with(5, key[:20])},
		{"bcrypt short", bc[:59]},
		{"bcrypt long", bc + "A"},
		{"bcrypt cost 31", "$2b$31" + bc[6:]},
		{"bcrypt cost 3", "$2b$03" + bc[6:]},
		{"bcrypt cost sign", "$2b$+5" + bc[6:]},
		{"bcrypt bad char", bc[:40] + "!" + bc[41:]},
		{"bcrypt no separator", "$2b$05C" + bc[7:]},
		{"bcrypt 2x", "$2x$" + bc[4:]},
		{"bcrypt 2", "$2$05$" + bc[7:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(ctx, tt.phc, "correct horse")
			if err == nil || ok || rehash {
				t.Fatalf("Verify = %v, %v, %v; want false, false, an error", ok, rehash, err)
			}
			if strings.Contains(err.Error(), salt) || (len(tt.phc) > 20 && strings.Contains(err.Error(), tt.phc[len(tt.phc)-20:])) {
				t.Errorf("error %q quotes the stored hash", err)
			}
			if onramp.ErrorCode(err) != onramp.EINTERNAL {
				t.Errorf("code = %s; a broken stored hash is our fault, want %s", onramp.ErrorCode(err), onramp.EINTERNAL)
			}
		})
	}
}

func TestNewArgon2id(t *testing.T) {
	h, err := NewArgon2id(Argon2idConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.Params(), DefaultArgon2Params(); got != want {
		t.Errorf("zero config Params = %+v, want the defaults %+v", got, want)
	}
	if want := (Argon2Params{MemoryKiB: 19456, Time: 2, Threads: 1}); DefaultArgon2Params() != want {
		t.Errorf("DefaultArgon2Params = %+v, want OWASP's %+v", DefaultArgon2Params(), want)
	}
	if h.slotWait != 2*time.Second || cap(h.slots) < 1 {
		t.Errorf("zero config: wait %s, %d slots; want 2s and GOMAXPROCS", h.slotWait, cap(h.slots))
	}
	if partial := newTestHasher(t, Argon2idConfig{Params: Argon2Params{Time: 1}}); partial.Params() != (Argon2Params{MemoryKiB: 19456, Time: 1, Threads: 1}) {
		t.Errorf("zero fields not defaulted one by one: %+v", partial.Params())
	}

	bad := []Argon2idConfig{
		{Params: Argon2Params{MemoryKiB: 4, Time: 1, Threads: 1}},
		{Params: Argon2Params{MemoryKiB: 2 << 20, Time: 1, Threads: 1}},
		{Params: Argon2Params{MemoryKiB: 64, Time: 33, Threads: 1}},
		{Params: Argon2Params{MemoryKiB: 1024, Time: 1, Threads: 65}},
		{Params: testParams, MaxConcurrent: -1},
		{Params: testParams, SlotWait: -time.Second},
	}
	for _, cfg := range bad {
		if _, err := NewArgon2id(cfg); err == nil {
			t.Errorf("NewArgon2id(%+v) accepted a bad config", cfg)
		}
	}
}

func TestDummyPHC(t *testing.T) {
	ctx := context.Background()
	h := newTestHasher(t, Argon2idConfig{})
	d := h.DummyPHC()
	if d != h.DummyPHC() {
		t.Fatal("DummyPHC changes between calls")
	}
	if !phcPattern.MatchString(d) {
		t.Fatalf("DummyPHC = %q, not a PHC string with the current parameters", d)
	}
	for _, pw := range []string{"", "password", "correct horse"} {
		if ok, _, err := h.Verify(ctx, d, pw); err != nil || ok {
			t.Errorf("Verify(DummyPHC, %q) = %v, %v; want false, nil", pw, ok, err)
		}
	}
}

func TestHashSlots(t *testing.T) {
	const bc = "$2b$04$abcdefghijklmnopqrstuuyx2n0Zzopyr9QuYTMCfOJJOj526QVoC"
	ctx := context.Background()
	h := newTestHasher(t, Argon2idConfig{MaxConcurrent: 1, SlotWait: 30 * time.Millisecond})
	phc, err := h.Hash(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	release, err := h.acquire(ctx) // someone else is hashing
	if err != nil {
		t.Fatal(err)
	}

	ops := map[string]func(context.Context) error{
		"Hash":          func(ctx context.Context) error { _, err := h.Hash(ctx, "x"); return err },
		"Verify":        func(ctx context.Context) error { _, _, err := h.Verify(ctx, phc, "x"); return err },
		"Verify bcrypt": func(ctx context.Context) error { _, _, err := h.Verify(ctx, bc, "x"); return err },
	}
	for name, op := range ops {
		start := time.Now()
		err := op(ctx)
		if onramp.ErrorCode(err) != onramp.EUNAVAILABLE {
			t.Errorf("%s with no free slot: err = %v, want %s", name, err, onramp.EUNAVAILABLE)
		}
		if waited := time.Since(start); waited < 30*time.Millisecond {
			t.Errorf("%s gave up after %s, before SlotWait", name, waited)
		}

		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(5*time.Millisecond, cancel)
		h.slotWait = time.Minute
		if err := op(cctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%s cancelled while waiting: err = %v, want context.Canceled", name, err)
		}
		h.slotWait = 30 * time.Millisecond
	}

	release()
	for name, op := range ops {
		if err := op(ctx); err != nil {
			t.Errorf("%s after the slot was freed: %v", name, err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := h.Hash(cctx, "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("Hash with a cancelled context and a free slot: err = %v, want context.Canceled", err)
	}
}

// TestHashSlotsBound: many callers at once are all served, never more than
// MaxConcurrent at a time.
func TestHashSlotsBound(t *testing.T) {
	h := newTestHasher(t, Argon2idConfig{MaxConcurrent: 2, SlotWait: 10 * time.Second})
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		inFlight int
		peak     int
	)
	for range 16 {
		wg.Go(func() {
			release, err := h.acquire(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inFlight++
			peak = max(peak, inFlight)
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
			mu.Lock()
			inFlight--
			mu.Unlock()
			release()
		})
	}
	wg.Wait()
	if peak > 2 {
		t.Errorf("%d hashes ran at once, want at most 2", peak)
	}
}

// FuzzVerifyPHC: no stored string makes the parsers panic; what the argon2id
// parser accepts is exactly what Hash writes (one spelling per hash); and
// Verify runs to an answer on whatever is accepted.
func FuzzVerifyPHC(f *testing.F) {
	h := newTestHasher(f, Argon2idConfig{})
	good, err := h.Hash(context.Background(), "correct horse")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		good,
		"$argon2id$v=19$m=64,t=2,p=1$b25yYW1wLXNhbHQtMTIzNA$k/Qu/kZXSS5aJI/LqFcKEYQhtsCFki5w9XYIZDxg1qI",
		"$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
		"$argon2id$v=19$m=64,t=1,p=1$$",
		"$argon2id$v=19$m=,t=,p=$a$b",
		"$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
		"$2y$04$abcdefghijklmnopqrstuuyx2n0Zzopyr9QuYTMCfOJJOj526QVoC",
		"$2a$",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ctx := context.Background()
		p, err := parseArgon2PHC(s)
		switch {
		case err == nil:
			if p.String() != s {
				t.Fatalf("parse accepted %q, which Hash would write as %q", s, p.String())
			}
			// Bounded so the fuzzer spends its time on parsing, not hashing.
			if p.params.MemoryKiB <= 1024 && p.params.Time <= 2 && p.params.Threads <= 4 {
				if _, _, err := h.Verify(ctx, s, "correct horse"); err != nil {
					t.Fatalf("Verify of an accepted argon2id hash failed: %v", err)
				}
			}
		case isBcryptPrefix(s) && checkBcrypt(s) == nil:
			if s[4:6] <= "05" {
				h.Verify(ctx, s, "correct horse") // must not panic; an error is fine
			}
		default:
			// Refused before any hashing, so this is cheap whatever s is.
			if ok, _, err := h.Verify(ctx, s, "correct horse"); err == nil || ok {
				t.Fatalf("Verify(%q) = %v, %v; want an error", s, ok, err)
			}
		}
	})
}

// BenchmarkArgon2idDefault is the cost of one password hash at the real
// defaults, the figure that bounds sign-ins per second per core.
func BenchmarkArgon2idDefault(b *testing.B) {
	h, err := NewArgon2id(Argon2idConfig{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}
