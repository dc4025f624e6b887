package auth

import (
	"context"
	"fmt"

	"github.com/onramp-dev/onramp/identity"
)

// EraseOnDelete makes deleting a person also delete their account,
// password, sessions, flows, codes and staff row, and blank the ip, user
// agent and detail of their audit entries, in the same transaction. Every
// command that can delete people wires it, whether or not it serves
// sign-in.
func EraseOnDelete(ids *identity.Service) {
	ids.OnErase(func(ctx context.Context, st identity.Store, persons []string, _ []identity.Key) error {
		as, ok := st.(AccountStore)
		if !ok {
			return fmt.Errorf("auth: erase: the store holds no accounts")
		}
		if err := as.EraseAuth(ctx, persons); err != nil {
			return fmt.Errorf("auth: erase: %w", err)
		}
		return nil
	})
}

// ConnectIdentity adds what a serving node must also forget when a person
// is deleted: their failure counters (keyed by a MAC of the email that only
// this part can compute) and cached sessions (other nodes drop theirs
// within the cache's TTL). EraseOnDelete must be wired as well.
func (s *Accounts) ConnectIdentity(ids *identity.Service) {
	ids.OnErase(func(ctx context.Context, st identity.Store, _ []string, keys []identity.Key) error {
		as, ok := st.(AccountStore)
		if !ok {
			return fmt.Errorf("auth: erase: the store holds no accounts")
		}
		for _, k := range keys {
			if k.Type == identity.Email {
				if err := s.succeeded(ctx, as, k.Value); err != nil {
					return err
				}
			}
		}
		s.sessions.clear()
		return nil
	})
}
