package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/onramp-dev/onramp/identity"
)

func TestAPIPeople(t *testing.T) {
	s := newTestStack(t)
	var msgs []string
	for i := range 60 {
		plan := "free"
		if i%3 == 0 {
			plan = "pro"
		}
		msgs = append(msgs, fmt.Sprintf(`{"type":"identify","userId":"user-%02d","anonymousId":"anon-%02d","traits":{"email":"person%02d@example.com","plan":"%s","age":%d,"vip":%v}}`, i, i, i, plan, 20+i, i == 7))
	}
	s.ingest(msgs...)
	list := func(t *testing.T, query string) ([]personJSON, string) {
		t.Helper()
		r := s.api(s.owner, "GET", "/api/people"+query, nil)
		if r.status != 200 {
			t.Fatalf("GET /api/people%s = %d %s", query, r.status, r.body)
		}
		var out struct {
			Data []personJSON `json:"data"`
			Next string       `json:"next"`
		}
		r.json(t, &out)
		return out.Data, out.Next
	}
	tests := []struct {
		name  string
		query string
		want  int
	}{
		{"default page", "", 50},
		{"search by user id", "?q=user-07", 1},
		{"search by anonymous id", "?q=anon-08", 1},
		{"search by email", "?q=person09@example.com", 1},
		{"search by email prefix", "?q=person1", 10},
		{"search by email prefix in other case", "?q=PERSON1", 10},
		{"search finds nobody", "?q=nobody", 0},
		{"trait filter", "?trait=plan:pro&limit=100", 20},
		{"trait filter on a number", "?trait=age:30", 1},
		{"trait filter on a boolean", "?trait=vip:true", 1},
		{"trait filter with search", "?trait=plan:pro&q=person0", 4},
		{"seen after the future", "?seen_after=2999-01-01T00:00:00Z", 0},
		{"seen before the future", "?seen_before=2999-01-01T00:00:00Z&limit=100", 60},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := list(t, tc.query)
			if len(got) != tc.want {
				t.Errorf("%d people, want %d", len(got), tc.want)
			}
		})
	}
	t.Run("pagination visits everyone once", func(t *testing.T) {
		seen := map[string]bool{}
		cursor, pages := "", 0
		for {
			q := "?limit=7"
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor)
			}
			page, next := list(t, q)
			pages++
			for _, p := range page {
				if seen[p.ID] {
					t.Fatalf("person %s on two pages", p.ID)
				}
				seen[p.ID] = true
			}
			if next == "" || pages > 20 {
				break
			}
			cursor = next
		}
		if len(seen) != 60 {
			t.Errorf("visited %d people in %d pages, want 60", len(seen), pages)
		}
	})
	t.Run("a limit above the maximum still pages", func(t *testing.T) {
		got, next := list(t, "?limit=1000")
		if len(got) < 60 && next == "" {
			t.Errorf("limit=1000 returned %d of 60 people and no next cursor: the rest cannot be reached", len(got))
		}
	})
	// Each problem names the parameter that is wrong.
	for q, names := range map[string]string{
		"?trait=plan": "trait", "?trait=:x": "trait", "?limit=abc": "limit", "?limit=-1": "limit",
		"?seen_after=yesterday": "seen_after", "?seen_before=1": "seen_before", "?q=ada&limit=10&seen_before=soon": "seen_before",
	} {
		t.Run("bad query "+q, func(t *testing.T) {
			p := wantProblem(t, s.api(s.owner, "GET", "/api/people"+q, nil), 400)
			if !strings.Contains(p.Detail, names) {
				t.Errorf("the problem does not name %s: %q", names, p.Detail)
			}
		})
	}
	t.Run("unknown person", func(t *testing.T) {
		for _, p := range []string{"/api/people/per_nope", "/api/people/per_nope/events", "/api/people/per_nope/merges", "/api/people/per_nope/export"} {
			wantProblem(t, s.api(s.owner, "GET", p, nil), 404)
		}
		wantProblem(t, s.api(s.owner, "DELETE", "/api/people/per_nope", nil), 404)
		wantProblem(t, s.api(s.owner, "POST", "/api/people/per_nope/suppress", nil), 404)
	})
}

