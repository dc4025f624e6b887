package identity

import (
	"context"
	"fmt"
)

// Roots maps each of ids to the root person it belongs to now. Ids of
// persons that do not exist (never did, or were deleted) are absent. One
// read for many ids: the live feed resolves a whole batch of events at
// once, and a merge or unmerge shows in the next call.
func (s *Service) Roots(ctx context.Context, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	ps, err := s.read.PersonsByID(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("identity: roots: %w", err)
	}
	for _, p := range ps {
		out[p.ID] = p.RootID
	}
	return out, nil
}
