package store

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/db"
	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/db/scope"
	"github.com/sensorhub/sensorhub/db/seed"
)

// TestLatestAcrossPartitions: the newest reading of each series, looked up
// from the earliest catalog last_time of the listed series, equals an
// independent DISTINCT ON over the readings, with series whose readings end
// in different partitions (chunks; compressed on TimescaleDB), a text
// series, a series without readings, and a catalog whose last_time names a
// reading that was deleted behind its back.
func TestLatestAcrossPartitions(t *testing.T) {
	d := dbtest.New(t)
	ctx := t.Context()
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var rs []seed.Reading
	add := func(param string, days int, text bool) {
		for i := range days * 4 { // every 6 hours
			r := seed.Reading{DeviceID: "dev.l", Parameter: param, Time: start.Add(time.Duration(i) * 6 * time.Hour)}
			if text {
				r.Text = seed.Text(fmt.Sprintf("t%d", i))
			} else {
				r.Num = seed.Num(float64(i) + 0.5)
			}
			rs = append(rs, r)
		}
	}
	add("a.long", 60, false) // nine weekly partitions
	add("b.short", 10, false)
	add("c.text", 30, true)
	rs = append(rs, seed.Reading{DeviceID: "dev.other", Parameter: "a.long", Time: start.Add(59 * 24 * time.Hour), Num: seed.Num(-1)})
	if err := seed.Load(ctx, d.Pool, rs); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Pool.Exec(ctx, `INSERT INTO sensorhub.series (device_id, parameter, value_type) VALUES ('dev.l', 'd.empty', 'numeric')`); err != nil {
		t.Fatal(err)
	}
	if d.Flavor == db.FlavorTimescaleDB {
		var n int
		if err := d.Pool.QueryRow(ctx, `SELECT count(compress_chunk(c, true)) FROM show_chunks('sensorhub.readings') c`).Scan(&n); err != nil || n < 9 {
			t.Fatalf("compressed %d chunks (%v), want at least 9", n, err)
		}
	}
	s := New(d.Pool)
	f := SeriesFilter{DeviceID: "dev.l"}

	// want: device/parameter -> "time value" of the newest reading, by an
	// independent query.
	want := func() map[string]string {
		t.Helper()
		rows, err := d.Pool.Query(ctx, `
			SELECT DISTINCT ON (s.series_id) s.parameter, r.time, coalesce(r.value_num::text, r.value_text)
			FROM sensorhub.series s JOIN sensorhub.readings r USING (series_id)
			WHERE s.device_id = 'dev.l'
			ORDER BY s.series_id, r.time DESC`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		m := map[string]string{}
		for rows.Next() {
			var p, v string
			var at time.Time
			if err := rows.Scan(&p, &at, &v); err != nil {
				t.Fatal(err)
			}
			m[p] = at.UTC().Format(time.RFC3339) + " " + v
		}
		return m
	}
	got := func(list []SeriesLatest) map[string]string {
		m := map[string]string{}
		for _, x := range list {
			if x.Latest == nil {
				m[x.Parameter] = "none"
				continue
			}
			v := x.Latest.Text
			if !x.Latest.IsText {
				v = fmt.Sprint(x.Latest.Num)
			}
			m[x.Parameter] = x.Latest.Time.UTC().Format(time.RFC3339) + " " + v
		}
		return m
	}
	check := func(when string) {
		t.Helper()
		w := want()
		if len(w) != 3 {
			t.Fatalf("%s: the independent query found %d series with readings, want 3", when, len(w))
		}
		latest, err := s.Latest(ctx, scope.All(), f, 100)
		if err != nil {
			t.Fatal(err)
		}
		if g := got(latest); fmt.Sprint(g) != fmt.Sprint(w) {
			t.Errorf("%s: Latest\n got %v\nwant %v", when, g, w)
		}
		all, err := s.ListSeriesLatest(ctx, scope.All(), f, 100)
		if err != nil {
			t.Fatal(err)
		}
		w["d.empty"] = "none"
		if g := got(all); fmt.Sprint(g) != fmt.Sprint(w) {
			t.Errorf("%s: ListSeriesLatest\n got %v\nwant %v", when, g, w)
		}
		if len(all) != 4 || all[3].Parameter != "d.empty" {
			t.Errorf("%s: ListSeriesLatest lists %d series, want 4 in parameter order ending with d.empty", when, len(all))
		}
	}
	check("as loaded")

	// The long series loses its readings from day 9 on, older than the
	// short series' last (the lookup's lower bound), while the catalog still
	// names day 60: the lookup must fall back to an unbounded one for it.
	tag, err := d.Pool.Exec(ctx, `
		DELETE FROM sensorhub.readings r USING sensorhub.series s
		WHERE r.series_id = s.series_id AND s.device_id = 'dev.l' AND s.parameter = 'a.long' AND r.time >= $1`,
		start.Add(9*24*time.Hour))
	if err != nil || tag.RowsAffected() != 51*4 {
		t.Fatalf("delete the newest reading: %v, %v", tag, err)
	}
	check("after a delete behind the catalog's back")
	if w := want(); !strings.HasPrefix(w["a.long"], start.Add(9*24*time.Hour-6*time.Hour).Format(time.RFC3339)) {
		t.Errorf("a.long's newest after the delete is %q, want the one 6 h before day 9", w["a.long"])
	}
}

// TestLegacyOrderAndLimit: process_request's rows, read without an ORDER BY
// in SQL, come by device, parameter and time, equal to an independent
// ordered query, with limits that end inside a series, at its end, and
// beyond everything, also across partitions (chunks).
func TestLegacyOrderAndLimit(t *testing.T) {
	d := dbtest.New(t)
	ctx := t.Context()
	start := time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)
	var rs []seed.Reading
	// Series created out of name order, each over three weeks.
	for _, p := range []string{"p.c", "p.a", "p.b"} {
		for i := range 21 * 8 {
			rs = append(rs, seed.Reading{DeviceID: "dev.o", Parameter: p, Time: start.Add(time.Duration(i) * 3 * time.Hour), Num: seed.Num(float64(i))})
		}
	}
	if err := seed.Load(ctx, d.Pool, rs); err != nil {
		t.Fatal(err)
	}
	s := New(d.Pool)
	for _, limit := range []int{1, 100, 168, 169, 400, 1000} {
		rows, err := d.Pool.Query(ctx, `
			SELECT s.parameter || ' ' || r.time::text FROM sensorhub.readings r JOIN sensorhub.series s USING (series_id)
			WHERE s.device_id = 'dev.o' ORDER BY s.device_id, s.parameter, r.time LIMIT $1`, limit)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for rows.Next() {
			var x string
			if err := rows.Scan(&x); err != nil {
				t.Fatal(err)
			}
			want = append(want, x)
		}
		rows.Close()
		lr, err := s.Legacy(ctx, scope.All(), LegacyQuery{DeviceID: "dev.o"}, limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for lr.Next() {
			r := lr.Row()
			got = append(got, r.Parameter+" "+r.Time.UTC().Format("2006-01-02 15:04:05")+"+00")
		}
		if err := lr.Err(); err != nil {
			t.Fatalf("limit %d: %v", limit, err)
		}
		lr.Close()
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("limit %d: %d rows, want %d; first difference at %d", limit, len(got), len(want), firstDiff(got, want))
		}
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
