package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/db/seed"
	"github.com/sensorhub/sensorhub/services/api/internal/auth"
)

// The fuzz targets drive the real handler (middleware, huma's parameter
// binding, the operations' checks, the store's SQL) on a small database
// seeded once per fuzzing process, with query parameters the fuzzer
// chooses. Whatever they are, the answer is never a 5xx and never a panic
// (which the handler would turn into a 500).

// fuzzHandler serves the API on a fresh database holding a few series
// across the spring-forward change of Europe/Berlin (2024-03-31).
func fuzzHandler(f *testing.F) http.Handler {
	f.Helper()
	d := dbtest.New(f)
	start := time.Date(2024, 3, 29, 22, 3, 0, 0, time.FixedZone("", 3600))
	var rs []seed.Reading
	for i := range 700 {
		at := start.Add(time.Duration(i) * 7 * time.Minute)
		rs = append(rs,
			seed.Reading{DeviceID: "d1", Parameter: "p.num", Time: at, Num: seed.Num(float64(i%97) - 40.5)},
			seed.Reading{DeviceID: "d1", Parameter: "p.text", Time: at, Text: seed.Text(fmt.Sprint("state-", i%5))},
			seed.Reading{DeviceID: "d1", Parameter: "t.a.x", Time: at.Add(time.Second), Num: seed.Num(1e99 / float64(i+1))},
			seed.Reading{DeviceID: "d2", Parameter: "p.num", Time: at.Add(3 * time.Minute), Num: seed.Num(float64(i))},
		)
	}
	if err := seed.Load(f.Context(), d.Pool, rs); err != nil {
		f.Fatal(err)
	}
	deps := testDeps(openPool(f, d.DSN))
	deps.Limits = Limits{MaxPoints: 5000, MaxRawRange: 7 * 24 * time.Hour}
	s, err := NewServer(deps, Options{Auth: auth.Disabled(), RequestTimeout: 10 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	return s.Handler()
}

// serveFuzz requests path with query (url-encoded values, then raw, which
// may be anything) and fails on a 5xx.
func serveFuzz(t *testing.T, h http.Handler, path string, q url.Values, raw string, headers ...string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.URL.RawQuery = q.Encode()
	if raw != "" {
		req.URL.RawQuery += "&" + raw
	}
	for _, hdr := range headers {
		name, value, _ := strings.Cut(hdr, ": ")
		req.Header.Set(name, value)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code >= 500 {
		t.Fatalf("GET %s?%s: %d %.1000s", path, req.URL.RawQuery, rec.Code, rec.Body.String())
	}
}

func setNonEmpty(q url.Values, name, value string) {
	if value != "" {
		q.Set(name, value)
	}
}

func FuzzAggregatesQuery(f *testing.F) {
	h := fuzzHandler(f)
	for _, s := range [][10]string{
		{"d1", "p.num", "", "", "2024-03-30T00:00:00Z", "2024-04-02T00:00:00Z", "1h", "avg,min,max,stddev", "linear", "Europe/Berlin"},
		{"d1", "", "p.", "", "2024-03-30T00:00:00+01:00", "2024-04-01T00:00:00+02:00", "1d", "count,first,last", "previous", "Europe/Berlin"},
		{"d1", "", "", "*.*", "2024-03-29T00:00:00Z", "2024-04-03T00:00:00Z", "auto", "sum", "null", "UTC"},
		{"d2", "p.num", "", "", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "7d", "count", "none", "Asia/Kathmandu"},
		{"d1", "t.a.x", "", "", "2024-03-31T01:30:00+01:00", "2024-03-31T03:30:00+02:00", "15m", "avg", "linear", "America/St_Johns"},
		{"d1", "p.text", "", "", "2024-03-30T00:00:00Z", "2024-03-31T00:00:00Z", "90m", "avg", "none", "Local"},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], 100, "")
	}
	f.Fuzz(func(t *testing.T, device, parameter, prefix, glob, from, to, bucket, agg, fill, tz string, maxPoints int, raw string) {
		q := url.Values{}
		setNonEmpty(q, "device_id", device)
		for _, p := range strings.SplitN(parameter, ";", 4) {
			if p != "" {
				q.Add("parameter", p)
			}
		}
		setNonEmpty(q, "prefix", prefix)
		setNonEmpty(q, "glob", glob)
		setNonEmpty(q, "from", from)
		setNonEmpty(q, "to", to)
		setNonEmpty(q, "bucket", bucket)
		setNonEmpty(q, "agg", agg)
		setNonEmpty(q, "fill", fill)
		setNonEmpty(q, "tz", tz)
		if maxPoints != 0 {
			q.Set("max_points", fmt.Sprint(maxPoints))
		}
		serveFuzz(t, h, "/v1/aggregates", q, raw)
	})
}

func FuzzReadingsQuery(f *testing.F) {
	h := fuzzHandler(f)
	f.Add("d1", "p.num", "2024-03-30T00:00:00Z", "2024-04-02T00:00:00+02:00", "desc", "7", "", "utc", "application/json", "")
	f.Add("d1", "p.text", "", "", "asc", "10000", "", "original", "text/csv", "")
	f.Add("d2", "p.num", "2024-03-31T02:30:00+01:00", "", "asc", "3", "eyJ2IjoxLCJzIjoxLCJ0IjowLCJvIjoiYXNjIn0.AAAA", "", "application/x-ndjson;q=0.9, text/csv;q=0.1", "")
	f.Add("d1", "t.a.x", "-0001-01-01T00:00:00Z", "10000-01-01T00:00:00Z", "up", "0", "x", "local", "*/*", "limit=%zz")
	f.Fuzz(func(t *testing.T, device, parameter, from, to, order, limit, cursor, timestamps, accept, raw string) {
		q := url.Values{}
		setNonEmpty(q, "device_id", device)
		setNonEmpty(q, "parameter", parameter)
		setNonEmpty(q, "from", from)
		setNonEmpty(q, "to", to)
		setNonEmpty(q, "order", order)
		setNonEmpty(q, "limit", limit)
		setNonEmpty(q, "cursor", cursor)
		setNonEmpty(q, "timestamps", timestamps)
		var headers []string
		if accept != "" && !strings.ContainsAny(accept, "\r\n") {
			headers = append(headers, "Accept: "+accept)
		}
		serveFuzz(t, h, "/v1/readings", q, raw, headers...)
	})
}

// FuzzCatalogQuery covers the other operations: series (prefix, glob and
// type become SQL parameters and a regular expression), latest, and the
// original service's process_request, whose parameters it parses itself.
func FuzzCatalogQuery(f *testing.F) {
	h := fuzzHandler(f)
	f.Add(uint8(0), "d1", "p.", "**.x", "numeric", "", "", "", "")
	f.Add(uint8(1), "d2", "t.a", "", "", "", "", "", "")
	f.Add(uint8(2), "d1", "p.num", "", "", "2024-03-30T00:00:00+01:00", "2024-03-31T00:00:00Z", "10", "")
	f.Add(uint8(2), "", "", "", "", "2024-03-30", "yesterday", "-1", "device_id=%ff")
	f.Fuzz(func(t *testing.T, op uint8, device, param, glob, typ, from, to, limit, raw string) {
		q := url.Values{}
		setNonEmpty(q, "device_id", device)
		path := "/v1/series"
		switch op % 3 {
		case 0:
			setNonEmpty(q, "prefix", param)
			setNonEmpty(q, "glob", glob)
			setNonEmpty(q, "type", typ)
		case 1:
			path = "/v1/latest"
			setNonEmpty(q, "prefix", param)
		case 2:
			path = "/api/v1/core/process_request"
			setNonEmpty(q, "parameter", param)
			setNonEmpty(q, "from", from)
			setNonEmpty(q, "to", to)
			setNonEmpty(q, "limit", limit)
		}
		serveFuzz(t, h, path, q, raw)
	})
}
