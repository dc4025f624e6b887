package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// This file implements auth.MFAStore (tables of migration 0004).

var _ auth.MFAStore = (*Queries)(nil)

// Passkeys.

const passkeyCols = `id, person_id, public_key, attestation_type, attestation_format, transports, flags, aaguid, sign_count, clone_warning, name, created_at, last_used_at`

func scanPasskey(row pgx.CollectableRow) (*auth.Passkey, error) {
	var p auth.Passkey
	var transports []byte
	var flags int32
	var count int64
	var created, used pgtype.Timestamptz
	if err := row.Scan(&p.ID, &p.PersonID, &p.PublicKey, &p.AttestationType, &p.AttestationFormat, &transports, &flags, &p.AAGUID, &count, &p.CloneWarning, &p.Name, &created, &used); err != nil {
		return nil, err
	}
	var err error
	if p.Transports, err = jsonList(transports); err != nil {
		return nil, fmt.Errorf("transports: %w", err)
	}
	p.Flags, p.SignCount = uint8(flags), uint32(count)
	p.CreatedAt, p.LastUsedAt = fromTS(created), ptrTS(used)
	return &p, nil
}

func (q *Queries) CreatePasskey(ctx context.Context, p *auth.Passkey) error {
	_, err := q.x.Exec(ctx, `INSERT INTO passkeys (`+passkeyCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		p.ID, p.PersonID, p.PublicKey, p.AttestationType, p.AttestationFormat, listText(p.Transports), int32(p.Flags), nullBytes(p.AAGUID),
		int64(p.SignCount), p.CloneWarning, p.Name, ts(p.CreatedAt), tsPtr(p.LastUsedAt))
	if isUnique(err) {
		return onramp.Errorf(onramp.ECONFLICT, "This passkey is registered already.")
	}
	if err != nil {
		return fmt.Errorf("postgres: create passkey: %w", err)
	}
	return nil
}

func (q *Queries) PasskeyByID(ctx context.Context, id string) (*auth.Passkey, error) {
	rows, err := q.x.Query(ctx, `SELECT `+passkeyCols+` FROM passkeys WHERE id = $1`, id)
	return one(rows, err, scanPasskey, "passkey")
}

// PasskeysOf lists oldest first.
func (q *Queries) PasskeysOf(ctx context.Context, personID string) ([]*auth.Passkey, error) {
	rows, err := q.x.Query(ctx, `SELECT `+passkeyCols+` FROM passkeys WHERE person_id = $1 ORDER BY created_at, id`, personID)
	return all(rows, err, scanPasskey, "passkeys")
}

func (q *Queries) UpdatePasskeyUse(ctx context.Context, p *auth.Passkey) error {
	tag, err := q.x.Exec(ctx, `UPDATE passkeys SET sign_count = $1, clone_warning = $2, flags = $3, last_used_at = $4 WHERE id = $5`,
		int64(p.SignCount), p.CloneWarning, int32(p.Flags), tsPtr(p.LastUsedAt), p.ID)
	return changedOne(tag, err, "passkey")
}

func (q *Queries) RenamePasskey(ctx context.Context, id, name string) error {
	tag, err := q.x.Exec(ctx, `UPDATE passkeys SET name = $1 WHERE id = $2`, name, id)
	return changedOne(tag, err, "passkey")
}

func (q *Queries) DeletePasskey(ctx context.Context, id string) error {
	tag, err := q.x.Exec(ctx, `DELETE FROM passkeys WHERE id = $1`, id)
	return changedOne(tag, err, "passkey")
}

// TOTP.

const totpCols = `person_id, secret_enc, confirmed_at, last_step, created_at`

func scanTOTP(row pgx.CollectableRow) (*auth.TOTP, error) {
	var t auth.TOTP
	var confirmed, created pgtype.Timestamptz
	if err := row.Scan(&t.PersonID, &t.SecretEnc, &confirmed, &t.LastStep, &created); err != nil {
		return nil, err
	}
	t.ConfirmedAt, t.CreatedAt = ptrTS(confirmed), fromTS(created)
	return &t, nil
}

// PutTOTP replaces every column: a new enrolment starts with its own
// confirmation and step.
func (q *Queries) PutTOTP(ctx context.Context, t *auth.TOTP) error {
	_, err := q.x.Exec(ctx, `INSERT INTO totp (`+totpCols+`) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (person_id) DO UPDATE SET secret_enc = excluded.secret_enc, confirmed_at = excluded.confirmed_at,
			last_step = excluded.last_step, created_at = excluded.created_at`,
		t.PersonID, t.SecretEnc, tsPtr(t.ConfirmedAt), t.LastStep, ts(t.CreatedAt))
	if err != nil {
		return fmt.Errorf("postgres: put totp: %w", err)
	}
	return nil
}

func (q *Queries) TOTPOf(ctx context.Context, personID string) (*auth.TOTP, error) {
	rows, err := q.x.Query(ctx, `SELECT `+totpCols+` FROM totp WHERE person_id = $1`, personID)
	return one(rows, err, scanTOTP, "authenticator app")
}

