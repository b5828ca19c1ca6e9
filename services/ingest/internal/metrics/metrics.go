// Package metrics exposes a load's progress as Prometheus metrics: scraped
// while the job runs (when it listens on an address) and pushed to a
// Pushgateway at the end, the convention for batch jobs that may finish
// between two scrapes.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/push"

	"github.com/sensorhub/sensorhub/services/ingest/internal/copyload"
)

// Job is the Pushgateway job label of the ingest job.
const Job = "sensorhub_ingest"

// Metrics are the ingest job's metrics on their own registry.
type Metrics struct {
	Registry    *prometheus.Registry
	duration    prometheus.Gauge
	lastSuccess prometheus.Gauge
	failed      prometheus.Gauge
}

// New registers the job's metrics; the counters are read from c at each
// scrape, so the loader's hot path only increments atomics.
func New(c *copyload.Counters) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		duration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sensorhub_ingest_duration_seconds", Help: "Wall time of the last ingest run.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sensorhub_ingest_last_success_timestamp_seconds", Help: "Unix time the last successful ingest run ended.",
		}),
		failed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sensorhub_ingest_failed", Help: "1 when the last ingest run failed, else 0.",
		}),
	}
	reg.MustRegister(m.duration, m.failed, &counterCollector{c: c},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Finish records the run's outcome; a failed run leaves last success alone.
func (m *Metrics) Finish(took time.Duration, err error) {
	m.duration.Set(took.Seconds())
	if err != nil {
		m.failed.Set(1)
		return
	}
	m.failed.Set(0)
	m.lastSuccess.SetToCurrentTime()
	// Registered only now: a Pushgateway keeps the previous value of a metric
	// the push does not carry, which is what a failed run must not overwrite.
	_ = m.Registry.Register(m.lastSuccess)
}

// Serve exposes /metrics on addr until ctx ends.
func (m *Metrics) Serve(ctx context.Context, addr string, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server", "err", err)
		}
	}()
	logger.Info("metrics listening", "addr", ln.Addr().String())
	return nil
}

// Push sends the metrics to the Pushgateway at url, replacing the job's group
// (push.Add keeps metrics this run did not set, such as a previous success).
func (m *Metrics) Push(ctx context.Context, url string) error {
	if err := push.New(url, Job).Gatherer(m.Registry).AddContext(ctx); err != nil {
		return fmt.Errorf("push metrics to %s: %w", url, err)
	}
	return nil
}

var (
	readingsDesc = prometheus.NewDesc("sensorhub_ingest_readings_total",
		"Readings by outcome: read, inserted, duplicate, updated, rejected.", []string{"result"}, nil)
	bytesDesc   = prometheus.NewDesc("sensorhub_ingest_bytes_total", "Input bytes read (after gunzip).", nil, nil)
	batchesDesc = prometheus.NewDesc("sensorhub_ingest_batches_total", "Batches committed.", nil, nil)
)

// counterCollector turns the loader's live atomics into counters at scrape time.
type counterCollector struct{ c *copyload.Counters }

func (cc *counterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- readingsDesc
	ch <- bytesDesc
	ch <- batchesDesc
}

func (cc *counterCollector) Collect(ch chan<- prometheus.Metric) {
	c := cc.c
	for _, r := range []struct {
		label string
		v     int64
	}{
		{"read", c.Read.Load()}, {"inserted", c.Inserted.Load()}, {"duplicate", c.Duplicates.Load()},
		{"updated", c.Updated.Load()}, {"rejected", c.Rejected.Load()},
	} {
		ch <- prometheus.MustNewConstMetric(readingsDesc, prometheus.CounterValue, float64(r.v), r.label)
	}
	ch <- prometheus.MustNewConstMetric(bytesDesc, prometheus.CounterValue, float64(c.Bytes.Load()))
	ch <- prometheus.MustNewConstMetric(batchesDesc, prometheus.CounterValue, float64(c.Batches.Load()))
}
