package httpapi

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/db"
	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/db/seed"
)

// TestAPI runs every read-only test against one database seeded with the
// reference dataset.
func TestAPI(t *testing.T) {
	r := loadReference(t)
	d := dbtest.New(t)
	start := time.Now()
	if err := seed.Load(t.Context(), d.Pool, r.readings); err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded %d readings in %v", len(r.readings), time.Since(start).Round(time.Millisecond))
	pool := openPool(t, d.DSN)
	ts := newTestServer(t, pool, nil)

	for name, fn := range map[string]func(*testing.T, *testServer, *reference){
		"devices":                 testDevices,
		"series":                  testSeries,
		"readings/pages":          testReadingsPages,
		"readings/cursor":         testReadingsCursor,
		"readings/bad input":      testReadingsBadInput,
		"readings/export":         testReadingsExport,
		"readings/empty":          testEmptyExport,
		"latest":                  testLatest,
		"aggregates":              testAggregates,
		"process_request/all":     testProcessRequestAll,
		"process_request/filters": testProcessRequestFilters,
		"process_request/errors":  testProcessRequestErrors,
		"health":                  testHealth,
		"request id":              testRequestID,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, ts, r)
		})
	}
	t.Run("metrics", func(t *testing.T) { t.Parallel(); testMetrics(t, pool) })
	t.Run("auth/credentials", func(t *testing.T) { t.Parallel(); testCredentials(t, pool) })
	t.Run("auth/tenants", func(t *testing.T) { t.Parallel(); testTenants(t, pool, r) })
	t.Run("auth/cursor replay", func(t *testing.T) { t.Parallel(); testCursorReplay(t, pool) })
	t.Run("hostile corpus", func(t *testing.T) { t.Parallel(); testHostileCorpus(t, pool, r) })
	t.Run("rate limit", func(t *testing.T) { t.Parallel(); testRateLimit(t, pool) })
	t.Run("etag", func(t *testing.T) { t.Parallel(); testETag(t, d, pool) })
	t.Run("limits", func(t *testing.T) { t.Parallel(); testLimits(t, pool, r) })
	t.Run("cors", func(t *testing.T) { t.Parallel(); testCORS(t, pool) })
	t.Run("draining", func(t *testing.T) {
		t.Parallel()
		s := newTestServer(t, pool, nil)
		s.getJSON(t, "/readyz", http.StatusOK, nil)
		s.Drain()
		s.wantProblem(t, "/readyz", http.StatusServiceUnavailable, "")
		if m := s.get(t, "/metrics"); !bytes.Contains(m.Body, []byte("\nsensorhub_api_ready 0\n")) {
			t.Error("sensorhub_api_ready is not 0 while draining")
		}
		s.getJSON(t, "/healthz", http.StatusOK, nil)
	})
	t.Run("reader role", func(t *testing.T) { t.Parallel(); testReaderRole(t, d) })
}

func testDevices(t *testing.T, ts *testServer, r *reference) {
	var got DeviceList
	ts.getJSON(t, "/v1/devices", http.StatusOK, &got)
	if len(got.Devices) != 2 || got.Devices[0].DeviceID != "device.bar" || got.Devices[1].DeviceID != "device.foo" {
		t.Fatalf("devices: %+v", got.Devices)
	}
	for _, dev := range got.Devices {
		first, last := time.Time{}, time.Time{}
		for _, it := range r.items {
			if it.Device != dev.DeviceID {
				continue
			}
			if first.IsZero() || it.Time.Before(first) {
				first = it.Time
			}
			if it.Time.After(last) {
				last = it.Time
			}
		}
		if dev.SeriesCount != 17 || dev.ReadingCount != 10_000 || !dev.FirstTime.Time.Equal(first) || !dev.LastTime.Time.Equal(last) {
			t.Errorf("device %+v: want 17 series, 10000 readings, %v..%v", dev, first, last)
		}
	}
}

// seriesItemJSON decodes a SeriesItem (whose Value and Timestamp types only marshal).
type seriesItemJSON struct {
	DeviceID  string `json:"device_id"`
	Parameter string `json:"parameter"`
	Type      string `json:"type"`
	Count     int    `json:"count"`
	FirstTime string `json:"first_time"`
	LastTime  string `json:"last_time"`
	Latest    *struct {
		Time  string          `json:"time"`
		Value json.RawMessage `json:"value"`
	} `json:"latest"`
}

