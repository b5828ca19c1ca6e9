// Package writeapi is sensorhub's write service (`ingest serve`): huma
// operations that take pushed readings over HTTP — NDJSON, CSV, the
// reference document or InfluxDB line protocol — validate them exactly as
// the batch job does, and commit them in group transactions (package
// copyload's Committer) before they answer.
package writeapi

import (
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/sensorhub/sensorhub/db/apikey"
	"github.com/sensorhub/sensorhub/db/ratelimit"
	"github.com/sensorhub/sensorhub/services/ingest/internal/copyload"
)

// Title and Version describe the service in its OpenAPI document.
const (
	Title   = "sensorhub write API"
	Version = "1.0.0"
)

const description = `Push sensor readings into sensorhub.

` + "`POST /v1/write`" + ` takes a body of readings in any of the batch job's formats
(NDJSON, CSV, the reference document) or in InfluxDB line protocol, gzip
compressed or not. Every reading is validated as ` + "`ingest load`" + ` validates it;
rejected readings are counted and listed with their line, byte offset and
reason, and their good neighbours are written. A 200 answer means the
accepted readings are committed and durable, visible at once in the read
API's raw readings and aggregates. A body sent again is harmless: readings
already stored count as duplicates. When the database is slow or down, the
service answers 503 with Retry-After instead of queueing without bound.

Requests need a write API key (` + "`Authorization: Bearer <key>`" + `, ` + "`Token <key>`" + ` as
InfluxDB clients send it, or ` + "`X-API-Key`" + `), unless the server runs with
authentication off. A key writes only the devices and parameter prefixes of
its scope; a reading outside it is rejected with that reason.`

// Limits bound what one request may cost.
type Limits struct {
	// MaxBodyBytes bounds the body as sent (compressed or not).
	MaxBodyBytes int64
	// MaxDecompressedBytes bounds a gzip body once inflated.
	MaxDecompressedBytes int64
	// MaxReadings bounds the readings (valid or not) of one body.
	MaxReadings int64
	// MaxListed bounds the rejected readings listed in an answer.
	MaxListed int
	// MaxInFlight bounds the bodies parsed and waiting at once; with
	// MaxReadings it bounds the service's memory.
	MaxInFlight int
	// Wait bounds how long a request waits for a slot and its commit
	// before it is answered 503.
	Wait time.Duration
}

// Deps is what the operations need. Register only stores it, so the OpenAPI
// document can be generated from zero Deps.
type Deps struct {
	Loader *copyload.Loader
	// Committers write submissions, one per duplicate mode.
	Committers map[copyload.Mode]*copyload.Committer
	// Keys authenticates requests; nil serves without credentials (for
	// development only).
	Keys *apikey.Set
	// RateLimit, when not nil, limits each key's requests.
	RateLimit *ratelimit.Limiter
	Limits    Limits
	Metrics   *Metrics
	Logger    *slog.Logger
	// Ready reports whether the database answers, for /readyz.
	Ready func() error
}

// NewAPI returns a huma API on mux with the service's configuration.
func NewAPI(mux *http.ServeMux) huma.API {
	huma.DefaultArrayNullable = false
	cfg := huma.DefaultConfig(Title, Version)
	cfg.Info.Description = description
	cfg.Info.License = &huma.License{Name: "Apache-2.0", URL: "https://www.apache.org/licenses/LICENSE-2.0"}
	cfg.Servers = []*huma.Server{{URL: "/", Description: "The write service; locally http://localhost:8081"}}
	cfg.CreateHooks = nil
	cfg.SchemasPath = ""
	cfg.DocsPath = ""
	cfg.Tags = []*huma.Tag{
		{Name: "write", Description: "Pushing readings."},
		{Name: "operations", Description: "Probes for orchestrators."},
	}
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		schemeBearer: {Type: "http", Scheme: "bearer", BearerFormat: "write API key",
			Description: "A write API key. InfluxDB clients' `Authorization: Token <key>` is accepted too."},
		schemeAPIKey: {Type: "apiKey", In: "header", Name: "X-API-Key", Description: "A write API key."},
	}
	return humago.New(mux, cfg)
}

// Register adds the operations to api.
func Register(api huma.API, d Deps) {
	h := &handlers{Deps: d}
	if h.Logger == nil {
		h.Logger = slog.New(slog.DiscardHandler)
	}
	if h.Limits.MaxInFlight > 0 {
		h.slots = make(chan struct{}, h.Limits.MaxInFlight)
	}
	api.UseMiddleware(authenticate(api, d.Keys, d.RateLimit, d.Metrics))
	h.registerWrite(api)
	h.registerInfluxWrite(api)
	h.registerHealth(api)
}

// Spec returns the OpenAPI 3.0.3 document as YAML: what `ingest openapi`
// writes and the repository's openapi-write-3.0.yaml holds.
func Spec() ([]byte, error) {
	api := NewAPI(http.NewServeMux())
	Register(api, Deps{})
	return api.OpenAPI().DowngradeYAML()
}

// NewHandler returns the service's HTTP handler: the operations, the
// OpenAPI document and a problem for every other path.
func NewHandler(d Deps, draining *atomic.Bool) http.Handler {
	mux := http.NewServeMux()
	api := NewAPI(mux)
	if d.Ready != nil && draining != nil {
		ready := d.Ready
		d.Ready = func() error {
			if draining.Load() {
				return errDraining
			}
			return ready()
		}
	}
	Register(api, d)
	var h http.Handler = mux
	if d.Metrics != nil {
		h = d.Metrics.instrument(h)
	}
	return h
}

type handlers struct {
	Deps
	slots chan struct{} // MaxInFlight tokens; nil: unbounded
}
