package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

func newAudit(id, action string, when time.Time) *auth.AuditEntry {
	return &auth.AuditEntry{
		ID:         id,
		At:         when,
		ActorType:  auth.ActorPerson,
		ActorID:    "per_actor",
		Action:     action,
		Outcome:    auth.OutcomeSuccess,
		PersonID:   "per_ada",
		PropertyID: "prp_site",
		ClientID:   "cli_app",
		SessionID:  "ses_1",
		IP:         "203.0.113.7",
		UserAgent:  "curl/8.9",
		Detail:     json.RawMessage(`{"method": "password", "mfa": false, "note": "ünï"}`),
	}
}

func sameAudit(t *testing.T, got, want *auth.AuditEntry) {
	t.Helper()
	if got.ID != want.ID || got.ActorType != want.ActorType || got.ActorID != want.ActorID || got.Action != want.Action ||
		got.Outcome != want.Outcome || got.PersonID != want.PersonID || got.PropertyID != want.PropertyID || got.ClientID != want.ClientID ||
		got.SessionID != want.SessionID || got.IP != want.IP || got.UserAgent != want.UserAgent {
		t.Errorf("audit entry = %+v, want %+v", got, want)
	}
	if want.Seq != 0 && got.Seq != want.Seq {
		t.Errorf("audit entry %s: seq = %d, want %d", want.ID, got.Seq, want.Seq)
	}
	sameJSON(t, "audit detail of "+want.ID, got.Detail, want.Detail)
	sameTime(t, "audit at", got.At, want.At)
}

func auditIDs(es []*auth.AuditEntry) []string {
	ids := []string{}
	for _, e := range es {
		ids = append(ids, e.ID)
	}
	return ids
}

func (e *env) appendAudit(t *testing.T, es ...*auth.AuditEntry) {
	t.Helper()
	e.tx(t, func(s Store) error {
		for _, a := range es {
			if err := s.AppendAudit(e.ctx, a); err != nil {
				return err
			}
		}
		return nil
	})
}

func newJob(kind string, runAt time.Time) *auth.OutboxJob {
	return &auth.OutboxJob{Kind: kind, Payload: json.RawMessage(fmt.Sprintf(`{"to": "ada@example.com", "template": %q}`, kind)), RunAt: runAt}
}

func sameJob(t *testing.T, got, want *auth.OutboxJob) {
	t.Helper()
	if got.ID != want.ID || got.Kind != want.Kind || got.Attempts != want.Attempts || got.LastError != want.LastError {
		t.Errorf("outbox job = %+v, want %+v", got, want)
	}
	sameJSON(t, "outbox payload", got.Payload, want.Payload)
	sameTime(t, "outbox run_at", got.RunAt, want.RunAt)
	sameTimePtr(t, "outbox done_at", got.DoneAt, want.DoneAt)
}

func jobIDs(js []*auth.OutboxJob) []int64 {
	ids := []int64{}
	for _, j := range js {
		ids = append(ids, j.ID)
	}
	return ids
}

func (e *env) claim(t *testing.T, now time.Time, lease time.Duration, limit int) []*auth.OutboxJob {
	t.Helper()
	var jobs []*auth.OutboxJob
	e.tx(t, func(s Store) (err error) { jobs, err = s.ClaimOutbox(e.ctx, now, lease, limit); return })
	return jobs
}

