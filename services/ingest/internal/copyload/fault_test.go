package copyload_test

import (
	"bytes"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/services/ingest/internal/copyload"
	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
	"github.com/sensorhub/sensorhub/services/ingest/internal/gen"
)

// TestRetriesThroughConnectionLoss puts toxiproxy between the loader and
// PostgreSQL, cuts every connection in the middle of a load and keeps the
// database unreachable for a while: the loader must retry its batches and
// end with exactly the input's readings.
func TestRetriesThroughConnectionLoss(t *testing.T) {
	d := dbtest.New(t)
	cfg, err := pgxpool.ParseConfig(d.DSN)
	if err != nil {
		t.Fatal(err)
	}
	upstream := net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port)))
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	proxy := toxiproxy.NewProxy(srv, "pg", "127.0.0.1:0", upstream)
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	defer proxy.Stop()
	host, port, _ := net.SplitHostPort(proxy.Listen)
	p, _ := strconv.Atoi(port)
	cfg.ConnConfig.Host, cfg.ConnConfig.Port = host, uint16(p)
	cfg.ConnConfig.ConnectTimeout = 2 * time.Second
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	var buf bytes.Buffer
	c := gen.Config{Seed: 5, Devices: 4, Params: 10, TextShare: 0.3, Start: time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC),
		Interval: time.Minute, Points: 2000, Format: dataset.NDJSON}
	if _, err := gen.Write(&buf, c); err != nil {
		t.Fatal(err)
	}
	const total = 4 * 10 * 2000

	counters := &copyload.Counters{}
	var logs syncBuffer
	l, err := copyload.NewLoader(t.Context(), pool, copyload.WithBatchSize(2000), copyload.WithCounters(counters),
		copyload.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
		copyload.WithRetry(copyload.RetryPolicy{Attempts: 20, FirstDelay: 50 * time.Millisecond, MaxDelay: 500 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}

	// Cut the connections once a few batches are in, keep the database away
	// for a second, then let it back.
	outage := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(30 * time.Second)
		for counters.Batches.Load() < 5 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		proxy.Stop()
		time.Sleep(time.Second)
		outage <- proxy.Start()
	}()

	res, err := l.Load(t.Context(), "faulty.ndjson", bytes.NewReader(buf.Bytes()))
	if restartErr := <-outage; restartErr != nil {
		t.Fatalf("restart proxy: %v", restartErr)
	}
	if err != nil || res.Err != nil {
		t.Fatalf("load through the outage: %v / %v", err, res.Err)
	}
	var n, catalog int64
	if err := d.Pool.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM sensorhub.readings), (SELECT sum(reading_count) FROM sensorhub.series)`).Scan(&n, &catalog); err != nil {
		t.Fatal(err)
	}
	if n != total || catalog != total || res.Read != total || res.Inserted+res.Duplicates != total {
		t.Errorf("after the outage: %d stored, catalog %d, result %+v; want %d each", n, catalog, res, total)
	}
	retries := strings.Count(logs.String(), "retrying the batch")
	if retries == 0 {
		t.Error("the outage caused no retry: it did not hit the load")
	}
	t.Logf("%d retried batch writes; inserted %d, counted as duplicates after a commit whose answer was lost %d",
		retries, res.Inserted, res.Duplicates)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
