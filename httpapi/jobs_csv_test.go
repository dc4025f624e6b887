package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/onramp-dev/onramp/auth"
)

const evilFormula = `=HYPERLINK("http://evil")`

// exportFile runs an export to the end and returns its file.
func (s *testStack) exportFile(token, kind, format string) []byte {
	s.t.Helper()
	r := s.api(token, http.MethodPost, "/api/exports", map[string]string{"kind": kind, "format": format})
	if r.status != http.StatusAccepted {
		s.t.Fatalf("export %s %s: %d %s", kind, format, r.status, r.body)
	}
	var j jobJSON
	r.json(s.t, &j)
	if j = s.waitJob(token, j.ID); j.Status != "done" {
		s.t.Fatalf("export %s %s = %+v", kind, format, j)
	}
	r = s.api(token, http.MethodGet, "/api/jobs/"+j.ID+"/download", nil)
	if r.status != http.StatusOK {
		s.t.Fatalf("download: %d %s", r.status, r.body)
	}
	return r.body
}

// csvRows reads a CSV file into rows keyed by the header's names.
func csvRows(t *testing.T, b []byte) []map[string]string {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || len(recs) == 0 {
		t.Fatalf("not CSV (%v): %s", err, b)
	}
	var out []map[string]string
	for _, rec := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = rec[i]
		}
		out = append(out, m)
	}
	return out
}

// TestCSVFilesAreInertInSpreadsheets: cells of CSV exports and of the
// rejected-rows file that a spreadsheet would run as a formula (they start
// with = + - @, a tab or a carriage return; OWASP "CSV injection") come
// out with a leading apostrophe, whoever wrote them (a public write key,
// an uploaded file). NDJSON exports keep every value as it was sent.
func TestCSVFilesAreInertInSpreadsheets(t *testing.T) {
	s := newTestStack(t)
	s.ingest(`{"type":"identify","userId":"=HYPERLINK(\"http://evil\")","traits":{"email":"eve@example.com","phone":"+15551234567","name":"=HYPERLINK(\"http://evil\")"},"messageId":"m1"}`,
		`{"type":"track","userId":"=HYPERLINK(\"http://evil\")","event":"=HYPERLINK(\"http://evil\")","properties":{"plan":"@pro"},"messageId":"m2"}`,
		`{"type":"track","anonymousId":"@anon","event":"-2+3","messageId":"m3"}`)
	developer := s.token("dev", auth.RoleDeveloper)

	var eve map[string]string
	for _, p := range csvRows(t, s.exportFile(developer, "people", "csv")) {
		if p["email"] == "eve@example.com" {
			eve = p
		}
	}
	if eve == nil {
		t.Fatal("no row for eve in the people CSV")
	}
	if eve["user_id"] != "'"+evilFormula || eve["phone"] != "'+15551234567" || eve["email"] != "eve@example.com" {
		t.Errorf("eve's cells user_id %q phone %q email %q; want a leading apostrophe on the first two only", eve["user_id"], eve["phone"], eve["email"])
	}
	// The trait is inside the traits cell's JSON, which starts with {:
	// inert already, and kept exact so that it still parses.
	var traits map[string]string
	if err := json.Unmarshal([]byte(eve["traits"]), &traits); err != nil || traits["name"] != evilFormula {
		t.Errorf("traits cell %q (%v), want JSON with name %s", eve["traits"], err, evilFormula)
	}

	evs := csvRows(t, s.exportFile(developer, "events", "csv"))
	got := map[string]map[string]string{}
	for _, e := range evs {
		got[e["message_id"]] = e
	}
	if e := got["m2"]; e == nil || e["event"] != "'"+evilFormula || e["user_id"] != "'"+evilFormula || e["properties"] != `{"plan":"@pro"}` {
		t.Errorf("m2 = %q", e)
	}
	if e := got["m3"]; e == nil || e["event"] != "'-2+3" || e["anonymous_id"] != "'@anon" {
		t.Errorf("m3 = %q", e)
	}

	// NDJSON is for programs: unchanged.
	sc := bufio.NewScanner(bytes.NewReader(s.exportFile(developer, "people", "ndjson")))
	found := false
	for sc.Scan() {
		var line struct {
			UserID string            `json:"user_id"`
			Traits map[string]string `json:"traits"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("people NDJSON line %q: %v", sc.Text(), err)
		}
		if line.Traits["email"] == "eve@example.com" {
			found = true
			if line.UserID != evilFormula || line.Traits["name"] != evilFormula || line.Traits["phone"] != "+15551234567" {
				t.Errorf("eve in NDJSON = %+v, want the values as sent", line)
			}
		}
	}
	if !found {
		t.Error("no line for eve in the people NDJSON")
	}
	sc = bufio.NewScanner(bytes.NewReader(s.exportFile(developer, "events", "ndjson")))
	events := map[string]string{}
	for sc.Scan() {
		var ev struct {
			MessageID   string `json:"message_id"`
			Event       string `json:"event"`
			AnonymousID string `json:"anonymous_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("events NDJSON line %q: %v", sc.Text(), err)
		}
		events[ev.MessageID] = ev.Event + "|" + ev.AnonymousID
	}
	if events["m2"] != evilFormula+"|" || events["m3"] != "-2+3|@anon" {
		t.Errorf("events NDJSON = %q", events)
	}

	// The rejected rows come back under the file's own headers, guarded
	// too: an uploaded file is anyone's.
	var up uploadJSON
	s.upload(s.owner, "email,@note\n"+`"=HYPERLINK(""http://evil"")",-1+2`+"\n"+"not-an-email,\"\t=1\"\nok@example.com,fine\n").json(t, &up)
	if r := s.api(s.owner, http.MethodPost, "/api/imports/"+up.Job.ID+"/start", map[string]any{"mapping": map[string]string{"email": "identifier:email", "@note": "ignore"}}); r.status != http.StatusAccepted {
		t.Fatalf("start: %d %s", r.status, r.body)
	}
	if j := s.waitJob(s.owner, up.Job.ID); j.Status != "done" || j.RowsRejected != 2 {
		t.Fatalf("import = %+v", j)
	}
	r := s.api(s.owner, http.MethodGet, "/api/jobs/"+up.Job.ID+"/rejections", nil)
	recs, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil || len(recs) != 3 {
		t.Fatalf("rejections (%v): %q", err, r.body)
	}
	if recs[0][3] != "'@note" {
		t.Errorf("rejections header = %q, want the @note column guarded", recs[0])
	}
	if recs[1][2] != "'"+evilFormula || recs[1][3] != "'-1+2" {
		t.Errorf("rejected row 1 = %q", recs[1])
	}
	if recs[2][2] != "not-an-email" || recs[2][3] != "'\t=1" {
		t.Errorf("rejected row 2 = %q", recs[2])
	}
}
