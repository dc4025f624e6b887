package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/identity"
)

type propertyKey struct{}

// withSecret authenticates a property's secret key: Basic auth with the key
// as user name (as Segment's Profile API), or a Bearer token.
func (s *Server) withSecret(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		secret, _, ok := r.BasicAuth()
		if !ok {
			secret, _ = bearerToken(r)
		}
		if secret == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="onramp profiles"`)
			s.writeError(w, r, onramp.Errorf(onramp.EUNAUTHORIZED, "Send the property's secret key as the Basic auth user name."))
			return
		}
		p, err := s.Properties.BySecretKey(r.Context(), secret)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), propertyKey{}, p)))
	}
}

// profileFor finds the profile named by the {id} path value, "type:value"
// (user_id:42, email:ada@example.com, anonymous_id:…).
func (s *Server) profileFor(r *http.Request) (*identity.Profile, error) {
	typ, value, ok := strings.Cut(r.PathValue("id"), ":")
	if !ok || !identity.ValidType(typ) || value == "" {
		return nil, onramp.Errorf(onramp.EINVALID, "The profile must be named type:value, such as user_id:42 or email:ada@example.com.")
	}
	return s.Identity.Lookup(r.Context(), identity.Key{Type: typ, Value: value})
}

func (s *Server) profileTraits(w http.ResponseWriter, r *http.Request) {
	prof, err := s.profileFor(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	traits := prof.Person.Traits
	if len(traits) == 0 {
		traits = json.RawMessage("{}")
	}
	writeJSON(w, 200, map[string]any{"traits": traits, "person_id": prof.Person.ID})
}

func (s *Server) profileIdentifiers(w http.ResponseWriter, r *http.Request) {
	prof, err := s.profileFor(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, 200, map[string]any{"data": prof.Identifiers})
}

func (s *Server) profileEvents(w http.ResponseWriter, r *http.Request) {
	typ, value, ok := strings.Cut(r.PathValue("id"), ":")
	if !ok || !identity.ValidType(typ) || value == "" {
		s.writeError(w, r, onramp.Errorf(onramp.EINVALID, "The profile must be named type:value, such as user_id:42 or email:ada@example.com."))
		return
	}
	// The reads of a timeline are short, indexed and bounded (at most 1,000
	// events a person): they run to the end even if the client goes away.
	// A context that can be cancelled costs each query two goroutines
	// (database/sql's and the driver's watchers of ctx.Done).
	r = r.WithContext(context.WithoutCancel(r.Context()))
	tl, err := s.Identity.TimelineOfKey(r.Context(), identity.Key{Type: typ, Value: value})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeTimeline(w, r, tl)
}
