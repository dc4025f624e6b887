package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/identity"
)

// listedPerson is a person of GET /api/people.
type listedPerson struct {
	personJSON
	HasAccount *bool     `json:"has_account"`
	LastSeenAt time.Time `json:"last_seen_at"`
}

type peoplePage struct {
	Data []listedPerson `json:"data"`
	Next string         `json:"next"`
}

func (s *testStack) people(t *testing.T, token, query string) peoplePage {
	t.Helper()
	r := s.api(token, "GET", "/api/people"+query, nil)
	if r.status != 200 {
		t.Fatalf("GET /api/people%s = %d %s", query, r.status, r.body)
	}
	var p peoplePage
	r.json(t, &p)
	return p
}

func (s *testStack) trackWith(writeKey, body string) {
	s.t.Helper()
	r := s.do(http.MethodPost, "/v1/batch", []byte(body), "Authorization", basic(writeKey), "Content-Type", "application/json")
	if r.status != 200 {
		s.t.Fatalf("ingest: %d %s", r.status, r.body)
	}
}

// TestAPIPeopleConsole covers the console's list: name search, property
// and account filters, sorts, the cursor, has_account and the errors.
func TestAPIPeopleConsole(t *testing.T) {
	s := newTestStack(t)
	docs := s.createProperty("Docs")
	// One batch each: persons created in one commit share a first seen.
	s.ingest(`{"type":"identify","userId":"u-ada","traits":{"email":"ada@example.com","name":"Ada Lovelace"},"timestamp":"2026-01-01T10:00:00Z"}`)
	s.ingest(`{"type":"identify","userId":"u-grace","traits":{"email":"grace@example.com","first_name":"Grace","last_name":"Hopper"},"timestamp":"2026-01-01T11:00:00Z"}`)
	s.ingest(`{"type":"identify","anonymousId":"anon-x","traits":{"plan":"free"},"timestamp":"2026-01-01T12:00:00Z"}`)
	s.trackWith(docs.WriteKey, `{"batch":[{"type":"track","event":"Read","userId":"u-grace","timestamp":"2026-01-01T13:00:00Z"}]}`)
	// Ann signs up: she has an account.
	wantAt(t, s.browser().signUp("ann@example.com", "", "Ann Account"), "/account")
	ada, grace, anon, ann := s.personOf(identity.UserID, "u-ada"), s.personOf(identity.UserID, "u-grace"), s.personOf(identity.AnonymousID, "anon-x"), s.personOf(identity.Email, "ann@example.com")

	ids := func(p peoplePage) string {
		var out []string
		for _, d := range p.Data {
			out = append(out, map[string]string{ada: "ada", grace: "grace", anon: "anon", ann: "ann"}[d.ID])
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct{ name, query, want string }{
		{"name prefix", "?q=ada%20LOVE", "ada"},
		{"first and last name", "?q=grace%20h", "grace"},
		{"email prefix", "?q=GRACE@", "grace"},
		{"exact identifier", "?q=anon-x", "anon"},
		{"person id", "?q=" + ann, "ann"},
		{"property", "?property=" + docs.ID, "grace"},
		{"property and name", "?property=" + docs.ID + "&q=ada", ""},
		{"has account", "?has_account=true", "ann"},
		{"first seen, oldest first", "?sort=-first_seen", "ada,grace,anon,ann"},
		{"first seen, newest first", "?sort=first_seen", "ann,anon,grace,ada"},
		{"last seen, oldest first", "?sort=-last_seen&has_account=false", "ada,anon,grace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ids(s.people(t, s.owner, tc.query)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("persons carry has_account", func(t *testing.T) {
		for _, p := range s.people(t, s.owner, "").Data {
			if p.HasAccount == nil || *p.HasAccount != (p.ID == ann) {
				t.Errorf("%s has_account = %v", p.ID, p.HasAccount)
			}
		}
	})
	t.Run("cursor pages each sort without repeats", func(t *testing.T) {
		for _, sort := range []string{"", "last_seen", "-last_seen", "first_seen", "-first_seen"} {
			all, _ := s.people(t, s.owner, "?sort="+sort), 0
			var paged []listedPerson
			q := "?limit=1&sort=" + sort
			for pages := 0; ; pages++ {
				p := s.people(t, s.owner, q)
				paged = append(paged, p.Data...)
				if p.Next == "" || pages > 10 {
					break
				}
				q = "?limit=1&sort=" + sort + "&cursor=" + url.QueryEscape(p.Next)
			}
			if got, want := ids(peoplePage{Data: paged}), ids(all); got != want {
				t.Errorf("sort %q: pages %q, one page %q", sort, got, want)
			}
		}
	})
	t.Run("last page has no next", func(t *testing.T) {
		if p := s.people(t, s.owner, "?limit=4"); len(p.Data) != 4 || p.Next != "" {
			t.Errorf("limit=4 of 4: %d people, next %q", len(p.Data), p.Next)
		}
	})
	first := s.people(t, s.owner, "?limit=1&sort=first_seen")
	for _, q := range []string{"?sort=name", "?sort=last_seen,first_seen", "?has_account=yes", "?has_account=1",
		"?cursor=nonsense", "?q=b.sp%C3", "?q=a%00b", "?trait=plan:%FF", "?cursor=" + url.QueryEscape(first.Next) + "&sort=last_seen", "?cursor=" + url.QueryEscape(first.Next+"x")} {
		t.Run("bad query "+q, func(t *testing.T) {
			wantProblem(t, s.api(s.owner, "GET", "/api/people"+q, nil), 400)
		})
	}
	t.Run("unknown property", func(t *testing.T) {
		wantProblem(t, s.api(s.owner, "GET", "/api/people?property=prp_nope", nil), 404)
	})
	t.Run("support may read", func(t *testing.T) {
		support := s.token("desk", auth.RoleSupport)
		if got := ids(s.people(t, support, "?q=ada")); got != "ada" {
			t.Errorf("support search = %q", got)
		}
	})
}

// TestAPIEditTraits: PATCH /api/people/{id}/traits sets and unsets keys on
// the root person, audits the keys (not the values) with the caller, and
// refuses bad edits whole.
func TestAPIEditTraits(t *testing.T) {
	s := newTestStack(t)
	s.ingest(
		`{"type":"identify","userId":"u-1","anonymousId":"a-1","traits":{"email":"one@example.com","name":"Old Name","plan":"free","role":"dev"}}`,
		`{"type":"identify","anonymousId":"a-2","traits":{"company":"Acme"}}`,
	)
	root := s.personOf(identity.UserID, "u-1")
	other := s.personOf(identity.AnonymousID, "a-2")
	if r := s.api(s.owner, "POST", "/api/people/"+root+"/merge", map[string]string{"from": other}); r.status != 200 {
		t.Fatalf("merge: %d %s", r.status, r.body)
	}
	nt, err := s.tokens.CreateToken(context.Background(), "marketing", auth.RoleMarketer)
	if err != nil {
		t.Fatal(err)
	}
	path := "/api/people/" + other + "/traits" // the merged person: edits land on the root
	r := s.api(nt.Secret, "PATCH", path, `{"set":{"name":"New Name","score":12,"tags":["a","b"],"secret":"do-not-log"},"unset":["role","missing"]}`)
	if r.status != 200 {
		t.Fatalf("PATCH traits = %d %s", r.status, r.body)
	}
	var p personJSON
	r.json(t, &p)
	if p.ID != root {
		t.Errorf("answered person %s, want the root %s", p.ID, root)
	}
	want := map[string]any{"email": "one@example.com", "name": "New Name", "plan": "free", "company": "Acme", "score": 12.0, "tags": []any{"a", "b"}, "secret": "do-not-log"}
	if fmt.Sprint(p.Traits) != fmt.Sprint(want) {
		t.Errorf("traits = %v, want %v", p.Traits, want)
	}
	if prof, _ := s.getProfile(s.owner, root); fmt.Sprint(prof.Person.Traits) != fmt.Sprint(want) {
		t.Errorf("stored traits = %v", prof.Person.Traits)
	}
	// The list finds the new name, not the old one.
	if n := len(s.people(t, s.owner, "?q=new%20name").Data); n != 1 {
		t.Errorf("search for the new name: %d people", n)
	}
	if n := len(s.people(t, s.owner, "?q=old%20name").Data); n != 0 {
		t.Errorf("search for the old name: %d people", n)
	}

	var audit struct {
		Data []auth.AuditEntry `json:"data"`
	}
	s.api(s.owner, "GET", "/api/audit?action=person.traits_updated", nil).json(t, &audit)
	if len(audit.Data) != 1 {
		t.Fatalf("audit entries = %+v", audit.Data)
	}
	e := audit.Data[0]
	if e.ActorType != auth.ActorToken || e.ActorID != nt.ID || e.PersonID != root {
		t.Errorf("audit entry actor %s:%s person %s, want token:%s person %s", e.ActorType, e.ActorID, e.PersonID, nt.ID, root)
	}
	if got := string(e.Detail); got != `{"set":["name","score","secret","tags"],"unset":["missing","role"]}` || strings.Contains(got, "do-not-log") {
		t.Errorf("audit detail = %s", got)
	}

	before, _ := s.getProfile(s.owner, root)
	long := strings.Repeat("k", identity.MaxTraitKeyLen+1)
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"empty body", ``, 400},
		{"not JSON", `{"set":`, 400},
		{"nothing to do", `{}`, 400},
		{"empty lists", `{"set":{},"unset":[]}`, 400},
		{"empty key in set", `{"set":{"":1}}`, 400},
		{"empty key in unset", `{"unset":[""]}`, 400},
		{"key too long", `{"set":{"` + long + `":1}}`, 400},
		{"key both set and unset", `{"set":{"plan":"pro"},"unset":["plan"]}`, 400},
		{"set is not an object", `{"set":["plan"]}`, 400},
		{"unset is not a list of strings", `{"unset":[1]}`, 400},
		{"unknown field", `{"set":{"a":1},"replace":true}`, 400},
		{"too deep", `{"set":{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}}`, 400},
		{"number out of range", `{"set":{"a":1e999}}`, 400},
		{"edit too large", `{"set":{"a":"` + strings.Repeat("x", identity.MaxTraitsEdit) + `"}}`, 400},
		{"body too large", `{"set":{"a":"` + strings.Repeat("x", 3*identity.MaxTraitsEdit) + `"}}`, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantProblem(t, s.api(s.owner, "PATCH", path, tc.body), tc.status)
		})
	}
	if after, _ := s.getProfile(s.owner, root); fmt.Sprint(after.Person.Traits) != fmt.Sprint(before.Person.Traits) {
		t.Errorf("a refused edit changed the traits: %v", after.Person.Traits)
	}
	t.Run("unknown person", func(t *testing.T) {
		wantProblem(t, s.api(s.owner, "PATCH", "/api/people/per_nope/traits", `{"set":{"a":1}}`), 404)
	})
	t.Run("support may not edit", func(t *testing.T) {
		support := s.token("desk", auth.RoleSupport)
		wantProblem(t, s.api(support, "PATCH", path, `{"set":{"a":1}}`), 403)
		wantProblem(t, s.api("", "PATCH", path, `{"set":{"a":1}}`), 401)
	})
	s.api(s.owner, "GET", "/api/audit?action=person.traits_updated", nil).json(t, &audit)
	if len(audit.Data) != 1 {
		t.Errorf("refused edits were audited as updates: %d entries", len(audit.Data))
	}
}

