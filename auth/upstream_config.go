package auth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/onramp-dev/onramp"
)

// This file holds the configuration of upstream identity providers: the
// presets, validation, and the setting they are stored in, with each
// client secret sealed under a server key.

// Upstream provider presets. Google and Microsoft are OpenID Connect with
// known issuers; GitHub is OAuth 2.0 plus its REST API (not OpenID
// Connect); "oidc" is any OpenID Connect provider by its issuer.
const (
	PresetOIDC      = "oidc"
	PresetGoogle    = "google"
	PresetMicrosoft = "microsoft"
	PresetGitHub    = "github"
)

// UpstreamProvider is a configured upstream identity provider. ClientSecret
// is only filled where the rules need it (to redeem a code); lists and
// answers never carry it.
type UpstreamProvider struct {
	// Name is the provider's id in URLs and links (the callback is
	// /auth/upstream/{name}/callback, the timeline method upstream:{name}).
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
	Preset      string `json:"preset"`
	// Issuer is the OpenID Connect issuer (every preset but GitHub).
	Issuer string `json:"issuer,omitempty"`
	// Tenant is Microsoft's tenant: an id or domain, or common,
	// organizations or consumers (several tenants; the issuer of each
	// token is then checked against its tid).
	Tenant       string   `json:"tenant,omitempty"`
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"-"`
	Scopes       []string `json:"scopes"`
	// TrustEmail makes a verified email from this provider proof of
	// ownership, like a redeemed Onramp code. Otherwise Onramp sends its
	// own code to the address before linking it to an account.
	TrustEmail bool `json:"trust_email"`
	// WebBase and APIBase are GitHub's (or a GitHub Enterprise Server's):
	// where its authorize and token endpoints, and its REST API, are.
	WebBase   string    `json:"web_base,omitempty"`
	APIBase   string    `json:"api_base,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
}

// MultiTenant reports whether a Microsoft provider accepts users of many
// tenants, whose tokens each name their own issuer.
func (p *UpstreamProvider) MultiTenant() bool {
	return p.Preset == PresetMicrosoft && multiTenants[p.Tenant]
}

var multiTenants = map[string]bool{"common": true, "organizations": true, "consumers": true}

// CallbackURL is where the provider sends the browser back: register it
// as the redirect URI of Onramp's client at the provider.
func (p *UpstreamProvider) CallbackURL(publicURL string) string {
	return strings.TrimSuffix(publicURL, "/") + "/auth/upstream/" + p.Name + "/callback"
}

// AddUpstreamParams configures a provider. Zero fields take the preset's
// defaults.
type AddUpstreamParams struct {
	Preset       string
	Name         string
	DisplayName  string
	Issuer       string
	Tenant       string
	ClientID     string
	ClientSecret string
	Scopes       []string
	// TrustEmail, when set, overrides the preset (Google and GitHub trust
	// their verified emails; generic providers do not unless told;
	// Microsoft never does).
	TrustEmail *bool
	WebBase    string
	APIBase    string
	Actor      AuditEntry
}

// settingUpstream is the setting the providers are stored in.
const settingUpstream = "upstream_providers"

// storedProvider is a provider as the setting holds it: the client secret
// sealed with AES-256-GCM under the server key "upstream_secrets", with the
// provider's name as associated data (a sealed secret copied to another
// provider does not open).
type storedProvider struct {
	UpstreamProvider
	SealedSecret string `json:"client_secret_sealed"`
}

type storedProviders struct {
	Providers []storedProvider `json:"providers"`
}

var (
	providerName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
	tenantName   = regexp.MustCompile(`^[A-Za-z0-9.-]{1,100}$`)
)

