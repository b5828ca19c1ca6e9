package aggregate

// An implementation of the package's semantics written for the tests only,
// the slow and obvious way, independent of bucket.go and fill.go: bucket
// labels come from the wall-clock fields of every minute, aggregates from
// loops over the readings.

import (
	"math"
	"sort"
	"testing"
	"time"
)

// wallLabel is the index of the width-w interval, counted from Origin on the
// wall clock, that t's local time in loc falls in.
func wallLabel(t time.Time, loc *time.Location, w time.Duration) int64 {
	l := t.In(loc)
	wall := time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), 0, time.UTC)
	d := wall.Sub(Origin)
	k := d / w
	if d%w < 0 {
		k--
	}
	return int64(k)
}

// bruteStarts lists the bucket starts that meet [from, to) by scanning every
// minute: a bucket starts wherever the wall-clock label changes. It assumes
// zone transitions at whole minutes, as all zones the tests use have.
func bruteStarts(from, to time.Time, loc *time.Location, w time.Duration) []time.Time {
	m := from.Truncate(time.Minute)
	// Walk back to the start of from's bucket.
	for k := wallLabel(m, loc, w); wallLabel(m.Add(-time.Minute), loc, w) == k; {
		m = m.Add(-time.Minute)
	}
	out := []time.Time{m}
	prev := wallLabel(m, loc, w)
	for m = m.Add(time.Minute); m.Before(to); m = m.Add(time.Minute) {
		if k := wallLabel(m, loc, w); k != prev {
			out = append(out, m)
			prev = k
		}
	}
	return out
}

// reading is one reading of one series, for expectations.
type reading struct {
	t      time.Time
	num    float64
	text   string
	isText bool
}

// bucketAgg is the expected aggregate of one bucket.
type bucketAgg struct {
	rs []reading // in time order
}

func (b bucketAgg) value(f string) any {
	rs := b.rs
	switch f {
	case FuncCount:
		return int64(len(rs))
	case FuncFirst, FuncLast:
		r := rs[0]
		if f == FuncLast {
			r = rs[len(rs)-1]
		}
		if r.isText {
			return r.text
		}
		return r.num
	}
	var sum float64
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range rs {
		sum += r.num
		lo, hi = math.Min(lo, r.num), math.Max(hi, r.num)
	}
	mean := sum / float64(len(rs))
	switch f {
	case FuncSum:
		return sum
	case FuncAvg:
		return mean
	case FuncMin:
		return lo
	case FuncMax:
		return hi
	case FuncStddev:
		if len(rs) < 2 {
			return nil
		}
		var ss float64
		for _, r := range rs {
			ss += (r.num - mean) * (r.num - mean)
		}
		return math.Sqrt(ss / float64(len(rs)-1))
	}
	panic("unknown func " + f)
}

// expected is one expected point; filled says fill made it. scale is the
// largest magnitude among the readings it stands for and n their number,
// which bound the rounding a correct computation may show.
type expected struct {
	Time   time.Time
	Values map[string]any
	filled bool
	scale  float64
	n      int
}

// scale returns the largest magnitude of the bucket's numeric readings.
func (b bucketAgg) scale() float64 {
	var m float64
	for _, r := range b.rs {
		m = math.Max(m, math.Abs(r.num))
	}
	return m
}

