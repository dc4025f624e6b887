package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/identity"
	"github.com/onramp-dev/onramp/property"
)

// bearerToken returns the credentials of an "Authorization: Bearer …"
// header. The scheme name is case-insensitive (RFC 9110, section 11.1).
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}

const maxAPIBody = 1 << 20

// decodeJSON reads a JSON body strictly: right content type, size limit,
// no unknown fields, one value.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	return decodeJSONBody(w, r, v, maxAPIBody, false)
}

// decodeJSONBody is decodeJSON with a size limit; optional accepts an
// empty body (v stays as it is).
func decodeJSONBody(w http.ResponseWriter, r *http.Request, v any, limit int64, optional bool) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return onramp.Errorf(onramp.EINVALID, "Content-Type must be application/json.")
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return onramp.Errorf(onramp.ETOOLARGE, "The body is larger than %s.", sizeText(limit))
		}
		if errors.Is(err, io.EOF) {
			if optional {
				return nil
			}
			return onramp.Errorf(onramp.EINVALID, "The body is empty; send a JSON object.")
		}
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			return onramp.Errorf(onramp.EINVALID, "Field %q has the wrong type (a %s was sent).", te.Field, te.Value)
		case errors.As(err, &se):
			return onramp.Errorf(onramp.EINVALID, "The body is not valid JSON (at byte %d).", se.Offset)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return onramp.Errorf(onramp.EINVALID, "The body has a field this endpoint does not take: %s.", strings.TrimPrefix(err.Error(), "json: unknown field "))
		}
		return onramp.Errorf(onramp.EINVALID, "The body is not valid JSON for this endpoint.")
	}
	if dec.More() {
		return onramp.Errorf(onramp.EINVALID, "The body must hold one JSON value.")
	}
	return nil
}

// sizeText is a body limit in words: "1 MB", "16 KB".
func sizeText(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + " MB"
	}
	return strconv.FormatInt(n>>10, 10) + " KB"
}

// --- properties ---

func (s *Server) listProperties(w http.ResponseWriter, r *http.Request) {
	ps, err := s.Properties.List(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, 200, map[string]any{"data": ps})
}

type propertyInput struct {
	Name    *string  `json:"name"`
	Origins []string `json:"origins"`
	// Theme replaces the whole theme; {} removes it.
	Theme *property.Theme `json:"theme"`
}

// newPropertyInput is a property with its default OpenID Connect client.
type newPropertyInput struct {
	propertyInput
	RedirectURIs           []string `json:"redirect_uris"`
	Public                 bool     `json:"public"`
	FirstParty             bool     `json:"first_party"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	BackchannelLogoutURI   string   `json:"backchannel_logout_uri"`
	// Claims maps custom claim names to trait paths (scope onramp:traits).
	Claims map[string]string `json:"claims"`
}

// propertyWithClient is a new property with its keys and client, the
// secrets shown this once.
type propertyWithClient struct {
	*property.Created
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret,omitempty"`
}

