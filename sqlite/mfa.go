package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// This file implements auth.MFAStore (tables of migration 0004).

var _ auth.MFAStore = (*Queries)(nil)

// Passkeys.

const passkeyCols = `id, person_id, public_key, attestation_type, attestation_format, transports, flags, aaguid, sign_count, clone_warning, name, created_at, last_used_at`

func scanPasskey(sc rowScanner) (*auth.Passkey, error) {
	var p auth.Passkey
	var transports string
	var flags, count, created int64
	var clone bool
	var used sql.NullInt64
	if err := sc.Scan(&p.ID, &p.PersonID, &p.PublicKey, &p.AttestationType, &p.AttestationFormat, &transports, &flags, &p.AAGUID, &count, &clone, &p.Name, &created, &used); err != nil {
		return nil, err
	}
	var err error
	if p.Transports, err = jsonList(transports); err != nil {
		return nil, fmt.Errorf("transports: %w", err)
	}
	p.Flags, p.SignCount, p.CloneWarning = uint8(flags), uint32(count), clone
	p.CreatedAt, p.LastUsedAt = fromMicros(created), timePtr(used)
	return &p, nil
}

func (q *Queries) CreatePasskey(ctx context.Context, p *auth.Passkey) error {
	_, err := q.x.ExecContext(ctx, `INSERT INTO passkeys (`+passkeyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.PersonID, p.PublicKey, p.AttestationType, p.AttestationFormat, listText(p.Transports), int64(p.Flags), nullBytes(p.AAGUID),
		int64(p.SignCount), p.CloneWarning, p.Name, micros(p.CreatedAt), nullMicros(p.LastUsedAt))
	if isUnique(err) {
		return onramp.Errorf(onramp.ECONFLICT, "This passkey is registered already.")
	}
	if err != nil {
		return fmt.Errorf("sqlite: create passkey: %w", err)
	}
	return nil
}

func (q *Queries) PasskeyByID(ctx context.Context, id string) (*auth.Passkey, error) {
	return one(q.x.QueryRowContext(ctx, `SELECT `+passkeyCols+` FROM passkeys WHERE id = ?`, id), scanPasskey, "passkey")
}

// PasskeysOf lists oldest first.
func (q *Queries) PasskeysOf(ctx context.Context, personID string) ([]*auth.Passkey, error) {
	rows, err := q.x.QueryContext(ctx, `SELECT `+passkeyCols+` FROM passkeys WHERE person_id = ? ORDER BY created_at, id`, personID)
	return all(rows, err, scanPasskey, "passkeys")
}

func (q *Queries) UpdatePasskeyUse(ctx context.Context, p *auth.Passkey) error {
	res, err := q.x.ExecContext(ctx, `UPDATE passkeys SET sign_count = ?, clone_warning = ?, flags = ?, last_used_at = ? WHERE id = ?`,
		int64(p.SignCount), p.CloneWarning, int64(p.Flags), nullMicros(p.LastUsedAt), p.ID)
	return changedOne(res, err, "passkey")
}

func (q *Queries) RenamePasskey(ctx context.Context, id, name string) error {
	res, err := q.x.ExecContext(ctx, `UPDATE passkeys SET name = ? WHERE id = ?`, name, id)
	return changedOne(res, err, "passkey")
}

func (q *Queries) DeletePasskey(ctx context.Context, id string) error {
	res, err := q.x.ExecContext(ctx, `DELETE FROM passkeys WHERE id = ?`, id)
	return changedOne(res, err, "passkey")
}

// TOTP.

const totpCols = `person_id, secret_enc, confirmed_at, last_step, created_at`

func scanTOTP(sc rowScanner) (*auth.TOTP, error) {
	var t auth.TOTP
	var confirmed sql.NullInt64
	var created int64
	if err := sc.Scan(&t.PersonID, &t.SecretEnc, &confirmed, &t.LastStep, &created); err != nil {
		return nil, err
	}
	t.ConfirmedAt, t.CreatedAt = timePtr(confirmed), fromMicros(created)
	return &t, nil
}

// PutTOTP replaces every column: a new enrolment starts with its own
// confirmation and step.
func (q *Queries) PutTOTP(ctx context.Context, t *auth.TOTP) error {
	_, err := q.x.ExecContext(ctx, `INSERT INTO totp (`+totpCols+`) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (person_id) DO UPDATE SET secret_enc = excluded.secret_enc, confirmed_at = excluded.confirmed_at,
			last_step = excluded.last_step, created_at = excluded.created_at`,
		t.PersonID, t.SecretEnc, nullMicros(t.ConfirmedAt), t.LastStep, micros(t.CreatedAt))
	if err != nil {
		return fmt.Errorf("sqlite: put totp: %w", err)
	}
	return nil
}

func (q *Queries) TOTPOf(ctx context.Context, personID string) (*auth.TOTP, error) {
	return one(q.queryRowHot(ctx, `SELECT `+totpCols+` FROM totp WHERE person_id = ?`, personID), scanTOTP, "authenticator app")
}