// expectPoints computes one series' points from its readings, which are
// in time order.
func expectPoints(rs []reading, starts []time.Time, from, to time.Time, funcs []string, fill string) []expected {
	lo := sort.Search(len(rs), func(i int) bool { return !rs[i].t.Before(from) })
	hi := sort.Search(len(rs), func(i int) bool { return !rs[i].t.Before(to) })
	aggs := make([]*bucketAgg, len(starts))
	for _, r := range rs[lo:hi] {
		i := sort.Search(len(starts), func(i int) bool { return starts[i].After(r.t) }) - 1
		if aggs[i] == nil {
			aggs[i] = &bucketAgg{}
		}
		aggs[i].rs = append(aggs[i].rs, r)
	}
	var out []expected
	for i, s := range starts {
		v := map[string]any{}
		if a := aggs[i]; a != nil {
			for _, f := range funcs {
				v[f] = a.value(f)
			}
			out = append(out, expected{Time: s, Values: v, scale: a.scale(), n: len(a.rs)})
			continue
		}
		if fill == FillNone || fill == "" {
			continue
		}
		prev, next := -1, -1
		for j := i - 1; j >= 0; j-- {
			if aggs[j] != nil {
				prev = j
				break
			}
		}
		for j := i + 1; j < len(starts); j++ {
			if aggs[j] != nil {
				next = j
				break
			}
		}
		for _, f := range funcs {
			v[f] = nil
			switch {
			case f == FuncCount:
				v[f] = int64(0)
			case fill == FillNull || prev < 0:
			case fill == FillLinear && f != FuncFirst && f != FuncLast:
				if next < 0 {
					break
				}
				a, aok := aggs[prev].value(f).(float64)
				b, bok := aggs[next].value(f).(float64)
				if aok && bok {
					frac := float64(s.Sub(starts[prev])) / float64(starts[next].Sub(starts[prev]))
					v[f] = a + (b-a)*frac
				}
			default:
				v[f] = aggs[prev].value(f)
			}
		}
		e := expected{Time: s, Values: v, filled: true}
		for _, j := range []int{prev, next} {
			if j >= 0 {
				e.scale, e.n = math.Max(e.scale, aggs[j].scale()), max(e.n, len(aggs[j].rs))
			}
		}
		out = append(out, e)
	}
	return out
}

// within reports whether got is as close to want as a correct computation
// of f comes: 1e-9 relative, plus the rounding of the readings' largest
// magnitude (scale), so that a true 0 may come back as 1e-12·scale (and a sum
// of n readings as n times that). Squared deviations are held only to
// float64's smallest step, so a stddev is defined only to about
// sqrt(n·2^-1074), which is 0 or subnormal for readings near 1e-160 and
// smaller. A formula that loses digits to cancellation, or fails or flushes
// tiny values to 0, is outside it.
func within(got, want float64, f string, scale float64, n int) bool {
	floor := 1e-12 * scale
	switch f {
	case FuncSum:
		floor *= float64(max(n, 1))
	case FuncStddev:
		floor = max(floor, 2*math.Sqrt(float64(max(n, 1))*math.SmallestNonzeroFloat64))
	}
	return math.Abs(got-want) <= 1e-9*math.Abs(want)+floor
}

// comparePoints reports differences between got and want, exact for count,
// min, max, first and last, and within for sum, avg and stddev and for
// values that fill interpolated. It reports the first few.
func comparePoints(t *testing.T, what string, got []Point, funcs []string, want []expected) {
	t.Helper()
	errs := 0
	report := func(format string, args ...any) {
		t.Helper()
		if errs++; errs <= 5 {
			t.Errorf(what+": "+format, args...)
		}
	}
	if len(got) != len(want) {
		report("%d points, want %d", len(got), len(want))
	}
	for i := 0; i < len(got) && i < len(want); i++ {
		w := want[i]
		if len(got[i].Values) != len(funcs) {
			report("point %d has %d values for %d functions", i, len(got[i].Values), len(funcs))
			continue
		}
		g := expected{Time: got[i].Time, Values: map[string]any{}}
		for j, f := range funcs {
			g.Values[f] = got[i].Values[j].Any()
		}
		if !g.Time.Equal(w.Time) {
			report("point %d at %s, want %s", i, g.Time.UTC().Format(time.RFC3339), w.Time.UTC().Format(time.RFC3339))
			continue
		}
		if len(g.Values) != len(w.Values) {
			report("point %s: values %v, want %v", g.Time.UTC().Format(time.RFC3339), g.Values, w.Values)
		}
		for f, wv := range w.Values {
			gv, ok := g.Values[f]
			if !ok {
				report("point %s: no %s", g.Time.UTC().Format(time.RFC3339), f)
				continue
			}
			equal := gv == wv
			if gf, ok := gv.(float64); ok && !equal {
				if wf, ok := wv.(float64); ok {
					switch f {
					case FuncSum, FuncAvg, FuncStddev:
						equal = within(gf, wf, f, w.scale, w.n)
					case FuncMin, FuncMax:
						equal = w.filled && within(gf, wf, f, w.scale, w.n)
					}
				}
			}
			if !equal {
				report("point %s: %s = %#v, want %#v", g.Time.UTC().Format(time.RFC3339), f, gv, wv)
			}
		}
	}
}
