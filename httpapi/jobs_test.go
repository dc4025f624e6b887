package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/identity"
)

type jobJSON struct {
	ID           string            `json:"id"`
	Kind         string            `json:"kind"`
	Target       string            `json:"target"`
	Format       string            `json:"format"`
	Status       string            `json:"status"`
	RowsTotal    int64             `json:"rows_total"`
	RowsDone     int64             `json:"rows_done"`
	RowsRejected int64             `json:"rows_rejected"`
	CreatedBy    string            `json:"created_by"`
	StartedAt    *time.Time        `json:"started_at"`
	FinishedAt   *time.Time        `json:"finished_at"`
	Error        string            `json:"error"`
	Headers      []string          `json:"headers"`
	Mapping      map[string]string `json:"mapping"`
}

type uploadJSON struct {
	Job     jobJSON    `json:"job"`
	Headers []string   `json:"headers"`
	Preview [][]string `json:"preview"`
}

func (s *testStack) upload(token, body string) reply {
	s.t.Helper()
	return s.do(http.MethodPost, "/api/imports", []byte(body), "Authorization", "Bearer "+token, "Content-Type", "text/csv; charset=utf-8")
}

// waitJob polls GET /api/jobs/{id} until the job finishes.
func (s *testStack) waitJob(token, id string) jobJSON {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := s.api(token, http.MethodGet, "/api/jobs/"+id, nil)
		var j jobJSON
		r.json(s.t, &j)
		if r.status != 200 {
			s.t.Fatalf("GET job: %d %s", r.status, r.body)
		}
		switch j.Status {
		case "done", "failed", "cancelled":
			return j
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("job %s still %s after 60 s", id, j.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestImportPreviewRunAndRejections(t *testing.T) {
	s := newTestStack(t)
	marketer := s.token("marketer", auth.RoleMarketer)
	// A person who is already known under user id u-1.
	s.ingest(`{"type":"identify","userId":"u-1","traits":{"email":"known@example.com"},"messageId":"m-known"}`)

	long := strings.Repeat("x", 9000)
	rows := []string{
		"\ufeffE-mail,Name,User ID,CRM,Notes", // a BOM, as spreadsheet programs write it
		`ada@example.com,"Lovelace, Ada",,crm-1,first`,
		`bob@example.com,Bob,,,`,
		`not-an-email,Nobody,,,`,   // row 3: invalid email
		`,No identifier,,,`,        // row 4: nothing to identify
		`cy@example.com,Cy,null,,`, // row 5: placeholder user id
		`dee@example.com,` + long + `,,,`,
		`known@example.com,Known,u-2,,`, // row 7: another user id: never merged with u-1
		"eve@example.com,\"Eve\nMultiline\",,,",
		`fay@example.com,Fay,,crm-9,`,
		`gil@example.com,Gil,,,`,
		`hal@example.com,Hal,,,`, // row 11: beyond the preview
		`ada@example.com,Ada Again,,,`,
	}
	r := s.upload(marketer, strings.Join(rows, "\r\n")+"\r\n")
	if r.status != http.StatusCreated {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	var up uploadJSON
	r.json(t, &up)
	if up.Job.Status != "uploaded" || up.Job.Kind != "import" || up.Job.RowsTotal != 12 || !strings.HasPrefix(up.Job.CreatedBy, "token:") {
		t.Errorf("job = %+v", up.Job)
	}
	if strings.Join(up.Headers, "|") != "E-mail|Name|User ID|CRM|Notes" {
		t.Errorf("headers = %q", up.Headers)
	}
	if len(up.Preview) != 10 || up.Preview[0][1] != "Lovelace, Ada" || up.Preview[7][1] != "Eve\nMultiline" {
		t.Errorf("preview = %q", up.Preview)
	}
	if loc := r.header.Get("Location"); loc != "/api/jobs/"+up.Job.ID {
		t.Errorf("Location = %q", loc)
	}

	mapping := map[string]any{"mapping": map[string]string{"E-mail": "identifier:email", "Name": "trait:name", "User ID": "identifier:user_id", "CRM": "identifier:external:crm_id", "Notes": "ignore"}}
	r = s.api(marketer, http.MethodPost, "/api/imports/"+up.Job.ID+"/start", mapping)
	if r.status != http.StatusAccepted {
		t.Fatalf("start: %d %s", r.status, r.body)
	}
	j := s.waitJob(marketer, up.Job.ID)
	if j.Status != "done" || j.RowsDone != 12 || j.RowsRejected != 4 || j.StartedAt == nil || j.FinishedAt == nil {
		t.Fatalf("finished job = %+v", j)
	}
	// Starting again is refused: it already ran.
	wantProblem(t, s.api(marketer, http.MethodPost, "/api/imports/"+up.Job.ID+"/start", mapping), http.StatusConflict)

	ctx := context.Background()
	ada, err := s.ids.Lookup(ctx, identity.Key{Type: identity.Email, Value: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	var traits map[string]any
	_ = json.Unmarshal(ada.Person.Traits, &traits)
	if traits["name"] != "Ada Again" || traits["email"] != "ada@example.com" {
		t.Errorf("ada's traits = %v (the later row wins)", traits)
	}
	if crm := s.personOf("crm_id", "crm-1"); crm != ada.Person.ID {
		t.Errorf("crm-1 belongs to %s, not ada %s", crm, ada.Person.ID)
	}
	if u1, u2 := s.personOf(identity.UserID, "u-1"), s.personOf(identity.UserID, "u-2"); u1 == u2 {
		t.Error("two user ids were merged into one person")
	}
	// The rows are on the timeline, with the job's message ids.
	page := s.api(s.owner, http.MethodGet, "/api/people/"+ada.Person.ID+"/events", nil)
	if !bytes.Contains(page.body, []byte(`"import-`+up.Job.ID+`-1"`)) || !bytes.Contains(page.body, []byte(`"import-`+up.Job.ID+`-12"`)) {
		t.Errorf("ada's timeline lacks the import's identify calls: %s", page.body)
	}

	r = s.api(marketer, http.MethodGet, "/api/jobs/"+up.Job.ID+"/rejections", nil)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") || !strings.Contains(r.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("rejections: %d %v %s", r.status, r.header, r.body)
	}
	recs, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil {
		t.Fatalf("rejections are not CSV: %v\n%s", err, r.body)
	}
	if strings.Join(recs[0], "|") != "row|reason|E-mail|Name|User ID|CRM|Notes" || len(recs) != 5 {
		t.Fatalf("rejections = %q", recs)
	}
	for i, want := range []struct{ row, reason, first string }{
		{"3", "not a valid email address", "not-an-email"},
		{"4", "No identifier", ""},
		{"5", "placeholder value", "cy@example.com"},
		{"6", "longer than 8192 bytes", "dee@example.com"},
	} {
		got := recs[i+1]
		if got[0] != want.row || !strings.Contains(got[1], want.reason) || got[2] != want.first {
			t.Errorf("rejection %d = %q, want row %s with %q", i, got[:3], want.row, want.reason)
		}
	}
}

func TestImportRefusesBadMappings(t *testing.T) {
	s := newTestStack(t)
	r := s.upload(s.owner, "email,name,crm\na@example.com,A,1\n")
	var up uploadJSON
	r.json(t, &up)
	for _, tc := range []struct {
		name    string
		mapping string
		detail  string
	}{
		{"no mapping", `{}`, `"mapping" is required`},
		{"no identifier", `{"mapping":{"email":"trait:email_address","name":"trait:name"}}`, "no identifier column"},
		{"unknown header", `{"mapping":{"mail":"identifier:email"}}`, `column "mail", which the file does not have`},
		{"unknown target", `{"mapping":{"email":"identifier:fax"}}`, `"identifier:fax" is not a mapping`},
		{"email twice", `{"mapping":{"email":"identifier:email","name":"identifier:email"}}`, "both map to identifier email"},
		{"trait twice", `{"mapping":{"email":"identifier:email","name":"trait:x","crm":"trait:x"}}`, `both map to trait "x"`},
		{"email as a trait", `{"mapping":{"name":"identifier:user_id","email":"trait:email"}}`, "map it as identifier:email"},
		{"bad external type", `{"mapping":{"crm":"identifier:external:CRM ID"}}`, "external id type"},
		{"anonymous id", `{"mapping":{"crm":"identifier:external:anonymous_id"}}`, "anonymous ids"},
		{"empty trait name", `{"mapping":{"email":"identifier:email","name":"trait:"}}`, "trait name"},
		{"unknown field", `{"mapping":{"email":"identifier:email"},"dry_run":true}`, "does not take"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := wantProblem(t, s.api(s.owner, http.MethodPost, "/api/imports/"+up.Job.ID+"/start", tc.mapping), http.StatusBadRequest)
			if !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("detail = %q, want it to mention %q", p.Detail, tc.detail)
			}
		})
	}
	// Nothing was started by the refusals.
	var j jobJSON
	s.api(s.owner, http.MethodGet, "/api/jobs/"+up.Job.ID, nil).json(t, &j)
	if j.Status != "uploaded" || j.Mapping != nil {
		t.Errorf("job after refused starts = %+v", j)
	}
	wantProblem(t, s.api(s.owner, http.MethodPost, "/api/imports/job_nope/start", `{"mapping":{"email":"identifier:email"}}`), http.StatusNotFound)
}

func TestImportRefusesMalformedFiles(t *testing.T) {
	s := newTestStack(t)
	for _, tc := range []struct {
		name, body, detail string
	}{
		{"empty", "", "empty"},
		{"header only", "email,name\n", "no rows"},
		{"bare quote", "email,name\na@example.com,A\nb@example.com,B \"quoted\" wrong\n", "line 3"},
		{"unclosed quote", "email,name\na@example.com,\"A\n", "line 2"},
		{"column count", "email,name\na@example.com,A\nb@example.com\n", "Line 3 has a different number of columns"},
		{"not UTF-8", "email,name\na@example.com,\xff\xfe\n", "not valid UTF-8 (line 2)"},
		{"duplicate header", "email,email\na,b\n", "both named"},
		{"empty header", "email,,name\na,b,c\n", "Column 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := wantProblem(t, s.upload(s.owner, tc.body), http.StatusBadRequest)
			if !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("detail = %q, want it to mention %q", p.Detail, tc.detail)
			}
		})
	}
	wantProblem(t, s.do(http.MethodPost, "/api/imports", []byte("email\na@example.com\n"), "Authorization", "Bearer "+s.owner, "Content-Type", "application/json"), http.StatusBadRequest)
	var list struct {
		Data []jobJSON `json:"data"`
	}
	s.api(s.owner, http.MethodGet, "/api/jobs", nil).json(t, &list)
	if len(list.Data) != 0 {
		t.Errorf("refused uploads stored jobs: %+v", list.Data)
	}
}

func TestImportTooLarge(t *testing.T) {
	s := newTestStack(t)
	body := make([]byte, 50<<20+1)
	copy(body, "email\n")
	for i := 6; i < len(body); i++ {
		body[i] = 'a'
	}
	p := wantProblem(t, s.upload(s.owner, string(body)), http.StatusRequestEntityTooLarge)
	if !strings.Contains(p.Detail, "50 MB") {
		t.Errorf("detail = %q", p.Detail)
	}
}

func TestExportsPeopleAndEvents(t *testing.T) {
	s := newTestStack(t)
	s.ingest(`{"type":"identify","userId":"u-1","traits":{"email":"ada@example.com","name":"=HYPERLINK(\"http://evil\")"},"messageId":"m1"}`,
		`{"type":"track","userId":"u-1","event":"Signed Up","messageId":"m2"}`,
		`{"type":"track","anonymousId":"anon-2","event":"Viewed","messageId":"m3"}`)
	developer := s.token("dev", auth.RoleDeveloper)

	r := s.api(developer, http.MethodPost, "/api/exports", map[string]string{"kind": "people", "format": "csv"})
	if r.status != http.StatusAccepted {
		t.Fatalf("export: %d %s", r.status, r.body)
	}
	var j jobJSON
	r.json(t, &j)
	if j.Kind != "export" || j.Target != "people" || j.Format != "csv" || j.Status != "queued" {
		t.Errorf("queued export = %+v", j)
	}
	j = s.waitJob(developer, j.ID)
	if j.Status != "done" || j.RowsDone != 2 || j.RowsTotal != 2 {
		t.Fatalf("people export = %+v", j)
	}
	r = s.api(developer, http.MethodGet, "/api/jobs/"+j.ID+"/download", nil)
	if r.status != 200 || r.header.Get("Content-Disposition") != `attachment; filename="people-`+j.ID+`.csv"` {
		t.Fatalf("download: %d %v", r.status, r.header)
	}
	recs, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil || len(recs) != 3 || recs[0][0] != "id" {
		t.Fatalf("people CSV (%v): %s", err, r.body)
	}
	found := false
	for _, rec := range recs[1:] {
		if rec[1] == "u-1" {
			found = true
			if rec[2] != "ada@example.com" || !strings.Contains(rec[8], `"=HYPERLINK`) {
				t.Errorf("ada's row = %q", rec)
			}
		}
	}
	if !found {
		t.Errorf("no row for u-1: %s", r.body)
	}

	r = s.api(developer, http.MethodPost, "/api/exports", map[string]string{"kind": "events", "format": "ndjson"})
	r.json(t, &j)
	j = s.waitJob(developer, j.ID)
	r = s.api(developer, http.MethodGet, "/api/jobs/"+j.ID+"/download", nil)
	if r.status != 200 || r.header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("events download: %d %v", r.status, r.header)
	}
	var ids []string
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		var ev struct {
			MessageID string `json:"message_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		ids = append(ids, ev.MessageID)
	}
	if strings.Join(ids, ",") != "m1,m2,m3" {
		t.Errorf("exported events = %v, want m1,m2,m3 in order", ids)
	}

	// Refusals: bad input, an unfinished or import job's download.
	wantProblem(t, s.api(developer, http.MethodPost, "/api/exports", map[string]string{"kind": "merges", "format": "csv"}), http.StatusBadRequest)
	wantProblem(t, s.api(developer, http.MethodPost, "/api/exports", map[string]string{"kind": "people", "format": "xlsx"}), http.StatusBadRequest)
	var up uploadJSON
	s.upload(s.owner, "email\na@example.com\n").json(t, &up)
	wantProblem(t, s.api(s.owner, http.MethodGet, "/api/jobs/"+up.Job.ID+"/download", nil), http.StatusConflict)
	wantProblem(t, s.api(s.owner, http.MethodGet, "/api/jobs/"+j.ID+"/rejections", nil), http.StatusConflict)
}

func TestJobPermissionsAndCancel(t *testing.T) {
	s := newTestStack(t)
	support := s.token("support", auth.RoleSupport)
	marketer := s.token("marketer", auth.RoleMarketer)

	// Support may neither import nor export.
	wantProblem(t, s.upload(support, "email\na@example.com\n"), http.StatusForbidden)
	wantProblem(t, s.api(support, http.MethodPost, "/api/exports", map[string]string{"kind": "people", "format": "csv"}), http.StatusForbidden)

	var up uploadJSON
	s.upload(marketer, "email\na@example.com\n").json(t, &up)
	wantProblem(t, s.api(support, http.MethodPost, "/api/imports/"+up.Job.ID+"/start", `{"mapping":{"email":"identifier:email"}}`), http.StatusForbidden)
	var ex jobJSON
	s.api(marketer, http.MethodPost, "/api/exports", map[string]string{"kind": "events", "format": "csv"}).json(t, &ex)
	ex = s.waitJob(marketer, ex.ID)

	// Everyone who reads people sees every staff member's jobs, newest first.
	var list struct {
		Data []jobJSON `json:"data"`
		Next string    `json:"next"`
	}
	r := s.api(support, http.MethodGet, "/api/jobs", nil)
	r.json(t, &list)
	if r.status != 200 || len(list.Data) != 2 || list.Data[0].ID != ex.ID || list.Data[1].ID != up.Job.ID {
		t.Fatalf("support's job list: %d %s", r.status, r.body)
	}
	s.api(support, http.MethodGet, "/api/jobs?limit=1", nil).json(t, &list)
	if len(list.Data) != 1 || list.Next != ex.ID {
		t.Errorf("first page of one: %+v next %q", list.Data, list.Next)
	}
	s.api(support, http.MethodGet, "/api/jobs?limit=1&before="+list.Next, nil).json(t, &list)
	if len(list.Data) != 1 || list.Data[0].ID != up.Job.ID {
		t.Errorf("second page: %+v", list.Data)
	}
	wantProblem(t, s.api(support, http.MethodGet, "/api/jobs?limit=0", nil), http.StatusBadRequest)
	wantProblem(t, s.api(support, http.MethodGet, "/api/jobs/"+ex.ID+"/download", nil), http.StatusForbidden)
	wantProblem(t, s.api(support, http.MethodGet, "/api/jobs/"+up.Job.ID+"/rejections", nil), http.StatusForbidden)
	wantProblem(t, s.api(support, http.MethodPost, "/api/jobs/"+up.Job.ID+"/cancel", nil), http.StatusForbidden)

	// Cancel: an uploaded import is cancelled once; it can no longer start.
	var c jobJSON
	r = s.api(marketer, http.MethodPost, "/api/jobs/"+up.Job.ID+"/cancel", nil)
	r.json(t, &c)
	if r.status != 200 || c.Status != "cancelled" || c.FinishedAt == nil {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	if r := s.api(marketer, http.MethodPost, "/api/jobs/"+up.Job.ID+"/cancel", nil); r.status != 200 {
		t.Errorf("second cancel: %d %s", r.status, r.body)
	}
	wantProblem(t, s.api(marketer, http.MethodPost, "/api/imports/"+up.Job.ID+"/start", `{"mapping":{"email":"identifier:email"}}`), http.StatusConflict)
	wantProblem(t, s.api(marketer, http.MethodPost, "/api/jobs/"+ex.ID+"/cancel", nil), http.StatusConflict)
	wantProblem(t, s.api(marketer, http.MethodGet, "/api/jobs/job_nope", nil), http.StatusNotFound)
}

// TestImportLarge imports 10,000 rows through the HTTP API and reports the
// rate (this stack's SQLite runs with synchronous=OFF; docs/benchmarks.md
// has the FULL figure).
func TestImportLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 rows")
	}
	s := newTestStack(t)
	var b strings.Builder
	b.WriteString("email,first name,plan,company\n")
	for i := range 10000 {
		fmt.Fprintf(&b, "person%05d@example.com,Name %d,plan-%d,Company %d\n", i, i, i%4, i%97)
	}
	var up uploadJSON
	s.upload(s.owner, b.String()).json(t, &up)
	start := time.Now()
	s.api(s.owner, http.MethodPost, "/api/imports/"+up.Job.ID+"/start", `{"mapping":{"email":"identifier:email","first name":"trait:first_name","plan":"trait:plan","company":"trait:company"}}`)
	j := s.waitJob(s.owner, up.Job.ID)
	d := time.Since(start)
	if j.Status != "done" || j.RowsDone != 10000 || j.RowsRejected != 0 {
		t.Fatalf("job = %+v", j)
	}
	n, err := s.db.Reader().CountPersons(context.Background())
	if err != nil || n != 10000 {
		t.Fatalf("persons = %d, %v", n, err)
	}
	t.Logf("imported 10,000 rows in %s: %.0f rows/s", d.Round(time.Millisecond), 10000/d.Seconds())
}
