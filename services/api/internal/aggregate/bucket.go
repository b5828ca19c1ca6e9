package aggregate

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Origin is where bucket grids start: Monday 2000-01-03 00:00, as an instant
// in UTC and as a wall-clock time elsewhere. The rollups use it too.
var Origin = time.Date(2000, 1, 3, 0, 0, 0, 0, time.UTC)

const originUnix = 946857600 // Origin.Unix()

// Ladder is the widths an automatic bucket is chosen from, finest first.
var Ladder = []time.Duration{
	time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 7 * 24 * time.Hour,
}

// MaxBucket is the widest bucket accepted: 3660 days, about ten years.
const MaxBucket = 3660 * 24 * time.Hour

var bucketUnits = []struct {
	name string
	d    time.Duration
}{{"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}}

// ParseBucket parses a bucket width: "auto" (0), or one or more whole
// numbers with a unit s, m, h, d (24h of wall clock) or w (7d), as in "15m",
// "1h30m", "1d", "7d" or "120s". The width must be a positive multiple of
// one minute and at most MaxBucket. Errors are *InvalidError for "bucket".
func ParseBucket(s string) (time.Duration, error) {
	if strings.EqualFold(strings.TrimSpace(s), "auto") {
		return 0, nil
	}
	const want = `want a whole number of minutes such as 15m, 1h, 1d or 7d, or auto`
	rest := strings.TrimSpace(s)
	if rest == "" {
		return 0, invalid("bucket", "empty; "+want)
	}
	var total time.Duration
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		j := i
		for j < len(rest) && rest[j] >= 'a' && rest[j] <= 'z' {
			j++
		}
		if i == 0 || j == i {
			return 0, invalid("bucket", fmt.Sprintf("cannot parse %q; %s", s, want))
		}
		var unit time.Duration
		for _, u := range bucketUnits {
			if u.name == rest[i:j] {
				unit = u.d
			}
		}
		if unit == 0 {
			return 0, invalid("bucket", fmt.Sprintf("unknown unit %q in %q; want s, m, h, d or w", rest[i:j], s))
		}
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil || n > int64(MaxBucket/unit) || total+time.Duration(n)*unit > MaxBucket {
			return 0, invalid("bucket", fmt.Sprintf("%q is wider than the maximum %s", s, FormatBucket(MaxBucket)))
		}
		total += time.Duration(n) * unit
		rest = rest[j:]
	}
	if err := checkBucket(total); err != nil {
		return 0, err
	}
	return total, nil
}

// checkBucket validates an explicit (non-zero) bucket width.
func checkBucket(d time.Duration) error {
	switch {
	case d <= 0:
		return invalid("bucket", "must be positive")
	case d%time.Minute != 0:
		return invalid("bucket", fmt.Sprintf("%s is not a whole number of minutes", d))
	case d > MaxBucket:
		return invalid("bucket", fmt.Sprintf("%s is wider than the maximum %s", FormatBucket(d), FormatBucket(MaxBucket)))
	}
	return nil
}

// FormatBucket formats a width the way ParseBucket reads it, with days as
// the largest unit: "15m", "1h30m", "1d", "7d"; 0 is "auto".
func FormatBucket(d time.Duration) string {
	if d == 0 {
		return "auto"
	}
	if d < 0 {
		return d.String()
	}
	var b strings.Builder
	for _, u := range bucketUnits[1:] {
		if n := d / u.d; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteString(u.name)
			d -= n * u.d
		}
	}
	if d > 0 { // below a second: not a valid width, but say what it is
		b.WriteString(d.String())
	}
	return b.String()
}

// grid assigns instants to buckets of width w aligned on loc's wall clock.
//
// An instant's label is the index of the wall-clock interval of width w
// (counted from Origin) that its local time falls in. A bucket is a maximal
// stretch of time with one label; it starts where the label changes. Within
// one zone period (constant UTC offset) labels change at wall-clock grid
// points; at a transition they change unless the local time before and after
// it fall in the same interval (the repeated hour of a fall-back with 1h
// buckets).
type grid struct {
	loc *time.Location
	w   int64 // seconds
}

func newGrid(loc *time.Location, w time.Duration) grid {
	return grid{loc: loc, w: int64(w / time.Second)}
}

func (g grid) label(t time.Time) int64 {
	_, off := t.In(g.loc).Zone()
	return floorDiv(t.Unix()+int64(off)-originUnix, g.w)
}

// gridPoint returns the instant at which the wall clock, at UTC offset off,
// shows the start of interval k.
func (g grid) gridPoint(k int64, off int) time.Time {
	return time.Unix(originUnix+k*g.w-int64(off), 0)
}

// start returns the first instant of the bucket that holds t.
func (g grid) start(t time.Time) time.Time {
	for {
		lt := t.In(g.loc)
		_, off := lt.Zone()
		periodStart, _ := lt.ZoneBounds()
		k := g.label(t)
		c := g.gridPoint(k, off)
		if periodStart.IsZero() || c.After(periodStart) {
			return c
		}
		// The label held since the period began: does it go on before it?
		before := periodStart.Add(-time.Nanosecond)
		if g.label(before) != k {
			return periodStart
		}
		t = before
	}
}

// next returns the first instant after t at which the label changes.
func (g grid) next(t time.Time) time.Time {
	for {
		lt := t.In(g.loc)
		_, off := lt.Zone()
		_, periodEnd := lt.ZoneBounds()
		k := g.label(t)
		c := g.gridPoint(k+1, off)
		if periodEnd.IsZero() || c.Before(periodEnd) {
			return c
		}
		if g.label(periodEnd) != k {
			return periodEnd
		}
		t = periodEnd
	}
}

// starts returns the starts of the buckets that meet [from, to), in loc; the
// first is at or before from. It gives up, returning false, when there would
// be more than limit.
func (g grid) starts(from, to time.Time, limit int) ([]time.Time, bool) {
	// Cheap refusal of hopeless widths: transitions move the count by far
	// less than this margin.
	if estimate := int64(to.Sub(from) / (time.Duration(g.w) * time.Second)); estimate > 16 && (estimate-16)/2 > int64(limit) {
		return nil, false
	}
	estimate := int(to.Sub(from)/(time.Duration(g.w)*time.Second)) + 2
	out := make([]time.Time, 1, max(1, min(estimate, limit)))
	out[0] = g.start(from).In(g.loc)
	for {
		n := g.next(out[len(out)-1])
		if !n.Before(to) {
			return out, true
		}
		if len(out) == limit {
			return nil, false
		}
		out = append(out, n.In(g.loc))
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// ParseLocation resolves the tz parameter, the one place its rules live:
// an IANA time zone name such as "Europe/Berlin" or "UTC". A fixed offset
// such as "+02:00" is refused: it is not a zone, it has no DST, and buckets
// aligned to it would drift from the local wall clock twice a year. So are
// "" (the parameter defaults to UTC; an empty value is a mistake) and the
// server's "Local". Errors are *InvalidError for "tz".
func ParseLocation(name string) (*time.Location, error) {
	const want = "want an IANA time zone name such as UTC or Europe/Berlin"
	switch {
	case name == "":
		return nil, invalid("tz", "is empty; "+want)
	case name == "Local":
		return nil, invalid("tz", `"Local" is the server's zone, not one you can name; `+want)
	case name[0] == '+' || name[0] == '-':
		return nil, invalid("tz", fmt.Sprintf("%q is an offset, not a time zone: it has no DST, so buckets would drift from the wall clock; %s", name, want))
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, invalid("tz", fmt.Sprintf("unknown time zone %q; %s", name, want))
	}
	return loc, nil
}