func TestAPIPersonEvents(t *testing.T) {
	s := newTestStack(t)
	s.ingest(
		`{"type":"page","anonymousId":"a1","name":"Home","messageId":"e1","timestamp":"2024-05-01T10:00:00Z"}`,
		`{"type":"track","anonymousId":"a1","event":"Signed Up","messageId":"e2","timestamp":"2024-05-01T10:01:00Z"}`,
		`{"type":"track","anonymousId":"a1","event":"Clicked","messageId":"e3","timestamp":"2024-05-01T10:02:00Z"}`,
		`{"type":"identify","anonymousId":"a1","userId":"u1","messageId":"e4","timestamp":"2024-05-01T10:03:00Z"}`,
		`{"type":"track","userId":"u1","event":"Signed Up","messageId":"e5","timestamp":"2024-05-01T10:04:00Z"}`,
		`{"type":"page","anonymousId":"other","name":"Home","messageId":"x1","timestamp":"2024-05-01T10:05:00Z"}`,
	)
	// A second device joins later: its earlier event is on the timeline.
	s.ingest(`{"type":"track","anonymousId":"a2","event":"Clicked","messageId":"e0","timestamp":"2024-05-01T09:00:00Z"}`)
	s.ingest(`{"type":"identify","anonymousId":"a2","userId":"u1","messageId":"e6","timestamp":"2024-05-01T10:06:00Z"}`)
	person := s.personOf(identity.UserID, "u1")
	get := func(t *testing.T, query string) eventsPage {
		t.Helper()
		r := s.api(s.owner, "GET", "/api/people/"+person+"/events"+query, nil)
		if r.status != 200 {
			t.Fatalf("events%s = %d %s", query, r.status, r.body)
		}
		var p eventsPage
		r.json(t, &p)
		return p
	}
	ids := func(p eventsPage) []string {
		var out []string
		for _, e := range p.Data {
			out = append(out, e.MessageID)
		}
		return out
	}
	tests := []struct {
		name  string
		query string
		want  []string // newest first
	}{
		{"all, newest first", "", []string{"e6", "e5", "e4", "e3", "e2", "e1", "e0"}},
		{"by type", "?type=track", []string{"e5", "e3", "e2", "e0"}},
		{"by two types", "?type=page,identify", []string{"e6", "e4", "e1"}},
		{"by type repeated", "?type=page&type=identify", []string{"e6", "e4", "e1"}},
		{"by event name", "?event=Signed%20Up", []string{"e5", "e2"}},
		{"by page name", "?event=Home", []string{"e1"}},
		{"from inclusive, to exclusive", "?from=2024-05-01T10:01:00Z&to=2024-05-01T10:04:00Z", []string{"e4", "e3", "e2"}},
		{"by property", "?property=" + s.prop.ID, []string{"e6", "e5", "e4", "e3", "e2", "e1", "e0"}},
		{"nothing matches", "?type=screen", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := get(t, tc.query)
			if got := ids(p); !slices.Equal(got, tc.want) {
				t.Errorf("events = %v, want %v", got, tc.want)
			}
			if p.Data == nil {
				t.Errorf("data is null, want a list")
			}
			for _, e := range p.Data {
				if e.PersonID != person {
					t.Errorf("event %s shows person %s, want the profile's %s", e.MessageID, e.PersonID, person)
				}
			}
		})
	}
	t.Run("cursor paging", func(t *testing.T) {
		var all []string
		cursor, pages := "", 0
		for {
			q := "?limit=3"
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor)
			}
			p := get(t, q)
			pages++
			all = append(all, ids(p)...)
			if p.Cursor.HasMore != (p.Cursor.Next != "") {
				t.Errorf("has_more %v with next %q", p.Cursor.HasMore, p.Cursor.Next)
			}
			if !p.Cursor.HasMore || pages > 10 {
				break
			}
			cursor = p.Cursor.Next
		}
		if want := []string{"e6", "e5", "e4", "e3", "e2", "e1", "e0"}; !slices.Equal(all, want) || pages != 3 {
			t.Errorf("paged = %v in %d pages, want %v in 3", all, pages, want)
		}
	})
	t.Run("paging with a filter", func(t *testing.T) {
		p := get(t, "?type=track&limit=2")
		q := "?type=track&limit=2&cursor=" + url.QueryEscape(p.Cursor.Next)
		if got := append(ids(p), ids(get(t, q))...); !slices.Equal(got, []string{"e5", "e3", "e2", "e0"}) {
			t.Errorf("paged = %v", got)
		}
	})
	t.Run("the same timeline through a merged person's id", func(t *testing.T) {
		merged := s.personOf(identity.AnonymousID, "a2")
		var pid string
		for _, e := range get(t, "").Data {
			if e.MessageID == "e0" {
				pid = e.PersonID
			}
		}
		_ = merged
		r := s.api(s.owner, "GET", "/api/people/"+pid+"/events", nil)
		var p eventsPage
		r.json(t, &p)
		if len(p.Data) != 7 {
			t.Errorf("timeline through %s has %d events, want 7", pid, len(p.Data))
		}
	})
	for _, q := range []string{"?cursor=garbage", "?from=yesterday", "?to=x", "?limit=x"} {
		t.Run("bad query "+q, func(t *testing.T) {
			wantProblem(t, s.api(s.owner, "GET", "/api/people/"+person+"/events"+q, nil), 400)
		})
	}
	t.Run("unknown property filter", func(t *testing.T) {
		wantProblem(t, s.api(s.owner, "GET", "/api/people/"+person+"/events?property=prp_nope", nil), 404)
	})
}

