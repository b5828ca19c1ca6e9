package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/negotiation"

	"github.com/sensorhub/sensorhub/db/scope"
	"github.com/sensorhub/sensorhub/services/api/internal/cursor"
	"github.com/sensorhub/sensorhub/services/api/internal/store"
)

// Media types of GET /v1/readings.
const (
	mediaJSON   = "application/json"
	mediaCSV    = "text/csv"
	mediaNDJSON = "application/x-ndjson"
)

// MaxPageLimit is the most readings one page of GET /v1/readings holds.
const MaxPageLimit = 10_000

// exportFormat returns the export media type an Accept header asks for, or
// "" for JSON (also when it names nothing the API serves).
func exportFormat(accept string) string {
	if accept == "" {
		return ""
	}
	switch negotiation.SelectQValue(accept, []string{mediaJSON, mediaCSV, mediaNDJSON}) {
	case mediaCSV:
		return mediaCSV
	case mediaNDJSON:
		return mediaNDJSON
	}
	return ""
}

// isExport reports whether r is a streamed export (exempt from the request timeout).
func isExport(r *http.Request) bool {
	return r.URL.Path == "/v1/readings" && exportFormat(r.Header.Get("Accept")) != ""
}

// ReadingsInput selects readings of one series.
type ReadingsInput struct {
	DeviceID   string    `query:"device_id" required:"true" minLength:"1" maxLength:"256" example:"device.foo" doc:"Device id of the series."`
	Parameter  string    `query:"parameter" required:"true" minLength:"1" maxLength:"256" example:"parameter.foo" doc:"Parameter of the series."`
	From       time.Time `query:"from" example:"2024-03-07T02:34:07+02:00" doc:"Start of the range, inclusive (RFC 3339); open when absent."`
	To         time.Time `query:"to" example:"2024-03-07T12:22:08+02:00" doc:"End of the range, exclusive (RFC 3339); open when absent."`
	Order      string    `query:"order" enum:"asc,desc" default:"asc" doc:"Time order."`
	Limit      int       `query:"limit" minimum:"1" maximum:"10000" default:"1000" doc:"Most readings per page, and at most the server's max points (JSON only; exports are not paginated)."`
	Cursor     string    `query:"cursor" maxLength:"1024" doc:"next_cursor of the previous page. It must come with the same series, order, from and to; any other use is a 400."`
	Timestamps string    `query:"timestamps" enum:"original,utc" default:"original" doc:"Render times at the UTC offset each reading was recorded with (original) or in UTC."`
	// Accept is read for content negotiation; OpenAPI describes it through the
	// response's media types rather than as a parameter.
	Accept string `header:"Accept" hidden:"true"`
	// fromSet and toSet tell a given from or to from an absent one (see Resolve).
	fromSet, toSet bool
}

// Resolve implements huma.Resolver: it notes which of from and to were
// given, as 0001-01-01T00:00:00Z, time.Time's zero value, is a time like
// any other and must bound the range, and refuses times outside the years
// 1 to 9999 (an offset can push an RFC 3339 time past either end).
func (in *ReadingsInput) Resolve(ctx huma.Context) []error {
	in.fromSet, in.toSet = ctx.Query("from") != "", ctx.Query("to") != ""
	var errs []error
	for _, p := range []struct {
		name string
		set  bool
		t    time.Time
	}{{"from", in.fromSet, in.From}, {"to", in.toSet, in.To}} {
		if p.set && !inYears(p.t) {
			errs = append(errs, &huma.ErrorDetail{Location: "query." + p.name, Value: ctx.Query(p.name), Message: outsideYears})
		}
	}
	return errs
}

// The API's times are within the years 1 to 9999, UTC, as RFC 3339's are.
var (
	minTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	endTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
)

const outsideYears = "must be within the years 1 to 9999 (UTC)"

func inYears(t time.Time) bool { return !t.Before(minTime) && t.Before(endTime) }

// ReadingItem is one reading.
type ReadingItem struct {
	Time  Timestamp `json:"time" doc:"Time of the reading."`
	Value Value     `json:"value"`
}

