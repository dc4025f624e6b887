package httpapi

import (
	"fmt"
	"net/http"
	"reflect"
	"sort"
)

// RoutePatterns lists the patterns registered on the server's mux, such as
// "GET /api/people/{id}". net/http offers no way to list them, so this reads
// the mux's pattern index by reflection (read-only). If a Go release changes
// that layout, it returns an error and the OpenAPI test fails loudly rather
// than passing with an empty list.
func RoutePatterns(s *Server) ([]string, error) {
	mux := reflect.ValueOf(s.mux).Elem()
	index := mux.FieldByName("index")
	if !index.IsValid() {
		return nil, fmt.Errorf("http.ServeMux has no field index in this Go version; update RoutePatterns")
	}
	seen := map[string]bool{}
	add := func(p reflect.Value) error {
		for p.Kind() == reflect.Pointer {
			if p.IsNil() {
				return nil
			}
			p = p.Elem()
		}
		str := p.FieldByName("str")
		if !str.IsValid() || str.Kind() != reflect.String {
			return fmt.Errorf("http pattern has no string field str in this Go version; update RoutePatterns")
		}
		seen[str.String()] = true
		return nil
	}
	segments := index.FieldByName("segments")
	multis := index.FieldByName("multis")
	if segments.Kind() != reflect.Map || multis.Kind() != reflect.Slice {
		return nil, fmt.Errorf("http.ServeMux index layout changed in this Go version; update RoutePatterns")
	}
	for it := segments.MapRange(); it.Next(); {
		list := it.Value()
		for i := 0; i < list.Len(); i++ {
			if err := add(list.Index(i)); err != nil {
				return nil, err
			}
		}
	}
	for i := 0; i < multis.Len(); i++ {
		if err := add(multis.Index(i)); err != nil {
			return nil, err
		}
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// MatchedPattern returns the pattern the server's mux picks for r ("" when
// none matches).
func MatchedPattern(s *Server, r *http.Request) string {
	_, pattern := s.mux.Handler(r)
	return pattern
}

// ConsolePages lists the console's page table as {pattern, permission}
// pairs, for the test that compares it with app.js.
func ConsolePages() [][2]string {
	var out [][2]string
	for _, p := range consolePages {
		out = append(out, [2]string{p.Pattern, string(p.Perm)})
	}
	return out
}
