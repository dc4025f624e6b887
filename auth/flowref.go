package auth

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
)

// Deferred flows (StartFlowParams.Deferred). Most sign-ins are a form
// shown and a password posted; writing the flow when the form is shown
// cost a commit (an fsync) per sign-in for state that the browser can
// carry itself. The reference of a deferred flow is
//
//	<flow id>.d.<base64url JSON state>.<base64url HMAC>
//
// The MAC (the CSRF key, under its own label) binds the state to the flow
// id, so the browser can neither change the OIDC request, the tracking id
// or the expiry it carries nor make up a flow. The part after the id is
// the flow's secret, as for a stored flow: the row a later step makes
// keeps its SHA-256, so the same cookie goes on working. What a stored
// flow's deletion ends, a deferred one cannot: until it expires, its
// reference opens a fresh flow again (StepEmail, no person), which is
// what loading the form again gives anyway.

const (
	deferredPrefix = "d."
	// maxRefLen keeps a reference within what the pages accept from the
	// flow cookie (cookieValue takes up to 512 bytes).
	maxRefLen = 500
)

// deferredState is what a deferred flow's reference carries: the fields
// StartFlow sets.
type deferredState struct {
	Kind          string `json:"k"`
	AuthRequestID string `json:"r,omitempty"`
	ClientID      string `json:"c,omitempty"`
	AnonymousID   string `json:"a,omitempty"`
	Lang          string `json:"l,omitempty"`
	IP            string `json:"i,omitempty"`
	// Expires is the flow's expiry in Unix microseconds.
	Expires int64 `json:"e"`
}

func (s *Accounts) flowMAC(id, state string) string {
	return macString(s.keys.csrf, "flow", id, state)
}

// deferredRef returns the reference that carries the new flow f, and
// marks f deferred; false when its state is too long for a cookie.
func (s *Accounts) deferredRef(f *Flow) (string, bool) {
	raw, err := json.Marshal(deferredState{Kind: f.Kind, AuthRequestID: f.AuthRequestID, ClientID: f.ClientID, AnonymousID: f.AnonymousID,
		Lang: f.Lang, IP: f.IP, Expires: f.ExpiresAt.UnixMicro()})
	if err != nil {
		return "", false
	}
	state := base64.RawURLEncoding.EncodeToString(raw)
	secret := deferredPrefix + state + "." + s.flowMAC(f.ID, state)
	ref := f.ID + "." + secret
	if len(ref) > maxRefLen {
		return "", false
	}
	f.SecretHash, f.deferred = hashToken(secret), true
	return ref, true
}

// deferredFlow is the flow a deferred reference carries, nil when the
// secret is not one, its MAC is wrong or it has expired.
func (s *Accounts) deferredFlow(id, secret string) *Flow {
	rest, ok := strings.CutPrefix(secret, deferredPrefix)
	if !ok || len(id)+1+len(secret) > maxRefLen {
		return nil
	}
	state, mac, ok := strings.Cut(rest, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(s.flowMAC(id, state))) {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(state)
	if err != nil {
		return nil
	}
	var d deferredState
	if json.Unmarshal(raw, &d) != nil {
		return nil
	}
	exp := time.UnixMicro(d.Expires)
	if !s.cfg.Clock.Now().Before(exp) {
		return nil
	}
	return &Flow{
		ID: id, SecretHash: hashToken(secret), Kind: d.Kind, AuthRequestID: d.AuthRequestID, ClientID: d.ClientID, AnonymousID: d.AnonymousID,
		Step: StepEmail, IP: d.IP, Lang: d.Lang, CreatedAt: exp.Add(-flowLifetime), ExpiresAt: exp, deferred: true,
	}
}

// saveFlow writes f back: the row is created the first time a deferred
// flow changes.
func saveFlow(ctx context.Context, st AccountStore, f *Flow) error {
	if !f.deferred {
		return st.UpdateFlow(ctx, f)
	}
	if err := st.CreateFlow(ctx, f); err != nil {
		return err
	}
	f.deferred = false
	return nil
}

// endFlow deletes f's row, if it has one.
func endFlow(ctx context.Context, st AccountStore, f *Flow) error {
	if f.deferred {
		return nil
	}
	return st.DeleteFlow(ctx, f.ID)
}
