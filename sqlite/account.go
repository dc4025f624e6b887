package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/internal/prefix"
)

// This file implements auth.AccountStore (tables of migration 0002).

type rowScanner interface{ Scan(...any) error }

// one scans the single row of a lookup, answering ENOTFOUND for none.
func one[T any](row *sql.Row, scan func(rowScanner) (T, error), what string) (T, error) {
	v, err := scan(row)
	if errors.Is(err, sql.ErrNoRows) {
		var zero T
		return zero, notFound(what)
	}
	if err != nil {
		var zero T
		return zero, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return v, nil
}

// all scans every row, returning an empty (not nil) list for none: JSON
// answers then say [].
func all[T any](rows *sql.Rows, err error, scan func(rowScanner) (T, error), what string) ([]T, error) {
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return out, nil
}

// changedOne checks that a statement addressing one row by its key found it.
func changedOne(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound(what)
	}
	return nil
}

// jsonList reads a JSON array column; a list is never nil so that JSON
// answers say [].
func jsonList(text string) ([]string, error) {
	out := []string{}
	if text == "" {
		return out, nil
	}
	if err := json.Unmarshal([]byte(text), &out); err != nil {
		return nil, err
	}
	return nonNil(out), nil
}

func listText(ss []string) string {
	b, _ := json.Marshal(nonNil(ss))
	return string(b)
}

func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func rawJSON(s sql.NullString) json.RawMessage {
	if !s.Valid {
		return nil
	}
	return json.RawMessage(s.String)
}

// idsJSON passes a list of ids as one parameter, read back with json_each:
// one statement text serves every list length.
func idsJSON(ids []string) string { return listText(ids) }

// Accounts.

const accountCols = `person_id, subject, webauthn_handle, status, primary_email, created_at, updated_at`

func scanAccount(sc rowScanner) (*auth.Account, error) {
	var a auth.Account
	var c, u int64
	if err := sc.Scan(&a.PersonID, &a.Subject, &a.WebAuthnHandle, &a.Status, &a.PrimaryEmail, &c, &u); err != nil {
		return nil, err
	}
	a.CreatedAt, a.UpdatedAt = fromMicros(c), fromMicros(u)
	return &a, nil
}

func (q *Queries) CreateAccount(ctx context.Context, a *auth.Account) error {
	_, err := q.x.ExecContext(ctx, `INSERT INTO accounts (`+accountCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		a.PersonID, a.Subject, nullBytes(a.WebAuthnHandle), a.Status, a.PrimaryEmail, micros(a.CreatedAt), micros(a.UpdatedAt))
	if isUnique(err) {
		return onramp.Errorf(onramp.ECONFLICT, "This person, subject or passkey handle has an account already.")
	}
	if err != nil {
		return fmt.Errorf("sqlite: create account: %w", err)
	}
	return nil
}

func (q *Queries) AccountOf(ctx context.Context, personIDs []string) (*auth.Account, error) {
	if len(personIDs) == 1 {
		return one(q.queryRowHot(ctx, `SELECT `+accountCols+` FROM accounts WHERE person_id = ?`, personIDs[0]), scanAccount, "account")
	}
	// Oldest first, so that a tree that somehow holds two always answers
	// the same one.
	return one(q.queryRowHot(ctx, `SELECT `+accountCols+` FROM accounts WHERE person_id IN (SELECT value FROM json_each(?))
		ORDER BY created_at, person_id LIMIT 1`, idsJSON(personIDs)), scanAccount, "account")
}

func (q *Queries) AccountBySubject(ctx context.Context, subject string) (*auth.Account, error) {
	return one(q.queryRowHot(ctx, `SELECT `+accountCols+` FROM accounts WHERE subject = ?`, subject), scanAccount, "account")
}

