package httpapi

import (
	"math"
	"net/url"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/db/seed"
)

// TestEndpointsOnDSTDataset runs every data endpoint over two weeks of
// readings that cross Europe/Berlin's change to summer time (2024-03-31),
// written with the offsets a Berlin device would use (+01:00, then +02:00),
// and checks each answer against the generated readings.
func TestEndpointsOnDSTDataset(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2024, 3, 25, 0, 0, 0, 0, berlin)
	to := time.Date(2024, 4, 8, 0, 0, 0, 0, berlin)
	var readings []seed.Reading
	params := []string{"site.temp", "site.humidity", "site.state"}
	for i, tm := 0, from; tm.Before(to); i, tm = i+1, tm.Add(7*time.Minute+time.Duration(i%5)*time.Second) {
		local := tm.In(berlin) // keeps the Berlin offset of that instant
		_, off := local.Zone()
		stamp := local.In(time.FixedZone("", off)).Add(123456 * time.Microsecond)
		for j, p := range params {
			r := seed.Reading{DeviceID: "dev.berlin", Parameter: p, Time: stamp}
			if p == "site.state" {
				r.Text = seed.Text([]string{"ok", "warn", "fail"}[(i+j)%3])
			} else {
				r.Num = seed.Num(float64((i*37+j*11)%1000)/7 + 0.25)
			}
			readings = append(readings, r)
		}
	}
	d := dbtest.New(t)
	if err := seed.Load(t.Context(), d.Pool, readings); err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, openPool(t, d.DSN), nil)
	perSeries := len(readings) / len(params)

	var devices struct {
		Devices []struct {
			DeviceID     string `json:"device_id"`
			SeriesCount  int    `json:"series_count"`
			ReadingCount int64  `json:"reading_count"`
		} `json:"devices"`
	}
	ts.getJSON(t, "/v1/devices", 200, &devices)
	if len(devices.Devices) != 1 || devices.Devices[0].SeriesCount != 3 || devices.Devices[0].ReadingCount != int64(len(readings)) {
		t.Errorf("devices: %+v; want dev.berlin with 3 series and %d readings", devices.Devices, len(readings))
	}

	var series struct {
		Series []struct {
			Parameter string `json:"parameter"`
			Type      string `json:"type"`
			Count     int64  `json:"count"`
		} `json:"series"`
	}
	ts.getJSON(t, "/v1/series?device_id=dev.berlin&prefix=site.", 200, &series)
	if len(series.Series) != 3 {
		t.Fatalf("series: %+v", series.Series)
	}
	for _, s := range series.Series {
		if s.Count != int64(perSeries) || (s.Type == "text") != (s.Parameter == "site.state") {
			t.Errorf("series %+v; want %d readings and the right type", s, perSeries)
		}
	}

	// Every reading of one series exactly once, with the offset it was written with.
	want := map[string]float64{}
	for _, r := range readings {
		if r.Parameter == "site.temp" {
			want[r.Time.Format("2006-01-02T15:04:05.000000Z07:00")] = *r.Num
		}
	}
	path := "/v1/readings?device_id=dev.berlin&parameter=site.temp&limit=997"
	seen := 0
	for path != "" {
		var page struct {
			Readings []struct {
				Time  string  `json:"time"`
				Value float64 `json:"value"`
			} `json:"readings"`
			NextCursor string `json:"next_cursor"`
		}
		ts.getJSON(t, path, 200, &page)
		for _, r := range page.Readings {
			v, ok := want[r.Time]
			if !ok || v != r.Value {
				t.Fatalf("reading %s = %v: not in the dataset as written (offset kept?)", r.Time, r.Value)
			}
			delete(want, r.Time)
			seen++
		}
		path = ""
		if page.NextCursor != "" {
			path = "/v1/readings?device_id=dev.berlin&parameter=site.temp&limit=997&cursor=" + url.QueryEscape(page.NextCursor)
		}
	}
	if seen != perSeries || len(want) != 0 {
		t.Errorf("pagination returned %d readings, %d never came", seen, len(want))
	}

	// Calendar days in Berlin: 31 March has 23 hours. Served from rollup_1h
	// (whole-hour offsets), equal to a computation from the readings.
	type day struct {
		n             int64
		sum, min, max float64
	}
	days := map[string]*day{}
	for _, r := range readings {
		if r.Parameter != "site.temp" {
			continue
		}
		k := r.Time.In(berlin).Format("2006-01-02")
		x := days[k]
		if x == nil {
			x = &day{min: math.Inf(1), max: math.Inf(-1)}
			days[k] = x
		}
		x.n++
		x.sum += *r.Num
		x.min, x.max = math.Min(x.min, *r.Num), math.Max(x.max, *r.Num)
	}
	q := url.Values{"device_id": {"dev.berlin"}, "parameter": {"site.temp"}, "bucket": {"1d"}, "tz": {"Europe/Berlin"},
		"agg": {"count,avg,min,max"}, "from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}
	var agg struct {
		Source string `json:"source"`
		Series []struct {
			Points []struct {
				Time  string  `json:"time"`
				Count int64   `json:"count"`
				Avg   float64 `json:"avg"`
				Min   float64 `json:"min"`
				Max   float64 `json:"max"`
			} `json:"points"`
		} `json:"series"`
	}
	ts.getJSON(t, "/v1/aggregates?"+q.Encode(), 200, &agg)
	if agg.Source != "rollup_1h" {
		t.Errorf("Berlin days served from %s, want rollup_1h", agg.Source)
	}
	if len(agg.Series) != 1 || len(agg.Series[0].Points) != len(days) {
		t.Fatalf("aggregates: %d series, want 1 with %d days", len(agg.Series), len(days))
	}
	for _, p := range agg.Series[0].Points {
		start, err := time.Parse(time.RFC3339Nano, p.Time)
		if err != nil {
			t.Fatal(err)
		}
		x := days[start.In(berlin).Format("2006-01-02")]
		if x == nil || p.Count != x.n || p.Min != x.min || p.Max != x.max || math.Abs(p.Avg-x.sum/float64(x.n)) > 1e-9*math.Abs(p.Avg) {
			t.Errorf("day %s: %+v; want %+v", p.Time, p, x)
		}
		if start.In(berlin).Hour() != 0 {
			t.Errorf("day bucket %s does not start at Berlin midnight", p.Time)
		}
	}

	var latest struct {
		Readings []struct {
			Parameter string `json:"parameter"`
			Time      string `json:"time"`
		} `json:"readings"`
	}
	ts.getJSON(t, "/v1/latest?device_id=dev.berlin", 200, &latest)
	last := readings[len(readings)-1].Time.Format("2006-01-02T15:04:05.000000Z07:00")
	if len(latest.Readings) != 3 || latest.Readings[0].Time != last {
		t.Errorf("latest: %+v; want 3 series at %s (+02:00 after the change)", latest.Readings, last)
	}

	var legacy struct {
		GraphData []struct {
			Timestamp string `json:"timestamp"`
		} `json:"graph_data"`
	}
	ts.getJSON(t, "/api/v1/core/process_request?device_id=dev.berlin&parameter=site.state", 200, &legacy)
	offsets := map[string]int{}
	for _, g := range legacy.GraphData {
		offsets[g.Timestamp[len(g.Timestamp)-6:]]++
	}
	if len(legacy.GraphData) != perSeries || offsets["+01:00"] == 0 || offsets["+02:00"] == 0 {
		t.Errorf("process_request: %d items, offsets %v; want %d with both +01:00 and +02:00", len(legacy.GraphData), offsets, perSeries)
	}
}
