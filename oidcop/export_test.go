package oidcop

// SetDirect turns the direct answers of introspection and userinfo on or
// off, so tests can compare them with op's own.
func SetDirect(p *Provider, on bool) { p.direct = on }
