package aggregate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/db"
	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/db/seed"

	"github.com/sensorhub/sensorhub/services/api/internal/store"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// catalog returns the stored series by device and parameter.
func catalog(t *testing.T, pool *pgxpool.Pool) map[[2]string]Series {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT series_id, device_id, parameter, value_type FROM sensorhub.series`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[[2]string]Series{}
	for rows.Next() {
		var s Series
		if err := rows.Scan(&s.ID, &s.DeviceID, &s.Parameter, &s.Type); err != nil {
			t.Fatal(err)
		}
		out[[2]string{s.DeviceID, s.Parameter}] = s
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// bySeries groups seed readings for expectations, in time order.
func bySeries(rs []seed.Reading) map[[2]string][]reading {
	out := map[[2]string][]reading{}
	for _, r := range rs {
		k := [2]string{r.DeviceID, r.Parameter}
		e := reading{t: r.Time}
		if r.Text != nil {
			e.text, e.isText = *r.Text, true
		} else {
			e.num = *r.Num
		}
		out[k] = append(out[k], e)
	}
	for _, rs := range out {
		slices.SortFunc(rs, func(a, b reading) int { return a.t.Compare(b.t) })
	}
	return out
}

// check runs req and compares every series with what the readings give;
// starts are the bucket starts bruteStarts finds for req, or nil.
func check(t *testing.T, pool *pgxpool.Pool, name string, req Request, starts []time.Time, readings map[[2]string][]reading, wantSource string) {
	t.Helper()
	res, err := Query(t.Context(), pool, req)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	hasNumeric := false
	for _, s := range req.Series {
		hasNumeric = hasNumeric || s.Type == store.TypeNumeric
	}
	if !hasNumeric {
		wantSource = SourceRaw
	}
	if res.Source != wantSource {
		t.Errorf("%s: served by %s, want %s", name, res.Source, wantSource)
	}
	if req.Bucket != 0 && res.Bucket != req.Bucket {
		t.Errorf("%s: bucket %s, want %s", name, FormatBucket(res.Bucket), FormatBucket(req.Bucket))
	}
	loc := req.Location
	if loc == nil {
		loc = time.UTC
	}
	if starts == nil {
		starts = bruteStarts(req.From, req.To, loc, res.Bucket)
	}
	if len(res.Series) != len(req.Series) {
		t.Fatalf("%s: %d series, want %d", name, len(res.Series), len(req.Series))
	}
	for i, s := range req.Series {
		got := res.Series[i]
		src := wantSource
		if s.Type == store.TypeText {
			src = SourceRaw
		}
		if got.DeviceID != s.DeviceID || got.Parameter != s.Parameter || got.Type != s.Type || got.Source != src {
			t.Errorf("%s: series %d is %s/%s (%s) from %s; want %s/%s (%s) from %s", name, i,
				got.DeviceID, got.Parameter, got.Type, got.Source, s.DeviceID, s.Parameter, s.Type, src)
		}
		want := expectPoints(readings[[2]string{s.DeviceID, s.Parameter}], starts, req.From, req.To, req.Funcs, req.Fill)
		comparePoints(t, fmt.Sprintf("%s %s/%s", name, s.DeviceID, s.Parameter), got.Points, res.Funcs, want)
	}
}

var (
	numericFuncs = []string{FuncCount, FuncSum, FuncAvg, FuncMin, FuncMax, FuncFirst, FuncLast, FuncStddev}
	textFuncList = []string{FuncCount, FuncFirst, FuncLast}
	fills        = []string{FillNone, FillNull, FillPrevious, FillLinear}
)

// TestQueryHandComputed checks a few buckets whose values are worked out by
// hand, on both paths.
func TestQueryHandComputed(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *dbtest.DB) {
		at := func(s string) time.Time { return utc("2024-01-01T" + s + "Z") }
		err := seed.Load(t.Context(), d.Pool, []seed.Reading{
			{DeviceID: "dev", Parameter: "temp", Time: at("00:10:00"), Num: seed.Num(1)},
			{DeviceID: "dev", Parameter: "temp", Time: at("00:20:00"), Num: seed.Num(2)},
			{DeviceID: "dev", Parameter: "temp", Time: at("00:50:00"), Num: seed.Num(6)},
			{DeviceID: "dev", Parameter: "temp", Time: at("02:30:00"), Num: seed.Num(10)},
			{DeviceID: "dev", Parameter: "temp", Time: at("04:00:00"), Num: seed.Num(99)}, // outside [00:00, 04:00)
			{DeviceID: "dev", Parameter: "state", Time: at("00:05:00"), Text: seed.Text("a")},
			{DeviceID: "dev", Parameter: "state", Time: at("00:55:00"), Text: seed.Text("b")},
			{DeviceID: "dev", Parameter: "state", Time: at("02:00:00"), Text: seed.Text("c")},
		})
		if err != nil {
			t.Fatal(err)
		}
		cat := catalog(t, d.Pool)
		temp, state := cat[[2]string{"dev", "temp"}], cat[[2]string{"dev", "state"}]
		type vals = map[string]any
		hour0 := vals{"count": int64(3), "sum": 9.0, "avg": 3.0, "min": 1.0, "max": 6.0, "first": 1.0, "last": 6.0, "stddev": math.Sqrt(7)}
		hour2 := vals{"count": int64(1), "sum": 10.0, "avg": 10.0, "min": 10.0, "max": 10.0, "first": 10.0, "last": 10.0, "stddev": nil}
		empty := vals{"count": int64(0), "sum": nil, "avg": nil, "min": nil, "max": nil, "first": nil, "last": nil, "stddev": nil}
		carried := func(v vals) vals {
			c := vals{}
			for k, x := range v {
				c[k] = x
			}
			c["count"] = int64(0)
			return c
		}
		hour1Linear := vals{"count": int64(0), "sum": 9.5, "avg": 6.5, "min": 5.5, "max": 8.0, "first": 1.0, "last": 6.0, "stddev": nil}
		hour3Linear := vals{"count": int64(0), "sum": nil, "avg": nil, "min": nil, "max": nil, "first": 10.0, "last": 10.0, "stddev": nil}
		textHour0 := vals{"count": int64(2), "first": "a", "last": "b"}
		textHour2 := vals{"count": int64(1), "first": "c", "last": "c"}
		textEmpty := vals{"count": int64(0), "first": nil, "last": nil}

		for _, tc := range []struct {
			fill         string
			temp, states []vals // per hour 0..3; nil: no point
		}{
			{FillNone, []vals{hour0, nil, hour2, nil}, []vals{textHour0, nil, textHour2, nil}},
			{FillNull, []vals{hour0, empty, hour2, empty}, []vals{textHour0, textEmpty, textHour2, textEmpty}},
			{FillPrevious, []vals{hour0, carried(hour0), hour2, carried(hour2)}, []vals{textHour0, carried(textHour0), textHour2, carried(textHour2)}},
			{FillLinear, []vals{hour0, hour1Linear, hour2, hour3Linear}, []vals{textHour0, carried(textHour0), textHour2, carried(textHour2)}},
		} {
			for _, from := range []time.Time{at("00:00:00"), at("00:00:01")} {
				name := fmt.Sprintf("fill %s from %s", tc.fill, from.Format(time.TimeOnly))
				num, err := Query(t.Context(), d.Pool, Request{Series: []Series{temp}, From: from, To: at("04:00:00"),
					Bucket: time.Hour, MaxPoints: 100, Funcs: numericFuncs, Fill: tc.fill})
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				txt, err := Query(t.Context(), d.Pool, Request{Series: []Series{state}, From: from, To: at("04:00:00"),
					Bucket: time.Hour, MaxPoints: 100, Funcs: textFuncList, Fill: tc.fill})
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				wantSource := SourceRollup1h
				if from.Second() != 0 {
					wantSource = SourceRaw
				}
				if num.Source != wantSource || txt.Series[0].Source != SourceRaw {
					t.Errorf("%s: sources %s and %s", name, num.Source, txt.Series[0].Source)
				}
				for _, c := range []struct {
					got   []Point
					funcs []string
					want  []vals
				}{{num.Series[0].Points, num.Funcs, tc.temp}, {txt.Series[0].Points, txt.Funcs, tc.states}} {
					var want []expected
					for h, v := range c.want {
						if v != nil {
							want = append(want, expected{Time: at("00:00:00").Add(time.Duration(h) * time.Hour), Values: v, filled: v["count"] == int64(0)})
						}
					}
					comparePoints(t, name, c.got, c.funcs, want)
				}
			}
		}
	})
}

// tiny are finite readings whose squares underflow float64, the smallest
// normal and subnormal among them, with a zero and a sign change.
var tiny = []float64{1e-200, -1e-160, 1e-300, 5e-324, 2.2250738585072014e-308, 0, 3e-170}

// generate makes readings every 7 minutes, with jitter, of six numeric
// series, some with gaps, and one sparser text series, over [from, to).

func generate(from, to time.Time, rng *rand.Rand) []seed.Reading {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	var out []seed.Reading
	inGap := func(t time.Time, gaps ...string) bool {
		for i := 0; i < len(gaps); i += 2 {
			if !t.Before(utc(gaps[i])) && t.Before(utc(gaps[i+1])) {
				return true
			}
		}
		return false
	}
	for i := 0; ; i++ {
		base := from.Add(time.Duration(i) * 7 * time.Minute)
		if !base.Before(to) {
			break
		}
		jitter := func() time.Time {
			switch rng.IntN(8) {
			case 0: // exactly on the minute, often on a bucket edge
				return base
			case 1:
				return base.Add(time.Duration(rng.IntN(60_000_000)) * time.Microsecond)
			}
			return base.Add(time.Duration(rng.IntN(60)) * time.Second)
		}
		hours := float64(base.Unix()) / 3600
		if t := jitter(); !inGap(t, "2024-03-29T05:00:00Z", "2024-03-29T10:00:00Z", "2024-10-25T05:00:00Z", "2024-10-25T10:00:00Z") {
			v := 20 + 5*math.Sin(2*math.Pi*hours/24) + rng.NormFloat64()/2
			out = append(out, seed.Reading{DeviceID: "dev-a", Parameter: "temperature", Time: t.In(berlin), Num: seed.Num(v)})
		}
		if t := jitter(); !inGap(t, "2024-03-30T20:00:00Z", "2024-03-31T05:00:00Z", "2024-10-26T20:00:00Z", "2024-10-27T05:00:00Z") {
			out = append(out, seed.Reading{DeviceID: "dev-a", Parameter: "pressure", Time: t.UTC(), Num: seed.Num(1000 + 30*rng.Float64())})
		}
		if t := jitter(); !inGap(t, "2024-04-02T00:00:00Z", "2024-04-04T00:00:00Z", "2024-10-29T00:00:00Z", "2024-10-31T00:00:00Z") {
			out = append(out, seed.Reading{DeviceID: "dev-b", Parameter: "level", Time: t.In(berlin), Num: seed.Num(100*rng.Float64() - 50)})
		}
		// Where a formula loses digits: a large mean with a small spread,
		// a constant (true stddev 0), and finite values whose squares
		// underflow float64.
		if t := jitter(); !inGap(t, "2024-03-27T00:00:00Z", "2024-03-27T03:00:00Z", "2024-10-23T00:00:00Z", "2024-10-23T03:00:00Z") {
			out = append(out, seed.Reading{DeviceID: "dev-c", Parameter: "odometer", Time: t.UTC(), Num: seed.Num(1e6 + rng.NormFloat64()/2)})
		}
		out = append(out, seed.Reading{DeviceID: "dev-c", Parameter: "setpoint", Time: jitter().UTC(), Num: seed.Num(123456.789)})
		out = append(out, seed.Reading{DeviceID: "dev-c", Parameter: "leak", Time: jitter().UTC(), Num: seed.Num(tiny[i%len(tiny)])})
		if i%2 == 0 {
			if t := jitter(); !inGap(t, "2024-03-31T00:00:00Z", "2024-03-31T04:00:00Z", "2024-10-27T00:00:00Z", "2024-10-27T04:00:00Z") {
				s := fmt.Sprintf("%s-%d", []string{"open", "closed", "fault"}[rng.IntN(3)], i)
				out = append(out, seed.Reading{DeviceID: "dev-b", Parameter: "state", Time: t.In(berlin), Text: seed.Text(s)})
			}
		}
	}
	return out
}

// TestQueryMatchesReadings compares Query with aggregates computed from the
// generated readings, for every function and fill, several widths and
// zones, and ranges that rollups and the readings serve.
func TestQueryMatchesReadings(t *testing.T) {
	windows := []struct {
		name         string
		from, to     time.Time // the data
		wide, narrow [2]time.Time
	}{
		{"march", utc("2024-03-25T00:00:00Z"), utc("2024-04-08T00:00:00Z"),
			[2]time.Time{utc("2024-03-26T00:00:00Z"), utc("2024-04-07T00:00:00Z")},
			[2]time.Time{utc("2024-03-30T00:00:00Z"), utc("2024-04-01T00:00:00Z")}},
		{"october", utc("2024-10-21T00:00:00Z"), utc("2024-11-04T00:00:00Z"),
			[2]time.Time{utc("2024-10-22T00:00:00Z"), utc("2024-11-03T00:00:00Z")},
			[2]time.Time{utc("2024-10-26T00:00:00Z"), utc("2024-10-28T00:00:00Z")}},
	}
	rng := rand.New(rand.NewPCG(2024, 3))
	var data []seed.Reading
	for _, w := range windows {
		data = append(data, generate(w.from, w.to, rng)...)
	}
	readings := bySeries(data)

	zones := []struct {
		name string
		// rollup serves aligned ranges: the coarsest width w that divides the
		// bucket and the zone's offsets.
		rollup func(bucket time.Duration) string
	}{
		{"UTC", func(b time.Duration) string {
			switch {
			case b%day == 0:
				return SourceRollup1d
			case b%time.Hour == 0:
				return SourceRollup1h
			}
			return SourceRollup1m
		}},
		{"Europe/Berlin", hourly},
		{"America/New_York", hourly},
		{"Asia/Kolkata", func(time.Duration) string { return SourceRollup1m }},
	}
	widths := []time.Duration{time.Minute, 15 * time.Minute, time.Hour, 3 * time.Hour, day, 7 * day}

	dbtest.Each(t, func(t *testing.T, d *dbtest.DB) {
		if err := seed.Load(t.Context(), d.Pool, data); err != nil {
			t.Fatal(err)
		}
		cat := catalog(t, d.Pool)
		numeric := []Series{cat[[2]string{"dev-a", "temperature"}], cat[[2]string{"dev-a", "pressure"}], cat[[2]string{"dev-b", "level"}],
			cat[[2]string{"dev-c", "odometer"}], cat[[2]string{"dev-c", "setpoint"}], cat[[2]string{"dev-c", "leak"}]}
		all := append(append([]Series(nil), numeric...), cat[[2]string{"dev-b", "state"}])
		for _, s := range all {
			if s.ID == 0 {
				t.Fatalf("series missing from the catalog: %v", cat)
			}
		}
		queries := 0
		start := time.Now()
		for _, win := range windows {
			for _, z := range zones {
				loc := loadLocation(t, z.name)
				for _, w := range widths {
					r := win.wide
					if w < time.Hour {
						r = win.narrow
					}
					for _, rg := range []struct {
						name     string
						from, to time.Time
						source   string
					}{
						{"aligned", r[0], r[1], z.rollup(w)},
						{"minute-aligned", r[0].Add(17 * time.Minute), r[1].Add(-43 * time.Minute), SourceRollup1m},
						{"unaligned", r[0].Add(7*time.Minute + 13250*time.Millisecond), r[1].Add(-3*time.Minute - 7*time.Second), SourceRaw},
					} {
						starts := bruteStarts(rg.from, rg.to, loc, w)
						for _, fill := range fills {
							name := fmt.Sprintf("%s %s %s %s fill %s", win.name, rg.name, z.name, FormatBucket(w), fill)
							req := Request{Series: numeric, From: rg.from, To: rg.to, Bucket: w, MaxPoints: 1_000_000,
								Funcs: numericFuncs, Fill: fill, Location: loc}
							check(t, d.Pool, name, req, starts, readings, rg.source)
							queries++
							if fill == FillNone || fill == FillLinear {
								// Text series, one query with the numeric ones.
								req.Series, req.Funcs = all, textFuncList
								check(t, d.Pool, name+" with text", req, starts, readings, rg.source)
								queries++
							}
						}
					}
				}
			}
		}
		t.Logf("%d queries compared in %v", queries, time.Since(start).Round(time.Millisecond))
	})
}

func hourly(b time.Duration) string {
	if b%time.Hour == 0 {
		return SourceRollup1h
	}
	return SourceRollup1m
}

// TestQueryReferenceDataset compares Query with aggregates of the reference
// dataset computed here.
func TestQueryReferenceDataset(t *testing.T) {
	path := seed.FindReferenceFile()
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("reference dataset shared/datasets/sensor-target/data.json not found")
		}
		t.Skip("reference dataset shared/datasets/sensor-target/data.json not found beside the checkout")
	}
	data, err := seed.ReadReferenceFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != 20000 {
		t.Fatalf("reference dataset has %d readings, want 20000", len(data))
	}
	readings := bySeries(data)
	zones := []struct {
		loc    *time.Location
		rollup func(time.Duration) string
	}{
		{time.UTC, func(b time.Duration) string {
			if b%day == 0 {
				return SourceRollup1d
			}
			return hourly(b)
		}},
		{loadLocation(t, "Europe/Berlin"), hourly},
		{time.FixedZone("+02:00", 2*3600), hourly},
		{loadLocation(t, "America/New_York"), hourly},
		{loadLocation(t, "Asia/Kolkata"), func(time.Duration) string { return SourceRollup1m }},
	}
	dbtest.Each(t, func(t *testing.T, d *dbtest.DB) {
		if err := seed.Load(t.Context(), d.Pool, data); err != nil {
			t.Fatal(err)
		}
		var numeric, text []Series
		for _, s := range catalog(t, d.Pool) {
			if s.Type == store.TypeText {
				text = append(text, s)
			} else {
				numeric = append(numeric, s)
			}
		}
		if len(numeric) != 18 || len(text) != 16 {
			t.Fatalf("%d numeric and %d text series, want 18 and 16", len(numeric), len(text))
		}
		for _, z := range zones {
			for _, w := range []time.Duration{time.Minute, 15 * time.Minute, time.Hour, day} {
				for _, rg := range []struct {
					name     string
					from, to time.Time
					source   string
				}{
					{"day", utc("2024-03-07T00:00:00Z"), utc("2024-03-08T00:00:00Z"), z.rollup(w)},
					{"unaligned", utc("2024-03-07T01:02:03.456789Z"), utc("2024-03-07T09:08:07.654321Z"), SourceRaw},
				} {
					starts := bruteStarts(rg.from, rg.to, z.loc, w)
					for _, fill := range []string{FillNone, FillLinear} {
						name := fmt.Sprintf("%s %s %s fill %s", rg.name, z.loc, FormatBucket(w), fill)
						req := Request{Series: numeric, From: rg.from, To: rg.to, Bucket: w, MaxPoints: 1_000_000,
							Funcs: numericFuncs, Fill: fill, Location: z.loc}
						check(t, d.Pool, name, req, starts, readings, rg.source)
						req.Series, req.Funcs = text, textFuncList
						check(t, d.Pool, name+" text", req, starts, readings, SourceRaw)
					}
				}
			}
		}
	})
}

// TestQueryRealTimeAggregation checks that on TimescaleDB the rollups serve
// readings that arrived after their last refresh (real-time aggregation
// over the continuous aggregates, through all three levels).
func TestQueryRealTimeAggregation(t *testing.T) {
	d := dbtest.NewFlavor(t, db.FlavorTimescaleDB)
	rng := rand.New(rand.NewPCG(5, 1))
	var loaded []seed.Reading
	for at := utc("2024-05-01T00:00:00Z"); at.Before(utc("2024-05-02T00:00:00Z")); at = at.Add(10 * time.Minute) {
		loaded = append(loaded, seed.Reading{DeviceID: "dev", Parameter: "temp", Time: at.Add(time.Duration(rng.IntN(600)) * time.Second), Num: seed.Num(rng.Float64() * 10)})
	}
	if err := seed.Load(t.Context(), d.Pool, loaded); err != nil {
		t.Fatal(err)
	}
	temp := catalog(t, d.Pool)[[2]string{"dev", "temp"}]
	// A second day written straight into the readings, refreshing nothing.
	var times []time.Time
	var values []float64
	all := append([]seed.Reading(nil), loaded...)
	for at := utc("2024-05-02T00:00:00Z"); at.Before(utc("2024-05-03T00:00:00Z")); at = at.Add(10 * time.Minute) {
		r := seed.Reading{DeviceID: "dev", Parameter: "temp", Time: at.Add(time.Duration(rng.IntN(600)) * time.Second), Num: seed.Num(rng.Float64() * 10)}
		times, values = append(times, r.Time), append(values, *r.Num)
		all = append(all, r)
	}
	const insert = `INSERT INTO sensorhub.readings (series_id, time, utc_offset_min, value_num)
		SELECT $1, t, 0, v FROM unnest($2::timestamptz[], $3::float8[]) AS u(t, v)`
	if _, err := d.Pool.Exec(t.Context(), insert, temp.ID, times, values); err != nil {
		t.Fatal(err)
	}
	readings := bySeries(all)
	for _, tc := range []struct {
		bucket time.Duration
		source string
	}{{15 * time.Minute, SourceRollup1m}, {time.Hour, SourceRollup1h}, {day, SourceRollup1d}} {
		req := Request{Series: []Series{temp}, From: utc("2024-05-01T00:00:00Z"), To: utc("2024-05-03T00:00:00Z"),
			Bucket: tc.bucket, MaxPoints: 1000, Funcs: numericFuncs}
		check(t, d.Pool, FormatBucket(tc.bucket), req, nil, readings, tc.source)
	}
}

// TestQueryPendingRangeServedRaw covers a load that left its rollups to the
// background (ingest load -rollups defer): readings committed with their row
// in rollup_pending must be answered exactly, from the raw readings, until
// the range is materialized, and from the rollup after.
func TestQueryPendingRangeServedRaw(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *dbtest.DB) {
		rng := rand.New(rand.NewPCG(6, 1))
		var loaded []seed.Reading
		for at := utc("2024-05-01T00:00:00Z"); at.Before(utc("2024-05-02T00:00:00Z")); at = at.Add(10 * time.Minute) {
			loaded = append(loaded, seed.Reading{DeviceID: "dev", Parameter: "temp", Time: at.Add(time.Duration(rng.IntN(600)) * time.Second), Num: seed.Num(rng.Float64() * 10)})
		}
		if err := seed.Load(t.Context(), d.Pool, loaded); err != nil {
			t.Fatal(err)
		}
		temp := catalog(t, d.Pool)[[2]string{"dev", "temp"}]
		// A later hour, and readings between the materialized ones (below
		// TimescaleDB's watermark, where real-time aggregation does not look),
		// written as a deferring load writes them: no refresh.
		var times []time.Time
		var values []float64
		all := append([]seed.Reading(nil), loaded...)
		for at := utc("2024-05-01T00:05:00Z"); at.Before(utc("2024-05-02T06:00:00Z")); at = at.Add(30 * time.Minute) {
			r := seed.Reading{DeviceID: "dev", Parameter: "temp", Time: at.Add(time.Duration(rng.IntN(59)) * time.Second), Num: seed.Num(100 + rng.Float64())}
			times, values = append(times, r.Time), append(values, *r.Num)
			all = append(all, r)
		}
		const insert = `INSERT INTO sensorhub.readings (series_id, time, utc_offset_min, value_num)
			SELECT $1, t, 0, v FROM unnest($2::timestamptz[], $3::float8[]) AS u(t, v)`
		if _, err := d.Pool.Exec(t.Context(), insert, temp.ID, times, values); err != nil {
			t.Fatal(err)
		}
		readings := bySeries(all)
		req := Request{Series: []Series{temp}, From: utc("2024-05-01T00:00:00Z"), To: utc("2024-05-03T00:00:00Z"),
			Bucket: time.Hour, MaxPoints: 1000, Funcs: numericFuncs}

		// Without its pending row the rollup is stale: the check below would fail.
		stale, err := Query(t.Context(), d.Pool, req)
		if err != nil {
			t.Fatal(err)
		}
		trueCount := int64(0)
		for _, r := range readings[[2]string{"dev", "temp"}] {
			if r.t.Before(utc("2024-05-01T01:00:00Z")) {
				trueCount++
			}
		}
		if got := stale.Series[0].Points[0].Values[0].Int; stale.Source != SourceRollup1h || got == trueCount {
			t.Fatalf("before the pending row: %v readings in the first hour from %s; want the stale rollup_1h, which misses some of %d",
				got, stale.Source, trueCount)
		}
		if _, err := d.Pool.Exec(t.Context(), `INSERT INTO sensorhub.rollup_pending (lo, hi) VALUES ($1, $2)`, times[0], times[len(times)-1]); err != nil {
			t.Fatal(err)
		}
		for _, b := range []time.Duration{15 * time.Minute, time.Hour, day} {
			req.Bucket = b
			check(t, d.Pool, "pending "+FormatBucket(b), req, nil, readings, SourceRaw)
		}
		// A window more than a day from the pending range still reads the rollup.
		far := Request{Series: []Series{temp}, From: utc("2024-05-04T00:00:00Z"), To: utc("2024-05-05T00:00:00Z"),
			Bucket: time.Hour, MaxPoints: 1000, Funcs: numericFuncs}
		check(t, d.Pool, "far from pending", far, nil, readings, SourceRollup1h)

		// Materialized and no longer pending: the rollups answer, exactly.
		lo, hi := times[0], times[len(times)-1]
		if d.Flavor == db.FlavorTimescaleDB {
			for _, c := range []struct {
				name  string
				width time.Duration
			}{{"sensorhub.rollup_1m", time.Minute}, {"sensorhub.rollup_1h", time.Hour}, {"sensorhub.rollup_1d", day}} {
				if err := db.RefreshContinuousAggregate(t.Context(), d.Pool, c.name, lo.Truncate(c.width), hi.Truncate(c.width).Add(c.width), time.Minute); err != nil {
					t.Fatal(err)
				}
			}
		} else if _, err := d.Pool.Exec(t.Context(), `SELECT sensorhub.refresh_rollups($1, $2)`, lo, hi); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Pool.Exec(t.Context(), `DELETE FROM sensorhub.rollup_pending`); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			bucket time.Duration
			source string
		}{{15 * time.Minute, SourceRollup1m}, {time.Hour, SourceRollup1h}, {day, SourceRollup1d}} {
			req.Bucket = tc.bucket
			check(t, d.Pool, "materialized "+FormatBucket(tc.bucket), req, nil, readings, tc.source)
		}
	})
}
