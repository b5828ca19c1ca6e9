// Package aggregate answers time-bucketed aggregate queries over readings:
// it validates a Request, plans which relation serves it (a rollup or the raw
// readings), has the store read all series with one SQL query
// (store.ReadAggregates, which owns that SQL) and fills empty buckets.
//
// # Buckets
//
// Ranges are half-open, [From, To). Buckets are aligned on the wall clock of
// Request.Location (UTC when nil): a reading's bucket label is
// date_bin(width, local wall time, 2000-01-03 00:00), and a bucket is a
// maximal stretch of time whose readings share one label; its Time is the
// first instant of that stretch. So in Europe/Berlin a 1d bucket is 23 or 25
// hours long across a DST change, the 1h bucket labelled 02:00 on the day
// clocks fall back is two hours long (02:00 CEST to 03:00 CET), and the four
// 15m buckets of that repeated hour occur twice, once per offset. In UTC this
// is plain date_bin with origin 2000-01-03T00:00:00Z.
//
// The bucket starts are computed once, in Go, from Go's time zone database;
// the query assigns rows to them with width_bucket, so PostgreSQL's own
// time zone data and its resolution of ambiguous local times never matter,
// and the buckets the database fills are exactly those that fill generates.
// PostgreSQL's date_bin(w, time AT TIME ZONE tz, origin) AT TIME ZONE tz
// gives the same buckets except around a repeated (fall-back) hour, where it
// maps local times to the later of their two instants: a bucket would then
// start after some of its readings.
//
// # Sources
//
// Numeric series are served by the coarsest rollup (rollup_1d, rollup_1h,
// rollup_1m) whose width w divides the bucket width, to which From and To are
// aligned, and which divides every UTC offset Location has in [From, To);
// otherwise by the raw readings. Text series always come from the readings.
// See Plan.
package aggregate

import (
	"errors"
	"time"
)

// Series is one series to aggregate, as the catalog has it.
type Series struct {
	ID        int32
	DeviceID  string
	Parameter string
	Type      string // store.TypeNumeric or store.TypeText
}

// Request is one aggregate query.
type Request struct {
	Series []Series
	// From and To bound the half-open range [From, To).
	From, To time.Time
	// Bucket is the bucket width, a positive multiple of one minute; 0 picks
	// the finest width of Ladder that keeps the points within MaxPoints.
	Bucket time.Duration
	// MaxPoints caps len(Series) × the number of buckets in [From, To).
	MaxPoints int
	// Funcs are the aggregates to compute (FuncCount ... FuncStddev).
	Funcs []string
	// Fill says what empty buckets become (FillNone ... FillLinear; "" is FillNone).
	Fill string
	// Location is the time zone whose wall clock buckets align to; nil is UTC.
	Location *time.Location
}

// Aggregate functions. Text series allow count, first and last only.
const (
	FuncCount  = "count"
	FuncSum    = "sum"
	FuncAvg    = "avg"
	FuncMin    = "min"
	FuncMax    = "max"
	FuncFirst  = "first"
	FuncLast   = "last"
	FuncStddev = "stddev" // sample standard deviation; nil when count < 2
)

// Fill modes.
const (
	// FillNone returns only the buckets that have data.
	FillNone = "none"
	// FillNull returns every bucket; empty ones have count 0 and nil values.
	FillNull = "null"
	// FillPrevious carries the previous data bucket's values into empty
	// buckets (count stays 0; nil before the first data bucket).
	FillPrevious = "previous"
	// FillLinear interpolates sum, avg, min, max and stddev linearly in time
	// between the neighbouring data buckets (nil at the edges); first, last
	// and text values are carried as with FillPrevious.
	FillLinear = "linear"
)

// Sources: the relation that served the numeric series.
const (
	SourceRollup1m = "rollup_1m"
	SourceRollup1h = "rollup_1h"
	SourceRollup1d = "rollup_1d"
	SourceRaw      = "raw"
)

// Point is one bucket of one series.
type Point struct {
	// Time is the bucket's first instant, in the request's Location.
	Time time.Time
	// Values holds the value of each of Result.Funcs, in that order: Int
	// for count, Float, Text (first and last of text series) or Null.
	Values []Value
}

// SeriesResult is one series' points, in the order of Request.Series.
type SeriesResult struct {
	DeviceID, Parameter, Type string
	Source                    string // SourceRaw for text series
	Points                    []Point
}

// Result is the answer to a Request.
type Result struct {
	// Source is what served the numeric series (SourceRaw when there are none).
	Source string
	// Bucket is the bucket width used, chosen when the request asked for auto.
	Bucket time.Duration
	// Funcs are the functions of every point's Values: the requested ones,
	// normalised (lower case, trimmed), first occurrence kept.
	Funcs  []string
	Series []SeriesResult

	arena *arena // where the points live; see Release
}

// Release hands the memory of r's points back for the next query; r must
// not be used afterwards. Callers that serve many requests call it once the
// response is encoded: a week of hourly points is some 15 KiB per request.
func (r *Result) Release() {
	if r.arena != nil {
		r.arena.release()
		r.arena = nil
	}
	r.Series = nil
}

// ErrInvalid is wrapped by every *InvalidError.
var ErrInvalid = errors.New("invalid aggregate request")

// InvalidError says which request parameter is wrong and why; Param is one of
// series, from, to, bucket, agg, fill, tz and max_points. Functions of this
// package return it as *InvalidError.
type InvalidError struct {
	Param, Reason string
}

func (e *InvalidError) Error() string { return ErrInvalid.Error() + ": " + e.Param + ": " + e.Reason }

// Unwrap returns ErrInvalid.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

func invalid(param, reason string) error { return &InvalidError{Param: param, Reason: reason} }
