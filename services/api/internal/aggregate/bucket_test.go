package aggregate

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func loadLocation(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load time zone %s: %v", name, err)
	}
	return loc
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

const day = 24 * time.Hour

func TestParseBucket(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"auto", 0},
		{" AUTO ", 0},
		{"1m", time.Minute},
		{"15m", 15 * time.Minute},
		{"1h", time.Hour},
		{"1h30m", 90 * time.Minute},
		{"120s", 2 * time.Minute},
		{"1d", day},
		{"7d", 7 * day},
		{"1w", 7 * day},
		{"1d12h", 36 * time.Hour},
		{"3660d", MaxBucket},
		{" 5m ", 5 * time.Minute},
	} {
		got, err := ParseBucket(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseBucket(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{
		"", " ", "90s", "30s", "0m", "0", "15", "m", "-1m", "+1m", "1.5h", "15x", "1y", "15M", "1 h",
		"3661d", "99999999999999999999m", "9223372036854775807s", "auto1m", "1m auto",
	} {
		got, err := ParseBucket(in)
		var ie *InvalidError
		if !errors.As(err, &ie) || ie.Param != "bucket" || !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseBucket(%q) = %v, %v; want an InvalidError for bucket", in, got, err)
			continue
		}
		if !strings.Contains(err.Error(), "bucket") {
			t.Errorf("ParseBucket(%q): error %q does not name the parameter", in, err)
		}
	}
}

func TestFormatBucket(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "auto", time.Minute: "1m", 90 * time.Minute: "1h30m", day: "1d", 7 * day: "7d", 36 * time.Hour: "1d12h",
	} {
		if got := FormatBucket(d); got != want {
			t.Errorf("FormatBucket(%v) = %q, want %q", d, got, want)
		}
	}
}

func FuzzParseBucket(f *testing.F) {
	for _, s := range []string{"auto", "15m", "1h", "1d", "7d", "90s", "120s", "1h30m", "1w2d3h4m5s", "", "0m", "-5m", "3661d", "99999999999999999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseBucket(s)
		if err != nil {
			var ie *InvalidError
			if !errors.As(err, &ie) || ie.Param != "bucket" || !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseBucket(%q): error %v is not an InvalidError for bucket", s, err)
			}
			return
		}
		if d == 0 {
			if !strings.EqualFold(strings.TrimSpace(s), "auto") {
				t.Fatalf("ParseBucket(%q) = 0 without auto", s)
			}
			return
		}
		if d < time.Minute || d%time.Minute != 0 || d > MaxBucket {
			t.Fatalf("ParseBucket(%q) = %v: not a positive multiple of a minute within MaxBucket", s, d)
		}
		again, err := ParseBucket(FormatBucket(d))
		if err != nil || again != d {
			t.Fatalf("ParseBucket(FormatBucket(%v) = %q) = %v, %v", d, FormatBucket(d), again, err)
		}
	})
}

