package store

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/db/scope"
	"github.com/sensorhub/sensorhub/db/seed"
)

// TestRawAggregatesDeterministic stores readings in shuffled order, so that
// the heap's order is not the time order, and aggregates them from the raw
// readings on two pools whose plans deliver the rows differently (index
// scans, and none: heap order). The float sums must be the same bits on
// both, and equal to the sum in time order computed here; stddev must be
// the same bits on both. Summed in the order the plan delivered rows, the
// sums differed in their last digits between the pools.
func TestRawAggregatesDeterministic(t *testing.T) {
	d := dbtest.New(t)
	r := rand.New(rand.NewPCG(7, 8))
	start := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	const n = 3000
	rs := make([]seed.Reading, n)
	vals := make([]float64, n) // in time order
	for i := range rs {
		// Magnitudes from 1e-3 to 1e6: the order of the additions shows
		// in the last digits.
		vals[i] = r.NormFloat64() * math.Pow(10, float64(r.IntN(10)-3))
		rs[i] = seed.Reading{DeviceID: "dev.order", Parameter: "p.order", Time: start.Add(time.Duration(i) * time.Second), Num: seed.Num(vals[i])}
	}
	r.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
	if err := seed.Load(t.Context(), d.Pool, rs); err != nil {
		t.Fatal(err)
	}
	var want float64
	for _, v := range vals {
		want += v
	}
	indexed := poolWith(t, d.DSN, map[string]string{"enable_seqscan": "off", "enable_bitmapscan": "off"})
	heap := poolWith(t, d.DSN, map[string]string{"enable_indexscan": "off", "enable_bitmapscan": "off", "enable_indexonlyscan": "off"})
	s, err := New(d.Pool).FindSeries(t.Context(), scope.All(), "dev.order", "p.order")
	if err != nil {
		t.Fatal(err)
	}
	// One bucket over all readings, and 1-minute buckets.
	from, to := start, start.Add(n*time.Second)
	grids := map[string][]time.Time{"one bucket": {from}}
	for m := from; m.Before(to); m = m.Add(time.Minute) {
		grids["minutes"] = append(grids["minutes"], m)
	}
	for name, at := range grids {
		a, _, err := ReadAggregates(t.Context(), indexed, "raw", []int32{s.ID}, []int32{}, at, from, to, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := ReadAggregates(t.Context(), heap, "raw", []int32{s.ID}, []int32{}, at, from, to, nil)
		if err != nil {
			t.Fatal(err)
		}
		ca, cb := a[s.ID], b[s.ID]
		if len(ca) != len(at) || len(cb) != len(at) {
			t.Fatalf("%s: %d and %d buckets, want %d", name, len(ca), len(cb), len(at))
		}
		for i := range ca {
			if math.Float64bits(ca[i].Sum.Float64) != math.Float64bits(cb[i].Sum.Float64) ||
				math.Float64bits(ca[i].Stddev.Float64) != math.Float64bits(cb[i].Stddev.Float64) {
				t.Fatalf("%s, bucket %d: sums %v and %v, stddevs %v and %v: the plan changed the answer",
					name, i, ca[i].Sum.Float64, cb[i].Sum.Float64, ca[i].Stddev.Float64, cb[i].Stddev.Float64)
			}
		}
		if name == "one bucket" && ca[0].Sum.Float64 != want {
			t.Errorf("sum %v, the sum in time order is %v", ca[0].Sum.Float64, want)
		}
	}
}

// TestRollupMergeDeterministic loads a day one hour at a time, in shuffled
// hour order, so that the rollup's rows of an hour lie in the order the
// hours were loaded rather than in time order, and merges them into 6-hour
// buckets from rollup_1h on the two pools of TestRawAggregatesDeterministic:
// the merged sums and stddevs must be the same bits. It also checks that
// hourly buckets take the one-row query and 6-hour ones the merging query.
func TestRollupMergeDeterministic(t *testing.T) {
	d := dbtest.New(t)
	r := rand.New(rand.NewPCG(9, 10))
	day := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	hours := r.Perm(24)
	for _, h := range hours {
		var rs []seed.Reading
		for m := range 60 {
			v := r.NormFloat64() * math.Pow(10, float64(h%9-2))
			rs = append(rs, seed.Reading{DeviceID: "dev.merge", Parameter: "p.merge", Time: day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute), Num: seed.Num(v)})
		}
		if err := seed.Load(t.Context(), d.Pool, rs); err != nil {
			t.Fatal(err)
		}
	}
	s, err := New(d.Pool).FindSeries(t.Context(), scope.All(), "dev.merge", "p.merge")
	if err != nil {
		t.Fatal(err)
	}
	from, to := day, day.Add(24*time.Hour)
	var sixHours, hourly []time.Time
	for h := 0; h < 24; h++ {
		if h%6 == 0 {
			sixHours = append(sixHours, day.Add(time.Duration(h)*time.Hour))
		}
		hourly = append(hourly, day.Add(time.Duration(h)*time.Hour))
	}
	if oneRowPerBucket(sixHours, to, time.Hour) || !oneRowPerBucket(hourly, to, time.Hour) {
		t.Fatal("oneRowPerBucket chose the wrong query")
	}
	read := func(pool *pgxpool.Pool) []AggregateCell {
		cells, stale, err := ReadAggregates(t.Context(), pool, "rollup_1h", []int32{s.ID}, []int32{}, sixHours, from, to, nil)
		if err != nil {
			t.Fatal(err)
		}
		if stale {
			t.Fatal("the rollups are still pending: the raw readings answered")
		}
		if len(cells[s.ID]) != 4 {
			t.Fatalf("%d buckets, want 4", len(cells[s.ID]))
		}
		return cells[s.ID]
	}
	a := read(poolWith(t, d.DSN, map[string]string{"enable_seqscan": "off", "enable_bitmapscan": "off"}))
	b := read(poolWith(t, d.DSN, map[string]string{"enable_indexscan": "off", "enable_bitmapscan": "off", "enable_indexonlyscan": "off"}))
	for i := range a {
		if a[i].Count != 360 || math.Float64bits(a[i].Sum.Float64) != math.Float64bits(b[i].Sum.Float64) ||
			math.Float64bits(a[i].Stddev.Float64) != math.Float64bits(b[i].Stddev.Float64) {
			t.Fatalf("bucket %d: counts %d and %d, sums %v and %v, stddevs %v and %v: the plan changed the answer",
				i, a[i].Count, b[i].Count, a[i].Sum.Float64, b[i].Sum.Float64, a[i].Stddev.Float64, b[i].Stddev.Float64)
		}
	}
}

