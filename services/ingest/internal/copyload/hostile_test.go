package copyload_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/services/ingest/internal/copyload"
	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
)

// TestHostileInputCorpus loads every file of testdata/hostile (kept in the
// repository so CI runs it) and checks that each gives clear, located
// rejections or a located fatal error, no crash, and that every good reading
// in it is stored.
func TestHostileInputCorpus(t *testing.T) {
	cases := []struct {
		file     string
		stored   int64
		rejected []string // reason fragments, in order
		fatal    string   // fragment of the fatal error; "" = none
	}{
		{"truncated.json", 4, nil, "/dev/4"},
		{"bom.ndjson", 3, nil, ""},
		{"deeply-nested.ndjson", 2, []string{"max depth"}, ""},
		{"huge-string.ndjson", 2, []string{"longer than the bound"}, ""},
		{"nan-infinity.ndjson", 1, []string{"invalid character 'N'", "invalid character 'I'", "invalid character 'I'"}, ""},
		{"nan-reference.json", 1, nil, "/dev/1/value"},
		{"beyond-float64.ndjson", 0, []string{"beyond float64", "beyond float64", "beyond 1e100"}, ""},
		{"duplicate-keys.json", 2, []string{`duplicate member name "value"`}, ""},
		{"wrong-types.ndjson", 1, []string{"type is numeric", "not a boolean", "not a number", "not a number", "not null", "not an object"}, ""},
		{"control-and-utf8.ndjson", 1, []string{"control character", "invalid character", "not valid UTF-8", "NUL"}, ""},
		{"timestamps-out-of-range.csv", 2, []string{"year outside", "not an RFC 3339", "not an RFC 3339", "no UTC offset", "sub-microsecond"}, ""},
		{"bomb.json.gz", 0, nil, "exceeds the bound"},
	}
	d := dbtest.New(t)
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			if _, err := d.Pool.Exec(t.Context(), `TRUNCATE sensorhub.readings, sensorhub.series, sensorhub.rollup_pending`); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "hostile", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			rej := &sliceRejects{}
			res := load(t, d.Pool, tc.file, data, copyload.WithRejects(rej),
				copyload.WithDatasetOptions(dataset.Options{MaxDecompressedBytes: 8 << 20}))
			if res.Inserted != tc.stored {
				t.Errorf("stored %d good readings, want %d (%+v)", res.Inserted, tc.stored, res)
			}
			var n int64
			if err := d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM sensorhub.readings`).Scan(&n); err != nil || n != tc.stored {
				t.Errorf("table holds %d readings (%v), want %d", n, err, tc.stored)
			}
			if len(rej.r) != len(tc.rejected) {
				t.Fatalf("%d rejects, want %d: %+v", len(rej.r), len(tc.rejected), rej.r)
			}
			for i, r := range rej.r {
				if !strings.Contains(r.Reason, tc.rejected[i]) || r.Pos.File != tc.file || (r.Pos.Line == 0 && r.Pos.Path == "") {
					t.Errorf("reject %d: %s at %s; want %q with a line or JSON path", i, r.Reason, r.Pos, tc.rejected[i])
				}
			}
			switch {
			case tc.fatal == "" && res.Err != nil:
				t.Errorf("unexpected fatal error: %v", res.Err)
			case tc.fatal != "" && (res.Err == nil || !strings.Contains(res.Err.Error(), tc.fatal) || !strings.Contains(res.Err.Error(), tc.file)):
				t.Errorf("fatal error %v; want one naming %s and %q", res.Err, tc.file, tc.fatal)
			}
		})
	}
}
