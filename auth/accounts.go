package auth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/identity"
)

// TxStore is what one write transaction offers the account rules: their
// own tables (accounts, their factors and upstream links) and the
// identity store, so that an account and the person it attaches to change
// together.
type TxStore interface {
	AccountStore
	MFAStore
	UpstreamStore
	identity.Store
}

// TxFunc runs fn in one write transaction of the engine.
type TxFunc func(ctx context.Context, fn func(TxStore) error) error

// Config is what Accounts needs.
type Config struct {
	// Read reads committed state; InTx writes.
	Read TxStore
	InTx TxFunc
	// Identity holds the people accounts attach to.
	Identity *Identity
	Clock    onramp.Clock
	Log      *slog.Logger
	Hasher   PasswordHasher
	// PublicURL is Onramp's own origin (the OIDC issuer), used in emails.
	PublicURL string
	// ProductName appears in emails ("Your Acme sign-in code").
	ProductName string
	Limits      Limits
	// Upstream, if set, connects to upstream identity providers; without
	// it, signing in through one is off.
	Upstream UpstreamConnector
	// Lifetimes; zero picks the defaults below.
	SessionLifetime time.Duration
	SessionIdle     time.Duration
	StaffLifetime   time.Duration
}

// PasswordHasher is a Hasher that also offers a hash to verify against
// when there is no stored one, so that an unknown email costs the same
// time as a wrong password.
type PasswordHasher interface {
	Hasher
	DummyPHC() string
}

// Identity is the part of identity.Service the account rules use.
type Identity = identity.Service

// Default lifetimes (Auth0's and Kratos' defaults are of the same order).
const (
	defaultSessionLifetime = 30 * 24 * time.Hour
	defaultSessionIdle     = 7 * 24 * time.Hour
	defaultStaffLifetime   = 12 * time.Hour
	flowLifetime           = 30 * time.Minute
	codeLifetime           = 10 * time.Minute
	codeMaxAttempts        = 5
	ownerLinkLifetime      = 24 * time.Hour
)

// sessionCacheTTL bounds how long another node may honour a revoked
// session or a changed staff role (docs/auth.md).
const sessionCacheTTL = 10 * time.Second

// Accounts holds the rules of accounts: sign-up, sign-in, email proof,
// sessions, recovery, staff and the audit log.
type Accounts struct {
	cfg     Config
	keys    serverKeys
	limiter *limiter
	// refusals bounds how many refused requests (forged forms) per IP are
	// written to the audit log, so that anonymous posts cannot flood it.
	refusals *limiter
	// sessions caches CheckSession answers by secret hash for a few
	// seconds, so a session check costs a hash and a map lookup.
	sessions *sessionCache
	// staff and accounts cache the rows a session check needs next (the
	// staff role on every console and API call, the account for who-am-I
	// and single sign-on) for as long as sessions are cached. Only rows
	// that exist are kept; changes on this node forget them at once.
	staff    ttlCache[*Staff]
	accounts ttlCache[*Account]
	// group lets concurrent password sign-ins share a commit (groupTx).
	group txGroup[TxStore]
	// rp is the WebAuthn relying party of PublicURL, made on first use.
	rp       relyingParty
	initOnce sync.Once
	initErr  error
}

// serverKeys are the secrets every node shares, made by the first start.
// upstream seals the client secrets of upstream identity providers.
type serverKeys struct {
	csrf, code, ident, upstream []byte
	// totp seals the authenticator-app secrets (AES-256-GCM).
	totp []byte
}