// TestBucketStartsDST pins the bucket starts around DST changes.
func TestBucketStartsDST(t *testing.T) {
	berlin := loadLocation(t, "Europe/Berlin")
	newYork := loadLocation(t, "America/New_York")
	kolkata := loadLocation(t, "Asia/Kolkata")
	for _, tc := range []struct {
		name     string
		loc      *time.Location
		w        time.Duration
		from, to string
		want     []string
	}{
		{"berlin 1d spring: 23h", berlin, day, "2024-03-30T12:00:00Z", "2024-04-01T12:00:00Z",
			[]string{"2024-03-29T23:00:00Z", "2024-03-30T23:00:00Z", "2024-03-31T22:00:00Z"}},
		{"berlin 1d autumn: 25h", berlin, day, "2024-10-26T12:00:00Z", "2024-10-28T12:00:00Z",
			[]string{"2024-10-25T22:00:00Z", "2024-10-26T22:00:00Z", "2024-10-27T23:00:00Z"}},
		{"berlin 1h spring: 02:00 never happens", berlin, time.Hour, "2024-03-30T23:30:00Z", "2024-03-31T02:00:00Z",
			[]string{"2024-03-30T23:00:00Z", "2024-03-31T00:00:00Z", "2024-03-31T01:00:00Z"}},
		{"berlin 1h autumn: 02:00 lasts two hours", berlin, time.Hour, "2024-10-26T23:00:00Z", "2024-10-27T03:00:00Z",
			[]string{"2024-10-26T23:00:00Z", "2024-10-27T00:00:00Z", "2024-10-27T02:00:00Z"}},
		{"berlin 3h autumn: 00:00 to 03:00 lasts four hours", berlin, 3 * time.Hour, "2024-10-26T21:00:00Z", "2024-10-27T06:00:00Z",
			[]string{"2024-10-26T19:00:00Z", "2024-10-26T22:00:00Z", "2024-10-27T02:00:00Z", "2024-10-27T05:00:00Z"}},
		{"berlin 30m autumn: the repeated hour twice", berlin, 30 * time.Minute, "2024-10-26T23:30:00Z", "2024-10-27T02:00:00Z",
			[]string{"2024-10-26T23:30:00Z", "2024-10-27T00:00:00Z", "2024-10-27T00:30:00Z", "2024-10-27T01:00:00Z", "2024-10-27T01:30:00Z"}},
		{"berlin 7d: local Monday midnight", berlin, 7 * day, "2024-03-27T00:00:00Z", "2024-04-09T00:00:00Z",
			[]string{"2024-03-24T23:00:00Z", "2024-03-31T22:00:00Z", "2024-04-07T22:00:00Z"}},
		{"new york 1d autumn: 25h", newYork, day, "2024-11-02T12:00:00Z", "2024-11-04T12:00:00Z",
			[]string{"2024-11-02T04:00:00Z", "2024-11-03T04:00:00Z", "2024-11-04T05:00:00Z"}},
		{"new york 1h autumn: 01:00 lasts two hours", newYork, time.Hour, "2024-11-03T04:00:00Z", "2024-11-03T08:00:00Z",
			[]string{"2024-11-03T04:00:00Z", "2024-11-03T05:00:00Z", "2024-11-03T07:00:00Z"}},
		{"kolkata 1h: half past UTC", kolkata, time.Hour, "2024-03-07T00:00:00Z", "2024-03-07T02:00:00Z",
			[]string{"2024-03-06T23:30:00Z", "2024-03-07T00:30:00Z", "2024-03-07T01:30:00Z"}},
		{"utc 7d: Mondays", time.UTC, 7 * day, "2024-03-27T00:00:00Z", "2024-04-09T00:00:00Z",
			[]string{"2024-03-25T00:00:00Z", "2024-04-01T00:00:00Z", "2024-04-08T00:00:00Z"}},
		{"utc 7h counts from origin", time.UTC, 7 * time.Hour, "2024-03-27T00:00:00Z", "2024-03-27T03:00:00Z",
			[]string{"2024-03-26T18:00:00Z", "2024-03-27T01:00:00Z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := newGrid(tc.loc, tc.w).starts(utc(tc.from), utc(tc.to), 1000)
			if !ok {
				t.Fatal("starts gave up")
			}
			var gs []string
			for _, g := range got {
				if g.Location() != tc.loc {
					t.Errorf("start %s is in %s, want %s", g, g.Location(), tc.loc)
				}
				gs = append(gs, g.UTC().Format(time.RFC3339))
			}
			if !slices.Equal(gs, tc.want) {
				t.Errorf("starts =\n%v\nwant\n%v", gs, tc.want)
			}
		})
	}
}

