package httpapi

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sensorhub/sensorhub/db/scope"
	"github.com/sensorhub/sensorhub/services/api/internal/aggregate"
	"github.com/sensorhub/sensorhub/services/api/internal/store"
)

// AggregatesInput is a bucketed aggregate query over series of one device.
type AggregatesInput struct {
	DeviceID  string    `query:"device_id" required:"true" minLength:"1" maxLength:"256" example:"device.foo" doc:"Device id."`
	Parameter []string  `query:"parameter,explode" maxItems:"1000" maxLength:"256" doc:"Parameter names; repeat for several. Give exactly one of parameter, prefix and glob."`
	Prefix    string    `query:"prefix" maxLength:"256" example:"parameter." doc:"All parameters of the device that start with this prefix."`
	Glob      string    `query:"glob" maxLength:"256" example:"tenantA.*.datasourceC.**" doc:"All parameters of the device matching this glob (* within one segment, ** across segments)."`
	From      time.Time `query:"from" required:"true" example:"2024-03-07T00:00:00Z" doc:"Start of the range, inclusive (RFC 3339)."`
	To        time.Time `query:"to" required:"true" example:"2024-03-08T00:00:00Z" doc:"End of the range, exclusive (RFC 3339)."`
	Bucket    string    `query:"bucket" default:"auto" maxLength:"32" example:"15m" doc:"Bucket width: whole minutes as 15m, 1h, 1h30m, 1d, 7d; or auto: the finest of 1m, 5m, 15m, 30m, 1h, 3h, 6h, 12h, 1d and 7d for which (number of series) × (buckets in [from, to)) stays within max_points (a 422 when not even 7d does). Buckets start where tz's wall clock is a whole number of widths after Monday 2000-01-03 00:00, so widths that divide a day (15m, 90m, 1h, 1d) restart at every local midnight, 7d buckets start on Mondays at midnight, and other widths (7m, 25h) run on across midnights; a bucket that from or to cuts counts only the readings inside [from, to) and keeps its own start as time. Across a DST change a 1d bucket lasts 23 or 25 hours."`
	MaxPoints int       `query:"max_points" default:"1000" minimum:"1" doc:"Most points over all series (at most the server's limit)."`
	Agg       []string  `query:"agg,explode" maxItems:"16" example:"avg" doc:"Aggregates: count, sum, avg, min, max, first, last, stddev; repeat or comma-separate. Default avg. Text series allow count, first and last."`
	Fill      string    `query:"fill" enum:"none,null,previous,linear" default:"none" doc:"Buckets without readings: none leaves them out; the others list every bucket, with count 0 and: null, every other aggregate null; previous, each aggregate of the last non-empty bucket before it (null before the first); linear, sum, avg, min, max and stddev interpolated in time between the non-empty buckets before and after it (null before the first, after the last, and where either neighbour's value is null), first and last carried from the bucket before as with previous. Text series fill as with previous for linear."`
	TZ        string    `query:"tz" default:"UTC" maxLength:"64" example:"Europe/Berlin" doc:"IANA time zone whose wall clock buckets align to; times in the response are rendered in it."`
}

// AggregatePoint is one bucket with the requested aggregates only. It
// describes the body in the OpenAPI document; writeAggregates writes it:
// {"time": ..., "<func>": value, ...} in the requested order.
type AggregatePoint struct{}

// Schema implements huma.SchemaProvider.
func (AggregatePoint) Schema(huma.Registry) *huma.Schema {
	number := func(doc string) *huma.Schema {
		return &huma.Schema{Type: huma.TypeNumber, Nullable: true, Description: doc}
	}
	firstLast := func(doc string) *huma.Schema {
		return &huma.Schema{Description: doc, OneOf: []*huma.Schema{{Type: huma.TypeNumber, Nullable: true}, {Type: huma.TypeString}}}
	}
	return &huma.Schema{
		Type:        huma.TypeObject,
		Description: "One bucket. Only the requested aggregates are present; null where a bucket has no value (empty bucket, stddev of fewer than two readings).",
		Properties: map[string]*huma.Schema{
			"time":   {Type: huma.TypeString, Format: "date-time", Description: "First instant of the bucket, in the request's time zone."},
			"count":  {Type: huma.TypeInteger, Format: "int64", Description: "Number of readings."},
			"sum":    number("Sum of the values."),
			"avg":    number("Mean of the values."),
			"min":    number("Smallest value."),
			"max":    number("Largest value."),
			"stddev": number("Sample standard deviation."),
			"first":  firstLast("Value of the earliest reading (a string for text series)."),
			"last":   firstLast("Value of the latest reading (a string for text series)."),
		},
		Required:             []string{"time"},
		AdditionalProperties: false,
	}
}

// AggregateSeries is one series' points.
type AggregateSeries struct {
	DeviceID  string           `json:"device_id" example:"device.foo" doc:"Device id."`
	Parameter string           `json:"parameter" example:"parameter.foo" doc:"Parameter name."`
	Type      string           `json:"type" enum:"numeric,text" doc:"Value type of the series."`
	Source    string           `json:"source" enum:"rollup_1m,rollup_1h,rollup_1d,raw" doc:"What served this series: a rollup, or the raw readings (text series, windows no rollup fits, and windows whose rollups are still being materialized after a load)."`
	Points    []AggregatePoint `json:"points" doc:"Buckets in time order."`
}

