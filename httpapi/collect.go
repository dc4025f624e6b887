package httpapi

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/property"
)

// errBodyTooLarge's text is shown to clients as the problem detail.
var errBodyTooLarge = errors.New("the request body is larger than the limit of 500 KB (after decompression)")

// readBody reads at most limit bytes of body, decompressing gzip and
// deflate. Both the wire size and the decompressed size are capped, so a
// small compressed bomb cannot blow up memory.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	raw := http.MaxBytesReader(w, r.Body, limit)
	var rd io.Reader = raw
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(raw)
		if err != nil {
			return nil, bodyError(err, "The body is not valid gzip.")
		}
		defer zr.Close()
		rd = zr
	case "deflate":
		// HTTP deflate is zlib-wrapped, but some clients send raw deflate:
		// accept both.
		b, err := io.ReadAll(raw)
		if err != nil {
			return nil, bodyError(err, "The body could not be read.")
		}
		if zr, err := zlib.NewReader(bytes.NewReader(b)); err == nil {
			defer zr.Close()
			rd = zr
		} else {
			rd = flate.NewReader(bytes.NewReader(b))
		}
	default:
		return nil, onramp.Errorf(onramp.EINVALID, "Content-Encoding %q is not supported; use gzip, deflate or none.", enc)
	}
	b, err := io.ReadAll(io.LimitReader(rd, limit+1))
	if err != nil {
		return nil, bodyError(err, "The body could not be read or decompressed.")
	}
	if int64(len(b)) > limit {
		return nil, errBodyTooLarge
	}
	return b, nil
}

func bodyError(err error, msg string) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errBodyTooLarge
	}
	return onramp.Errorf(onramp.EINVALID, "%s", msg)
}

// writeKeyFromHeaders finds the write key the way Segment's libraries send
// it: X-Write-Key, or Basic auth with the key as user name.
func writeKeyFromHeaders(r *http.Request) string {
	if k := r.Header.Get("X-Write-Key"); k != "" {
		return k
	}
	if u, _, ok := r.BasicAuth(); ok {
		return u
	}
	return ""
}

type collectResponse struct {
	Success    bool                `json:"success"`
	Accepted   int                 `json:"accepted"`
	Duplicates int                 `json:"duplicates"`
	Rejected   []rejectionResponse `json:"rejected"`
}

type rejectionResponse struct {
	Index     int    `json:"index"`
	MessageID string `json:"messageId,omitempty"`
	Code      string `json:"code"`
	Reason    string `json:"reason"`
}

// collect serves one tracking endpoint; typ is "" for batches.
func (s *Server) collect(typ string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		received := s.Clock.Now()
		if origin := r.Header.Get("Origin"); origin != "" {
			// Every answer is readable by the page, refusals included, so the
			// SDK can tell a refusal (do not retry) from a network failure.
			// Responses hold nothing about people; the origin rule is
			// enforced by refusing to store, below.
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Access-Control-Expose-Headers", "Retry-After, X-Request-Id")
			w.Header().Add("Vary", "Origin")
		}
		key := writeKeyFromHeaders(r)
		var prop *property.Property
		if key != "" {
			p, err := s.Properties.ByWriteKey(ctx, key)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			prop = p
		}
		if prop != nil && !s.allowOrigin(w, r, prop) {
			return
		}
		body, err := readBody(w, r, events.MaxRequestBytes)
		if err != nil {
			s.refuseRequest(w, r, prop, err, nil)
			return
		}
		batch, decodeErr := events.DecodeBody(body, typ)
		if prop == nil {
			if batch == nil || batch.WriteKey == "" {
				s.writeError(w, r, onramp.Errorf(onramp.EUNAUTHORIZED, "No write key: send it as the Basic auth user name, in X-Write-Key, or as \"writeKey\" in the body."))
				return
			}
			if prop, err = s.Properties.ByWriteKey(ctx, batch.WriteKey); err != nil {
				s.writeError(w, r, err)
				return
			}
			if !s.allowOrigin(w, r, prop) {
				return
			}
		}
		if decodeErr != nil {
			s.refuseRequest(w, r, prop, decodeErr, body)
			return
		}
		res, err := s.Events.Ingest(ctx, events.IngestParams{
			Batch:    batch,
			Type:     typ,
			Envelope: events.Envelope{PropertyID: prop.ID, ReceivedAt: received, IP: s.clientIP(r)},
		})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		out := collectResponse{Success: true, Accepted: res.Accepted + res.Suppressed, Duplicates: res.Duplicates, Rejected: []rejectionResponse{}}
		tooLarge := false
		for _, rj := range res.Rejected {
			out.Rejected = append(out.Rejected, rejectionResponse{Index: rj.Index, MessageID: rj.MessageID, Code: rj.Code, Reason: rj.Reason})
			tooLarge = tooLarge || rj.Code == events.CodeTooLarge
		}
		if out.Accepted == 0 && res.Duplicates == 0 && len(res.Rejected) > 0 {
			// Nothing in the request was usable: a client error that a
			// retry cannot fix.
			code, msg := onramp.EINVALID, "Every message in the request was rejected; see \"rejected\" for each reason."
			if typ != "" {
				msg = res.Rejected[0].Reason
				if tooLarge {
					code = onramp.ETOOLARGE
				}
			}
			s.writeError(w, r, &onramp.Error{Code: code, Message: msg, Detail: out.Rejected})
			return
		}
		writeJSON(w, http.StatusOK, out)
	})
}

