package auth

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/onramp-dev/onramp"
)

// Authenticator apps (TOTP, RFC 6238) with the parameters every app
// understands: SHA-1, 6 digits, 30 seconds. A code is accepted for the
// step before and after the current one (±30 s of clock skew), and only
// for a step later than the last one accepted, so each code works once.

const (
	totpPeriod = 30
	totpSkew   = 1
	totpQRSize = 240
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

func isTOTPCode(code string) bool {
	if len(code) != 6 {
		return false
	}
	for _, r := range code {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// sealTOTP encrypts a base32 secret under the server key "totp", bound to
// the person so that a sealed secret copied to another row does not open.
func (s *Accounts) sealTOTP(personID, secret string) ([]byte, error) {
	aead, err := s.totpAEAD()
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	return aead.Seal(nonce, nonce, []byte(secret), []byte("totp\x00"+personID)), nil
}

func (s *Accounts) openTOTP(personID string, sealed []byte) (string, error) {
	aead, err := s.totpAEAD()
	if err != nil {
		return "", err
	}
	if len(sealed) < aead.NonceSize() {
		return "", errors.New("auth: totp secret too short")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte("totp\x00"+personID))
	if err != nil {
		return "", fmt.Errorf("auth: open totp secret: %w", err)
	}
	return string(plain), nil
}

func (s *Accounts) totpAEAD() (cipher.AEAD, error) {
	if len(s.keys.totp) != 32 {
		return nil, errors.New("auth: totp key not loaded (call Init)")
	}
	block, err := aes.NewCipher(s.keys.totp)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// totpStep is the 30-second step t falls in.
func totpStep(t time.Time) int64 { return t.Unix() / totpPeriod }

// matchTOTP returns the step within ±totpSkew of now whose code is code
// and which is later than lastStep, or 0. Every candidate is computed and
// compared in constant time, so timing says nothing about which matched.
func matchTOTP(secret, code string, now time.Time, lastStep int64) (int64, error) {
	var found int64
	cur := totpStep(now)
	for step := cur - totpSkew; step <= cur+totpSkew; step++ {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(step*totpPeriod, 0), totpOpts)
		if err != nil {
			return 0, fmt.Errorf("auth: totp: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && step > lastStep {
			found = step
		}
	}
	return found, nil
}

// checkTOTP checks a code against the person's secret (confirmed, unless
// confirmed is false: the enrolment's own first code) and burns its step.
func (s *Accounts) checkTOTP(ctx context.Context, st MFAStore, personID, code string, confirmed bool) (bool, error) {
	t, err := st.TOTPOf(ctx, personID)
	if onramp.ErrorCode(err) == onramp.ENOTFOUND {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if confirmed != (t.ConfirmedAt != nil) {
		return false, nil
	}
	secret, err := s.openTOTP(personID, t.SecretEnc)
	if err != nil {
		return false, err
	}
	step, err := matchTOTP(secret, code, s.cfg.Clock.Now(), t.LastStep)
	if err != nil || step == 0 {
		return false, err
	}
	// Of two requests with the same code, one wins the step.
	return st.AdvanceTOTPStep(ctx, personID, step)
}

// TOTPEnrollment is what the person copies into their authenticator app:
// the secret to type, the otpauth:// URL and the same as a QR code (a PNG
// data URL, so the page needs no script or extra request).
type TOTPEnrollment struct {
	Secret string `json:"secret"`
	URL    string `json:"url"`
	QR     string `json:"qr"`
}

// SessionParams is a signed-in person acting on their own account.
type SessionParams struct {
	Session *Session
	Info    RequestInfo
}

// recentAuth is how fresh a sign-in must be to add a second factor.
// Adding one upgrades the session (AAL2), so a stolen cookie of an old
// session must not be enough: the person signs in again first.
const recentAuth = 15 * time.Minute

var errNotRecent = onramp.Errorf(onramp.EFORBIDDEN, "For your safety, sign in again before adding a second factor (your sign-in must be less than 15 minutes old).")

func (s *Accounts) recentSignIn(ses *Session) error {
	if s.cfg.Clock.Now().Sub(ses.AuthTime) > recentAuth {
		return errNotRecent
	}
	return nil
}

var errTOTPOn = onramp.Errorf(onramp.ECONFLICT, "An authenticator app is set up already. Turn it off first to set up another.")

// EnrollTOTP starts setting up an authenticator app: a new secret, not
// yet a factor until ConfirmTOTP sees a code from it. Starting again
// replaces a secret that was never confirmed.
func (s *Accounts) EnrollTOTP(ctx context.Context, p SessionParams) (*TOTPEnrollment, error) {
	ses := p.Session
	if err := s.recentSignIn(ses); err != nil {
		return nil, err
	}
	acc, err := s.cfg.Read.AccountOf(ctx, []string{ses.PersonID})
	if err != nil {
		return nil, fmt.Errorf("auth: enrol totp: %w", err)
	}
	enr, err := s.totpEnrollment(acc, nil)
	if err != nil {
		return nil, err
	}
	sealed, err := s.sealTOTP(ses.PersonID, enr.Secret)
	if err != nil {
		return nil, err
	}
	err = s.cfg.InTx(ctx, func(st TxStore) error {
		on, err := s.hasTOTP(ctx, st, ses.PersonID)
		if err != nil {
			return err
		}
		if on {
			return errTOTPOn
		}
		return st.PutTOTP(ctx, &TOTP{PersonID: ses.PersonID, SecretEnc: sealed, CreatedAt: s.cfg.Clock.Now()})
	})
	if err != nil {
		return nil, fmt.Errorf("auth: enrol totp: %w", err)
	}
	return enr, nil
}

// totpEnrollment makes the secret (a new one when secret is nil) and how
// the app takes it in: the otpauth URL and its QR code.
func (s *Accounts) totpEnrollment(acc *Account, secret []byte) (*TOTPEnrollment, error) {
	label := acc.PrimaryEmail
	if label == "" {
		label = acc.Subject
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: s.cfg.ProductName, AccountName: label, Period: totpPeriod, Digits: otp.DigitsSix,
		Algorithm: otp.AlgorithmSHA1, Secret: secret})
	if err != nil {
		return nil, fmt.Errorf("auth: totp key: %w", err)
	}
	img, err := key.Image(totpQRSize, totpQRSize)
	if err != nil {
		return nil, fmt.Errorf("auth: totp qr: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("auth: totp qr: %w", err)
	}
	return &TOTPEnrollment{Secret: key.Secret(), URL: key.URL(), QR: "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())}, nil
}

// PendingTOTP shows again an authenticator-app setup that was begun and
// not confirmed (after a mistyped code, or a reload), or ENOTFOUND.
func (s *Accounts) PendingTOTP(ctx context.Context, personID string) (*TOTPEnrollment, error) {
	t, err := s.cfg.Read.TOTPOf(ctx, personID)
	if err == nil && t.ConfirmedAt != nil {
		err = onramp.Errorf(onramp.ENOTFOUND, "No authenticator-app setup is waiting.")
	}
	if err != nil {
		return nil, err
	}
	acc, err := s.cfg.Read.AccountOf(ctx, []string{personID})
	if err != nil {
		return nil, err
	}
	b32, err := s.openTOTP(personID, t.SecretEnc)
	if err != nil {
		return nil, err
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(b32)
	if err != nil {
		return nil, fmt.Errorf("auth: totp secret: %w", err)
	}
	return s.totpEnrollment(acc, raw)
}

// TOTPConfirmed is a confirmed authenticator app: the recovery codes,
// shown this once, and the session that replaces the one it was set up
// from.
type TOTPConfirmed struct {
	RecoveryCodes []string
	Grant         *Grant
}

// ConfirmTOTP makes the enrolled secret a factor once a code from the app
// matches. It issues the recovery codes and rotates the session.
func (s *Accounts) ConfirmTOTP(ctx context.Context, p FactorCodeParams) (*TOTPConfirmed, error) {
	ses := p.Session
	if err := s.checkAttempt(ctx, p.Info, mfaKey(ses.PersonID)); err != nil {
		return nil, err
	}
	code := normalizeCode(p.Code)
	var out *TOTPConfirmed
	var ok bool
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		if on, err := s.hasTOTP(ctx, st, ses.PersonID); err != nil || on {
			if err == nil {
				err = errTOTPOn
			}
			return err
		}
		var err error
		if ok, err = s.checkTOTP(ctx, st, ses.PersonID, code, false); err != nil || !ok {
			return err
		}
		now := s.cfg.Clock.Now()
		if won, err := st.ConfirmTOTP(ctx, ses.PersonID, now); err != nil || !won {
			if err == nil {
				err = errTOTPOn
			}
			return err
		}
		if err := s.succeeded(ctx, st, mfaKey(ses.PersonID)); err != nil {
			return err
		}
		shown, hashes := s.newRecoveryCodes(ses.PersonID)
		if err := st.ReplaceRecoveryCodes(ctx, ses.PersonID, hashes, now); err != nil {
			return err
		}
		g, err := s.factorChanged(ctx, st, ses, "auth.mfa_enrolled", map[string]any{"factor": "totp"}, []string{amrOTP}, p.Info)
		if err != nil {
			return err
		}
		out = &TOTPConfirmed{RecoveryCodes: shown, Grant: g}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("auth: confirm totp: %w", err)
	}
	if !ok {
		return nil, s.secondFactorFailed(ctx, ses.PersonID, "", "enrol", p.Info)
	}
	s.sessions.forget(ses.ID)
	return out, nil
}

// DisableTOTP removes the authenticator app and the recovery codes. It
// needs a fresh code from the app or a recovery code: a session left open
// on a shared computer must not be enough to strip the second factor.
func (s *Accounts) DisableTOTP(ctx context.Context, p FactorCodeParams) (*Grant, error) {
	ses := p.Session
	if err := s.checkAttempt(ctx, p.Info, mfaKey(ses.PersonID)); err != nil {
		return nil, err
	}
	var g *Grant
	var method string
	err := s.cfg.InTx(ctx, func(st TxStore) error {
		var err error
		if method, err = s.checkSecondFactor(ctx, st, ses.PersonID, p.Code, true); err != nil || method == "" {
			return err
		}
		if err := s.succeeded(ctx, st, mfaKey(ses.PersonID)); err != nil {
			return err
		}
		if err := st.DeleteTOTP(ctx, ses.PersonID); err != nil {
			return err
		}
		if err := st.DeleteRecoveryCodes(ctx, ses.PersonID); err != nil {
			return err
		}
		g, err = s.factorChanged(ctx, st, ses, "auth.mfa_removed", map[string]any{"factor": "totp"}, nil, p.Info)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("auth: disable totp: %w", err)
	}
	if method == "" {
		return nil, s.secondFactorFailed(ctx, ses.PersonID, "", "disable", p.Info)
	}
	s.sessions.forget(ses.ID)
	return g, nil
}