// AggregatesBody is the body of GET /v1/aggregates.
type AggregatesBody struct {
	Source        string            `json:"source" enum:"rollup_1m,rollup_1h,rollup_1d,raw" doc:"What served the numeric series: a rollup, or the raw readings (windows no rollup fits, and windows whose rollups are still being materialized after a load)."`
	Bucket        string            `json:"bucket" example:"1h" doc:"Bucket width used (chosen by the server for auto)."`
	BucketSeconds int64             `json:"bucket_seconds" example:"3600" doc:"Bucket width in seconds."`
	From          Timestamp         `json:"from" doc:"Start of the range, in the request's time zone."`
	To            Timestamp         `json:"to" doc:"End of the range (exclusive), in the request's time zone."`
	TZ            string            `json:"tz" example:"UTC" doc:"Time zone of the buckets."`
	Series        []AggregateSeries `json:"series" doc:"One entry per matched series, by parameter."`
}

// AggregatesOutput is the response of GET /v1/aggregates; its body, an
// AggregatesBody, is written by hand (see writeAggregates).
type AggregatesOutput struct {
	Body func(huma.Context)
}

func (h *handlers) registerAggregates(api huma.API) {
	registry := api.OpenAPI().Components.Schemas
	huma.Register(api, authenticated(huma.Operation{
		OperationID: "aggregate-readings",
		Method:      http.MethodGet,
		Path:        "/v1/aggregates",
		Summary:     "Bucketed aggregates of series",
		Description: "Aggregates (count, sum, avg, min, max, first, last, stddev) of one device's series in time buckets aligned " +
			"to a time zone's wall clock, served from the coarsest fitting rollup or the raw readings. A window within a day of " +
			"readings whose rollups a load has not yet materialized is served from the raw readings (`source: raw`), so every " +
			"answer is exact the moment a load commits.",
		Tags:   []string{"readings"},
		Errors: []int{http.StatusBadRequest, http.StatusNotFound, http.StatusUnprocessableEntity, http.StatusServiceUnavailable},
		Responses: map[string]*huma.Response{
			"200": {Description: "OK", Content: map[string]*huma.MediaType{
				mediaJSON: {Schema: registry.Schema(reflect.TypeFor[AggregatesBody](), true, "AggregatesBody")},
			}},
		},
	}), h.aggregates)
}

func (h *handlers) aggregates(ctx context.Context, in *AggregatesInput) (*AggregatesOutput, error) {
	selectors := 0
	for _, set := range []bool{len(in.Parameter) > 0, in.Prefix != "", in.Glob != ""} {
		if set {
			selectors++
		}
	}
	switch {
	case selectors == 0:
		return nil, invalidParam("parameter", nil, "give the series: parameter (repeatable), prefix or glob")
	case selectors > 1:
		return nil, invalidParam("prefix", in.Prefix, "give only one of parameter, prefix and glob")
	case in.MaxPoints > h.Limits.MaxPoints:
		return nil, invalidParam("max_points", in.MaxPoints, fmt.Sprintf("must be at most %d", h.Limits.MaxPoints))
	}
	loc, err := aggregate.ParseLocation(in.TZ)
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	bucket, err := aggregate.ParseBucket(in.Bucket)
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	funcs, err := aggregate.ParseFuncs(in.Agg)
	if err != nil {
		return nil, h.problem(ctx, err)
	}

	found, err := h.aggregateSeries(ctx, in)
	if err != nil {
		return nil, err
	}
	if len(found) > in.MaxPoints {
		return nil, invalidParam("max_points", in.MaxPoints, fmt.Sprintf("%d or more series match, more than max_points", len(found)))
	}
	req := aggregate.Request{
		From: in.From, To: in.To, Bucket: bucket, MaxPoints: in.MaxPoints,
		Funcs: funcs, Fill: in.Fill, Location: loc,
	}
	for _, s := range found {
		req.Series = append(req.Series, aggregate.Series{ID: s.ID, DeviceID: s.DeviceID, Parameter: s.Parameter, Type: s.Type})
	}
	var res aggregate.Result
	err = h.Store.Run(ctx, func(ctx context.Context, q store.Querier) error {
		var err error
		res, err = aggregate.Query(ctx, q, req)
		return err
	})
	if err != nil {
		return nil, h.problem(ctx, err)
	}

	return &AggregatesOutput{Body: func(hctx huma.Context) {
		defer res.Release()
		buf := getBuffer()
		defer putBuffer(buf)
		*buf = appendAggregates((*buf)[:0], &res, in.From, in.To, loc)
		writeJSON(hctx, *buf)
	}}, nil
}

