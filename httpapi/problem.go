package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// Problem is an RFC 9457 problem document. Type is a relative URI naming
// the error code; docs/errors.md explains each.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// Extra members, such as the per-event rejections of a batch.
	Rejected any `json:"rejected,omitempty"`
	// Field names the form field a sign-in error is about (the headless
	// API's forms point at it as the hosted pages do).
	Field string `json:"field,omitempty"`
	// OAuthError is the OAuth error code of a refused authorization
	// request ("invalid_request", "unauthorized_client").
	OAuthError string `json:"oauth_error,omitempty"`
}

// EMETHOD is HTTP's own refusal of a method on an existing path; the parts
// never return it, so it lives here rather than in the kernel.
const EMETHOD = "method_not_allowed"

// statusOf is the one place error codes become HTTP statuses.
func statusOf(code string) int {
	switch code {
	case EMETHOD:
		return http.StatusMethodNotAllowed
	case onramp.EINVALID:
		return http.StatusBadRequest
	case onramp.ENOTFOUND:
		return http.StatusNotFound
	case onramp.ECONFLICT:
		return http.StatusConflict
	case onramp.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case onramp.EFORBIDDEN:
		return http.StatusForbidden
	case onramp.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case onramp.ERATELIMITED:
		return http.StatusTooManyRequests
	case onramp.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

var titles = map[string]string{
	onramp.EINVALID:      "Invalid request",
	onramp.ENOTFOUND:     "Not found",
	onramp.ECONFLICT:     "Conflict",
	onramp.EUNAUTHORIZED: "Unauthorized",
	onramp.EFORBIDDEN:    "Forbidden",
	onramp.ETOOLARGE:     "Payload too large",
	onramp.ERATELIMITED:  "Too many requests",
	onramp.EUNAVAILABLE:  "Service unavailable",
	onramp.EINTERNAL:     "Internal error",
	EMETHOD:              "Method not allowed",
}

// writeError answers with the problem document for err. Internal errors are
// logged with the request id and reach the client only as "Internal error."
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := onramp.ErrorCode(err)
	if errors.Is(err, errBodyTooLarge) {
		code = onramp.ETOOLARGE
	}
	status := statusOf(code)
	p := Problem{Type: "/problems/" + code, Title: titles[code], Status: status, Detail: onramp.ErrorMessage(err), RequestID: requestID(r.Context())}
	if errors.Is(err, errBodyTooLarge) {
		p.Detail = "The request body is larger than the limit of 500 KB (after decompression)."
	}
	var oe *onramp.Error
	p.Field, p.OAuthError = auth.ErrorField(err), auth.OAuthErrorCode(err)
	if errors.As(err, &oe) && oe.Detail != nil && p.OAuthError == "" {
		p.Rejected = oe.Detail
	}
	if status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "err", err, "request_id", p.RequestID, "path", r.URL.Path)
	} else {
		s.log.DebugContext(r.Context(), "request refused", "code", code, "detail", p.Detail, "request_id", p.RequestID, "path", r.URL.Path)
	}
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		retry := time.Second
		if oe != nil && oe.RetryAfter > retry {
			retry = oe.RetryAfter
		}
		w.Header().Set("Retry-After", strconv.Itoa(int((retry+time.Second-1)/time.Second)))
	}
	if status == http.StatusUnauthorized && strings.HasPrefix(r.URL.Path, "/api") {
		scheme := "Bearer"
		if strings.HasPrefix(r.URL.Path, flowsPath) {
			scheme = "Flow" // the headless API's flow secret (headless.go)
		}
		w.Header().Set("WWW-Authenticate", scheme+` realm="onramp"`)
	}
	writeJSONStatus(w, status, "application/problem+json", p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	writeJSONStatus(w, status, "application/json", v)
}

func writeJSONStatus(w http.ResponseWriter, status int, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	// goccy/go-json encodes a page of 50 events 3.6x faster than
	// encoding/json (it does not re-compact every json.RawMessage) and
	// escapes HTML the same way. An encode error here means the client
	// went away; nothing to tell it.
	_ = gojson.NewEncoder(w).Encode(v)
}
