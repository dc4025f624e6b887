package identity

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/onramp-dev/onramp"
)

// PersonSort orders a list of people. The names are the API's: a leading
// "-" means oldest first.
type PersonSort string

const (
	SortLastSeen      PersonSort = "last_seen"   // most recently seen first
	SortLastSeenAsc   PersonSort = "-last_seen"  // least recently seen first
	SortFirstSeen     PersonSort = "first_seen"  // newest person first
	SortFirstSeenAsc  PersonSort = "-first_seen" // oldest person first
	defaultPersonSort            = SortLastSeen
)

// ParseSort accepts the API's sort names; "" is the default.
func ParseSort(s string) (PersonSort, error) {
	switch ps := PersonSort(s); ps {
	case "":
		return defaultPersonSort, nil
	case SortLastSeen, SortLastSeenAsc, SortFirstSeen, SortFirstSeenAsc:
		return ps, nil
	}
	return "", onramp.Errorf(onramp.EINVALID, "sort must be last_seen, -last_seen, first_seen or -first_seen, not %q.", s)
}

// Ascending reports whether the order is oldest first.
func (s PersonSort) Ascending() bool { return strings.HasPrefix(string(s), "-") }

// ByFirstSeen reports whether the order is by created_at (first seen)
// rather than last_seen_at.
func (s PersonSort) ByFirstSeen() bool {
	return strings.TrimPrefix(string(s), "-") == string(SortFirstSeen)
}

// key is the time a person is ordered by.
func (s PersonSort) key(p *Person) time.Time {
	if s.ByFirstSeen() {
		return p.CreatedAt
	}
	return p.LastSeenAt
}

// AccountFilter keeps people with or without an account.
type AccountFilter string

const (
	AnyAccount     AccountFilter = ""
	WithAccount    AccountFilter = "with"
	WithoutAccount AccountFilter = "without"
)

// PersonPosition is a place in a sorted list: the sort key and id of the
// last person shown. Keyset paging from it costs the same on page 1000 as
// on page 2, and a person seen again moves without making others repeat.
type PersonPosition struct {
	At time.Time
	ID string
}

// FoundPerson is a person of a search answer, with what the list shows
// beside the traits.
type FoundPerson struct {
	*Person
	HasAccount bool `json:"has_account"`
}

// PersonPage is one page of a search; Next is empty on the last page.
type PersonPage struct {
	Persons []*FoundPerson
	Next    string
}

// DayCount is how many things happened on one UTC day.
type DayCount struct {
	Day   time.Time `json:"-"`
	Count int64     `json:"count"`
}

