package aggregate

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/services/api/internal/store"
)

var (
	numSeries  = Series{ID: 1, DeviceID: "dev", Parameter: "temp", Type: store.TypeNumeric}
	numSeries2 = Series{ID: 2, DeviceID: "dev", Parameter: "hum", Type: store.TypeNumeric}
	textSeries = Series{ID: 3, DeviceID: "dev", Parameter: "state", Type: store.TypeText}
)

func TestPlan(t *testing.T) {
	berlin := loadLocation(t, "Europe/Berlin")
	kolkata := loadLocation(t, "Asia/Kolkata")
	newYork := loadLocation(t, "America/New_York")
	london := loadLocation(t, "Europe/London")
	plus2 := time.FixedZone("+02:00", 2*3600)

	// A week in UTC days and a range across Berlin's spring change.
	weekFrom, weekTo := utc("2024-03-25T00:00:00Z"), utc("2024-04-01T00:00:00Z")
	for _, tc := range []struct {
		name       string
		req        Request
		source     string
		bucket     time.Duration
		buckets    int
		firstStart string
	}{
		{"utc days from rollup_1d", Request{Bucket: day}, SourceRollup1d, day, 7, "2024-03-25T00:00:00Z"},
		{"utc weeks from rollup_1d", Request{Bucket: 7 * day}, SourceRollup1d, 7 * day, 1, "2024-03-25T00:00:00Z"},
		{"utc 3h from rollup_1h", Request{Bucket: 3 * time.Hour}, SourceRollup1h, 3 * time.Hour, 56, "2024-03-25T00:00:00Z"},
		{"utc 15m from rollup_1m", Request{Bucket: 15 * time.Minute}, SourceRollup1m, 15 * time.Minute, 672, "2024-03-25T00:00:00Z"},
		{"utc 90m is no multiple of 1h", Request{Bucket: 90 * time.Minute}, SourceRollup1m, 90 * time.Minute, 112, "2024-03-25T00:00:00Z"},
		{"utc days from a half hour", Request{Bucket: day, From: weekFrom.Add(30 * time.Minute)}, SourceRollup1m, day, 7, "2024-03-25T00:00:00Z"},
		{"utc days to an hour", Request{Bucket: day, To: weekTo.Add(-time.Hour)}, SourceRollup1h, day, 7, "2024-03-25T00:00:00Z"},
		{"utc days from a second", Request{Bucket: day, From: weekFrom.Add(time.Second)}, SourceRaw, day, 7, "2024-03-25T00:00:00Z"},
		{"utc days from a microsecond", Request{Bucket: day, From: weekFrom.Add(time.Microsecond)}, SourceRaw, day, 7, "2024-03-25T00:00:00Z"},
		{"nanoseconds round up to the same instant", Request{Bucket: day, From: weekFrom.Add(-time.Nanosecond)}, SourceRollup1d, day, 7, "2024-03-25T00:00:00Z"},
		{"berlin days from rollup_1h", Request{Bucket: day, Location: berlin}, SourceRollup1h, day, 8, "2024-03-24T23:00:00Z"},
		{"berlin local days from rollup_1h", Request{Bucket: day, Location: berlin,
			From: utc("2024-03-24T23:00:00Z"), To: utc("2024-03-31T22:00:00Z")}, SourceRollup1h, day, 7, "2024-03-24T23:00:00Z"},
		{"berlin 15m from rollup_1m", Request{Bucket: 15 * time.Minute, Location: berlin}, SourceRollup1m, 15 * time.Minute, 672, "2024-03-25T00:00:00Z"},
		{"kolkata hours from rollup_1m", Request{Bucket: time.Hour, Location: kolkata}, SourceRollup1m, time.Hour, 169, "2024-03-24T23:30:00Z"},
		{"kolkata days from rollup_1m", Request{Bucket: day, Location: kolkata}, SourceRollup1m, day, 8, "2024-03-24T18:30:00Z"},
		{"new york hours from rollup_1h", Request{Bucket: time.Hour, Location: newYork}, SourceRollup1h, time.Hour, 168, "2024-03-25T00:00:00Z"},
		{"london in winter from rollup_1d", Request{Bucket: day, Location: london,
			From: utc("2024-01-01T00:00:00Z"), To: utc("2024-01-08T00:00:00Z")}, SourceRollup1d, day, 7, "2024-01-01T00:00:00Z"},
		{"london across its spring change from rollup_1h", Request{Bucket: day, Location: london,
			From: utc("2024-03-25T00:00:00Z"), To: utc("2024-04-01T00:00:00Z")}, SourceRollup1h, day, 8, "2024-03-25T00:00:00Z"},
		{"fixed +02:00 days from rollup_1h", Request{Bucket: day, Location: plus2}, SourceRollup1h, day, 8, "2024-03-24T22:00:00Z"},
		{"text series only come from raw", Request{Bucket: day, Series: []Series{textSeries}, Funcs: []string{FuncCount}}, SourceRaw, day, 7, "2024-03-25T00:00:00Z"},
		{"mixed series: the numeric source", Request{Bucket: day, Series: []Series{numSeries, textSeries}, Funcs: []string{"last"}}, SourceRollup1d, day, 7, "2024-03-25T00:00:00Z"},
		{"auto: finest within max_points", Request{MaxPoints: 1000}, SourceRollup1m, 15 * time.Minute, 672, "2024-03-25T00:00:00Z"},
		{"auto: counts points across series", Request{MaxPoints: 1000, Series: []Series{numSeries, numSeries2}}, SourceRollup1m, 30 * time.Minute, 336, "2024-03-25T00:00:00Z"},
		{"auto: exactly max_points", Request{MaxPoints: 168}, SourceRollup1h, time.Hour, 168, "2024-03-25T00:00:00Z"},
		{"auto: one fewer", Request{MaxPoints: 167}, SourceRollup1h, 3 * time.Hour, 56, "2024-03-25T00:00:00Z"},
		{"auto: weeks", Request{MaxPoints: 5, To: utc("2024-04-22T00:00:00Z")}, SourceRollup1d, 7 * day, 4, "2024-03-25T00:00:00Z"},
		{"auto: no practical limit", Request{MaxPoints: math.MaxInt}, SourceRollup1m, time.Minute, 10080, "2024-03-25T00:00:00Z"},
		{"auto: berlin days are 23h", Request{MaxPoints: 8, Location: berlin}, SourceRollup1h, day, 8, "2024-03-24T23:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			if req.Series == nil {
				req.Series = []Series{numSeries}
			}
			if req.From.IsZero() {
				req.From = weekFrom
			}
			if req.To.IsZero() {
				req.To = weekTo
			}
			if req.MaxPoints == 0 {
				req.MaxPoints = 10000
			}
			if req.Funcs == nil {
				req.Funcs = []string{FuncAvg}
			}
			p, err := Plan(req)
			if err != nil {
				t.Fatal(err)
			}
			if p.Source != tc.source || p.Bucket != tc.bucket || len(p.Buckets) != tc.buckets {
				t.Errorf("source %s, bucket %s, %d buckets; want %s, %s, %d", p.Source, FormatBucket(p.Bucket), len(p.Buckets), tc.source, FormatBucket(tc.bucket), tc.buckets)
			}
			if p.AutoBucket != (req.Bucket == 0) {
				t.Errorf("AutoBucket = %v", p.AutoBucket)
			}
			if len(p.Buckets) > 0 && !p.Buckets[0].Equal(utc(tc.firstStart)) {
				t.Errorf("first bucket starts %s, want %s", p.Buckets[0].UTC().Format(time.RFC3339), tc.firstStart)
			}
			if p.Points != len(req.Series)*len(p.Buckets) || p.Points > req.MaxPoints {
				t.Errorf("points %d for %d series × %d buckets, max %d", p.Points, len(req.Series), len(p.Buckets), req.MaxPoints)
			}
			for i := 1; i < len(p.Buckets); i++ {
				if !p.Buckets[i-1].Before(p.Buckets[i]) || !p.Buckets[i].After(p.From) || !p.Buckets[i].Before(p.To) {
					t.Errorf("bucket %d starts %s: not ascending within (from, to)", i, p.Buckets[i])
				}
			}
			if p.Buckets[0].After(p.From) {
				t.Errorf("first bucket starts %s after from %s", p.Buckets[0], p.From)
			}
		})
	}
}

