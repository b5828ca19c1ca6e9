package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sensorhub/sensorhub/db/scope"
	"github.com/sensorhub/sensorhub/services/api/internal/store"
)

// The original sensor-target service's endpoint, kept to its documented
// contract: {"message": string, "graph_data": [LegacyItem]}, numbers as JSON
// numbers with every digit, text as strings, timestamps at their original
// offsets, application/json, and 400 {"message": string} for bad input.

const (
	legacyOperationID = "process-request"
	legacyPath        = "/api/v1/core/process_request"
)

// queryInt is an integer query parameter that huma passes through
// unparsed, so that a malformed value gets this endpoint's own 400 shape.
type queryInt string

// Schema implements huma.SchemaProvider.
func (queryInt) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: huma.TypeInteger, Minimum: ptr(1.0)}
}

func ptr[T any](v T) *T { return &v }

// ProcessRequestInput filters the readings; none is required.
type ProcessRequestInput struct {
	DeviceID  string   `query:"device_id" maxLength:"256" example:"device.foo" doc:"Only readings of this device."`
	Parameter string   `query:"parameter" maxLength:"256" example:"parameter.foo" doc:"Only readings of this parameter."`
	From      string   `query:"from" format:"date-time" example:"2024-03-07T02:34:07+02:00" doc:"Only readings at or after this time (RFC 3339)."`
	To        string   `query:"to" format:"date-time" example:"2024-03-07T12:22:08+02:00" doc:"Only readings before this time (RFC 3339)."`
	Limit     queryInt `query:"limit" example:"100" doc:"Most readings to return (at most the server's limit, which also applies without it)."`
}

// LegacyItem is one reading of graph_data.
type LegacyItem struct {
	DeviceID  string    `json:"device_id" example:"device.foo"`
	Parameter string    `json:"parameter" example:"parameter.foo"`
	Timestamp Timestamp `json:"timestamp" doc:"Time at the offset it was recorded with."`
	Value     Value     `json:"value"`
}

// ProcessRequestBody documents the 200 body, which is written by hand.
type ProcessRequestBody struct {
	Message   string       `json:"message" example:"Data available" doc:"Summary; says so when the server's limit cut the result."`
	GraphData []LegacyItem `json:"graph_data" doc:"Readings by device, parameter and time."`
}

// ProcessRequestOutput streams the body.
type ProcessRequestOutput struct {
	Body func(huma.Context)
}

func (h *handlers) registerProcessRequest(api huma.API) {
	registry := api.OpenAPI().Components.Schemas
	errBody := registry.Schema(reflect.TypeFor[LegacyError](), true, "LegacyError")
	legacyErr := func(desc string) *huma.Response {
		return &huma.Response{Description: desc, Content: map[string]*huma.MediaType{mediaJSON: {Schema: errBody}}}
	}
	huma.Register(api, authenticated(huma.Operation{
		OperationID: legacyOperationID,
		Method:      http.MethodGet,
		Path:        legacyPath,
		Summary:     "Readings in the original service's format",
		Description: "The original sensor-target service's contract. Without filters it returns every reading (up to the server's limit). " +
			"Errors are {\"message\": ...}, not problem documents.",
		Tags:               []string{"legacy"},
		SkipValidateParams: true, // malformed input gets this endpoint's own 400
		Responses: map[string]*huma.Response{
			"200": {Description: "Readings.", Content: map[string]*huma.MediaType{
				mediaJSON: {Schema: registry.Schema(reflect.TypeFor[ProcessRequestBody](), true, "ProcessRequestBody")},
			}},
			"400": legacyErr("Malformed or out-of-range parameter."),
			"401": legacyErr("Credentials missing or refused."),
			"429": legacyErr("The caller's rate limit is exhausted."),
			"414": legacyErr("URI Too Long: " + targetTooLong + "."),
			"500": legacyErr("Server failure."),
			"503": legacyErr("The query took too long, or the database is unavailable."),
		},
	}), h.processRequest)
}

