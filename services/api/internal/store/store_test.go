package store

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/db/scope"
	"github.com/sensorhub/sensorhub/db/seed"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

var t0 = time.Date(2024, 3, 7, 10, 0, 0, 0, time.FixedZone("", 2*3600))

// fixture stores a few series whose names exercise the filters, and one long
// series that spans several export batches.
func fixture(t *testing.T) *Store {
	t.Helper()
	d := dbtest.New(t)
	var rs []seed.Reading
	add := func(dev, param string, n int, text bool) {
		for i := range n {
			r := seed.Reading{DeviceID: dev, Parameter: param, Time: t0.Add(time.Duration(i) * time.Minute)}
			if text {
				r.Text = seed.Text("v" + param)
			} else {
				r.Num = seed.Num(float64(i) + 0.25)
			}
			rs = append(rs, r)
		}
	}
	add("dev.a", "p.x", 3, false)
	add("dev.a", "p.y", 2, true)
	add("dev.a", "q.z.deep", 1, false)
	add("dev.b", "p.x", 2*ExportBatch+7, false)
	add("dev.b", "a%b", 1, false)
	add("dev.b", "a_b", 1, false)
	add("dev.b", "a(b|c)", 1, false)
	if err := seed.Load(t.Context(), d.Pool, rs); err != nil {
		t.Fatal(err)
	}
	return New(d.Pool)
}

func TestScope(t *testing.T) {
	s := fixture(t)
	ctx := t.Context()
	for _, tc := range []struct {
		name    string
		sc      scope.Scope
		devices []string
		series  int
	}{
		{"all", scope.All(), []string{"dev.a", "dev.b"}, 7},
		{"one device", scope.Restrict([]string{"dev.a"}, nil), []string{"dev.a"}, 3},
		{"one prefix", scope.Restrict(nil, []string{"q."}), []string{"dev.a"}, 1},
		{"device and prefix", scope.Restrict([]string{"dev.b"}, []string{"p.", "a_"}), []string{"dev.b"}, 2},
		{"nothing", scope.Restrict([]string{}, nil), nil, 0},
		{"zero value", scope.Scope{}, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			devs, err := s.Devices(ctx, tc.sc)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			total := 0
			for _, d := range devs {
				ids = append(ids, d.ID)
				total += d.SeriesCount
			}
			if !slices.Equal(ids, tc.devices) || total != tc.series {
				t.Errorf("devices %v with %d series, want %v with %d", ids, total, tc.devices, tc.series)
			}
			list, err := s.ListSeries(ctx, tc.sc, SeriesFilter{}, 100)
			if err != nil || len(list) != tc.series {
				t.Errorf("ListSeries: %d series, %v; want %d", len(list), err, tc.series)
			}
			for _, x := range list {
				if !tc.sc.Allows(x.DeviceID, x.Parameter) {
					t.Errorf("ListSeries returned out-of-scope %s/%s", x.DeviceID, x.Parameter)
				}
			}
		})
	}

	// An out-of-scope series is missing, and cannot be read by its id either.
	narrow := scope.Restrict([]string{"dev.a"}, nil)
	if _, err := s.FindSeries(ctx, narrow, "dev.b", "p.x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("FindSeries out of scope: %v, want ErrNotFound", err)
	}
	b, err := s.FindSeries(ctx, scope.All(), "dev.b", "p.x")
	if err != nil {
		t.Fatal(err)
	}
	if rs, err := s.Readings(ctx, narrow, ReadingsQuery{SeriesID: b.ID}, 10, nil); err != nil || len(rs) != 0 {
		t.Errorf("Readings of an out-of-scope series id: %d readings, %v", len(rs), err)
	}
	latest, err := s.Latest(ctx, narrow, SeriesFilter{}, 100)
	if err != nil || len(latest) != 3 {
		t.Errorf("Latest in scope: %d, %v; want 3", len(latest), err)
	}
	rows, err := s.Legacy(ctx, narrow, LegacyQuery{DeviceID: "dev.b"}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if rows.Next() {
		t.Errorf("Legacy returned out-of-scope reading %+v", rows.Row())
	}
	rows.Close()
}