func TestPlanNormalises(t *testing.T) {
	p, err := Plan(Request{
		Series: []Series{numSeries}, From: utc("2024-03-25T00:00:00.0000001Z"), To: utc("2024-03-26T00:00:00Z"),
		Bucket: time.Hour, MaxPoints: 100, Funcs: []string{" AVG", "max", "avg", "Count"}, Fill: "Linear",
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(p.Funcs, ",") != "avg,max,count" || p.Fill != FillLinear || p.Location != time.UTC {
		t.Errorf("funcs %v, fill %q, location %v", p.Funcs, p.Fill, p.Location)
	}
	if want := utc("2024-03-25T00:00:00.000001Z"); !p.From.Equal(want) {
		t.Errorf("from %s, want %s (rounded up to a microsecond)", p.From.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
	if p, err := Plan(Request{Series: []Series{numSeries}, From: utc("2024-03-25T00:00:00Z"), To: utc("2024-03-26T00:00:00Z"),
		Bucket: time.Hour, MaxPoints: 100, Funcs: []string{"sum"}}); err != nil || p.Fill != FillNone {
		t.Errorf("empty fill: %q, %v; want none", p.Fill, err)
	}
}

func TestPlanInvalid(t *testing.T) {
	from, to := utc("2024-03-25T00:00:00Z"), utc("2024-04-01T00:00:00Z")
	for _, tc := range []struct {
		name   string
		edit   func(*Request)
		param  string
		reason string // a substring
	}{
		{"no series", func(r *Request) { r.Series = nil }, "series", "at least one"},
		{"zero from", func(r *Request) { r.From = time.Time{} }, "from", "0001-01-02"},
		{"zero to", func(r *Request) { r.To = time.Time{} }, "to", "0001-01-02"},
		{"to before from", func(r *Request) { r.From, r.To = to, from }, "to", "after from"},
		{"empty range", func(r *Request) { r.To = r.From }, "to", "after from"},
		{"year 10000", func(r *Request) { r.To = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "to", "years"},
		{"max points", func(r *Request) { r.MaxPoints = 0 }, "max_points", "at least 1"},
		{"more series than points", func(r *Request) { r.MaxPoints = 1; r.Series = []Series{numSeries, numSeries2} }, "max_points", "2 series"},
		{"unknown fill", func(r *Request) { r.Fill = "zero" }, "fill", `"zero"`},
		{"no funcs", func(r *Request) { r.Funcs = nil }, "agg", "at least one"},
		{"unknown func", func(r *Request) { r.Funcs = []string{"avg", "median"} }, "agg", `"median"`},
		{"avg of text", func(r *Request) { r.Series = []Series{numSeries, textSeries}; r.Funcs = []string{"count", "avg"} },
			"agg", "avg is not defined for text series dev/state"},
		{"stddev of text", func(r *Request) { r.Series = []Series{textSeries}; r.Funcs = []string{"stddev"} },
			"agg", "stddev is not defined for text series dev/state"},
		{"bucket of seconds", func(r *Request) { r.Bucket = 90 * time.Second }, "bucket", "minutes"},
		{"negative bucket", func(r *Request) { r.Bucket = -time.Hour }, "bucket", "positive"},
		{"huge bucket", func(r *Request) { r.Bucket = MaxBucket + time.Minute }, "bucket", "maximum"},
		{"too many buckets", func(r *Request) { r.Bucket = time.Minute }, "bucket", "max_points 1000"},
		{"too many points", func(r *Request) {
			r.MaxPoints = 500
			r.Series = []Series{numSeries, numSeries2, textSeries}
			r.Funcs = []string{"count"}
		}, "bucket", "3 series"},
		{"auto cannot fit", func(r *Request) { r.Bucket = 0; r.MaxPoints = 10; r.To = from.AddDate(1, 0, 0) }, "bucket", "even 7d"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := Request{Series: []Series{numSeries}, From: from, To: to, Bucket: time.Hour, MaxPoints: 1000, Funcs: []string{"avg"}}
			tc.edit(&req)
			_, err := Plan(req)
			var ie *InvalidError
			if !errors.As(err, &ie) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v; want an InvalidError", err)
			}
			if ie.Param != tc.param || !strings.Contains(ie.Reason, tc.reason) {
				t.Errorf("param %q, reason %q; want %q, containing %q", ie.Param, ie.Reason, tc.param, tc.reason)
			}
			if !strings.Contains(err.Error(), tc.param) {
				t.Errorf("error %q does not name %s", err, tc.param)
			}
			// Query refuses it before it touches the database.
			if _, err := Query(t.Context(), nil, req); !errors.As(err, &ie) {
				t.Errorf("Query: %v", err)
			}
		})
	}
	if _, err := Plan(Request{Series: []Series{{ID: 9, Type: "blob"}}, From: from, To: to, MaxPoints: 10, Funcs: []string{"count"}}); err == nil || errors.Is(err, ErrInvalid) {
		t.Errorf("unknown series type: %v; want an internal error", err)
	}
}

func TestInvalidErrorMessage(t *testing.T) {
	err := error(&InvalidError{Param: "agg", Reason: "avg is not defined for text series d/p"})
	if got, want := err.Error(), "invalid aggregate request: agg: avg is not defined for text series d/p"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestParseFuncs(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, "avg"}, {[]string{""}, "avg"}, {[]string{"count,avg"}, "count avg"},
		{[]string{"min", " max , first"}, "min max first"}, {[]string{"Count"}, "Count"},
	} {
		got, err := ParseFuncs(tc.in)
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("ParseFuncs(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range [][]string{{","}, {" "}, {"", " , "}} {
		_, err := ParseFuncs(in)
		var ie *InvalidError
		if !errors.As(err, &ie) || ie.Param != "agg" {
			t.Errorf("ParseFuncs(%q) = %v; want an InvalidError for agg", in, err)
		}
	}
}
