package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sensorhub/sensorhub/db/ratelimit"
	"github.com/sensorhub/sensorhub/services/api/internal/aggregate"
	"github.com/sensorhub/sensorhub/services/api/internal/auth"
	"github.com/sensorhub/sensorhub/services/api/internal/store"
)

// This file is the one place where errors become HTTP problems (RFC 9457,
// huma's ErrorModel). Input checks build their problem directly with
// invalidParam or badParam; everything else passes through problem.

// statusClientClosed is logged when the client went away mid-request.
const statusClientClosed = 499

// invalidParam is a 422 naming the query parameter that failed a check.
func invalidParam(name string, value any, msg string) error {
	return huma.Error422UnprocessableEntity(msg, &huma.ErrorDetail{Location: "query." + name, Value: value, Message: msg})
}

// badParam is a 400 for a parameter that is not even well-formed (cursor).
func badParam(name string, value any, msg string) error {
	return huma.Error400BadRequest(msg, &huma.ErrorDetail{Location: "query." + name, Value: value, Message: msg})
}

// seriesNotFound is the 404 of an unknown (or out-of-scope) series.
func seriesNotFound(deviceID, parameter string) error {
	return huma.Error404NotFound("no series "+deviceID+" / "+parameter,
		&huma.ErrorDetail{Location: "query.device_id", Value: deviceID, Message: "no such device, or it has no such parameter"},
		&huma.ErrorDetail{Location: "query.parameter", Value: parameter, Message: "no such parameter for this device"})
}

// problem maps an error from the store or the aggregate engine to a response;
// internal errors are logged with the request id and answered without detail.
func (h *handlers) problem(ctx context.Context, err error) error {
	var (
		se  huma.StatusError
		inv *aggregate.InvalidError
	)
	switch {
	case errors.As(err, &se):
		return err
	case errors.As(err, &inv):
		name := inv.Param
		if name == "series" {
			name = "parameter"
		}
		return invalidParam(name, nil, inv.Reason)
	case errors.Is(err, store.ErrNotFound):
		return huma.Error404NotFound("not found")
	case errors.Is(err, store.ErrInvalid):
		return huma.Error422UnprocessableEntity(err.Error())
	case errors.Is(err, context.Canceled):
		return huma.NewError(statusClientClosed, "client closed the request")
	case errors.Is(err, store.ErrTimeout):
		return withRetryAfter(huma.Error503ServiceUnavailable(
			"the query took longer than the server allows; narrow the time range, or page with a smaller limit"))
	case errors.Is(err, store.ErrUnavailable):
		h.ctxLogger(ctx).Warn("database unavailable", "err", err)
		return withRetryAfter(huma.Error503ServiceUnavailable("the database is unavailable; retry later"))
	}
	h.ctxLogger(ctx).Error("internal error", "err", err)
	return huma.Error500InternalServerError("internal error; the request id identifies it in the server's log")
}

func withRetryAfter(err error) error {
	return huma.ErrorWithHeaders(err, http.Header{"Retry-After": {"1"}})
}

// LegacyError is the error body of the original service's endpoint:
// {"message": "..."} with application/json, not a problem document.
type LegacyError struct {
	status  int
	Message string `json:"message" example:"from: not an RFC 3339 timestamp" doc:"What went wrong."`
}

// Error implements error.
func (e *LegacyError) Error() string { return e.Message }

// GetStatus implements huma.StatusError.
func (e *LegacyError) GetStatus() int { return e.status }

func legacyBadRequest(format string, args ...any) error {
	return &LegacyError{status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

// legacyProblem is problem in the original service's error shape; its
// internal errors keep that service's "Server Failure". Only the body
// changes: the headers problem chose (Retry-After on a 503) stay, as they do
// on this endpoint's errors from middleware (writeError).
func (h *handlers) legacyProblem(ctx context.Context, err error) error {
	p := h.problem(ctx, err)
	var se huma.StatusError
	if !errors.As(p, &se) {
		return &LegacyError{status: http.StatusInternalServerError, Message: "Server Failure"}
	}
	switch status := se.GetStatus(); {
	case status >= 500 && status != http.StatusServiceUnavailable:
		return &LegacyError{status: http.StatusInternalServerError, Message: "Server Failure"}
	default:
		var le error = &LegacyError{status: status, Message: se.Error()}
		if he := huma.HeadersError(nil); errors.As(p, &he) {
			le = huma.ErrorWithHeaders(le, he.GetHeaders())
		}
		return le
	}
}

// authProblem maps an authentication failure: 401 with a WWW-Authenticate
// challenge (RFC 6750) for missing or refused credentials, 503 when they
// cannot be checked now.
func authProblem(ctx context.Context, log *slog.Logger, err error) error {
	var ae *auth.Error
	if !errors.As(err, &ae) {
		log.Error("internal error", "request_id", RequestID(ctx), "err", err)
		return huma.Error500InternalServerError("internal error; the request id identifies it in the server's log")
	}
	switch ae.Kind {
	case auth.Missing:
		return huma.ErrorWithHeaders(huma.Error401Unauthorized(ae.Reason),
			http.Header{"WWW-Authenticate": {`Bearer realm="sensorhub"`}})
	case auth.Unavailable:
		log.Warn("credentials cannot be checked", "request_id", RequestID(ctx), "err", err)
		return withRetryAfter(huma.Error503ServiceUnavailable(ae.Reason))
	}
	desc := strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r > 0x7e {
			return '\''
		}
		return r
	}, ae.Reason)
	return huma.ErrorWithHeaders(huma.Error401Unauthorized(ae.Reason),
		http.Header{"WWW-Authenticate": {`Bearer realm="sensorhub", error="invalid_token", error_description="` + desc + `"`}})
}