func (q *Queries) AccountByWebAuthnHandle(ctx context.Context, handle []byte) (*auth.Account, error) {
	if len(handle) == 0 {
		return nil, notFound("account")
	}
	return one(q.x.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE webauthn_handle = ?`, handle), scanAccount, "account")
}

// UpdateAccount changes everything but the person and the subject, which
// never change.
func (q *Queries) UpdateAccount(ctx context.Context, a *auth.Account) error {
	res, err := q.x.ExecContext(ctx, `UPDATE accounts SET webauthn_handle = ?, status = ?, primary_email = ?, updated_at = ? WHERE person_id = ?`,
		nullBytes(a.WebAuthnHandle), a.Status, a.PrimaryEmail, micros(a.UpdatedAt), a.PersonID)
	if isUnique(err) {
		return onramp.Errorf(onramp.ECONFLICT, "This passkey handle belongs to another account.")
	}
	return changedOne(res, err, "account")
}

// Passwords.

func (q *Queries) SetPassword(ctx context.Context, personID, phc string, at time.Time) error {
	_, err := q.x.ExecContext(ctx, `INSERT INTO passwords (person_id, phc, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (person_id) DO UPDATE SET phc = excluded.phc, updated_at = excluded.updated_at`, personID, phc, micros(at))
	if err != nil {
		return fmt.Errorf("sqlite: set password: %w", err)
	}
	return nil
}

func (q *Queries) PasswordOf(ctx context.Context, personID string) (string, error) {
	return one(q.queryRowHot(ctx, `SELECT phc FROM passwords WHERE person_id = ?`, personID), func(sc rowScanner) (string, error) {
		var phc string
		err := sc.Scan(&phc)
		return phc, err
	}, "password")
}

func (q *Queries) DeletePassword(ctx context.Context, personID string) error {
	res, err := q.x.ExecContext(ctx, `DELETE FROM passwords WHERE person_id = ?`, personID)
	return changedOne(res, err, "password")
}

// Sessions.

const sessionCols = `id, secret_hash, person_id, aal, amr, auth_time, created_at, last_seen_at, idle_expires_at, expires_at, ip, user_agent, revoked_at, revoked_reason`

func scanSession(sc rowScanner) (*auth.Session, error) {
	var s auth.Session
	var amr string
	var authTime, c, seen, idle, exp int64
	var revoked sql.NullInt64
	if err := sc.Scan(&s.ID, &s.SecretHash, &s.PersonID, &s.AAL, &amr, &authTime, &c, &seen, &idle, &exp, &s.IP, &s.UserAgent, &revoked, &s.RevokedReason); err != nil {
		return nil, err
	}
	var err error
	if s.AMR, err = jsonList(amr); err != nil {
		return nil, fmt.Errorf("amr: %w", err)
	}
	s.AuthTime, s.CreatedAt, s.LastSeenAt, s.IdleExpiresAt, s.ExpiresAt = fromMicros(authTime), fromMicros(c), fromMicros(seen), fromMicros(idle), fromMicros(exp)
	s.RevokedAt = timePtr(revoked)
	return &s, nil
}

func (q *Queries) CreateSession(ctx context.Context, s *auth.Session) error {
	_, err := q.execHot(ctx, `INSERT INTO sessions (`+sessionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.SecretHash, s.PersonID, s.AAL, listText(s.AMR), micros(s.AuthTime), micros(s.CreatedAt), micros(s.LastSeenAt),
		micros(s.IdleExpiresAt), micros(s.ExpiresAt), s.IP, s.UserAgent, nullMicros(s.RevokedAt), s.RevokedReason)
	if isUnique(err) {
		return onramp.Errorf(onramp.ECONFLICT, "A session with this id or secret exists already.")
	}
	if err != nil {
		return fmt.Errorf("sqlite: create session: %w", err)
	}
	return nil
}

func (q *Queries) SessionByID(ctx context.Context, id string) (*auth.Session, error) {
	return one(q.queryRowHot(ctx, `SELECT `+sessionCols+` FROM sessions WHERE id = ?`, id), scanSession, "session")
}

func (q *Queries) SessionBySecretHash(ctx context.Context, hash string) (*auth.Session, error) {
	return one(q.queryRowHot(ctx, `SELECT `+sessionCols+` FROM sessions WHERE secret_hash = ?`, hash), scanSession, "session")
}

// SessionsOf lists newest first.
func (q *Queries) SessionsOf(ctx context.Context, personID string, includeRevoked bool) ([]*auth.Session, error) {
	live := ` AND revoked_at IS NULL`
	if includeRevoked {
		live = ``
	}
	rows, err := q.x.QueryContext(ctx, `SELECT `+sessionCols+` FROM sessions WHERE person_id = ?`+live+` ORDER BY created_at DESC, id DESC`, personID)
	return all(rows, err, scanSession, "sessions")
}

func (q *Queries) TouchSession(ctx context.Context, id string, lastSeen, idleExpires time.Time) error {
	res, err := q.execHot(ctx, `UPDATE sessions SET last_seen_at = ?, idle_expires_at = ? WHERE id = ?`, micros(lastSeen), micros(idleExpires), id)
	return changedOne(res, err, "session")
}

// RevokeSession is a compare-and-set on revoked_at: of two callers, the
// one whose UPDATE finds it unset wins (the writer is serialised).
func (q *Queries) RevokeSession(ctx context.Context, id string, at time.Time, reason string) (bool, error) {
	res, err := q.x.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL`, micros(at), reason, id)
	return q.casResult(ctx, res, err, `SELECT 1 FROM sessions WHERE id = ?`, id, "session")
}

// casResult turns a compare-and-set UPDATE's outcome into (won, error):
// no row changed is a lost race when the row exists, ENOTFOUND when not.
func (q *Queries) casResult(ctx context.Context, res sql.Result, err error, exists, id, what string) (bool, error) {
	if err != nil {
		return false, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return true, nil
	}
	var found int
	switch err := q.x.QueryRowContext(ctx, exists, id).Scan(&found); {
	case errors.Is(err, sql.ErrNoRows):
		return false, notFound(what)
	case err != nil:
		return false, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return false, nil
}

func (q *Queries) RevokeSessionsOf(ctx context.Context, personID, keep string, at time.Time, reason string) ([]string, error) {
	rows, err := q.x.QueryContext(ctx, `UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE person_id = ? AND revoked_at IS NULL AND id <> ? RETURNING id`,
		micros(at), reason, personID, keep)
	ids, err := all(rows, err, scanString, "revoke sessions")
	slices.Sort(ids)
	return ids, err
}

func scanString(sc rowScanner) (string, error) {
	var s string
	err := sc.Scan(&s)
	return s, err
}

func (q *Queries) AddSessionClient(ctx context.Context, sessionID, clientID string, at time.Time) error {
	_, err := q.x.ExecContext(ctx, `INSERT INTO session_clients (session_id, client_id, first_at, last_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (session_id, client_id) DO UPDATE SET last_at = excluded.last_at`, sessionID, clientID, micros(at), micros(at))
	if err != nil {
		return fmt.Errorf("sqlite: add session client: %w", err)
	}
	return nil
}

// SessionClients lists in the order the session first signed into them.
func (q *Queries) SessionClients(ctx context.Context, sessionID string) ([]string, error) {
	rows, err := q.x.QueryContext(ctx, `SELECT client_id FROM session_clients WHERE session_id = ? ORDER BY first_at, client_id`, sessionID)
	return all(rows, err, scanString, "session clients")
}

// Flows.

const flowCols = `id, secret_hash, kind, auth_request_id, client_id, email, person_id, anonymous_id, step, amr, pending, ip, created_at, expires_at, lang`

func scanFlow(sc rowScanner) (*auth.Flow, error) {
	var f auth.Flow
	var amr string
	var pending sql.NullString
	var c, exp int64
	if err := sc.Scan(&f.ID, &f.SecretHash, &f.Kind, &f.AuthRequestID, &f.ClientID, &f.Email, &f.PersonID, &f.AnonymousID, &f.Step, &amr, &pending, &f.IP, &c, &exp, &f.Lang); err != nil {
		return nil, err
	}
	var err error
	if f.AMR, err = jsonList(amr); err != nil {
		return nil, fmt.Errorf("amr: %w", err)
	}
	f.Pending = rawJSON(pending)
	f.CreatedAt, f.ExpiresAt = fromMicros(c), fromMicros(exp)
	return &f, nil
}

func (q *Queries) CreateFlow(ctx context.Context, f *auth.Flow) error {
	_, err := q.execHot(ctx, `INSERT INTO auth_flows (`+flowCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		f.ID, f.SecretHash, f.Kind, f.AuthRequestID, f.ClientID, f.Email, f.PersonID, f.AnonymousID, f.Step, listText(f.AMR), rawText(f.Pending), f.IP,
		micros(f.CreatedAt), micros(f.ExpiresAt), f.Lang)
	if isUnique(err) {
		return onramp.Errorf(onramp.ECONFLICT, "A flow with this id exists already.")
	}
	if err != nil {
		return fmt.Errorf("sqlite: create flow: %w", err)
	}
	return nil
}

func (q *Queries) FlowByID(ctx context.Context, id string) (*auth.Flow, error) {
	return one(q.queryRowHot(ctx, `SELECT `+flowCols+` FROM auth_flows WHERE id = ?`, id), scanFlow, "flow")
}

// UpdateFlow changes everything but the id and the creation time.
func (q *Queries) UpdateFlow(ctx context.Context, f *auth.Flow) error {
	res, err := q.execHot(ctx, `UPDATE auth_flows SET secret_hash = ?, kind = ?, auth_request_id = ?, client_id = ?, email = ?, person_id = ?,
		anonymous_id = ?, step = ?, amr = ?, pending = ?, ip = ?, expires_at = ?, lang = ? WHERE id = ?`,
		f.SecretHash, f.Kind, f.AuthRequestID, f.ClientID, f.Email, f.PersonID, f.AnonymousID, f.Step, listText(f.AMR), rawText(f.Pending), f.IP,
		micros(f.ExpiresAt), f.Lang, f.ID)
	return changedOne(res, err, "flow")
}

func (q *Queries) DeleteFlow(ctx context.Context, id string) error {
	res, err := q.execHot(ctx, `DELETE FROM auth_flows WHERE id = ?`, id)
	return changedOne(res, err, "flow")
}

// One-time codes.

const codeCols = `id, flow_id, purpose, email, person_id, code_hash, COALESCE(link_hash, ''), attempts, max_attempts, expires_at, used_at, created_at`

func scanCode(sc rowScanner) (*auth.OneTimeCode, error) {
	var c auth.OneTimeCode
	var exp, created int64
	var used sql.NullInt64
	if err := sc.Scan(&c.ID, &c.FlowID, &c.Purpose, &c.Email, &c.PersonID, &c.CodeHash, &c.LinkHash, &c.Attempts, &c.MaxAttempts, &exp, &used, &created); err != nil {
		return nil, err
	}
	c.ExpiresAt, c.UsedAt, c.CreatedAt = fromMicros(exp), timePtr(used), fromMicros(created)
	return &c, nil
}

func (q *Queries) CreateCode(ctx context.Context, c *auth.OneTimeCode) error {
	_, err := q.x.ExecContext(ctx, `INSERT INTO one_time_codes (id, flow_id, purpose, email, person_id, code_hash, link_hash, attempts, max_attempts, expires_at, used_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.FlowID, c.Purpose, c.Email, c.PersonID, c.CodeHash, nullString(c.LinkHash), c.Attempts, c.MaxAttempts, micros(c.ExpiresAt), nullMicros(c.UsedAt), micros(c.CreatedAt))
	if isUnique(err) {
		return onramp.Errorf(onramp.ECONFLICT, "A code with this id or link exists already.")
	}
	if err != nil {
		return fmt.Errorf("sqlite: create code: %w", err)
	}
	return nil
}

func (q *Queries) CodeByID(ctx context.Context, id string) (*auth.OneTimeCode, error) {
	return one(q.queryRowHot(ctx, `SELECT `+codeCols+` FROM one_time_codes WHERE id = ?`, id), scanCode, "code")
}

func (q *Queries) LatestCode(ctx context.Context, flowID, purpose string) (*auth.OneTimeCode, error) {
	return one(q.queryRowHot(ctx, `SELECT `+codeCols+` FROM one_time_codes WHERE flow_id = ? AND purpose = ? ORDER BY created_at DESC, id DESC LIMIT 1`, flowID, purpose),
		scanCode, "code")
}

func (q *Queries) CodeByLinkHash(ctx context.Context, hash string) (*auth.OneTimeCode, error) {
	if hash == "" {
		return nil, notFound("code")
	}
	return one(q.queryRowHot(ctx, `SELECT `+codeCols+` FROM one_time_codes WHERE link_hash = ?`, hash), scanCode, "code")
}

func (q *Queries) IncrementCodeAttempts(ctx context.Context, id string) (int, error) {
	return one(q.x.QueryRowContext(ctx, `UPDATE one_time_codes SET attempts = attempts + 1 WHERE id = ? RETURNING attempts`, id), func(sc rowScanner) (int, error) {
		var n int
		err := sc.Scan(&n)
		return n, err
	}, "code")
}

// UseCode is a compare-and-set on used_at, like RevokeSession.
func (q *Queries) UseCode(ctx context.Context, id string, at time.Time) (bool, error) {
	res, err := q.x.ExecContext(ctx, `UPDATE one_time_codes SET used_at = ? WHERE id = ? AND used_at IS NULL`, micros(at), id)
	return q.casResult(ctx, res, err, `SELECT 1 FROM one_time_codes WHERE id = ?`, id, "code")
}

func (q *Queries) InvalidateCodes(ctx context.Context, purpose, email string, at time.Time) error {
	_, err := q.x.ExecContext(ctx, `UPDATE one_time_codes SET used_at = ? WHERE email = ? AND purpose = ? AND used_at IS NULL`, micros(at), email, purpose)
	if err != nil {
		return fmt.Errorf("sqlite: invalidate codes: %w", err)
	}
	return nil
}

// Audit log.

const auditCols = `seq, id, at, actor_type, actor_id, action, outcome, person_id, property_id, client_id, session_id, ip, user_agent, detail`

func scanAudit(sc rowScanner) (*auth.AuditEntry, error) {
	var e auth.AuditEntry
	var at int64
	var detail sql.NullString
	if err := sc.Scan(&e.Seq, &e.ID, &at, &e.ActorType, &e.ActorID, &e.Action, &e.Outcome, &e.PersonID, &e.PropertyID, &e.ClientID, &e.SessionID,
		&e.IP, &e.UserAgent, &detail); err != nil {
		return nil, err
	}
	e.At, e.Detail = fromMicros(at), rawJSON(detail)
	return &e, nil
}

func (q *Queries) AppendAudit(ctx context.Context, e *auth.AuditEntry) error {
	res, err := q.execHot(ctx, `INSERT INTO audit_log (id, at, actor_type, actor_id, action, outcome, person_id, property_id, client_id, session_id, ip, user_agent, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, micros(e.At), e.ActorType, e.ActorID, e.Action, e.Outcome, e.PersonID, e.PropertyID, e.ClientID, e.SessionID, e.IP, e.UserAgent, rawText(e.Detail))
	if isUnique(err) {
		return onramp.Errorf(onramp.ECONFLICT, "An audit entry with this id exists already.")
	}
	if err != nil {
		return fmt.Errorf("sqlite: append audit: %w", err)
	}
	if e.Seq, err = res.LastInsertId(); err != nil {
		return fmt.Errorf("sqlite: append audit: %w", err)
	}
	return nil
}

// Audit list sizes: AuditQuery.Limit's default and ceiling.
const (
	auditDefaultLimit = 100
	auditMaxLimit     = 1000
)

func (q *Queries) ListAudit(ctx context.Context, aq auth.AuditQuery) ([]*auth.AuditEntry, error) {
	var where []string
	var args []any
	cond := func(c string, a ...any) {
		where = append(where, c)
		args = append(args, a...)
	}
	if aq.PersonID != "" {
		cond(`person_id = ?`, aq.PersonID)
	}
	if aq.ActorID != "" {
		cond(`actor_id = ?`, aq.ActorID)
	}
	if p, ok := strings.CutSuffix(aq.Action, "*"); ok {
		// A range, not LIKE: no metacharacters in action names to escape,
		// and it reads the (action, seq) index.
		if p != "" {
			cond(`action >= ?`, p)
		}
		if end, ok := prefix.End(p); ok {
			cond(`action < ?`, end)
		}
	} else if aq.Action != "" {
		cond(`action = ?`, aq.Action)
	}
	if aq.Outcome != "" {
		cond(`outcome = ?`, aq.Outcome)
	}
	if !aq.Since.IsZero() {
		cond(`at >= ?`, micros(aq.Since))
	}
	if !aq.Until.IsZero() {
		cond(`at < ?`, micros(aq.Until))
	}
	if aq.BeforeSeq > 0 {
		cond(`seq < ?`, aq.BeforeSeq)
	}
	if len(where) == 0 {
		where = append(where, `1 = 1`)
	}
	args = append(args, auditLimit(aq.Limit))
	rows, err := q.x.QueryContext(ctx, `SELECT `+auditCols+` FROM audit_log WHERE `+strings.Join(where, ` AND `)+` ORDER BY seq DESC LIMIT ?`, args...)
	return all(rows, err, scanAudit, "audit")
}

func auditLimit(n int) int {
	if n <= 0 {
		return auditDefaultLimit
	}
	return min(n, auditMaxLimit)
}

// Rate-limit counters.

const attemptsCols = `key, failures, window_start, locked_until, updated_at`

func scanAttempts(sc rowScanner) (*auth.Attempts, error) {
	var a auth.Attempts
	var start, locked, updated int64
	if err := sc.Scan(&a.Key, &a.Failures, &start, &locked, &updated); err != nil {
		return nil, err
	}
	a.WindowStart, a.LockedUntil, a.UpdatedAt = fromMicros(start), fromMicros(locked), fromMicros(updated)
	return &a, nil
}

// AddFailure is one upsert, so that concurrent failures all count. A new
// window starts at the failure that opens it and keeps any lock.
func (q *Queries) AddFailure(ctx context.Context, key string, windowStart, at time.Time) (*auth.Attempts, error) {
	return one(q.queryRowHot(ctx, `INSERT INTO login_attempts (key, failures, window_start, locked_until, updated_at) VALUES (?1, 1, ?2, 0, ?2)
		ON CONFLICT (key) DO UPDATE SET
			failures = CASE WHEN login_attempts.window_start < ?3 THEN 1 ELSE login_attempts.failures + 1 END,
			window_start = CASE WHEN login_attempts.window_start < ?3 THEN excluded.window_start ELSE login_attempts.window_start END,
			updated_at = excluded.updated_at
		RETURNING `+attemptsCols, key, micros(at), micros(windowStart)), scanAttempts, "attempts")
}

func (q *Queries) AttemptsOf(ctx context.Context, key string) (*auth.Attempts, error) {
	return one(q.queryRowHot(ctx, `SELECT `+attemptsCols+` FROM login_attempts WHERE key = ?`, key), scanAttempts, "attempts")
}

func (q *Queries) SetLockedUntil(ctx context.Context, key string, until time.Time) error {
	res, err := q.execHot(ctx, `UPDATE login_attempts SET locked_until = ? WHERE key = ?`, micros(until), key)
	return changedOne(res, err, "attempts")
}

// ResetAttempts forgets the counter; one that does not exist is reset
// already.
func (q *Queries) ResetAttempts(ctx context.Context, key string) error {
	if _, err := q.execHot(ctx, `DELETE FROM login_attempts WHERE key = ?`, key); err != nil {
		return fmt.Errorf("sqlite: reset attempts: %w", err)
	}
	return nil
}

// Staff.

const staffCols = `person_id, role, created_at, created_by, updated_at`

func scanStaff(sc rowScanner) (*auth.Staff, error) {
	var s auth.Staff
	var c, u int64
	if err := sc.Scan(&s.PersonID, &s.Role, &c, &s.CreatedBy, &u); err != nil {
		return nil, err
	}
	s.CreatedAt, s.UpdatedAt = fromMicros(c), fromMicros(u)
	return &s, nil
}

// PutStaff creates the staff row or changes its role; who made it and
// when stay those of the first put.
func (q *Queries) PutStaff(ctx context.Context, s *auth.Staff) error {
	_, err := q.x.ExecContext(ctx, `INSERT INTO staff (`+staffCols+`) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (person_id) DO UPDATE SET role = excluded.role, updated_at = excluded.updated_at`,
		s.PersonID, s.Role, micros(s.CreatedAt), s.CreatedBy, micros(s.UpdatedAt))
	if err != nil {
		return fmt.Errorf("sqlite: put staff: %w", err)
	}
	return nil
}

func (q *Queries) StaffOf(ctx context.Context, personID string) (*auth.Staff, error) {
	return one(q.queryRowHot(ctx, `SELECT `+staffCols+` FROM staff WHERE person_id = ?`, personID), scanStaff, "staff member")
}

// ListStaff lists oldest first.
func (q *Queries) ListStaff(ctx context.Context) ([]*auth.Staff, error) {
	rows, err := q.x.QueryContext(ctx, `SELECT `+staffCols+` FROM staff ORDER BY created_at, person_id`)
	return all(rows, err, scanStaff, "staff")
}

func (q *Queries) DeleteStaff(ctx context.Context, personID string) error {
	res, err := q.x.ExecContext(ctx, `DELETE FROM staff WHERE person_id = ?`, personID)
	return changedOne(res, err, "staff member")
}

// Settings and server secrets.

func (q *Queries) Setting(ctx context.Context, name string) (json.RawMessage, error) {
	return one(q.queryRowHot(ctx, `SELECT value FROM settings WHERE name = ?`, name), func(sc rowScanner) (json.RawMessage, error) {
		var v sql.NullString
		err := sc.Scan(&v)
		return rawJSON(v), err
	}, "setting")
}

func (q *Queries) PutSetting(ctx context.Context, name string, value json.RawMessage, by string, at time.Time) error {
	_, err := q.x.ExecContext(ctx, `INSERT INTO settings (name, value, updated_at, updated_by) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		name, rawText(value), micros(at), by)
	if err != nil {
		return fmt.Errorf("sqlite: put setting: %w", err)
	}
	return nil
}

// ServerSecret inserts if absent, then reads: whichever node inserted
// first, every node reads the same value.
func (q *Queries) ServerSecret(ctx context.Context, name string, value []byte, at time.Time) ([]byte, error) {
	if _, err := q.x.ExecContext(ctx, `INSERT INTO server_secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING`,
		name, value, micros(at)); err != nil {
		return nil, fmt.Errorf("sqlite: server secret: %w", err)
	}
	return one(q.x.QueryRowContext(ctx, `SELECT value FROM server_secrets WHERE name = ?`, name), func(sc rowScanner) ([]byte, error) {
		var v []byte
		err := sc.Scan(&v)
		return v, err
	}, "server secret")
}

// Outbox.

const outboxCols = `id, kind, payload, run_at, attempts, last_error, done_at`

func scanOutbox(sc rowScanner) (*auth.OutboxJob, error) {
	var j auth.OutboxJob
	var payload sql.NullString
	var run int64
	var done sql.NullInt64
	if err := sc.Scan(&j.ID, &j.Kind, &payload, &run, &j.Attempts, &j.LastError, &done); err != nil {
		return nil, err
	}
	j.Payload, j.RunAt, j.DoneAt = rawJSON(payload), fromMicros(run), timePtr(done)
	return &j, nil
}

func (q *Queries) EnqueueOutbox(ctx context.Context, j *auth.OutboxJob) error {
	res, err := q.execHot(ctx, `INSERT INTO auth_outbox (kind, payload, run_at, attempts, last_error, done_at) VALUES (?, ?, ?, ?, ?, ?)`,
		j.Kind, rawText(j.Payload), micros(j.RunAt), j.Attempts, j.LastError, nullMicros(j.DoneAt))
	if err != nil {
		return fmt.Errorf("sqlite: enqueue outbox: %w", err)
	}
	if j.ID, err = res.LastInsertId(); err != nil {
		return fmt.Errorf("sqlite: enqueue outbox: %w", err)
	}
	return nil
}

// ClaimOutbox is one UPDATE: SQLite runs each statement under the write
// lock, so no two callers, in a transaction or not, can take the same job.
// The claim counts as an attempt, so that a job whose worker dies before
// FailOutbox still counts towards giving up. Jobs come in id order.
func (q *Queries) ClaimOutbox(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*auth.OutboxJob, error) {
	if limit <= 0 {
		return []*auth.OutboxJob{}, nil
	}
	rows, err := q.queryHot(ctx, `UPDATE auth_outbox SET run_at = ?, attempts = attempts + 1
		WHERE id IN (SELECT id FROM auth_outbox WHERE done_at IS NULL AND run_at <= ? ORDER BY run_at, id LIMIT ?)
		RETURNING `+outboxCols, micros(now.Add(lease)), micros(now), limit)
	jobs, err := all(rows, err, scanOutbox, "claim outbox")
	slices.SortFunc(jobs, func(a, b *auth.OutboxJob) int { return cmp.Compare(a.ID, b.ID) })
	return jobs, err
}

func (q *Queries) CompleteOutbox(ctx context.Context, id int64, at time.Time) error {
	res, err := q.execHot(ctx, `UPDATE auth_outbox SET done_at = ? WHERE id = ?`, micros(at), id)
	return changedOne(res, err, "outbox job")
}

func (q *Queries) FailOutbox(ctx context.Context, id int64, errText string, next time.Time) error {
	res, err := q.execHot(ctx, `UPDATE auth_outbox SET last_error = ?, run_at = ? WHERE id = ?`, errText, micros(next), id)
	return changedOne(res, err, "outbox job")
}

// Pruning and erasure.

// PruneAuth also forgets rate-limit counters untouched since cutoff whose
// lock has passed: otherwise every address that ever failed once keeps a
// row. Session clients go with their sessions.
func (q *Queries) PruneAuth(ctx context.Context, now, cutoff time.Time) error {
	n, c := micros(now), micros(cutoff)
	for _, st := range []struct {
		sql  string
		args []any
	}{
		{`DELETE FROM auth_flows WHERE expires_at < ?`, []any{n}},
		{`DELETE FROM one_time_codes WHERE expires_at < ?`, []any{n}},
		{`DELETE FROM auth_outbox WHERE done_at < ?`, []any{c}},
		// Clients first: if this runs outside a transaction and stops
		// half-way, the sessions are still there to be found next time.
		{`DELETE FROM session_clients WHERE session_id IN (
			SELECT id FROM sessions WHERE expires_at < ?1 UNION SELECT id FROM sessions WHERE idle_expires_at < ?1)`, []any{c}},
		{`DELETE FROM sessions WHERE id IN (
			SELECT id FROM sessions WHERE expires_at < ?1 UNION SELECT id FROM sessions WHERE idle_expires_at < ?1)`, []any{c}},
		{`DELETE FROM login_attempts WHERE updated_at < ? AND locked_until < ?`, []any{c, n}},
		// An authenticator-app enrolment nobody confirmed is abandoned.
		{`DELETE FROM totp WHERE confirmed_at IS NULL AND created_at < ?`, []any{c}},
	} {
		if _, err := q.x.ExecContext(ctx, st.sql, st.args...); err != nil {
			return fmt.Errorf("sqlite: prune auth: %w", err)
		}
	}
	return nil
}

// EraseAuth also removes flows and codes sent to an erased account's
// primary email but not yet tied to its person (a sign-in started by
// email). Audit entries where the person is the subject or the actor are
// kept, without what they say about where the person was.
func (q *Queries) EraseAuth(ctx context.Context, personIDs []string) error {
	if len(personIDs) == 0 {
		return nil
	}
	const ids = `(SELECT value FROM json_each(?1))`
	const emails = `(SELECT primary_email FROM accounts WHERE person_id IN ` + ids + ` AND primary_email <> '')`
	stmts := []string{
		`UPDATE audit_log SET ip = '', user_agent = '', detail = NULL WHERE person_id IN ` + ids,
		`UPDATE audit_log SET ip = '', user_agent = '', detail = NULL WHERE actor_id IN ` + ids,
		`DELETE FROM one_time_codes WHERE person_id IN ` + ids + ` OR email IN ` + emails,
		`DELETE FROM auth_flows WHERE person_id IN ` + ids + ` OR email IN ` + emails,
		`DELETE FROM session_clients WHERE session_id IN (SELECT id FROM sessions WHERE person_id IN ` + ids + `)`,
		`DELETE FROM sessions WHERE person_id IN ` + ids,
		`DELETE FROM passwords WHERE person_id IN ` + ids,
		`DELETE FROM upstream_links WHERE person_id IN ` + ids,
		`DELETE FROM staff WHERE person_id IN ` + ids,
	}
	stmts = append(stmts, eraseMFA...)
	// Last: the statements above find the emails through it.
	stmts = append(stmts, `DELETE FROM accounts WHERE person_id IN `+ids)
	for _, st := range stmts {
		if _, err := q.x.ExecContext(ctx, st, idsJSON(personIDs)); err != nil {
			return fmt.Errorf("sqlite: erase auth: %w", err)
		}
	}
	return nil
}
