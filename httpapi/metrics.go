package httpapi

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are Onramp's Prometheus metrics. It also receives the ingest
// committer's measurements (it implements events.Metrics).
type Metrics struct {
	requests *prometheus.HistogramVec
	// observers holds requests' histogram per route and status, so a
	// request does not hash its labels (routes and statuses are few).
	observers sync.Map // routeStatus → prometheus.Observer
	observed  atomic.Int64

	accepted   *prometheus.CounterVec
	rejected   *prometheus.CounterVec
	duplicates *prometheus.CounterVec
	commit     *prometheus.HistogramVec
	groupSize  prometheus.Histogram
	// liveStreams counts open GET /api/live streams; liveOverflows those
	// cut because their client read too slowly.
	liveStreams   prometheus.Gauge
	liveOverflows prometheus.Counter
}

// NewMetrics registers the metrics (and the Go runtime collectors) in reg.
func NewMetrics(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "onramp_http_request_duration_seconds",
			Help:    "HTTP request latency by route and status.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"route", "status"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onramp_ingest_events_accepted_total", Help: "Events committed, by property.",
		}, []string{"property"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onramp_ingest_events_rejected_total", Help: "Events refused, by property and reason code.",
		}, []string{"property", "code"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onramp_ingest_events_duplicate_total", Help: "Events dropped as repeats of an earlier messageId.",
		}, []string{"property"}),
		commit: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "onramp_db_commit_duration_seconds",
			Help:    "Time to commit one ingest group (resolution, inserts, fsync).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"result"}),
		groupSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "onramp_db_commit_group_events",
			Help:    "Events per ingest transaction (group commit).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}),
		liveStreams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "onramp_live_streams_open", Help: "Open live streams (GET /api/live).",
		}),
		liveOverflows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "onramp_live_overflows_total", Help: "Live streams closed because their client fell behind.",
		}),
	}
	reg.MustRegister(m.requests, m.accepted, m.rejected, m.duplicates, m.commit, m.groupSize, m.liveStreams, m.liveOverflows,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

type routeStatus struct {
	route  string
	status int
}

func (m *Metrics) requestObserver(route string, status int) prometheus.Observer {
	k := routeStatus{route, status}
	if o, ok := m.observers.Load(k); ok {
		return o.(prometheus.Observer)
	}
	o := m.requests.WithLabelValues(route, strconv.Itoa(status))
	// Routes are the mux's patterns; the bound is only a safety net.
	if m.observed.Add(1) <= 2000 {
		m.observers.Store(k, o)
	}
	return o
}

func (m *Metrics) Accepted(property string, n int) {
	if n > 0 {
		m.accepted.WithLabelValues(property).Add(float64(n))
	}
}

func (m *Metrics) Rejected(property, code string, n int) {
	if n > 0 {
		m.rejected.WithLabelValues(property, code).Add(float64(n))
	}
}

func (m *Metrics) Duplicates(property string, n int) {
	if n > 0 {
		m.duplicates.WithLabelValues(property).Add(float64(n))
	}
}

func (m *Metrics) Commit(d time.Duration, events int, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.commit.WithLabelValues(result).Observe(d.Seconds())
	m.groupSize.Observe(float64(events))
}
