package auth_test

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

// softAuthenticator is a platform authenticator in software: it answers
// navigator.credentials.create and .get the way a browser hands the
// answers to a page (the PublicKeyCredential JSON), from the options as
// the server sends them (the WebAuthn JSON form). Keys are ECDSA P-256
// (COSE ES256), attestation is "none", and every credential is resident,
// so a login needs no allow list.
type softAuthenticator struct {
	origin string
	rpID   string
	// uv says whether the authenticator verifies the user (PIN,
	// biometrics) and sets the UV flag.
	uv    bool
	creds []*softCredential
}

type softCredential struct {
	id         []byte
	key        *ecdsa.PrivateKey
	userHandle []byte
	rpID       string
	counter    uint32
}

var b64 = base64.RawURLEncoding

// Authenticator data flags (WebAuthn §6.1).
const (
	flagUP = 0x01
	flagUV = 0x04
	flagBE = 0x08
	flagBS = 0x10
	flagAT = 0x40
)

// creationOptions is the part of PublicKeyCredentialCreationOptionsJSON
// an authenticator reads.
type creationOptions struct {
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

type requestOptions struct {
	PublicKey struct {
		Challenge        string `json:"challenge"`
		RPID             string `json:"rpId"`
		AllowCredentials []struct {
			ID string `json:"id"`
		} `json:"allowCredentials"`
		UserVerification string `json:"userVerification"`
	} `json:"publicKey"`
}

var errExcluded = errors.New("InvalidStateError: the authenticator holds an excluded credential")

// create makes a credential for the options (any JSON-marshalable form of
// them) and returns the PublicKeyCredential JSON.
func (a *softAuthenticator) create(options any) (json.RawMessage, *softCredential, error) {
	var o creationOptions
	if err := roundTrip(options, &o); err != nil {
		return nil, nil, err
	}
	for _, ex := range o.PublicKey.ExcludeCredentials {
		for _, c := range a.creds {
			if ex.ID == b64.EncodeToString(c.id) {
				return nil, nil, errExcluded
			}
		}
	}
	if o.PublicKey.RP.ID != a.rpID {
		return nil, nil, fmt.Errorf("SecurityError: rp id %q is not this origin's %q", o.PublicKey.RP.ID, a.rpID)
	}
	userHandle, err := b64.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("user.id: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	c := &softCredential{id: randomID(), key: key, userHandle: userHandle, rpID: a.rpID}
	point, err := key.PublicKey.Bytes() // 0x04 ‖ X ‖ Y
	if err != nil {
		return nil, nil, err
	}
	cose, err := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: point[1:33], -3: point[33:65]})
	if err != nil {
		return nil, nil, err
	}
	clientData := a.clientData("webauthn.create", o.PublicKey.Challenge)
	authData := a.authData(c, flagAT|flagBE|flagBS)
	authData = append(authData, make([]byte, 16)...) // AAGUID: none
	authData = binary.BigEndian.AppendUint16(authData, uint16(len(c.id)))
	authData = append(authData, c.id...)
	authData = append(authData, cose...)
	att, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": authData})
	if err != nil {
		return nil, nil, err
	}
	a.creds = append(a.creds, c)
	out, err := json.Marshal(map[string]any{
		"id": b64.EncodeToString(c.id), "rawId": b64.EncodeToString(c.id), "type": "public-key", "authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON": b64.EncodeToString(clientData), "attestationObject": b64.EncodeToString(att), "transports": []string{"internal"},
		},
		"clientExtensionResults": map[string]any{},
	})
	return out, c, err
}

// get signs the options' challenge with c (the credential the user picks
// in the browser's passkey chooser) and returns the PublicKeyCredential
// JSON, user handle included as for a discoverable credential.
func (a *softAuthenticator) get(options any, c *softCredential) (json.RawMessage, error) {
	var o requestOptions
	if err := roundTrip(options, &o); err != nil {
		return nil, err
	}
	if o.PublicKey.RPID != c.rpID {
		return nil, fmt.Errorf("NotAllowedError: no credential for rp id %q", o.PublicKey.RPID)
	}
	c.counter++
	clientData := a.clientData("webauthn.get", o.PublicKey.Challenge)
	authData := a.authData(c, flagBE|flagBS)
	sum := sha256.Sum256(clientData)
	digest := sha256.Sum256(append(append([]byte{}, authData...), sum[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, c.key, digest[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(c.id), "rawId": b64.EncodeToString(c.id), "type": "public-key", "authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON": b64.EncodeToString(clientData), "authenticatorData": b64.EncodeToString(authData),
			"signature": b64.EncodeToString(sig), "userHandle": b64.EncodeToString(c.userHandle),
		},
		"clientExtensionResults": map[string]any{},
	})
}

func (a *softAuthenticator) clientData(typ, challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.origin, "crossOrigin": false})
	return b
}

// authData is rpIdHash ‖ flags ‖ signCount: user present always, user
// verified when this authenticator verifies users.
func (a *softAuthenticator) authData(c *softCredential, flags byte) []byte {
	flags |= flagUP
	if a.uv {
		flags |= flagUV
	}
	h := sha256.Sum256([]byte(c.rpID))
	out := append(h[:], flags)
	return binary.BigEndian.AppendUint32(out, c.counter)
}

func roundTrip(in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

func randomID() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}
