package httpapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sensorhub/sensorhub/db/scope"
	"github.com/sensorhub/sensorhub/services/api/internal/store"
)

// SeriesInput filters GET /v1/series; filters combine with AND.
type SeriesInput struct {
	DeviceID   string `query:"device_id" maxLength:"256" example:"device.foo" doc:"Only series of this device."`
	Prefix     string `query:"prefix" maxLength:"256" example:"tenantA." doc:"Only parameters that start with this prefix."`
	Glob       string `query:"glob" maxLength:"256" example:"tenantA.*.datasourceC.**" doc:"Only parameters whose dotted name matches this glob: * matches any run of characters within one segment (no '.'), ** any run including dots; every other character is literal."`
	Type       string `query:"type" enum:"numeric,text" doc:"Only series of this value type."`
	Timestamps string `query:"timestamps" enum:"original,utc" default:"original" doc:"Render the latest reading's time at the UTC offset it was recorded with (original) or in UTC."`
}

// LatestValue is a series' newest reading.
type LatestValue struct {
	Time  Timestamp `json:"time" doc:"Time of the reading."`
	Value Value     `json:"value"`
}

// SeriesItem is one series of GET /v1/series.
type SeriesItem struct {
	DeviceID  string       `json:"device_id" example:"device.foo" doc:"Device id."`
	Parameter string       `json:"parameter" example:"parameter.foo" doc:"Parameter name (dotted)."`
	Type      string       `json:"type" enum:"numeric,text" doc:"Value type of every reading of the series."`
	Count     int64        `json:"count" example:"588" doc:"Number of readings."`
	FirstTime *Timestamp   `json:"first_time,omitempty" doc:"Time of the first reading, UTC; absent while there is none."`
	LastTime  *Timestamp   `json:"last_time,omitempty" doc:"Time of the last reading, UTC; absent while there is none."`
	Latest    *LatestValue `json:"latest,omitempty" doc:"The newest reading; absent while there is none."`
}

// SeriesList is the body of GET /v1/series.
type SeriesList struct {
	Series []SeriesItem `json:"series" doc:"Matching series by device and parameter."`
}

// SeriesOutput is the response of GET /v1/series.
type SeriesOutput struct {
	Body SeriesList
}

func (h *handlers) registerSeries(api huma.API) {
	huma.Register(api, authenticated(huma.Operation{
		OperationID: "list-series",
		Method:      http.MethodGet,
		Path:        "/v1/series",
		Summary:     "List series",
		Description: "Series (device, parameter pairs) with their type, time span, count and newest reading.",
		Tags:        []string{"readings"},
		Errors:      []int{http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusServiceUnavailable},
	}), h.listSeries)
}

func (h *handlers) listSeries(ctx context.Context, in *SeriesInput) (*SeriesOutput, error) {
	f := store.SeriesFilter{DeviceID: in.DeviceID, Prefix: in.Prefix, Glob: in.Glob, Type: in.Type}
	list, err := h.Store.ListSeriesLatest(ctx, scope.From(ctx), f, h.Limits.MaxPoints+1)
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	if len(list) > h.Limits.MaxPoints {
		return nil, invalidParam("prefix", in.Prefix, fmt.Sprintf("more than %d series match; narrow the list with device_id, prefix or glob", h.Limits.MaxPoints))
	}
	utc := in.Timestamps == "utc"
	out := &SeriesOutput{Body: SeriesList{Series: make([]SeriesItem, 0, len(list))}}
	for i := range list {
		s := &list[i]
		item := SeriesItem{
			DeviceID: s.DeviceID, Parameter: s.Parameter, Type: s.Type, Count: s.Count,
			FirstTime: utcTimePtr(s.FirstTime), LastTime: utcTimePtr(s.LastTime),
		}
		if s.Latest != nil {
			item.Latest = &LatestValue{Time: readingTime(s.Latest, utc), Value: Value{*s.Latest}}
		}
		out.Body.Series = append(out.Body.Series, item)
	}
	return out, nil
}
