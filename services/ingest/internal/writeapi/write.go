package writeapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sensorhub/sensorhub/services/ingest/internal/copyload"
	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
	"github.com/sensorhub/sensorhub/services/ingest/internal/dbretry"
)

// WriteInput is a push of readings. The body is read as a stream, not
// through huma, so that it is parsed as it arrives and bounded on the wire.
type WriteInput struct {
	Format          string `query:"format" enum:"auto,reference,ndjson,csv,line" doc:"Body format. Default: from Content-Type (application/x-ndjson, text/csv, application/json, text/plain for line protocol), else detected from the content."`
	Precision       string `query:"precision" enum:"ns,us,ms,s" default:"ns" doc:"Unit of line protocol timestamps, as InfluxDB's precision parameter."`
	OnDuplicate     string `query:"on_duplicate" enum:"skip,overwrite" default:"skip" doc:"A reading whose series and time are stored already: skip keeps the stored one (counted as a duplicate), overwrite replaces it."`
	ContentType     string `header:"Content-Type" doc:"Media type of the body; chooses the format when format is not given."`
	ContentEncoding string `header:"Content-Encoding" enum:"identity,gzip," doc:"gzip for a compressed body (also detected from its first bytes)."`

	body io.Reader
}

// Resolve keeps the request's body reader for the handler.
func (in *WriteInput) Resolve(ctx huma.Context) []error {
	in.body = ctx.BodyReader()
	return nil
}

// WriteResult is what a push did.
type WriteResult struct {
	Format string `json:"format" enum:"reference,ndjson,csv,line" doc:"The body's format, given or detected."`
	// Accepted readings passed validation and are committed.
	Accepted   int64 `json:"accepted" doc:"Readings that passed validation; each is inserted, updated or a duplicate."`
	Inserted   int64 `json:"inserted" doc:"Readings newly stored."`
	Duplicates int64 `json:"duplicates" doc:"Readings whose series and time were stored already (on_duplicate=skip), or that repeat an unchanged stored reading."`
	Updated    int64 `json:"updated" doc:"Stored readings replaced (on_duplicate=overwrite)."`
	Rejected   int64 `json:"rejected" doc:"Readings refused; the first of them are listed in rejects."`
	// Rejects lists the first rejected readings (MaxListed).
	Rejects []RejectedReading `json:"rejects" doc:"The first rejected readings, in body order."`
	// RejectsListedAll is false when more readings were rejected than listed.
	RejectsListedAll bool `json:"rejects_listed_all" doc:"Whether rejects lists every rejected reading."`
}

// RejectedReading is one refused reading and why.
type RejectedReading struct {
	Line   int64  `json:"line" doc:"1-based line of the reading in the (decompressed) body; 0 when unknown."`
	Offset int64  `json:"offset" doc:"Byte offset of the reading in the (decompressed) body."`
	Path   string `json:"path,omitempty" doc:"JSON pointer into a reference document."`
	Field  string `json:"field,omitempty" doc:"The offending field: device_id, parameter, timestamp, value or type."`
	Reason string `json:"reason"`
}

// WriteOutput is the answer to a push.
type WriteOutput struct {
	Body WriteResult
}

const writeBodyDoc = `Readings in one of the formats, gzip compressed or not:

- NDJSON (` + "`application/x-ndjson`" + `): one {"device_id", "parameter", "timestamp", "value"[, "type"]} per line.
- CSV (` + "`text/csv`" + `): a header device_id,parameter,timestamp,value[,type], then a reading per row.
- The reference document (` + "`application/json`" + `): {"<device_id>": [{"parameter", "timestamp", "value", "type"}, ...]}.
- InfluxDB line protocol (` + "`text/plain`" + ` or format=line): ` + "`measurement[,tag=v...] field=value[,...] [timestamp]`" + `. The device is the series key (measurement and tags sorted by key, e.g. ` + "`env,room=a`" + `), each field a parameter; float and integer fields are numeric, string and boolean fields text; a line without a timestamp takes the server's time.`