// AdvanceTOTPStep is a compare-and-set on last_step, like UseCode: the
// writer is serialised, so of two callers with the same step one finds
// last_step still smaller.
func (q *Queries) AdvanceTOTPStep(ctx context.Context, personID string, step int64) (bool, error) {
	res, err := q.x.ExecContext(ctx, `UPDATE totp SET last_step = ? WHERE person_id = ? AND last_step < ?`, step, personID, step)
	return q.casResult(ctx, res, err, `SELECT 1 FROM totp WHERE person_id = ?`, personID, "authenticator app")
}

func (q *Queries) ConfirmTOTP(ctx context.Context, personID string, at time.Time) (bool, error) {
	res, err := q.x.ExecContext(ctx, `UPDATE totp SET confirmed_at = ? WHERE person_id = ? AND confirmed_at IS NULL`, micros(at), personID)
	return q.casResult(ctx, res, err, `SELECT 1 FROM totp WHERE person_id = ?`, personID, "authenticator app")
}

func (q *Queries) DeleteTOTP(ctx context.Context, personID string) error {
	res, err := q.x.ExecContext(ctx, `DELETE FROM totp WHERE person_id = ?`, personID)
	return changedOne(res, err, "authenticator app")
}

// Recovery codes.

func (q *Queries) ReplaceRecoveryCodes(ctx context.Context, personID string, hashes []string, at time.Time) error {
	if _, err := q.x.ExecContext(ctx, `DELETE FROM recovery_codes WHERE person_id = ?`, personID); err != nil {
		return fmt.Errorf("sqlite: replace recovery codes: %w", err)
	}
	for _, h := range hashes {
		_, err := q.x.ExecContext(ctx, `INSERT INTO recovery_codes (person_id, code_hash, used_at, created_at) VALUES (?, ?, NULL, ?)`, personID, h, micros(at))
		if isUnique(err) {
			return onramp.Errorf(onramp.ECONFLICT, "Two recovery codes are the same.")
		}
		if err != nil {
			return fmt.Errorf("sqlite: replace recovery codes: %w", err)
		}
	}
	return nil
}

// UseRecoveryCode is a compare-and-set on used_at, like UseCode.
func (q *Queries) UseRecoveryCode(ctx context.Context, personID, hash string, at time.Time) (bool, error) {
	res, err := q.x.ExecContext(ctx, `UPDATE recovery_codes SET used_at = ? WHERE person_id = ? AND code_hash = ? AND used_at IS NULL`, micros(at), personID, hash)
	if err != nil {
		return false, fmt.Errorf("sqlite: use recovery code: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return true, nil
	}
	var found int
	switch err := q.x.QueryRowContext(ctx, `SELECT 1 FROM recovery_codes WHERE person_id = ? AND code_hash = ?`, personID, hash).Scan(&found); {
	case errors.Is(err, sql.ErrNoRows):
		return false, notFound("recovery code")
	case err != nil:
		return false, fmt.Errorf("sqlite: use recovery code: %w", err)
	}
	return false, nil
}

// RecoveryCodesOf lists in creation order, then by hash (a stable order
// that says nothing about the codes).
func (q *Queries) RecoveryCodesOf(ctx context.Context, personID string) ([]*auth.RecoveryCode, error) {
	rows, err := q.x.QueryContext(ctx, `SELECT person_id, code_hash, used_at, created_at FROM recovery_codes WHERE person_id = ? ORDER BY created_at, code_hash`, personID)
	return all(rows, err, func(sc rowScanner) (*auth.RecoveryCode, error) {
		var c auth.RecoveryCode
		var used sql.NullInt64
		var created int64
		if err := sc.Scan(&c.PersonID, &c.CodeHash, &used, &created); err != nil {
			return nil, err
		}
		c.UsedAt, c.CreatedAt = timePtr(used), fromMicros(created)
		return &c, nil
	}, "recovery codes")
}

// DeleteRecoveryCodes deletes none without complaint: a person who never
// had codes has none to lose.
func (q *Queries) DeleteRecoveryCodes(ctx context.Context, personID string) error {
	if _, err := q.x.ExecContext(ctx, `DELETE FROM recovery_codes WHERE person_id = ?`, personID); err != nil {
		return fmt.Errorf("sqlite: delete recovery codes: %w", err)
	}
	return nil
}

// eraseMFA is EraseAuth's share of these tables, in the caller's
// statement list (it takes the same json list of ids as ?1).
var eraseMFA = []string{
	`DELETE FROM passkeys WHERE person_id IN (SELECT value FROM json_each(?1))`,
	`DELETE FROM totp WHERE person_id IN (SELECT value FROM json_each(?1))`,
	`DELETE FROM recovery_codes WHERE person_id IN (SELECT value FROM json_each(?1))`,
}
