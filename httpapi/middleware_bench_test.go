package httpapi_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/onramp-dev/onramp/httpapi"
)

// BenchmarkMiddleware is what every request pays around its handler
// (request id, recovery, routing, metrics, logging), measured on
// GET /healthz, whose handler writes a small JSON object.
func BenchmarkMiddleware(b *testing.B) {
	s := httpapi.New(httpapi.Config{Registry: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler)})
	req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}
