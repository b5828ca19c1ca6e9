package httpapi

import (
	"context"
	"net/http"
	"reflect"
	"strconv"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sensorhub/sensorhub/db/scope"
	"github.com/sensorhub/sensorhub/services/api/internal/store"
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

// DevicesOutput is the response of GET /v1/devices; its body, a DeviceList,
// is written by hand (appendDevices): through encoding/json each device cost
// about 2 us, most of it the two timestamps' MarshalJSON and the check of
// their output, so that the answer grew with the devices (bench/scale.sh:
// 0.14 ms for 4, 0.27 ms for 64).
type DevicesOutput struct {
	Body func(huma.Context)
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
		Responses: map[string]*huma.Response{
			"200": {Description: "OK", Content: map[string]*huma.MediaType{
				mediaJSON: {Schema: api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[DeviceList](), true, "DeviceList")},
			}},
		},
	}), h.listDevices)
}

func (h *handlers) listDevices(ctx context.Context, _ *DevicesInput) (*DevicesOutput, error) {
	devices, err := h.Store.Devices(ctx, scope.From(ctx))
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return &DevicesOutput{Body: func(hctx huma.Context) {
		buf := getBuffer()
		defer putBuffer(buf)
		*buf = appendDevices((*buf)[:0], devices)
		writeJSON(hctx, *buf)
	}}, nil
}

// appendDevices appends devices as a DeviceList (the bytes encoding/json
// wrote for it, newline included, as huma's encoder ends bodies).
func appendDevices(b []byte, devices []store.Device) []byte {
	b = append(b, `{"devices":[`...)
	for i, d := range devices {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"device_id":`...)
		b = appendString(b, d.ID)
		b = append(b, `,"series_count":`...)
		b = strconv.AppendInt(b, int64(d.SeriesCount), 10)
		b = append(b, `,"reading_count":`...)
		b = strconv.AppendInt(b, d.ReadingCount, 10)
		if ts := utcTimePtr(d.FirstTime); ts != nil {
			b = append(b, `,"first_time":`...)
			b = appendTimestamp(b, *ts)
		}
		if ts := utcTimePtr(d.LastTime); ts != nil {
			b = append(b, `,"last_time":`...)
			b = appendTimestamp(b, *ts)
		}
		b = append(b, '}')
	}
	return append(b, "]}\n"...)
}
