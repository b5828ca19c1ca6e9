// Package httpapi is sensorhub's HTTP API: huma operations over the store and
// the aggregate engine, the original service's process_request endpoint, and
// the middleware every request passes (request id, access log, metrics,
// CORS, timeout; then, for the operations, authentication, rate limit and
// conditional requests).
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sensorhub/sensorhub/db/ratelimit"
	"github.com/sensorhub/sensorhub/services/api/internal/auth"
	"github.com/sensorhub/sensorhub/services/api/internal/cursor"
	"github.com/sensorhub/sensorhub/services/api/internal/docsui"
	"github.com/sensorhub/sensorhub/services/api/internal/store"
)

// Title and Version describe the API in its OpenAPI document.
const (
	Title   = "sensorhub API"
	Version = "1.0.0"
)

const description = `Read access to sensorhub's sensor readings.

Every operation but the probes needs credentials: an API key as
` + "`Authorization: Bearer <key>`" + ` or ` + "`X-API-Key: <key>`" + `, or a JWT from the
configured identity provider as ` + "`Authorization: Bearer <token>`" + `. A caller sees
only the series of its scope (devices and parameter prefixes); others behave
as if they did not exist. Answers carry a weak ETag that changes with every
load of data; ` + "`If-None-Match`" + ` with it answers 304 Not Modified.

Times are RFC 3339 and ranges are half-open, [from, to). Readings keep the UTC
offset they were recorded with unless ` + "`timestamps=utc`" + ` is asked for; catalog
times (first_time, last_time) are UTC. Errors are RFC 9457 problem details
naming the offending parameter, except on the original service's
` + "`/api/v1/core/process_request`" + `, which keeps its ` + "`{\"message\": ...}`" + ` shape.`

// Limits bound what one request may ask for (OWASP API4).
type Limits struct {
	// MaxPoints bounds the items of one JSON response.
	MaxPoints int
	// MaxRawRange bounds from..to of an unpaginated raw-readings request.
	MaxRawRange time.Duration
}

// Deps is what the operations need. Register only stores it, so the OpenAPI
// document can be generated from zero Deps.
type Deps struct {
	Store   *store.Store
	Cursors *cursor.Codec
	Limits  Limits
	// Logger receives internal errors; nil discards them.
	Logger *slog.Logger
	// Draining reports that shutdown has begun, so /readyz fails.
	Draining func() bool
	// series caches resolutions of named series; nil disables it.
	series *seriesCache
}

// handlers implements the operations.
type handlers struct {
	Deps
	log *slog.Logger
}

