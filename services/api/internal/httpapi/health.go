package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sensorhub/sensorhub/db"
)

// readyTimeout bounds the readiness check's database round trip.
const readyTimeout = 2 * time.Second

// HealthInput has no parameters.
type HealthInput struct{}

// HealthBody is the body of the probes.
type HealthBody struct {
	Status                string `json:"status" example:"ok" doc:"ok (alive) or ready."`
	SchemaVersion         int64  `json:"schema_version,omitempty" example:"5" doc:"Newest schema version applied to the database (readyz)."`
	ExpectedSchemaVersion int64  `json:"expected_schema_version,omitempty" example:"5" doc:"Schema version this build was written for (readyz); the database may be newer, as migrations only add."`
}

// HealthOutput is the response of the probes.
type HealthOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         HealthBody
}

// public is the security of an operation that needs no credentials: an
// explicit empty list, so the document says so instead of leaving it out.
var public = []map[string][]string{}

func (h *handlers) registerHealth(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "healthz",
		Method:      http.MethodGet,
		Path:        "/healthz",
		Summary:     "Liveness",
		Description: "The process serves HTTP; the database is not consulted.",
		Tags:        []string{"operations"},
		Security:    public,
	}, func(context.Context, *HealthInput) (*HealthOutput, error) {
		return &HealthOutput{CacheControl: "no-store", Body: HealthBody{Status: "ok"}}, nil
	})
	huma.Register(api, huma.Operation{
		OperationID: "readyz",
		Method:      http.MethodGet,
		Path:        "/readyz",
		Summary:     "Readiness",
		Security:    public,
		Description: "The database answers within 2s and its schema is at least the version this build expects (a newer schema serves " +
			"older code, as migrations only add); fails once shutdown has begun.",
		Tags:   []string{"operations"},
		Errors: []int{http.StatusBadRequest, http.StatusServiceUnavailable},
	}, h.readyz)
}

func (h *handlers) readyz(ctx context.Context, _ *HealthInput) (*HealthOutput, error) {
	v, err := h.ready(ctx)
	if err != nil {
		return nil, huma.Error503ServiceUnavailable(err.Error())
	}
	return &HealthOutput{CacheControl: "no-store", Body: HealthBody{Status: "ready", SchemaVersion: v, ExpectedSchemaVersion: db.ExpectedVersion()}}, nil
}

// ready returns the schema version, or why the server should not take
// traffic: shutdown has begun, the database does not answer within
// readyTimeout, or its schema is older than this build expects. A newer
// schema is fine: migrations only add, so during a rolling deploy the
// previous build keeps serving after the new one migrated.
func (h *handlers) ready(ctx context.Context) (int64, error) {
	if h.Draining != nil && h.Draining() {
		return 0, errors.New("shutting down")
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	v, err := h.Store.SchemaVersion(ctx)
	if err != nil {
		h.ctxLogger(ctx).Warn("not ready: database check failed", "err", err)
		return 0, errors.New("database unreachable")
	}
	if want := db.ExpectedVersion(); v < want {
		return 0, fmt.Errorf("database schema is at version %d, older than the %d this build expects: run migrate", v, want)
	}
	return v, nil
}
