package httpapi

import (
	"fmt"
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the request metrics, labelled by route template, method and
// status code only: never the raw path or a device id, so their number is
// bounded. The status label is "code", as promhttp's instrumentation names it.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	size     *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

// newMetrics makes the request metrics and, on reg, sensorhub_api_ready,
// which runs the readiness check at scrape time, and sensorhub_build_info.
func newMetrics(reg prometheus.Registerer, version string, ready func() bool) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sensorhub_http_requests_total",
			Help: "HTTP requests answered, by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sensorhub_http_request_duration_seconds",
			Help:    "Time from receiving a request to finishing its response, by route template and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 120},
		}, []string{"route", "method"}),
		size: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sensorhub_http_response_size_bytes",
			Help:    "Bytes of response bodies, by route template and method.",
			Buckets: prometheus.ExponentialBuckets(256, 4, 10), // 256 B to 64 MiB
		}, []string{"route", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sensorhub_http_requests_in_flight",
			Help: "HTTP requests being served.",
		}),
	}
	readyGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sensorhub_api_ready",
		Help: "1 when /readyz would pass (database reachable, schema current, not shutting down), else 0.",
	}, func() float64 {
		if ready() {
			return 1
		}
		return 0
	})
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "sensorhub_build_info",
		Help:        "Always 1; its labels name the build's version (set with -ldflags -X main.version=...) and Go version.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.duration, m.size, m.inFlight, readyGauge, buildInfo} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *metrics) observe(route, method string, status int, d time.Duration, bytes int64) {
	method = methodLabel(method)
	m.requests.WithLabelValues(route, method, codeLabel(status)).Inc()
	m.duration.WithLabelValues(route, method).Observe(d.Seconds())
	m.size.WithLabelValues(route, method).Observe(float64(bytes))
}

// methodLabel folds methods clients invent into "other".
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return m
	}
	return "other"
}
