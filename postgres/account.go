package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/internal/prefix"
)

// This file implements auth.AccountStore (tables of migration 0002).

// one collects the single row of a lookup, answering ENOTFOUND for none.
func one[T any](rows pgx.Rows, err error, scan pgx.RowToFunc[T], what string) (T, error) {
	var zero T
	if err != nil {
		return zero, fmt.Errorf("postgres: %s: %w", what, err)
	}
	v, err := pgx.CollectExactlyOneRow(rows, scan)
	if errors.Is(err, pgx.ErrNoRows) {
		return zero, notFound(what)
	}
	if err != nil {
		return zero, fmt.Errorf("postgres: %s: %w", what, err)
	}
	return v, nil
}

// all collects every row, returning an empty (not nil) list for none.
func all[T any](rows pgx.Rows, err error, scan pgx.RowToFunc[T], what string) ([]T, error) {
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, err)
	}
	out, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, err)
	}
	return nonNilSlice(out), nil
}

// changedOne checks that a statement addressing one row by its key found it.
func changedOne(tag pgconn.CommandTag, err error, what string) error {
	if err != nil {
		return fmt.Errorf("postgres: %s: %w", what, err)
	}
	if tag.RowsAffected() == 0 {
		return notFound(what)
	}
	return nil
}

// jsonList reads a jsonb array; a list is never nil so that JSON answers
// say [].
func jsonList(b []byte) ([]string, error) {
	out := []string{}
	if len(b) == 0 {
		return out, nil
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return nonNil(out), nil
}

func listText(ss []string) string {
	b, _ := json.Marshal(nonNil(ss))
	return string(b)
}

func nullBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// Accounts.

const accountCols = `person_id, subject, webauthn_handle, status, primary_email, created_at, updated_at`

func scanAccount(row pgx.CollectableRow) (*auth.Account, error) {
	var a auth.Account
	var c, u pgtype.Timestamptz
	if err := row.Scan(&a.PersonID, &a.Subject, &a.WebAuthnHandle, &a.Status, &a.PrimaryEmail, &c, &u); err != nil {
		return nil, err
	}
	a.CreatedAt, a.UpdatedAt = fromTS(c), fromTS(u)
	return &a, nil
}

func (q *Queries) CreateAccount(ctx context.Context, a *auth.Account) error {
	_, err := q.x.Exec(ctx, `INSERT INTO accounts (`+accountCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		a.PersonID, a.Subject, nullBytes(a.WebAuthnHandle), a.Status, a.PrimaryEmail, ts(a.CreatedAt), ts(a.UpdatedAt))
	if isUnique(err) {
		return onramp.Errorf(onramp.ECONFLICT, "This person, subject or passkey handle has an account already.")
	}
	if err != nil {
		return fmt.Errorf("postgres: create account: %w", err)
	}
	return nil
}

// AccountOf answers the oldest account, so that a tree that somehow holds
// two always answers the same one.
func (q *Queries) AccountOf(ctx context.Context, personIDs []string) (*auth.Account, error) {
	rows, err := q.x.Query(ctx, `SELECT `+accountCols+` FROM accounts WHERE person_id = ANY($1) ORDER BY created_at, person_id LIMIT 1`, nonNil(personIDs))
	return one(rows, err, scanAccount, "account")
}

func (q *Queries) AccountBySubject(ctx context.Context, subject string) (*auth.Account, error) {
	rows, err := q.x.Query(ctx, `SELECT `+accountCols+` FROM accounts WHERE subject = $1`, subject)
	return one(rows, err, scanAccount, "account")
}

func (q *Queries) AccountByWebAuthnHandle(ctx context.Context, handle []byte) (*auth.Account, error) {
	if len(handle) == 0 {
		return nil, notFound("account")
	}
	rows, err := q.x.Query(ctx, `SELECT `+accountCols+` FROM accounts WHERE webauthn_handle = $1`, handle)
	return one(rows, err, scanAccount, "account")
}

// UpdateAccount changes everything but the person and the subject, which
// never change.
func (q *Queries) UpdateAccount(ctx context.Context, a *auth.Account) error {
	tag, err := q.x.Exec(ctx, `UPDATE accounts SET webauthn_handle = $1, status = $2, primary_email = $3, updated_at = $4 WHERE person_id = $5`,
		nullBytes(a.WebAuthnHandle), a.Status, a.PrimaryEmail, ts(a.UpdatedAt), a.PersonID)
	if isUnique(err) {
		return onramp.Errorf(onramp.ECONFLICT, "This passkey handle belongs to another account.")
	}
	return changedOne(tag, err, "account")
}

// Passwords.

func (q *Queries) SetPassword(ctx context.Context, personID, phc string, at time.Time) error {
	_, err := q.x.Exec(ctx, `INSERT INTO passwords (person_id, phc, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (person_id) DO UPDATE SET phc = excluded.phc, updated_at = excluded.updated_at`, personID, phc, ts(at))
	if err != nil {
		return fmt.Errorf("postgres: set password: %w", err)
	}
	return nil
}

func (q *Queries) PasswordOf(ctx context.Context, personID string) (string, error) {
	rows, err := q.x.Query(ctx, `SELECT phc FROM passwords WHERE person_id = $1`, personID)
	return one(rows, err, pgx.RowTo[string], "password")
}

func (q *Queries) DeletePassword(ctx context.Context, personID string) error {
	tag, err := q.x.Exec(ctx, `DELETE FROM passwords WHERE person_id = $1`, personID)
	return changedOne(tag, err, "password")
}

// Sessions.

const sessionCols = `id, secret_hash, person_id, aal, amr, auth_time, created_at, last_seen_at, idle_expires_at, expires_at, ip, user_agent, revoked_at, revoked_reason`

func scanSession(row pgx.CollectableRow) (*auth.Session, error) {
	var s auth.Session
	var amr []byte
	var authTime, c, seen, idle, exp, revoked pgtype.Timestamptz
	if err := row.Scan(&s.ID, &s.SecretHash, &s.PersonID, &s.AAL, &amr, &authTime, &c, &seen, &idle, &exp, &s.IP, &s.UserAgent, &revoked, &s.RevokedReason); err != nil {
		return nil, err
	}
	var err error
	if s.AMR, err = jsonList(amr); err != nil {
		return nil, fmt.Errorf("amr: %w", err)
	}
	s.AuthTime, s.CreatedAt, s.LastSeenAt, s.IdleExpiresAt, s.ExpiresAt = fromTS(authTime), fromTS(c), fromTS(seen), fromTS(idle), fromTS(exp)
	s.RevokedAt = ptrTS(revoked)
	return &s, nil
}

func (q *Queries) CreateSession(ctx context.Context, s *auth.Session) error {
	_, err := q.x.Exec(ctx, `INSERT INTO sessions (`+sessionCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		s.ID, s.SecretHash, s.PersonID, s.AAL, listText(s.AMR), ts(s.AuthTime), ts(s.CreatedAt), ts(s.LastSeenAt),
		ts(s.IdleExpiresAt), ts(s.ExpiresAt), s.IP, s.UserAgent, tsPtr(s.RevokedAt), s.RevokedReason)
	if isUnique(err) {
		return onramp.Errorf(onramp.ECONFLICT, "A session with this id or secret exists already.")
	}
	if err != nil {
		return fmt.Errorf("postgres: create session: %w", err)
	}
	return nil
}

func (q *Queries) SessionByID(ctx context.Context, id string) (*auth.Session, error) {
	rows, err := q.x.Query(ctx, `SELECT `+sessionCols+` FROM sessions WHERE id = $1`, id)
	return one(rows, err, scanSession, "session")
}

func (q *Queries) SessionBySecretHash(ctx context.Context, hash string) (*auth.Session, error) {
	rows, err := q.x.Query(ctx, `SELECT `+sessionCols+` FROM sessions WHERE secret_hash = $1`, hash)
	return one(rows, err, scanSession, "session")
}

// SessionsOf lists newest first.
func (q *Queries) SessionsOf(ctx context.Context, personID string, includeRevoked bool) ([]*auth.Session, error) {
	live := ` AND revoked_at IS NULL`
	if includeRevoked {
		live = ``
	}
	rows, err := q.x.Query(ctx, `SELECT `+sessionCols+` FROM sessions WHERE person_id = $1`+live+` ORDER BY created_at DESC, id DESC`, personID)
	return all(rows, err, scanSession, "sessions")
}

func (q *Queries) TouchSession(ctx context.Context, id string, lastSeen, idleExpires time.Time) error {
	tag, err := q.x.Exec(ctx, `UPDATE sessions SET last_seen_at = $1, idle_expires_at = $2 WHERE id = $3`, ts(lastSeen), ts(idleExpires), id)
	return changedOne(tag, err, "session")
}

// RevokeSession is a compare-and-set on revoked_at. Of two transactions
// racing, the second waits for the first's row lock; under REPEATABLE READ
// it then fails with a serialization error, and its retry sees the row
// revoked. Outside a transaction (READ COMMITTED) it re-reads the row and
// changes nothing.
func (q *Queries) RevokeSession(ctx context.Context, id string, at time.Time, reason string) (bool, error) {
	tag, err := q.x.Exec(ctx, `UPDATE sessions SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL`, ts(at), reason, id)
	return q.casResult(ctx, tag, err, `SELECT 1 FROM sessions WHERE id = $1`, id, "session")
}

// casResult turns a compare-and-set UPDATE's outcome into (won, error):
// no row changed is a lost race when the row exists, ENOTFOUND when not.
func (q *Queries) casResult(ctx context.Context, tag pgconn.CommandTag, err error, exists, id, what string) (bool, error) {
	if err != nil {
		return false, fmt.Errorf("postgres: %s: %w", what, err)
	}
	if tag.RowsAffected() > 0 {
		return true, nil
	}
	var found int
	switch err := q.x.QueryRow(ctx, exists, id).Scan(&found); {
	case errors.Is(err, pgx.ErrNoRows):
		return false, notFound(what)
	case err != nil:
		return false, fmt.Errorf("postgres: %s: %w", what, err)
	}
	return false, nil
}

func (q *Queries) RevokeSessionsOf(ctx context.Context, personID, keep string, at time.Time, reason string) ([]string, error) {
	rows, err := q.x.Query(ctx, `UPDATE sessions SET revoked_at = $1, revoked_reason = $2 WHERE person_id = $3 AND revoked_at IS NULL AND id <> $4 RETURNING id`,
		ts(at), reason, personID, keep)
	ids, err := all(rows, err, pgx.RowTo[string], "revoke sessions")
	slices.Sort(ids)
	return ids, err
}

func (q *Queries) AddSessionClient(ctx context.Context, sessionID, clientID string, at time.Time) error {
	_, err := q.x.Exec(ctx, `INSERT INTO session_clients (session_id, client_id, first_at, last_at) VALUES ($1, $2, $3, $3)
		ON CONFLICT (session_id, client_id) DO UPDATE SET last_at = excluded.last_at`, sessionID, clientID, ts(at))
	if err != nil {
		return fmt.Errorf("postgres: add session client: %w", err)
	}
	return nil
}

// SessionClients lists in the order the session first signed into them.
func (q *Queries) SessionClients(ctx context.Context, sessionID string) ([]string, error) {
	rows, err := q.x.Query(ctx, `SELECT client_id FROM session_clients WHERE session_id = $1 ORDER BY first_at, client_id`, sessionID)
	return all(rows, err, pgx.RowTo[string], "session clients")
}

// Flows.

const flowCols = `id, secret_hash, kind, auth_request_id, client_id, email, person_id, anonymous_id, step, amr, pending, ip, created_at, expires_at, lang`

func scanFlow(row pgx.CollectableRow) (*auth.Flow, error) {
	var f auth.Flow
	var amr, pending []byte
	var c, exp pgtype.Timestamptz
	if err := row.Scan(&f.ID, &f.SecretHash, &f.Kind, &f.AuthRequestID, &f.ClientID, &f.Email, &f.PersonID, &f.AnonymousID, &f.Step, &amr, &pending, &f.IP, &c, &exp, &f.Lang); err != nil {
		return nil, err
	}
	var err error
	if f.AMR, err = jsonList(amr); err != nil {
		return nil, fmt.Errorf("amr: %w", err)
	}
	f.Pending = rawJSON(pending)
	f.CreatedAt, f.ExpiresAt = fromTS(c), fromTS(exp)
	return &f, nil
}

func (q *Queries) CreateFlow(ctx context.Context, f *auth.Flow) error {
	_, err := q.x.Exec(ctx, `INSERT INTO auth_flows (`+flowCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		f.ID, f.SecretHash, f.Kind, f.AuthRequestID, f.ClientID, f.Email, f.PersonID, f.AnonymousID, f.Step, listText(f.AMR), jsonArg(f.Pending), f.IP,
		ts(f.CreatedAt), ts(f.ExpiresAt), f.Lang)
	if isUnique(err) {
		return onramp.Errorf(onramp.ECONFLICT, "A flow with this id exists already.")
	}
	if err != nil {
		return fmt.Errorf("postgres: create flow: %w", err)
	}
	return nil
}

func (q *Queries) FlowByID(ctx context.Context, id string) (*auth.Flow, error) {
	rows, err := q.x.Query(ctx, `SELECT `+flowCols+` FROM auth_flows WHERE id = $1`, id)
	return one(rows, err, scanFlow, "flow")
}

// UpdateFlow changes everything but the id and the creation time.
func (q *Queries) UpdateFlow(ctx context.Context, f *auth.Flow) error {
	tag, err := q.x.Exec(ctx, `UPDATE auth_flows SET secret_hash = $1, kind = $2, auth_request_id = $3, client_id = $4, email = $5, person_id = $6,
		anonymous_id = $7, step = $8, amr = $9, pending = $10, ip = $11, expires_at = $12, lang = $13 WHERE id = $14`,
		f.SecretHash, f.Kind, f.AuthRequestID, f.ClientID, f.Email, f.PersonID, f.AnonymousID, f.Step, listText(f.AMR), jsonArg(f.Pending), f.IP,
		ts(f.ExpiresAt), f.Lang, f.ID)
	return changedOne(tag, err, "flow")
}

func (q *Queries) DeleteFlow(ctx context.Context, id string) error {
	tag, err := q.x.Exec(ctx, `DELETE FROM auth_flows WHERE id = $1`, id)
	return changedOne(tag, err, "flow")
}

// One-time codes.

const codeCols = `id, flow_id, purpose, email, person_id, code_hash, COALESCE(link_hash, ''), attempts, max_attempts, expires_at, used_at, created_at`

func scanCode(row pgx.CollectableRow) (*auth.OneTimeCode, error) {
	var c auth.OneTimeCode
	var exp, used, created pgtype.Timestamptz
	if err := row.Scan(&c.ID, &c.FlowID, &c.Purpose, &c.Email, &c.PersonID, &c.CodeHash, &c.LinkHash, &c.Attempts, &c.MaxAttempts, &exp, &used, &created); err != nil {
		return nil, err
	}
	c.ExpiresAt, c.UsedAt, c.CreatedAt = fromTS(exp), ptrTS(used), fromTS(created)
	return &c, nil
}

func (q *Queries) CreateCode(ctx context.Context, c *auth.OneTimeCode) error {
	_, err := q.x.Exec(ctx, `INSERT INTO one_time_codes (id, flow_id, purpose, email, person_id, code_hash, link_hash, attempts, max_attempts, expires_at, used_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		c.ID, c.FlowID, c.Purpose, c.Email, c.PersonID, c.CodeHash, nullText(c.LinkHash), c.Attempts, c.MaxAttempts, ts(c.ExpiresAt), tsPtr(c.UsedAt), ts(c.CreatedAt))
	if isUnique(err) {
		return onramp.Errorf(onramp.ECONFLICT, "A code with this id or link exists already.")
	}
	if err != nil {
		return fmt.Errorf("postgres: create code: %w", err)
	}
	return nil
}

func (q *Queries) CodeByID(ctx context.Context, id string) (*auth.OneTimeCode, error) {
	rows, err := q.x.Query(ctx, `SELECT `+codeCols+` FROM one_time_codes WHERE id = $1`, id)
	return one(rows, err, scanCode, "code")
}

func (q *Queries) LatestCode(ctx context.Context, flowID, purpose string) (*auth.OneTimeCode, error) {
	rows, err := q.x.Query(ctx, `SELECT `+codeCols+` FROM one_time_codes WHERE flow_id = $1 AND purpose = $2 ORDER BY created_at DESC, id DESC LIMIT 1`, flowID, purpose)
	return one(rows, err, scanCode, "code")
}

func (q *Queries) CodeByLinkHash(ctx context.Context, hash string) (*auth.OneTimeCode, error) {
	if hash == "" {
		return nil, notFound("code")
	}
	rows, err := q.x.Query(ctx, `SELECT `+codeCols+` FROM one_time_codes WHERE link_hash = $1`, hash)
	return one(rows, err, scanCode, "code")
}

func (q *Queries) IncrementCodeAttempts(ctx context.Context, id string) (int, error) {
	rows, err := q.x.Query(ctx, `UPDATE one_time_codes SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts`, id)
	n, err := one(rows, err, pgx.RowTo[int32], "code")
	return int(n), err
}

// UseCode is a compare-and-set on used_at, like RevokeSession.
func (q *Queries) UseCode(ctx context.Context, id string, at time.Time) (bool, error) {
	tag, err := q.x.Exec(ctx, `UPDATE one_time_codes SET used_at = $1 WHERE id = $2 AND used_at IS NULL`, ts(at), id)
	return q.casResult(ctx, tag, err, `SELECT 1 FROM one_time_codes WHERE id = $1`, id, "code")
}

func (q *Queries) InvalidateCodes(ctx context.Context, purpose, email string, at time.Time) error {
	if _, err := q.x.Exec(ctx, `UPDATE one_time_codes SET used_at = $1 WHERE email = $2 AND purpose = $3 AND used_at IS NULL`, ts(at), email, purpose); err != nil {
		return fmt.Errorf("postgres: invalidate codes: %w", err)
	}
	return nil
}

// Audit log.

const auditCols = `seq, id, at, actor_type, actor_id, action, outcome, person_id, property_id, client_id, session_id, ip, user_agent, detail`

func scanAudit(row pgx.CollectableRow) (*auth.AuditEntry, error) {
	var e auth.AuditEntry
	var at pgtype.Timestamptz
	var detail []byte
	if err := row.Scan(&e.Seq, &e.ID, &at, &e.ActorType, &e.ActorID, &e.Action, &e.Outcome, &e.PersonID, &e.PropertyID, &e.ClientID, &e.SessionID,
		&e.IP, &e.UserAgent, &detail); err != nil {
		return nil, err
	}
	e.At, e.Detail = fromTS(at), rawJSON(detail)
	return &e, nil
}

func (q *Queries) AppendAudit(ctx context.Context, e *auth.AuditEntry) error {
	err := q.x.QueryRow(ctx, `INSERT INTO audit_log (id, at, actor_type, actor_id, action, outcome, person_id, property_id, client_id, session_id, ip, user_agent, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING seq`,
		e.ID, ts(e.At), e.ActorType, e.ActorID, e.Action, e.Outcome, e.PersonID, e.PropertyID, e.ClientID, e.SessionID, e.IP, e.UserAgent, jsonArg(e.Detail)).Scan(&e.Seq)
	if isUnique(err) {
		return onramp.Errorf(onramp.ECONFLICT, "An audit entry with this id exists already.")
	}
	if err != nil {
		return fmt.Errorf("postgres: append audit: %w", err)
	}
	return nil
}

// Audit list sizes: AuditQuery.Limit's default and ceiling.
const (
	auditDefaultLimit = 100
	auditMaxLimit     = 1000
)

func (q *Queries) ListAudit(ctx context.Context, aq auth.AuditQuery) ([]*auth.AuditEntry, error) {
	where := []string{"true"}
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if aq.PersonID != "" {
		where = append(where, `person_id = `+arg(aq.PersonID))
	}
	if aq.ActorID != "" {
		where = append(where, `actor_id = `+arg(aq.ActorID))
	}
	if p, ok := strings.CutSuffix(aq.Action, "*"); ok {
		// A range, not LIKE: no metacharacters in action names to escape,
		// and it reads the (action, seq) index.
		if p != "" {
			where = append(where, `action >= `+arg(p))
		}
		if end, ok := prefix.End(p); ok {
			where = append(where, `action < `+arg(end))
		}
	} else if aq.Action != "" {
		where = append(where, `action = `+arg(aq.Action))
	}
	if aq.Outcome != "" {
		where = append(where, `outcome = `+arg(aq.Outcome))
	}
	if !aq.Since.IsZero() {
		where = append(where, `at >= `+arg(ts(aq.Since)))
	}
	if !aq.Until.IsZero() {
		where = append(where, `at < `+arg(ts(aq.Until)))
	}
	if aq.BeforeSeq > 0 {
		where = append(where, `seq < `+arg(aq.BeforeSeq))
	}
	n := auditDefaultLimit
	if aq.Limit > 0 {
		n = min(aq.Limit, auditMaxLimit)
	}
	rows, err := q.x.Query(ctx, `SELECT `+auditCols+` FROM audit_log WHERE `+strings.Join(where, ` AND `)+` ORDER BY seq DESC LIMIT `+arg(n), args...)
	return all(rows, err, scanAudit, "audit")
}

// Rate-limit counters.

const attemptsCols = `key, failures, window_start, locked_until, updated_at`

func scanAttempts(row pgx.CollectableRow) (*auth.Attempts, error) {
	var a auth.Attempts
	var start, locked, updated pgtype.Timestamptz
	if err := row.Scan(&a.Key, &a.Failures, &start, &locked, &updated); err != nil {
		return nil, err
	}
	a.WindowStart, a.LockedUntil, a.UpdatedAt = fromTS(start), fromTS(locked), fromTS(updated)
	return &a, nil
}

// AddFailure is one upsert, so that concurrent failures all count (in
// REPEATABLE READ transactions the later one fails retryably and counts on
// its retry). A new window starts at the failure that opens it and keeps
// any lock.
func (q *Queries) AddFailure(ctx context.Context, key string, windowStart, at time.Time) (*auth.Attempts, error) {
	rows, err := q.x.Query(ctx, `INSERT INTO login_attempts AS a (key, failures, window_start, updated_at) VALUES ($1, 1, $2, $2)
		ON CONFLICT (key) DO UPDATE SET
			failures = CASE WHEN a.window_start < $3 THEN 1 ELSE a.failures + 1 END,
			window_start = CASE WHEN a.window_start < $3 THEN excluded.window_start ELSE a.window_start END,
			updated_at = excluded.updated_at
		RETURNING `+attemptsCols, key, ts(at), ts(windowStart))
	return one(rows, err, scanAttempts, "attempts")
}

func (q *Queries) AttemptsOf(ctx context.Context, key string) (*auth.Attempts, error) {
	rows, err := q.x.Query(ctx, `SELECT `+attemptsCols+` FROM login_attempts WHERE key = $1`, key)
	return one(rows, err, scanAttempts, "attempts")
}

func (q *Queries) SetLockedUntil(ctx context.Context, key string, until time.Time) error {
	tag, err := q.x.Exec(ctx, `UPDATE login_attempts SET locked_until = $1 WHERE key = $2`, ts(until), key)
	return changedOne(tag, err, "attempts")
}

// ResetAttempts forgets the counter; one that does not exist is reset
// already.
func (q *Queries) ResetAttempts(ctx context.Context, key string) error {
	if _, err := q.x.Exec(ctx, `DELETE FROM login_attempts WHERE key = $1`, key); err != nil {
		return fmt.Errorf("postgres: reset attempts: %w", err)
	}
	return nil
}

// Staff.

const staffCols = `person_id, role, created_at, created_by, updated_at`

func scanStaff(row pgx.CollectableRow) (*auth.Staff, error) {
	var s auth.Staff
	var c, u pgtype.Timestamptz
	if err := row.Scan(&s.PersonID, &s.Role, &c, &s.CreatedBy, &u); err != nil {
		return nil, err
	}
	s.CreatedAt, s.UpdatedAt = fromTS(c), fromTS(u)
	return &s, nil
}

// PutStaff creates the staff row or changes its role; who made it and
// when stay those of the first put.
func (q *Queries) PutStaff(ctx context.Context, s *auth.Staff) error {
	_, err := q.x.Exec(ctx, `INSERT INTO staff (`+staffCols+`) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (person_id) DO UPDATE SET role = excluded.role, updated_at = excluded.updated_at`,
		s.PersonID, s.Role, ts(s.CreatedAt), s.CreatedBy, ts(s.UpdatedAt))
	if err != nil {
		return fmt.Errorf("postgres: put staff: %w", err)
	}
	return nil
}

func (q *Queries) StaffOf(ctx context.Context, personID string) (*auth.Staff, error) {
	rows, err := q.x.Query(ctx, `SELECT `+staffCols+` FROM staff WHERE person_id = $1`, personID)
	return one(rows, err, scanStaff, "staff member")
}

// ListStaff lists oldest first.
func (q *Queries) ListStaff(ctx context.Context) ([]*auth.Staff, error) {
	rows, err := q.x.Query(ctx, `SELECT `+staffCols+` FROM staff ORDER BY created_at, person_id`)
	return all(rows, err, scanStaff, "staff")
}

func (q *Queries) DeleteStaff(ctx context.Context, personID string) error {
	tag, err := q.x.Exec(ctx, `DELETE FROM staff WHERE person_id = $1`, personID)
	return changedOne(tag, err, "staff member")
}

// Settings and server secrets.

func (q *Queries) Setting(ctx context.Context, name string) (json.RawMessage, error) {
	rows, err := q.x.Query(ctx, `SELECT value FROM settings WHERE name = $1`, name)
	return one(rows, err, func(row pgx.CollectableRow) (json.RawMessage, error) {
		var v []byte
		err := row.Scan(&v)
		return rawJSON(v), err
	}, "setting")
}

func (q *Queries) PutSetting(ctx context.Context, name string, value json.RawMessage, by string, at time.Time) error {
	_, err := q.x.Exec(ctx, `INSERT INTO settings (name, value, updated_at, updated_by) VALUES ($1, $2, $3, $4)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		name, jsonArg(value), ts(at), by)
	if err != nil {
		return fmt.Errorf("postgres: put setting: %w", err)
	}
	return nil
}

// ServerSecret inserts if absent, then reads: whichever node inserted
// first, every node reads the same value. In a REPEATABLE READ transaction
// that started before another node's insert committed, the insert fails
// retryably rather than read a row its snapshot cannot see.
func (q *Queries) ServerSecret(ctx context.Context, name string, value []byte, at time.Time) ([]byte, error) {
	if _, err := q.x.Exec(ctx, `INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`,
		name, value, ts(at)); err != nil {
		return nil, fmt.Errorf("postgres: server secret: %w", err)
	}
	rows, err := q.x.Query(ctx, `SELECT value FROM server_secrets WHERE name = $1`, name)
	return one(rows, err, pgx.RowTo[[]byte], "server secret")
}

// Outbox.

func scanOutbox(row pgx.CollectableRow) (*auth.OutboxJob, error) {
	var j auth.OutboxJob
	var payload []byte
	var run, done pgtype.Timestamptz
	if err := row.Scan(&j.ID, &j.Kind, &payload, &run, &j.Attempts, &j.LastError, &done); err != nil {
		return nil, err
	}
	j.Payload, j.RunAt, j.DoneAt = rawJSON(payload), fromTS(run), ptrTS(done)
	return &j, nil
}

func (q *Queries) EnqueueOutbox(ctx context.Context, j *auth.OutboxJob) error {
	err := q.x.QueryRow(ctx, `INSERT INTO auth_outbox (kind, payload, run_at, attempts, last_error, done_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		j.Kind, jsonArg(j.Payload), ts(j.RunAt), j.Attempts, j.LastError, tsPtr(j.DoneAt)).Scan(&j.ID)
	if err != nil {
		return fmt.Errorf("postgres: enqueue outbox: %w", err)
	}
	return nil
}

// ClaimOutbox locks due jobs with SKIP LOCKED, so that workers of several
// nodes claiming at once take different jobs instead of queueing on the
// same rows, and moves them past the lease in the same statement. The
// claim counts as an attempt, so that a job whose worker dies before
// FailOutbox still counts towards giving up. Jobs come in id order.
func (q *Queries) ClaimOutbox(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*auth.OutboxJob, error) {
	if limit <= 0 {
		return []*auth.OutboxJob{}, nil
	}
	rows, err := q.x.Query(ctx, `UPDATE auth_outbox o SET run_at = $1, attempts = o.attempts + 1
		FROM (SELECT id FROM auth_outbox WHERE done_at IS NULL AND run_at <= $2 ORDER BY run_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) due
		WHERE o.id = due.id
		RETURNING o.id, o.kind, o.payload, o.run_at, o.attempts, o.last_error, o.done_at`, ts(now.Add(lease)), ts(now), limit)
	jobs, err := all(rows, err, scanOutbox, "claim outbox")
	slices.SortFunc(jobs, func(a, b *auth.OutboxJob) int { return cmp.Compare(a.ID, b.ID) })
	return jobs, err
}

func (q *Queries) CompleteOutbox(ctx context.Context, id int64, at time.Time) error {
	tag, err := q.x.Exec(ctx, `UPDATE auth_outbox SET done_at = $1 WHERE id = $2`, ts(at), id)
	return changedOne(tag, err, "outbox job")
}

func (q *Queries) FailOutbox(ctx context.Context, id int64, errText string, next time.Time) error {
	tag, err := q.x.Exec(ctx, `UPDATE auth_outbox SET last_error = $1, run_at = $2 WHERE id = $3`, errText, ts(next), id)
	return changedOne(tag, err, "outbox job")
}

// Pruning and erasure.

// PruneAuth also forgets rate-limit counters untouched since cutoff whose
// lock has passed: otherwise every address that ever failed once keeps a
// row. Session clients go with their sessions.
func (q *Queries) PruneAuth(ctx context.Context, now, cutoff time.Time) error {
	return q.inTx(ctx, func(x querier) error {
		for _, st := range []struct {
			sql  string
			args []any
		}{
			{`DELETE FROM auth_flows WHERE expires_at < $1`, []any{ts(now)}},
			{`DELETE FROM one_time_codes WHERE expires_at < $1`, []any{ts(now)}},
			{`DELETE FROM auth_outbox WHERE done_at < $1`, []any{ts(cutoff)}},
			{`WITH gone AS (
				DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at < $1 UNION SELECT id FROM sessions WHERE idle_expires_at < $1)
				RETURNING id)
			DELETE FROM session_clients WHERE session_id IN (SELECT id FROM gone)`, []any{ts(cutoff)}},
			{`DELETE FROM login_attempts WHERE updated_at < $1 AND (locked_until IS NULL OR locked_until < $2)`, []any{ts(cutoff), ts(now)}},
			// An authenticator-app enrolment nobody confirmed is abandoned.
			{`DELETE FROM totp WHERE confirmed_at IS NULL AND created_at < $1`, []any{ts(cutoff)}},
		} {
			if _, err := x.Exec(ctx, st.sql, st.args...); err != nil {
				return fmt.Errorf("postgres: prune auth: %w", err)
			}
		}
		return nil
	})
}

// EraseAuth also removes flows and codes sent to an erased account's
// primary email but not yet tied to its person (a sign-in started by
// email). Audit entries where the person is the subject or the actor are
// kept, without what they say about where the person was.
func (q *Queries) EraseAuth(ctx context.Context, personIDs []string) error {
	if len(personIDs) == 0 {
		return nil
	}
	const emails = `(SELECT primary_email FROM accounts WHERE person_id = ANY($1) AND primary_email <> '')`
	return q.inTx(ctx, func(x querier) error {
		stmts := []string{
			`UPDATE audit_log SET ip = '', user_agent = '', detail = NULL WHERE person_id = ANY($1)`,
			`UPDATE audit_log SET ip = '', user_agent = '', detail = NULL WHERE actor_id = ANY($1)`,
			`DELETE FROM one_time_codes WHERE person_id = ANY($1) OR email IN ` + emails,
			`DELETE FROM auth_flows WHERE person_id = ANY($1) OR email IN ` + emails,
			`DELETE FROM session_clients WHERE session_id IN (SELECT id FROM sessions WHERE person_id = ANY($1))`,
			`DELETE FROM sessions WHERE person_id = ANY($1)`,
			`DELETE FROM passwords WHERE person_id = ANY($1)`,
			`DELETE FROM upstream_links WHERE person_id = ANY($1)`,
			`DELETE FROM staff WHERE person_id = ANY($1)`,
		}
		stmts = append(stmts, eraseMFA...)
		// Last: the statements above find the emails through it.
		stmts = append(stmts, `DELETE FROM accounts WHERE person_id = ANY($1)`)
		for _, st := range stmts {
			if _, err := x.Exec(ctx, st, personIDs); err != nil {
				return fmt.Errorf("postgres: erase auth: %w", err)
			}
		}
		return nil
	})
}
