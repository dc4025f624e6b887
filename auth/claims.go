package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/onramp-dev/onramp"
)

// This file holds which claims a client gets about a person, and consent.

// Claimant is what claims are made from: an account's subject and what
// the identity part knows of its person.
type Claimant struct {
	Subject string
	// Traits is the person's traits object (Segment spec names:
	// name, firstName, lastName, avatar, …).
	Traits        json.RawMessage
	Email         string
	EmailVerified bool
	Phone         string
	PhoneVerified bool

	// traits is Traits decoded, once: the provider keeps a Claimant for
	// a few seconds and a relying party may ask userinfo on every page
	// view, so decoding it per call was a tenth of userinfo's CPU. Claims
	// only read the decoded values (they are marshalled, never changed),
	// and Traits must not change once Claims has read it.
	traits struct {
		once sync.Once
		m    map[string]any
		err  error
	}
}

// decodedTraits returns the traits object decoded (nil when empty).
func (c *Claimant) decodedTraits() (map[string]any, error) {
	c.traits.once.Do(func() {
		if len(c.Traits) > 0 {
			c.traits.err = json.Unmarshal(c.Traits, &c.traits.m)
		}
	})
	return c.traits.m, c.traits.err
}

// ClaimsParams asks for the claims of a person for a client.
type ClaimsParams struct {
	Client *Client
	Scopes []string
	Person *Claimant
}

// reservedClaims are the names a custom claim may not take: the protocol's
// own and the standard ones this file fills.
var reservedClaims = []string{
	"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "auth_time", "nonce", "acr", "amr", "azp", "sid",
	"at_hash", "c_hash", "client_id", "scope", "cnf", "act", "events", "typ", "token_type", "active", "username",
	"name", "given_name", "family_name", "middle_name", "nickname", "preferred_username", "profile", "picture",
	"website", "email", "email_verified", "gender", "birthdate", "zoneinfo", "locale", "phone_number",
	"phone_number_verified", "address", "updated_at",
}

var (
	claimName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)
	traitPath = regexp.MustCompile(`^[A-Za-z0-9_$-]{1,64}(\.[A-Za-z0-9_$-]{1,64}){0,7}$`)
)

func checkClaimNames(claims map[string]string) error {
	if len(claims) > 50 {
		return onramp.Errorf(onramp.EINVALID, "at most 50 custom claims")
	}
	for name, path := range claims {
		if !claimName.MatchString(name) {
			return onramp.Errorf(onramp.EINVALID, "custom claim %q: names are a letter and up to 63 letters, digits or _", name)
		}
		if slices.Contains(reservedClaims, name) {
			return onramp.Errorf(onramp.EINVALID, "custom claim %q: that name is a standard claim", name)
		}
		if !traitPath.MatchString(path) {
			return onramp.Errorf(onramp.EINVALID, "custom claim %q: %q is not a trait path such as company or company.name", name, path)
		}
	}
	return nil
}

// Claims returns the claims the scopes grant, by their standard names
// (OIDC Core §5.1), plus the client's custom claims under onramp:traits.
// Values come from the person's traits as they are, so trait text reaches
// clients literally (escaping is the renderer's job), and only verified
// identifiers are called verified. sub is not included: the caller has it.
func (o *OAuth) Claims(p ClaimsParams) (map[string]any, error) {
	out := map[string]any{}
	if p.Person == nil {
		return out, nil
	}
	traits, err := p.Person.decodedTraits()
	if err != nil {
		return nil, fmt.Errorf("auth: claims: traits of %s: %w", p.Person.Subject, err)
	}
	str := func(keys ...string) string {
		for _, k := range keys {
			if s, ok := traits[k].(string); ok && strings.TrimSpace(s) != "" {
				return strings.TrimSpace(s)
			}
		}
		return ""
	}
	set := func(claim, v string) {
		if v != "" {
			out[claim] = v
		}
	}
	if slices.Contains(p.Scopes, ScopeProfile) {
		given, family := str("firstName", "first_name"), str("lastName", "last_name")
		name := str("name")
		if name == "" {
			name = strings.TrimSpace(given + " " + family)
		}
		set("name", name)
		set("given_name", given)
		set("family_name", family)
		set("picture", str("avatar", "picture"))
		set("locale", str("locale"))
		set("preferred_username", str("username"))
		set("website", str("website"))
	}
	if slices.Contains(p.Scopes, ScopeEmail) {
		// An email only in traits was never proved, so it is never
		// called verified.
		if p.Person.Email != "" {
			out["email"], out["email_verified"] = p.Person.Email, p.Person.EmailVerified
		} else if e := str("email"); e != "" {
			out["email"], out["email_verified"] = e, false
		}
	}
	if slices.Contains(p.Scopes, ScopePhone) {
		if p.Person.Phone != "" {
			out["phone_number"], out["phone_number_verified"] = p.Person.Phone, p.Person.PhoneVerified
		} else if ph := str("phone"); ph != "" {
			out["phone_number"], out["phone_number_verified"] = ph, false
		}
	}
	if slices.Contains(p.Scopes, ScopeTraits) && p.Client != nil {
		for name, path := range p.Client.Claims {
			if v, ok := lookupTrait(traits, path); ok {
				out[name] = v
			}
		}
	}
	return out, nil
}

