package copyload_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
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
	"github.com/sensorhub/sensorhub/services/ingest/internal/dbretry"
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
		copyload.WithRetry(dbretry.Policy{Attempts: 20, FirstDelay: 50 * time.Millisecond, MaxDelay: 500 * time.Millisecond}))
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

// TestConnectionCutAtRandomPoints cuts the loader's connections through
// toxiproxy at a point chosen by a seed: after a random number of committed
// batches, every connection is closed once a random number of further bytes
// has gone to the server, so the cut lands anywhere — in a COPY stream, in
// the catalog update, between statements. With retries the load must ride
// it out; without, it must stop with a message naming the file and position,
// leave only whole batches behind, and a re-run must end exact. Either way
// the database must end up equal, reading for reading and series for series,
// to a load of the same input that met no fault.
func TestConnectionCutAtRandomPoints(t *testing.T) {
	var buf bytes.Buffer
	c := gen.Config{Seed: 11, Devices: 3, Params: 8, TextShare: 0.25, Start: time.Date(2024, 3, 30, 22, 0, 0, 0, time.UTC),
		Interval: time.Minute, Points: 1500, Format: dataset.NDJSON}
	if _, err := gen.Write(&buf, c); err != nil {
		t.Fatal(err)
	}
	input := buf.Bytes()
	const (
		total     = 3 * 8 * 1500
		batchSize = 1000
		name      = "cut.ndjson"
	)

	ref := dbtest.New(t)
	if res := load(t, ref.Pool, name, input, copyload.WithBatchSize(batchSize)); res.Inserted != total {
		t.Fatalf("reference load inserted %d, want %d", res.Inserted, total)
	}
	want := contentDigest(t, ref.Pool)

	for seed := range uint64(8) {
		retry := seed%2 == 0
		t.Run(fmt.Sprintf("seed=%d/retry=%v", seed, retry), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			afterBatches := rng.Int64N(total / batchSize / 2)
			// A batch of 1000 readings is ~40 kB of COPY data, so the cut
			// lands within the next batch or two of each connection.
			cutBytes := 1 + rng.Int64N(64<<10)

			d := dbtest.New(t)
			proxy, pool := proxiedPool(t, d.DSN)
			policy := dbretry.Policy{Attempts: 1}
			if retry {
				policy = dbretry.Policy{Attempts: 30, FirstDelay: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond}
			}
			counters := &copyload.Counters{}
			var logs syncBuffer
			l, err := copyload.NewLoader(t.Context(), pool, copyload.WithBatchSize(batchSize), copyload.WithWorkers(2),
				copyload.WithCounters(counters), copyload.WithRetry(policy),
				copyload.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			if err != nil {
				t.Fatal(err)
			}

			// The cut: once afterBatches batches are committed, every
			// connection (open or new) closes after cutBytes more bytes. It
			// stays until the loader has seen it (a retry, or the load's
			// end), so it is never a no-op that the test mistakes for a pass.
			// (The package's tests define their own close, so a context marks the end.)
			ended, loadDone := context.WithCancel(context.Background())
			cut := make(chan error, 1)
			go func() {
				for counters.Batches.Load() < afterBatches {
					select {
					case <-ended.Done():
						cut <- fmt.Errorf("the load ended after %d batches, before the cut", counters.Batches.Load())
						return
					case <-time.After(time.Millisecond):
					}
				}
				toxic := fmt.Sprintf(`{"name":"cut","type":"limit_data","stream":"upstream","attributes":{"bytes":%d}}`, cutBytes)
				if _, err := proxy.Toxics.AddToxicJson(strings.NewReader(toxic)); err != nil {
					cut <- err
					return
				}
				for !strings.Contains(logs.String(), "retrying the batch") {
					select {
					case <-ended.Done():
						cut <- nil
						return
					case <-time.After(time.Millisecond):
					}
				}
				cut <- proxy.Toxics.RemoveToxic(context.Background(), "cut")
			}()

			res, loadErr := l.Load(t.Context(), name, bytes.NewReader(input))
			loadDone()
			if err := <-cut; err != nil {
				t.Fatal(err)
			}
			_ = proxy.Toxics.RemoveToxic(context.Background(), "cut") // no-op when already gone

			if retry {
				if loadErr != nil || res.Err != nil {
					t.Fatalf("load with retries through the cut: %v / %v", loadErr, res.Err)
				}
				retries := strings.Count(logs.String(), "retrying the batch")
				if retries == 0 {
					t.Fatal("no batch was retried: the cut did not hit the load")
				}
				t.Logf("cut after %d batches + %d bytes: %d retried batch writes, inserted %d, duplicates %d",
					afterBatches, cutBytes, retries, res.Inserted, res.Duplicates)
			} else {
				if loadErr == nil {
					t.Fatalf("load without retries through a cut after %d batches + %d bytes succeeded", afterBatches, cutBytes)
				}
				if msg := loadErr.Error(); !strings.Contains(msg, name+":") || !strings.Contains(msg, "gave up") {
					t.Errorf("error does not name the file, position and reason: %v", loadErr)
				}
				// Nothing half-written: only whole batches, and the catalog
				// counts exactly what is stored.
				var n, catalog int64
				if err := d.Pool.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM sensorhub.readings),
					(SELECT coalesce(sum(reading_count), 0) FROM sensorhub.series)`).Scan(&n, &catalog); err != nil {
					t.Fatal(err)
				}
				if n%batchSize != 0 || n != catalog {
					t.Errorf("after the failed load: %d readings stored (not whole batches of %d?) and %d in the catalog", n, batchSize, catalog)
				}
				t.Logf("cut after %d batches + %d bytes stopped the load with %d of %d readings committed: %v",
					afterBatches, cutBytes, n, total, loadErr)

				rerun := load(t, d.Pool, name, input, copyload.WithBatchSize(batchSize))
				if rerun.Inserted != total-n || rerun.Duplicates != n {
					t.Errorf("re-run inserted %d and skipped %d, want %d and %d", rerun.Inserted, rerun.Duplicates, total-n, n)
				}
			}
			if got := contentDigest(t, d.Pool); got != want {
				t.Errorf("database differs from a load without faults:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// proxiedPool returns a toxiproxy proxy in front of the server of dsn and a
// pool whose connections go through it; both are closed when t ends.
func proxiedPool(t *testing.T, dsn string) (*toxiproxy.Proxy, *pgxpool.Pool) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	upstream := net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port)))
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	proxy := toxiproxy.NewProxy(srv, "pg", "127.0.0.1:0", upstream)
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Stop)
	host, port, err := net.SplitHostPort(proxy.Listen)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Host, cfg.ConnConfig.Port = host, uint16(p)
	cfg.ConnConfig.ConnectTimeout = 2 * time.Second
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return proxy, pool
}

// contentDigest summarises everything a load writes that must not depend on
// faults along the way: every reading with its offset and typed value, and
// every catalog row with its type, time range and count.
func contentDigest(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	const q = `
SELECT (SELECT count(*) FROM sensorhub.readings) || ' readings, ' ||
       (SELECT count(*) FROM sensorhub.series) || ' series, readings md5 ' ||
       (SELECT md5(string_agg(concat_ws('|', s.device_id, s.parameter, r.time, r.utc_offset_min, r.value_num, r.value_text),
                              E'\n' ORDER BY s.device_id, s.parameter, r.time))
          FROM sensorhub.readings r JOIN sensorhub.series s USING (series_id)) || ', series md5 ' ||
       (SELECT md5(string_agg(concat_ws('|', device_id, parameter, value_type, first_time, last_time, reading_count),
                              E'\n' ORDER BY device_id, parameter))
          FROM sensorhub.series)`
	var s string
	if err := pool.QueryRow(t.Context(), q).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOutageBeforeTheFirstBatch takes the database away before the load
// touches it, so the outage meets the series catalog and the partitions
// first, not a COPY: those statements must be retried as batches are.
// (CI caught a load failing on "create series" during an outage.)
func TestOutageBeforeTheFirstBatch(t *testing.T) {
	d := dbtest.New(t)
	proxy, pool := proxiedPool(t, d.DSN)
	var buf bytes.Buffer
	c := gen.Config{Seed: 3, Devices: 2, Params: 3, Start: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC),
		Interval: time.Minute, Points: 500, Format: dataset.NDJSON}
	if _, err := gen.Write(&buf, c); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	l, err := copyload.NewLoader(t.Context(), pool, copyload.WithBatchSize(1000),
		copyload.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
		copyload.WithRetry(dbretry.Policy{Attempts: 20, FirstDelay: 50 * time.Millisecond, MaxDelay: 200 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	pool.Reset() // no connection survives into the outage
	proxy.Stop()
	back := make(chan error, 1)
	go func() {
		time.Sleep(500 * time.Millisecond)
		back <- proxy.Start()
	}()
	res, err := l.Load(t.Context(), "outage.ndjson", bytes.NewReader(buf.Bytes()))
	if err := <-back; err != nil {
		t.Fatal(err)
	}
	if err != nil || res.Err != nil {
		t.Fatalf("load through an outage at its start: %v / %v", err, res.Err)
	}
	if !strings.Contains(logs.String(), "op=\"resolve series\"") {
		t.Errorf("the outage did not meet the series catalog; log:\n%s", logs.String())
	}
	var n int64
	if err := d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM sensorhub.readings`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if want := int64(2 * 3 * 500); n != want || res.Inserted != want {
		t.Errorf("stored %d, inserted %d; want %d", n, res.Inserted, want)
	}
}
