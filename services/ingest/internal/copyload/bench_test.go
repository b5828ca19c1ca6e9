package copyload_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/services/ingest/internal/copyload"
	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
	"github.com/sensorhub/sensorhub/services/ingest/internal/gen"
)

// BenchmarkLoad measures the load phase (parse, validate, COPY, catalog) of
// 200,000 readings in the reference format into an empty database per
// iteration; rollup refresh is left out (see BenchmarkRefresh).
func BenchmarkLoad(b *testing.B) {
	var buf bytes.Buffer
	c := gen.Config{Seed: 1, Devices: 10, Params: 20, TextShare: 0.3, Start: time.Date(2024, 1, 1, 0, 0, 0, 1000, time.FixedZone("", 7200)),
		Interval: time.Minute, Points: 1000, Format: dataset.Reference}
	if _, err := gen.Write(&buf, c); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		b.StopTimer()
		d := dbtest.New(b)
		l, err := copyload.NewLoader(b.Context(), d.Pool)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := l.Load(b.Context(), "bench.json", bytes.NewReader(data))
		if err != nil || res.Inserted != 200_000 {
			b.Fatalf("%+v %v", res, err)
		}
		b.ReportMetric(float64(res.Inserted)/res.Duration.Seconds(), "readings/s")
	}
}