// AdvanceTOTPStep is a compare-and-set on last_step: under REPEATABLE
// READ the second of two overlapping updates fails to serialise and, run
// again, finds last_step no longer smaller.
func (q *Queries) AdvanceTOTPStep(ctx context.Context, personID string, step int64) (bool, error) {
	tag, err := q.x.Exec(ctx, `UPDATE totp SET last_step = $1 WHERE person_id = $2 AND last_step < $1`, step, personID)
	return q.casResult(ctx, tag, err, `SELECT 1 FROM totp WHERE person_id = $1`, personID, "authenticator app")
}

func (q *Queries) ConfirmTOTP(ctx context.Context, personID string, at time.Time) (bool, error) {
	tag, err := q.x.Exec(ctx, `UPDATE totp SET confirmed_at = $1 WHERE person_id = $2 AND confirmed_at IS NULL`, ts(at), personID)
	return q.casResult(ctx, tag, err, `SELECT 1 FROM totp WHERE person_id = $1`, personID, "authenticator app")
}

func (q *Queries) DeleteTOTP(ctx context.Context, personID string) error {
	tag, err := q.x.Exec(ctx, `DELETE FROM totp WHERE person_id = $1`, personID)
	return changedOne(tag, err, "authenticator app")
}

// Recovery codes.

// ReplaceRecoveryCodes runs its delete and inserts in one transaction even
// outside InTx, so no one sees a person with half a set.
func (q *Queries) ReplaceRecoveryCodes(ctx context.Context, personID string, hashes []string, at time.Time) error {
	return q.inTx(ctx, func(x querier) error {
		if _, err := x.Exec(ctx, `DELETE FROM recovery_codes WHERE person_id = $1`, personID); err != nil {
			return fmt.Errorf("postgres: replace recovery codes: %w", err)
		}
		if len(hashes) == 0 {
			return nil
		}
		_, err := x.Exec(ctx, `INSERT INTO recovery_codes (person_id, code_hash, used_at, created_at)
			SELECT $1, h, NULL, $3 FROM unnest($2::text[]) AS h`, personID, hashes, ts(at))
		if isUnique(err) {
			return onramp.Errorf(onramp.ECONFLICT, "Two recovery codes are the same.")
		}
		if err != nil {
			return fmt.Errorf("postgres: replace recovery codes: %w", err)
		}
		return nil
	})
}

// UseRecoveryCode is a compare-and-set on used_at, like UseCode.
func (q *Queries) UseRecoveryCode(ctx context.Context, personID, hash string, at time.Time) (bool, error) {
	tag, err := q.x.Exec(ctx, `UPDATE recovery_codes SET used_at = $1 WHERE person_id = $2 AND code_hash = $3 AND used_at IS NULL`, ts(at), personID, hash)
	if err != nil {
		return false, fmt.Errorf("postgres: use recovery code: %w", err)
	}
	if tag.RowsAffected() > 0 {
		return true, nil
	}
	var found int
	switch err := q.x.QueryRow(ctx, `SELECT 1 FROM recovery_codes WHERE person_id = $1 AND code_hash = $2`, personID, hash).Scan(&found); {
	case errors.Is(err, pgx.ErrNoRows):
		return false, notFound("recovery code")
	case err != nil:
		return false, fmt.Errorf("postgres: use recovery code: %w", err)
	}
	return false, nil
}

// RecoveryCodesOf lists in creation order, then by hash (a stable order
// that says nothing about the codes).
func (q *Queries) RecoveryCodesOf(ctx context.Context, personID string) ([]*auth.RecoveryCode, error) {
	rows, err := q.x.Query(ctx, `SELECT person_id, code_hash, used_at, created_at FROM recovery_codes WHERE person_id = $1 ORDER BY created_at, code_hash`, personID)
	return all(rows, err, func(row pgx.CollectableRow) (*auth.RecoveryCode, error) {
		var c auth.RecoveryCode
		var used, created pgtype.Timestamptz
		if err := row.Scan(&c.PersonID, &c.CodeHash, &used, &created); err != nil {
			return nil, err
		}
		c.UsedAt, c.CreatedAt = ptrTS(used), fromTS(created)
		return &c, nil
	}, "recovery codes")
}

// DeleteRecoveryCodes deletes none without complaint: a person who never
// had codes has none to lose.
func (q *Queries) DeleteRecoveryCodes(ctx context.Context, personID string) error {
	if _, err := q.x.Exec(ctx, `DELETE FROM recovery_codes WHERE person_id = $1`, personID); err != nil {
		return fmt.Errorf("postgres: delete recovery codes: %w", err)
	}
	return nil
}

// eraseMFA is EraseAuth's share of these tables, in the caller's
// statement list (it takes the same array of ids as $1).
var eraseMFA = []string{
	`DELETE FROM passkeys WHERE person_id = ANY($1)`,
	`DELETE FROM totp WHERE person_id = ANY($1)`,
	`DELETE FROM recovery_codes WHERE person_id = ANY($1)`,
}
