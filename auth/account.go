package auth

import (
	"context"
	"encoding/json"
	"time"

	"github.com/onramp-dev/onramp/identity"
)

// This file holds the records of accounts, sign-in flows, sessions, staff,
// the audit log and the small pieces of shared state the sign-in rules
// need, and the AccountStore each engine implements for them. The tables
// are described in docs/design/auth.md §1. Secrets are never stored: only
// their SHA-256 (high-entropy tokens) or argon2id PHC string (passwords).

// Account statuses.
const (
	AccountActive   = "active"
	AccountDisabled = "disabled"
)

// Account is a person of the identity store who can sign in. PersonID is
// the identity person (the account has no id of its own); Subject is the
// OIDC `sub`, minted once and never changed, also written as the person's
// verified user_id identifier.
type Account struct {
	PersonID       string    `json:"person_id"`
	Subject        string    `json:"subject"`
	WebAuthnHandle []byte    `json:"-"`
	Status         string    `json:"status"`
	PrimaryEmail   string    `json:"primary_email"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// Session is a signed-in browser on Onramp's origin. ID is public (the OIDC
// `sid`); the cookie carries a separate secret of which only SecretHash is
// kept.
type Session struct {
	ID            string     `json:"id"`
	SecretHash    string     `json:"-"`
	PersonID      string     `json:"person_id"`
	AAL           int        `json:"aal"`
	AMR           []string   `json:"amr"`
	AuthTime      time.Time  `json:"auth_time"`
	CreatedAt     time.Time  `json:"created_at"`
	LastSeenAt    time.Time  `json:"last_seen_at"`
	IdleExpiresAt time.Time  `json:"idle_expires_at"`
	ExpiresAt     time.Time  `json:"expires_at"`
	IP            string     `json:"ip,omitempty"`
	UserAgent     string     `json:"user_agent,omitempty"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	RevokedReason string     `json:"revoked_reason,omitempty"`
}

// Flow kinds.
const (
	FlowSignIn   = "signin"
	FlowSignUp   = "signup"
	FlowRecovery = "recovery"
	FlowOwner    = "owner"
	FlowInvite   = "invite"
)

// Flow is one sign-in, sign-up or recovery attempt in progress, bound to a
// browser by a cookie holding its secret. Nothing about a person is
// written while a flow is unproven: what the visitor submitted waits in
// Pending.
type Flow struct {
	ID            string          `json:"id"`
	SecretHash    string          `json:"-"`
	Kind          string          `json:"kind"`
	AuthRequestID string          `json:"auth_request_id,omitempty"`
	ClientID      string          `json:"client_id,omitempty"`
	Email         string          `json:"email,omitempty"`
	PersonID      string          `json:"person_id,omitempty"`
	AnonymousID   string          `json:"anonymous_id,omitempty"`
	Step          string          `json:"step"`
	AMR           []string        `json:"amr,omitempty"`
	Pending       json.RawMessage `json:"-"`
	IP            string          `json:"ip,omitempty"`
	// Lang is the language of the flow's emails ("" is English): the one
	// its pages were shown in when it started.
	Lang      string    `json:"lang,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// deferred marks a flow that has no row yet: its state came from the
	// browser's MACed reference (StartFlowParams.Deferred), and saveFlow
	// creates the row instead of updating it.
	deferred bool
}

// One-time code purposes.
const (
	CodeVerifyEmail = "verify_email"
	CodeSignIn      = "signin"
	CodeRecovery    = "recovery"
	CodeOwnerSetup  = "owner_setup"
	CodeInvite      = "invite"
)

// OneTimeCode is an emailed code and/or link. CodeHash is an HMAC of the
// flow id and the code; LinkHash the SHA-256 of the link token (empty
// when there is no link).
type OneTimeCode struct {
	ID          string     `json:"id"`
	FlowID      string     `json:"flow_id,omitempty"`
	Purpose     string     `json:"purpose"`
	Email       string     `json:"email,omitempty"`
	PersonID    string     `json:"person_id,omitempty"`
	CodeHash    string     `json:"-"`
	LinkHash    string     `json:"-"`
	Attempts    int        `json:"attempts"`
	MaxAttempts int        `json:"max_attempts"`
	ExpiresAt   time.Time  `json:"expires_at"`
	UsedAt      *time.Time `json:"used_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
}

// Audit actor types and outcomes.
const (
	ActorPerson    = "person"
	ActorStaff     = "staff"
	ActorToken     = "token"
	ActorClient    = "client"
	ActorSystem    = "system"
	ActorAnonymous = "anonymous"

	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeDenied  = "denied"
)

