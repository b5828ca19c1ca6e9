package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	legacyrouter "github.com/getkin/kin-openapi/routers/legacy"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/db/seed"
	"github.com/sensorhub/sensorhub/services/api/internal/auth"
	"github.com/sensorhub/sensorhub/services/api/internal/cursor"
	"github.com/sensorhub/sensorhub/services/api/internal/store"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// refItem is one reading of the reference dataset as its file has it.
type refItem struct {
	Device, Parameter, Timestamp, Type string
	Time                               time.Time
	Num                                float64
	Text                               string
}

func (r refItem) key() string { return r.Device + "\x00" + r.Parameter + "\x00" + r.Timestamp }

// reference is the reference dataset, for seeding and for comparing.
type reference struct {
	readings []seed.Reading
	items    []refItem
	// series maps "device\x00parameter" to its readings in time order.
	series map[string][]refItem
}

func seriesKey(device, parameter string) string { return device + "\x00" + parameter }

var (
	refOnce sync.Once
	ref     *reference
	refErr  error
)

// loadReference reads shared/datasets/sensor-target/data.json once; without
// the file the test skips, unless CI=true, where it fails.
func loadReference(t *testing.T) *reference {
	t.Helper()
	path := seed.FindReferenceFile()
	if path == "" {
		msg := "reference dataset shared/datasets/sensor-target/data.json not found in any parent of the working directory"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg + " (CI=true makes this a failure)")
	}
	refOnce.Do(func() {
		r := &reference{series: map[string][]refItem{}}
		if r.readings, refErr = seed.ReadReferenceFile(path); refErr != nil {
			return
		}
		b, err := os.ReadFile(path)
		if err != nil {
			refErr = err
			return
		}
		var doc map[string][]seed.ReferenceReading
		if refErr = json.Unmarshal(b, &doc); refErr != nil {
			return
		}
		for device, rs := range doc {
			for _, x := range rs {
				it := refItem{Device: device, Parameter: x.Parameter, Timestamp: x.Timestamp, Type: x.Type}
				if it.Time, err = time.Parse(time.RFC3339Nano, x.Timestamp); err != nil {
					refErr = err
					return
				}
				if x.Type == "numeric" {
					err = json.Unmarshal(x.Value, &it.Num)
				} else {
					err = json.Unmarshal(x.Value, &it.Text)
				}
				if err != nil {
					refErr = err
					return
				}
				r.items = append(r.items, it)
				k := seriesKey(device, x.Parameter)
				r.series[k] = append(r.series[k], it)
			}
		}
		for _, s := range r.series {
			slices.SortFunc(s, func(a, b refItem) int { return a.Time.Compare(b.Time) })
		}
		ref = r
	})
	if refErr != nil {
		t.Fatalf("reference dataset: %v", refErr)
	}
	return ref
}

