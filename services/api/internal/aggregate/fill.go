package aggregate

// cell is one non-empty bucket of one series as the query returned it.
type cell struct {
	bucket                             int // index into QueryPlan.Buckets
	count                              int64
	sum, min, max, stddev, first, last *float64
	firstText, lastText                *string
}

// value returns f's value: int64 for count, float64 or string, or nil.
func (c *cell) value(f string) any {
	switch f {
	case FuncCount:
		return c.count
	case FuncSum:
		return num(c.sum)
	case FuncAvg:
		if c.sum == nil || c.count == 0 {
			return nil
		}
		return *c.sum / float64(c.count)
	case FuncMin:
		return num(c.min)
	case FuncMax:
		return num(c.max)
	case FuncStddev:
		return num(c.stddev)
	case FuncFirst:
		if c.firstText != nil {
			return *c.firstText
		}
		return num(c.first)
	case FuncLast:
		if c.lastText != nil {
			return *c.lastText
		}
		return num(c.last)
	}
	return nil
}

func num(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

func (c *cell) values(funcs []string) map[string]any {
	m := make(map[string]any, len(funcs))
	for _, f := range funcs {
		m[f] = c.value(f)
	}
	return m
}

// interpolated are the functions FillLinear interpolates; the others are
// carried from the previous bucket.
var interpolated = map[string]bool{FuncSum: true, FuncAvg: true, FuncMin: true, FuncMax: true, FuncStddev: true}

// fillPoints turns one series' non-empty buckets (in bucket order) into
// points as p.Fill asks.
func fillPoints(p QueryPlan, cells []cell) []Point {
	if p.Fill == FillNone {
		out := make([]Point, 0, len(cells))
		for i := range cells {
			out = append(out, Point{Time: p.Buckets[cells[i].bucket], Values: cells[i].values(p.Funcs)})
		}
		return out
	}
	out := make([]Point, 0, len(p.Buckets))
	var prev *cell // the last non-empty bucket before b
	next := 0      // cells[next] is the first non-empty bucket at or after b
	for b, start := range p.Buckets {
		if next < len(cells) && cells[next].bucket == b {
			prev = &cells[next]
			next++
			out = append(out, Point{Time: start, Values: prev.values(p.Funcs)})
			continue
		}
		vals := make(map[string]any, len(p.Funcs))
		for _, f := range p.Funcs {
			var v any
			switch {
			case f == FuncCount:
				v = int64(0)
			case p.Fill == FillNull || prev == nil:
			case p.Fill == FillLinear && interpolated[f]:
				if next < len(cells) {
					n := &cells[next]
					v = lerp(prev.value(f), n.value(f), p.Buckets[prev.bucket].Sub(start).Seconds(), p.Buckets[n.bucket].Sub(start).Seconds())
				}
			default: // previous, and linear's first and last
				v = prev.value(f)
			}
			vals[f] = v
		}
		out = append(out, Point{Time: start, Values: vals})
	}
	return out
}

// lerp interpolates between a, dx0 before the point (dx0 < 0), and b, dx1
// after it; nil unless both are numbers.
func lerp(a, b any, dx0, dx1 float64) any {
	fa, ok := a.(float64)
	if !ok {
		return nil
	}
	fb, ok := b.(float64)
	if !ok {
		return nil
	}
	return fa + (fb-fa)*(-dx0)/(dx1-dx0)
}