func (h *handlers) processRequest(ctx context.Context, in *ProcessRequestInput) (*ProcessRequestOutput, error) {
	q := store.LegacyQuery{DeviceID: in.DeviceID, Parameter: in.Parameter}
	if len(in.DeviceID) > 256 || len(in.Parameter) > 256 {
		return nil, legacyBadRequest("device_id and parameter are at most 256 bytes")
	}
	for _, p := range []struct {
		name, value string
		dst         **time.Time
	}{{"from", in.From, &q.From}, {"to", in.To, &q.To}} {
		if p.value == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, p.value)
		if err != nil {
			return nil, legacyBadRequest("%s: %q is not an RFC 3339 timestamp with a UTC offset, like 2024-03-07T12:22:07.315194+02:00", p.name, p.value)
		}
		if !inYears(t) {
			return nil, legacyBadRequest("%s: %q %s", p.name, p.value, outsideYears)
		}
		*p.dst = &t
	}
	if q.From != nil && q.To != nil {
		if !q.From.Before(*q.To) {
			return nil, legacyBadRequest("to must be after from")
		}
		if q.To.Sub(*q.From) > h.Limits.MaxRawRange {
			return nil, legacyBadRequest("from..to spans more than %s, the most one request may ask for", h.Limits.MaxRawRange)
		}
	}
	limit, capped := h.Limits.MaxPoints, true
	if in.Limit != "" {
		n, err := strconv.Atoi(string(in.Limit))
		if err != nil || n < 1 || n > h.Limits.MaxPoints {
			return nil, legacyBadRequest("limit: %q is not a whole number from 1 to %d", string(in.Limit), h.Limits.MaxPoints)
		}
		limit, capped = n, false
	}
	queryLimit := limit
	if capped {
		queryLimit++ // one more tells whether the cap cut the result
	}
	rows, err := h.Store.Legacy(ctx, scope.From(ctx), q, queryLimit)
	if err != nil {
		return nil, h.legacyProblem(ctx, err)
	}
	// Reading the first row runs the query, so errors still get a status.
	has := rows.Next()
	if !has {
		if err := rows.Err(); err != nil {
			rows.Close()
			return nil, h.legacyProblem(ctx, err)
		}
	}
	return &ProcessRequestOutput{Body: func(hctx huma.Context) {
		h.writeLegacy(hctx, rows, has, limit, capped)
	}}, nil
}

// writeLegacy streams graph_data as rows arrive, then the message (last, as
// only then is it known whether the limit cut the result; JSON objects are
// unordered).
func (h *handlers) writeLegacy(hctx huma.Context, rows *store.LegacyRows, has bool, limit int, capped bool) {
	defer rows.Close()
	hctx.SetHeader("Content-Type", mediaJSON)
	hctx.SetStatus(http.StatusOK)
	w := hctx.BodyWriter()
	buf := make([]byte, 0, 64<<10)
	buf = append(buf, `{"graph_data":[`...)
	var (
		n                 int
		cut               bool
		device, parameter string
		head              []byte // `{"device_id":...,"parameter":...,"timestamp":"` of the current series
		times             timeAppender
	)
	for ; has; has = rows.Next() {
		if n == limit {
			cut = true
			break
		}
		r := rows.Row()
		if head == nil || r.DeviceID != device || r.Parameter != parameter {
			device, parameter = r.DeviceID, r.Parameter
			head = append(appendString(append(appendString(append(head[:0], `{"device_id":`...), device), `,"parameter":`...), parameter), `,"timestamp":"`...)
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, head...)
		buf = times.append(buf, r.Time, r.OffsetMin)
		buf = append(buf, `","value":`...)
		buf = appendValue(buf, &r.Reading)
		buf = append(buf, '}')
		n++
		if len(buf) >= 60<<10 {
			if _, err := w.Write(buf); err != nil {
				return // the client left
			}
			buf = buf[:0]
		}
	}
	if err := rows.Err(); err != nil {
		if hctx.Context().Err() == nil {
			h.ctxLogger(hctx.Context()).Error("process_request failed midway; connection aborted", "err", err)
		}
		panic(http.ErrAbortHandler) // the status is sent: only a broken response says it is incomplete
	}
	msg := "Data available"
	switch {
	case n == 0:
		msg = "No data available"
	case cut && capped:
		msg = fmt.Sprintf("Data available: the first %d readings only, the most one response holds; narrow the request with device_id, parameter, from and to", limit)
	}
	buf = append(buf, `],"message":`...)
	buf = appendString(buf, msg)
	buf = append(buf, "}\n"...)
	_, _ = w.Write(buf)
}