func (h *handlers) registerWrite(api huma.API) {
	op := authenticated(huma.Operation{
		OperationID: "write-readings",
		Method:      http.MethodPost,
		Path:        "/v1/write",
		Summary:     "Push readings",
		Description: "Validates every reading as the batch job does and commits the accepted ones before answering. " +
			"A body that cannot be parsed to its end (malformed JSON, CSV or line) commits nothing and is answered 400 naming the position. " +
			"Readings rejected one by one (invalid field, value type conflicting with the series', outside the key's scope) are listed with their line; " +
			"their neighbours are committed and the answer is 200. Sending a body again is safe: stored readings count as duplicates.",
		Tags: []string{"write"},
		Errors: []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType,
			http.StatusUnprocessableEntity, http.StatusServiceUnavailable},
	})
	huma.Register(api, op, h.write)
	// Documented only after registering: with a request body declared, huma
	// would read and decode the body itself, where the handler streams it.
	api.OpenAPI().Paths[op.Path].Post.RequestBody = &huma.RequestBody{
		Description: writeBodyDoc,
		Required:    true,
		Content: map[string]*huma.MediaType{
			"application/x-ndjson": {Schema: &huma.Schema{Type: "string"}},
			"text/csv":             {Schema: &huma.Schema{Type: "string"}},
			"application/json":     {Schema: &huma.Schema{Type: "object", AdditionalProperties: true}},
			"text/plain":           {Schema: &huma.Schema{Type: "string"}},
		},
	}
}

// errBodyTooLarge reports a body past Limits.MaxBodyBytes on the wire.
var errBodyTooLarge = errors.New("request body too large")

func (h *handlers) write(ctx context.Context, in *WriteInput) (*WriteOutput, error) {
	format, err := chooseFormat(in.Format, in.ContentType)
	if err != nil {
		return nil, huma.Error415UnsupportedMediaType(err.Error())
	}
	precision, err := dataset.ParsePrecision(in.Precision)
	if err != nil {
		return nil, huma.Error400BadRequest(err.Error())
	}
	mode, err := copyload.ParseMode(in.OnDuplicate)
	if err != nil {
		return nil, huma.Error400BadRequest(err.Error())
	}
	res, err := h.push(ctx, in.body, format, precision, mode)
	if err != nil {
		return nil, err
	}
	return &WriteOutput{Body: res}, nil
}

// push parses, validates and commits one body: the work of both write
// operations. Its errors are huma errors, ready to answer.
func (h *handlers) push(ctx context.Context, body io.Reader, format dataset.Format, precision dataset.Precision, mode copyload.Mode) (WriteResult, error) {
	start := time.Now()
	wait := h.Limits.Wait
	if wait <= 0 {
		wait = 10 * time.Second
	}
	deadline := start.Add(wait)
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if h.slots != nil {
		select {
		case h.slots <- struct{}{}:
			defer func() { <-h.slots }()
		case <-wctx.Done():
			return WriteResult{}, busy("every write slot is taken", ctx)
		}
	}
	c := callerFrom(ctx)
	opts := copyload.PrepareOptions{
		Dataset: dataset.Options{Format: format, File: "body", Precision: precision,
			MaxDecompressedBytes: h.Limits.MaxDecompressedBytes},
		MaxReadings: h.Limits.MaxReadings,
		MaxListed:   h.Limits.MaxListed,
	}
	if !c.scope.IsAll() {
		opts.Allow = c.scope.Allows
		opts.AllowReason = fmt.Sprintf("outside the scope of write key %q (%s)", c.name, c.scope)
	}
	if h.Limits.MaxBodyBytes > 0 {
		body = &boundedBody{r: body, left: h.Limits.MaxBodyBytes}
	}
	sub, err := h.Loader.Prepare(wctx, body, opts)
	if err != nil {
		return WriteResult{}, h.prepareProblem(ctx, err)
	}
	out, err := h.Committers[mode].Commit(ctx, sub, max(time.Until(deadline), time.Millisecond))
	if err != nil {
		if errors.Is(err, copyload.ErrBusy) {
			return WriteResult{}, busy("the write queue did not reach this request in time", ctx)
		}
		h.Logger.Error("commit pushed readings", "err", err)
		return WriteResult{}, huma.ErrorWithHeaders(huma.Error503ServiceUnavailable(
			"the database did not commit this request in time or is unavailable; send it again (readings already stored count as duplicates)"),
			http.Header{"Retry-After": {"1"}})
	}
	res := WriteResult{
		Format: sub.Format.String(), Accepted: sub.Read, Inserted: out.Inserted, Duplicates: out.Duplicates,
		Updated: out.Updated, Rejected: sub.Rejected, Rejects: make([]RejectedReading, 0, len(sub.Rejects)),
		RejectsListedAll: int64(len(sub.Rejects)) == sub.Rejected,
	}
	for _, r := range sub.Rejects {
		res.Rejects = append(res.Rejects, RejectedReading{Line: r.Pos.Line, Offset: r.Pos.Offset, Path: r.Pos.Path, Field: r.Field, Reason: r.Reason})
	}
	h.Metrics.written(res, time.Since(start))
	return res, nil
}