// rateLimited is the 429 of a caller whose bucket is empty for wait.
func rateLimited(lim *ratelimit.Limiter, wait time.Duration) error {
	secs := int64(min(max(math.Ceil(wait.Seconds()), 1), 86400)) // RFC 9110: whole seconds
	perSecond, burst := lim.Rate()
	return huma.ErrorWithHeaders(
		huma.NewError(http.StatusTooManyRequests, fmt.Sprintf("rate limit exceeded: %g requests a second (bursts of %d) per caller; retry in %d s", perSecond, burst, secs)),
		http.Header{"Retry-After": {strconv.FormatInt(secs, 10)}})
}

// writeError answers from huma middleware, before the operation runs: in
// the original service's {"message": ...} shape on its endpoint, as a
// problem document elsewhere. err is a huma.StatusError, possibly with
// headers.
func writeError(api huma.API, ctx huma.Context, err error) {
	var he huma.HeadersError
	if errors.As(err, &he) {
		for name, values := range he.GetHeaders() {
			for _, v := range values {
				ctx.AppendHeader(name, v)
			}
		}
	}
	status, msg := http.StatusInternalServerError, err.Error()
	var details []error
	var se huma.StatusError
	if errors.As(err, &se) {
		status = se.GetStatus()
	}
	var em *huma.ErrorModel
	if errors.As(err, &em) {
		msg = em.Detail
		for _, d := range em.Errors {
			details = append(details, d)
		}
	}
	if ctx.Operation().OperationID == legacyOperationID {
		ctx.SetHeader("Content-Type", mediaJSON)
		ctx.SetStatus(status)
		b, _ := json.Marshal(&LegacyError{Message: msg})
		_, _ = ctx.BodyWriter().Write(append(b, '\n'))
		return
	}
	_ = huma.WriteErr(api, ctx, status, msg, details...)
}

// notFoundDetail is the detail of the 404 for a path the API does not have.
const notFoundDetail = "no such endpoint; the API is described at /openapi.json and /docs"

// writeProblem answers outside huma (unknown paths and methods, the limits
// middleware enforces, panics) in the shape huma's answers have: a problem
// document, or the original service's {"message": ...} on its endpoint.
// header is added to the response.
func writeProblem(w http.ResponseWriter, r *http.Request, status int, detail string, header http.Header) {
	for name, values := range header {
		w.Header()[name] = values
	}
	var body []byte
	if r.URL.Path == legacyPath {
		if status >= 500 && status != http.StatusServiceUnavailable {
			detail = "Server Failure" // as legacyProblem says it
		}
		w.Header().Set("Content-Type", mediaJSON)
		body, _ = json.Marshal(&LegacyError{Message: detail}) // a struct of a string always marshals
	} else {
		w.Header().Set("Content-Type", "application/problem+json")
		body, _ = json.Marshal(&huma.ErrorModel{Title: http.StatusText(status), Status: status, Detail: detail})
	}
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// documentProblems replaces the examples of huma's problem schemas, which
// are placeholders (example.com URLs, "Property foo is required"), with one
// of this API's own problems: the 404 of an unknown series.
func documentProblems(api huma.API) {
	schemas := api.OpenAPI().Components.Schemas.Map()
	set := func(schema, prop string, example any) {
		s, ok := schemas[schema]
		if !ok {
			return
		}
		if p, ok := s.Properties[prop]; ok {
			p.Examples = nil
			if example != nil {
				p.Examples = []any{example}
			}
		}
	}
	set("ErrorModel", "type", "about:blank")
	set("ErrorModel", "title", "Not Found")
	set("ErrorModel", "status", 404)
	set("ErrorModel", "detail", "no series device.foo / parameter.nope")
	set("ErrorModel", "instance", nil) // this API does not set it
	set("ErrorDetail", "location", "query.parameter")
	set("ErrorDetail", "message", "no such parameter for this device")
	set("ErrorDetail", "value", "parameter.nope")
}
