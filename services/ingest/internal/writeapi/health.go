package writeapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
)

// errDraining fails readiness once shutdown has begun, so a load balancer
// stops sending pushes before the listener closes.
var errDraining = errors.New("shutting down")

// HealthInput has no parameters.
type HealthInput struct{}

// HealthOutput is the answer of the probes.
type HealthOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		Status string `json:"status" example:"ok" doc:"ok (alive) or ready."`
	}
}

// public is the security of the probes: an explicit empty list, so the
// document says they need no credentials.
var public = []map[string][]string{}

func (h *handlers) registerHealth(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "healthz", Method: http.MethodGet, Path: "/healthz",
		Summary: "Liveness", Description: "The process serves HTTP; the database is not consulted.",
		Tags: []string{"operations"}, Security: public,
	}, func(context.Context, *HealthInput) (*HealthOutput, error) {
		out := &HealthOutput{CacheControl: "no-store"}
		out.Body.Status = "ok"
		return out, nil
	})
	huma.Register(api, huma.Operation{
		OperationID: "readyz", Method: http.MethodGet, Path: "/readyz",
		Summary:     "Readiness",
		Description: "The database answers a ping within 2s; fails once shutdown has begun.",
		Tags:        []string{"operations"}, Security: public,
		Errors: []int{http.StatusServiceUnavailable},
	}, func(ctx context.Context, _ *HealthInput) (*HealthOutput, error) {
		if h.Ready != nil {
			if err := h.Ready(); err != nil {
				return nil, huma.Error503ServiceUnavailable(err.Error())
			}
		}
		out := &HealthOutput{CacheControl: "no-store"}
		out.Body.Status = "ready"
		return out, nil
	})
}