// ReadingsPage is a JSON page of GET /v1/readings.
type ReadingsPage struct {
	DeviceID   string        `json:"device_id" example:"device.foo" doc:"Device id."`
	Parameter  string        `json:"parameter" example:"parameter.foo" doc:"Parameter name."`
	Type       string        `json:"type" enum:"numeric,text" doc:"Value type of the series."`
	Order      string        `json:"order" enum:"asc,desc" doc:"Time order of readings."`
	From       *Timestamp    `json:"from,omitempty" doc:"Start of the range (inclusive), UTC; absent when open."`
	To         *Timestamp    `json:"to,omitempty" doc:"End of the range (exclusive), UTC; absent when open."`
	Readings   []ReadingItem `json:"readings" doc:"Readings of this page."`
	NextCursor string        `json:"next_cursor,omitempty" doc:"Opaque cursor of the next page; absent on the last page. The Link header carries the same as a URL."`
}

// ReadingsOutput is the response of GET /v1/readings; its body is written
// by hand, so that exports can stream and pages cost no reflection (see
// appendReadingsPage).
type ReadingsOutput struct {
	Link string `header:"Link" doc:"<URL of the next page>; rel=\"next\" while there are more readings."`
	Body func(huma.Context)
}

func (h *handlers) registerReadings(api huma.API) {
	registry := api.OpenAPI().Components.Schemas
	huma.Register(api, authenticated(huma.Operation{
		OperationID: "list-readings",
		Method:      http.MethodGet,
		Path:        "/v1/readings",
		Summary:     "Readings of one series",
		Description: "Readings of one series in [from, to), paginated with an opaque keyset cursor, or streamed whole as CSV or NDJSON " +
			"(Accept: text/csv or application/x-ndjson; columns device_id, parameter, timestamp, value, type: the format ingest loads).",
		Tags:   []string{"readings"},
		Errors: []int{http.StatusBadRequest, http.StatusNotFound, http.StatusUnprocessableEntity, http.StatusServiceUnavailable},
		Responses: map[string]*huma.Response{
			"200": {
				Description: "A page of readings, or the whole range as an export.",
				Content: map[string]*huma.MediaType{
					mediaJSON:   {Schema: registry.Schema(reflect.TypeFor[ReadingsPage](), true, "ReadingsPage")},
					mediaCSV:    {Schema: &huma.Schema{Type: huma.TypeString, Description: "CSV with a header row: device_id,parameter,timestamp,value,type."}},
					mediaNDJSON: {Schema: &huma.Schema{Type: huma.TypeString, Description: `One JSON object per line: {"device_id","parameter","timestamp","value","type"}.`}},
				},
			},
		},
	}), h.readings)
}

// optTime is t when it was given, nil when absent.
func optTime(t time.Time, set bool) *time.Time {
	if !set {
		return nil
	}
	return &t
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.UnixMicro() == b.UnixMicro()
}