// TestAPIStatsOverview checks the shape, the counting and the bounds of
// the home page's charts.
func TestAPIStatsOverview(t *testing.T) {
	s := newTestStack(t)
	now := time.Now().UTC().Format(time.RFC3339)
	s.ingest(
		`{"type":"track","event":"Signed Up","userId":"u-1","timestamp":"`+now+`"}`,
		`{"type":"track","event":"Signed Up","userId":"u-2","timestamp":"`+now+`"}`,
		`{"type":"track","event":"Clicked","userId":"u-1","timestamp":"`+now+`"}`,
		`{"type":"page","name":"Home","userId":"u-1","timestamp":"`+now+`"}`,
	)
	wantAt(t, s.browser().signUp("ann@example.com", "", "Ann"), "/account")
	var out struct {
		EventsPerHour []struct {
			Hour       time.Time `json:"hour"`
			PropertyID string    `json:"property_id"`
			Count      int       `json:"count"`
		} `json:"events_per_hour"`
		PeoplePerDay []struct {
			Day   string
			Count int
		} `json:"people_per_day"`
		SignupsPerDay []struct {
			Day   string
			Count int
		} `json:"signups_per_day"`
		TopEvents []struct {
			Event string
			Count int
		} `json:"top_events"`
	}
	r := s.api(s.owner, "GET", "/api/stats/overview", nil)
	if r.status != 200 {
		t.Fatalf("stats = %d %s", r.status, r.body)
	}
	r.json(t, &out)
	total := 0
	for _, h := range out.EventsPerHour {
		total += h.Count
		if h.PropertyID != s.prop.ID || h.Hour.Minute() != 0 {
			t.Errorf("hour row %+v", h)
		}
	}
	// The four tracked events, and the sign-up's own auth.* event.
	if total < 4 {
		t.Errorf("events per hour count %d events, want at least 4: %s", total, r.body)
	}
	today := time.Now().UTC().Format(time.DateOnly)
	if len(out.PeoplePerDay) == 0 || out.PeoplePerDay[len(out.PeoplePerDay)-1].Day != today || out.PeoplePerDay[len(out.PeoplePerDay)-1].Count != 3 {
		t.Errorf("people per day = %+v, want 3 today (%s)", out.PeoplePerDay, today)
	}
	if len(out.SignupsPerDay) != 1 || out.SignupsPerDay[0].Day != today || out.SignupsPerDay[0].Count != 1 {
		t.Errorf("sign-ups per day = %+v", out.SignupsPerDay)
	}
	if len(out.TopEvents) < 2 || out.TopEvents[0].Event != "Signed Up" || out.TopEvents[0].Count != 2 {
		t.Errorf("top events = %+v", out.TopEvents)
	}
	s.api(s.owner, "GET", "/api/stats/overview?top=1", nil).json(t, &out)
	if len(out.TopEvents) != 1 {
		t.Errorf("top=1 gave %d events", len(out.TopEvents))
	}
	for _, q := range []string{"hours=0", "hours=169", "hours=x", "days=0", "days=366", "top=0", "top=101", "top=-1", "days=1.5"} {
		t.Run("bad "+q, func(t *testing.T) {
			wantProblem(t, s.api(s.owner, "GET", "/api/stats/overview?"+q, nil), 400)
		})
	}
	t.Run("support may read", func(t *testing.T) {
		if r := s.api(s.token("desk", auth.RoleSupport), "GET", "/api/stats/overview?hours=1&days=1&top=1", nil); r.status != 200 {
			t.Errorf("support: %d %s", r.status, r.body)
		}
		wantProblem(t, s.api("", "GET", "/api/stats/overview", nil), 401)
	})
}