// MarshalJSON writes the day as a date ("2026-11-25"): a chart's axis, not
// an instant.
func (d DayCount) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"day":"%s","count":%d}`, d.Day.UTC().Format(time.DateOnly), d.Count), nil
}

// cursorVersion starts every cursor, so a later format can refuse old ones
// precisely.
const cursorVersion = "1"

// encodeCursor makes the opaque next of a page. It names its sort, so a
// cursor is never read in another order.
func encodeCursor(s PersonSort, p PersonPosition) string {
	raw := cursorVersion + "|" + string(s) + "|" + strconv.FormatInt(p.At.UnixMicro(), 10) + "|" + p.ID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

var errBadCursor = onramp.Errorf(onramp.EINVALID, "cursor is not one this API gave out; start again without it.")

func decodeCursor(c string, s PersonSort) (*PersonPosition, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, errBadCursor
	}
	parts := strings.SplitN(string(raw), "|", 4)
	if len(parts) != 4 || parts[0] != cursorVersion || parts[3] == "" {
		return nil, errBadCursor
	}
	if PersonSort(parts[1]) != s {
		return nil, onramp.Errorf(onramp.EINVALID, "cursor belongs to sort=%s; send the same sort with it, or start again without it.", parts[1])
	}
	us, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return nil, errBadCursor
	}
	return &PersonPosition{At: time.UnixMicro(us).UTC(), ID: parts[3]}, nil
}

// MaxPageSize is the most people one search answers.
const MaxPageSize = 500

// Search lists root persons, one page at a time.
func (s *Service) Search(ctx context.Context, q PersonQuery) (*PersonPage, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	q.Limit = min(q.Limit, MaxPageSize)
	if q.Sort == "" {
		q.Sort = defaultPersonSort
	}
	if _, err := ParseSort(string(q.Sort)); err != nil {
		return nil, err
	}
	switch q.HasAccount {
	case AnyAccount, WithAccount, WithoutAccount:
	default:
		return nil, onramp.Errorf(onramp.EINVALID, "unknown account filter %q", q.HasAccount)
	}
	// Text that no engine can compare (Postgres refuses invalid UTF-8 and
	// NUL outright) is the caller's mistake, not a server error.
	for name, v := range map[string]string{"q": q.Search, "trait key": q.TraitKey, "trait value": q.TraitValue} {
		if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return nil, onramp.Errorf(onramp.EINVALID, "%s must be UTF-8 text without NUL characters.", name)
		}
	}
	if q.Cursor != "" {
		after, err := decodeCursor(q.Cursor, q.Sort)
		if err != nil {
			return nil, err
		}
		q.After = after
	}
	want := q.Limit
	// One more than asked tells whether a next page exists, so the last
	// page carries no cursor to an empty one.
	q.Limit++
	ps, err := s.read.SearchPersons(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("identity: search: %w", err)
	}
	page := &PersonPage{Persons: ps}
	if len(ps) > want {
		page.Persons = ps[:want]
		last := ps[want-1]
		page.Next = encodeCursor(q.Sort, PersonPosition{At: q.Sort.key(last.Person), ID: last.ID})
	}
	if page.Persons == nil {
		page.Persons = []*FoundPerson{}
	}
	return page, nil
}

// PeoplePerDay counts new (root) persons per UTC day from since on.
func (s *Service) PeoplePerDay(ctx context.Context, since time.Time) ([]DayCount, error) {
	out, err := s.read.PersonsPerDay(ctx, since)
	if err != nil {
		return nil, fmt.Errorf("identity: people per day: %w", err)
	}
	return out, nil
}

// Engines index each top-level trait whose key and value (as text) fit in
// maxIndexedTrait bytes, for the trait filter; longer ones are compared
// by reading the traits.
const maxIndexedTrait = 200

// IndexedTrait reports whether a trait filter can use the engines' trait
// index.
func IndexedTrait(key, value string) bool {
	return len(key) <= maxIndexedTrait && len(value) <= maxIndexedTrait
}

// TraitDriveLimit is where engines switch a trait filter from fetching
// the matching people and sorting them to probing people in sort order:
// below it the sort is small, above it the first page fills fast.
const TraitDriveLimit = 2000

// maxSearchName bounds the stored search name: a name longer than this is
// still found by its first 200 bytes.
const maxSearchName = 200

var nameHint = []byte(`ame"`)

// SearchName is the lower-case name a person is found by: the name trait,
// or else first_name and last_name (or Segment's firstName and lastName)
// joined by a space. "" when the traits hold none. Engines store it beside
// the traits whenever they write them, so a name search is an index range.
func SearchName(traits json.RawMessage) string {
	// Every key that matters ends in `ame"`: most trait objects without a
	// name are passed over without decoding them.
	if !bytes.Contains(traits, nameHint) {
		return ""
	}
	var t struct {
		Name        json.RawMessage `json:"name"`
		FirstName   json.RawMessage `json:"first_name"`
		LastName    json.RawMessage `json:"last_name"`
		FirstNameJS json.RawMessage `json:"firstName"`
		LastNameJS  json.RawMessage `json:"lastName"`
	}
	if json.Unmarshal(traits, &t) != nil {
		return ""
	}
	name := jsonString(t.Name)
	if name == "" {
		first, last := jsonString(t.FirstName), jsonString(t.LastName)
		if first == "" {
			first = jsonString(t.FirstNameJS)
		}
		if last == "" {
			last = jsonString(t.LastNameJS)
		}
		name = strings.TrimSpace(first + " " + last)
	}
	name = strings.ToLower(name)
	if len(name) > maxSearchName {
		n := maxSearchName
		for n > 0 && !utf8.RuneStart(name[n]) {
			n--
		}
		name = name[:n]
	}
	return name
}

// NameSearchRange is the [from, to) range of search names that start with
// the search text q.
func NameSearchRange(q string) (from, to string) {
	from = strings.ToLower(strings.TrimSpace(q))
	return from, from + "\U0010FFFF"
}

func jsonString(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return strings.TrimSpace(s)
}
