package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/identity"
)

// listPeople is the console's people list: search, filters, sort and an
// opaque keyset cursor (docs/design/console.md, "People").
func (s *Server) listPeople(w http.ResponseWriter, r *http.Request) {
	pq, err := s.personQuery(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	page, err := s.Identity.Search(r.Context(), pq)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := map[string]any{"data": page.Persons}
	if page.Next != "" {
		out["next"] = page.Next
	}
	writeJSON(w, 200, out)
}

// personQuery decodes the query string of GET /api/people.
func (s *Server) personQuery(r *http.Request) (identity.PersonQuery, error) {
	q := r.URL.Query()
	pq := identity.PersonQuery{Search: q.Get("q"), Cursor: q.Get("cursor")}
	if t := q.Get("trait"); t != "" {
		k, v, ok := strings.Cut(t, ":")
		if !ok || k == "" {
			return pq, onramp.Errorf(onramp.EINVALID, "trait must look like key:value")
		}
		pq.TraitKey, pq.TraitValue = k, v
	}
	var err error
	if pq.SeenAfter, err = timeParam(q, "seen_after"); err != nil {
		return pq, err
	}
	if pq.SeenBefore, err = timeParam(q, "seen_before"); err != nil {
		return pq, err
	}
	if pq.Sort, err = identity.ParseSort(q.Get("sort")); err != nil {
		return pq, err
	}
	switch v := q.Get("has_account"); v {
	case "":
	case "true":
		pq.HasAccount = identity.WithAccount
	case "false":
		pq.HasAccount = identity.WithoutAccount
	default:
		return pq, onramp.Errorf(onramp.EINVALID, "has_account must be true or false, not %q", v)
	}
	if p := q.Get("property"); p != "" {
		// An unknown property is a 404, as on the timeline's filter.
		prop, err := s.Properties.Get(r.Context(), p)
		if err != nil {
			return pq, err
		}
		pq.PropertyID = prop.ID
	}
	limit, err := intParam(q, "limit", 50)
	if err != nil {
		return pq, err
	}
	// A limit past the maximum is served as the maximum (with a next
	// cursor), as it always was: clients asking for "all" still page.
	pq.Limit = int(min(limit, identity.MaxPageSize))
	return pq, nil
}

// traitsEdit is the body of PATCH /api/people/{id}/traits.
type traitsEdit struct {
	Set   map[string]json.RawMessage `json:"set"`
	Unset []string                   `json:"unset"`
}

// editTraits changes some traits of a person by hand and records who did
// it (the keys, never the values: the log is read by more people than the
// traits are).
func (s *Server) editTraits(w http.ResponseWriter, r *http.Request) {
	var in traitsEdit
	// Twice ingest's event limit: the JSON around the traits is not
	// counted by the rules, which check the traits themselves.
	if err := decodeJSONBody(w, r, &in, 2*identity.MaxTraitsEdit, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	for k, v := range in.Set {
		if code, msg := events.CheckJSON(v, events.MaxDepth); code != "" {
			s.writeError(w, r, onramp.Errorf(onramp.EINVALID, "set.%s: %s", k, msg))
			return
		}
	}
	edit := identity.TraitsEdit{PersonID: r.PathValue("id"), Set: in.Set, Unset: in.Unset}
	p, err := s.Identity.EditTraits(r.Context(), edit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	set, unset := edit.Keys()
	s.audit(r, auth.AuditEntry{Action: "person.traits_updated", PersonID: p.ID, Detail: jsonDetail(map[string][]string{"set": nonNilStrings(set), "unset": nonNilStrings(unset)})})
	writeJSON(w, 200, p)
}

func nonNilStrings(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

// Bounds of GET /api/stats/overview: what the home page's charts need,
// and what keeps one request from reading months of events.
var (
	statsHours = boundedInt{name: "hours", def: 48, min: 1, max: 168}
	statsDays  = boundedInt{name: "days", def: 30, min: 1, max: 365}
	statsTop   = boundedInt{name: "top", def: 10, min: 1, max: 100}
)

// topEventsWindow is the period of the top events list, whatever days
// says: a week is what "what are people doing now" means, and it keeps
// the heaviest of the four reads bounded.
const topEventsWindow = 7 * 24 * time.Hour

// statsOverview answers the console's home charts. Windows end now: hours
// counts the current hour as the last of them, days today (UTC).
func (s *Server) statsOverview(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	hours, err := statsHours.parse(q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	days, err := statsDays.parse(q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	top, err := statsTop.parse(q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx, now := r.Context(), s.Clock.Now().UTC()
	hourStart := now.Truncate(time.Hour).Add(-time.Duration(hours-1) * time.Hour)
	dayStart := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -(days - 1))
	perHour, err := s.Events.EventsPerHour(ctx, hourStart)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	topEvents, err := s.Events.TopEvents(ctx, now.Add(-topEventsWindow), top)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	people, err := s.Identity.PeoplePerDay(ctx, dayStart)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	signups := []identity.DayCount{}
	if s.Accounts != nil {
		if signups, err = s.Accounts.SignupsPerDay(ctx, dayStart); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	writeJSON(w, 200, map[string]any{
		"events_per_hour": perHour, "people_per_day": people, "signups_per_day": signups, "top_events": topEvents,
	})
}

// boundedInt is an integer query parameter with a default and a range;
// a value outside it is refused rather than clamped, so a chart never
// silently shows less than it says.
type boundedInt struct {
	name          string
	def, min, max int
}

func (b boundedInt) parse(q url.Values) (int, error) {
	v := q.Get(b.name)
	if v == "" {
		return b.def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < b.min || n > b.max {
		return 0, onramp.Errorf(onramp.EINVALID, "%s must be a whole number from %d to %d, not %q", b.name, b.min, b.max, v)
	}
	return n, nil
}