func testSeries(t *testing.T, ts *testServer, r *reference) {
	list := func(query string) []seriesItemJSON {
		t.Helper()
		var body struct {
			Series []seriesItemJSON `json:"series"`
		}
		ts.getJSON(t, "/v1/series"+query, http.StatusOK, &body)
		return body.Series
	}
	all := list("")
	if len(all) != 34 {
		t.Fatalf("%d series, want 34", len(all))
	}
	for _, s := range all {
		want := r.series[seriesKey(s.DeviceID, s.Parameter)]
		if len(want) == 0 {
			t.Fatalf("series %s/%s is not in the reference", s.DeviceID, s.Parameter)
		}
		newest := want[len(want)-1]
		if s.Count != len(want) || s.Type != newest.Type || s.Latest == nil || s.Latest.Time != newest.Timestamp {
			t.Errorf("series %s/%s: count %d type %s latest %+v; want %d %s at %s", s.DeviceID, s.Parameter, s.Count, s.Type, s.Latest, len(want), newest.Type, newest.Timestamp)
			continue
		}
		checkValue(t, s.Latest.Value, newest)
		if first, _ := time.Parse(time.RFC3339Nano, s.FirstTime); !first.Equal(want[0].Time) || !strings.HasSuffix(s.FirstTime, "Z") {
			t.Errorf("series %s/%s: first_time %s, want %s in UTC", s.DeviceID, s.Parameter, s.FirstTime, want[0].Timestamp)
		}
	}

	names := func(items []seriesItemJSON) []string {
		var out []string
		for _, s := range items {
			out = append(out, s.DeviceID+"/"+s.Parameter)
		}
		return out
	}
	expect := func(keep func(device, parameter, typ string) bool) []string {
		var out []string
		for _, s := range all {
			if keep(s.DeviceID, s.Parameter, s.Type) {
				out = append(out, s.DeviceID+"/"+s.Parameter)
			}
		}
		return out
	}
	cases := map[string]func(device, parameter, typ string) bool{
		"?device_id=device.foo": func(d, _, _ string) bool { return d == "device.foo" },
		"?prefix=tenantA.":      func(_, p, _ string) bool { return strings.HasPrefix(p, "tenantA.") },
		"?prefix=tenantB.deviceBar.&device_id=device.bar": func(d, p, _ string) bool {
			return d == "device.bar" && strings.HasPrefix(p, "tenantB.deviceBar.")
		},
		"?type=text":    func(_, _, typ string) bool { return typ == "text" },
		"?type=numeric": func(_, _, typ string) bool { return typ == "numeric" },
	}
	for _, g := range []string{"parameter.*", "*.*", "tenantA.**", "**.thud", "*.*.*.ipsum.**", "tenantB.*.datasourceD.ipsum.*", "**.*.cat"} {
		cases["?glob="+url.QueryEscape(g)] = func(_, p, _ string) bool { return globMatch(g, p) }
	}
	for query, keep := range cases {
		want := expect(keep)
		if len(want) == 0 || len(want) == len(all) {
			t.Errorf("%s: the case selects %d series; pick one that discriminates", query, len(want))
		}
		if got := names(list(query)); !slices.Equal(got, want) {
			t.Errorf("%s: got %q, want %q", query, got, want)
		}
	}
	if got := list("?glob=**"); len(got) != len(all) {
		t.Errorf("glob ** matched %d series, want all %d", len(got), len(all))
	}
	if got := list("?glob=" + url.QueryEscape("parameter.(foo|bar)")); len(got) != 0 {
		t.Errorf("regex syntax in a glob is literal, yet matched %v", names(got))
	}
	ts.wantProblem(t, "/v1/series?type=blob", http.StatusUnprocessableEntity, "query.type")
	utc := list("?device_id=device.foo&timestamps=utc")
	if !strings.HasSuffix(utc[0].Latest.Time, "Z") {
		t.Errorf("timestamps=utc: latest time %s", utc[0].Latest.Time)
	}
}

// globMatch is the glob semantics written independently of the store's
// regular expression: segments split on '.', * matches within one, **
// matches any run of segments (and the dots between).
func globMatch(glob, name string) bool {
	if glob == "" {
		return name == ""
	}
	if strings.HasPrefix(glob, "**") {
		for i := 0; i <= len(name); i++ {
			if globMatch(glob[2:], name[i:]) {
				return true
			}
		}
		return false
	}
	if glob[0] == '*' {
		for i := 0; i <= len(name); i++ {
			if i > 0 && name[i-1] == '.' {
				break
			}
			if globMatch(glob[1:], name[i:]) {
				return true
			}
		}
		return false
	}
	return name != "" && name[0] == glob[0] && globMatch(glob[1:], name[1:])
}