// openPool opens a pool configured as the API's (statement timeout,
// read-only transactions), closed when t ends.
func openPool(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	pc, err := store.PoolConfig(dsn, 8, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// testServer is the real handler on a real listener, with every response
// checked against the generated OpenAPI document.
type testServer struct {
	*Server
	url      string
	registry *prometheus.Registry
}

// testCursorKey signs the test servers' cursors.
var testCursorKey = []byte("test key, not secret, 32 bytes!")

func testDeps(pool *pgxpool.Pool) Deps {
	return Deps{
		Store:   store.New(pool),
		Cursors: cursor.NewCodec(testCursorKey),
		Limits:  Limits{MaxPoints: 100_000, MaxRawRange: 31 * 24 * time.Hour},
	}
}

// newTestServer serves the API on pool; change adjusts its Deps and Options.
func newTestServer(t *testing.T, pool *pgxpool.Pool, change func(*Deps, *Options)) *testServer {
	t.Helper()
	reg := prometheus.NewRegistry()
	d := testDeps(pool)
	o := Options{Auth: auth.Disabled(), RequestTimeout: 10 * time.Second, Metrics: reg, MetricsGatherer: reg, Logger: testLogger(t)}
	if change != nil {
		change(&d, &o)
	}
	if err := d.Store.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(d, o)
	if err != nil {
		t.Fatal(err)
	}
	// The production http.Server (its header limit above all), on a test listener.
	hs := httptest.NewUnstartedServer(s.Handler())
	hs.Config = s.HTTPServer("", nil)
	hs.Start()
	t.Cleanup(hs.Close)
	return &testServer{Server: s, url: hs.URL, registry: reg}
}

// testLogger writes warnings and errors through t.Log, for failures only.
func testLogger(t *testing.T) *slog.Logger { return testLoggerAt(t, slog.LevelWarn) }

// testLoggerAt writes records of level and above through t.Log.
func testLoggerAt(t *testing.T, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: level}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// response is a finished request.
type response struct {
	*http.Response
	Body []byte
}

// get requests path (with its query) with headers "Name: value" and
// validates the response against the OpenAPI document.
func (ts *testServer) get(t *testing.T, path string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, ts.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Set(name, strings.TrimSpace(value))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	r := response{Response: resp, Body: body}
	validateResponse(t, req, r)
	return r
}

// getJSON is get, expecting status, decoding the body into v.
func (ts *testServer) getJSON(t *testing.T, path string, status int, v any, headers ...string) response {
	t.Helper()
	r := ts.get(t, path, headers...)
	if r.StatusCode != status {
		t.Fatalf("GET %s: status %d, want %d; body %.500s", path, r.StatusCode, status, r.Body)
	}
	if v != nil {
		if err := json.Unmarshal(r.Body, v); err != nil {
			t.Fatalf("GET %s: decode: %v; body %.500s", path, err, r.Body)
		}
	}
	return r
}

// problem is an RFC 9457 problem document as huma writes it.
type problem struct {
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Message  string `json:"message"`
		Location string `json:"location"`
	} `json:"errors"`
}

// wantProblem requests path and checks it fails with status as problem+json
// naming location (when not empty) in its errors.
func (ts *testServer) wantProblem(t *testing.T, path string, status int, location string, headers ...string) problem {
	t.Helper()
	r := ts.get(t, path, headers...)
	var p problem
	if r.StatusCode != status {
		t.Fatalf("GET %s: status %d, want %d; body %.500s", path, r.StatusCode, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("GET %s: Content-Type %q, want application/problem+json", path, ct)
	}
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("GET %s: decode problem: %v; body %s", path, err, r.Body)
	}
	if p.Status != status || p.Title == "" {
		t.Errorf("GET %s: problem %+v", path, p)
	}
	if location != "" && !slices.ContainsFunc(p.Errors, func(e struct {
		Message  string `json:"message"`
		Location string `json:"location"`
	}) bool {
		return e.Location == location
	}) {
		t.Errorf("GET %s: problem does not name %s: %s", path, location, r.Body)
	}
	return p
}

var (
	specOnce   sync.Once
	specRouter routers.Router
	specErr    error
)

func init() {
	// Exports are text; validate them as plain strings.
	openapi3filter.RegisterBodyDecoder(mediaNDJSON, openapi3filter.PlainBodyDecoder)
}

// validateResponse checks r against the OpenAPI 3.0 document the code
// generates (the one written to openapi-3.0.yaml), status included.
func validateResponse(t *testing.T, req *http.Request, r response) {
	t.Helper()
	switch p := req.URL.Path; {
	case p == "/metrics", p == "/docs", strings.HasPrefix(p, "/openapi"):
		return
	}
	specOnce.Do(func() {
		var spec []byte
		if spec, specErr = Spec(); specErr != nil {
			return
		}
		loader := openapi3.NewLoader()
		var doc *openapi3.T
		if doc, specErr = loader.LoadFromData(spec); specErr != nil {
			return
		}
		if specErr = doc.Validate(loader.Context); specErr != nil {
			return
		}
		// The document's server is "/", the origin that serves it; the
		// router would match it against each request's host, which the
		// test servers pick at random.
		doc.Servers = nil
		specRouter, specErr = legacyrouter.NewRouter(doc)
	})
	if specErr != nil {
		t.Fatalf("OpenAPI document: %v", specErr)
	}
	route, params, err := specRouter.FindRoute(req)
	// The router forgives what the server does not (a trailing slash, an
	// escaped slash); no operation has path parameters, so its path must
	// be the request's to the byte.
	if err == nil && route.Path != req.URL.EscapedPath() {
		err = fmt.Errorf("the router matched %s, not the path requested", route.Path)
	}
	if err != nil {
		if r.StatusCode >= 400 && r.StatusCode < 500 {
			return // not an operation: the API's answer for unknown paths and methods
		}
		t.Fatalf("%s %s: no operation in the OpenAPI document: %v", req.Method, req.URL.Path, err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 r.StatusCode,
		Header:                 r.Header,
		Body:                   io.NopCloser(bytes.NewReader(r.Body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s %s: response %d does not match the OpenAPI document: %.2000v", req.Method, req.URL, r.StatusCode, err)
	}
}
