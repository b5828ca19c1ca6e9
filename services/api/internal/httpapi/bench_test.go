package httpapi

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/db/seed"
	"github.com/sensorhub/sensorhub/services/api/internal/auth"
)

// BenchmarkProcessRequest measures the original endpoint without filters:
// the whole reference dataset (20,000 readings, about 2 MB) per request.
// The original Flask service answered 7 such requests per second.
func BenchmarkProcessRequest(b *testing.B) {
	path := seed.FindReferenceFile()
	if path == "" {
		b.Skip("reference dataset not found")
	}
	readings, err := seed.ReadReferenceFile(path)
	if err != nil {
		b.Fatal(err)
	}
	d := dbtest.New(b)
	if err := seed.Load(b.Context(), d.Pool, readings); err != nil {
		b.Fatal(err)
	}
	s, err := NewServer(testDeps(d.Pool), Options{Auth: auth.Disabled()})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	srv := hs.URL
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := http.Get(srv + "/api/v1/core/process_request")
			if err != nil {
				b.Error(err)
				return
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || n < 1_000_000 {
				b.Errorf("status %d, %d bytes", resp.StatusCode, n)
				return
			}
			b.SetBytes(n)
		}
	})
}

// benchServer serves 8 days of one reading a minute of two series (one
// numeric with offsets, one text), rollups refreshed, configured as the
// API runs in bench/api.sh: auth off, metrics, a JSON access log at info
// level (to io.Discard), and the response cache off, so that every request
// runs its SQL and the benchmarks measure misses.
func benchServer(b *testing.B) (http.Handler, string) {
	d := dbtest.New(b)
	start := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		b.Fatal(err)
	}
	var rs []seed.Reading
	for i := range 8 * 24 * 60 {
		t := start.Add(time.Duration(i)*time.Minute + 1234567*time.Nanosecond/1000*1000)
		rs = append(rs, seed.Reading{DeviceID: "device.bench", Parameter: "parameter.num", Time: t.In(berlin), Num: seed.Num(float64(i%977)*1.37 + 0.1)})
		if i%10 == 0 {
			rs = append(rs, seed.Reading{DeviceID: "device.bench", Parameter: "parameter.text", Time: t, Text: seed.Text(fmt.Sprintf("state %d", i%7))})
		}
	}
	if err := seed.Load(b.Context(), d.Pool, rs); err != nil {
		b.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	deps := testDeps(openPool(b, d.DSN))
	if err := deps.Store.RegisterMetrics(reg); err != nil {
		b.Fatal(err)
	}
	s, err := NewServer(deps, Options{Auth: auth.Disabled(), RequestTimeout: 10 * time.Second, Metrics: reg,
		ResponseCacheBytes: -1, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	return s.Handler(), "device_id=device.bench&parameter=parameter.num"
}

// benchGet requests path of h serially and reports, besides ns/op (which
// includes waiting for PostgreSQL), the process's own CPU time per request
// (cpu-ns/op: the API's share, as PostgreSQL runs in other processes).
func benchGet(b *testing.B, h http.Handler, path string, minBytes int) {
	get := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code != http.StatusOK || w.Body.Len() < minBytes {
			b.Fatalf("status %d, %d bytes: %.300s", w.Code, w.Body.Len(), w.Body.String())
		}
		return w
	}
	get() // warm the pool and the prepared statements
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	for b.Loop() {
		get()
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAggregates is bench/api.sh's aggregate request: 7 days of 1-hour
// buckets of one series, served from rollup_1h.
func BenchmarkAggregates(b *testing.B) {
	h, series := benchServer(b)
	benchGet(b, h, "/v1/aggregates?"+series+"&from=2024-03-02T00:00:00Z&to=2024-03-09T00:00:00Z&bucket=1h&agg=avg", 168*40)
}

// BenchmarkReadings is bench/api.sh's readings request: the first page of
// 1,000 readings of one series.
func BenchmarkReadings(b *testing.B) {
	h, series := benchServer(b)
	benchGet(b, h, "/v1/readings?"+series+"&limit=1000", 1000*40)
}

// benchGetParallel is benchGet with many requests in flight, as under load
// (bench/api.sh runs 32 clients): waiting for PostgreSQL overlaps, so the
// process's CPU per request is the handler's cost without the scheduler's
// idle wake-ups that dominate a serial loop.
func benchGetParallel(b *testing.B, h http.Handler, path string, minBytes int) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	if w.Code != http.StatusOK || w.Body.Len() < minBytes {
		b.Fatalf("status %d, %d bytes: %.300s", w.Code, w.Body.Len(), w.Body.String())
	}
	b.ReportAllocs()
	b.SetParallelism(16) // 32 goroutines on the 2 cores of bench/api.sh's machine
	cpu0 := processCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
			if w.Code != http.StatusOK || w.Body.Len() < minBytes {
				b.Errorf("status %d, %d bytes", w.Code, w.Body.Len())
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkAggregatesParallel is BenchmarkAggregates at 32 requests in flight.
func BenchmarkAggregatesParallel(b *testing.B) {
	h, series := benchServer(b)
	benchGetParallel(b, h, "/v1/aggregates?"+series+"&from=2024-03-02T00:00:00Z&to=2024-03-09T00:00:00Z&bucket=1h&agg=avg", 168*40)
}

// BenchmarkReadingsParallel is BenchmarkReadings at 32 requests in flight.
func BenchmarkReadingsParallel(b *testing.B) {
	h, series := benchServer(b)
	benchGetParallel(b, h, "/v1/readings?"+series+"&limit=1000", 1000*40)
}
