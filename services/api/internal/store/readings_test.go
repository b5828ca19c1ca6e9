package store

import (
	"math"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/db/dbtest"
)

// TestReadingDecoder reads rows shaped like the readings queries' through the
// binary decoder and through rows.Scan, on the API's pool configuration,
// and requires the same readings: times at microsecond precision from year 1
// to 9999 and around PostgreSQL's and Unix's epochs, offsets of either sign,
// floats from subnormal to the largest and negative zero, text values, and
// the rows the decoder leaves to Scan, which refuses them (infinite times).
func TestReadingDecoder(t *testing.T) {
	d := dbtest.New(t)
	pool := poolWith(t, d.DSN, nil)
	const sql = `SELECT t, o::int2, n, x FROM (VALUES
		('2024-03-07 10:22:07.315194+00'::timestamptz, 120, 801.4240531704808::float8, NULL::text),
		('0001-01-01 00:00:00+00', -1439, 5e-324, NULL),
		('9999-12-31 23:59:59.999999+00', 1439, 1.7976931348623157e308, NULL),
		('2000-01-01 00:00:00+00', 0, '-0'::float8, NULL),
		('1999-12-31 23:59:59.999999+00', -60, -1e-300, NULL),
		('1969-12-31 23:59:59.000001+00', 330, 0.1, NULL),
		('1970-01-01 00:00:00+00', 0, NULL, 'state "on"'),
		('2024-01-01 00:00:00+00', 0, NULL, '')
	) v(t, o, n, x)`
	read := func(forceScan bool) []Reading {
		rows, err := pool.Query(t.Context(), sql)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		rs := readingScanner{checked: forceScan}
		var out []Reading
		for rows.Next() {
			r, err := rs.scan(rows)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if !forceScan && !rs.binary {
			t.Fatalf("the rows came as %v, not in binary: the decoder was not used", rows.FieldDescriptions())
		}
		return out
	}
	decoded, scanned := read(false), read(true)
	if len(decoded) != 8 || len(scanned) != 8 {
		t.Fatalf("%d and %d rows", len(decoded), len(scanned))
	}
	for i := range decoded {
		a, b := decoded[i], scanned[i]
		if !a.Time.Equal(b.Time) || a.Time.Location() != time.UTC || a.OffsetMin != b.OffsetMin ||
			math.Float64bits(a.Num) != math.Float64bits(b.Num) || a.Text != b.Text || a.IsText != b.IsText {
			t.Errorf("row %d: decoded %+v, scanned %+v", i, a, b)
		}
	}
	if got := decoded[0].Time; !got.Equal(time.Date(2024, 3, 7, 10, 22, 7, 315194000, time.UTC)) {
		t.Errorf("row 0 time %v", got)
	}
	if !math.Signbit(decoded[3].Num) || decoded[3].Num != 0 {
		t.Errorf("negative zero read as %v", decoded[3].Num)
	}
	for _, inf := range []string{"infinity", "-infinity"} {
		rows, err := pool.Query(t.Context(), `SELECT $1::timestamptz, 0::int2, 1::float8, NULL::text`, inf)
		if err != nil {
			t.Fatal(err)
		}
		var rs readingScanner
		if !rows.Next() {
			t.Fatal("no row")
		}
		if r, err := rs.scan(rows); err == nil {
			t.Errorf("%s read as %+v, not refused", inf, r)
		}
		rows.Close()
	}
}
