package storetest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/identity"
	"github.com/onramp-dev/onramp/jobs"
)

func newBulkJob(id, status string) *jobs.Job {
	return &jobs.Job{ID: id, Kind: jobs.KindImport, Target: jobs.TargetPeople, Status: status, CreatedBy: "staff:per_1",
		CreatedAt: at(0), UpdatedAt: at(0), Headers: []string{"email", "plan"}}
}

func (e *env) createJobs(t *testing.T, js ...*jobs.Job) {
	t.Helper()
	e.tx(t, func(s Store) error {
		for _, j := range js {
			if err := s.CreateJob(e.ctx, j); err != nil {
				return err
			}
		}
		return nil
	})
}

func (e *env) claimBulk(t *testing.T, p jobs.ClaimParams) *jobs.Job {
	t.Helper()
	var j *jobs.Job
	e.tx(t, func(s Store) error {
		var err error
		j, err = s.ClaimJob(e.ctx, p)
		return err
	})
	return j
}

var jobTests = []test{
	{"Jobs/RoundTrip", func(t *testing.T, e *env) {
		j := newBulkJob("job_1", jobs.StatusUploaded)
		j.Headers = []string{"e-mail", "naïve \x00 column", ""}
		j.RowsTotal = 12
		e.createJobs(t, j)
		got, err := e.Reader().JobByID(e.ctx, "job_1")
		must(t, err)
		if got.Kind != j.Kind || got.Target != j.Target || got.Status != j.Status || got.CreatedBy != j.CreatedBy || got.RowsTotal != 12 || got.Checkpoint != "" || got.Mapping != nil {
			t.Errorf("JobByID = %+v, want %+v", got, j)
		}
		sameStrings(t, "headers", got.Headers, j.Headers)
		sameTime(t, "created_at", got.CreatedAt, at(0))
		sameTimePtr(t, "started_at", got.StartedAt, nil)
		sameTimePtr(t, "finished_at", got.FinishedAt, nil)

		started, finished := at(time.Minute), at(time.Hour)
		got.Status, got.Mapping, got.RowsDone, got.RowsRejected, got.Checkpoint = jobs.StatusDone, map[string]string{"e-mail": "identifier:email"}, 11, 1, "7"
		got.StartedAt, got.FinishedAt, got.Error, got.ClaimedBy, got.LeaseUntil, got.UpdatedAt = &started, &finished, "", "run_1", at(2*time.Hour), at(time.Hour)
		e.tx(t, func(s Store) error { return s.UpdateJob(e.ctx, got) })
		again, err := e.Reader().JobByID(e.ctx, "job_1")
		must(t, err)
		if again.Status != jobs.StatusDone || again.Mapping["e-mail"] != "identifier:email" || again.RowsDone != 11 || again.RowsRejected != 1 || again.Checkpoint != "7" || again.ClaimedBy != "run_1" {
			t.Errorf("after UpdateJob = %+v", again)
		}
		sameTimePtr(t, "started_at", again.StartedAt, &started)
		sameTimePtr(t, "finished_at", again.FinishedAt, &finished)
		sameTime(t, "lease_until", again.LeaseUntil, at(2*time.Hour))

		_, err = e.Reader().JobByID(e.ctx, "job_nope")
		wantCode(t, err, onramp.ENOTFOUND, "JobByID of an unknown job")
		err = e.InTx(e.ctx, func(s Store) error { return s.UpdateJob(e.ctx, newBulkJob("job_nope", jobs.StatusQueued)) })
		wantCode(t, err, onramp.ENOTFOUND, "UpdateJob of an unknown job")
	}},
	{"Jobs/ListNewestFirst", func(t *testing.T, e *env) {
		for i := 1; i <= 5; i++ {
			e.createJobs(t, newBulkJob(fmt.Sprintf("job_%d", i), jobs.StatusQueued))
		}
		page, err := e.Reader().ListJobs(e.ctx, jobs.ListQuery{Limit: 3})
		must(t, err)
		sameStrings(t, "first page", bulkJobIDs(page), []string{"job_5", "job_4", "job_3"})
		page, err = e.Reader().ListJobs(e.ctx, jobs.ListQuery{BeforeID: "job_3", Limit: 3})
		must(t, err)
		sameStrings(t, "second page", bulkJobIDs(page), []string{"job_2", "job_1"})
	}},
	{"Jobs/Claim", func(t *testing.T, e *env) {
		e.createJobs(t, newBulkJob("job_1", jobs.StatusUploaded), newBulkJob("job_2", jobs.StatusDone), newBulkJob("job_3", jobs.StatusQueued), newBulkJob("job_4", jobs.StatusQueued))
		now := at(time.Hour)
		p := jobs.ClaimParams{Runner: "run_a", Now: now, LeaseUntil: now.Add(time.Minute)}
		j := e.claimBulk(t, p)
		if j == nil || j.ID != "job_3" || j.Status != jobs.StatusRunning || j.ClaimedBy != "run_a" {
			t.Fatalf("first claim = %+v, want job_3 running for run_a", j)
		}
		sameTimePtr(t, "started_at", j.StartedAt, &now)
		sameTime(t, "lease_until", j.LeaseUntil, now.Add(time.Minute))
		stored, err := e.Reader().JobByID(e.ctx, "job_3")
		must(t, err)
		if stored.Status != jobs.StatusRunning || stored.ClaimedBy != "run_a" {
			t.Errorf("claim not stored: %+v", stored)
		}
		if j := e.claimBulk(t, jobs.ClaimParams{Runner: "run_b", Now: now, LeaseUntil: now.Add(time.Minute), OnlyID: "job_1"}); j != nil {
			t.Errorf("claimed uploaded job_1: %+v", j)
		}
		if j := e.claimBulk(t, jobs.ClaimParams{Runner: "run_b", Now: now, LeaseUntil: now.Add(time.Minute)}); j == nil || j.ID != "job_4" {
			t.Fatalf("second claim = %+v, want job_4", j)
		}
		if j := e.claimBulk(t, jobs.ClaimParams{Runner: "run_b", Now: now, LeaseUntil: now.Add(time.Minute)}); j != nil {
			t.Fatalf("third claim = %+v: leases are live, nothing to claim", j)
		}
		// After job_3's lease ends, another runner takes it over; started_at stays.
		later := now.Add(2 * time.Minute)
		j = e.claimBulk(t, jobs.ClaimParams{Runner: "run_c", Now: later, LeaseUntil: later.Add(time.Minute), OnlyID: "job_3"})
		if j == nil || j.ClaimedBy != "run_c" {
			t.Fatalf("claim after lease = %+v, want job_3 for run_c", j)
		}
		sameTimePtr(t, "started_at after takeover", j.StartedAt, &now)
	}},
	{"Jobs/ClaimRace", func(t *testing.T, e *env) {
		const n = 6
		for i := range n {
			e.createJobs(t, newBulkJob(fmt.Sprintf("job_%d", i), jobs.StatusQueued))
		}
		var mu sync.Mutex
		claimed := map[string][]string{}
		var wg sync.WaitGroup
		for r := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runner := fmt.Sprintf("run_%d", r)
				for {
					var j *jobs.Job
					err := e.retry(func(s Store) error {
						var err error
						j, err = s.ClaimJob(e.ctx, jobs.ClaimParams{Runner: runner, Now: at(time.Hour), LeaseUntil: at(2 * time.Hour)})
						return err
					})
					if err != nil {
						t.Error(err)
						return
					}
					if j == nil {
						return
					}
					mu.Lock()
					claimed[j.ID] = append(claimed[j.ID], runner)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(claimed) != n {
			t.Errorf("claimed %d jobs, want %d: %v", len(claimed), n, claimed)
		}
		for id, rs := range claimed {
			if len(rs) != 1 {
				t.Errorf("%s claimed by %v, want exactly one runner", id, rs)
			}
		}
	}},
	{"Jobs/Chunks", func(t *testing.T, e *env) {
		e.createJobs(t, newBulkJob("job_1", jobs.StatusUploaded))
		data := []byte("a@x.com,\x00pro\r\n\"multi\nline\",ü\n")
		e.tx(t, func(s Store) error {
			if err := s.PutChunk(e.ctx, &jobs.Chunk{JobID: "job_1", Part: jobs.PartInput, Seq: 0, FirstRow: 1, Rows: 2, Data: data}); err != nil {
				return err
			}
			return s.PutChunk(e.ctx, &jobs.Chunk{JobID: "job_1", Part: jobs.PartOutput, Seq: 0, Rows: 0, Data: nil})
		})
		c, err := e.Reader().Chunk(e.ctx, "job_1", jobs.PartInput, 0)
		must(t, err)
		if string(c.Data) != string(data) || c.FirstRow != 1 || c.Rows != 2 {
			t.Errorf("Chunk = %+v, want the stored bytes", c)
		}
		out, err := e.Reader().Chunk(e.ctx, "job_1", jobs.PartOutput, 0)
		must(t, err)
		if len(out.Data) != 0 {
			t.Errorf("empty chunk = %q", out.Data)
		}
		_, err = e.Reader().Chunk(e.ctx, "job_1", jobs.PartInput, 1)
		wantCode(t, err, onramp.ENOTFOUND, "Chunk past the end")
		err = e.InTx(e.ctx, func(s Store) error {
			return s.PutChunk(e.ctx, &jobs.Chunk{JobID: "job_1", Part: jobs.PartInput, Seq: 0, Data: []byte("again")})
		})
		if err == nil {
			t.Error("PutChunk of an existing chunk succeeded; a chunk is written once")
		}
	}},
	{"Jobs/RejectedRows", func(t *testing.T, e *env) {
		rows := []*jobs.RejectedRow{
			{JobID: "job_1", Row: 3, Reason: "bad email", Fields: []string{"nope", "pro \x00"}},
			{JobID: "job_1", Row: 1, Reason: "no identifier", Fields: []string{"", "free"}},
			{JobID: "job_2", Row: 1, Reason: "other job", Fields: []string{"x"}},
		}
		e.tx(t, func(s Store) error { return s.AddRejectedRows(e.ctx, rows) })
		// A resumed batch adds its rows again: the first stay.
		e.tx(t, func(s Store) error {
			return s.AddRejectedRows(e.ctx, []*jobs.RejectedRow{{JobID: "job_1", Row: 3, Reason: "changed", Fields: []string{"changed"}}, {JobID: "job_1", Row: 7, Reason: "late", Fields: nil}})
		})
		got, err := e.Reader().RejectedRows(e.ctx, "job_1", 0, 10)
		must(t, err)
		var rowsGot []string
		for _, r := range got {
			rowsGot = append(rowsGot, fmt.Sprintf("%d:%s:%q", r.Row, r.Reason, r.Fields))
		}
		sameStrings(t, "rejected rows", rowsGot, []string{`1:no identifier:["" "free"]`, `3:bad email:["nope" "pro \x00"]`, `7:late:[]`})
		page, err := e.Reader().RejectedRows(e.ctx, "job_1", 1, 1)
		must(t, err)
		if len(page) != 1 || page[0].Row != 3 {
			t.Errorf("page after row 1 = %+v, want row 3", page)
		}
	}},
	{"Jobs/ExportPeople", func(t *testing.T, e *env) {
		p3 := person("per_3", `{"plan": "free"}`, at(3*time.Hour))
		p3.RootID, p3.MergedInto = "per_1", "per_1"
		p1 := person("per_1", `{"plan": "pro"}`, at(time.Hour))
		p1.UserID = "u-1"
		e.createPersons(t, p1, person("per_2", "", at(2*time.Hour)), p3, person("per_4", "", at(4*time.Hour)))
		e.addIdentifiers(t, ident(identity.Email, "ada@example.com", "per_1"), ident(identity.UserID, "u-1", "per_1"),
			ident(identity.AnonymousID, "anon-3", "per_3"), ident(identity.Email, "bob@example.org", "per_2"))
		page, err := e.Reader().ExportPeople(e.ctx, "", 2)
		must(t, err)
		if len(page) != 2 || page[0].Person.ID != "per_1" || page[1].Person.ID != "per_2" {
			t.Fatalf("first page = %v, want per_1, per_2", recordIDs(page))
		}
		var keys []string
		for _, id := range page[0].Identifiers {
			keys = append(keys, id.Key.String())
		}
		slices.Sort(keys)
		sameStrings(t, "per_1's identifiers (its merged per_3's included)", keys, []string{"anonymous_id:anon-3", "email:ada@example.com", "user_id:u-1"})
		if page[0].Person.UserID != "u-1" {
			t.Errorf("user id = %q", page[0].Person.UserID)
		}
		sameJSON(t, "traits", page[0].Person.Traits, []byte(`{"plan": "pro"}`))
		page, err = e.Reader().ExportPeople(e.ctx, "per_2", 2)
		must(t, err)
		if len(page) != 1 || page[0].Person.ID != "per_4" || len(page[0].Identifiers) != 0 {
			t.Errorf("second page = %v, want per_4 without identifiers (merged per_3 is not a row)", recordIDs(page))
		}
	}},
	{"Jobs/ImportResumesWithoutDuplicates", testImportResume},
}

func bulkJobIDs(js []*jobs.Job) []string {
	var out []string
	for _, j := range js {
		out = append(out, j.ID)
	}
	return out
}

func recordIDs(rs []*jobs.PersonRecord) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Person.ID)
	}
	return out
}

