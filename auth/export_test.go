package auth

import "context"

// OpenUpstreamProvider exposes the provider with its secret opened, for
// the sealing test.
func OpenUpstreamProvider(ctx context.Context, s *Accounts, name string) (*UpstreamProvider, error) {
	return s.upstreamProvider(ctx, s.cfg.Read, name)
}
