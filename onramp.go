// Package onramp is the shared kernel of Onramp: identifiers, the error type
// every part returns, the clock, and the interfaces (Bus) that parts use to
// talk to each other without knowing the engines behind them.
//
// Parts (identity, events, property, …) import this package; this package
// imports none of them.
package onramp

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Error codes. They are the contract between the parts and the transports:
// httpapi maps each to an HTTP status and a problem type, the CLI to an exit code.
const (
	EINVALID      = "invalid"      // input breaks a rule; the caller must change it
	ENOTFOUND     = "not_found"    // the thing does not exist (or the caller may not know it does)
	ECONFLICT     = "conflict"     // the request clashes with current state
	EUNAUTHORIZED = "unauthorized" // no or bad credentials
	EFORBIDDEN    = "forbidden"    // credentials fine, permission missing
	ETOOLARGE     = "too_large"    // body or item over a limit
	ERATELIMITED  = "rate_limited" // slow down
	EUNAVAILABLE  = "unavailable"  // shutting down or overloaded; retry later
	EINTERNAL     = "internal"     // our fault; details are logged, never shown
)

// Error is an error whose Code and Message are safe to show to a client.
// Anything that is not an *Error reaches clients as EINTERNAL.
type Error struct {
	Code    string
	Message string
	// Detail carries structured, client-safe extra data (for example the
	// per-item rejections of a batch). Optional.
	Detail any
	// RetryAfter, when set, tells a refused client when to try again
	// (rate limits, lockouts); HTTP answers send it as Retry-After.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return fmt.Sprintf("onramp: %s: %s", e.Code, e.Message) }

// Errorf returns an *Error with a formatted, client-safe message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, or
// EINTERNAL for any other non-nil error.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

// Clock tells the time. Services take one so tests can fix it.
type Clock interface{ Now() time.Time }

// SystemClock is the real clock, truncated to microseconds because both
// engines store microseconds and round trips must compare equal.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns a new random identifier with a readable type prefix, such as
// "per_9x2k…". Prefixes make ids in logs and URLs self-describing. 80 random
// bits after a 48-bit millisecond timestamp keep ids roughly time-ordered,
// which keeps B-tree inserts near the right edge.
func NewID(prefix string) string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	if _, err := rand.Read(b[6:]); err != nil {
		panic(fmt.Sprintf("onramp: crypto/rand failed: %v", err))
	}
	return prefix + "_" + idEncoding.EncodeToString(b[:])
}

// NewSecret returns a random token with a prefix and 256 bits of entropy,
// for write keys, secret keys and API tokens.
func NewSecret(prefix string) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("onramp: crypto/rand failed: %v", err))
	}
	return prefix + "_" + strings.ToLower(idEncoding.EncodeToString(b[:]))
}

// Message is one thing published on the Bus: a committed event, a segment
// change, an auth event. ID is stable so subscribers can dedupe, because
// delivery is at-least-once.
type Message struct {
	ID      string
	Topic   string
	Seq     int64 // position in the publisher's log; 0 when there is none
	Payload []byte
}

// Handler processes one message. Returning an error asks for redelivery.
type Handler func(ctx context.Context, m Message) error

// Bus publishes messages after commit to subscribers, at least once.
type Bus interface {
	Publish(ctx context.Context, msgs ...Message) error
	// Subscribe registers h under a durable name for topics that start with
	// prefix. Messages published after Subscribe returns are delivered.
	Subscribe(name, prefix string, h Handler) error
}
