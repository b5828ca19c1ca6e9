package writeapi

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sensorhub/sensorhub/services/ingest/internal/copyload"
	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
)

// InfluxWriteInput is InfluxDB 2's write request, so that Telegraf's
// influxdb_v2 output and the InfluxDB client libraries push unchanged.
type InfluxWriteInput struct {
	Org             string `query:"org" doc:"Accepted and ignored: sensorhub has one store; the write key decides what may be written."`
	Bucket          string `query:"bucket" doc:"Accepted and ignored, as org."`
	Precision       string `query:"precision" enum:"ns,us,ms,s" default:"ns" doc:"Unit of the timestamps."`
	ContentEncoding string `header:"Content-Encoding" enum:"identity,gzip," doc:"gzip for a compressed body."`

	body io.Reader
}

// Resolve keeps the request's body reader for the handler.
func (in *InfluxWriteInput) Resolve(ctx huma.Context) []error {
	in.body = ctx.BodyReader()
	return nil
}

// InfluxError is InfluxDB's error body.
type InfluxError struct {
	Code    string `json:"code" example:"invalid" doc:"InfluxDB's error code: invalid for a partial write."`
	Message string `json:"message"`
}

// InfluxWriteOutput is 204 without a body, or InfluxDB's 400 for a partial
// write (the valid readings committed, as InfluxDB commits valid points).
type InfluxWriteOutput struct {
	Status int
	Body   *InfluxError
}

func (h *handlers) registerInfluxWrite(api huma.API) {
	op := authenticated(huma.Operation{
		OperationID: "write-influxdb",
		Method:      http.MethodPost,
		Path:        "/api/v2/write",
		Summary:     "Push line protocol, InfluxDB 2 style",
		Description: "InfluxDB 2's write endpoint over the same pipeline as `/v1/write`, for Telegraf and the InfluxDB clients " +
			"(`Authorization: Token <write key>`). The body is line protocol; the mapping is `/v1/write`'s. " +
			"204 when every reading was written. When some were rejected, the others are committed and the answer is " +
			"400 `partial write`, as InfluxDB answers, naming the first rejected line. Other errors are `/v1/write`'s problems.",
		Tags:          []string{"write"},
		DefaultStatus: http.StatusNoContent,
		Errors:        []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusServiceUnavailable},
	})
	huma.Register(api, op, h.influxWrite)
	// The output type gives every status its body; say what each holds.
	post := api.OpenAPI().Paths[op.Path].Post
	post.Responses["204"] = &huma.Response{Description: "Every reading was written."}
	if r := post.Responses["400"]; r != nil {
		r.Description = "A partial write, in InfluxDB's shape (application/json; the valid readings were committed), " +
			"or a malformed request (a problem)."
		r.Content["application/json"] = &huma.MediaType{Schema: &huma.Schema{Ref: "#/components/schemas/InfluxError"}}
	}
	post.RequestBody = &huma.RequestBody{
		Description: "InfluxDB line protocol, one point a line, gzip compressed or not.",
		Required:    true,
		Content:     map[string]*huma.MediaType{"text/plain": {Schema: &huma.Schema{Type: "string"}}},
	}
}

func (h *handlers) influxWrite(ctx context.Context, in *InfluxWriteInput) (*InfluxWriteOutput, error) {
	precision, err := dataset.ParsePrecision(in.Precision)
	if err != nil {
		return nil, huma.Error400BadRequest(err.Error())
	}
	res, err := h.push(ctx, in.body, dataset.LineProtocol, precision, copyload.ModeSkip)
	if err != nil {
		return nil, err
	}
	if res.Rejected == 0 {
		return &InfluxWriteOutput{Status: http.StatusNoContent}, nil
	}
	msg := fmt.Sprintf("partial write: %d of %d readings rejected, the others were written", res.Rejected, res.Rejected+res.Accepted)
	if len(res.Rejects) > 0 {
		r := res.Rejects[0]
		msg += fmt.Sprintf("; first: line %d: %s", r.Line, r.Reason)
	}
	return &InfluxWriteOutput{Status: http.StatusBadRequest, Body: &InfluxError{Code: "invalid", Message: msg}}, nil
}