func TestAPIMergeDeleteSuppress(t *testing.T) {
	s := newTestStack(t)
	s.ingest(
		`{"type":"identify","anonymousId":"a1","traits":{"name":"Ada"},"messageId":"m1"}`,
		`{"type":"identify","anonymousId":"a2","traits":{"plan":"pro"},"messageId":"m2"}`,
		`{"type":"identify","anonymousId":"a3","userId":"u3","messageId":"m3"}`,
		`{"type":"identify","anonymousId":"a4","userId":"u4","messageId":"m4"}`,
	)
	p1, p2 := s.personOf(identity.AnonymousID, "a1"), s.personOf(identity.AnonymousID, "a2")
	p3, p4 := s.personOf(identity.UserID, "u3"), s.personOf(identity.UserID, "u4")

	var mergeID string
	t.Run("merge", func(t *testing.T) {
		r := s.api(s.owner, "POST", "/api/people/"+p1+"/merge", map[string]any{"from": p2})
		var m struct {
			ID     string `json:"id"`
			From   string `json:"from_person_id"`
			Into   string `json:"into_person_id"`
			Reason string `json:"reason"`
			Actor  string `json:"actor"`
		}
		r.json(t, &m)
		if r.status != 200 || m.From != p2 || m.Into != p1 || m.Reason != "manual" || !strings.HasPrefix(m.Actor, "token:") {
			t.Fatalf("merge = %d %s", r.status, r.body)
		}
		mergeID = m.ID
		prof, _ := s.getProfile(s.owner, p2)
		if prof.Person.ID != p1 || prof.Person.Traits["plan"] != "pro" || prof.Person.Traits["name"] != "Ada" || !slices.Equal(prof.MergedIDs, []string{p2}) {
			t.Errorf("after merge GET %s = %+v", p2, prof)
		}
		r = s.api(s.owner, "GET", "/api/people/"+p1+"/merges", nil)
		var ms struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		r.json(t, &ms)
		if len(ms.Data) != 1 || ms.Data[0].ID != mergeID {
			t.Errorf("merges = %s", r.body)
		}
		r = s.api(s.owner, "GET", "/api/people/"+p1+"/events", nil)
		var ev eventsPage
		r.json(t, &ev)
		if len(ev.Data) != 2 {
			t.Errorf("merged timeline has %d events, want 2", len(ev.Data))
		}
	})
	t.Run("merge refused", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			into   string
			body   any
			status int
		}{
			{"two user ids", p3, map[string]any{"from": p4}, 409},
			{"already one person", p1, map[string]any{"from": p2}, 409},
			{"unknown from", p1, map[string]any{"from": "per_nope"}, 404},
			{"unknown into", "per_nope", map[string]any{"from": p1}, 404},
			{"no from", p1, map[string]any{}, 400},
			{"unknown field", p1, `{"from":"` + p2 + `","force":true}`, 400},
		} {
			t.Run(c.name, func(t *testing.T) {
				wantProblem(t, s.api(s.owner, "POST", "/api/people/"+c.into+"/merge", c.body), c.status)
			})
		}
	})
	t.Run("undo", func(t *testing.T) {
		r := s.api(s.owner, "POST", "/api/merges/"+mergeID+"/undo", nil)
		if r.status != 200 {
			t.Fatalf("undo = %d %s", r.status, r.body)
		}
		prof1, _ := s.getProfile(s.owner, p1)
		prof2, _ := s.getProfile(s.owner, p2)
		if prof2.Person.ID != p2 || prof1.Person.Traits["plan"] != nil || prof2.Person.Traits["plan"] != "pro" || len(prof1.MergedIDs) != 0 {
			t.Errorf("after undo: %+v / %+v", prof1, prof2)
		}
		wantProblem(t, s.api(s.owner, "POST", "/api/merges/"+mergeID+"/undo", nil), 409)
		wantProblem(t, s.api(s.owner, "POST", "/api/merges/mrg_nope/undo", nil), 404)
	})
	t.Run("conflicts", func(t *testing.T) {
		s.ingest(`{"type":"identify","anonymousId":"a3","userId":"u-other","messageId":"c1"}`)
		r := s.api(s.owner, "GET", "/api/conflicts", nil)
		var out struct {
			Data []struct {
				PersonIDs []string `json:"person_ids"`
				MessageID string   `json:"message_id"`
			} `json:"data"`
		}
		r.json(t, &out)
		if len(out.Data) != 1 || !slices.Contains(out.Data[0].PersonIDs, p3) || out.Data[0].MessageID != "c1" {
			t.Errorf("conflicts = %s", r.body)
		}
	})
	t.Run("suppress and unsuppress", func(t *testing.T) {
		r := s.api(s.owner, "POST", "/api/people/"+p3+"/suppress", nil)
		var sup struct {
			Suppressed []identity.Key `json:"suppressed"`
		}
		r.json(t, &sup)
		if r.status != 200 || len(sup.Suppressed) != 2 {
			t.Fatalf("suppress = %d %s", r.status, r.body)
		}
		before := s.eventCount()
		// The write key is public: the answer must not tell that u3 is
		// suppressed, so it looks accepted; nothing is stored.
		r = s.track("/v1/track", `{"event":"x","userId":"u3","messageId":"after-suppress"}`)
		var cr collectResponse
		r.json(t, &cr)
		if r.status != 200 || cr.Accepted != 1 || len(cr.Rejected) != 0 || bytes.Contains(r.body, []byte("suppress")) {
			t.Errorf("suppressed event answer = %d %s, want it to look accepted", r.status, r.body)
		}
		if s.eventCount() != before {
			t.Errorf("a suppressed event was stored")
		}
		r = s.api(s.owner, "GET", "/api/rejections", nil)
		if !bytes.Contains(r.body, []byte(`"code":"suppressed"`)) || !bytes.Contains(r.body, []byte(`"after-suppress"`)) {
			t.Errorf("the suppressed event is not in the rejected-events log: %s", r.body)
		}
		wantProblem(t, s.api(s.owner, "POST", "/api/unsuppress", map[string]any{"identifiers": []any{}}), 400)
		wantProblem(t, s.api(s.owner, "POST", "/api/unsuppress", map[string]any{"identifiers": []any{map[string]any{"type": "email", "value": "not-an-email"}}}), 400)
		r = s.api(s.owner, "POST", "/api/unsuppress", map[string]any{"identifiers": sup.Suppressed})
		if r.status != 200 {
			t.Fatalf("unsuppress = %d %s", r.status, r.body)
		}
		if r := s.track("/v1/track", `{"event":"x","userId":"u3","messageId":"after-suppress"}`); r.status != 200 {
			t.Errorf("after unsuppress: %d %s", r.status, r.body)
		}
	})
	t.Run("suppress with delete", func(t *testing.T) {
		r := s.api(s.owner, "POST", "/api/people/"+p4+"/suppress", map[string]any{"delete": true})
		if r.status != 200 {
			t.Fatalf("suppress = %d %s", r.status, r.body)
		}
		_, r = s.getProfile(s.owner, p4)
		wantProblem(t, r, 404)
		before := s.eventCount()
		if r := s.track("/v1/track", `{"event":"x","anonymousId":"a4"}`); r.status != 200 || s.eventCount() != before {
			t.Errorf("suppressed event: %d %s, %d events stored", r.status, r.body, s.eventCount()-before)
		}
	})
	t.Run("delete", func(t *testing.T) {
		before := s.eventCount()
		r := s.api(s.owner, "DELETE", "/api/people/"+p1, nil)
		var out struct {
			Deleted []string `json:"deleted_person_ids"`
		}
		r.json(t, &out)
		if r.status != 200 || !slices.Equal(out.Deleted, []string{p1}) {
			t.Fatalf("delete = %d %s", r.status, r.body)
		}
		_, r = s.getProfile(s.owner, p1)
		wantProblem(t, r, 404)
		if got := s.eventCount(); got != before-1 {
			t.Errorf("events %d -> %d, want one fewer", before, got)
		}
		wantProblem(t, s.do("GET", "/v1/profiles/anonymous_id:a1/traits", nil, "Authorization", basic(s.prop.SecretKey)), 404)
		wantProblem(t, s.api(s.owner, "DELETE", "/api/people/"+p1, nil), 404)
	})
}

