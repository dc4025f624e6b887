package auth

import (
	"fmt"
	"net/url"
	"slices"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/onramp-dev/onramp"
)

// Passkeys on the properties' own pages. The headless API lets a site's
// page ask for a passkey itself: the relying party id stays the host of
// PublicURL (the passkeys people registered on Onramp's pages are scoped
// to it), but the browser's clientDataJSON then names the site's origin.
// A ceremony begun for a site is bound to that one origin; the browser
// allows the page to use Onramp's relying party id only when it is a
// registrable suffix of the page's host, or when Onramp's
// /.well-known/webauthn lists the page's origin (RelatedOrigins).

var errPasskeyOrigin = onramp.Errorf(onramp.EINVALID, "Passkeys need a page on an http or https origin.")

// webAuthnOn is the relying party for a ceremony on origin: the server's
// own for "" or its own origin, else one that also accepts origin. The
// caller has already decided that origin may sign in (the headless API:
// an origin of the flow's client's property).
func (s *Accounts) webAuthnOn(origin string) (*webauthn.WebAuthn, []webauthn.LoginOption, error) {
	wa, err := s.webAuthn()
	if err != nil || origin == "" || slices.Contains(wa.Config.RPOrigins, origin) {
		return wa, nil, err
	}
	if !webOrigin(origin) {
		return nil, nil, errPasskeyOrigin
	}
	cfg := *wa.Config
	cfg.RPOrigins = append(slices.Clone(cfg.RPOrigins), origin)
	on, err := webauthn.New(&cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("auth: passkeys on %s: %w", origin, err)
	}
	// Bound to the origin, the challenge is kept with it in the flow and
	// FinishPasskeyLogin accepts an answer from that origin alone.
	return on, []webauthn.LoginOption{webauthn.WithLoginOrigin(origin)}, nil
}

// webOrigin reports whether v is a serialized http(s) origin as browsers
// send it: scheme and host (and port), nothing else. "null" and other
// opaque origins are not.
func webOrigin(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil &&
		u.Path == "" && u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery && u.Scheme+"://"+u.Host == v
}

// RelatedOrigins is the Related Origin Requests document (WebAuthn §5.11)
// Onramp serves at /.well-known/webauthn: its own origin, then the
// properties' origins (the caller's list, in order) that browsers may
// use its passkeys from. A wildcard and anything that is not a web
// origin are left out, and so are the origins past the five registrable
// domains a browser reads: they could not work, and would hide the rest.
func (s *Accounts) RelatedOrigins(origins []string) (*protocol.RelatedOrigins, error) {
	wa, err := s.webAuthn()
	if err != nil {
		return nil, err
	}
	doc, err := protocol.NewRelatedOrigins(wa.Config.RPOrigins...)
	if err != nil {
		return nil, fmt.Errorf("auth: related origins: %w", err)
	}
	for _, o := range origins {
		if !webOrigin(o) {
			continue
		}
		more, err := protocol.NewRelatedOrigins(append(slices.Clone(doc.Origins), o)...)
		if err != nil {
			s.cfg.Log.Warn("passkeys: origin left out of /.well-known/webauthn", "origin", o, "err", err)
			continue
		}
		doc = more
	}
	return doc, nil
}
