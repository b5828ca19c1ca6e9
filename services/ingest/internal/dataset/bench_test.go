package dataset_test

import (
	"bytes"
	"io"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
	"github.com/sensorhub/sensorhub/services/ingest/internal/gen"
)

// benchConfig generates 20,400 readings shaped like the reference dataset:
// 17 parameters per device, nearly half of them text, one point a minute.
func benchConfig(f dataset.Format, points int) gen.Config {
	return gen.Config{
		Seed: 42, Devices: 4, Params: 17, TextShare: 0.47, Points: points,
		Start:    time.Date(2024, 3, 7, 2, 34, 7, 325831000, time.FixedZone("", 2*3600)),
		Interval: time.Minute, Format: f,
	}
}

func benchmarkInput(b *testing.B, data []byte, want dataset.Format) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var n int
	for b.Loop() {
		r, err := dataset.NewReader(bytes.NewReader(data), dataset.Options{})
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, _, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if r.Format() != want {
			b.Fatalf("detected %v, want %v", r.Format(), want)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "readings/s")
	b.ReportMetric(float64(len(data))*float64(b.N)/float64(n), "B/reading")
}

func benchmarkGenerated(b *testing.B, f dataset.Format) {
	var buf bytes.Buffer
	if _, err := gen.Write(&buf, benchConfig(f, 300)); err != nil {
		b.Fatal(err)
	}
	benchmarkInput(b, buf.Bytes(), f)
}

func BenchmarkReference(b *testing.B) {
	b.Run("generated", func(b *testing.B) { benchmarkGenerated(b, dataset.Reference) })
	b.Run("sensor-target", func(b *testing.B) {
		data, err := os.ReadFile(sensorTargetPath(b))
		if err != nil {
			b.Fatal(err)
		}
		benchmarkInput(b, data, dataset.Reference)
	})
}

func BenchmarkNDJSON(b *testing.B) { benchmarkGenerated(b, dataset.NDJSON) }
func BenchmarkCSV(b *testing.B)    { benchmarkGenerated(b, dataset.CSV) }

// TestStreamingMemory reads a generated input much larger than the bound on
// the heap through a pipe: the Reader must not hold the document.
func TestStreamingMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 3 × 20-30 MB")
	}
	for _, f := range []dataset.Format{dataset.Reference, dataset.NDJSON, dataset.CSV} {
		t.Run(f.String(), func(t *testing.T) {
			pr, pw := io.Pipe()
			var size int64
			go func() {
				n, err := gen.Write(pw, benchConfig(f, 3000))
				size = n
				pw.CloseWithError(err)
			}()
			r, err := dataset.NewReader(pr, dataset.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var peak uint64
			var ms runtime.MemStats
			n := 0
			for {
				_, _, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if n++; n%50000 == 0 {
					runtime.GC()
					runtime.ReadMemStats(&ms)
					peak = max(peak, ms.HeapAlloc)
				}
			}
			if n != 4*17*3000 {
				t.Fatalf("%d readings", n)
			}
			if peak > 8<<20 || size < 15<<20 {
				t.Errorf("live heap reached %d bytes reading %d bytes", peak, size)
			}
		})
	}
}
