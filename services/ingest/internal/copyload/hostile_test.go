package copyload_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/services/ingest/internal/copyload"
	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
	"github.com/sensorhub/sensorhub/services/ingest/testdata/hostile"
)

// TestHostileInputCorpus loads every file of testdata/hostile (kept in the
// repository so CI runs it; cases.json says what each must give) and checks that each gives clear, located
// rejections or a located fatal error, no crash, and that every good reading
// in it is stored.
func TestHostileInputCorpus(t *testing.T) {
	cases := hostile.Cases(t, filepath.Join("..", "..", "testdata", "hostile"))
	d := dbtest.New(t)
	for _, tc := range cases {
		t.Run(tc.File, func(t *testing.T) {
			if _, err := d.Pool.Exec(t.Context(), `TRUNCATE sensorhub.readings, sensorhub.series, sensorhub.rollup_pending`); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "hostile", tc.File))
			if err != nil {
				t.Fatal(err)
			}
			rej := &sliceRejects{}
			res := load(t, d.Pool, tc.File, data, copyload.WithRejects(rej),
				copyload.WithDatasetOptions(dataset.Options{MaxDecompressedBytes: 8 << 20}))
			if res.Inserted != tc.Good {
				t.Errorf("stored %d good readings, want %d (%+v)", res.Inserted, tc.Good, res)
			}
			var n int64
			if err := d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM sensorhub.readings`).Scan(&n); err != nil || n != tc.Good {
				t.Errorf("table holds %d readings (%v), want %d", n, err, tc.Good)
			}
			if len(rej.r) != len(tc.Rejected) {
				t.Fatalf("%d rejects, want %d: %+v", len(rej.r), len(tc.Rejected), rej.r)
			}
			for i, r := range rej.r {
				if !strings.Contains(r.Reason, tc.Rejected[i]) || r.Pos.File != tc.File || (r.Pos.Line == 0 && r.Pos.Path == "") {
					t.Errorf("reject %d: %s at %s; want %q with a line or JSON path", i, r.Reason, r.Pos, tc.Rejected[i])
				}
			}
			switch {
			case tc.Fatal == "" && res.Err != nil:
				t.Errorf("unexpected fatal error: %v", res.Err)
			case tc.Fatal != "" && (res.Err == nil || !strings.Contains(res.Err.Error(), tc.Fatal) || !strings.Contains(res.Err.Error(), tc.File)):
				t.Errorf("fatal error %v; want one naming %s and %q", res.Err, tc.File, tc.Fatal)
			}
		})
	}
}
