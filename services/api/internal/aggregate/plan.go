package aggregate

import (
	"fmt"
	"strings"
	"time"

	"github.com/sensorhub/sensorhub/services/api/internal/store"
)

// QueryPlan is how a Request will be answered. (The function that makes it
// is Plan, so the type cannot have that name.)
type QueryPlan struct {
	// Source serves the numeric series: a rollup or SourceRaw. Text series
	// always come from the readings. With no numeric series it is SourceRaw.
	Source string
	// Bucket is the width; AutoBucket says it was chosen from Ladder.
	Bucket     time.Duration
	AutoBucket bool
	// Location aligns the buckets (never nil).
	Location *time.Location
	// From and To are the request's range rounded up to whole microseconds,
	// the precision of timestamptz.
	From, To time.Time
	// Buckets are the bucket starts in Location, ascending: Buckets[0] is at
	// or before From, the rest within (From, To).
	Buckets []time.Time
	// Funcs are the requested functions, normalised and without repeats.
	Funcs []string
	// Fill is the normalised fill mode.
	Fill string
	// Points is len(Series) × len(Buckets), at most MaxPoints.
	Points int
}

// rollups are the rollup relations, coarsest first.
var rollups = []struct {
	source string
	width  time.Duration
}{
	{SourceRollup1d, 24 * time.Hour},
	{SourceRollup1h, time.Hour},
	{SourceRollup1m, time.Minute},
}

var (
	knownFuncs = map[string]bool{FuncCount: true, FuncSum: true, FuncAvg: true, FuncMin: true,
		FuncMax: true, FuncFirst: true, FuncLast: true, FuncStddev: true}
	textFuncs  = map[string]bool{FuncCount: true, FuncFirst: true, FuncLast: true}
	knownFills = map[string]bool{FillNone: true, FillNull: true, FillPrevious: true, FillLinear: true}
)

// Times outside these bounds are refused: a day inside the years 1 to
// 9999, so that buckets in any time zone stay within them, which
// PostgreSQL and Go both handle.
var (
	minTime = time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
)

const outOfRange = "must be within 0001-01-02T00:00:00Z and 9999-12-31T00:00:00Z, a day inside the years 1 to 9999"

// Plan validates req and decides how to answer it: the bucket width (the
// finest of Ladder that keeps len(Series) × buckets within MaxPoints when
// req.Bucket is 0), the bucket starts, and the source of the numeric series:
// the coarsest rollup of width w such that
//
//   - the bucket width is a multiple of w,
//   - From and To are multiples of w from Origin (in UTC),
//   - every UTC offset Location has in [From, To) is a multiple of w, and
//   - every bucket start after From is a multiple of w (this follows from
//     the offsets for real time zones; it guards odd transition times),
//
// so that every rollup row lies within one bucket; otherwise SourceRaw.
// So rollup_1d serves only UTC days (and zones at offset 0 at the time),
// rollup_1h serves Europe/Berlin days and hours, and Asia/Kolkata
// (+05:30) is served by rollup_1m or the readings.
func Plan(req Request) (QueryPlan, error) {
	if len(req.Series) == 0 {
		return QueryPlan{}, invalid("series", "at least one series is required")
	}
	hasNumeric := false
	for _, s := range req.Series {
		switch s.Type {
		case store.TypeNumeric:
			hasNumeric = true
		case store.TypeText:
		default:
			return QueryPlan{}, fmt.Errorf("aggregate: series %s/%s has unknown type %q", s.DeviceID, s.Parameter, s.Type)
		}
	}

	from, to := ceilMicro(req.From), ceilMicro(req.To)
	// A zero From or To is 0001-01-01T00:00:00Z, a time a client may well
	// send, so it is out of range rather than missing.
	switch {
	case from.Before(minTime) || from.After(maxTime):
		return QueryPlan{}, invalid("from", outOfRange)
	case to.Before(minTime) || to.After(maxTime):
		return QueryPlan{}, invalid("to", outOfRange)
	case !from.Before(to):
		return QueryPlan{}, invalid("to", fmt.Sprintf("must be after from (%s)", req.From.Format(time.RFC3339Nano)))
	}
	if req.MaxPoints < 1 {
		return QueryPlan{}, invalid("max_points", "must be at least 1")
	}

	fill := strings.ToLower(strings.TrimSpace(req.Fill))
	if fill == "" {
		fill = FillNone
	}
	if !knownFills[fill] {
		return QueryPlan{}, invalid("fill", fmt.Sprintf("unknown fill %q; want none, null, previous or linear", req.Fill))
	}

	funcs, err := normaliseFuncs(req)
	if err != nil {
		return QueryPlan{}, err
	}

	loc := req.Location
	if loc == nil {
		loc = time.UTC
	}
	p := QueryPlan{Bucket: req.Bucket, Location: loc, From: from.In(loc), To: to.In(loc), Funcs: funcs, Fill: fill}

	n := len(req.Series)
	limit := req.MaxPoints / n
	if limit == 0 {
		return QueryPlan{}, invalid("max_points", fmt.Sprintf("%d series need at least %d points, more than max_points %d", n, n, req.MaxPoints))
	}
	if req.Bucket == 0 {
		p.AutoBucket = true
		for _, w := range Ladder {
			if bs, ok := newGrid(loc, w).starts(from, to, limit); ok {
				p.Bucket, p.Buckets = w, bs
				break
			}
		}
		if p.Buckets == nil {
			return QueryPlan{}, invalid("bucket", fmt.Sprintf("even %s buckets give more than max_points %d for %d series over [%s, %s)",
				FormatBucket(Ladder[len(Ladder)-1]), req.MaxPoints, n, from.Format(time.RFC3339), to.Format(time.RFC3339)))
		}
	} else {
		if err := checkBucket(req.Bucket); err != nil {
			return QueryPlan{}, err
		}
		bs, ok := newGrid(loc, req.Bucket).starts(from, to, limit)
		if !ok {
			return QueryPlan{}, invalid("bucket", fmt.Sprintf("%s buckets over [%s, %s) give more than max_points %d for %d series; choose a wider bucket or a shorter range",
				FormatBucket(req.Bucket), from.Format(time.RFC3339), to.Format(time.RFC3339), req.MaxPoints, n))
		}
		p.Buckets = bs
	}
	p.Points = n * len(p.Buckets)

	p.Source = SourceRaw
	if hasNumeric {
		p.Source = chooseSource(p)
	}
	return p, nil
}