func TestAPIExport(t *testing.T) {
	s := newTestStack(t)
	s.ingest(`{"type":"identify","anonymousId":"a1","userId":"u1","traits":{"name":"Ada"},"messageId":"x1"}`,
		`{"type":"page","anonymousId":"a1","name":"Home","messageId":"x2"}`)
	s.ingest(`{"type":"page","anonymousId":"a2","name":"Docs","messageId":"x3"}`)
	s.ingest(`{"type":"identify","anonymousId":"a2","userId":"u1","messageId":"x4"}`)
	person := s.personOf(identity.UserID, "u1")
	r := s.api(s.owner, "GET", "/api/people/"+person+"/export", nil)
	if r.status != 200 {
		t.Fatalf("export = %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type = %q", ct)
	}
	if r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("export without X-Content-Type-Options: nosniff")
	}
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	sc.Buffer(nil, 1<<20)
	var lines []map[string]json.RawMessage
	for sc.Scan() {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d is not JSON: %s", len(lines)+1, sc.Bytes())
		}
		lines = append(lines, m)
	}
	if len(lines) != 5 {
		t.Fatalf("%d lines, want 1 profile + 4 events: %s", len(lines), r.body)
	}
	if string(lines[0]["kind"]) != `"profile"` {
		t.Errorf("first line kind = %s, want profile", lines[0]["kind"])
	}
	var prof profileJSON
	if err := json.Unmarshal(lines[0]["profile"], &prof); err != nil || prof.Person.ID != person || len(prof.Identifiers) != 3 {
		t.Errorf("profile line = %s", lines[0]["profile"])
	}
	var mids []string
	for _, l := range lines[1:] {
		if string(l["kind"]) != `"event"` {
			t.Errorf("line kind = %s, want event", l["kind"])
		}
		var e struct {
			MessageID string `json:"message_id"`
		}
		_ = json.Unmarshal(l["event"], &e)
		mids = append(mids, e.MessageID)
	}
	sort.Strings(mids)
	if !slices.Equal(mids, []string{"x1", "x2", "x3", "x4"}) {
		t.Errorf("exported events = %v", mids)
	}
}

