package auth

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/onramp-dev/onramp/identity"
)

// Prefill is what a recognised browser's sign-up form knows already and
// so does not ask again: only what this browser itself told us. It is
// keyed by the flow's anonymous id when that is the browser's own
// tracking cookie, never by an email someone typed or an id in a link, so
// nobody sees a stranger's traits. Nil when the browser is not recognised
// or nothing is known.
type Prefill struct {
	Email string `json:"email,omitempty"`
	Name  string `json:"name,omitempty"`
}

// PrefillParams names a sign-up flow and the browser that shows it.
type PrefillParams struct {
	FlowRef string
	// CookieAnonymousID is the tracking id read from the browser's own
	// cookie. A link's onramp_aid does not count: links can be copied and
	// forwarded, cookies are not, and whoever holds someone's link must
	// not see their email or name. The browser is recognised only when
	// this is the flow's anonymous id.
	CookieAnonymousID string
}

// Prefill reads the person row that first carried the flow's anonymous id
// (not the whole merged tree: other browsers' data stays out) for its
// email and name, when the browser is recognised (PrefillParams).
func (s *Accounts) Prefill(ctx context.Context, p PrefillParams) (*Prefill, error) {
	if p.FlowRef == "" {
		return nil, nil
	}
	cookie, ok := identity.Normalize(identity.AnonymousID, p.CookieAnonymousID)
	if !ok {
		return nil, nil
	}
	f, err := s.Flow(ctx, p.FlowRef)
	if err != nil || f.AnonymousID == "" || f.AnonymousID != cookie {
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

// knownFields applies what a recognised browser's sign-up form did not
// ask: the email comes from the browser's person (whatever was posted),
// and a name the person has is not replaced by one the form never showed
// a field for. Unrecognised, the form asked everything and p is kept.
func (s *Accounts) knownFields(ctx context.Context, p *SignUpParams) error {
	if p.CookieAnonymousID == "" {
		return nil
	}
	known, err := s.Prefill(ctx, PrefillParams{FlowRef: p.FlowRef, CookieAnonymousID: p.CookieAnonymousID})
	if err != nil || known == nil {
		return err
	}
	if known.Email != "" {
		p.Email = known.Email
	}
	if known.Name != "" && len(p.Traits) > 0 {
		var obj map[string]json.RawMessage
		if json.Unmarshal(p.Traits, &obj) == nil {
			delete(obj, "name")
			p.Traits = nil
			if len(obj) > 0 {
				p.Traits, _ = json.Marshal(obj)
			}
		}
	}
	return nil
}

// newTraitsOnly keeps of traits (what a sign-up form asked, as a JSON
// object) only the keys the person rooted at root does not have yet. The
// typist proved the email, but was never shown what Onramp knew under it
// (the form reveals nothing to someone who merely typed the address), so
// a typed name fills an empty name and never silently replaces a known
// one; the person changes it on the account page, where it is shown.
func newTraitsOnly(ctx context.Context, st TxStore, root string, traits json.RawMessage) (json.RawMessage, error) {
	if root == "" || len(traits) == 0 {
		return traits, nil
	}
	ps, err := st.PersonsByID(ctx, []string{root})
	if err != nil || len(ps) == 0 {
		return traits, err
	}
	var have, typed map[string]json.RawMessage
	if len(ps[0].Traits) > 0 {
		if err := json.Unmarshal(ps[0].Traits, &have); err != nil {
			return nil, fmt.Errorf("auth: stored traits: %w", err)
		}
	}
	if err := json.Unmarshal(traits, &typed); err != nil {
		return nil, fmt.Errorf("auth: pending traits: %w", err)
	}
	for k := range typed {
		if v, ok := have[k]; ok && string(v) != "null" && string(v) != `""` {
			delete(typed, k)
		}
	}
	if len(typed) == 0 {
		return nil, nil
	}
	return json.Marshal(typed)
}