// checkValue compares a JSON value with a reference reading: the same
// float64 for numbers, the same string for text.
func checkValue(t *testing.T, raw json.RawMessage, want refItem) {
	t.Helper()
	if want.Type == "text" {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil || s != want.Text {
			t.Errorf("%s/%s at %s: value %s, want %q", want.Device, want.Parameter, want.Timestamp, raw, want.Text)
		}
		return
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f != want.Num {
		t.Errorf("%s/%s at %s: value %s, want %v", want.Device, want.Parameter, want.Timestamp, raw, want.Num)
	}
}

type readingsPageJSON struct {
	DeviceID   string `json:"device_id"`
	Parameter  string `json:"parameter"`
	Type       string `json:"type"`
	Order      string `json:"order"`
	NextCursor string `json:"next_cursor"`
	Readings   []struct {
		Time  string          `json:"time"`
		Value json.RawMessage `json:"value"`
	} `json:"readings"`
}

// walk follows the Link headers from the first page of query and returns
// every page.
func walk(t *testing.T, ts *testServer, query string) []readingsPageJSON {
	t.Helper()
	var pages []readingsPageJSON
	path := "/v1/readings?" + query
	for path != "" {
		var p readingsPageJSON
		resp := ts.getJSON(t, path, http.StatusOK, &p)
		pages = append(pages, p)
		link := resp.Header.Get("Link")
		if (link == "") != (p.NextCursor == "") {
			t.Fatalf("%s: Link %q but next_cursor %q", path, link, p.NextCursor)
		}
		path = ""
		if link != "" {
			m := regexp.MustCompile(`^<([^>]+)>; rel="next"$`).FindStringSubmatch(link)
			if m == nil {
				t.Fatalf("Link header %q", link)
			}
			path = m[1]
			if u, _ := url.Parse(path); u.Query().Get("cursor") != p.NextCursor {
				t.Fatalf("Link %q does not carry next_cursor %q", link, p.NextCursor)
			}
		}
		if len(pages) > 1000 {
			t.Fatal("pagination does not end")
		}
	}
	return pages
}

func testReadingsPages(t *testing.T, ts *testServer, r *reference) {
	for _, k := range []string{seriesKey("device.foo", "parameter.foo"), seriesKey("device.bar", "parameter.cat"), seriesKey("device.bar", "tenantB.deviceBar.datasourceD.ipsum.chicken.licken")} {
		want := r.series[k]
		device, parameter, _ := strings.Cut(k, "\x00")
		for _, order := range []string{"asc", "desc"} {
			q := url.Values{"device_id": {device}, "parameter": {parameter}, "order": {order}, "limit": {"97"}}
			pages := walk(t, ts, q.Encode())
			var got []refItem
			for _, p := range pages {
				if p.DeviceID != device || p.Parameter != parameter || p.Order != order || p.Type != want[0].Type {
					t.Fatalf("page header %+v", p)
				}
				if len(p.Readings) > 97 {
					t.Fatalf("page of %d readings, limit 97", len(p.Readings))
				}
				for _, x := range p.Readings {
					got = append(got, refItem{Timestamp: x.Time})
				}
			}
			if wantPages := (len(want) + 96) / 97; len(pages) != wantPages {
				t.Errorf("%s %s: %d pages, want %d", parameter, order, len(pages), wantPages)
			}
			ordered := slices.Clone(want)
			if order == "desc" {
				slices.Reverse(ordered)
			}
			if len(got) != len(ordered) {
				t.Fatalf("%s %s: %d readings, want %d", parameter, order, len(got), len(ordered))
			}
			i := 0
			for _, p := range pages {
				for _, x := range p.Readings {
					// Byte for byte: the original +02:00 and all six digits.
					if x.Time != ordered[i].Timestamp {
						t.Fatalf("%s %s reading %d: time %s, want %s", parameter, order, i, x.Time, ordered[i].Timestamp)
					}
					checkValue(t, x.Value, ordered[i])
					i++
				}
			}
		}
	}

	// [from, to) is half-open, and timestamps=utc renders UTC.
	want := r.series[seriesKey("device.foo", "parameter.foo")]
	q := url.Values{"device_id": {"device.foo"}, "parameter": {"parameter.foo"},
		"from": {want[10].Timestamp}, "to": {want[20].Timestamp}, "timestamps": {"utc"}}
	var p readingsPageJSON
	ts.getJSON(t, "/v1/readings?"+q.Encode(), http.StatusOK, &p)
	if len(p.Readings) != 10 || p.NextCursor != "" {
		t.Fatalf("[from, to): %d readings (cursor %q), want 10", len(p.Readings), p.NextCursor)
	}
	first, _ := time.Parse(time.RFC3339Nano, p.Readings[0].Time)
	if !strings.HasSuffix(p.Readings[0].Time, "Z") || !first.Equal(want[10].Time) {
		t.Errorf("timestamps=utc: first %s, want %v in UTC", p.Readings[0].Time, want[10].Time.UTC())
	}
}

func testReadingsCursor(t *testing.T, ts *testServer, _ *reference) {
	base := url.Values{"device_id": {"device.foo"}, "parameter": {"parameter.foo"}, "limit": {"5"}}
	var p readingsPageJSON
	ts.getJSON(t, "/v1/readings?"+base.Encode(), http.StatusOK, &p)
	if p.NextCursor == "" {
		t.Fatal("no next_cursor on a full page")
	}
	with := func(change func(url.Values)) string {
		q := url.Values{}
		for k, v := range base {
			q[k] = slices.Clone(v)
		}
		q.Set("cursor", p.NextCursor)
		change(q)
		return "/v1/readings?" + q.Encode()
	}
	ts.getJSON(t, with(func(url.Values) {}), http.StatusOK, nil)

	tampered := []byte(p.NextCursor)
	tampered[len(tampered)/3] ^= 0x01
	for name, path := range map[string]string{
		"tampered":      with(func(q url.Values) { q.Set("cursor", string(tampered)) }),
		"truncated":     with(func(q url.Values) { q.Set("cursor", p.NextCursor[:len(p.NextCursor)-4]) }),
		"garbage":       with(func(q url.Values) { q.Set("cursor", "not-a-cursor") }),
		"other series":  with(func(q url.Values) { q.Set("parameter", "parameter.corge") }),
		"other device":  with(func(q url.Values) { q.Set("device_id", "device.bar"); q.Set("parameter", "parameter.baz") }),
		"other order":   with(func(q url.Values) { q.Set("order", "desc") }),
		"other range":   with(func(q url.Values) { q.Set("from", "2024-03-07T00:00:00Z") }),
		"foreign key":   with(func(q url.Values) { q.Set("cursor", foreignCursor(p.NextCursor)) }),
		"sql in cursor": with(func(q url.Values) { q.Set("cursor", "'; SELECT pg_sleep(10); --") }),
	} {
		t.Run(name, func(t *testing.T) { ts.wantProblem(t, path, http.StatusBadRequest, "query.cursor") })
	}
}

// foreignCursor re-signs a cursor's payload with another key, as another
// deployment would have.
func foreignCursor(c string) string {
	body, _, _ := strings.Cut(c, ".")
	return body + ".c2lnbmVkIHdpdGggYW5vdGhlciBrZXkgMDEyMzQ1Njc4OTAxMjM0"
}

func testReadingsBadInput(t *testing.T, ts *testServer, _ *reference) {
	ok := "device_id=device.foo&parameter=parameter.foo"
	for query, location := range map[string]string{
		"parameter=parameter.foo": "query.device_id",
		"device_id=device.foo":    "query.parameter",
		ok + "&limit=0":           "query.limit",
		ok + "&limit=10001":       "query.limit",
		ok + "&limit=ten":         "query.limit",
		ok + "&order=sideways":    "query.order",
		ok + "&from=yesterday":    "query.from",
		ok + "&to=2024-03-07":     "query.to",
		ok + "&timestamps=local":  "query.timestamps",
		ok + "&from=2024-03-08T00:00:00Z&to=2024-03-07T00:00:00Z": "query.to",
		ok + "&from=2024-03-07T00:00:00Z&to=2024-03-07T00:00:00Z": "query.to",
	} {
		ts.wantProblem(t, "/v1/readings?"+query, http.StatusUnprocessableEntity, location)
	}
	ts.wantProblem(t, "/v1/readings?device_id=device.foo&parameter=no.such.parameter", http.StatusNotFound, "query.parameter")
	ts.wantProblem(t, "/v1/readings?device_id=no.such.device&parameter=parameter.foo", http.StatusNotFound, "query.device_id")
	ts.wantProblem(t, "/v1/readings?device_id=no.such.device&parameter=parameter.foo", http.StatusNotFound, "", "Accept: text/csv")
}

func testReadingsExport(t *testing.T, ts *testServer, r *reference) {
	for _, k := range []string{seriesKey("device.foo", "parameter.foo"), seriesKey("device.foo", "parameter.bar")} {
		want := r.series[k]
		device, parameter, _ := strings.Cut(k, "\x00")
		q := url.Values{"device_id": {device}, "parameter": {parameter}, "limit": {"3"}}.Encode()

		resp := ts.get(t, "/v1/readings?"+q, "Accept: text/csv")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" {
			t.Fatalf("CSV export: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		rows, err := csv.NewReader(bytes.NewReader(resp.Body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != len(want)+1 || !slices.Equal(rows[0], []string{"device_id", "parameter", "timestamp", "value", "type"}) {
			t.Fatalf("CSV export of %s: %d rows (header %q), want %d readings and a header", parameter, len(rows), rows[0], len(want))
		}
		for i, row := range rows[1:] {
			w := want[i]
			if row[0] != device || row[1] != parameter || row[2] != w.Timestamp || row[4] != w.Type {
				t.Fatalf("CSV row %d: %q, want %s at %s", i, row, w.Type, w.Timestamp)
			}
			raw := json.RawMessage(row[3])
			if w.Type == "text" {
				raw, _ = json.Marshal(row[3])
			}
			checkValue(t, raw, w)
		}

		resp = ts.get(t, "/v1/readings?"+q+"&order=desc", "Accept: application/x-ndjson")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != mediaNDJSON {
			t.Fatalf("NDJSON export: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		sc := bufio.NewScanner(bytes.NewReader(resp.Body))
		n := 0
		for sc.Scan() {
			var line struct {
				DeviceID  string          `json:"device_id"`
				Parameter string          `json:"parameter"`
				Timestamp string          `json:"timestamp"`
				Value     json.RawMessage `json:"value"`
				Type      string          `json:"type"`
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatalf("NDJSON line %d: %v: %s", n, err, sc.Bytes())
			}
			w := want[len(want)-1-n]
			if line.DeviceID != device || line.Parameter != parameter || line.Timestamp != w.Timestamp || line.Type != w.Type {
				t.Fatalf("NDJSON line %d: %+v, want %s", n, line, w.Timestamp)
			}
			checkValue(t, line.Value, w)
			n++
		}
		if n != len(want) {
			t.Errorf("NDJSON export of %s: %d lines, want %d", parameter, n, len(want))
		}
	}
}

func testEmptyExport(t *testing.T, ts *testServer, _ *reference) {
	q := "/v1/readings?device_id=device.foo&parameter=parameter.foo&from=2030-01-01T00:00:00Z"
	if resp := ts.get(t, q, "Accept: text/csv"); resp.StatusCode != http.StatusOK || string(resp.Body) != "device_id,parameter,timestamp,value,type\n" {
		t.Errorf("empty CSV export: %d %q", resp.StatusCode, resp.Body)
	}
	if resp := ts.get(t, q, "Accept: application/x-ndjson"); resp.StatusCode != http.StatusOK || len(resp.Body) != 0 {
		t.Errorf("empty NDJSON export: %d %q", resp.StatusCode, resp.Body)
	}
	var p readingsPageJSON
	ts.getJSON(t, q, http.StatusOK, &p)
	if len(p.Readings) != 0 || p.Readings == nil || p.NextCursor != "" {
		t.Errorf("empty page: %+v", p)
	}
}

func testLatest(t *testing.T, ts *testServer, r *reference) {
	var body struct {
		Readings []struct {
			DeviceID  string          `json:"device_id"`
			Parameter string          `json:"parameter"`
			Type      string          `json:"type"`
			Time      string          `json:"time"`
			Value     json.RawMessage `json:"value"`
		} `json:"readings"`
	}
	ts.getJSON(t, "/v1/latest?device_id=device.foo", http.StatusOK, &body)
	if len(body.Readings) != 17 {
		t.Fatalf("%d latest readings of device.foo, want 17", len(body.Readings))
	}
	for _, x := range body.Readings {
		want := r.series[seriesKey(x.DeviceID, x.Parameter)]
		newest := want[len(want)-1]
		if x.DeviceID != "device.foo" || x.Time != newest.Timestamp || x.Type != newest.Type {
			t.Errorf("latest %s/%s at %s, want %s", x.DeviceID, x.Parameter, x.Time, newest.Timestamp)
		}
		checkValue(t, x.Value, newest)
	}
	ts.getJSON(t, "/v1/latest?prefix=tenantA.", http.StatusOK, &body)
	for _, x := range body.Readings {
		if !strings.HasPrefix(x.Parameter, "tenantA.") {
			t.Errorf("prefix tenantA.: got %s", x.Parameter)
		}
	}
	if len(body.Readings) == 0 {
		t.Error("prefix tenantA.: nothing")
	}
	ts.getJSON(t, "/v1/latest", http.StatusOK, &body)
	if len(body.Readings) != 34 {
		t.Errorf("latest of everything: %d, want 34", len(body.Readings))
	}
}

func testAggregates(t *testing.T, ts *testServer, r *reference) {
	want := r.series[seriesKey("device.foo", "parameter.foo")]
	lo, hi := want[0].Num, want[0].Num
	for _, w := range want {
		lo, hi = math.Min(lo, w.Num), math.Max(hi, w.Num)
	}
	var body struct {
		Source        string `json:"source"`
		Bucket        string `json:"bucket"`
		BucketSeconds int64  `json:"bucket_seconds"`
		TZ            string `json:"tz"`
		Series        []struct {
			Parameter string           `json:"parameter"`
			Points    []map[string]any `json:"points"`
		} `json:"series"`
	}
	q := "/v1/aggregates?device_id=device.foo&parameter=parameter.foo&from=2024-03-07T00:00:00Z&to=2024-03-08T00:00:00Z&bucket=1h&agg=count,min&agg=max"
	ts.getJSON(t, q, http.StatusOK, &body)
	if body.Bucket != "1h" || body.BucketSeconds != 3600 || body.TZ != "UTC" || len(body.Series) != 1 || body.Source == "" {
		t.Fatalf("aggregates: %+v", body)
	}
	var count float64
	gotLo, gotHi := math.Inf(1), math.Inf(-1)
	for _, p := range body.Series[0].Points {
		if len(p) != 4 {
			t.Errorf("point %v: want time, count, min and max only", p)
		}
		count += p["count"].(float64)
		gotLo, gotHi = math.Min(gotLo, p["min"].(float64)), math.Max(gotHi, p["max"].(float64))
	}
	if int(count) != len(want) || gotLo != lo || gotHi != hi {
		t.Errorf("aggregates: count %v min %v max %v; want %d %v %v", count, gotLo, gotHi, len(want), lo, hi)
	}

	// Null-filled buckets, a time zone, and text series' first/last validate too.
	ts.getJSON(t, "/v1/aggregates?device_id=device.foo&prefix=parameter.&from=2024-03-06T22:00:00Z&to=2024-03-07T22:00:00Z&bucket=3h&agg=count,first,last&fill=null&tz=Europe/Berlin", http.StatusOK, &body)
	if body.TZ != "Europe/Berlin" || len(body.Series) < 2 {
		t.Errorf("prefix parameter.: %+v", body)
	}

	ok := "device_id=device.foo&from=2024-03-07T00:00:00Z&to=2024-03-08T00:00:00Z"
	for query, location := range map[string]string{
		ok + "&parameter=parameter.bar&agg=avg":                 "query.agg", // avg of a text series
		ok + "&parameter=parameter.foo&agg=median":              "query.agg",
		ok + "&parameter=parameter.foo&tz=Mars/Olympus_Mons":    "query.tz",
		ok + "&parameter=parameter.foo&tz=Local":                "query.tz",
		ok + "&parameter=parameter.foo&bucket=7x":               "query.bucket",
		ok + "&parameter=parameter.foo&bucket=1m&max_points=10": "query.bucket",
		ok + "&parameter=parameter.foo&max_points=1000000":      "query.max_points",
		ok + "&parameter=parameter.foo&fill=spline":             "query.fill",
		ok: "query.parameter",
		ok + "&parameter=parameter.foo&prefix=parameter.":                                                "query.prefix",
		"device_id=device.foo&parameter=parameter.foo&to=2024-03-08T00:00:00Z":                           "query.from",
		"device_id=device.foo&parameter=parameter.foo&from=2024-03-08T00:00:00Z&to=2024-03-07T00:00:00Z": "query.to",
	} {
		ts.wantProblem(t, "/v1/aggregates?"+query, http.StatusUnprocessableEntity, location)
	}
	ts.wantProblem(t, "/v1/aggregates?"+strings.Replace(ok, "device.foo", "device.nope", 1)+"&parameter=parameter.foo", http.StatusNotFound, "query.parameter")
	ts.wantProblem(t, "/v1/aggregates?"+ok+"&glob=nothing.*", http.StatusNotFound, "query.glob")
}

type legacyJSON struct {
	Message   string `json:"message"`
	GraphData []struct {
		DeviceID  string          `json:"device_id"`
		Parameter string          `json:"parameter"`
		Timestamp string          `json:"timestamp"`
		Value     json.RawMessage `json:"value"`
	} `json:"graph_data"`
}

func getLegacy(t *testing.T, ts *testServer, query string, headers ...string) legacyJSON {
	t.Helper()
	var g legacyJSON
	resp := ts.getJSON(t, "/api/v1/core/process_request"+query, http.StatusOK, &g, headers...)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if g.Message == "" || g.GraphData == nil {
		t.Errorf("body lacks message or graph_data: %.300s", resp.Body)
	}
	return g
}

func testProcessRequestAll(t *testing.T, ts *testServer, r *reference) {
	g := getLegacy(t, ts, "")
	if len(g.GraphData) != len(r.items) || len(r.items) != 20_000 {
		t.Fatalf("%d items, want %d (the reference has %d)", len(g.GraphData), 20_000, len(r.items))
	}
	want := make(map[string]refItem, len(r.items))
	for _, it := range r.items {
		want[it.key()] = it
	}
	for i, x := range g.GraphData {
		k := refItem{Device: x.DeviceID, Parameter: x.Parameter, Timestamp: x.Timestamp}.key()
		w, ok := want[k]
		if !ok {
			t.Fatalf("item %d %s/%s at %s is not in the reference (or came twice)", i, x.DeviceID, x.Parameter, x.Timestamp)
		}
		delete(want, k)
		if !strings.HasSuffix(x.Timestamp, "+02:00") {
			t.Fatalf("item %d: timestamp %s lost its offset", i, x.Timestamp)
		}
		checkValue(t, x.Value, w)
	}
	if len(want) != 0 {
		t.Errorf("%d reference readings missing", len(want))
	}
	if !sort.SliceIsSorted(g.GraphData, func(i, j int) bool {
		a, b := g.GraphData[i], g.GraphData[j]
		return a.DeviceID < b.DeviceID || a.DeviceID == b.DeviceID && a.Parameter < b.Parameter
	}) {
		t.Error("graph_data is not ordered by device and parameter")
	}
}

func testProcessRequestFilters(t *testing.T, ts *testServer, r *reference) {
	count := func(keep func(refItem) bool) int {
		n := 0
		for _, it := range r.items {
			if keep(it) {
				n++
			}
		}
		return n
	}
	from, to := r.series[seriesKey("device.foo", "parameter.foo")][100].Time, r.series[seriesKey("device.foo", "parameter.foo")][200].Time
	for query, keep := range map[string]func(refItem) bool{
		"?device_id=device.bar": func(it refItem) bool { return it.Device == "device.bar" },
		"?device_id=device.bar&parameter=parameter.cat": func(it refItem) bool {
			return it.Device == "device.bar" && it.Parameter == "parameter.cat"
		},
		"?parameter=parameter.foo": func(it refItem) bool { return it.Parameter == "parameter.foo" },
		"?from=" + url.QueryEscape(from.Format(time.RFC3339Nano)) + "&to=" + url.QueryEscape(to.Format(time.RFC3339Nano)): func(it refItem) bool {
			return !it.Time.Before(from) && it.Time.Before(to)
		},
		"?device_id=device.foo&from=" + url.QueryEscape(from.Format(time.RFC3339Nano)): func(it refItem) bool {
			return it.Device == "device.foo" && !it.Time.Before(from)
		},
	} {
		g := getLegacy(t, ts, query)
		if want := count(keep); len(g.GraphData) != want || want == 0 {
			t.Errorf("%s: %d items, want %d", query, len(g.GraphData), want)
		}
	}
	if g := getLegacy(t, ts, "?limit=5"); len(g.GraphData) != 5 || g.Message != "Data available" {
		t.Errorf("limit=5: %d items, message %q", len(g.GraphData), g.Message)
	}
	if g := getLegacy(t, ts, "?device_id=no.such.device"); len(g.GraphData) != 0 || g.Message != "No data available" {
		t.Errorf("unknown device: %+v", g)
	}
	if g := getLegacy(t, ts, "?device_id="+url.QueryEscape("' OR '1'='1")); len(g.GraphData) != 0 {
		t.Errorf("SQL in device_id matched %d items", len(g.GraphData))
	}
}

func testProcessRequestErrors(t *testing.T, ts *testServer, _ *reference) {
	for _, query := range []string{
		"?from=yesterday",
		"?to=2024-03-07",
		"?from=2024-03-08T00:00:00Z&to=2024-03-07T00:00:00Z",
		"?from=2000-01-01T00:00:00Z&to=2024-03-07T00:00:00Z", // wider than the raw range limit
		"?limit=ten",
		"?limit=0",
		"?limit=-1",
		"?limit=100001",
		"?device_id=" + strings.Repeat("x", 257),
	} {
		resp := ts.get(t, "/api/v1/core/process_request"+query)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s, want 400 application/json", query, resp.StatusCode, resp.Header.Get("Content-Type"))
			continue
		}
		var body map[string]any
		if err := json.Unmarshal(resp.Body, &body); err != nil || len(body) != 1 || body["message"] == "" {
			t.Errorf("%s: body %s, want only a message", query, resp.Body)
		}
	}
}

func testHealth(t *testing.T, ts *testServer, _ *reference) {
	var h HealthBody
	ts.getJSON(t, "/healthz", http.StatusOK, &h)
	if h.Status != "ok" {
		t.Errorf("healthz: %+v", h)
	}
	ts.getJSON(t, "/readyz", http.StatusOK, &h)
	if h.Status != "ready" || h.SchemaVersion != db.ExpectedVersion() {
		t.Errorf("readyz: %+v, want schema version %d", h, db.ExpectedVersion())
	}
	ts.wantProblem(t, "/no/such/endpoint", http.StatusNotFound, "")
	for _, p := range []string{"/openapi.json", "/openapi.yaml", "/openapi-3.0.yaml", "/docs"} {
		if resp := ts.get(t, p); resp.StatusCode != http.StatusOK || len(resp.Body) == 0 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
}

func testRequestID(t *testing.T, ts *testServer, _ *reference) {
	if got := ts.get(t, "/healthz", "X-Request-Id: abc-123").Header.Get("X-Request-Id"); got != "abc-123" {
		t.Errorf("X-Request-Id echoed as %q", got)
	}
	if got := ts.get(t, "/healthz").Header.Get("X-Request-Id"); len(got) != 24 {
		t.Errorf("generated X-Request-Id %q", got)
	}
	if got := ts.get(t, "/healthz", "X-Request-Id: "+strings.Repeat("x", 200)).Header.Get("X-Request-Id"); len(got) != 24 {
		t.Errorf("overlong X-Request-Id was not replaced: %q", got)
	}
}

func testMetrics(t *testing.T, pool *pgxpool.Pool) {
	ts := newTestServer(t, pool, nil)
	ts.get(t, "/v1/readings?device_id=device.foo&parameter=parameter.foo&limit=1")
	ts.get(t, "/v1/readings?device_id=device.bar&parameter=nope")
	ts.get(t, "/no/such/path/device.foo")
	ts.get(t, "/v1/readings?device_id=device.foo&parameter=parameter.foo", "Accept: text/csv")
	resp := ts.get(t, "/metrics")
	text := string(resp.Body)
	for _, want := range []string{
		`sensorhub_http_requests_total{code="200",method="GET",route="/v1/readings"} 1`,
		`sensorhub_http_requests_total{code="404",method="GET",route="/v1/readings"} 1`,
		`sensorhub_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`sensorhub_http_request_duration_seconds_bucket{method="GET",route="/v1/readings",le="+Inf"} 2`,
		`sensorhub_http_requests_in_flight 1`,
		`sensorhub_http_requests_total{code="200",method="GET",route="/v1/readings:export"} 1`,
		`sensorhub_api_ready 1`,
		`sensorhub_db_pool_max_conns 8`,
		"sensorhub_db_pool_acquired_conns ", // the pool is shared with parallel tests
		`sensorhub_rollup_pending_ranges 0`,
		`sensorhub_rollup_pending_oldest_age_seconds 0`,
		`sensorhub_dataset_last_load_timestamp_seconds 1.`,
		`sensorhub_db_pool_acquire_wait_seconds_total `,
		`sensorhub_http_response_size_bytes_count{method="GET",route="/v1/readings"} 2`,
		`sensorhub_build_info{goversion="go`,
		`sensorhub_db_query_duration_seconds_count{operation="readings"} 1`,
		`sensorhub_db_query_duration_seconds_count{operation="export_open"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// The status code label is "code", as in promhttp, never "status".
	if strings.Contains(text, `status="`) {
		t.Errorf("/metrics has a status label:\n%s", text)
	}
	for _, leak := range []string{"device.foo", "device.bar", "parameter.foo", "/no/such", "?"} {
		if strings.Contains(text, leak) {
			t.Errorf("/metrics contains %q", leak)
		}
	}
}

func testLimits(t *testing.T, pool *pgxpool.Pool, r *reference) {
	small := newTestServer(t, pool, func(d *Deps, _ *Options) { d.Limits.MaxPoints = 1000 })
	g := getLegacy(t, small, "")
	if len(g.GraphData) != 1000 || !strings.Contains(g.Message, "first 1000") {
		t.Errorf("capped process_request: %d items, message %q", len(g.GraphData), g.Message)
	}
	var p readingsPageJSON
	small.getJSON(t, "/v1/readings?device_id=device.foo&parameter=parameter.foo&limit=10000", http.StatusOK, &p)
	if len(p.Readings) > 1000 {
		t.Errorf("page of %d readings beyond max points 1000", len(p.Readings))
	}

	// A request timeout answers 503 with a problem; exports are exempt.
	hurried := newTestServer(t, pool, func(_ *Deps, o *Options) { o.RequestTimeout = time.Nanosecond })
	hurried.wantProblem(t, "/v1/devices", http.StatusServiceUnavailable, "")
	resp := hurried.get(t, "/v1/readings?device_id=device.foo&parameter=parameter.foo", "Accept: text/csv")
	if want := len(r.series[seriesKey("device.foo", "parameter.foo")]) + 1; resp.StatusCode != http.StatusOK || bytes.Count(resp.Body, []byte("\n")) != want {
		t.Errorf("export under a 1ns request timeout: %d, %d lines, want %d", resp.StatusCode, bytes.Count(resp.Body, []byte("\n")), want)
	}
}

func testCORS(t *testing.T, pool *pgxpool.Pool) {
	ts := newTestServer(t, pool, func(_ *Deps, o *Options) { o.CORSOrigins = []string{"https://app.example"} })
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodOptions, ts.url+"/v1/devices", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "GET") {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if got := ts.get(t, "/v1/devices", "Origin: https://app.example").Header.Get("Access-Control-Allow-Origin"); got != "https://app.example" {
		t.Errorf("allowed origin: Access-Control-Allow-Origin %q", got)
	}
	if got := ts.get(t, "/v1/devices", "Origin: https://evil.example").Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("other origin: Access-Control-Allow-Origin %q", got)
	}
}

// testReaderRole runs the API as a member of sensorhub_reader, which must
// be able to serve everything and write nothing.
func testReaderRole(t *testing.T, d *dbtest.DB) {
	dsn := d.RoleDSN(t, "sensorhub_reader")
	ts := newTestServer(t, openPool(t, dsn), nil)
	ts.getJSON(t, "/readyz", http.StatusOK, nil)
	ts.getJSON(t, "/v1/devices", http.StatusOK, nil)
	ts.getJSON(t, "/v1/series?glob=**", http.StatusOK, nil)
	ts.getJSON(t, "/v1/readings?device_id=device.foo&parameter=parameter.foo", http.StatusOK, nil)
	ts.getJSON(t, "/v1/aggregates?device_id=device.foo&parameter=parameter.foo&from=2024-03-07T00:00:00Z&to=2024-03-08T00:00:00Z", http.StatusOK, nil)
	if resp := ts.get(t, "/v1/readings?device_id=device.foo&parameter=parameter.foo", "Accept: text/csv"); resp.StatusCode != http.StatusOK {
		t.Errorf("export as reader: %d", resp.StatusCode)
	}
	getLegacy(t, ts, "?limit=10")

	// A plain pool (without the API's read-only default): privileges alone
	// must refuse writes.
	raw, err := pgxpool.New(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, stmt := range []string{
		`INSERT INTO sensorhub.readings (series_id, time, utc_offset_min, value_num) SELECT series_id, now(), 0, 1 FROM sensorhub.series LIMIT 1`,
		`INSERT INTO sensorhub.series (device_id, parameter, value_type) VALUES ('x', 'y', 'numeric')`,
		`UPDATE sensorhub.series SET reading_count = 0`,
		`DELETE FROM sensorhub.readings`,
	} {
		_, err := raw.Exec(t.Context(), stmt)
		var pg *pgconn.PgError
		if !errors.As(err, &pg) || pg.Code != "42501" {
			t.Errorf("%s as sensorhub_reader: %v, want insufficient_privilege (42501)", stmt, err)
		}
	}
}

// TestReadyzUnreachable: a database that does not answer makes readiness
// and data requests fail with 503, while liveness holds.
func TestReadyzUnreachable(t *testing.T) {
	pool := openPool(t, fmt.Sprintf("postgres://nobody@%s/nothing?connect_timeout=2&sslmode=disable", closedAddr(t)))
	ts := newTestServer(t, pool, nil)
	ts.getJSON(t, "/healthz", http.StatusOK, nil)
	start := time.Now()
	ts.wantProblem(t, "/readyz", http.StatusServiceUnavailable, "")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("readyz took %v", d)
	}
	ts.wantProblem(t, "/v1/devices", http.StatusServiceUnavailable, "")
	resp := ts.get(t, "/api/v1/core/process_request")
	if resp.StatusCode != http.StatusServiceUnavailable || !bytes.HasPrefix(resp.Body, []byte(`{"message":`)) {
		t.Errorf("process_request without a database: %d %s", resp.StatusCode, resp.Body)
	}
}

// closedAddr returns a local address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