func TestProfileAPI(t *testing.T) {
	s := newTestStack(t)
	s.ingest(`{"type":"identify","anonymousId":"a1","userId":"u1","traits":{"email":"Ada@Example.com","name":"Ada"},"context":{"externalIds":[{"id":"cus_1","type":"stripe_customer_id"}]}}`,
		`{"type":"track","userId":"u1","event":"Paid"}`)
	secret := basic(s.prop.SecretKey)
	tests := []struct {
		name   string
		path   string
		auth   []string
		status int
		check  func(t *testing.T, r reply)
	}{
		{name: "traits by user id", path: "/v1/profiles/user_id:u1/traits", auth: []string{"Authorization", secret}, status: 200, check: func(t *testing.T, r reply) {
			var out struct {
				Traits map[string]any `json:"traits"`
			}
			r.json(t, &out)
			if out.Traits["name"] != "Ada" {
				t.Errorf("traits = %s", r.body)
			}
		}},
		{name: "traits by email in any case", path: "/v1/profiles/email:ADA@example.com/traits", auth: []string{"Authorization", secret}, status: 200},
		{name: "traits by external id", path: "/v1/profiles/stripe_customer_id:cus_1/traits", auth: []string{"Authorization", secret}, status: 200},
		{name: "secret key as bearer", path: "/v1/profiles/anonymous_id:a1/traits", auth: []string{"Authorization", "Bearer " + s.prop.SecretKey}, status: 200},
		{name: "secret key as lower-case bearer", path: "/v1/profiles/anonymous_id:a1/traits", auth: []string{"Authorization", "bearer " + s.prop.SecretKey}, status: 200},
		{name: "identifiers", path: "/v1/profiles/user_id:u1/identifiers", auth: []string{"Authorization", secret}, status: 200, check: func(t *testing.T, r reply) {
			var out struct {
				Data []identity.Key `json:"data"`
			}
			r.json(t, &out)
			if len(out.Data) != 4 {
				t.Errorf("identifiers = %s", r.body)
			}
		}},
		{name: "external ids", path: "/v1/profiles/user_id:u1/external_ids", auth: []string{"Authorization", secret}, status: 200},
		{name: "events", path: "/v1/profiles/user_id:u1/events?type=track", auth: []string{"Authorization", secret}, status: 200, check: func(t *testing.T, r reply) {
			var p eventsPage
			r.json(t, &p)
			if len(p.Data) != 1 || p.Data[0].Event != "Paid" {
				t.Errorf("events = %s", r.body)
			}
		}},
		{name: "write key is not a secret key", path: "/v1/profiles/user_id:u1/traits", auth: []string{"Authorization", basic(s.prop.WriteKey)}, status: 401},
		{name: "API token is not a secret key", path: "/v1/profiles/user_id:u1/traits", auth: []string{"Authorization", "Bearer " + s.owner}, status: 401},
		{name: "no credentials", path: "/v1/profiles/user_id:u1/traits", status: 401, check: func(t *testing.T, r reply) {
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
			}
		}},
		{name: "no type", path: "/v1/profiles/u1/traits", auth: []string{"Authorization", secret}, status: 400},
		{name: "bad type", path: "/v1/profiles/User-ID:u1/traits", auth: []string{"Authorization", secret}, status: 400},
		{name: "no value", path: "/v1/profiles/user_id:/traits", auth: []string{"Authorization", secret}, status: 400},
		{name: "empty type", path: "/v1/profiles/:u1/traits", auth: []string{"Authorization", secret}, status: 400},
		{name: "unknown user", path: "/v1/profiles/user_id:nobody/traits", auth: []string{"Authorization", secret}, status: 404},
		{name: "placeholder value", path: "/v1/profiles/anonymous_id:undefined/traits", auth: []string{"Authorization", secret}, status: 404},
		{name: "unknown user's events", path: "/v1/profiles/user_id:nobody/events", auth: []string{"Authorization", secret}, status: 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do("GET", tc.path, nil, tc.auth...)
			if r.status != tc.status {
				t.Fatalf("status = %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.status >= 400 {
				wantProblem(t, r, tc.status)
			} else if r.header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type = %q", r.header.Get("Content-Type"))
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

// Trait values are data: whatever a visitor typed into a form comes back
// JSON-escaped, as JSON, never as something a browser would run.
func TestAPIScriptInTraitsStaysData(t *testing.T) {
	s := newTestStack(t)
	const evil = `<script>alert(1)</script>`
	s.ingest(`{"type":"identify","userId":"u-evil","traits":{"name":"` + evil + `","<img src=x onerror=alert(1)>":"k"}}`)
	person := s.personOf(identity.UserID, "u-evil")
	tests := []struct {
		name  string
		path  string
		auth  []string
		ctype string
	}{
		{"person", "/api/people/" + person, []string{"Authorization", "Bearer " + s.owner}, "application/json"},
		{"people list", "/api/people?q=u-evil", []string{"Authorization", "Bearer " + s.owner}, "application/json"},
		{"events", "/api/people/" + person + "/events", []string{"Authorization", "Bearer " + s.owner}, "application/json"},
		{"export", "/api/people/" + person + "/export", []string{"Authorization", "Bearer " + s.owner}, "application/x-ndjson"},
		{"profile traits", "/v1/profiles/user_id:u-evil/traits", []string{"Authorization", basic(s.prop.SecretKey)}, "application/json"},
		{"problem detail", "/api/" + url.PathEscape(evil), []string{"Authorization", "Bearer " + s.owner}, "application/problem+json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do("GET", tc.path, nil, tc.auth...)
			if ct := r.header.Get("Content-Type"); ct != tc.ctype {
				t.Errorf("Content-Type = %q, want %q", ct, tc.ctype)
			}
			if r.header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q, want nosniff", r.header.Get("X-Content-Type-Options"))
			}
			if bytes.Contains(r.body, []byte("<script>")) || bytes.Contains(r.body, []byte("<img")) {
				t.Errorf("markup comes back unescaped: %s", r.body)
			}
		})
	}
	t.Run("the value itself is kept exactly", func(t *testing.T) {
		prof, r := s.getProfile(s.owner, person)
		if r.status != 200 || prof.Person.Traits["name"] != evil || prof.Person.Traits["<img src=x onerror=alert(1)>"] != "k" {
			t.Errorf("traits = %v", prof.Person.Traits)
		}
		if !bytes.Contains(r.body, []byte(`\u003cscript\u003e`)) {
			t.Errorf("want the HTML-safe escape \\u003cscript\\u003e in %s", r.body)
		}
	})
}
