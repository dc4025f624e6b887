// Package upstream speaks the protocols of upstream identity providers for
// auth's sign-in rules: OpenID Connect (discovery, the authorization code
// flow with PKCE, ID token checks with go-oidc) and GitHub's OAuth 2.0 with
// its REST API, which is not OpenID Connect. What a provider's answer may
// do (link, prove an email) is decided in auth, not here.
package upstream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// Connector makes the client of a configured provider. OpenID Connect
// discovery is cached for TTL per provider configuration, so a sign-in
// costs no discovery round trip, and a changed configuration (another
// issuer, client or secret) is discovered anew at once.
type Connector struct {
	// HTTP talks to the providers; nil means a client with a 10 s
	// timeout. Its timeout bounds every call a sign-in waits for.
	HTTP *http.Client
	// TTL is how long discovery is reused; zero means an hour.
	TTL time.Duration
	Log *slog.Logger
	Now func() time.Time

	mu    sync.Mutex
	cache map[string]cachedClient
}

type cachedClient struct {
	c     auth.UpstreamClient
	until time.Time
}

var _ auth.UpstreamConnector = (*Connector)(nil)

// Connect returns the provider's client, discovering it if needed.
func (c *Connector) Connect(ctx context.Context, p *auth.UpstreamProvider) (auth.UpstreamClient, error) {
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	key := fingerprint(p)
	c.mu.Lock()
	if e, ok := c.cache[key]; ok && now.Before(e.until) {
		c.mu.Unlock()
		return e.c, nil
	}
	c.mu.Unlock()
	var client auth.UpstreamClient
	var err error
	if p.Preset == auth.PresetGitHub {
		client = &githubClient{p: p, hc: c.httpClient()}
	} else if client, err = discover(ctx, c.httpClient(), p); err != nil {
		return nil, err
	}
	ttl := c.TTL
	if ttl == 0 {
		ttl = time.Hour
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cache == nil {
		c.cache = map[string]cachedClient{}
	}
	// Old configurations of the same provider are dropped with the rest
	// of the stale entries.
	for k, e := range c.cache {
		if !now.Before(e.until) {
			delete(c.cache, k)
		}
	}
	c.cache[key] = cachedClient{c: client, until: now.Add(ttl)}
	return client, nil
}

func (c *Connector) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 10 * time.Second}
}

// fingerprint is what makes two configurations the same client.
func fingerprint(p *auth.UpstreamProvider) string {
	h := sha256.New()
	for _, s := range []string{p.Name, p.Preset, p.Issuer, p.Tenant, p.ClientID, p.ClientSecret, strings.Join(p.Scopes, " "), p.WebBase, p.APIBase} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// unavailable marks a failure to reach the provider (network, 5xx): the
// visitor may try again later, and it says nothing about them.
func unavailable(p *auth.UpstreamProvider, what string, err error) error {
	return fmt.Errorf("%w: %s: %v", onramp.Errorf(onramp.EUNAVAILABLE, "%s cannot be reached right now. Try again later, or sign in another way.", p.DisplayName), what, err)
}

// refused marks an answer that does not sign anyone in (a bad code, a
// token that fails its checks).
func refused(p *auth.UpstreamProvider, what string, err error) error {
	return fmt.Errorf("%w: %s: %v", onramp.Errorf(onramp.EUNAUTHORIZED, "%s did not confirm this sign-in.", p.DisplayName), what, err)
}

// exchangeError sorts a token endpoint failure: an OAuth error answer is
// a refusal, anything else (no answer, a 5xx page) unavailability.
func exchangeError(p *auth.UpstreamProvider, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && (re.ErrorCode != "" || re.Response != nil && re.Response.StatusCode < 500) {
		return refused(p, "token endpoint", err)
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.As(err, &re) {
		return unavailable(p, "token endpoint", err)
	}
	return refused(p, "token endpoint", err)
}
