package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/identity"
	"github.com/onramp-dev/onramp/property"
)

// What onramp bench auth seeds straight into the server's database, with
// the engine's own store code: a client, accounts, sessions and finished
// auth requests with codes.

// benchRedirect is the seeded client's redirect URI; nothing listens
// there, as no browser follows it.
const benchRedirect = "http://127.0.0.1/bench/callback"

// benchVerifier is the PKCE verifier of every seeded code.
const benchVerifier = "onramp-bench-verifier-onramp-bench-verifier-0123456789"

func benchChallenge() string {
	sum := sha256.Sum256([]byte(benchVerifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// seedClient makes a property with a confidential, first-party client
// that maps two custom claims.
func (b *authBenchRun) seedClient() (*auth.PropertyCreated, error) {
	pc, err := b.a.oauth.CreateProperty(b.ctx, auth.CreatePropertyParams{
		Property: property.CreateParams{Name: "bench-auth-" + b.runID},
		Client: auth.ClientParams{RedirectURIs: []string{benchRedirect}, FirstParty: true,
			Claims: map[string]string{"company": "company", "plan": "plan"}},
	})
	if err != nil {
		return nil, fmt.Errorf("seed client: %w", err)
	}
	return pc, nil
}

type benchAccount struct {
	personID, subject, email string
}

// seedAccounts makes n accounts on new people with traits, each with the
// password hash phc ("" for none), as a verified sign-up leaves them.
func (b *authBenchRun) seedAccounts(n int, phc string) ([]benchAccount, error) {
	out := make([]benchAccount, 0, n)
	now := time.Now().UTC()
	for lo := 0; lo < n; lo += 500 {
		err := b.a.eng.inTx(b.ctx, func(s store) error {
			for i := lo; i < min(lo+500, n); i++ {
				email := fmt.Sprintf("bench-%s-%d@bench.example.com", b.runID, i)
				subject := onramp.NewID("usr")
				traits, _ := json.Marshal(map[string]any{"name": fmt.Sprintf("Bench Person %d", i), "firstName": "Bench", "lastName": strconv.Itoa(i), "company": "Example Ltd", "plan": "trial"})
				att, err := b.a.identity.Attach(b.ctx, s, identity.AttachParams{Email: email, Subject: subject, Traits: traits})
				if err != nil {
					return err
				}
				handle := make([]byte, 32)
				_, _ = rand.Read(handle)
				acc := &auth.Account{PersonID: att.PersonID, Subject: subject, WebAuthnHandle: handle, Status: auth.AccountActive, PrimaryEmail: email, CreatedAt: now, UpdatedAt: now}
				if err := s.CreateAccount(b.ctx, acc); err != nil {
					return err
				}
				if phc != "" {
					if err := s.SetPassword(b.ctx, acc.PersonID, phc, now); err != nil {
						return err
					}
				}
				out = append(out, benchAccount{personID: att.PersonID, subject: subject, email: email})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("seed accounts: %w", err)
		}
	}
	return out, nil
}

// seedCodes stores n finished auth requests of the client, each with a
// code, for the accounts in turn, and returns the codes. The codes live
// an hour (60 s in real sign-ins) so that a long run can use them all.
func (b *authBenchRun) seedCodes(clientID string, accs []benchAccount, scopes []string, n int) ([]string, error) {
	codes := make([]string, n)
	now := time.Now().UTC()
	challenge := benchChallenge()
	for lo := 0; lo < n; lo += 1000 {
		err := b.a.eng.inTx(b.ctx, func(s store) error {
			for i := lo; i < min(lo+1000, n); i++ {
				codes[i] = onramp.NewSecret("code")
				acc := accs[i%len(accs)]
				r := &auth.AuthRequest{
					ID: onramp.NewID("arq"), ClientID: clientID, RedirectURI: benchRedirect, Scopes: scopes, ResponseType: "code", Nonce: "bench-" + b.runID,
					CodeChallenge: challenge, CodeChallengeMethod: "S256", Subject: acc.subject, SessionID: onramp.NewID("ses"), AuthTime: now, AMR: []string{"pwd"},
					Done: true, CodeHash: property.HashSecret(codes[i]), CodeExpiresAt: now.Add(time.Hour), CreatedAt: now, ExpiresAt: now.Add(time.Hour),
				}
				if err := s.CreateAuthRequest(b.ctx, r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("seed codes: %w", err)
		}
	}
	return codes, nil
}

// seedSessions makes n live sessions of a person and returns their
// cookie secrets.
func (b *authBenchRun) seedSessions(personID string, n int, life time.Duration) ([]string, error) {
	secrets := make([]string, n)
	now := time.Now().UTC()
	err := b.a.eng.inTx(b.ctx, func(s store) error {
		for i := range secrets {
			secrets[i] = onramp.NewSecret("ses")
			ses := &auth.Session{
				ID: onramp.NewID("ses"), SecretHash: auth.SessionSecretHash(secrets[i]), PersonID: personID, AAL: 1, AMR: []string{"pwd"},
				AuthTime: now, CreatedAt: now, LastSeenAt: now, IdleExpiresAt: now.Add(life), ExpiresAt: now.Add(life), IP: "127.0.0.1", UserAgent: "onramp-bench",
			}
			if err := s.CreateSession(b.ctx, ses); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("seed sessions: %w", err)
	}
	return secrets, nil
}
