package writeapi_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/services/ingest/internal/writeapi"
	"github.com/sensorhub/sensorhub/services/ingest/testdata/hostile"
)

// TestHostileCorpusOverHTTP pushes every file of the hostile corpus: each
// rejected reading is listed with its reason and line or JSON path, in the
// batch job's order, its good neighbours are stored, and a file the job
// stops on is a 400 naming the place that commits nothing.
func TestHostileCorpusOverHTTP(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "hostile")
	d := dbtest.New(t)
	for _, tc := range hostile.Cases(t, dir) {
		t.Run(tc.File, func(t *testing.T) {
			if _, err := d.Pool.Exec(t.Context(), `TRUNCATE sensorhub.readings, sensorhub.series, sensorhub.rollup_pending`); err != nil {
				t.Fatal(err)
			}
			// A fresh service per file: its catalog must not remember the
			// series just truncated.
			s := newService(t, d, serviceOpts{limits: writeapi.Limits{MaxDecompressedBytes: 8 << 20, MaxListed: 100}})
			data, err := os.ReadFile(filepath.Join(dir, tc.File))
			if err != nil {
				t.Fatal(err)
			}
			a := s.push(t, "", "", "", data, false)
			stored := int64(len(readAll(t, d.Pool)))
			if tc.Fatal != "" {
				// A decompression bomb is too large, not malformed.
				want, fragment := http.StatusBadRequest, tc.Fatal
				if strings.Contains(tc.Fatal, "exceeds the bound") {
					want, fragment = http.StatusRequestEntityTooLarge, "inflates beyond"
				}
				if a.status != want || !strings.Contains(a.body, fragment) || stored != 0 {
					t.Errorf("%d %s with %d readings stored; want %d naming %q and nothing stored", a.status, a.body, stored, want, fragment)
				}
				return
			}
			if a.status != http.StatusOK || a.result.Inserted != tc.Good || stored != tc.Good {
				t.Fatalf("%d %s with %d stored; want 200 and %d stored", a.status, a.body, stored, tc.Good)
			}
			if int(a.result.Rejected) != len(tc.Rejected) || len(a.result.Rejects) != len(tc.Rejected) {
				t.Fatalf("%d rejects, want %d: %s", a.result.Rejected, len(tc.Rejected), a.body)
			}
			for i, r := range a.result.Rejects {
				if !strings.Contains(r.Reason, tc.Rejected[i]) || (r.Line == 0 && r.Path == "") {
					t.Errorf("reject %d: %+v; want %q with a line or JSON path", i, r, tc.Rejected[i])
				}
			}
		})
	}
}