func (h *handlers) readings(ctx context.Context, in *ReadingsInput) (*ReadingsOutput, error) {
	sc := scope.From(ctx)
	from, to := optTime(in.From, in.fromSet), optTime(in.To, in.toSet)
	if from != nil && to != nil && !from.Before(*to) {
		return nil, invalidParam("to", in.To.Format(time.RFC3339Nano), "must be after from")
	}
	desc := in.Order == "desc"
	series, err := h.findSeries(ctx, sc, in.DeviceID, in.Parameter)
	if err != nil {
		return nil, err
	}
	q := store.ReadingsQuery{SeriesID: series.ID, From: from, To: to, Desc: desc}
	if in.Cursor != "" {
		pos, err := h.Cursors.Decode(in.Cursor)
		if err != nil {
			return nil, badParam("cursor", nil, err.Error())
		}
		if pos.SeriesID != series.ID || pos.Desc != desc || !sameTime(pos.From, from) || !sameTime(pos.To, to) {
			return nil, badParam("cursor", nil, "the cursor belongs to another query: repeat the series, order, from and to it was issued for")
		}
		q.After = &pos.Last
	}
	utc := in.Timestamps == "utc"

	if format := exportFormat(in.Accept); format != "" {
		infoFrom(ctx).route = exportRoute
		ex, err := h.Store.ExportReadings(ctx, sc, q)
		if err != nil {
			return nil, h.problem(ctx, err)
		}
		// The first batch is read before the status is sent, so that a
		// failing query is still answered with a problem.
		first, err := ex.Next()
		if err != nil {
			ex.Close()
			return nil, h.problem(ctx, err)
		}
		return &ReadingsOutput{Body: func(hctx huma.Context) {
			h.writeExport(hctx, ex, first, series, format, utc)
		}}, nil
	}

	limit := min(in.Limit, h.Limits.MaxPoints)
	page := getPage()
	rs, err := h.Store.Readings(ctx, sc, q, limit+1, (*page)[:0])
	*page = rs
	if err != nil {
		putPage(page)
		return nil, h.problem(ctx, err)
	}
	out := &ReadingsOutput{}
	var next string
	if len(rs) > limit {
		rs = rs[:limit]
		next = h.Cursors.Encode(cursor.Position{SeriesID: series.ID, Last: rs[limit-1].Time, Desc: desc, From: from, To: to})
		out.Link = "<" + nextPageURL(in, next) + `>; rel="next"`
	}
	out.Body = func(hctx huma.Context) {
		defer putPage(page)
		buf := getBuffer()
		defer putBuffer(buf)
		*buf = appendReadingsPage((*buf)[:0], &series, in.Order, from, to, rs, utc, next)
		writeJSON(hctx, *buf)
	}
	return out, nil
}

// Pages of readings are read into pooled slices, which the body returns
// once written; slices grown beyond maxPooledPage readings are left to the
// garbage collector.
const maxPooledPage = 10_000

var pages = sync.Pool{New: func() any { p := make([]store.Reading, 0, 1024); return &p }}

func getPage() *[]store.Reading { return pages.Get().(*[]store.Reading) }

func putPage(p *[]store.Reading) {
	if cap(*p) > maxPooledPage {
		return
	}
	clear(*p) // drop the text values' strings
	*p = (*p)[:0]
	pages.Put(p)
}

