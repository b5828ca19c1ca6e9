package copyload_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/db"
	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/db/seed"
	"github.com/sensorhub/sensorhub/services/ingest/internal/copyload"
	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
	"github.com/sensorhub/sensorhub/services/ingest/internal/gen"
	"github.com/sensorhub/sensorhub/services/ingest/internal/rollup"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// referenceFile returns the reference dataset's path; under CI its absence is
// a failure, elsewhere a skip with the reason.
func referenceFile(t *testing.T) string {
	t.Helper()
	p := seed.FindReferenceFile()
	if p == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("reference dataset shared/datasets/sensor-target/data.json not found beside the checkout")
		}
		t.Skip("reference dataset shared/datasets/sensor-target/data.json not found beside the checkout")
	}
	return p
}

type sliceRejects struct {
	mu sync.Mutex
	r  []copyload.Reject
}

func (s *sliceRejects) Reject(r copyload.Reject) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.r = append(s.r, r)
	return nil
}

func load(t *testing.T, pool *pgxpool.Pool, name string, data []byte, opts ...copyload.Option) copyload.FileResult {
	t.Helper()
	ctx := t.Context()
	l, err := copyload.NewLoader(ctx, pool, opts...)
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.Load(ctx, name, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	if _, err := rollup.Refresh(ctx, pool, 2); err != nil {
		t.Fatalf("refresh rollups: %v", err)
	}
	return res
}

type stored struct {
	device, parameter string
	time              time.Time
	offsetMin         int16
	num               *float64
	text              *string
}

const allReadingsSQL = `
SELECT s.device_id, s.parameter, r.time, r.utc_offset_min, r.value_num, r.value_text
FROM sensorhub.readings r JOIN sensorhub.series s USING (series_id)`

func readAll(t *testing.T, pool *pgxpool.Pool) map[string]stored {
	t.Helper()
	rows, err := pool.Query(t.Context(), allReadingsSQL)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]stored{}
	for rows.Next() {
		var s stored
		if err := rows.Scan(&s.device, &s.parameter, &s.time, &s.offsetMin, &s.num, &s.text); err != nil {
			t.Fatal(err)
		}
		k := key(s.device, s.parameter, s.time)
		if _, dup := out[k]; dup {
			t.Fatalf("reading %s stored twice", k)
		}
		out[k] = s
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func key(device, parameter string, t time.Time) string {
	return device + "\x00" + parameter + "\x00" + t.UTC().Format(time.RFC3339Nano)
}

// assertStoredEquals checks that the database holds exactly want, value for
// value and offset for offset.
func assertStoredEquals(t *testing.T, pool *pgxpool.Pool, want []seed.Reading) {
	t.Helper()
	got := readAll(t, pool)
	if len(got) != len(want) {
		t.Errorf("stored %d readings, want %d", len(got), len(want))
	}
	bad := 0
	for _, w := range want {
		g, ok := got[key(w.DeviceID, w.Parameter, w.Time)]
		_, off := w.Time.Zone()
		switch {
		case !ok:
			t.Errorf("missing %s/%s at %s", w.DeviceID, w.Parameter, w.Time.Format(time.RFC3339Nano))
		case !g.time.Equal(w.Time) || int(g.offsetMin)*60 != off:
			t.Errorf("%s/%s: time %s offset %dmin, want %s", w.DeviceID, w.Parameter, g.time, g.offsetMin, w.Time.Format(time.RFC3339Nano))
		case w.Num != nil && (g.num == nil || *g.num != *w.Num):
			t.Errorf("%s/%s at %s: value %v, want %v", w.DeviceID, w.Parameter, w.Time, g.num, *w.Num)
		case w.Text != nil && (g.text == nil || *g.text != *w.Text):
			t.Errorf("%s/%s at %s: value %v, want %q", w.DeviceID, w.Parameter, w.Time, g.text, *w.Text)
		default:
			continue
		}
		if bad++; bad > 10 {
			t.Fatal("too many differences")
		}
	}
}

func TestReferenceDatasetLoadsExactly(t *testing.T) {
	path := referenceFile(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := seed.ReadReferenceFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dbtest.Each(t, func(t *testing.T, d *dbtest.DB) {
		ctx := t.Context()
		// Load as a member of sensorhub_writer, as deployments do: the least
		// privilege must be enough for COPY, the catalog and the rollup refresh.
		writer, err := pgxpool.New(ctx, d.RoleDSN(t, db.WriterRole))
		if err != nil {
			t.Fatal(err)
		}
		defer writer.Close()
		res := load(t, writer, "data.json", data)
		if res.Err != nil || res.Read != 20000 || res.Inserted != 20000 || res.Duplicates != 0 || res.Rejected != 0 {
			t.Fatalf("first load: %+v", res)
		}
		if res.Format != dataset.Reference {
			t.Errorf("format %v, want reference", res.Format)
		}
		assertStoredEquals(t, d.Pool, want)

		var series, numeric, text, devices int
		var total int64
		err = d.Pool.QueryRow(ctx, `
			SELECT count(*), count(*) FILTER (WHERE value_type = 'numeric'), count(*) FILTER (WHERE value_type = 'text'),
			       count(DISTINCT device_id), sum(reading_count)
			FROM sensorhub.series`).Scan(&series, &numeric, &text, &devices, &total)
		if err != nil {
			t.Fatal(err)
		}
		if series != 34 || numeric != 18 || text != 16 || devices != 2 || total != 20000 {
			t.Errorf("catalog: %d series (%d numeric, %d text) on %d devices, %d readings; want 34 (18, 16) on 2, 20000",
				series, numeric, text, devices, total)
		}
		var mismatched int
		err = d.Pool.QueryRow(ctx, `
			SELECT count(*) FROM sensorhub.series s
			JOIN (SELECT series_id, count(*) n, min(time) lo, max(time) hi,
			             bool_and(value_num IS NOT NULL) all_num, bool_and(value_text IS NOT NULL) all_text
			      FROM sensorhub.readings GROUP BY series_id) r USING (series_id)
			WHERE s.reading_count <> r.n OR s.first_time <> r.lo OR s.last_time <> r.hi
			   OR (s.value_type = 'numeric') <> r.all_num OR (s.value_type = 'text') <> r.all_text`).Scan(&mismatched)
		if err != nil {
			t.Fatal(err)
		}
		if mismatched != 0 {
			t.Errorf("%d series whose catalog row disagrees with their readings", mismatched)
		}

		assertRollupsMatch(t, d.Pool, want)

		// The committed batch changed the dataset version in its own transaction.
		var v1 int64
		if err := d.Pool.QueryRow(ctx, `SELECT version FROM sensorhub.dataset_state`).Scan(&v1); err != nil {
			t.Fatal(err)
		}
		if v1 < 1 {
			t.Errorf("dataset version %d after a load, want at least 1", v1)
		}

		again := load(t, writer, "data.json", data)
		if again.Err != nil || again.Read != 20000 || again.Inserted != 0 || again.Duplicates != 20000 {
			t.Fatalf("second load: %+v; want 0 inserted, 20000 duplicates", again)
		}
		assertStoredEquals(t, d.Pool, want)
		if err := d.Pool.QueryRow(ctx, `SELECT sum(reading_count) FROM sensorhub.series`).Scan(&total); err != nil || total != 20000 {
			t.Errorf("after re-load the catalog counts %d readings (%v), want 20000", total, err)
		}
		var v2 int64
		if err := d.Pool.QueryRow(ctx, `SELECT version FROM sensorhub.dataset_state`).Scan(&v2); err != nil || v2 != v1 {
			t.Errorf("a load that changed nothing moved the dataset version from %d to %d (%v)", v1, v2, err)
		}
	})
}

type agg struct {
	n             int64
	sum, min, max float64
	first, last   float64
	firstT, lastT time.Time
	vals          []float64
}

// assertRollupsMatch recomputes every rollup row from want, in Go, and
// compares it with what each rollup relation holds.
func assertRollupsMatch(t *testing.T, pool *pgxpool.Pool, want []seed.Reading) {
	t.Helper()
	for _, w := range rollup.Widths {
		expect := map[string]*agg{}
		for _, r := range want {
			if r.Num == nil {
				continue
			}
			k := r.DeviceID + "\x00" + r.Parameter + "\x00" + rollup.Align(r.Time, w.Width).Format(time.RFC3339)
			a := expect[k]
			if a == nil {
				a = &agg{min: math.Inf(1), max: math.Inf(-1)}
				expect[k] = a
			}
			v := *r.Num
			a.n++
			a.sum += v
			a.min, a.max = min(a.min, v), max(a.max, v)
			if a.firstT.IsZero() || r.Time.Before(a.firstT) {
				a.first, a.firstT = v, r.Time
			}
			if a.lastT.IsZero() || r.Time.After(a.lastT) {
				a.last, a.lastT = v, r.Time
			}
			a.vals = append(a.vals, v)
		}
		rows, err := pool.Query(t.Context(), `
			SELECT s.device_id, s.parameter, r.bucket, r.count, r.sum, r.m2, r.min, r.max, r.first, r.first_time, r.last, r.last_time
			FROM `+w.Name+` r JOIN sensorhub.series s USING (series_id)`)
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for rows.Next() {
			var (
				dev, par                  string
				bucket, firstT, lastT     time.Time
				n                         int64
				sum, m2, mn, mx, fst, lst float64
			)
			if err := rows.Scan(&dev, &par, &bucket, &n, &sum, &m2, &mn, &mx, &fst, &firstT, &lst, &lastT); err != nil {
				t.Fatal(err)
			}
			seen++
			k := dev + "\x00" + par + "\x00" + bucket.UTC().Format(time.RFC3339)
			a := expect[k]
			if a == nil {
				t.Errorf("%s: unexpected bucket %s", w.Name, strings.ReplaceAll(k, "\x00", " "))
				continue
			}
			mean := a.sum / float64(a.n)
			var wantM2 float64
			for _, v := range a.vals {
				wantM2 += (v - mean) * (v - mean)
			}
			if n != a.n || mn != a.min || mx != a.max || fst != a.first || lst != a.last ||
				!firstT.Equal(a.firstT) || !lastT.Equal(a.lastT) || !close(sum, a.sum) || !closeAbs(m2, wantM2, a.sum) {
				t.Errorf("%s %s: got n=%d sum=%v m2=%v min=%v max=%v first=%v last=%v; want n=%d sum=%v m2=%v min=%v max=%v first=%v last=%v",
					w.Name, strings.ReplaceAll(k, "\x00", " "), n, sum, m2, mn, mx, fst, lst, a.n, a.sum, wantM2, a.min, a.max, a.first, a.last)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if seen != len(expect) {
			t.Errorf("%s has %d buckets, want %d", w.Name, seen, len(expect))
		}
	}
}

func close(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// closeAbs compares sums of squares, whose rounding error scales with the
// squared magnitude of the values rather than with the result.
func closeAbs(a, b, scale float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(b), scale*scale/1e6))
}

func TestCorruptedCopyKeepsGoodReadings(t *testing.T) {
	path := referenceFile(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	all, err := seed.ReadReferenceFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Three bad readings, each found by its exact text in the file, then the
	// document cut short in the middle of a later reading.
	corrupt := string(data)
	replace := func(old, new string) {
		t.Helper()
		if strings.Count(corrupt, old) < 1 {
			t.Fatalf("fixture text %q not in file", old)
		}
		corrupt = strings.Replace(corrupt, old, new, 1)
	}
	replace(`"value": 801.4240531704808,`, `"value": "not a number",`)
	replace(`"timestamp": "2024-03-07T12:22:07.315194+02:00",
            "value": "ZMOWMakhfHq"`, `"timestamp": "2024-03-07 12:22",
            "value": "ZMOWMakhfHq"`)
	replace(`"value": 88.98969014488878,`, `"value": [1, 2],`)
	cut := strings.Index(corrupt, `"device.bar"`) + 5000
	corrupt = corrupt[:cut]

	dbtest.Each(t, func(t *testing.T, d *dbtest.DB) {
		rej := &sliceRejects{}
		res := load(t, d.Pool, "corrupt.json", []byte(corrupt), copyload.WithRejects(rej))
		if res.Err == nil {
			t.Fatal("a truncated document loaded without error")
		}
		var fe *dataset.FatalError
		if !asFatal(res.Err, &fe) || fe.Pos.Offset <= int64(cut)-200 {
			t.Errorf("truncation reported as %v; want a fatal error near byte %d", res.Err, cut)
		}
		if len(rej.r) != 3 || res.Rejected != 3 {
			t.Fatalf("rejects: %d (%+v); want 3", len(rej.r), rej.r)
		}
		wantFields := []string{"value", "timestamp", "value"}
		for i, r := range rej.r {
			if r.Field != wantFields[i] || r.Pos.File != "corrupt.json" || !strings.HasPrefix(r.Pos.Path, "/device.foo/") || r.Reason == "" {
				t.Errorf("reject %d: %+v; want field %s at /device.foo/…", i, r, wantFields[i])
			}
		}
		// Every good reading before the cut is stored: the count matches the
		// readings the file holds before the cut minus the three bad ones.
		got := readAll(t, d.Pool)
		if int64(len(got)) != res.Inserted || res.Inserted != res.Read {
			t.Errorf("stored %d, result says inserted %d of %d read", len(got), res.Inserted, res.Read)
		}
		if res.Read < 10000 {
			t.Errorf("only %d good readings loaded; device.foo alone has 9,997 good ones", res.Read)
		}
		for k, g := range got {
			_ = k
			if !slices.ContainsFunc(all, func(w seed.Reading) bool {
				return w.DeviceID == g.device && w.Parameter == g.parameter && w.Time.Equal(g.time)
			}) {
				t.Fatalf("stored a reading that is not in the file: %+v", g)
			}
		}
	})
}

func asFatal(err error, target **dataset.FatalError) bool {
	for err != nil {
		if fe, ok := err.(*dataset.FatalError); ok {
			*target = fe
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

func generate(t *testing.T, c gen.Config) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := gen.Write(&buf, c); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDuplicatesInsideAndAcrossFilesAndOverwrite(t *testing.T) {
	start := time.Date(2024, 3, 30, 23, 0, 0, 0, time.FixedZone("", 3600))
	base := gen.Config{Seed: 7, Devices: 2, Params: 3, TextShare: 0.34, Start: start, Interval: time.Minute, Points: 50, Format: dataset.NDJSON}
	data := generate(t, base)
	dbtest.Each(t, func(t *testing.T, d *dbtest.DB) {
		// The same file twice in one stream: the second half is all duplicates
		// of the first, some inside one batch.
		res := load(t, d.Pool, "twice.ndjson", append(append([]byte{}, data...), data...), copyload.WithBatchSize(70))
		if res.Inserted != 300 || res.Duplicates != 300 || res.Read != 600 {
			t.Fatalf("twice: %+v; want 300 inserted, 300 duplicates", res)
		}
		// Other values at the same series and times.
		other := changeValues(t, data)
		res = load(t, d.Pool, "other.ndjson", other)
		if res.Inserted != 0 || res.Duplicates != 300 {
			t.Fatalf("skip mode: %+v; want all duplicates", res)
		}
		res = load(t, d.Pool, "other.ndjson", other, copyload.WithMode(copyload.ModeOverwrite))
		if res.Updated != 300 || res.Inserted != 0 || res.Duplicates != 0 {
			t.Fatalf("overwrite: %+v; want 300 updates", res)
		}
		res = load(t, d.Pool, "other.ndjson", other, copyload.WithMode(copyload.ModeOverwrite))
		if res.Updated != 0 || res.Duplicates != 300 {
			t.Fatalf("overwrite with equal values: %+v; want 300 unchanged duplicates", res)
		}
		var changed int
		if err := d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM sensorhub.readings WHERE value_num >= 1000 OR value_text LIKE '%!'`).Scan(&changed); err != nil || changed != 300 {
			t.Errorf("%d readings carry the overwritten values (%v); want 300", changed, err)
		}
		var total int64
		if err := d.Pool.QueryRow(t.Context(), `SELECT sum(reading_count) FROM sensorhub.series`).Scan(&total); err != nil || total != 300 {
			t.Errorf("catalog counts %d (%v); want 300", total, err)
		}
		var n int
		if err := d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM sensorhub.readings`).Scan(&n); err != nil || n != 300 {
			t.Errorf("readings %d (%v); want 300", n, err)
		}
	})
}

// changeValues rewrites an NDJSON dataset with other values at the same
// series and times: numbers + 1000, text + "!".
func changeValues(t *testing.T, ndjson []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	for _, line := range bytes.Split(bytes.TrimSpace(ndjson), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatal(err)
		}
		switch v := m["value"].(type) {
		case float64:
			m["value"] = v + 1000
		case string:
			m["value"] = v + "!"
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out.Write(append(b, '\n'))
	}
	return out.Bytes()
}

func TestTypeConflictIsRejected(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *dbtest.DB) {
		first := `{"device_id":"d1","parameter":"p","timestamp":"2024-01-01T00:00:00Z","value":1.5}` + "\n"
		res := load(t, d.Pool, "a.ndjson", []byte(first))
		if res.Inserted != 1 {
			t.Fatalf("%+v", res)
		}
		rej := &sliceRejects{}
		second := `{"device_id":"d1","parameter":"p","timestamp":"2024-01-01T00:01:00Z","value":"high"}` + "\n" +
			`{"device_id":"d1","parameter":"p","timestamp":"2024-01-01T00:02:00Z","value":2.5}` + "\n"
		res = load(t, d.Pool, "b.ndjson", []byte(second), copyload.WithRejects(rej))
		if res.Inserted != 1 || res.Rejected != 1 || len(rej.r) != 1 {
			t.Fatalf("%+v rejects %+v; want 1 inserted, 1 rejected", res, rej.r)
		}
		if r := rej.r[0]; r.Field != "type" || r.Pos.Line != 1 || !strings.Contains(r.Reason, "numeric") {
			t.Errorf("reject %+v; want field type on line 1 naming the series type", r)
		}
	})
}

func TestMaxErrorsStopsTheFile(t *testing.T) {
	d := dbtest.New(t)
	var b strings.Builder
	for i := range 20 {
		ts := time.Date(2024, 1, 1, 0, i, 0, 0, time.UTC).Format(time.RFC3339)
		if i%2 == 0 {
			fmt.Fprintf(&b, `{"device_id":"d","parameter":"p","timestamp":%q,"value":%d}`+"\n", ts, i)
		} else {
			fmt.Fprintf(&b, `{"device_id":"d","parameter":"p","timestamp":%q,"value":null}`+"\n", ts)
		}
	}
	res := load(t, d.Pool, "x.ndjson", []byte(b.String()), copyload.WithMaxErrors(3))
	if res.Err == nil || !strings.Contains(res.Err.Error(), "max-errors") || res.Rejected != 4 {
		t.Fatalf("%+v; want a stop after the 4th reject", res)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	d := dbtest.New(t)
	data := generate(t, gen.Config{Seed: 1, Devices: 1, Params: 2, Start: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Interval: time.Second, Points: 10, Format: dataset.CSV})
	res := load(t, d.Pool, "x.csv", data, copyload.WithDryRun(true))
	if res.Read != 20 || res.Inserted != 0 || res.Err != nil {
		t.Fatalf("%+v", res)
	}
	var n int
	if err := d.Pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM sensorhub.readings) + (SELECT count(*) FROM sensorhub.series)`).Scan(&n); err != nil || n != 0 {
		t.Errorf("dry run left %d rows (%v)", n, err)
	}
}

// TestRollupFirstAndLastAtEdges checks the picks of first and last where a
// shortcut could go wrong: readings a microsecond apart at both edges of a
// bucket, loaded in shuffled order, negative and huge values, a bucket
// holding a single reading, and year 9999, where seconds since the epoch no
// longer hold microseconds exactly in a float8.
func TestRollupFirstAndLastAtEdges(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *dbtest.DB) {
		var want []seed.Reading
		add := func(param string, at time.Time, v float64) {
			want = append(want, seed.Reading{DeviceID: "edge", Parameter: param, Time: at, Num: seed.Num(v)})
		}
		for _, base := range []time.Time{
			time.Date(2024, 3, 31, 0, 59, 0, 0, time.UTC),            // the minute before an hour and a DST change in Europe
			time.Date(9999, 12, 30, 23, 58, 0, 0, time.UTC),          // far from the epoch
			time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),              // the epoch itself
			time.Date(2023, 12, 31, 23, 59, 59, 999998000, time.UTC), // readings straddling a day
		} {
			us := time.Microsecond
			// The later of two neighbours holds the smaller value at the
			// start and the earlier one at the end, so a tie broken by
			// value would pick the wrong reading both times.
			add("p", base, 7)
			add("p", base.Add(us), -1e100)
			add("p", base.Add(time.Minute-2*us), 1e-300)
			add("p", base.Add(time.Minute-us), -0.5)
			add("p", base.Add(time.Minute), 42) // alone in the next minute
			add("q", base.Add(30*time.Second), 3.25)
		}
		rand.New(rand.NewPCG(1, 2)).Shuffle(len(want), func(i, j int) { want[i], want[j] = want[j], want[i] })

		var buf bytes.Buffer
		for _, r := range want {
			fmt.Fprintf(&buf, `{"device_id":%q,"parameter":%q,"timestamp":%q,"value":%v}`+"\n",
				r.DeviceID, r.Parameter, r.Time.Format(time.RFC3339Nano), strconv.FormatFloat(*r.Num, 'g', -1, 64))
		}
		rejects := &sliceRejects{}
		if res := load(t, d.Pool, "edges.ndjson", buf.Bytes(), copyload.WithBatchSize(5), copyload.WithRejects(rejects)); res.Inserted != int64(len(want)) || res.Err != nil {
			t.Fatalf("loaded %d of %d (%v); rejects %+v", res.Inserted, len(want), res.Err, rejects.r)
		}
		assertRollupsMatch(t, d.Pool, want)
	})
}
