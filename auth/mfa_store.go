package auth

import (
	"context"
	"time"
)

// This file holds the records of the second factors and passkeys
// (migration 0004, docs/design/auth.md §1) and the MFAStore each engine
// implements for them, beside AccountStore on the same Queries type so one
// transaction can change an account, its session and its factors.

// Authenticator data flags kept with a passkey (WebAuthn §6.1: bit 2 is
// user verification, bits 3 and 4 backup eligibility and state).
const (
	PasskeyFlagUserPresent    uint8 = 1 << 0
	PasskeyFlagUserVerified   uint8 = 1 << 2
	PasskeyFlagBackupEligible uint8 = 1 << 3
	PasskeyFlagBackupState    uint8 = 1 << 4
)

// Passkey is a WebAuthn credential of an account. It mirrors
// webauthn.Credential so the library can verify an assertion against it:
// ID is the base64url (unpadded) credential id, PublicKey the COSE key,
// Flags the raw authenticator flags of registration as updated by later
// sign-ins. CloneWarning is set when a sign-in came with a signature
// counter that did not move forward: two authenticators may hold the key.
type Passkey struct {
	ID                string     `json:"id"`
	PersonID          string     `json:"person_id"`
	PublicKey         []byte     `json:"-"`
	AttestationType   string     `json:"attestation_type,omitempty"`
	AttestationFormat string     `json:"attestation_format,omitempty"`
	Transports        []string   `json:"transports"`
	Flags             uint8      `json:"flags"`
	AAGUID            []byte     `json:"aaguid,omitempty"`
	SignCount         uint32     `json:"sign_count"`
	CloneWarning      bool       `json:"clone_warning"`
	Name              string     `json:"name"`
	CreatedAt         time.Time  `json:"created_at"`
	LastUsedAt        *time.Time `json:"last_used_at,omitempty"`
}

// UserVerified reports whether the authenticator verified the user (PIN,
// biometrics) when it was last used.
func (p *Passkey) UserVerified() bool { return p.Flags&PasskeyFlagUserVerified != 0 }

// Synced reports whether the passkey may be backed up to another device
// (a password manager or platform sync).
func (p *Passkey) Synced() bool { return p.Flags&PasskeyFlagBackupEligible != 0 }

// TOTP is a person's authenticator-app secret. SecretEnc is the base32
// secret sealed with AES-GCM under the server key "totp" (bound to the
// person id), so a copy of the table alone does not give the codes away.
// It counts as a second factor only once ConfirmedAt is set. LastStep is
// the newest 30-second step a code was accepted for: no code of that step
// or an earlier one is accepted again.
type TOTP struct {
	PersonID    string     `json:"person_id"`
	SecretEnc   []byte     `json:"-"`
	ConfirmedAt *time.Time `json:"confirmed_at,omitempty"`
	LastStep    int64      `json:"last_step"`
	CreatedAt   time.Time  `json:"created_at"`
}

// RecoveryCode is one of the single-use codes that stand in for the
// authenticator app. Only a keyed hash of the code is kept.
type RecoveryCode struct {
	PersonID  string     `json:"person_id"`
	CodeHash  string     `json:"-"`
	UsedAt    *time.Time `json:"used_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

// MFAStore is what the passkey, TOTP and recovery-code rules need from an
// engine. As in AccountStore, methods that find or change one thing by its
// key answer onramp.ENOTFOUND when it does not exist, and lists are never
// nil. The compare-and-set methods (AdvanceTOTPStep, ConfirmTOTP,
// UseRecoveryCode) report whether this call won: of two racing callers,
// exactly one does.
type MFAStore interface {
	// Passkeys. CreatePasskey answers ECONFLICT when the credential id is
	// registered already (to anyone). PasskeysOf lists oldest first.
	CreatePasskey(ctx context.Context, p *Passkey) error
	PasskeyByID(ctx context.Context, id string) (*Passkey, error)
	PasskeysOf(ctx context.Context, personID string) ([]*Passkey, error)
	// UpdatePasskeyUse records a sign-in: SignCount, CloneWarning, Flags
	// and LastUsedAt of p are written.
	UpdatePasskeyUse(ctx context.Context, p *Passkey) error
	RenamePasskey(ctx context.Context, id, name string) error
	DeletePasskey(ctx context.Context, id string) error

	// TOTP. PutTOTP creates the person's secret or replaces it (a new
	// enrolment starts over). AdvanceTOTPStep sets last_step to step only
	// if it is smaller, so a code's step is accepted once. ConfirmTOTP sets
	// confirmed_at only if it is unset.
	PutTOTP(ctx context.Context, t *TOTP) error
	TOTPOf(ctx context.Context, personID string) (*TOTP, error)
	AdvanceTOTPStep(ctx context.Context, personID string, step int64) (bool, error)
	ConfirmTOTP(ctx context.Context, personID string, at time.Time) (bool, error)
	DeleteTOTP(ctx context.Context, personID string) error

	// Recovery codes. ReplaceRecoveryCodes drops the person's codes and
	// stores these hashes. UseRecoveryCode sets used_at of the person's
	// code with this hash only if it is unset (ENOTFOUND when the person
	// has no such code). RecoveryCodesOf lists used ones too.
	// DeleteRecoveryCodes of a person with none is no error.
	ReplaceRecoveryCodes(ctx context.Context, personID string, hashes []string, at time.Time) error
	UseRecoveryCode(ctx context.Context, personID, hash string, at time.Time) (bool, error)
	RecoveryCodesOf(ctx context.Context, personID string) ([]*RecoveryCode, error)
	DeleteRecoveryCodes(ctx context.Context, personID string) error
}
