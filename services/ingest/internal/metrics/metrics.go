// Package metrics exposes a load as Prometheus metrics on two registries:
//
//   - Live, served on -metrics-addr while the job runs: the loader's counters
//     as they grow (sensorhub_ingest_readings_total{result},
//     sensorhub_ingest_bytes_total, sensorhub_ingest_batches_total) and the
//     Go and process collectors (go_*, process_*).
//   - LastRun, pushed to a Pushgateway at the end, the convention for batch
//     jobs that may finish between two scrapes: gauges describing the run
//     that just ended, named sensorhub_ingest_last_run_*, and
//     sensorhub_ingest_last_success_timestamp_seconds.
//
// The Pushgateway keeps what it was sent until the next push replaces it, so
// every pushed value is a last-run value and says so in its name, and the
// runtime metrics, which describe a process that has exited by then, are
// never pushed.
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

// Metrics are the ingest job's metrics.
type Metrics struct {
	// Live is served on -metrics-addr during the run.
	Live *prometheus.Registry
	// LastRun is what Push sends: the finished run's values only.
	LastRun *prometheus.Registry

	c           *copyload.Counters
	duration    prometheus.Gauge
	failed      prometheus.Gauge
	readings    *prometheus.GaugeVec
	bytes       prometheus.Gauge
	batches     prometheus.Gauge
	lastSuccess prometheus.Gauge
}

// New registers the job's metrics; the live counters are read from c at each
// scrape, so the loader's hot path only increments atomics.
func New(c *copyload.Counters) *Metrics {
	m := &Metrics{
		Live:    prometheus.NewRegistry(),
		LastRun: prometheus.NewRegistry(),
		c:       c,
		duration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sensorhub_ingest_last_run_duration_seconds", Help: "Wall time of the last ingest run.",
		}),
		failed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sensorhub_ingest_last_run_failed", Help: "1 when the last ingest run failed, else 0.",
		}),
		readings: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sensorhub_ingest_last_run_readings",
			Help: "Readings of the last ingest run by outcome: read, inserted, duplicate, updated, rejected.",
		}, []string{"result"}),
		bytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sensorhub_ingest_last_run_bytes", Help: "Input bytes the last ingest run read (after gunzip).",
		}),
		batches: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sensorhub_ingest_last_run_batches", Help: "Batches the last ingest run committed.",
		}),
		// Not a last-run value: a failed run leaves it as it was.
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sensorhub_ingest_last_success_timestamp_seconds", Help: "Unix time the last successful ingest run ended.",
		}),
	}
	m.Live.MustRegister(&liveCollector{c: c},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.LastRun.MustRegister(m.duration, m.failed, m.readings, m.bytes, m.batches)
	return m
}

// Finish records the run's outcome in LastRun; a failed run leaves the last
// success alone.
func (m *Metrics) Finish(took time.Duration, err error) {
	c := m.c
	m.duration.Set(took.Seconds())
	for result, v := range map[string]int64{
		"read": c.Read.Load(), "inserted": c.Inserted.Load(), "duplicate": c.Duplicates.Load(),
		"updated": c.Updated.Load(), "rejected": c.Rejected.Load(),
	} {
		m.readings.WithLabelValues(result).Set(float64(v))
	}
	m.bytes.Set(float64(c.Bytes.Load()))
	m.batches.Set(float64(c.Batches.Load()))
	if err != nil {
		m.failed.Set(1)
		return
	}
	m.failed.Set(0)
	m.lastSuccess.SetToCurrentTime()
	// Registered only now: a Pushgateway keeps the previous value of a metric
	// the push does not carry, which is what a failed run must not overwrite.
	_ = m.LastRun.Register(m.lastSuccess)
}

// Serve exposes Live on addr's /metrics until ctx ends.
func (m *Metrics) Serve(ctx context.Context, addr string, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Live, promhttp.HandlerOpts{}))
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

// Push sends LastRun to the Pushgateway at url with POST, which replaces the
// job group's metrics of the same names and keeps the others, such as the
// last success of an earlier run when this one failed.
func (m *Metrics) Push(ctx context.Context, url string) error {
	if err := push.New(url, Job).Gatherer(m.LastRun).AddContext(ctx); err != nil {
		return fmt.Errorf("push metrics to %s: %w", url, err)
	}
	return nil
}

var (
	readingsDesc = prometheus.NewDesc("sensorhub_ingest_readings_total",
		"Readings of the running ingest job by outcome: read, inserted, duplicate, updated, rejected.", []string{"result"}, nil)
	bytesDesc   = prometheus.NewDesc("sensorhub_ingest_bytes_total", "Input bytes the running ingest job read (after gunzip).", nil, nil)
	batchesDesc = prometheus.NewDesc("sensorhub_ingest_batches_total", "Batches the running ingest job committed.", nil, nil)
)

// liveCollector turns the loader's live atomics into counters at scrape time.
type liveCollector struct{ c *copyload.Counters }

func (lc *liveCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- readingsDesc
	ch <- bytesDesc
	ch <- batchesDesc
}

func (lc *liveCollector) Collect(ch chan<- prometheus.Metric) {
	c := lc.c
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
