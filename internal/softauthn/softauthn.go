// Package softauthn is a WebAuthn platform authenticator in software, for
// tests: it answers navigator.credentials.create and .get the way a
// browser hands the answers to a page (the PublicKeyCredential JSON), from
// the options as a server sends them (the WebAuthn JSON form, binary
// fields base64url). Keys are ECDSA P-256 (COSE ES256), attestation is
// "none", and every credential is resident, so a login needs no allow
// list. It lets tests drive a real relying-party library end to end
// without a browser.
package softauthn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Authenticator holds credentials for one origin.
type Authenticator struct {
	// Origin is what the "browser" puts in clientDataJSON; RPID the
	// relying party id its credentials are scoped to.
	Origin string
	RPID   string
	// UV says whether the authenticator verifies the user (PIN,
	// biometrics) and sets the UV flag.
	UV bool
	// Creds are the credentials it holds, oldest first.
	Creds []*Credential
}

// Credential is one key pair the authenticator holds. Counter is the
// signature counter; a test may set it back to act as a cloned key.
type Credential struct {
	ID         []byte
	UserHandle []byte
	RPID       string
	Counter    uint32
	key        *ecdsa.PrivateKey
}

// New returns an empty authenticator.
func New(origin, rpID string, uv bool) *Authenticator {
	return &Authenticator{Origin: origin, RPID: rpID, UV: uv}
}

var b64 = base64.RawURLEncoding

// Authenticator data flags (WebAuthn §6.1). Every credential claims to be
// backed up (a synced passkey), as platform passkeys usually are.
const (
	flagUP = 0x01
	flagUV = 0x04
	flagBE = 0x08
	flagBS = 0x10
	flagAT = 0x40
)

// CreationOptions is the part of PublicKeyCredentialCreationOptionsJSON
// an authenticator reads (and a test may check).
type CreationOptions struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RP        struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"rp"`
		User struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"user"`
		ExcludeCredentials []struct {
			ID string `json:"id"`
		} `json:"excludeCredentials"`
		AuthenticatorSelection struct {
			ResidentKey        string `json:"residentKey"`
			RequireResidentKey *bool  `json:"requireResidentKey"`
			UserVerification   string `json:"userVerification"`
		} `json:"authenticatorSelection"`
	} `json:"publicKey"`
}

// RequestOptions is the part of PublicKeyCredentialRequestOptionsJSON an
// authenticator reads.
type RequestOptions struct {
	PublicKey struct {
		Challenge        string `json:"challenge"`
		RPID             string `json:"rpId"`
		AllowCredentials []struct {
			ID string `json:"id"`
		} `json:"allowCredentials"`
		UserVerification string `json:"userVerification"`
	} `json:"publicKey"`
}

// ErrExcluded is the browser's InvalidStateError: the authenticator holds
// a credential the options exclude.
var ErrExcluded = errors.New("InvalidStateError: the authenticator holds an excluded credential")

// Create makes a credential for the options (any JSON-marshalable form of
// them) and returns the PublicKeyCredential JSON.
func (a *Authenticator) Create(options any) (json.RawMessage, *Credential, error) {
	var o CreationOptions
	if err := Decode(options, &o); err != nil {
		return nil, nil, err
	}
	for _, ex := range o.PublicKey.ExcludeCredentials {
		for _, c := range a.Creds {
			if ex.ID == b64.EncodeToString(c.ID) {
				return nil, nil, ErrExcluded
			}
		}
	}
	if o.PublicKey.RP.ID != a.RPID {
		return nil, nil, fmt.Errorf("SecurityError: rp id %q is not this origin's %q", o.PublicKey.RP.ID, a.RPID)
	}
	userHandle, err := b64.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("user.id: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	c := &Credential{ID: id, key: key, UserHandle: userHandle, RPID: a.RPID}
	point, err := key.PublicKey.Bytes() // 0x04 ‖ X ‖ Y
	if err != nil {
		return nil, nil, err
	}
	cose, err := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: point[1:33], -3: point[33:65]})
	if err != nil {
		return nil, nil, err
	}
	clientData := a.clientData("webauthn.create", o.PublicKey.Challenge)
	authData := a.authData(c, flagAT)
	authData = append(authData, make([]byte, 16)...) // AAGUID: none
	authData = binary.BigEndian.AppendUint16(authData, uint16(len(c.ID)))
	authData = append(authData, c.ID...)
	authData = append(authData, cose...)
	att, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": authData})
	if err != nil {
		return nil, nil, err
	}
	a.Creds = append(a.Creds, c)
	out, err := json.Marshal(map[string]any{
		"id": b64.EncodeToString(c.ID), "rawId": b64.EncodeToString(c.ID), "type": "public-key", "authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON": b64.EncodeToString(clientData), "attestationObject": b64.EncodeToString(att), "transports": []string{"internal"},
		},
		"clientExtensionResults": map[string]any{},
	})
	return out, c, err
}

// Get signs the options' challenge with c (the credential the user picks
// in the browser's passkey chooser) and returns the PublicKeyCredential
// JSON, user handle included as for a discoverable credential.
func (a *Authenticator) Get(options any, c *Credential) (json.RawMessage, error) {
	var o RequestOptions
	if err := Decode(options, &o); err != nil {
		return nil, err
	}
	if o.PublicKey.RPID != c.RPID {
		return nil, fmt.Errorf("NotAllowedError: no credential for rp id %q", o.PublicKey.RPID)
	}
	c.Counter++
	clientData := a.clientData("webauthn.get", o.PublicKey.Challenge)
	authData := a.authData(c, 0)
	sum := sha256.Sum256(clientData)
	digest := sha256.Sum256(append(append([]byte{}, authData...), sum[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, c.key, digest[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(c.ID), "rawId": b64.EncodeToString(c.ID), "type": "public-key", "authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON": b64.EncodeToString(clientData), "authenticatorData": b64.EncodeToString(authData),
			"signature": b64.EncodeToString(sig), "userHandle": b64.EncodeToString(c.UserHandle),
		},
		"clientExtensionResults": map[string]any{},
	})
}

func (a *Authenticator) clientData(typ, challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.Origin, "crossOrigin": false})
	return b
}

// authData is rpIdHash ‖ flags ‖ signCount: user present always, user
// verified when this authenticator verifies users.
func (a *Authenticator) authData(c *Credential, flags byte) []byte {
	flags |= flagUP | flagBE | flagBS
	if a.UV {
		flags |= flagUV
	}
	h := sha256.Sum256([]byte(c.RPID))
	out := append(h[:], flags)
	return binary.BigEndian.AppendUint32(out, c.Counter)
}

// Decode reads any JSON-marshalable value (or raw JSON) into out, as a
// page's script sees the server's answer.
func Decode(in, out any) error {
	b, ok := in.(json.RawMessage)
	if !ok {
		var err error
		if b, err = json.Marshal(in); err != nil {
			return err
		}
	}
	return json.Unmarshal(b, out)
}
