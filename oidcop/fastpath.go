package oidcop

import (
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/onramp-dev/onramp/auth"
)

// Introspection and userinfo are the provider's hottest reads, and op
// spent more of their CPU on its machinery than on the answer: form
// decoding by reflection (zitadel/schema), tracing spans, and JSON written
// three times over (struct → JSON → map → JSON, then compacted). These
// answer the common, successful request directly, with the same checks
// (the same storage calls, client authentication and token rules) and the
// same bytes as op (TestDirectAnswersMatchOp). Anything else, including
// every failure, returns false and op answers it as before: a second,
// read-only pass over a request that fails.

// introspect answers POST /oauth/introspect with Basic client credentials
// and a form of only token (and token_type_hint), each once.
func (p *Provider) introspect(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		return false
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		return false
	}
	if err := r.ParseForm(); err != nil {
		// op would parse again and find the form empty, not broken.
		writeOAuthError(w, http.StatusBadRequest, string(oidc.InvalidRequest), "The request body is not a valid form.")
		return true
	}
	for k, v := range r.Form {
		if (k != "token" && k != "token_type_hint") || len(v) != 1 {
			return false
		}
	}
	var err error
	if id, err = url.QueryUnescape(id); err != nil {
		return false
	}
	if secret, err = url.QueryUnescape(secret); err != nil {
		return false
	}
	ctx := r.Context()
	if err := (&storage{p: p}).AuthorizeClientIDSecret(ctx, id, secret); err != nil {
		return false
	}
	tokenID, subject, ok := p.tokenIDAndSubject(r.Form.Get("token"))
	if !ok {
		return false
	}
	t, err := p.oauth.Introspect(ctx, auth.IntrospectParams{TokenID: tokenID, Subject: subject, Caller: id})
	if err != nil {
		// op answers every such token inactive, whatever the reason.
		writeJSONBytes(w, []byte("{\"active\":false}\n"))
		return true
	}
	writeJSONBytes(w, p.appendIntrospection(make([]byte, 0, 512), t))
	return true
}

// appendIntrospection writes what op's IntrospectionResponse marshals to
// for the fields SetIntrospectionFromToken fills, in its field order.
func (p *Provider) appendIntrospection(b []byte, t *auth.AccessToken) []byte {
	b = append(b, `{"active":true`...)
	if len(t.Scopes) > 0 {
		b = appendField(b, "scope", strings.Join(t.Scopes, " "))
	}
	b = appendField(b, "client_id", t.ClientID)
	b = appendField(b, "token_type", "Bearer")
	b = appendTime(b, "exp", t.ExpiresAt.Unix(), t.ExpiresAt.IsZero())
	b = appendTime(b, "iat", t.CreatedAt.Unix(), t.CreatedAt.IsZero())
	b = appendTime(b, "nbf", t.CreatedAt.Unix(), t.CreatedAt.IsZero())
	b = appendField(b, "sub", t.Subject)
	if len(t.Audience) > 0 {
		b = append(b, `,"aud":[`...)
		for i, a := range t.Audience {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, a)
		}
		b = append(b, ']')
	}
	b = appendField(b, "iss", p.oauth.Issuer())
	b = appendField(b, "jti", t.ID)
	return append(b, "}\n"...)
}

// userinfo answers GET /oauth/userinfo with a Bearer token.
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) bool {
	const bearer = "Bearer " // op's oidc.PrefixBearer, matched as op does
	h := r.Header.Get("Authorization")
	if r.Method != http.MethodGet || len(h) < len(bearer) || !strings.EqualFold(h[:len(bearer)], bearer) {
		return false
	}
	tokenID, subject, ok := p.tokenIDAndSubject(h[len(bearer):])
	if !ok {
		return false
	}
	ctx := r.Context()
	t, err := p.oauth.UserinfoToken(ctx, tokenID, subject)
	if err != nil {
		return false
	}
	claims, err := p.claims(ctx, t.ClientID, t.Subject, t.Scopes)
	if err != nil {
		return false
	}
	// op merges the typed fields (only sub is set) over the extra claims
	// and marshals the map: keys sorted, sub winning.
	if t.Subject != "" {
		merged := make(map[string]any, len(claims)+1)
		maps.Copy(merged, claims)
		merged["sub"] = t.Subject
		claims = merged
	}
	body, err := appendObject(make([]byte, 0, 512), claims)
	if err != nil {
		return false
	}
	writeJSONBytes(w, append(body, '\n'))
	return true
}