func newHandlers(d Deps) *handlers {
	h := &handlers{Deps: d, log: d.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h
}

// NewAPI returns a huma API on mux with sensorhub's configuration: OpenAPI at
// /openapi.json, /openapi.yaml and /openapi-3.0.yaml, docs at /docs, and no
// $schema links in bodies.
func NewAPI(mux *http.ServeMux) huma.API {
	// Every array the API writes is [] when empty, never null (the encoders
	// and handlers make sure; the tests validate responses against the
	// document), so the document must not call them nullable. The setting is
	// huma's process-wide default, read as schemas are generated.
	huma.DefaultArrayNullable = false
	cfg := huma.DefaultConfig(Title, Version)
	cfg.Info.Description = description
	cfg.Info.License = &huma.License{Name: "Apache-2.0", URL: "https://www.apache.org/licenses/LICENSE-2.0"}
	cfg.Servers = []*huma.Server{
		{URL: "/", Description: "The API that serves this document (what /docs tries requests against); locally http://localhost:8080"},
	}
	cfg.CreateHooks = nil // no $schema fields or schema Link headers in responses
	cfg.SchemasPath = ""
	// huma's own /docs loads its renderer from unpkg.com; NewServer serves
	// an embedded one instead (package docsui).
	cfg.DocsPath = ""
	cfg.Tags = []*huma.Tag{
		{Name: "readings", Description: "Devices, series and their readings."},
		{Name: "legacy", Description: "The original sensor-target service's contract."},
		{Name: "operations", Description: "Probes for orchestrators."},
	}
	cfg.Components.SecuritySchemes = securitySchemes()
	return humago.New(mux, cfg)
}

// Register adds every operation of the API to api.
func Register(api huma.API, d Deps) {
	h := newHandlers(d)
	// Before the operations: huma binds middleware when an operation registers.
	api.UseMiddleware(rejectUnstorableText(api), rejectRepeatedParams(api))
	h.registerDevices(api)
	h.registerSeries(api)
	h.registerReadings(api)
	h.registerAggregates(api)
	h.registerLatest(api)
	h.registerProcessRequest(api)
	h.registerHealth(api)
	documentAccess(api)
	documentLimits(api)
	documentProblems(api)
}

// Spec returns the OpenAPI 3.0.3 document of the API as YAML: what
// `api openapi` writes and the repository's openapi-3.0.yaml holds.
func Spec() ([]byte, error) {
	api := NewAPI(http.NewServeMux())
	Register(api, Deps{})
	return api.OpenAPI().DowngradeYAML()
}

// Options configure the HTTP handler around the operations.
type Options struct {
	// Auth authenticates the requests of every operation that declares
	// security (all but the probes). Required: auth.Disabled() serves
	// without credentials, for development.
	Auth *auth.Authenticator
	// RateLimit, when not nil, limits each caller (API key name, token
	// subject, or client address without authentication).
	RateLimit *ratelimit.Limiter
	// Version is the build's version, reported as sensorhub_build_info and
	// part of every ETag (another build may answer differently).
	Version string
	// DatasetVersionTTL is how long the dataset version behind ETags is
	// reused before it is read again; 0 means one second.
	DatasetVersionTTL time.Duration
	// RequestTimeout bounds each request (exports excepted); 0 disables it.
	RequestTimeout time.Duration
	// CORSOrigins are the allowed browser origins; "*" allows any.
	CORSOrigins []string
	// Metrics is where request metrics are registered; nil disables them.
	Metrics prometheus.Registerer
	// ResponseCacheBytes bounds the response cache (respcache.go): 0 means
	// DefaultResponseCacheBytes, a negative value turns the cache off.
	ResponseCacheBytes int64
	// MetricsGatherer, when set, is served at /metrics on the API's own
	// handler (for deployments without a separate admin listener).
	MetricsGatherer prometheus.Gatherer
	// Logger receives the access log and internal errors.
	Logger *slog.Logger
}

// Server is the API's HTTP handler with its draining switch.
type Server struct {
	api      huma.API
	handler  http.Handler
	draining atomic.Bool
	versions *versionCache
}

// NewServer registers the operations on a fresh mux and wraps them in the
// middleware. Deps.Draining is set to the server's own switch.
func NewServer(d Deps, o Options) (*Server, error) {
	if o.Auth == nil {
		return nil, errors.New("httpapi: Options.Auth is nil; pass auth.Disabled() to serve without credentials")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Logger == nil {
		d.Logger = o.Logger
	}
	s := &Server{}
	d.Draining = s.draining.Load
	mux := http.NewServeMux()
	s.api = NewAPI(mux)
	// Middleware first: huma binds it when an operation registers.
	s.api.UseMiddleware(authenticate(s.api, o.Auth, o.RateLimit, o.Logger))
	v, err := newValidators(d, o)
	if err != nil {
		return nil, err
	}
	s.versions = v.versions
	d.series = newSeriesCache(v.versions)
	s.api.UseMiddleware(v.middleware)
	Register(s.api, d)
	if o.MetricsGatherer != nil {
		mux.Handle("GET /metrics", MetricsHandler(o.MetricsGatherer))
	}
	docsui.Register(mux, Title+" reference")
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, http.StatusNotFound, notFoundDetail, nil)
	})
	h := newHandlers(d)
	m, err := newMetrics(o.Metrics, o.Version, func() bool {
		_, err := h.ready(context.Background())
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	if s.handler, err = middleware(mux, o, m); err != nil {
		return nil, err
	}
	return s, nil
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// API returns the huma API, e.g. for its OpenAPI document.
func (s *Server) API() huma.API { return s.api }

// SetDatasetVersion tells the server the dataset's version changed (a load
// committed: store.ListenDatasetVersion); ETags and cached answers follow at
// once instead of at the next poll.
func (s *Server) SetDatasetVersion(v int64) { s.versions.set(v) }

// Drain makes /readyz fail from now on, ahead of shutdown.
func (s *Server) Drain() { s.draining.Store(true) }

// MetricsHandler serves the registry's metrics in the Prometheus format.
func MetricsHandler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}

// ctxLogger returns the logger with the request id of ctx, if any.
func (h *handlers) ctxLogger(ctx context.Context) *slog.Logger {
	if id := RequestID(ctx); id != "" {
		return h.log.With("request_id", id)
	}
	return h.log
}
