package writeapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sensorhub/sensorhub/services/ingest/internal/copyload"
)

// Metrics are the write service's Prometheus metrics. A nil *Metrics
// records nothing.
type Metrics struct {
	requests   *prometheus.CounterVec
	duration   prometheus.Histogram
	readings   *prometheus.CounterVec
	groupSize  prometheus.Histogram
	commitTime prometheus.Histogram
	limited    prometheus.Counter
}

// NewMetrics registers the service's metrics on reg; queued reports the
// readings waiting for a group commit.
func NewMetrics(reg prometheus.Registerer, queued func() float64) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sensorhub_write_requests_total", Help: "HTTP requests to the write service, by status code.",
		}, []string{"code"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sensorhub_write_request_duration_seconds", Help: "Time from a push's arrival to its acknowledgement (200 answers).",
			Buckets: []float64{.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		readings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sensorhub_write_readings_total", Help: "Pushed readings, by result: inserted, duplicate, updated or rejected.",
		}, []string{"result"}),
		groupSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sensorhub_write_group_readings", Help: "Readings per group commit (one transaction shared by pushes).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10),
		}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sensorhub_write_commit_seconds", Help: "Time to write and commit one group, retries included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		limited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sensorhub_write_rate_limited_total", Help: "Pushes refused with 429 by a key's rate limit.",
		}),
	}
	queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sensorhub_write_queue_readings", Help: "Readings validated and waiting for a group commit.",
	}, queued)
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.readings, m.groupSize, m.commitTime, m.limited, queue} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, r := range []string{"inserted", "duplicate", "updated", "rejected"} {
		m.readings.WithLabelValues(r)
	}
	return m, nil
}

// Committed records one group commit; it is the Committer's OnCommit.
func (m *Metrics) Committed(s copyload.GroupStats) {
	if m == nil {
		return
	}
	m.groupSize.Observe(float64(s.Readings))
	m.commitTime.Observe(s.Took.Seconds())
}

func (m *Metrics) written(r WriteResult, took time.Duration) {
	if m == nil {
		return
	}
	m.duration.Observe(took.Seconds())
	m.readings.WithLabelValues("inserted").Add(float64(r.Inserted))
	m.readings.WithLabelValues("duplicate").Add(float64(r.Duplicates))
	m.readings.WithLabelValues("updated").Add(float64(r.Updated))
	m.readings.WithLabelValues("rejected").Add(float64(r.Rejected))
}

func (m *Metrics) rateLimited() {
	if m != nil {
		m.limited.Inc()
	}
}

// instrument counts every answer by status code.
func (m *Metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		m.requests.WithLabelValues(strconv.Itoa(rec.code)).Inc()
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Handler serves the registry's metrics in the Prometheus format.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}