// NewAccounts returns the account rules. Call Init before use.
func NewAccounts(cfg Config) *Accounts {
	if cfg.SessionLifetime == 0 {
		cfg.SessionLifetime = defaultSessionLifetime
	}
	if cfg.SessionIdle == 0 {
		cfg.SessionIdle = defaultSessionIdle
	}
	if cfg.StaffLifetime == 0 {
		cfg.StaffLifetime = defaultStaffLifetime
	}
	if cfg.ProductName == "" {
		cfg.ProductName = "Onramp"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	cfg.Limits = cfg.Limits.withDefaults()
	return &Accounts{cfg: cfg, limiter: newLimiter(cfg.Limits), refusals: newLimiter(Limits{IPRate: cfg.Limits.RefusalRate, IPBurst: cfg.Limits.RefusalBurst}),
		sessions: newSessionCache(sessionCacheTTL), staff: newTTLCache[*Staff](sessionCacheTTL), accounts: newTTLCache[*Account](sessionCacheTTL)}
}

// Init loads (or, on the very first start, makes) the shared server keys.
func (s *Accounts) Init(ctx context.Context) error {
	s.initOnce.Do(func() {
		s.initErr = s.cfg.InTx(ctx, func(st TxStore) error {
			for _, k := range []struct {
				name string
				dst  *[]byte
			}{{"csrf", &s.keys.csrf}, {"code_hmac", &s.keys.code}, {"ident_hmac", &s.keys.ident}, {"upstream_secrets", &s.keys.upstream}, {"totp", &s.keys.totp}} {
				fresh := make([]byte, 32)
				_, _ = rand.Read(fresh)
				v, err := st.ServerSecret(ctx, k.name, fresh, s.cfg.Clock.Now())
				if err != nil {
					return err
				}
				*k.dst = v
			}
			return nil
		})
	})
	if s.initErr != nil {
		return fmt.Errorf("auth: init: %w", s.initErr)
	}
	return nil
}

// PublicURL is Onramp's own origin, as configured.
func (s *Accounts) PublicURL() string { return s.cfg.PublicURL }

// CSRFToken is the token a form of the flow or session id must carry.
func (s *Accounts) CSRFToken(bindTo string) string {
	return macString(s.keys.csrf, "csrf", bindTo)
}

// CheckCSRF reports whether token is the CSRF token of bindTo, in
// constant time.
func (s *Accounts) CheckCSRF(bindTo, token string) bool {
	want := s.CSRFToken(bindTo)
	return bindTo != "" && hmac.Equal([]byte(want), []byte(token))
}

func macString(key []byte, parts ...string) string {
	pool := macPool(key)
	m := pool.Get().(hash.Hash)
	m.Reset()
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	out := base64.RawURLEncoding.EncodeToString(m.Sum(sum[:0]))
	pool.Put(m)
	return out
}

// macPools keeps keyed HMACs for reuse, per key: setting one up hashes
// the key twice, and every console call makes a CSRF token. Reset brings
// an HMAC back to its keyed start. The keys are the few server keys.
var macPools sync.Map // string(key) → *sync.Pool of hash.Hash

func macPool(key []byte) *sync.Pool {
	if p, ok := macPools.Load(string(key)); ok {
		return p.(*sync.Pool)
	}
	k := bytes.Clone(key)
	p, _ := macPools.LoadOrStore(string(k), &sync.Pool{New: func() any { return hmac.New(sha256.New, k) }})
	return p.(*sync.Pool)
}

// hashToken is the stored form of a high-entropy secret.
func hashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// RequestInfo says where a call came from, for limits and the audit log.
type RequestInfo struct {
	IP        string
	UserAgent string
}

// record appends an audit entry inside st.
func (s *Accounts) record(ctx context.Context, st AccountStore, e AuditEntry) error {
	e.ID = onramp.NewID("aud")
	if e.At.IsZero() {
		e.At = s.cfg.Clock.Now()
	}
	if e.Outcome == "" {
		e.Outcome = OutcomeSuccess
	}
	if err := st.AppendAudit(ctx, &e); err != nil {
		return fmt.Errorf("auth: audit: %w", err)
	}
	return nil
}

// Record appends an audit entry for an action outside the account rules
// (a property created, a person merged by staff).
func (s *Accounts) Record(ctx context.Context, e AuditEntry) error {
	return s.cfg.InTx(ctx, func(st TxStore) error { return s.record(ctx, st, e) })
}

// RecordRefusal appends the audit entry of a refused anonymous request
// (a forged or stale form): per IP and node at most Limits.RefusalRate a
// second after a burst of Limits.RefusalBurst (1 and 20 by default).
// Beyond that entries are dropped, so refusals cannot flood the audit
// log. It reports whether the entry was written.
func (s *Accounts) RecordRefusal(ctx context.Context, e AuditEntry) (bool, error) {
	if !s.refusals.allow(e.IP, s.cfg.Clock.Now()) {
		return false, nil
	}
	return true, s.Record(ctx, e)
}

// Audit lists audit entries, newest first. An outcome that does not
// exist or an action that cannot be one is refused (EINVALID) rather than
// answered with no entries, which would read as "nothing happened".
func (s *Accounts) Audit(ctx context.Context, q AuditQuery) ([]*AuditEntry, error) {
	if err := q.validate(); err != nil {
		return nil, err
	}
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 100
	}
	out, err := s.cfg.Read.ListAudit(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("auth: audit: %w", err)
	}
	return out, nil
}