func TestSeriesFilters(t *testing.T) {
	s := fixture(t)
	for _, tc := range []struct {
		f    SeriesFilter
		want []string
	}{
		{SeriesFilter{DeviceID: "dev.a"}, []string{"dev.a/p.x", "dev.a/p.y", "dev.a/q.z.deep"}},
		{SeriesFilter{Prefix: "p."}, []string{"dev.a/p.x", "dev.a/p.y", "dev.b/p.x"}},
		{SeriesFilter{Prefix: "a_"}, []string{"dev.b/a_b"}}, // _ is literal, not LIKE's any character
		{SeriesFilter{Prefix: "%"}, nil},
		{SeriesFilter{Glob: "p.*"}, []string{"dev.a/p.x", "dev.a/p.y", "dev.b/p.x"}},
		{SeriesFilter{Glob: "q.*"}, nil}, // * stays within a segment
		{SeriesFilter{Glob: "q.**"}, []string{"dev.a/q.z.deep"}},
		{SeriesFilter{Glob: "*.*.deep"}, []string{"dev.a/q.z.deep"}},
		{SeriesFilter{Glob: "a%b"}, []string{"dev.b/a%b"}},
		{SeriesFilter{Glob: "a(b|c)"}, []string{"dev.b/a(b|c)"}},
		{SeriesFilter{Glob: "a.b"}, nil}, // . is literal
		{SeriesFilter{Glob: `'; DROP TABLE sensorhub.series; --`}, nil},
		{SeriesFilter{Glob: `\`}, nil},
		{SeriesFilter{Type: TypeText}, []string{"dev.a/p.y"}},
		{SeriesFilter{DeviceID: "dev.b", Parameters: []string{"p.x", "a_b", "nope"}}, []string{"dev.b/a_b", "dev.b/p.x"}},
	} {
		list, err := s.ListSeries(t.Context(), scope.All(), tc.f, 100)
		if err != nil {
			t.Errorf("%+v: %v", tc.f, err)
			continue
		}
		var got []string
		for _, x := range list {
			got = append(got, x.DeviceID+"/"+x.Parameter)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%+v: got %q, want %q", tc.f, got, tc.want)
		}
	}
}

func TestGlobRegexp(t *testing.T) {
	for glob, want := range map[string]string{
		"":             "^$",
		"a.b":          `^a\.b$`,
		"a.*":          `^a\.[^.]*$`,
		"a.**":         `^a\..*$`,
		"***":          `^.*[^.]*$`,
		"x(y)[z]{1}$^": `^x\(y\)\[z\]\{1\}\$\^$`,
		"ä.b":          `^ä\.b$`,
	} {
		if got := GlobRegexp(glob); got != want {
			t.Errorf("GlobRegexp(%q) = %q, want %q", glob, got, want)
		}
	}
}

func TestReadingsKeyset(t *testing.T) {
	s := fixture(t)
	ctx := t.Context()
	x, err := s.FindSeries(ctx, scope.All(), "dev.a", "p.x")
	if err != nil {
		t.Fatal(err)
	}
	all, err := s.Readings(ctx, scope.All(), ReadingsQuery{SeriesID: x.ID}, 10, nil)
	if err != nil || len(all) != 3 {
		t.Fatalf("readings: %d, %v", len(all), err)
	}
	if _, off := all[0].Time.Zone(); all[0].OffsetMin != 120 || !all[0].Time.Equal(t0) {
		t.Errorf("first reading %+v (zone offset %d), want %v at +120", all[0], off, t0)
	}
	after := all[0].Time
	next, _ := s.Readings(ctx, scope.All(), ReadingsQuery{SeriesID: x.ID, After: &after}, 10, nil)
	if len(next) != 2 || !next[0].Time.Equal(all[1].Time) {
		t.Errorf("after the first ascending: %+v", next)
	}
	last := all[2].Time
	prev, _ := s.Readings(ctx, scope.All(), ReadingsQuery{SeriesID: x.ID, Desc: true, After: &last}, 10, nil)
	if len(prev) != 2 || !prev[0].Time.Equal(all[1].Time) {
		t.Errorf("after the last descending: %+v", prev)
	}
	from, to := all[1].Time, all[2].Time
	mid, _ := s.Readings(ctx, scope.All(), ReadingsQuery{SeriesID: x.ID, From: &from, To: &to}, 10, nil)
	if len(mid) != 1 || !mid[0].Time.Equal(from) {
		t.Errorf("[from, to) is not half-open: %+v", mid)
	}
}

func TestExport(t *testing.T) {
	s := fixture(t)
	ctx := t.Context()
	x, err := s.FindSeries(ctx, scope.All(), "dev.b", "p.x")
	if err != nil {
		t.Fatal(err)
	}
	for _, desc := range []bool{false, true} {
		ex, err := s.ExportReadings(ctx, scope.All(), ReadingsQuery{SeriesID: x.ID, Desc: desc})
		if err != nil {
			t.Fatal(err)
		}
		var n, batches int
		var prev time.Time
		for {
			b, err := ex.Next()
			if err != nil {
				t.Fatal(err)
			}
			if len(b) == 0 {
				break
			}
			batches++
			for _, r := range b {
				if n > 0 && (desc != r.Time.Before(prev) || r.Time.Equal(prev)) {
					t.Fatalf("desc=%v: reading %d at %v after %v", desc, n, r.Time, prev)
				}
				prev = r.Time
				n++
			}
		}
		ex.Close()
		if n != 2*ExportBatch+7 || batches != 3 {
			t.Errorf("desc=%v: exported %d readings in %d batches, want %d in 3", desc, n, batches, 2*ExportBatch+7)
		}
	}
}

// poolWith opens a pool on the API's configuration with extra session
// settings.
func poolWith(t *testing.T, dsn string, params map[string]string) *pgxpool.Pool {
	t.Helper()
	pc, err := PoolConfig(dsn, 2, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range params {
		pc.ConnConfig.RuntimeParams[k] = v
	}
	pool, err := pgxpool.NewWithConfig(t.Context(), pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// TestPoolConfig checks the session settings every API connection gets.
func TestPoolConfig(t *testing.T) {
	d := dbtest.New(t)
	pc, err := PoolConfig(d.DSN, 2, 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(t.Context(), pc)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var timeout, readOnly, app string
	if err := pool.QueryRow(t.Context(), `SELECT current_setting('statement_timeout'), current_setting('default_transaction_read_only'), current_setting('application_name')`).Scan(&timeout, &readOnly, &app); err != nil {
		t.Fatal(err)
	}
	if timeout != "1500ms" || readOnly != "on" || app != "sensorhub-api" {
		t.Errorf("session: statement_timeout %s, default_transaction_read_only %s, application_name %s", timeout, readOnly, app)
	}
	// A statement over the timeout is cancelled and reported as ErrTimeout.
	_, err = pool.Exec(t.Context(), `SELECT pg_sleep(3)`)
	if err = translate(t.Context(), err); !errors.Is(err, ErrTimeout) {
		t.Errorf("slow statement: %v, want ErrTimeout", err)
	}
	// Even a superuser connection of the API cannot write by accident.
	_, err = pool.Exec(t.Context(), `UPDATE sensorhub.dataset_state SET version = version`)
	if err == nil || !strings.Contains(err.Error(), "read-only transaction") {
		t.Errorf("write through the API pool: %v, want a read-only transaction error", err)
	}
	// Bucket starts bind through the direct encoding, and PostgreSQL reads
	// them back as they were.
	starts := bucketStarts{time.Date(1999, 12, 31, 23, 59, 59, 1000, time.UTC), time.Date(2024, 3, 31, 1, 0, 0, 0, time.FixedZone("", 3600))}
	var n int
	var text string
	if err := pool.QueryRow(t.Context(), `SELECT cardinality($1::timestamptz[]), array_to_string($1::timestamptz[], ',')
		FROM (SELECT set_config('timezone', 'UTC', true)) s`, starts).Scan(&n, &text); err != nil {
		t.Fatal(err)
	}
	if want := "1999-12-31 23:59:59.000001+00,2024-03-31 00:00:00+00"; n != 2 || text != want {
		t.Errorf("bucket starts: %d elements %q; want 2, %q", n, text, want)
	}
	conn, err := pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if typ, ok := conn.Conn().TypeMap().TypeForOID(pgtype.TimestamptzArrayOID); !ok {
		t.Error("no timestamptz[] type")
	} else if _, ok := typ.Codec.(bucketStartsCodec); !ok {
		t.Errorf("timestamptz[] codec %T, want bucketStartsCodec", typ.Codec)
	}
}

// TestDatasetVersion: the version the API's cache validators derive from
// is the one every load bumps.
func TestDatasetVersion(t *testing.T) {
	d := dbtest.New(t)
	s := New(d.Pool)
	v0, err := s.DatasetVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := seed.Load(t.Context(), d.Pool, []seed.Reading{{DeviceID: "d", Parameter: "p", Time: t0, Num: seed.Num(1)}}); err != nil {
		t.Fatal(err)
	}
	v1, err := s.DatasetVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if v1 == v0 {
		t.Errorf("dataset version %d unchanged by a load", v1)
	}
}
