package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

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