// prepareProblem is the one place a failure to read a body becomes a problem.
func (h *handlers) prepareProblem(ctx context.Context, err error) error {
	var fatal *dataset.FatalError
	switch {
	case errors.Is(err, errBodyTooLarge):
		return huma.Error413RequestEntityTooLarge(fmt.Sprintf("the body exceeds %d bytes; split it", h.Limits.MaxBodyBytes))
	case errors.Is(err, dataset.ErrDecompressedTooLarge):
		return huma.Error413RequestEntityTooLarge(fmt.Sprintf("the gzip body inflates beyond %d bytes; split it", h.Limits.MaxDecompressedBytes))
	case errors.Is(err, copyload.ErrTooManyReadings):
		return huma.Error413RequestEntityTooLarge(fmt.Sprintf("the body holds more than %d readings; split it", h.Limits.MaxReadings))
	case errors.As(err, &fatal):
		return huma.Error400BadRequest("malformed body, nothing was written: " + fatal.Error())
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return busy("reading and validating the body took too long", ctx)
	case dbretry.Transient(err):
		h.Logger.Error("resolve series of pushed readings", "err", err)
		return busy("the database is unavailable", ctx)
	}
	h.Logger.Error("read pushed body", "err", err)
	return huma.Error500InternalServerError("internal error")
}

// busy is a 503 telling the client to retry.
func busy(why string, _ context.Context) error {
	return huma.ErrorWithHeaders(
		huma.Error503ServiceUnavailable(why+"; nothing of this request was written, send it again"),
		http.Header{"Retry-After": {"1"}})
}

// chooseFormat takes the format parameter, else the Content-Type, else
// detects from the content.
func chooseFormat(param, contentType string) (dataset.Format, error) {
	if param != "" {
		return dataset.ParseFormat(param)
	}
	if contentType == "" {
		return dataset.Auto, nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return dataset.Auto, fmt.Errorf("Content-Type %q: %v", contentType, err)
	}
	switch strings.ToLower(mt) {
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines":
		return dataset.NDJSON, nil
	case "text/csv":
		return dataset.CSV, nil
	case "application/json":
		return dataset.Auto, nil // the reference document or NDJSON, told apart by the content
	case "text/plain", "application/x-influx-line-protocol":
		return dataset.LineProtocol, nil
	case "application/octet-stream", "application/gzip", "application/x-gzip",
		"application/x-www-form-urlencoded": // what curl --data-binary declares when told nothing
		return dataset.Auto, nil
	}
	return dataset.Auto, fmt.Errorf("Content-Type %q: want application/x-ndjson, text/csv, application/json or text/plain (line protocol), or give format", mt)
}

// boundedBody fails with errBodyTooLarge once more than left bytes arrived,
// rather than cutting the body silently.
type boundedBody struct {
	r    io.Reader
	left int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, errBodyTooLarge
	}
	return n, err
}
