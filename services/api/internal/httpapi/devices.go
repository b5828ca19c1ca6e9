package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sensorhub/sensorhub/db/scope"
)

// DeviceItem is one device of GET /v1/devices.
type DeviceItem struct {
	DeviceID     string     `json:"device_id" example:"device.foo" doc:"Device id."`
	SeriesCount  int        `json:"series_count" example:"17" doc:"Number of series (parameters) of the device."`
	ReadingCount int64      `json:"reading_count" example:"10000" doc:"Number of readings over all its series."`
	FirstTime    *Timestamp `json:"first_time,omitempty" doc:"Time of its first reading, UTC; absent while it has none."`
	LastTime     *Timestamp `json:"last_time,omitempty" doc:"Time of its last reading, UTC; absent while it has none."`
}

// DeviceList is the body of GET /v1/devices.
type DeviceList struct {
	Devices []DeviceItem `json:"devices" doc:"Devices by id."`
}

// DevicesInput has no parameters.
type DevicesInput struct{}

// DevicesOutput is the response of GET /v1/devices.
type DevicesOutput struct {
	Body DeviceList
}

func (h *handlers) registerDevices(api huma.API) {
	huma.Register(api, authenticated(huma.Operation{
		OperationID: "list-devices",
		Method:      http.MethodGet,
		Path:        "/v1/devices",
		Summary:     "List devices",
		Description: "Every device with its number of series and readings and the time span they cover.",
		Tags:        []string{"readings"},
		Errors:      []int{http.StatusBadRequest, http.StatusServiceUnavailable},
	}), h.listDevices)
}

func (h *handlers) listDevices(ctx context.Context, _ *DevicesInput) (*DevicesOutput, error) {
	devices, err := h.Store.Devices(ctx, scope.From(ctx))
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	out := &DevicesOutput{Body: DeviceList{Devices: make([]DeviceItem, 0, len(devices))}}
	for _, d := range devices {
		out.Body.Devices = append(out.Body.Devices, DeviceItem{
			DeviceID: d.ID, SeriesCount: d.SeriesCount, ReadingCount: d.ReadingCount,
			FirstTime: utcTimePtr(d.FirstTime), LastTime: utcTimePtr(d.LastTime),
		})
	}
	return out, nil
}