// TestAggregateRowDecoder reads rows shaped like the aggregate queries'
// through decodeAggregateRow and through rows.Scan and requires the same
// cells: NULL and non-NULL floats (negative zero, subnormal, largest),
// texts (empty, quoted) and the stale marker row.
func TestAggregateRowDecoder(t *testing.T) {
	d := dbtest.New(t)
	pool := poolWith(t, d.DSN, nil)
	const sql = `SELECT a::int4, b::int4, c::int8, d::float8, e::float8, f::float8, g::float8, h::float8, k::float8, x::text, y::text FROM (VALUES
		(0, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
		(7, 1, 60, 1234.5678901234567, -0.0, 5e-324, 1.7976931348623157e308, 1.0, 2.0, NULL, NULL),
		(7, 2, 1, 3.0, 3.0, 3.0, NULL, 3.0, 3.0, NULL, NULL),
		(9, 3, 2, NULL, NULL, NULL, NULL, NULL, NULL, '', 'state "on"')
	) v(a, b, c, d, e, f, g, h, k, x, y)`
	rows, err := pool.Query(t.Context(), sql)
	if err != nil {
		t.Fatal(err)
	}
	if !aggregateRowsBinary(rows.FieldDescriptions()) {
		t.Fatalf("the rows came as %v: the decoder would not be used", rows.FieldDescriptions())
	}
	var decoded []AggregateCell
	var ids []int32
	for rows.Next() {
		var id, i int32
		var c AggregateCell
		if !decodeAggregateRow(rows.RawValues(), &id, &i, &c) {
			t.Fatal("a row was not decoded")
		}
		c.Bucket = int(i)
		decoded, ids = append(decoded, c), append(ids, id)
	}
	rows.Close()
	rows, err = pool.Query(t.Context(), sql)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for n := 0; rows.Next(); n++ {
		var id, i int32
		var c AggregateCell
		if err := rows.Scan(&id, &i, &c.Count, &c.Sum, &c.Min, &c.Max, &c.Stddev, &c.First, &c.Last, &c.FirstText, &c.LastText); err != nil {
			t.Fatal(err)
		}
		c.Bucket = int(i)
		got := decoded[n]
		same := func(a, b pgtype.Float8) bool {
			return a.Valid == b.Valid && math.Float64bits(a.Float64) == math.Float64bits(b.Float64)
		}
		if ids[n] != id || got.Bucket != c.Bucket || got.Count != c.Count || !same(got.Sum, c.Sum) || !same(got.Min, c.Min) ||
			!same(got.Max, c.Max) || !same(got.Stddev, c.Stddev) || !same(got.First, c.First) || !same(got.Last, c.Last) ||
			got.FirstText != c.FirstText || got.LastText != c.LastText {
			t.Errorf("row %d: decoded %d %+v, scanned %d %+v", n, ids[n], got, id, c)
		}
	}
	if len(decoded) != 4 {
		t.Fatalf("%d rows", len(decoded))
	}
}