// ParseFuncs reads the agg parameter's values, each a comma-separated list,
// into Request.Funcs: names are checked by Plan, which also knows the series'
// types. No value at all (or only empty ones, as an absent parameter) asks for
// avg; values of blanks and commas alone are a mistake, not a request for
// the default. Errors are *InvalidError for "agg".
func ParseFuncs(values []string) ([]string, error) {
	var funcs []string
	given := false
	for _, a := range values {
		given = given || a != ""
		for _, f := range strings.Split(a, ",") {
			if f = strings.TrimSpace(f); f != "" {
				funcs = append(funcs, f)
			}
		}
	}
	switch {
	case len(funcs) > 0:
		return funcs, nil
	case given:
		return nil, invalid("agg", "names no aggregate; want count, sum, avg, min, max, first, last or stddev")
	}
	return []string{FuncAvg}, nil
}

func normaliseFuncs(req Request) ([]string, error) {
	if len(req.Funcs) == 0 {
		return nil, invalid("agg", "at least one aggregate function is required")
	}
	seen := map[string]bool{}
	var funcs []string
	for _, f := range req.Funcs {
		g := strings.ToLower(strings.TrimSpace(f))
		if !knownFuncs[g] {
			return nil, invalid("agg", fmt.Sprintf("unknown aggregate %q; want count, sum, avg, min, max, first, last or stddev", f))
		}
		if !seen[g] {
			seen[g] = true
			funcs = append(funcs, g)
		}
	}
	for _, s := range req.Series {
		if s.Type != store.TypeText {
			continue
		}
		for _, f := range funcs {
			if !textFuncs[f] {
				return nil, invalid("agg", fmt.Sprintf("%s is not defined for text series %s/%s", f, s.DeviceID, s.Parameter))
			}
		}
	}
	return funcs, nil
}

// chooseSource applies the rules in Plan's comment.
func chooseSource(p QueryPlan) string {
	for _, r := range rollups {
		if p.Bucket%r.width != 0 || !onGrid(p.From, r.width) || !onGrid(p.To, r.width) {
			continue
		}
		if !offsetsDivisible(p.Location, p.From, p.To, r.width) {
			continue
		}
		aligned := true
		for _, b := range p.Buckets[1:] {
			aligned = aligned && onGrid(b, r.width)
		}
		if aligned {
			return r.source
		}
	}
	return SourceRaw
}

// onGrid reports whether t is a whole multiple of w from Origin; w divides a day.
func onGrid(t time.Time, w time.Duration) bool {
	return t.Nanosecond() == 0 && (t.Unix()-originUnix)%int64(w/time.Second) == 0
}

// offsetsDivisible reports whether every UTC offset loc has in [from, to) is
// a multiple of w, walking the zone periods.
func offsetsDivisible(loc *time.Location, from, to time.Time, w time.Duration) bool {
	for t := from; t.Before(to); {
		lt := t.In(loc)
		_, off := lt.Zone()
		if int64(off)%int64(w/time.Second) != 0 {
			return false
		}
		_, end := lt.ZoneBounds()
		if end.IsZero() || !end.After(t) {
			return true
		}
		t = end
	}
	return true
}

// ceilMicro rounds t up to a whole microsecond, dropping any monotonic
// reading: timestamptz keeps microseconds, and pgx truncates.
func ceilMicro(t time.Time) time.Time {
	r := t.Truncate(time.Microsecond)
	if r.Before(t) {
		r = r.Add(time.Microsecond)
	}
	return r
}