// newProvider applies the preset to p and checks the result.
func newProvider(p AddUpstreamParams) (*UpstreamProvider, error) {
	bad := func(format string, args ...any) (*UpstreamProvider, error) {
		return nil, onramp.Errorf(onramp.EINVALID, format, args...)
	}
	pr := &UpstreamProvider{Preset: strings.ToLower(strings.TrimSpace(p.Preset)), Name: strings.TrimSpace(p.Name), DisplayName: strings.TrimSpace(p.DisplayName),
		ClientID: strings.TrimSpace(p.ClientID), ClientSecret: p.ClientSecret, Scopes: p.Scopes}
	trust := false
	switch pr.Preset {
	case PresetGoogle:
		pr.Issuer, trust = "https://accounts.google.com", true
		defaults(&pr.DisplayName, "Google")
	case PresetMicrosoft:
		if p.TrustEmail != nil && *p.TrustEmail {
			// Microsoft's email claim is whatever a tenant admin typed:
			// taking it as proof is how nOAuth took over accounts.
			return bad("Microsoft's email is not proof of ownership, so it cannot be trusted; Onramp sends its own code before linking.")
		}
		pr.Tenant = strings.TrimSpace(p.Tenant)
		defaults(&pr.Tenant, "common")
		if !tenantName.MatchString(pr.Tenant) {
			return bad("--tenant must be a tenant id or domain, or common, organizations or consumers.")
		}
		pr.Issuer = "https://login.microsoftonline.com/" + pr.Tenant + "/v2.0"
		defaults(&pr.DisplayName, "Microsoft")
	case PresetGitHub:
		trust = true
		pr.WebBase, pr.APIBase = strings.TrimSuffix(strings.TrimSpace(p.WebBase), "/"), strings.TrimSuffix(strings.TrimSpace(p.APIBase), "/")
		defaults(&pr.WebBase, "https://github.com")
		defaults(&pr.APIBase, "https://api.github.com")
		for _, u := range []string{pr.WebBase, pr.APIBase} {
			if err := checkProviderURL(u); err != nil {
				return nil, err
			}
		}
		defaults(&pr.DisplayName, "GitHub")
		if len(pr.Scopes) == 0 {
			pr.Scopes = []string{"read:user", "user:email"}
		}
	case PresetOIDC:
		pr.Issuer = strings.TrimSpace(p.Issuer)
		if pr.Issuer == "" {
			return bad("A generic OpenID Connect provider needs its issuer URL.")
		}
		if err := checkProviderURL(pr.Issuer); err != nil {
			return nil, err
		}
		if pr.Name == "" {
			return bad("A generic OpenID Connect provider needs a name.")
		}
	default:
		return bad("The preset must be google, microsoft, github or oidc.")
	}
	if pr.Preset != PresetOIDC && p.Issuer != "" && strings.TrimSpace(p.Issuer) != pr.Issuer {
		return bad("The %s preset sets its own issuer.", pr.Preset)
	}
	if pr.Preset != PresetMicrosoft && p.Tenant != "" {
		return bad("Only the microsoft preset takes a tenant.")
	}
	if pr.Preset != PresetGitHub && (p.WebBase != "" || p.APIBase != "") {
		return bad("Only the github preset takes web and API base URLs.")
	}
	if p.TrustEmail != nil {
		trust = *p.TrustEmail
	}
	pr.TrustEmail = trust
	defaults(&pr.Name, pr.Preset)
	defaults(&pr.DisplayName, pr.Name)
	if len(pr.Scopes) == 0 {
		pr.Scopes = []string{"openid", "email", "profile"}
	}
	switch {
	case !providerName.MatchString(pr.Name):
		return bad("A provider name is 1 to 32 lower-case letters, digits and dashes.")
	case len(pr.DisplayName) > 60:
		return bad("A display name is at most 60 characters.")
	case pr.ClientID == "" || len(pr.ClientID) > 500:
		return bad("The client id is missing.")
	case pr.ClientSecret == "" || len(pr.ClientSecret) > 2000:
		return bad("The client secret is missing (Onramp signs in as a confidential client).")
	case len(pr.Scopes) > 20:
		return bad("At most 20 scopes.")
	}
	if pr.Preset != PresetGitHub && !slices.Contains(pr.Scopes, "openid") {
		return bad("An OpenID Connect provider needs the openid scope.")
	}
	for _, sc := range pr.Scopes {
		if sc == "" || len(sc) > 200 || strings.ContainsAny(sc, " \t\r\n\"") {
			return bad("Scope %q is not a scope.", sc)
		}
	}
	return pr, nil
}

func defaults(v *string, d string) {
	if *v == "" {
		*v = d
	}
}

// checkProviderURL accepts https URLs, and http only on loopback (a
// provider on the same machine, as in tests): tokens and secrets travel
// to these addresses.
func checkProviderURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return onramp.Errorf(onramp.EINVALID, "%q is not an absolute URL without query or fragment.", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || strings.HasSuffix(host, ".localhost") || ip != nil && ip.IsLoopback() {
			return nil
		}
	}
	return onramp.Errorf(onramp.EINVALID, "%q must be https (http only for localhost).", raw)
}

// AddUpstreamProvider configures a provider. A name already taken is a
// conflict: remove the old one first (its links stay and work again with
// a provider of the same name).
func (s *Accounts) AddUpstreamProvider(ctx context.Context, p AddUpstreamParams) (*UpstreamProvider, error) {
	pr, err := newProvider(p)
	if err != nil {
		return nil, err
	}
	pr.CreatedAt, pr.CreatedBy = s.cfg.Clock.Now(), p.Actor.ActorID
	sealed, err := s.seal(pr.Name, pr.ClientSecret)
	if err != nil {
		return nil, fmt.Errorf("auth: add provider: %w", err)
	}
	err = s.cfg.InTx(ctx, func(st TxStore) error {
		all, err := readProviders(ctx, st)
		if err != nil {
			return err
		}
		for _, x := range all.Providers {
			if x.Name == pr.Name {
				return onramp.Errorf(onramp.ECONFLICT, "A provider named %q exists already; remove it first.", pr.Name)
			}
		}
		all.Providers = append(all.Providers, storedProvider{UpstreamProvider: *pr, SealedSecret: sealed})
		if err := writeProviders(ctx, st, all, p.Actor.ActorID, pr.CreatedAt); err != nil {
			return err
		}
		e := p.Actor
		e.Action, e.Detail = "auth.provider_added", jsonDetail(map[string]any{"provider": pr.Name, "preset": pr.Preset, "issuer": pr.Issuer, "trust_email": pr.TrustEmail})
		return s.record(ctx, st, e)
	})
	if err != nil {
		return nil, fmt.Errorf("auth: add provider: %w", err)
	}
	out := *pr
	out.ClientSecret = ""
	return &out, nil
}

