package aggregate

import (
	"sync"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sensorhub/sensorhub/services/api/internal/store"
)

// cell is one non-empty bucket of one series as the query returned it.
type cell = store.AggregateCell

// Kind is what a Value holds.
type Kind uint8

// Value kinds.
const (
	Null  Kind = iota // no value: an empty bucket, stddev of fewer than two readings
	Int               // Value.Int: count
	Float             // Value.Float
	Text              // Value.Text: first and last of text series
)

// Value is one aggregate of one bucket.
type Value struct {
	Kind  Kind
	Int   int64
	Float float64
	Text  string
}

// Any returns v as int64, float64, string or nil.
func (v Value) Any() any {
	switch v.Kind {
	case Int:
		return v.Int
	case Float:
		return v.Float
	case Text:
		return v.Text
	}
	return nil
}

func num(f pgtype.Float8) Value {
	if !f.Valid {
		return Value{}
	}
	return Value{Kind: Float, Float: f.Float64}
}

func text(t pgtype.Text) Value { return Value{Kind: Text, Text: t.String} }

// value returns f's value.
func value(c *cell, f string) Value {
	switch f {
	case FuncCount:
		return Value{Kind: Int, Int: c.Count}
	case FuncSum:
		return num(c.Sum)
	case FuncAvg:
		if !c.Sum.Valid || c.Count == 0 {
			return Value{}
		}
		return Value{Kind: Float, Float: c.Sum.Float64 / float64(c.Count)}
	case FuncMin:
		return num(c.Min)
	case FuncMax:
		return num(c.Max)
	case FuncStddev:
		return num(c.Stddev)
	case FuncFirst:
		if c.FirstText.Valid {
			return text(c.FirstText)
		}
		return num(c.First)
	case FuncLast:
		if c.LastText.Valid {
			return text(c.LastText)
		}
		return num(c.Last)
	}
	return Value{}
}

// interpolated reports whether FillLinear interpolates f; the others are
// carried from the previous bucket.
func interpolated(f string) bool {
	switch f {
	case FuncSum, FuncAvg, FuncMin, FuncMax, FuncStddev:
		return true
	}
	return false
}

// arena holds the points and values of every series of a Result, in one
// pooled allocation each.
type arena struct {
	points []Point
	values []Value
}

// Arenas larger than maxPooledPoints points are left to the garbage
// collector.
const maxPooledPoints = 16 << 10

var arenas = sync.Pool{New: func() any { return new(arena) }}

// newArena returns an arena with room for n points of nf values each.
func newArena(n, nf int) *arena {
	a := arenas.Get().(*arena)
	if cap(a.points) < n {
		a.points = make([]Point, 0, n)
	}
	if cap(a.values) < n*nf {
		a.values = make([]Value, 0, n*nf)
	}
	return a
}

// take carves n points and nv values from a, or allocates them when a is
// full (it never is when sized by newArena).
func (a *arena) take(n, nv int) ([]Point, []Value) {
	if a == nil || len(a.points)+n > cap(a.points) || len(a.values)+nv > cap(a.values) {
		return make([]Point, n), make([]Value, nv)
	}
	p, v := len(a.points), len(a.values)
	a.points, a.values = a.points[:p+n], a.values[:v+nv]
	return a.points[p : p+n : p+n], a.values[v : v+nv : v+nv]
}

func (a *arena) release() {
	if cap(a.points) > maxPooledPoints || cap(a.values) > maxPooledPoints*4 {
		return
	}
	clear(a.points)
	clear(a.values) // drop the text values' strings
	a.points, a.values = a.points[:0], a.values[:0]
	arenas.Put(a)
}

// pointCount is how many points fillPoints makes of cells.
func pointCount(p QueryPlan, cells []cell) int {
	if p.Fill == FillNone {
		return len(cells)
	}
	return len(p.Buckets)
}

// fillPoints turns one series' non-empty buckets (in bucket order) into
// points as p.Fill asks, in memory taken from a (nil: allocated).
func fillPoints(p QueryPlan, cells []cell, a *arena) []Point {
	nf := len(p.Funcs)
	n := pointCount(p, cells)
	out, vals := a.take(n, n*nf)
	if p.Fill == FillNone {
		for i := range cells {
			v := vals[i*nf : (i+1)*nf : (i+1)*nf]
			for j, f := range p.Funcs {
				v[j] = value(&cells[i], f)
			}
			out[i] = Point{Time: p.Buckets[cells[i].Bucket], Values: v}
		}
		return out
	}
	var prev *cell // the last non-empty bucket before b
	next := 0      // cells[next] is the first non-empty bucket at or after b
	for b, start := range p.Buckets {
		v := vals[b*nf : (b+1)*nf : (b+1)*nf]
		out[b] = Point{Time: start, Values: v}
		if next < len(cells) && cells[next].Bucket == b {
			prev = &cells[next]
			next++
			for j, f := range p.Funcs {
				v[j] = value(prev, f)
			}
			continue
		}
		for j, f := range p.Funcs {
			switch {
			case f == FuncCount:
				v[j] = Value{Kind: Int}
			case p.Fill == FillNull || prev == nil:
			case p.Fill == FillLinear && interpolated(f):
				if next < len(cells) {
					n := &cells[next]
					v[j] = lerp(value(prev, f), value(n, f), p.Buckets[prev.Bucket].Sub(start).Seconds(), p.Buckets[n.Bucket].Sub(start).Seconds())
				}
			default: // previous, and linear's first and last
				v[j] = value(prev, f)
			}
		}
	}
	return out
}

// lerp interpolates between a, dx0 before the point (dx0 < 0), and b, dx1
// after it; null unless both are numbers.
func lerp(a, b Value, dx0, dx1 float64) Value {
	if a.Kind != Float || b.Kind != Float {
		return Value{}
	}
	return Value{Kind: Float, Float: a.Float + (b.Float-a.Float)*(-dx0)/(dx1-dx0)}
}
