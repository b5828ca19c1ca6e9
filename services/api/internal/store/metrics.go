package store

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterMetrics registers the store's metrics on reg: the duration of
// each database operation (sensorhub_db_query_duration_seconds), the pool's
// connections (sensorhub_db_pool_*) and the dataset's state
// (sensorhub_dataset_last_load_timestamp_seconds,
// sensorhub_rollup_pending_ranges, sensorhub_rollup_pending_oldest_age_seconds), read from the database at scrape time,
// and whether ListenDatasetVersion listens (sensorhub_dataset_version_listener_up).
func (s *Store) RegisterMetrics(reg prometheus.Registerer) error {
	collectors := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sensorhub_db_pool_max_conns", Help: "Most connections the API's pool may hold.",
		}, func() float64 { return float64(s.pool.Stat().MaxConns()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sensorhub_db_pool_acquired_conns", Help: "Connections of the pool in use by a request.",
		}, func() float64 { return float64(s.pool.Stat().AcquiredConns()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sensorhub_db_pool_idle_conns", Help: "Idle connections of the pool.",
		}, func() float64 { return float64(s.pool.Stat().IdleConns()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sensorhub_db_pool_acquire_wait_seconds_total", Help: "Time requests spent waiting for a pool connection.",
		}, func() float64 { return s.pool.Stat().AcquireDuration().Seconds() }),
		&datasetCollector{s: s},
		s.queryDuration,
		s.listenerUp,
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register store metrics: %w", err)
		}
	}
	return nil
}

var (
	lastLoadDesc = prometheus.NewDesc("sensorhub_dataset_last_load_timestamp_seconds",
		"When the dataset version last changed (the end of an ingest run), as a Unix time.", nil, nil)
	pendingDesc = prometheus.NewDesc("sensorhub_rollup_pending_ranges",
		"Time ranges waiting for a rollup refresh (rows of sensorhub.rollup_pending); 0 when materialization has caught up.", nil, nil)
	pendingAgeDesc = prometheus.NewDesc("sensorhub_rollup_pending_oldest_age_seconds",
		"How long the oldest pending rollup range has waited; 0 when none is pending.", nil, nil)
)

// datasetCollector reads the dataset's state on every scrape; when the
// database does not answer it reports nothing rather than stale values.
type datasetCollector struct{ s *Store }

func (c *datasetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lastLoadDesc
	ch <- pendingDesc
	ch <- pendingAgeDesc
}

const datasetStateSQL = `
SELECT (SELECT extract(epoch FROM loaded_at)::float8 FROM sensorhub.dataset_state),
       (SELECT count(*) FROM sensorhub.rollup_pending),
       (SELECT coalesce(extract(epoch FROM now() - min(created_at))::float8, 0) FROM sensorhub.rollup_pending)`

func (c *datasetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var (
		loaded     *float64
		pending    int64
		pendingAge float64
	)
	if err := c.s.queryRow(ctx, datasetStateSQL).Scan(&loaded, &pending, &pendingAge); err != nil {
		return
	}
	if loaded != nil {
		ch <- prometheus.MustNewConstMetric(lastLoadDesc, prometheus.GaugeValue, *loaded)
	}
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(pending))
	ch <- prometheus.MustNewConstMetric(pendingAgeDesc, prometheus.GaugeValue, max(0, pendingAge))
}