var auditTests = []test{
	{"Audit/AppendAndFilter", func(t *testing.T, e *env) {
		login := newAudit("aud_1", "auth.logged_in", at(0))
		failed := newAudit("aud_2", "auth.login_failed", at(time.Minute+999))
		failed.Outcome, failed.ActorType, failed.ActorID, failed.SessionID = auth.OutcomeFailure, auth.ActorAnonymous, "", ""
		role := newAudit("aud_3", "staff.role_changed", at(time.Hour))
		role.ActorType, role.ActorID, role.PersonID, role.Detail = auth.ActorStaff, "per_owner", "per_bob", nil
		invite := newAudit("aud_4", "staff.invited", at(2*time.Hour))
		invite.ActorType, invite.ActorID, invite.PersonID = auth.ActorStaff, "per_owner", "per_cy"
		// Neighbours of the "staff." prefix, and LIKE's metacharacters.
		staffing := newAudit("aud_5", "staffing.x", at(3*time.Hour))
		under := newAudit("aud_6", "a_b.x", at(3*time.Hour))
		percent := newAudit("aud_7", "a%b.x", at(3*time.Hour))
		plain := newAudit("aud_8", "aXb.x", at(3*time.Hour))
		bare := &auth.AuditEntry{ID: "aud_9", At: at(4 * time.Hour), ActorType: auth.ActorSystem, Action: "keys.rotated", Outcome: auth.OutcomeSuccess}
		entries := []*auth.AuditEntry{login, failed, role, invite, staffing, under, percent, plain, bare}
		e.appendAudit(t, entries...)
		for i, a := range entries {
			if a.Seq <= 0 || (i > 0 && a.Seq <= entries[i-1].Seq) {
				t.Fatalf("seqs = %v, want increasing positive numbers filled in by AppendAudit", auditIDs(entries))
			}
		}
		r := e.Reader()
		all, err := r.ListAudit(e.ctx, auth.AuditQuery{})
		must(t, err)
		sameStrings(t, "all, newest first", auditIDs(all), []string{"aud_9", "aud_8", "aud_7", "aud_6", "aud_5", "aud_4", "aud_3", "aud_2", "aud_1"})
		for i, want := range slices.Backward(entries) {
			sameAudit(t, all[len(entries)-1-i], want)
		}
		cases := []struct {
			name string
			q    auth.AuditQuery
			want []string
		}{
			{"person", auth.AuditQuery{PersonID: "per_ada"}, []string{"aud_8", "aud_7", "aud_6", "aud_5", "aud_2", "aud_1"}},
			{"actor", auth.AuditQuery{ActorID: "per_owner"}, []string{"aud_4", "aud_3"}},
			{"exact action", auth.AuditQuery{Action: "staff.invited"}, []string{"aud_4"}},
			{"action is not a prefix without *", auth.AuditQuery{Action: "staff."}, nil},
			{"action prefix", auth.AuditQuery{Action: "staff.*"}, []string{"aud_4", "aud_3"}},
			{"prefix with _", auth.AuditQuery{Action: "a_b.*"}, []string{"aud_6"}},
			{"prefix with %", auth.AuditQuery{Action: "a%b.*"}, []string{"aud_7"}},
			{"prefix of everything", auth.AuditQuery{Action: "*"}, []string{"aud_9", "aud_8", "aud_7", "aud_6", "aud_5", "aud_4", "aud_3", "aud_2", "aud_1"}},
			{"outcome", auth.AuditQuery{Outcome: auth.OutcomeFailure}, []string{"aud_2"}},
			{"since (inclusive)", auth.AuditQuery{Since: at(2 * time.Hour)}, []string{"aud_9", "aud_8", "aud_7", "aud_6", "aud_5", "aud_4"}},
			{"until (exclusive)", auth.AuditQuery{Until: at(time.Hour)}, []string{"aud_2", "aud_1"}},
			{"since and until", auth.AuditQuery{Since: at(time.Minute), Until: at(3 * time.Hour)}, []string{"aud_4", "aud_3", "aud_2"}},
			{"combined", auth.AuditQuery{PersonID: "per_ada", Action: "auth.*", Outcome: auth.OutcomeSuccess}, []string{"aud_1"}},
			{"limit", auth.AuditQuery{Limit: 2}, []string{"aud_9", "aud_8"}},
			{"before seq", auth.AuditQuery{BeforeSeq: invite.Seq}, []string{"aud_3", "aud_2", "aud_1"}},
			{"before seq with a filter", auth.AuditQuery{Action: "staff.*", BeforeSeq: invite.Seq}, []string{"aud_3"}},
		}
		for _, c := range cases {
			got, err := r.ListAudit(e.ctx, c.q)
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			if got == nil {
				t.Errorf("%s: nil list, want a list (JSON answers say [])", c.name)
			}
			sameStrings(t, c.name, auditIDs(got), c.want)
		}
		err = e.InTx(e.ctx, func(s Store) error { return s.AppendAudit(e.ctx, newAudit("aud_1", "x", at(0))) })
		wantCode(t, err, onramp.ECONFLICT, "AppendAudit with a taken id")
	}},
	{"Audit/PagingAndLimits", func(t *testing.T, e *env) {
		const n = 1005
		var es []*auth.AuditEntry
		for i := range n {
			a := newAudit(fmt.Sprintf("aud_%04d", i), "auth.logged_in", at(time.Duration(i)*time.Second))
			if i%2 == 1 {
				a.PersonID = "per_bob"
			}
			es = append(es, a)
		}
		e.appendAudit(t, es...)
		r := e.Reader()
		def, err := r.ListAudit(e.ctx, auth.AuditQuery{})
		must(t, err)
		if len(def) != 100 {
			t.Fatalf("default page = %d entries, want 100", len(def))
		}
		if def[0].ID != "aud_1004" || def[99].ID != "aud_0905" {
			t.Errorf("default page runs from %s to %s, want aud_1004 to aud_0905", def[0].ID, def[99].ID)
		}
		capped, err := r.ListAudit(e.ctx, auth.AuditQuery{Limit: 5000})
		must(t, err)
		if len(capped) != 1000 {
			t.Errorf("Limit 5000 gave %d entries, want the 1000 ceiling", len(capped))
		}
		// Paging one person's entries by BeforeSeq visits each exactly once.
		var seen []string
		q := auth.AuditQuery{PersonID: "per_bob", Limit: 37}
		for pages := 0; ; pages++ {
			page, err := r.ListAudit(e.ctx, q)
			must(t, err)
			if len(page) == 0 || pages > 100 {
				break
			}
			for _, a := range page {
				if a.PersonID != "per_bob" || (q.BeforeSeq > 0 && a.Seq >= q.BeforeSeq) {
					t.Fatalf("page entry %+v breaks the query %+v", a, q)
				}
				seen = append(seen, a.ID)
			}
			q.BeforeSeq = page[len(page)-1].Seq
		}
		var want []string
		for i := n - 1; i >= 0; i-- {
			if i%2 == 1 {
				want = append(want, fmt.Sprintf("aud_%04d", i))
			}
		}
		sameStrings(t, "paged ids", seen, want)
	}},
	{"Limits/FailureWindow", func(t *testing.T, e *env) {
		const key = "id:4f2a"
		_, err := e.Reader().AttemptsOf(e.ctx, key)
		wantCode(t, err, onramp.ENOTFOUND, "AttemptsOf a fresh key")
		add := func(windowStart, when time.Time) *auth.Attempts {
			t.Helper()
			var a *auth.Attempts
			e.tx(t, func(s Store) (err error) { a, err = s.AddFailure(e.ctx, key, windowStart, when); return })
			return a
		}
		sameAttempts := func(what string, got *auth.Attempts, failures int, start, locked, updated time.Time) {
			t.Helper()
			if got.Key != key || got.Failures != failures {
				t.Errorf("%s: attempts = %+v, want %d failures", what, got, failures)
			}
			sameTime(t, what+" window_start", got.WindowStart, start)
			sameTime(t, what+" locked_until", got.LockedUntil, locked)
			sameTime(t, what+" updated_at", got.UpdatedAt, updated)
		}
		window := 15 * time.Minute
		t0 := at(123)
		sameAttempts("first failure", add(t0.Add(-window), t0), 1, t0, time.Time{}, t0)
		t1 := at(5 * time.Minute)
		sameAttempts("second failure", add(t1.Add(-window), t1), 2, t0, time.Time{}, t1)
		lock := at(time.Hour + 1)
		e.tx(t, func(s Store) error { return s.SetLockedUntil(e.ctx, key, lock) })
		got, err := e.Reader().AttemptsOf(e.ctx, key)
		must(t, err)
		sameAttempts("after the lock", got, 2, t0, lock, t1)
		// Past the window: a new one starts at this failure; the lock stays.
		t2 := at(20 * time.Minute)
		sameAttempts("failure in a new window", add(t2.Add(-window), t2), 1, t2, lock, t2)
		t3 := at(21 * time.Minute)
		sameAttempts("next failure in it", add(t3.Add(-window), t3), 2, t2, lock, t3)
		// Other keys are separate.
		e.tx(t, func(s Store) error { _, err := s.AddFailure(e.ctx, "ip:203.0.113.7", t0, t0); return err })
		e.tx(t, func(s Store) error { return s.ResetAttempts(e.ctx, key) })
		_, err = e.Reader().AttemptsOf(e.ctx, key)
		wantCode(t, err, onramp.ENOTFOUND, "AttemptsOf after ResetAttempts")
		e.tx(t, func(s Store) error { return s.ResetAttempts(e.ctx, key) })
		err = e.InTx(e.ctx, func(s Store) error { return s.SetLockedUntil(e.ctx, key, lock) })
		wantCode(t, err, onramp.ENOTFOUND, "SetLockedUntil of a missing counter")
		if a, err := e.Reader().AttemptsOf(e.ctx, "ip:203.0.113.7"); err != nil || a.Failures != 1 {
			t.Errorf("other key = %+v, %v; want 1 failure", a, err)
		}
	}},
	{"Limits/ConcurrentFailures", func(t *testing.T, e *env) {
		// Nodes counting failures of one key at once lose none.
		const nodes = 6
		look := func(s Store) error { _, err := s.AttemptsOf(e.ctx, "ip:x"); return ignoreNotFound(err) }
		e.race(t, nodes, look, func(s Store, i int) (bool, error) {
			_, err := s.AddFailure(e.ctx, "ip:x", at(0), at(time.Duration(i)*time.Second))
			return true, err
		})
		a, err := e.Reader().AttemptsOf(e.ctx, "ip:x")
		must(t, err)
		if a.Failures != nodes {
			t.Errorf("failures = %d, want %d", a.Failures, nodes)
		}
	}},
}