// timeline queues a track event on the person's timeline, delivered by the
// outbox worker through ingest (so it is also published on the bus).
func (s *Accounts) timeline(ctx context.Context, st AccountStore, ev TimelineEvent) error {
	if ev.MessageID == "" {
		ev.MessageID = onramp.NewID("aev")
	}
	if ev.At.IsZero() {
		ev.At = s.cfg.Clock.Now()
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("auth: timeline: %w", err)
	}
	return st.EnqueueOutbox(ctx, &OutboxJob{Kind: JobTimeline, Payload: payload, RunAt: s.cfg.Clock.Now()})
}

// TimelineEvent is an auth event bound for a person's timeline: a Segment
// track call with userId = the account's subject.
type TimelineEvent struct {
	MessageID   string         `json:"message_id"`
	Event       string         `json:"event"`
	Subject     string         `json:"subject"`
	AnonymousID string         `json:"anonymous_id,omitempty"`
	PropertyID  string         `json:"property_id,omitempty"`
	Properties  map[string]any `json:"properties,omitempty"`
	At          time.Time      `json:"at"`
}

// mail queues an email.
func (s *Accounts) mail(ctx context.Context, st AccountStore, e Email) error {
	payload, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("auth: mail: %w", err)
	}
	return st.EnqueueOutbox(ctx, &OutboxJob{Kind: JobEmail, Payload: payload, RunAt: s.cfg.Clock.Now()})
}

// SharedKey returns the 32-byte server key stored under name, making it
// on the very first start (every node shares it: the OIDC provider's token
// encryption key, for one).
func (s *Accounts) SharedKey(ctx context.Context, name string) ([32]byte, error) {
	var out [32]byte
	fresh := make([]byte, 32)
	_, _ = rand.Read(fresh)
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		v, err := st.ServerSecret(ctx, name, fresh, s.cfg.Clock.Now())
		if err != nil {
			return err
		}
		if len(v) != 32 {
			return fmt.Errorf("server key %s has %d bytes, want 32", name, len(v))
		}
		copy(out[:], v)
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("auth: shared key: %w", err)
	}
	return out, nil
}

// auditAction is the shape of an action ("staff.invited": lower-case
// words joined by dots) or of a prefix of one ending in "*" ("staff.*",
// "auth.provider_*", "*").
var auditAction = regexp.MustCompile(`^(\*|[a-z][a-z0-9_]*(\.[a-z0-9_]*)*\*?)$`)

func (q AuditQuery) validate() error {
	switch q.Outcome {
	case "", OutcomeSuccess, OutcomeFailure, OutcomeDenied:
	default:
		return onramp.Errorf(onramp.EINVALID, "outcome must be %s, %s or %s, not %q.", OutcomeSuccess, OutcomeFailure, OutcomeDenied, q.Outcome)
	}
	if q.Action != "" && (len(q.Action) > 100 || !auditAction.MatchString(q.Action)) {
		return onramp.Errorf(onramp.EINVALID, "action must be an action such as staff.invited, or a prefix of one ending in * such as staff.*, not %q.", q.Action)
	}
	return nil
}