// appendObject writes m as encoding/json writes a map: keys in byte
// order, strings and booleans directly, other values through
// encoding/json.
func appendObject(b []byte, m map[string]any) ([]byte, error) {
	keys := slices.Sorted(maps.Keys(m))
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		switch v := m[k].(type) {
		case string:
			b = appendString(b, v)
		case bool:
			b = strconv.AppendBool(b, v)
		default:
			j, err := json.Marshal(v)
			if err != nil {
				return nil, err
			}
			b = append(b, j...)
		}
	}
	return append(b, '}'), nil
}

// tokenIDAndSubject is op's getTokenIDAndSubject for the opaque tokens
// Onramp issues; other tokens are left to op.
func (p *Provider) tokenIDAndSubject(token string) (string, string, bool) {
	plain, err := p.crypto.Decrypt(token)
	if err != nil {
		return "", "", false
	}
	tokenID, subject, ok := strings.Cut(plain, ":")
	if !ok || strings.Contains(subject, ":") {
		return "", "", false
	}
	return tokenID, subject, true
}

func writeJSONBytes(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// appendField appends ,"name":"value" unless value is empty (omitempty).
func appendField(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, value)
}

func appendTime(b []byte, name string, unix int64, zero bool) []byte {
	if zero || unix == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return strconv.AppendInt(b, unix, 10)
}

// appendString quotes s as encoding/json does (HTML characters escaped):
// plain ASCII directly, anything else through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// refuseIntrospection answers an introspection request whose client
// cannot be authenticated, or whose form cannot be read, with an OAuth
// error (RFC 6749 §5.2, as /oauth/token does): op's own answer is its
// error's Go text as text/plain with 401. It runs op's own check
// (op.ParseTokenIntrospectionRequest) so that it refuses exactly what op
// would, and lets every other request through to op unchanged.
func (p *Provider) refuseIntrospection(w http.ResponseWriter, r *http.Request) bool {
	_, _, err := op.ParseTokenIntrospectionRequest(r, p.op)
	if err == nil {
		return false
	}
	var e *oidc.Error
	switch {
	case !errors.As(err, &e):
		// The form decoder's error: fields op cannot read.
		writeOAuthError(w, http.StatusBadRequest, string(oidc.InvalidRequest), "The request could not be read.")
	case e.ErrorType == oidc.InvalidRequest:
		writeOAuthError(w, http.StatusBadRequest, string(oidc.InvalidRequest), "The request body is not a valid form.")
	case e.ErrorType == oidc.ServerError:
		p.log.ErrorContext(r.Context(), "introspection: client authentication", "err", err)
		writeOAuthError(w, http.StatusInternalServerError, string(oidc.ServerError), "")
	default:
		// invalid_client (no or unreadable credentials) and op's
		// unauthorized_client (wrong ones) alike: RFC 6749 §5.2 names
		// every failed client authentication invalid_client, answered
		// with 401 and a challenge for the scheme introspection takes.
		w.Header().Set("WWW-Authenticate", `Basic realm="onramp"`)
		desc := "Client authentication failed."
		if _, _, ok := r.BasicAuth(); !ok {
			desc = "Client authentication is required: send the client id and secret with HTTP Basic."
		}
		writeOAuthError(w, http.StatusUnauthorized, string(oidc.InvalidClient), desc)
	}
	return true
}

// writeOAuthError writes an OAuth error response (RFC 6749 §5.2).
func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	b, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{code, description})
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
