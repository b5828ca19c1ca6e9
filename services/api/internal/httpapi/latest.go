package httpapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sensorhub/sensorhub/db/scope"
	"github.com/sensorhub/sensorhub/services/api/internal/store"
)

// LatestInput selects the series of GET /v1/latest.
type LatestInput struct {
	DeviceID   string `query:"device_id" maxLength:"256" example:"device.foo" doc:"Only series of this device."`
	Prefix     string `query:"prefix" maxLength:"256" example:"tenantA." doc:"Only parameters that start with this prefix."`
	Timestamps string `query:"timestamps" enum:"original,utc" default:"original" doc:"Render times at the UTC offset they were recorded with (original) or in UTC."`
}

// LatestItem is the newest reading of one series.
type LatestItem struct {
	DeviceID  string    `json:"device_id" example:"device.foo" doc:"Device id."`
	Parameter string    `json:"parameter" example:"parameter.foo" doc:"Parameter name."`
	Type      string    `json:"type" enum:"numeric,text" doc:"Value type of the series."`
	Time      Timestamp `json:"time" doc:"Time of the reading."`
	Value     Value     `json:"value"`
}

// LatestList is the body of GET /v1/latest.
type LatestList struct {
	Readings []LatestItem `json:"readings" doc:"One reading per series that has any, by device and parameter."`
}

// LatestOutput is the response of GET /v1/latest.
type LatestOutput struct {
	Body LatestList
}

func (h *handlers) registerLatest(api huma.API) {
	huma.Register(api, authenticated(huma.Operation{
		OperationID: "latest-readings",
		Method:      http.MethodGet,
		Path:        "/v1/latest",
		Summary:     "Latest reading of each series",
		Description: "The newest reading of every series of a device and/or with a parameter prefix (all series when neither is given).",
		Tags:        []string{"readings"},
		Errors:      []int{http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusServiceUnavailable},
	}), h.latest)
}

func (h *handlers) latest(ctx context.Context, in *LatestInput) (*LatestOutput, error) {
	f := store.SeriesFilter{DeviceID: in.DeviceID, Prefix: in.Prefix}
	list, err := h.Store.Latest(ctx, scope.From(ctx), f, h.Limits.MaxPoints+1)
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	if len(list) > h.Limits.MaxPoints {
		return nil, invalidParam("prefix", in.Prefix, fmt.Sprintf("more than %d series match; narrow the list with device_id or prefix", h.Limits.MaxPoints))
	}
	utc := in.Timestamps == "utc"
	out := &LatestOutput{Body: LatestList{Readings: make([]LatestItem, 0, len(list))}}
	for i := range list {
		s := &list[i]
		out.Body.Readings = append(out.Body.Readings, LatestItem{
			DeviceID: s.DeviceID, Parameter: s.Parameter, Type: s.Type,
			Time: readingTime(s.Latest, utc), Value: Value{*s.Latest},
		})
	}
	return out, nil
}