// refuseRequest answers a request refused as a whole and, when the sender
// is known, records it in the rejected-events log.
func (s *Server) refuseRequest(w http.ResponseWriter, r *http.Request, prop *property.Property, err error, body []byte) {
	if prop != nil {
		code := events.CodeInvalidJSON
		if errors.Is(err, errBodyTooLarge) || onramp.ErrorCode(err) == onramp.ETOOLARGE {
			code = events.CodeTooLarge
		}
		reason := onramp.ErrorMessage(err)
		if errors.Is(err, errBodyTooLarge) {
			reason = "The request body is larger than the limit of 500 KB (after decompression)."
		}
		s.logRefusal(r, prop, code, reason, body)
	}
	s.writeError(w, r, err)
}

// logRefusal writes a request refused as a whole into the rejected-events
// log (index -1), so the property's debugger shows it.
func (s *Server) logRefusal(r *http.Request, prop *property.Property, code, reason string, body []byte) {
	rej := &events.Rejection{PropertyID: prop.ID, ReceivedAt: s.Clock.Now(), Index: -1, Code: code, Reason: reason}
	if len(body) > 0 {
		rej.Payload = bytes.ToValidUTF8(body[:min(len(body), events.MaxRejectedPayload)], []byte("\uFFFD"))
	}
	if err := s.Events.RecordRejection(r.Context(), rej); err != nil {
		s.log.Warn("record rejection", "err", err)
	}
}

// allowOrigin applies the property's CORS origins to a browser request. A
// property with no origins accepts any (like Segment); a listed set is
// enforced here, on the real request, because a text/plain POST or a
// beacon never sends a preflight.
func (s *Server) allowOrigin(w http.ResponseWriter, r *http.Request, p *property.Property) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if len(p.Origins) > 0 && !p.AllowsOrigin(origin) {
		err := onramp.Errorf(onramp.EFORBIDDEN, "Origin %s may not send events for this property; add it to the property's origins.", origin)
		s.logRefusal(r, p, events.CodeOriginNotAllowed, err.Message, nil)
		s.writeError(w, r, err)
		return false
	}
	return true
}

// preflight answers CORS preflights for the collection API. The preflight
// carries no write key, so the origin is checked on the real request.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Content-Encoding, X-Write-Key, X-Retry-Count, X-Request-Id")
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

// settings serves what analytics.js (analytics-next) loads at start, so the
// stock library runs against Onramp without Segment's CDN.
func (s *Server) settings(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("writeKey")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	p, err := s.Properties.ByWriteKey(r.Context(), key)
	if err != nil {
		s.writeError(w, r, onramp.Errorf(onramp.ENOTFOUND, "Unknown write key."))
		return
	}
	scheme, host := "http", r.Host
	if r.TLS != nil || (s.TrustProxy && r.Header.Get("X-Forwarded-Proto") == "https") {
		scheme = "https"
	}
	cache := "public, max-age=60"
	if u, err := url.Parse(s.PublicURL); err == nil && s.PublicURL != "" && u.Host != "" {
		scheme, host = u.Scheme, u.Host
	} else {
		// Built from this request's Host: a shared cache must not hand it
		// to others (a forged Host would otherwise poison it).
		cache = "private, max-age=60"
		w.Header().Add("Vary", "Host")
	}
	w.Header().Set("Cache-Control", cache)
	writeJSON(w, http.StatusOK, map[string]any{
		"integrations": map[string]any{
			"Segment.io": map[string]any{
				"apiKey":   p.WriteKey,
				"apiHost":  host + "/v1",
				"protocol": scheme,
			},
		},
		"plan":                      map[string]any{"track": map[string]any{"__default": map[string]any{"enabled": true, "integrations": map[string]any{}}}, "identify": map[string]any{"__default": map[string]any{"enabled": true}}, "group": map[string]any{"__default": map[string]any{"enabled": true}}},
		"edgeFunction":              map[string]any{},
		"analyticsNextEnabled":      true,
		"middlewareSettings":        map[string]any{},
		"enabledMiddleware":         map[string]any{},
		"metrics":                   map[string]any{"sampleRate": 0},
		"legacyVideoPluginsEnabled": false,
		"remotePlugins":             []any{},
	})
}

// clientMetrics accepts analytics-next's own telemetry and drops it: it is
// about the library, not about people.
func (s *Server) clientMetrics(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<10))
	w.WriteHeader(http.StatusNoContent)
}

// gzippedSDK compresses the SDK once per server.
func (s *Server) gzippedSDK(b []byte) []byte {
	s.sdkOnce.Do(func() {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(b)
		if zw.Close() == nil {
			s.sdkGz = buf.Bytes()
		}
	})
	return s.sdkGz
}
