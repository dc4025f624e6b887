package oidcop

import (
	"crypto/ecdsa"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/onramp-dev/onramp/auth"
)

// signingKey is auth's active key as op signs with it.
type signingKey struct{ k *auth.ActiveKey }

var _ op.SigningKey = signingKey{}

func (s signingKey) SignatureAlgorithm() jose.SignatureAlgorithm {
	return jose.SignatureAlgorithm(s.k.Alg)
}
func (s signingKey) Key() any   { return s.k.Private }
func (s signingKey) ID() string { return s.k.KID }

// publicKey is a key of the published key set.
type publicKey struct {
	kid string
	alg string
	pub *ecdsa.PublicKey
}

var _ op.Key = publicKey{}

func (p publicKey) ID() string                         { return p.kid }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.SignatureAlgorithm(p.alg) }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return p.pub }