func (s *Server) createProperty(w http.ResponseWriter, r *http.Request) {
	var in newPropertyInput
	if err := decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	if in.Name == nil {
		s.writeError(w, r, onramp.Errorf(onramp.EINVALID, "name is required"))
		return
	}
	var theme property.Theme
	if in.Theme != nil {
		theme = *in.Theme
	}
	c, err := s.OAuth.CreateProperty(r.Context(), auth.CreatePropertyParams{
		Property: property.CreateParams{Name: *in.Name, Origins: in.Origins, Theme: theme},
		Client: auth.ClientParams{
			RedirectURIs: in.RedirectURIs, Public: in.Public, FirstParty: in.FirstParty,
			PostLogoutRedirectURIs: in.PostLogoutRedirectURIs, BackchannelLogoutURI: in.BackchannelLogoutURI,
			Claims: in.Claims,
		},
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.audit(r, auth.AuditEntry{Action: "property.created", PropertyID: c.Property.ID, ClientID: c.Client.ID, Detail: jsonDetail(map[string]any{"name": c.Property.Name})})
	writeJSON(w, http.StatusCreated, propertyWithClient{Created: c.Created, ClientID: c.Client.ID, ClientSecret: c.Client.Secret})
}

func (s *Server) getProperty(w http.ResponseWriter, r *http.Request) {
	p, err := s.Properties.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.OAuth.DefaultClient(r.Context(), p.ID)
	if err != nil && onramp.ErrorCode(err) != onramp.ENOTFOUND {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, 200, auth.PropertyUpdated{Property: p, Client: c})
}

// propertyUpdateInput is a PATCH of a property and its default OpenID
// Connect client. Omitted (or null) fields stay as they are; a list that
// is sent replaces the stored one, [] clears it.
type propertyUpdateInput struct {
	propertyInput
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	BackchannelLogoutURI   *string  `json:"backchannel_logout_uri"`
	FirstParty             *bool    `json:"first_party"`
	// Claims replaces the custom claims; {} clears them.
	Claims map[string]string `json:"claims"`
}

// client is the change to the default client, nil when the body names
// no client field.
func (in propertyUpdateInput) client() *auth.UpdateClientParams {
	if in.RedirectURIs == nil && in.PostLogoutRedirectURIs == nil && in.BackchannelLogoutURI == nil && in.FirstParty == nil && in.Claims == nil {
		return nil
	}
	return &auth.UpdateClientParams{
		RedirectURIs: in.RedirectURIs, PostLogoutRedirectURIs: in.PostLogoutRedirectURIs,
		BackchannelLogoutURI: in.BackchannelLogoutURI, FirstParty: in.FirstParty, Claims: in.Claims,
	}
}

func (s *Server) updateProperty(w http.ResponseWriter, r *http.Request) {
	var in propertyUpdateInput
	if err := decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	up, err := s.OAuth.UpdateProperty(r.Context(), auth.UpdatePropertyParams{
		Property: property.UpdateParams{ID: r.PathValue("id"), Name: in.Name, Origins: in.Origins, Theme: in.Theme},
		Client:   in.client(),
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.audit(r, auth.AuditEntry{Action: "property.updated", PropertyID: up.Property.ID, Detail: jsonDetail(map[string]any{"client": in.client() != nil})})
	writeJSON(w, 200, up)
}

// clientSecretKey names the default client's secret in revoke-key, next
// to the property's own write and secret keys.
const clientSecretKey = "client-secret"

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Key string `json:"key"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.Properties.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if in.Key == clientSecretKey {
		c, err := s.OAuth.DefaultClient(r.Context(), p.ID)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		nc, err := s.OAuth.RotateClientSecret(r.Context(), c.ID)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.audit(r, auth.AuditEntry{Action: "property.key_replaced", PropertyID: p.ID, ClientID: nc.ID, Detail: jsonDetail(map[string]string{"key": clientSecretKey})})
		writeJSON(w, 200, propertyWithClient{Created: &property.Created{Property: p}, ClientID: nc.ID, ClientSecret: nc.Secret})
		return
	}
	c, err := s.Properties.RevokeKey(r.Context(), p.ID, property.Key(in.Key))
	if err != nil {
		if onramp.ErrorCode(err) == onramp.EINVALID {
			err = onramp.Errorf(onramp.EINVALID, "key must be %q, %q or %q", property.WriteKey, property.SecretKey, clientSecretKey)
		}
		s.writeError(w, r, err)
		return
	}
	s.audit(r, auth.AuditEntry{Action: "property.key_replaced", PropertyID: p.ID, Detail: jsonDetail(map[string]string{"key": in.Key})})
	writeJSON(w, 200, c)
}

func (s *Server) listRejections(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rq := events.RejectionQuery{}
	if p := q.Get("property"); p != "" {
		prop, err := s.Properties.Get(r.Context(), p)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		rq.PropertyID = prop.ID
	}
	var err error
	if rq.BeforeID, err = intParam(q, "before", 0); err != nil {
		s.writeError(w, r, err)
		return
	}
	limit, err := intParam(q, "limit", 100)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rq.Limit = int(limit)
	rs, err := s.Events.Rejections(r.Context(), rq)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, 200, map[string]any{"data": rejectionsJSON(rs)})
}

func rejectionsJSON(rs []*events.Rejection) []events.RejectionView {
	out := make([]events.RejectionView, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.View())
	}
	return out
}

// --- people ---

func (s *Server) getPerson(w http.ResponseWriter, r *http.Request) {
	p, err := s.Identity.Person(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, 200, p)
}

func (s *Server) personEvents(w http.ResponseWriter, r *http.Request) {
	tl, err := s.Identity.TimelineOf(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeTimeline(w, r, tl)
}

// writeTimeline serves the timeline of a profile with the filters of the
// query string.
func (s *Server) writeTimeline(w http.ResponseWriter, r *http.Request, tl *identity.Timeline) {
	q := r.URL.Query()
	tp := events.TimelineParams{PersonIDs: tl.PersonIDs, Cursor: q.Get("cursor")}
	tp.Types = splitList(q["type"])
	tp.Names = splitList(q["event"])
	if p := q.Get("property"); p != "" {
		prop, err := s.Properties.Get(r.Context(), p)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		tp.PropertyID = prop.ID
	}
	var err error
	if tp.From, err = timeParam(q, "from"); err == nil {
		tp.To, err = timeParam(q, "to")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	limit, err := intParam(q, "limit", 50)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	tp.Limit = int(limit)
	page, err := s.Events.Timeline(r.Context(), tp)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// An event keeps the person it was first attributed to (that is what
	// lets a merge be undone), but a timeline is one person's: its events
	// show the person they belong to now, as the profile does.
	evs := make([]*events.Event, len(page.Events))
	for i, e := range page.Events {
		if e.PersonID != tl.RootID {
			c := *e
			c.PersonID = tl.RootID
			e = &c
		}
		evs[i] = e
	}
	// One buffer, one Write with a Content-Length: no reflection per
	// field and no chunked framing (appendTimelineJSON). The buffer is
	// reused: a page is tens of kilobytes, garbage on every read.
	buf, _ := s.timelineBufs.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	defer func() {
		// A page of a thousand big events is not kept for the small ones.
		if cap(*buf) <= 256<<10 {
			s.timelineBufs.Put(buf)
		}
	}()
	if body, err := appendTimelineJSON((*buf)[:0], evs, page.Next); err == nil {
		*buf = body
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(200)
		_, _ = w.Write(body)
		return
	}
	// A value goccy refuses (say, invalid stored JSON): answer as before.
	writeJSON(w, 200, map[string]any{"data": evs, "cursor": map[string]any{"has_more": page.Next != "", "next": page.Next}})
}

func (s *Server) personMerges(w http.ResponseWriter, r *http.Request) {
	ms, err := s.Identity.Merges(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if ms == nil {
		ms = []*identity.Merge{}
	}
	writeJSON(w, 200, map[string]any{"data": ms})
}

func (s *Server) mergePerson(w http.ResponseWriter, r *http.Request) {
	var in struct {
		From string `json:"from"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	if in.From == "" {
		s.writeError(w, r, onramp.Errorf(onramp.EINVALID, "from (the id of the person to merge into this one) is required"))
		return
	}
	m, err := s.Identity.Merge(r.Context(), identity.MergeParams{FromID: in.From, IntoID: r.PathValue("id"), Actor: actor(r)})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.audit(r, auth.AuditEntry{Action: "person.merged", PersonID: m.IntoID, Detail: jsonDetail(map[string]string{"merge_id": m.ID, "from_person_id": m.FromID})})
	writeJSON(w, 200, m)
}

func (s *Server) undoMerge(w http.ResponseWriter, r *http.Request) {
	m, err := s.Identity.Unmerge(r.Context(), r.PathValue("id"), actor(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.audit(r, auth.AuditEntry{Action: "person.unmerged", PersonID: m.IntoID, Detail: jsonDetail(map[string]string{"merge_id": m.ID, "from_person_id": m.FromID})})
	writeJSON(w, 200, m)
}

func (s *Server) deletePerson(w http.ResponseWriter, r *http.Request) {
	ids, err := s.Identity.Delete(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.audit(r, auth.AuditEntry{Action: "person.deleted", PersonID: r.PathValue("id"), Detail: jsonDetail(map[string]any{"deleted_person_ids": ids})})
	writeJSON(w, 200, map[string]any{"deleted_person_ids": ids})
}

func (s *Server) suppressPerson(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Delete bool `json:"delete"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &in); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	keys, err := s.Identity.Suppress(r.Context(), identity.SuppressParams{PersonID: r.PathValue("id"), AlsoDelete: in.Delete})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.audit(r, auth.AuditEntry{Action: "person.suppressed", PersonID: r.PathValue("id"), Detail: jsonDetail(map[string]any{"identifiers": len(keys), "deleted": in.Delete})})
	writeJSON(w, 200, map[string]any{"suppressed": keys, "deleted": in.Delete})
}

func (s *Server) unsuppress(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Identifiers []identity.Key `json:"identifiers"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(in.Identifiers) == 0 || len(in.Identifiers) > 5000 {
		s.writeError(w, r, onramp.Errorf(onramp.EINVALID, "identifiers must list 1 to 5000 {type, value} pairs"))
		return
	}
	if err := s.Identity.Unsuppress(r.Context(), in.Identifiers); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.audit(r, auth.AuditEntry{Action: "person.unsuppressed", Detail: jsonDetail(map[string]any{"identifiers": len(in.Identifiers)})})
	writeJSON(w, 200, map[string]any{"unsuppressed": in.Identifiers})
}

// exportPerson streams a person's profile and every event as NDJSON: the
// first line is the profile, each further line one event, oldest first is
// not guaranteed; newest first is.
func (s *Server) exportPerson(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	prof, err := s.Identity.Person(ctx, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	members := append([]string{prof.Person.ID}, prof.MergedIDs...)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Disposition", `attachment; filename="`+prof.Person.ID+`.ndjson"`)
	enc := json.NewEncoder(w)
	if err := enc.Encode(map[string]any{"kind": "profile", "profile": prof}); err != nil {
		return
	}
	cursor := ""
	for {
		page, err := s.Events.Timeline(ctx, events.TimelineParams{PersonIDs: members, Cursor: cursor, Limit: 1000})
		if err != nil {
			// Headers are gone; end the stream with an error line so the
			// reader knows it is incomplete.
			_ = enc.Encode(map[string]any{"kind": "error", "error": "export interrupted; retry"})
			s.log.Error("export", "err", err, "request_id", requestID(ctx))
			return
		}
		for _, e := range page.Events {
			if err := enc.Encode(map[string]any{"kind": "event", "event": e}); err != nil {
				return
			}
		}
		if page.Next == "" {
			return
		}
		cursor = page.Next
	}
}

func (s *Server) listConflicts(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r.URL.Query(), "limit", 100)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	cs, err := s.Identity.Conflicts(r.Context(), int(limit))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if cs == nil {
		cs = []*identity.Conflict{}
	}
	writeJSON(w, 200, map[string]any{"data": cs})
}

// --- tokens ---

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := s.Tokens.List(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, 200, map[string]any{"data": ts})
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name string `json:"name"`
		Role string `json:"role"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	if callerRole(r) != auth.RoleOwner && in.Role == auth.RoleOwner {
		s.writeError(w, r, onramp.Errorf(onramp.EFORBIDDEN, "Only an owner may create owner tokens."))
		return
	}
	nt, err := s.Tokens.CreateToken(r.Context(), in.Name, in.Role)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.audit(r, auth.AuditEntry{Action: "token.created", Detail: jsonDetail(map[string]string{"token_id": nt.ID, "name": nt.Name, "role": nt.Role})})
	writeJSON(w, http.StatusCreated, nt)
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	target, err := s.Tokens.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if target.Role == auth.RoleOwner && callerRole(r) != auth.RoleOwner {
		// Whoever may not make owner tokens may not take them away either.
		s.writeError(w, r, onramp.Errorf(onramp.EFORBIDDEN, "Only an owner may revoke owner tokens."))
		return
	}
	if err := s.Tokens.Revoke(r.Context(), target.ID); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.audit(r, auth.AuditEntry{Action: "token.revoked", Detail: jsonDetail(map[string]string{"token_id": target.ID, "name": target.Name, "role": target.Role})})
	w.WriteHeader(http.StatusNoContent)
}

// --- helpers ---

// intParam reads the query parameter name as a non-negative integer, def
// when it is absent. The problem names the parameter, so that a caller
// sending several (limit, before…) knows which one is wrong.
func intParam(q url.Values, name string, def int64) (int64, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, onramp.Errorf(onramp.EINVALID, "%s must be a non-negative integer, not %q.", name, v)
	}
	return n, nil
}

// timeParam reads the query parameter name as an ISO 8601 (RFC 3339)
// time, the zero time when it is absent.
func timeParam(q url.Values, name string) (time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := events.ParseTime(v)
	if err != nil {
		return time.Time{}, onramp.Errorf(onramp.EINVALID, "%s must be an ISO 8601 time such as 2026-11-25T10:00:00Z, not %q.", name, v)
	}
	return t, nil
}

func splitList(vs []string) []string {
	var out []string
	for _, v := range vs {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}
