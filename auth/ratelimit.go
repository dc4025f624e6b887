package auth

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/onramp-dev/onramp"
)

// Limits bound guessing and email sending. Zero fields take the defaults.
type Limits struct {
	// IPRate and IPBurst bound auth requests per IP on one node (a token
	// bucket in memory: it costs nothing and stops floods early).
	IPRate  rate.Limit
	IPBurst int
	// IPFailures is how many failed attempts one IP may make per hour,
	// counted by every node together.
	IPFailures int
	// FreeFailures is how many failures an identifier (an email) may have
	// in FailureWindow before each further attempt must wait, doubling
	// from one second up to MaxBackoff.
	FreeFailures  int
	FailureWindow time.Duration
	MaxBackoff    time.Duration
	// SendsPerIdentifier emails per SendWindow to one address, and
	// SendsPerIP per hour from one IP.
	SendsPerIdentifier int
	SendWindow         time.Duration
	SendsPerIP         int
	// RefusalRate and RefusalBurst bound how many refused anonymous
	// requests (forged forms) per IP and node reach the audit log.
	RefusalRate  rate.Limit
	RefusalBurst int
}

func (l Limits) withDefaults() Limits {
	if l.IPRate == 0 {
		l.IPRate = 10
	}
	if l.IPBurst == 0 {
		l.IPBurst = 30
	}
	if l.IPFailures == 0 {
		l.IPFailures = 100
	}
	if l.FreeFailures == 0 {
		l.FreeFailures = 5
	}
	if l.FailureWindow == 0 {
		l.FailureWindow = 15 * time.Minute
	}
	if l.MaxBackoff == 0 {
		l.MaxBackoff = 15 * time.Minute
	}
	if l.SendsPerIdentifier == 0 {
		l.SendsPerIdentifier = 3
	}
	if l.SendWindow == 0 {
		l.SendWindow = 10 * time.Minute
	}
	if l.SendsPerIP == 0 {
		l.SendsPerIP = 10
	}
	if l.RefusalRate == 0 {
		l.RefusalRate = 1
	}
	if l.RefusalBurst == 0 {
		l.RefusalBurst = 20
	}
	return l
}

// limiter holds the node-local per-IP buckets.
type limiter struct {
	limits Limits
	mu     sync.Mutex
	ips    map[string]*rate.Limiter
	swept  time.Time
}

func newLimiter(l Limits) *limiter {
	return &limiter{limits: l, ips: map[string]*rate.Limiter{}}
}

func (l *limiter) allow(ip string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Buckets that are full again carry no information: drop them now and
	// then so the map stays as small as the set of active clients.
	if now.Sub(l.swept) > time.Minute {
		for k, b := range l.ips {
			if b.TokensAt(now) >= float64(l.limits.IPBurst) {
				delete(l.ips, k)
			}
		}
		l.swept = now
	}
	b := l.ips[ip]
	if b == nil {
		b = rate.NewLimiter(l.limits.IPRate, l.limits.IPBurst)
		l.ips[ip] = b
	}
	return b.AllowN(now, 1)
}

var errTooMany = onramp.Errorf(onramp.ERATELIMITED, "Too many attempts. Wait a moment and try again.")

func tooMany(wait time.Duration) error {
	return &onramp.Error{Code: onramp.ERATELIMITED, Message: errTooMany.Message, RetryAfter: wait}
}

// identKey is the rate-limit key of an email: a MAC, so the counters
// table never holds addresses, and the same for unknown and known emails.
func (s *Accounts) identKey(email string) string {
	return "id:" + macString(s.keys.ident, email)
}

// checkAttempt refuses an attempt to prove a credential when the IP or
// the identifier is over its limit. It runs before any hash or lookup, and
// answers the same whether or not the credential would have been right.
func (s *Accounts) checkAttempt(ctx context.Context, info RequestInfo, email string) error {
	now := s.cfg.Clock.Now()
	if !s.limiter.allow(info.IP, now) {
		return tooMany(time.Second)
	}
	if email != "" {
		a, err := s.cfg.Read.AttemptsOf(ctx, s.identKey(email))
		if err != nil && onramp.ErrorCode(err) != onramp.ENOTFOUND {
			return fmt.Errorf("auth: limits: %w", err)
		}
		if a != nil && a.LockedUntil.After(now) {
			return tooMany(a.LockedUntil.Sub(now))
		}
	}
	if info.IP != "" {
		a, err := s.cfg.Read.AttemptsOf(ctx, "ip:"+info.IP)
		if err != nil && onramp.ErrorCode(err) != onramp.ENOTFOUND {
			return fmt.Errorf("auth: limits: %w", err)
		}
		if a != nil && a.Failures >= s.cfg.Limits.IPFailures && now.Sub(a.WindowStart) < time.Hour {
			return tooMany(a.WindowStart.Add(time.Hour).Sub(now))
		}
	}
	return nil
}

// failed counts a failed attempt against the IP and the identifier, and
// from the FreeFailures-th failure on makes the identifier wait, doubling.
func (s *Accounts) failed(ctx context.Context, st AccountStore, info RequestInfo, email string) error {
	now := s.cfg.Clock.Now()
	if info.IP != "" {
		if _, err := st.AddFailure(ctx, "ip:"+info.IP, now.Add(-time.Hour), now); err != nil {
			return fmt.Errorf("auth: limits: %w", err)
		}
	}
	if email == "" {
		return nil
	}
	key := s.identKey(email)
	a, err := st.AddFailure(ctx, key, now.Add(-s.cfg.Limits.FailureWindow), now)
	if err != nil {
		return fmt.Errorf("auth: limits: %w", err)
	}
	if over := a.Failures - s.cfg.Limits.FreeFailures; over >= 0 {
		wait := s.cfg.Limits.MaxBackoff
		if over < 20 {
			wait = min(time.Duration(1<<over)*time.Second, s.cfg.Limits.MaxBackoff)
		}
		if err := st.SetLockedUntil(ctx, key, now.Add(wait)); err != nil {
			return fmt.Errorf("auth: limits: %w", err)
		}
	}
	return nil
}

// succeeded clears the identifier's failures after a right credential.
func (s *Accounts) succeeded(ctx context.Context, st AccountStore, email string) error {
	if err := st.ResetAttempts(ctx, s.identKey(email)); err != nil {
		return fmt.Errorf("auth: limits: %w", err)
	}
	return nil
}

// allowSend counts one email to an address and reports whether it may go
// out. A refused send is not an error for the caller: the answer to the
// visitor stays the same, so limits reveal nothing about the address.
func (s *Accounts) allowSend(ctx context.Context, st AccountStore, info RequestInfo, email string) (bool, error) {
	now := s.cfg.Clock.Now()
	a, err := st.AddFailure(ctx, "send:"+s.identKey(email), now.Add(-s.cfg.Limits.SendWindow), now)
	if err != nil {
		return false, fmt.Errorf("auth: send limit: %w", err)
	}
	if a.Failures > s.cfg.Limits.SendsPerIdentifier {
		return false, nil
	}
	if info.IP != "" {
		a, err := st.AddFailure(ctx, "send:ip:"+info.IP, now.Add(-time.Hour), now)
		if err != nil {
			return false, fmt.Errorf("auth: send limit: %w", err)
		}
		if a.Failures > s.cfg.Limits.SendsPerIP {
			return false, nil
		}
	}
	return true, nil
}