var outboxTests = []test{
	{"Outbox/ClaimLeaseCompleteFail", func(t *testing.T, e *env) {
		now := at(time.Hour + 321)
		lease := 2 * time.Minute
		first, second := newJob(auth.JobEmail, at(0)), newJob(auth.JobTimeline, at(time.Minute))
		later := newJob(auth.JobBackchannelLogout, now.Add(time.Hour))
		bare := &auth.OutboxJob{Kind: auth.JobEmail, RunAt: at(2 * time.Minute)}
		e.tx(t, func(s Store) error {
			return errorsJoin(s.EnqueueOutbox(e.ctx, first), s.EnqueueOutbox(e.ctx, second), s.EnqueueOutbox(e.ctx, later), s.EnqueueOutbox(e.ctx, bare))
		})
		if first.ID <= 0 || second.ID <= first.ID || later.ID <= second.ID || bare.ID <= later.ID {
			t.Fatalf("ids = %d %d %d %d, want increasing positive numbers filled in by EnqueueOutbox", first.ID, second.ID, later.ID, bare.ID)
		}
		// Up to limit, the longest-due first; a claim counts as an attempt
		// and moves run_at to the end of the lease.
		got := e.claim(t, now, lease, 2)
		if len(got) != 2 {
			t.Fatalf("claimed %v, want 2 jobs", jobIDs(got))
		}
		for _, j := range []*auth.OutboxJob{first, second} {
			j.Attempts, j.RunAt = 1, now.Add(lease)
		}
		sameJob(t, got[0], first)
		sameJob(t, got[1], second)
		got = e.claim(t, now, lease, 10)
		bare.Attempts, bare.RunAt = 1, now.Add(lease)
		if len(got) != 1 {
			t.Fatalf("second claim = %v, want the one due job left", jobIDs(got))
		}
		sameJob(t, got[0], bare)
		// Claimed jobs are not claimed again while their lease runs.
		if got := e.claim(t, now.Add(lease-time.Microsecond), lease, 10); len(got) != 0 {
			t.Fatalf("claim during the lease = %v, want none", jobIDs(got))
		}
		// first succeeds; second fails and is due again in an hour; bare's
		// worker died, so its lease runs out.
		done := now.Add(30 * time.Second)
		e.tx(t, func(s Store) error {
			return errorsJoin(s.CompleteOutbox(e.ctx, first.ID, done), s.FailOutbox(e.ctx, second.ID, "smtp: 421 try later", now.Add(time.Hour+time.Second)))
		})
		end := now.Add(lease)
		got = e.claim(t, end, lease, 10)
		bare.Attempts, bare.RunAt = 2, end.Add(lease)
		if len(got) != 1 {
			t.Fatalf("claim after the lease = %v, want bare's job again", jobIDs(got))
		}
		sameJob(t, got[0], bare)
		// An hour later: later is due, and second after its retry time.
		got = e.claim(t, now.Add(time.Hour+time.Second), lease, 10)
		later.Attempts, later.RunAt = 1, now.Add(time.Hour+time.Second).Add(lease)
		second.Attempts, second.RunAt, second.LastError = 2, later.RunAt, "smtp: 421 try later"
		bare.Attempts, bare.RunAt = 3, later.RunAt
		if len(got) != 3 {
			t.Fatalf("claim an hour later = %v, want second, later and bare", jobIDs(got))
		}
		sameJob(t, got[0], second)
		sameJob(t, got[1], later)
		sameJob(t, got[2], bare)
		// A done job is never claimed again.
		for _, j := range e.claim(t, now.Add(24*time.Hour), lease, 10) {
			if j.ID == first.ID {
				t.Error("a completed job was claimed")
			}
		}
		if got := e.claim(t, now, lease, 0); got == nil || len(got) != 0 {
			t.Errorf("claim with limit 0 = %#v, want an empty, non-nil list", got)
		}
		err := e.InTx(e.ctx, func(s Store) error { return s.CompleteOutbox(e.ctx, 99999, done) })
		wantCode(t, err, onramp.ENOTFOUND, "CompleteOutbox of a missing job")
		err = e.InTx(e.ctx, func(s Store) error { return s.FailOutbox(e.ctx, 99999, "x", done) })
		wantCode(t, err, onramp.ENOTFOUND, "FailOutbox of a missing job")
	}},
	{"Outbox/ConcurrentWorkers", func(t *testing.T, e *env) {
		// Workers of several nodes claim at once, some in a transaction,
		// most not (where Postgres re-checks a changed row instead of
		// failing): every job is claimed by exactly one.
		const jobs, workers = 120, 6
		var want []int64
		e.tx(t, func(s Store) error {
			for i := range jobs {
				j := newJob(auth.JobEmail, at(time.Duration(i)*time.Millisecond))
				if err := s.EnqueueOutbox(e.ctx, j); err != nil {
					return err
				}
				want = append(want, j.ID)
			}
			return nil
		})
		now := at(time.Hour)
		var mu sync.Mutex
		var claimed []int64
		var wg sync.WaitGroup
		errs := make([]error, workers)
		start := make(chan struct{})
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				// Each claim that finds something takes at least one job, so
				// more rounds than jobs means claims do not take them.
				for range jobs + 1 {
					var got []*auth.OutboxJob
					var err error
					if w%3 == 0 {
						err = e.retry(func(s Store) (err error) { got, err = s.ClaimOutbox(e.ctx, now, time.Hour, 2); return })
					} else {
						got, err = e.Writer().ClaimOutbox(e.ctx, now, time.Hour, 2)
					}
					if err != nil {
						errs[w] = err
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					claimed = append(claimed, jobIDs(got)...)
					mu.Unlock()
				}
				errs[w] = fmt.Errorf("worker %d: claims keep finding jobs", w)
			}()
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			must(t, err)
		}
		slices.Sort(claimed)
		if !slices.Equal(claimed, want) {
			t.Errorf("claimed %v, want each of %v once", claimed, want)
		}
	}},
	{"PruneAuth/DeletesWhatEnded", func(t *testing.T, e *env) {
		now, cutoff := at(30*24*time.Hour), at(23*24*time.Hour)
		flowOld, flowLive := newFlow("flw_old"), newFlow("flw_live")
		flowOld.ExpiresAt, flowLive.ExpiresAt = now.Add(-time.Second), now
		codeOld, codeLive := newCode("otc_old", "flw_old", auth.CodeSignIn, at(0)), newCode("otc_live", "flw_live", auth.CodeSignIn, at(0))
		codeOld.ExpiresAt, codeLive.ExpiresAt = now.Add(-time.Second), now.Add(time.Minute)
		expired, idled, live := newSession("ses_expired", "per_ada", at(0)), newSession("ses_idled", "per_ada", at(0)), newSession("ses_live", "per_ada", at(0))
		// Each end alone prunes (an idle end past the absolute one is odd,
		// but the engine must not rely on the order).
		expired.IdleExpiresAt, expired.ExpiresAt = cutoff.Add(time.Hour), cutoff.Add(-time.Second)
		idled.IdleExpiresAt, idled.ExpiresAt = cutoff.Add(-time.Second), now.Add(time.Hour)
		live.IdleExpiresAt, live.ExpiresAt = cutoff, now.Add(time.Hour)
		// Ended after cutoff: kept a while for the account page.
		recent := newSession("ses_recent", "per_ada", at(0))
		recent.IdleExpiresAt, recent.ExpiresAt = cutoff.Add(time.Hour), cutoff.Add(2*time.Hour)
		doneOld, doneRecent, pending := newJob(auth.JobEmail, at(0)), newJob(auth.JobEmail, at(0)), newJob(auth.JobEmail, at(0))
		e.tx(t, func(s Store) error {
			return errorsJoin(
				s.CreateFlow(e.ctx, flowOld), s.CreateFlow(e.ctx, flowLive),
				s.CreateCode(e.ctx, codeOld), s.CreateCode(e.ctx, codeLive),
				s.CreateSession(e.ctx, expired), s.CreateSession(e.ctx, idled), s.CreateSession(e.ctx, live), s.CreateSession(e.ctx, recent),
				s.AddSessionClient(e.ctx, "ses_expired", "cli_a", at(0)), s.AddSessionClient(e.ctx, "ses_live", "cli_a", at(0)),
				s.EnqueueOutbox(e.ctx, doneOld), s.EnqueueOutbox(e.ctx, doneRecent), s.EnqueueOutbox(e.ctx, pending),
				s.CompleteOutbox(e.ctx, doneOld.ID, cutoff.Add(-time.Second)), s.CompleteOutbox(e.ctx, doneRecent.ID, cutoff),
			)
		})
		// Counters: stale, stale but locked beyond now, and recent.
		e.tx(t, func(s Store) error {
			_, err1 := s.AddFailure(e.ctx, "ip:stale", at(0), cutoff.Add(-time.Second))
			_, err2 := s.AddFailure(e.ctx, "ip:locked", at(0), cutoff.Add(-time.Second))
			_, err3 := s.AddFailure(e.ctx, "ip:recent", at(0), cutoff)
			return errorsJoin(err1, err2, err3, s.SetLockedUntil(e.ctx, "ip:locked", now.Add(time.Minute)))
		})
		e.tx(t, func(s Store) error { return s.PruneAuth(e.ctx, now, cutoff) })
		r := e.Reader()
		gone := map[string]error{}
		_, gone["expired flow"] = r.FlowByID(e.ctx, "flw_old")
		_, gone["expired code"] = r.CodeByID(e.ctx, "otc_old")
		_, gone["expired session"] = r.SessionByID(e.ctx, "ses_expired")
		_, gone["idled-out session"] = r.SessionByID(e.ctx, "ses_idled")
		_, gone["stale counter"] = r.AttemptsOf(e.ctx, "ip:stale")
		for what, err := range gone {
			wantCode(t, err, onramp.ENOTFOUND, what+" after PruneAuth")
		}
		kept := map[string]error{}
		_, kept["live flow"] = r.FlowByID(e.ctx, "flw_live")
		_, kept["live code"] = r.CodeByID(e.ctx, "otc_live")
		_, kept["live session"] = r.SessionByID(e.ctx, "ses_live")
		_, kept["recently ended session"] = r.SessionByID(e.ctx, "ses_recent")
		_, kept["locked counter"] = r.AttemptsOf(e.ctx, "ip:locked")
		_, kept["recent counter"] = r.AttemptsOf(e.ctx, "ip:recent")
		for what, err := range kept {
			if err != nil {
				t.Errorf("%s after PruneAuth: %v", what, err)
			}
		}
		if cs, _ := r.SessionClients(e.ctx, "ses_expired"); len(cs) != 0 {
			t.Errorf("a pruned session's clients = %q, want none", cs)
		}
		if cs, _ := r.SessionClients(e.ctx, "ses_live"); len(cs) != 1 {
			t.Errorf("a live session's clients = %q, want one", cs)
		}
		// Outbox jobs cannot be read by id: the pending one is the only one
		// left to claim, and the recently done one is still there to
		// complete again.
		if got := e.claim(t, now, time.Minute, 10); !slices.Equal(jobIDs(got), []int64{pending.ID}) {
			t.Errorf("jobs left to claim = %v, want only %d", jobIDs(got), pending.ID)
		}
		e.tx(t, func(s Store) error { return s.CompleteOutbox(e.ctx, doneRecent.ID, now) })
		err := e.InTx(e.ctx, func(s Store) error { return s.CompleteOutbox(e.ctx, doneOld.ID, now) })
		wantCode(t, err, onramp.ENOTFOUND, "CompleteOutbox of a pruned job")
	}},
}
