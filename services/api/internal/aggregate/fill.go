package aggregate

import (
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

// fillPoints turns one series' non-empty buckets (in bucket order) into
// points as p.Fill asks. The values of all points share one allocation.
func fillPoints(p QueryPlan, cells []cell) []Point {
	nf := len(p.Funcs)
	if p.Fill == FillNone {
		out := make([]Point, len(cells))
		vals := make([]Value, len(cells)*nf)
		for i := range cells {
			v := vals[i*nf : (i+1)*nf : (i+1)*nf]
			for j, f := range p.Funcs {
				v[j] = value(&cells[i], f)
			}
			out[i] = Point{Time: p.Buckets[cells[i].Bucket], Values: v}
		}
		return out
	}
	out := make([]Point, len(p.Buckets))
	vals := make([]Value, len(p.Buckets)*nf)
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