// jobService is a jobs.Service over e whose imports go through ingest.
func (e *env) jobService(ingest jobs.Ingester, chunkRows int) *jobs.Service {
	return jobs.NewService(jobs.Config{
		Read: e.Reader(),
		InTx: func(ctx context.Context, fn func(jobs.Store) error) error {
			return e.InTx(ctx, func(s Store) error { return fn(s) })
		},
		Ingest: ingest, Clock: onramp.SystemClock{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		IsRetryable: e.IsRetryable, ChunkRows: chunkRows,
	})
}

// testImportResume imports 2,000 rows, stops the runner part-way, then
// also replays a crash between an ingested batch and its checkpoint: a
// new runner finishes, and every row is imported exactly once.
func testImportResume(t *testing.T, e *env) {
	const rows = 2000
	ingest := e.startIngest(t, onramp.SystemClock{})
	svc := e.jobService(ingest, 100)
	var csv strings.Builder
	csv.WriteString("Email,Plan\n")
	bad := 0
	for i := 1; i <= rows; i++ {
		if i%50 == 0 {
			fmt.Fprintf(&csv, "not-an-email-%d,free\n", i)
			bad++
			continue
		}
		fmt.Fprintf(&csv, "person%d@example.com,plan-%d\n", i, i%3)
	}
	up, err := svc.Upload(e.ctx, jobs.UploadParams{Body: []byte(csv.String()), CreatedBy: "staff:per_1"})
	must(t, err)
	if up.Job.RowsTotal != rows {
		t.Fatalf("rows_total = %d", up.Job.RowsTotal)
	}
	_, err = svc.Start(e.ctx, jobs.StartParams{JobID: up.Job.ID, Mapping: map[string]string{"Email": "identifier:email", "Plan": "trait:plan"}})
	must(t, err)

	// First runner: stopped once six chunks are done, while the seventh
	// waits in ingest.
	first := e.jobService(&pausingIngester{Ingester: ingest, n: 6}, 100)
	ctx, stop := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		first.NewRunner(jobs.RunnerConfig{Name: "run_first", Poll: 10 * time.Millisecond}).Run(ctx)
	}()
	waitJob(t, svc, up.Job.ID, func(j *jobs.Job) bool { return j.RowsDone >= 600 })
	stop()
	<-done
	j, err := svc.Get(e.ctx, up.Job.ID)
	must(t, err)
	if j.Status != jobs.StatusQueued || j.RowsDone != 600 {
		t.Fatalf("after stop: status %s rows_done %d; want queued again, part-way, at a chunk boundary", j.Status, j.RowsDone)
	}
	// A crash after two batches were ingested but before their
	// checkpoints committed: the checkpoint is two chunks behind, the job
	// still claimed by a dead runner whose lease has ended.
	e.tx(t, func(s Store) error {
		cur, err := s.JobByID(e.ctx, j.ID)
		if err != nil {
			return err
		}
		n := cur.RowsDone / 100
		if n < 2 {
			return fmt.Errorf("only %d chunks done", n)
		}
		var rejected int64
		for row := (n-2)*100 + 1; row <= n*100; row++ {
			if row%50 == 0 {
				rejected++
			}
		}
		cur.Checkpoint = fmt.Sprint(n - 2)
		cur.RowsDone -= 200
		cur.RowsRejected -= rejected
		cur.Status, cur.ClaimedBy, cur.LeaseUntil = jobs.StatusRunning, "run_dead", time.Now().Add(-time.Second)
		return s.UpdateJob(e.ctx, cur)
	})

	ctx2, stop2 := context.WithCancel(e.ctx)
	defer stop2()
	go svc.NewRunner(jobs.RunnerConfig{Name: "run_second", Poll: 10 * time.Millisecond}).Run(ctx2)
	j = waitJob(t, svc, up.Job.ID, func(j *jobs.Job) bool { return j.Finished() })
	if j.Status != jobs.StatusDone || j.RowsDone != rows || j.RowsRejected != int64(bad) {
		t.Fatalf("end: %+v; want done, %d rows, %d rejected", j, rows, bad)
	}
	people, err := e.Reader().CountPersons(e.ctx)
	must(t, err)
	evs, err := e.Reader().CountEvents(e.ctx)
	must(t, err)
	if people != rows-int64(bad) || evs != rows-int64(bad) {
		t.Errorf("people %d, events %d; want %d of each (every good row once)", people, evs, rows-bad)
	}
	rej, err := e.Reader().RejectedRows(e.ctx, j.ID, 0, 1000)
	must(t, err)
	if len(rej) != bad || rej[0].Row != 50 || !strings.Contains(rej[0].Reason, "not a valid email") || rej[0].Fields[0] != "not-an-email-50" {
		t.Errorf("rejected rows: %d, first %+v", len(rej), rej[0])
	}
	p, err := identity.NewService(e.Reader(), nil, onramp.SystemClock{}, slog.New(slog.DiscardHandler)).Lookup(e.ctx, identity.Key{Type: identity.Email, Value: "person7@example.com"})
	must(t, err)
	sameJSON(t, "traits of row 7", p.Person.Traits, []byte(`{"email":"person7@example.com","plan":"plan-1"}`))
}

// pausingIngester passes the first n batches to the real ingest, then
// holds every later one until its caller gives up: a runner stopped there
// is stopped part-way, however fast the machine.
type pausingIngester struct {
	jobs.Ingester
	mu sync.Mutex
	n  int
}

func (p *pausingIngester) Ingest(ctx context.Context, ip events.IngestParams) (*events.Result, error) {
	p.mu.Lock()
	p.n--
	pass := p.n >= 0
	p.mu.Unlock()
	if !pass {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return p.Ingester.Ingest(ctx, ip)
}

// waitJob polls the job until ok says so (or 60 s pass).
func waitJob(t *testing.T, svc *jobs.Service, id string, ok func(*jobs.Job) bool) *jobs.Job {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		j, err := svc.Get(context.Background(), id)
		must(t, err)
		if ok(j) {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job still %s with %d/%d rows after 60 s", j.Status, j.RowsDone, j.RowsTotal)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