// appendAggregates appends res as an AggregatesBody, ending in a newline as
// encoding/json's Encoder does.
func appendAggregates(b []byte, res *aggregate.Result, from, to time.Time, loc *time.Location) []byte {
	b = append(b, `{"source":`...)
	b = appendString(b, res.Source)
	b = append(b, `,"bucket":`...)
	b = appendString(b, aggregate.FormatBucket(res.Bucket))
	b = append(b, `,"bucket_seconds":`...)
	b = strconv.AppendInt(b, int64(res.Bucket/time.Second), 10)
	b = append(b, `,"from":`...)
	b = appendTimestamp(b, zonedTime(from.In(loc)))
	b = append(b, `,"to":`...)
	b = appendTimestamp(b, zonedTime(to.In(loc)))
	b = append(b, `,"tz":`...)
	b = appendString(b, loc.String())
	b = append(b, `,"series":[`...)
	// Each function's key, `,"avg":`, once per response.
	keys := make([][]byte, len(res.Funcs))
	for j, f := range res.Funcs {
		keys[j] = append(appendString([]byte{','}, f), ':')
	}
	for i := range res.Series {
		s := &res.Series[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"device_id":`...)
		b = appendString(b, s.DeviceID)
		b = append(b, `,"parameter":`...)
		b = appendString(b, s.Parameter)
		b = append(b, `,"type":`...)
		b = appendString(b, s.Type)
		b = append(b, `,"source":`...)
		b = appendString(b, s.Source)
		b = append(b, `,"points":[`...)
		for k := range s.Points {
			p := &s.Points[k]
			if k > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"time":`...)
			b = appendTimestamp(b, zonedTime(p.Time.In(loc)))
			for j := range p.Values {
				b = append(b, keys[j]...)
				b = appendAggregateValue(b, p.Values[j])
			}
			b = append(b, '}')
		}
		b = append(b, "]}"...)
	}
	return append(b, "]}\n"...)
}

// appendAggregateValue appends v; NaN and infinities, which JSON lacks, are null.
func appendAggregateValue(b []byte, v aggregate.Value) []byte {
	switch v.Kind {
	case aggregate.Int:
		return strconv.AppendInt(b, v.Int, 10)
	case aggregate.Float:
		if math.IsNaN(v.Float) || math.IsInf(v.Float, 0) {
			return append(b, "null"...)
		}
		return appendFloat(b, v.Float)
	case aggregate.Text:
		return appendString(b, v.Text)
	}
	return append(b, "null"...)
}

// aggregateSeries resolves the series in.Parameter, in.Prefix or in.Glob
// name, answering 404 as matchedAll says.
func (h *handlers) aggregateSeries(ctx context.Context, in *AggregatesInput) ([]store.Series, error) {
	sc := scope.From(ctx)
	var (
		key     string
		version int64
		cache   bool
	)
	if len(in.Parameter) > 0 {
		key = seriesCacheKey(sc, in.DeviceID, in.Parameter...)
		var found []store.Series
		if found, version, cache = h.series.get(ctx, key); found != nil {
			return found, nil
		}
	}
	found, err := h.Store.ListSeries(ctx, sc, store.SeriesFilter{DeviceID: in.DeviceID, Parameters: in.Parameter, Prefix: in.Prefix, Glob: in.Glob}, h.Limits.MaxPoints+1)
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	if err := matchedAll(in, found); err != nil {
		return nil, err
	}
	if cache {
		h.series.put(key, version, found)
	}
	return found, nil
}

// matchedAll answers 404 when nothing matched, or when parameters were
// named and some of them are not series of the device (or not in scope).
func matchedAll(in *AggregatesInput, found []store.Series) error {
	if len(in.Parameter) > 0 {
		have := make(map[string]bool, len(found))
		for _, s := range found {
			have[s.Parameter] = true
		}
		var missing []string
		for _, p := range in.Parameter {
			if !have[p] {
				missing = append(missing, p)
			}
		}
		if len(missing) > 0 {
			// Both are named, as seriesNotFound does: either may be the wrong one.
			return huma.Error404NotFound(fmt.Sprintf("device %s has no series %s", in.DeviceID, strings.Join(missing, ", ")),
				&huma.ErrorDetail{Location: "query.device_id", Value: in.DeviceID, Message: "no such device, or it has none of these parameters"},
				&huma.ErrorDetail{Location: "query.parameter", Value: missing, Message: "no such series"})
		}
	}
	if len(found) > 0 {
		return nil
	}
	loc, value := "query.device_id", in.DeviceID
	switch {
	case in.Prefix != "":
		loc, value = "query.prefix", in.Prefix
	case in.Glob != "":
		loc, value = "query.glob", in.Glob
	}
	return huma.Error404NotFound("no series of device "+in.DeviceID+" match",
		&huma.ErrorDetail{Location: loc, Value: value, Message: "matches no series"})
}

// zonedTime renders t at its own zone's offset, or in UTC when that offset
// is not a whole number of minutes (historic local mean times).
func zonedTime(t time.Time) Timestamp {
	_, off := t.Zone()
	if off%60 != 0 {
		return Timestamp{Time: t}
	}
	return Timestamp{Time: t, OffsetMin: int16(off / 60)}
}