// lookupTrait follows a dotted path into traits.
func lookupTrait(traits map[string]any, path string) (any, bool) {
	var cur any = traits
	for part := range strings.SplitSeq(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	if cur == nil {
		return nil, false
	}
	return cur, true
}

// ConsentParams names a person, a client and the scopes in question.
type ConsentParams struct {
	Subject  string
	ClientID string
	Scopes   []string
}

// ConsentRequired reports whether the person must be asked before the
// client gets these scopes: never for first-party clients, otherwise
// unless a live consent covers every scope.
func (o *OAuth) ConsentRequired(ctx context.Context, p ConsentParams) (bool, error) {
	c, err := o.Client(ctx, p.ClientID)
	if err != nil {
		return false, err
	}
	if c.FirstParty {
		return false, nil
	}
	con, err := o.read.ConsentOf(ctx, p.Subject, p.ClientID)
	if onramp.ErrorCode(err) == onramp.ENOTFOUND {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("auth: consent: %w", err)
	}
	if con.RevokedAt != nil {
		return true, nil
	}
	for _, s := range p.Scopes {
		if s != ScopeOpenID && !slices.Contains(con.Scopes, s) {
			return true, nil
		}
	}
	return false, nil
}

// GrantConsent records that the person let the client have the scopes,
// on top of what they granted before.
func (o *OAuth) GrantConsent(ctx context.Context, p ConsentParams) error {
	if _, err := o.Client(ctx, p.ClientID); err != nil {
		return err
	}
	err := o.tx(ctx, func(st OAuthTxStore) error {
		scopes := slices.Clone(p.Scopes)
		if old, err := st.ConsentOf(ctx, p.Subject, p.ClientID); err == nil && old.RevokedAt == nil {
			scopes = append(scopes, old.Scopes...)
		} else if err != nil && onramp.ErrorCode(err) != onramp.ENOTFOUND {
			return err
		}
		slices.Sort(scopes)
		return st.PutConsent(ctx, &Consent{Subject: p.Subject, ClientID: p.ClientID, Scopes: slices.Compact(scopes), GrantedAt: o.clock.Now()})
	})
	if err != nil {
		return fmt.Errorf("auth: grant consent: %w", err)
	}
	o.record(ctx, OAuthEvent{Action: "oauth.consent_granted", Outcome: OutcomeSuccess, Subject: p.Subject, ClientID: p.ClientID, Detail: map[string]any{"scopes": p.Scopes}})
	return nil
}

// RevokeConsent withdraws a person's consent for a client; the next sign-in
// asks again.
func (o *OAuth) RevokeConsent(ctx context.Context, subject, clientID string) error {
	err := o.tx(ctx, func(st OAuthTxStore) error {
		c, err := st.ConsentOf(ctx, subject, clientID)
		if err != nil {
			return err
		}
		now := o.clock.Now()
		c.RevokedAt = &now
		return st.PutConsent(ctx, c)
	})
	if err != nil && onramp.ErrorCode(err) != onramp.ENOTFOUND {
		return fmt.Errorf("auth: revoke consent: %w", err)
	}
	return nil
}