// appendReadingsPage appends a ReadingsPage, ending in a newline as
// encoding/json's Encoder does.
func appendReadingsPage(b []byte, s *store.Series, order string, from, to *time.Time, rs []store.Reading, utc bool, next string) []byte {
	b = append(b, `{"device_id":`...)
	b = appendString(b, s.DeviceID)
	b = append(b, `,"parameter":`...)
	b = appendString(b, s.Parameter)
	b = append(b, `,"type":`...)
	b = appendString(b, s.Type)
	b = append(b, `,"order":`...)
	b = appendString(b, order)
	if from != nil {
		b = append(b, `,"from":`...)
		b = appendTimestamp(b, utcTime(*from))
	}
	if to != nil {
		b = append(b, `,"to":`...)
		b = appendTimestamp(b, utcTime(*to))
	}
	b = append(b, `,"readings":[`...)
	var times timeAppender
	for i := range rs {
		r := &rs[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"time":"`...)
		b = times.append(b, r.Time, readingOffset(r, utc))
		b = append(b, `","value":`...)
		b = appendValue(b, r)
		b = append(b, '}')
	}
	b = append(b, ']')
	if next != "" {
		b = append(b, `,"next_cursor":`...)
		b = appendString(b, next)
	}
	return append(b, "}\n"...)
}

// findSeries returns the in-scope series (device, parameter), from the
// series cache when it is there, or answers 404.
func (h *handlers) findSeries(ctx context.Context, sc scope.Scope, device, parameter string) (store.Series, error) {
	key := seriesCacheKey(sc, device, parameter)
	found, version, cache := h.series.get(ctx, key)
	if len(found) == 1 {
		return found[0], nil
	}
	series, err := h.Store.FindSeries(ctx, sc, device, parameter)
	if errors.Is(err, store.ErrNotFound) {
		return store.Series{}, seriesNotFound(device, parameter)
	}
	if err != nil {
		return store.Series{}, h.problem(ctx, err)
	}
	if cache {
		h.series.put(key, version, []store.Series{series})
	}
	return series, nil
}

// nextPageURL is the request's URL, relative to the server, with cursor set.
func nextPageURL(in *ReadingsInput, next string) string {
	v := url.Values{}
	v.Set("device_id", in.DeviceID)
	v.Set("parameter", in.Parameter)
	if in.fromSet {
		v.Set("from", in.From.Format(time.RFC3339Nano))
	}
	if in.toSet {
		v.Set("to", in.To.Format(time.RFC3339Nano))
	}
	v.Set("order", in.Order)
	v.Set("limit", strconv.Itoa(in.Limit))
	v.Set("timestamps", in.Timestamps)
	v.Set("cursor", next)
	return "/v1/readings?" + v.Encode()
}

// writeExport streams the export as CSV or NDJSON, flushing after every
// database batch; memory stays at one batch and one buffer.
func (h *handlers) writeExport(hctx huma.Context, ex *store.Export, batch []store.Reading, s store.Series, format string, utc bool) {
	defer ex.Close()
	ctx := hctx.Context()
	ct := format
	if format == mediaCSV {
		ct += "; charset=utf-8"
	}
	hctx.SetHeader("Content-Type", ct)
	hctx.SetStatus(http.StatusOK)
	w := hctx.BodyWriter()
	flusher, _ := w.(http.Flusher)

	// Everything of a row but its time and value is the same for the series.
	var prefix, middle, suffix []byte
	buf := make([]byte, 0, 64<<10)
	if format == mediaCSV {
		buf = append(buf, "device_id,parameter,timestamp,value,type\n"...)
		prefix = appendCSV(appendCSV(nil, s.DeviceID), s.Parameter)
		middle = []byte(",")
		suffix = []byte("," + s.Type + "\n")
	} else {
		prefix = append(appendString(append(appendString([]byte(`{"device_id":`), s.DeviceID), `,"parameter":`...), s.Parameter), `,"timestamp":"`...)
		middle = []byte(`","value":`)
		suffix = append(appendString([]byte(`,"type":`), s.Type), "}\n"...)
	}
	var times timeAppender
	for len(batch) > 0 {
		for i := range batch {
			r := &batch[i]
			buf = append(buf, prefix...)
			buf = times.append(buf, r.Time, readingOffset(r, utc))
			buf = append(buf, middle...)
			if format == mediaCSV {
				if r.IsText {
					buf = appendCSVField(buf, r.Text)
				} else {
					buf = appendFloat(buf, r.Num)
				}
			} else {
				buf = appendValue(buf, r)
			}
			buf = append(buf, suffix...)
			if len(buf) >= 60<<10 {
				if _, err := w.Write(buf); err != nil {
					return // the client left
				}
				buf = buf[:0]
			}
		}
		if _, err := w.Write(buf); err != nil {
			return
		}
		buf = buf[:0]
		if flusher != nil {
			flusher.Flush()
		}
		var err error
		if batch, err = ex.Next(); err != nil {
			if ctx.Err() == nil {
				h.ctxLogger(ctx).Error("export failed midway; connection aborted", "err", err)
			}
			// The status is sent: dropping the connection is the only way to
			// tell the client the export is incomplete.
			panic(http.ErrAbortHandler)
		}
	}
	if len(buf) > 0 { // the CSV header of an empty export
		_, _ = w.Write(buf)
	}
}

func readingOffset(r *store.Reading, utc bool) int16 {
	if utc {
		return 0
	}
	return r.OffsetMin
}

// appendCSV appends a field and a comma.
func appendCSV(b []byte, s string) []byte { return append(appendCSVField(b, s), ',') }

// appendCSVField appends s as an RFC 4180 field, quoted when it must be.
func appendCSVField(b []byte, s string) []byte {
	if s == "" || !strings.ContainsAny(s, ",\"\r\n") && s[0] != ' ' && s[len(s)-1] != ' ' {
		return append(b, s...)
	}
	b = append(b, '"')
	b = append(b, strings.ReplaceAll(s, `"`, `""`)...)
	return append(b, '"')
}
