package auth

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/onramp-dev/onramp/identity"
)

// Prefill is what the sign-up form may show before the email is proven:
// only what this browser itself told us. It is keyed by the flow's
// anonymous id (the browser's tracking cookie), never by an email someone
// typed, so nobody sees a stranger's traits. Nil when there is nothing.
type Prefill struct {
	Email string `json:"email,omitempty"`
	Name  string `json:"name,omitempty"`
}

// Prefill reads the person row that first carried the flow's anonymous id
// (not the whole merged tree: other browsers' data stays out) for its
// email and name.
func (s *Accounts) Prefill(ctx context.Context, ref string) (*Prefill, error) {
	if ref == "" {
		return nil, nil
	}
	f, err := s.Flow(ctx, ref)
	if err != nil || f.AnonymousID == "" {
		return nil, err
	}
	ids, err := s.cfg.Read.FindIdentifiers(ctx, []identity.Key{{Type: identity.AnonymousID, Value: f.AnonymousID}})
	if err != nil {
		return nil, fmt.Errorf("auth: prefill: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	owner := ids[0].PersonID
	out := &Prefill{}
	of, err := s.cfg.Read.IdentifiersOf(ctx, []string{owner})
	if err != nil {
		return nil, fmt.Errorf("auth: prefill: %w", err)
	}
	for _, id := range of {
		if id.Type == identity.Email {
			out.Email = id.Value
			break
		}
	}
	ps, err := s.cfg.Read.PersonsByID(ctx, []string{owner})
	if err != nil {
		return nil, fmt.Errorf("auth: prefill: %w", err)
	}
	if len(ps) == 1 {
		var traits map[string]any
		if json.Unmarshal(ps[0].Traits, &traits) == nil {
			if n, ok := traits["name"].(string); ok && len(n) <= 200 {
				out.Name = n
			}
		}
	}
	if *out == (Prefill{}) {
		return nil, nil
	}
	return out, nil
}