// UpstreamProviders lists the configured providers, oldest first, without
// their secrets.
func (s *Accounts) UpstreamProviders(ctx context.Context) ([]*UpstreamProvider, error) {
	all, err := readProviders(ctx, s.cfg.Read)
	if err != nil {
		return nil, fmt.Errorf("auth: providers: %w", err)
	}
	out := make([]*UpstreamProvider, 0, len(all.Providers))
	for _, x := range all.Providers {
		p := x.UpstreamProvider
		out = append(out, &p)
	}
	return out, nil
}

// RemoveUpstreamProvider removes a provider: its buttons go, its callback
// answers "not found". Links to it are kept, so adding a provider of the
// same name again restores them.
func (s *Accounts) RemoveUpstreamProvider(ctx context.Context, name string, actor AuditEntry) error {
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		all, err := readProviders(ctx, st)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(all.Providers, func(x storedProvider) bool { return x.Name == name })
		if i < 0 {
			return errNoProvider
		}
		all.Providers = slices.Delete(all.Providers, i, i+1)
		now := s.cfg.Clock.Now()
		if err := writeProviders(ctx, st, all, actor.ActorID, now); err != nil {
			return err
		}
		actor.Action, actor.Detail = "auth.provider_removed", jsonDetail(map[string]any{"provider": name})
		return s.record(ctx, st, actor)
	})
	if err != nil {
		return fmt.Errorf("auth: remove provider: %w", err)
	}
	return nil
}

var errNoProvider = onramp.Errorf(onramp.ENOTFOUND, "There is no such sign-in provider.")

// upstreamProvider returns a provider with its client secret opened.
func (s *Accounts) upstreamProvider(ctx context.Context, st AccountStore, name string) (*UpstreamProvider, error) {
	all, err := readProviders(ctx, st)
	if err != nil {
		return nil, err
	}
	for _, x := range all.Providers {
		if x.Name == name {
			p := x.UpstreamProvider
			if p.ClientSecret, err = s.open(p.Name, x.SealedSecret); err != nil {
				return nil, fmt.Errorf("provider %s: %w", name, err)
			}
			return &p, nil
		}
	}
	return nil, errNoProvider
}

func readProviders(ctx context.Context, st AccountStore) (*storedProviders, error) {
	var all storedProviders
	raw, err := st.Setting(ctx, settingUpstream)
	if onramp.ErrorCode(err) == onramp.ENOTFOUND {
		return &all, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &all); err != nil {
		return nil, fmt.Errorf("setting %s: %w", settingUpstream, err)
	}
	return &all, nil
}

func writeProviders(ctx context.Context, st AccountStore, all *storedProviders, by string, at time.Time) error {
	if all.Providers == nil {
		all.Providers = []storedProvider{}
	}
	b, err := json.Marshal(all)
	if err != nil {
		return err
	}
	return st.PutSetting(ctx, settingUpstream, b, by, at)
}

// sealVersion leads every sealed secret, so the format can change later.
const sealVersion = 1

func (s *Accounts) gcm() (cipher.AEAD, error) {
	if len(s.keys.upstream) != 32 {
		return nil, fmt.Errorf("the upstream secrets key is not loaded (Init)")
	}
	block, err := aes.NewCipher(s.keys.upstream)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func (s *Accounts) seal(name, secret string) (string, error) {
	aead, err := s.gcm()
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	out := append([]byte{sealVersion}, nonce...)
	out = aead.Seal(out, nonce, []byte(secret), []byte("upstream:"+name))
	return base64.RawStdEncoding.EncodeToString(out), nil
}

func (s *Accounts) open(name, sealed string) (string, error) {
	aead, err := s.gcm()
	if err != nil {
		return "", err
	}
	b, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil || len(b) < 1+aead.NonceSize() || b[0] != sealVersion {
		return "", fmt.Errorf("the sealed client secret is malformed")
	}
	nonce := b[1 : 1+aead.NonceSize()]
	plain, err := aead.Open(nil, nonce, b[1+aead.NonceSize():], []byte("upstream:"+name))
	if err != nil {
		return "", fmt.Errorf("the client secret does not open with this server's key: %w", err)
	}
	return string(plain), nil
}
