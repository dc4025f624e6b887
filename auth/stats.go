package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/onramp-dev/onramp/identity"
)

// SignupsPerDay counts accounts created per UTC day from since on. An
// account row is the sign-up that counts: it is made by every way in
// (sign-up form, upstream provider, staff invite), while the
// auth.signed_up event is only written by the hosted sign-up flow. A
// deleted account is no longer counted.
func (s *Accounts) SignupsPerDay(ctx context.Context, since time.Time) ([]identity.DayCount, error) {
	out, err := s.cfg.Read.AccountsPerDay(ctx, since)
	if err != nil {
		return nil, fmt.Errorf("auth: sign-ups per day: %w", err)
	}
	return out, nil
}