// TestBucketStartsMatchWallClockScan compares the period-walking grid with
// a minute-by-minute scan of wall-clock labels in many zones and widths.
func TestBucketStartsMatchWallClockScan(t *testing.T) {
	zones := []string{"UTC", "Europe/Berlin", "Asia/Kolkata", "America/New_York", "Australia/Lord_Howe",
		"America/St_Johns", "Asia/Kathmandu", "Pacific/Chatham", "America/Santiago", "Europe/London"}
	widths := []time.Duration{time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 3 * time.Hour, 12 * time.Hour, day, 7 * day, 45 * time.Minute, 25 * time.Hour}
	ranges := [][2]string{
		{"2024-03-28T13:17:45.5Z", "2024-04-10T00:00:00Z"}, // Berlin, London, Santiago, Lord Howe, Chatham in spring/autumn
		{"2024-09-01T00:00:00Z", "2024-09-12T00:00:00Z"},   // Santiago, Lord Howe, Chatham
		{"2024-10-24T00:00:00Z", "2024-11-05T07:00:00Z"},   // Berlin, London, New York
		{"2024-03-09T00:00:00Z", "2024-03-12T00:00:00Z"},   // New York, St Johns
	}
	for _, name := range zones {
		loc := loadLocation(t, name)
		for _, w := range widths {
			for _, r := range ranges {
				from, to := utc(r[0]), utc(r[1])
				if w < time.Hour {
					to = from.Add(4 * day)
				}
				got, ok := newGrid(loc, w).starts(from, to, 1<<20)
				if !ok {
					t.Fatalf("%s %s %v: starts gave up", name, FormatBucket(w), r)
				}
				want := bruteStarts(from, to, loc, w)
				if !slices.EqualFunc(got, want, time.Time.Equal) {
					t.Errorf("%s %s [%s, %s): %d starts, want %d; first difference %s", name, FormatBucket(w), r[0], r[1], len(got), len(want), firstDifference(got, want))
				}
			}
		}
	}
}

func firstDifference(a, b []time.Time) string {
	for i := 0; i < len(a) || i < len(b); i++ {
		switch {
		case i >= len(a):
			return fmt.Sprintf("missing %s", b[i].UTC())
		case i >= len(b):
			return fmt.Sprintf("extra %s", a[i].UTC())
		case !a[i].Equal(b[i]):
			return fmt.Sprintf("at %d: %s, want %s", i, a[i].UTC(), b[i].UTC())
		}
	}
	return "none"
}

func TestBucketStartsLimit(t *testing.T) {
	g := newGrid(time.UTC, time.Hour)
	from := utc("2024-01-01T00:00:00Z")
	if bs, ok := g.starts(from, from.Add(10*time.Hour), 10); !ok || len(bs) != 10 {
		t.Errorf("10 buckets with limit 10: %d, %v", len(bs), ok)
	}
	if _, ok := g.starts(from, from.Add(10*time.Hour+time.Second), 10); ok {
		t.Error("11 buckets with limit 10 accepted")
	}
	if _, ok := g.starts(from, from.AddDate(1000, 0, 0), 10); ok {
		t.Error("a millennium of hours with limit 10 accepted")
	}
}

func TestParseLocation(t *testing.T) {
	for _, in := range []string{"UTC", "Europe/Berlin", "America/St_Johns", "Pacific/Kiritimati"} {
		if loc, err := ParseLocation(in); err != nil || loc.String() != in {
			t.Errorf("ParseLocation(%q) = %v, %v", in, loc, err)
		}
	}
	for _, in := range []string{"", "Local", "Mars/Olympus", "../etc/passwd", "/etc/localtime", "+02:00", "-04:30", "+00:00", "utc ", " UTC"} {
		_, err := ParseLocation(in)
		var ie *InvalidError
		if !errors.As(err, &ie) || ie.Param != "tz" {
			t.Errorf("ParseLocation(%q) = %v; want an InvalidError for tz", in, err)
		}
	}
	if _, err := ParseLocation("+02:00"); err == nil || !strings.Contains(err.Error(), "an offset, not a time zone") {
		t.Errorf("an offset: %v; want the reason", err)
	}
}