// AuditEntry is one authentication or administrative action: who, what,
// when, from where, and how it ended. Seq orders entries and pages lists.
type AuditEntry struct {
	Seq        int64           `json:"seq"`
	ID         string          `json:"id"`
	At         time.Time       `json:"at"`
	ActorType  string          `json:"actor_type"`
	ActorID    string          `json:"actor_id,omitempty"`
	Action     string          `json:"action"`
	Outcome    string          `json:"outcome"`
	PersonID   string          `json:"person_id,omitempty"`
	PropertyID string          `json:"property_id,omitempty"`
	ClientID   string          `json:"client_id,omitempty"`
	SessionID  string          `json:"session_id,omitempty"`
	IP         string          `json:"ip,omitempty"`
	UserAgent  string          `json:"user_agent,omitempty"`
	Detail     json.RawMessage `json:"detail,omitempty"`
}

// AuditQuery selects audit entries, newest first. Zero fields do not
// filter. BeforeSeq pages: only entries with a smaller Seq.
type AuditQuery struct {
	PersonID  string
	ActorID   string
	Action    string // exact, or a prefix when it ends in "*" ("staff.*")
	Outcome   string
	Since     time.Time
	Until     time.Time
	BeforeSeq int64
	Limit     int
}

// Attempts is the failure counter of one rate-limit key ("ip:<addr>" or
// "id:<hmac of the normalised email>"), shared by every node.
type Attempts struct {
	Key         string    `json:"key"`
	Failures    int       `json:"failures"`
	WindowStart time.Time `json:"window_start"`
	LockedUntil time.Time `json:"locked_until"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Staff is a person who works in the console, with a role from the roles
// of token.go.
type Staff struct {
	PersonID  string    `json:"person_id"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Outbox job kinds.
const (
	JobEmail             = "email"
	JobBackchannelLogout = "backchannel_logout"
	JobTimeline          = "timeline"
)

// OutboxJob is a side effect (an email, a back-channel logout, a timeline
// event) written in the transaction that caused it and carried out after
// commit, with retries, by the outbox worker.
type OutboxJob struct {
	ID        int64           `json:"id"`
	Kind      string          `json:"kind"`
	Payload   json.RawMessage `json:"payload"`
	RunAt     time.Time       `json:"run_at"`
	Attempts  int             `json:"attempts"`
	LastError string          `json:"last_error,omitempty"`
	DoneAt    *time.Time      `json:"done_at,omitempty"`
}

// AccountStore is what the account, sign-in and staff rules need from an
// engine. Methods that find or change one thing by its key answer an
// onramp.ENOTFOUND error when it does not exist (ResetAttempts excepted:
// a missing counter is reset already). Lists are never nil. Engines
// implement it on the same Queries type as identity.Store, so one
// transaction can change both.
type AccountStore interface {
	// Accounts. CreateAccount answers ECONFLICT when the person, the
	// subject or the WebAuthn handle has one already. The person is a
	// stored one (sign-up attaches it first): the people search's
	// has_account is kept from the account's side, not when a person is
	// stored.
	CreateAccount(ctx context.Context, a *Account) error
	// AccountOf finds the account held by any of the given persons (the
	// members of one merge tree hold at most one).
	AccountOf(ctx context.Context, personIDs []string) (*Account, error)
	AccountBySubject(ctx context.Context, subject string) (*Account, error)
	AccountByWebAuthnHandle(ctx context.Context, handle []byte) (*Account, error)
	UpdateAccount(ctx context.Context, a *Account) error
	// AccountsPerDay counts accounts by the UTC day they were created on,
	// from since on; days without any are absent.
	AccountsPerDay(ctx context.Context, since time.Time) ([]identity.DayCount, error)

	// Passwords, as argon2id (or imported bcrypt) PHC strings.
	SetPassword(ctx context.Context, personID, phc string, at time.Time) error
	PasswordOf(ctx context.Context, personID string) (string, error)
	DeletePassword(ctx context.Context, personID string) error

	// Sessions. TouchSession moves last_seen_at and idle_expires_at.
	// SessionsOf lists newest first.
	CreateSession(ctx context.Context, s *Session) error
	SessionByID(ctx context.Context, id string) (*Session, error)
	SessionBySecretHash(ctx context.Context, hash string) (*Session, error)
	SessionsOf(ctx context.Context, personID string, includeRevoked bool) ([]*Session, error)
	TouchSession(ctx context.Context, id string, lastSeen, idleExpires time.Time) error
	// RevokeSession sets revoked_at once; it reports whether this call
	// revoked it (false when it was already revoked).
	RevokeSession(ctx context.Context, id string, at time.Time, reason string) (bool, error)
	// RevokeSessionsOf revokes every live session of the person except
	// keep (may be ""), returning the ids it revoked.
	RevokeSessionsOf(ctx context.Context, personID, keep string, at time.Time, reason string) ([]string, error)
	// AddSessionClient records that a session signed into a client (for
	// back-channel logout); repeated calls move last_at.
	AddSessionClient(ctx context.Context, sessionID, clientID string, at time.Time) error
	SessionClients(ctx context.Context, sessionID string) ([]string, error)

	// Flows, deleted when done or pruned after ExpiresAt.
	CreateFlow(ctx context.Context, f *Flow) error
	FlowByID(ctx context.Context, id string) (*Flow, error)
	UpdateFlow(ctx context.Context, f *Flow) error
	DeleteFlow(ctx context.Context, id string) error

	// One-time codes. UseCode sets used_at only if it is unset and reports
	// whether this call did (exactly one of two racing redeemers wins).
	// IncrementCodeAttempts adds one failed try and returns the new count.
	CreateCode(ctx context.Context, c *OneTimeCode) error
	CodeByID(ctx context.Context, id string) (*OneTimeCode, error)
	LatestCode(ctx context.Context, flowID, purpose string) (*OneTimeCode, error)
	CodeByLinkHash(ctx context.Context, hash string) (*OneTimeCode, error)
	IncrementCodeAttempts(ctx context.Context, id string) (int, error)
	UseCode(ctx context.Context, id string, at time.Time) (bool, error)
	// InvalidateCodes marks every unused code of the purpose for the email
	// used (a newly issued owner link retires older ones).
	InvalidateCodes(ctx context.Context, purpose, email string, at time.Time) error

	// Audit log. AppendAudit fills Seq.
	AppendAudit(ctx context.Context, e *AuditEntry) error
	ListAudit(ctx context.Context, q AuditQuery) ([]*AuditEntry, error)

	// Rate-limit counters. AddFailure adds one failure to key, starting a
	// new window when the current one began before windowStart, and
	// returns the counter after the change. SetLockedUntil sets the lock.
	AddFailure(ctx context.Context, key string, windowStart, at time.Time) (*Attempts, error)
	AttemptsOf(ctx context.Context, key string) (*Attempts, error)
	SetLockedUntil(ctx context.Context, key string, until time.Time) error
	ResetAttempts(ctx context.Context, key string) error

	// Staff.
	PutStaff(ctx context.Context, s *Staff) error
	StaffOf(ctx context.Context, personID string) (*Staff, error)
	ListStaff(ctx context.Context) ([]*Staff, error)
	DeleteStaff(ctx context.Context, personID string) error

	// Settings are small JSON documents by name.
	Setting(ctx context.Context, name string) (json.RawMessage, error)
	PutSetting(ctx context.Context, name string, value json.RawMessage, by string, at time.Time) error

	// ServerSecret returns the secret stored under name, storing value
	// first if there is none (the first node to start makes the keys every
	// node shares).
	ServerSecret(ctx context.Context, name string, value []byte, at time.Time) ([]byte, error)

	// Outbox. ClaimOutbox returns up to limit jobs due at now that are not
	// done and pushes their run_at to now+lease, so another worker does not
	// take them meanwhile; the claim counts in Attempts, so a job whose
	// worker dies mid-run still counts towards giving up. FailOutbox records
	// the error and the next try.
	EnqueueOutbox(ctx context.Context, j *OutboxJob) error
	ClaimOutbox(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*OutboxJob, error)
	CompleteOutbox(ctx context.Context, id int64, at time.Time) error
	FailOutbox(ctx context.Context, id int64, errText string, next time.Time) error

	// PruneAuth deletes flows and codes that expired before now, outbox
	// jobs done before cutoff, sessions that expired (or idled out) before
	// cutoff, rate-limit counters untouched since cutoff whose lock has
	// passed, and TOTP enrolments begun before cutoff and never confirmed.
	PruneAuth(ctx context.Context, now, cutoff time.Time) error

	// EraseAuth removes everything the auth part holds about these persons
	// (account, password, passkeys, TOTP secret, recovery codes, upstream
	// links, sessions, flows, codes, staff row) and blanks
	// ip, user_agent and detail of their audit entries, keeping action and
	// time. Called from identity's erase hook inside the delete
	// transaction.
	EraseAuth(ctx context.Context, personIDs []string) error
}
