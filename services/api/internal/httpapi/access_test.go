package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/db"
	"github.com/sensorhub/sensorhub/db/apikey"
	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/db/ratelimit"
	"github.com/sensorhub/sensorhub/services/api/internal/auth"
	"github.com/sensorhub/sensorhub/services/api/internal/auth/authtest"
)

// tenant is a caller of the access tests: its credential header and, written
// independently of package scope, what it may see.
type tenant struct {
	name     string
	header   string
	devices  []string // empty: any
	prefixes []string // empty: any
}

func (tn tenant) allows(device, parameter string) bool {
	if len(tn.devices) > 0 && !slices.Contains(tn.devices, device) {
		return false
	}
	if len(tn.prefixes) == 0 {
		return true
	}
	for _, p := range tn.prefixes {
		if strings.HasPrefix(parameter, p) {
			return true
		}
	}
	return false
}

// accessFixture is a server with API keys of several scopes and a JWKS.
type accessFixture struct {
	ts      *testServer
	idp     *authtest.IdP
	tenants []tenant
}

func (f *accessFixture) tenant(name string) tenant {
	for _, tn := range f.tenants {
		if tn.name == name {
			return tn
		}
	}
	panic("no tenant " + name)
}

func newAccessFixture(t *testing.T, pool *pgxpool.Pool, change func(*Deps, *Options)) *accessFixture {
	t.Helper()
	f := &accessFixture{idp: authtest.New(t)}
	type keyed struct {
		tenant
		key string
	}
	configured := []keyed{
		{tenant{name: "tenantA", prefixes: []string{"tenantA."}}, "key-tenant-a-0123456789"},
		{tenant{name: "foo", devices: []string{"device.foo"}}, "key-device-foo-0123456789"},
		{tenant{name: "barParameters", devices: []string{"device.bar"}, prefixes: []string{"parameter."}}, "key-bar-parameters-0123456789"},
		{tenant{name: "admin"}, "key-admin-0123456789"},
	}
	var cfg []apikey.KeyConfig
	for i, k := range configured {
		cfg = append(cfg, apikey.KeyConfig{Name: k.name, SHA256: apikey.HashKey(k.key), Devices: k.devices, Prefixes: k.prefixes})
		// Both headers are exercised.
		if i%2 == 0 {
			k.header = "X-API-Key: " + k.key
		} else {
			k.header = "Authorization: Bearer " + k.key
		}
		f.tenants = append(f.tenants, k.tenant)
	}
	tenantB := tenant{name: "tenantB (JWT)", prefixes: []string{"tenantB."}}
	tenantB.header = "Authorization: Bearer " + f.idp.Token(t, "client-b", authtest.Scope{Prefixes: tenantB.prefixes}, nil)
	f.tenants = append(f.tenants, tenantB)

	doc, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := apikey.ParseKeys(doc)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewJWTVerifier(auth.JWTConfig{JWKSURL: f.idp.URL, Issuer: authtest.Issuer, Audience: authtest.Audience})
	if err != nil {
		t.Fatal(err)
	}
	f.ts = newTestServer(t, pool, func(d *Deps, o *Options) {
		o.Auth = auth.New(keys, v)
		if change != nil {
			change(d, o)
		}
	})
	return f
}

// dataPaths are a request of every operation that needs credentials.
var dataPaths = []string{
	"/v1/devices",
	"/v1/series",
	"/v1/readings?device_id=device.foo&parameter=parameter.foo&limit=2",
	"/v1/aggregates?device_id=device.foo&parameter=parameter.foo&from=2024-03-07T00:00:00Z&to=2024-03-08T00:00:00Z",
	"/v1/latest",
	"/api/v1/core/process_request?limit=2",
}

// testCredentials: every operation but the probes refuses requests without
// valid credentials with 401 and a Bearer challenge.
func testCredentials(t *testing.T, pool *pgxpool.Pool) {
	f := newAccessFixture(t, pool, nil)
	ts := f.ts
	expired := f.idp.Token(t, "c", authtest.Scope{}, func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })
	wrongIssuer := f.idp.Token(t, "c", authtest.Scope{}, func(c map[string]any) { c["iss"] = "https://evil.test/" })
	wrongKey := authtest.Sign(t, authtest.NewKey(t, "k1", false), authtest.Claims("c", authtest.Scope{}))
	unsigned := authtest.Unsigned(t, "k1", authtest.Claims("c", authtest.Scope{}))
	refused := map[string][]string{
		"no credentials":  nil,
		"unknown key":     {"X-API-Key: not-a-key"},
		"unknown bearer":  {"Authorization: Bearer not-a-key"},
		"basic":           {"Authorization: Basic YWRtaW46YWRtaW4="},
		"both headers":    {"Authorization: Bearer key-admin-0123456789", "X-API-Key: key-admin-0123456789"},
		"expired JWT":     {"Authorization: Bearer " + expired},
		"wrong issuer":    {"Authorization: Bearer " + wrongIssuer},
		"wrong key":       {"Authorization: Bearer " + wrongKey},
		"alg none":        {"Authorization: Bearer " + unsigned},
		"JWT as API key":  {"X-API-Key: " + f.idp.Token(t, "c", authtest.Scope{}, nil)},
		"key hash as key": {"X-API-Key: " + apikey.HashKey("key-admin-0123456789")},
	}
	for name, headers := range refused {
		for _, path := range dataPaths {
			resp := ts.get(t, path, headers...)
			challenge := resp.Header.Get("WWW-Authenticate")
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(challenge, `Bearer realm="sensorhub"`) {
				t.Errorf("%s: GET %s: %d, WWW-Authenticate %q; want 401 with a Bearer challenge", name, path, resp.StatusCode, challenge)
				continue
			}
			if (headers == nil) == strings.Contains(challenge, "invalid_token") {
				t.Errorf("%s: GET %s: challenge %q", name, path, challenge)
			}
			var body struct{ Message, Detail string }
			_ = json.Unmarshal(resp.Body, &body)
			if strings.HasPrefix(path, "/api/") {
				if resp.Header.Get("Content-Type") != mediaJSON || body.Message == "" {
					t.Errorf("%s: GET %s: %s %s, want the original service's {\"message\"}", name, path, resp.Header.Get("Content-Type"), resp.Body)
				}
			} else if resp.Header.Get("Content-Type") != "application/problem+json" || body.Detail == "" {
				t.Errorf("%s: GET %s: %s %s, want a problem", name, path, resp.Header.Get("Content-Type"), resp.Body)
			}
		}
	}
	if !strings.Contains(string(ts.get(t, "/v1/devices", refused["expired JWT"]...).Body), "token has expired") {
		t.Error("the 401 of an expired token does not say so")
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json", "/openapi-3.0.yaml", "/docs"} {
		if resp := ts.get(t, path); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s without credentials: %d, want 200", path, resp.StatusCode)
		}
	}
	for _, tn := range f.tenants {
		for _, path := range dataPaths {
			if resp := ts.get(t, path, tn.header); resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s: GET %s: %d %s", tn.name, path, resp.StatusCode, resp.Body)
			}
		}
	}
	if !strings.Contains(metricsText(t, ts), `sensorhub_http_requests_total{code="401",method="GET",route="/v1/devices"}`) {
		t.Error("401s are not counted under their route")
	}

	// A JWKS that cannot be fetched makes tokens fail with 503, not 401:
	// the client's token may well be valid.
	down := authtest.New(t)
	down.SetDown(true)
	v, err := auth.NewJWTVerifier(auth.JWTConfig{JWKSURL: down.URL})
	if err != nil {
		t.Fatal(err)
	}
	ds := newTestServer(t, pool, func(_ *Deps, o *Options) { o.Auth = auth.New(nil, v) })
	resp := ds.get(t, "/v1/devices", "Authorization: Bearer "+down.Token(t, "c", authtest.Scope{}, nil))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("JWKS down: %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func metricsText(t *testing.T, ts *testServer) string {
	t.Helper()
	return string(ts.get(t, "/metrics").Body)
}

// testTenants is the cross-tenant matrix: for every caller and every
// operation, the in-scope series are served and the others behave as if
// they did not exist (404, or absent from lists).
func testTenants(t *testing.T, pool *pgxpool.Pool, r *reference) {
	f := newAccessFixture(t, pool, nil)
	ts := f.ts
	var allSeries []string // "device\x00parameter", sorted
	for k := range r.series {
		allSeries = append(allSeries, k)
	}
	slices.Sort(allSeries)
	// Probes: a series of each kind the tenants tell apart.
	probes := []string{
		seriesKey("device.foo", "parameter.foo"),
		seriesKey("device.foo", "tenantA.deviceFoo.datasourceA.bar"),
		seriesKey("device.foo", "tenantB.datasourceA.bfaz"),
		seriesKey("device.bar", "parameter.baz"),
		seriesKey("device.bar", "tenantB.deviceBar.datasourceB.cat"),
	}
	const day = "&from=2024-03-01T00:00:00Z&to=2024-04-01T00:00:00Z"

	for _, tn := range f.tenants {
		t.Run(tn.name, func(t *testing.T) {
			t.Parallel()
			var want []string // "device/parameter" in scope, sorted
			perDevice := map[string][2]int{}
			for _, k := range allSeries {
				device, parameter, _ := strings.Cut(k, "\x00")
				if tn.allows(device, parameter) {
					want = append(want, device+"/"+parameter)
					c := perDevice[device]
					perDevice[device] = [2]int{c[0] + 1, c[1] + len(r.series[k])}
				}
			}
			if len(want) == 0 {
				t.Fatal("the tenant sees nothing; pick a scope that discriminates")
			}

			var devices DeviceList
			ts.getJSON(t, "/v1/devices", http.StatusOK, &devices, tn.header)
			if len(devices.Devices) != len(perDevice) {
				t.Errorf("devices %+v, want %v", devices.Devices, perDevice)
			}
			for _, d := range devices.Devices {
				if c := perDevice[d.DeviceID]; d.SeriesCount != c[0] || d.ReadingCount != int64(c[1]) {
					t.Errorf("device %s: %d series, %d readings; want %v", d.DeviceID, d.SeriesCount, d.ReadingCount, c)
				}
			}

			var series struct {
				Series []seriesItemJSON `json:"series"`
			}
			ts.getJSON(t, "/v1/series?glob=**", http.StatusOK, &series, tn.header)
			if got := seriesNames(series.Series); !slices.Equal(got, want) {
				t.Errorf("series: %q, want %q", got, want)
			}
			var latest struct {
				Readings []seriesItemJSON `json:"readings"`
			}
			ts.getJSON(t, "/v1/latest", http.StatusOK, &latest, tn.header)
			if got := seriesNames(latest.Readings); !slices.Equal(got, want) {
				t.Errorf("latest: %q, want %q", got, want)
			}

			for _, k := range allSeries {
				device, parameter, _ := strings.Cut(k, "\x00")
				q := url.Values{"device_id": {device}, "parameter": {parameter}, "limit": {"2"}}.Encode()
				if tn.allows(device, parameter) {
					var p readingsPageJSON
					ts.getJSON(t, "/v1/readings?"+q, http.StatusOK, &p, tn.header)
					if len(p.Readings) != 2 || p.Parameter != parameter {
						t.Errorf("readings of %s/%s: %+v", device, parameter, p)
					}
				} else {
					ts.wantProblem(t, "/v1/readings?"+q, http.StatusNotFound, "query.device_id", tn.header)
				}
			}

			for _, k := range probes {
				device, parameter, _ := strings.Cut(k, "\x00")
				q := url.Values{"device_id": {device}, "parameter": {parameter}}.Encode()
				allowed := tn.allows(device, parameter)

				resp := ts.get(t, "/v1/readings?"+q, tn.header, "Accept: text/csv")
				if lines := strings.Count(string(resp.Body), "\n"); allowed && (resp.StatusCode != http.StatusOK || lines != len(r.series[k])+1) ||
					!allowed && resp.StatusCode != http.StatusNotFound {
					t.Errorf("CSV export of %s/%s: %d, %d lines (allowed %v)", device, parameter, resp.StatusCode, lines, allowed)
				}
				if allowed {
					var agg struct {
						Series []AggregateSeries `json:"series"`
					}
					ts.getJSON(t, "/v1/aggregates?"+q+day+"&bucket=1d", http.StatusOK, &agg, tn.header)
					if len(agg.Series) != 1 || agg.Series[0].Parameter != parameter {
						t.Errorf("aggregates of %s/%s: %+v", device, parameter, agg.Series)
					}
				} else {
					ts.wantProblem(t, "/v1/aggregates?"+q+day, http.StatusNotFound, "query.parameter", tn.header)
				}
				g := getLegacy(t, ts, "?"+q, tn.header)
				if allowed && len(g.GraphData) != len(r.series[k]) || !allowed && (len(g.GraphData) != 0 || g.Message != "No data available") {
					t.Errorf("process_request of %s/%s: %d readings, %q (allowed %v)", device, parameter, len(g.GraphData), g.Message, allowed)
				}
			}

			// Selections by prefix and glob only ever match in-scope series.
			for _, device := range []string{"device.foo", "device.bar"} {
				for _, sel := range []string{"prefix=tenant", "prefix=parameter.", "glob=**", "glob=tenantB.**"} {
					var wantSel []string
					for _, s := range want {
						d, p, _ := strings.Cut(s, "/")
						name, value, _ := strings.Cut(sel, "=")
						if d == device && (name == "prefix" && strings.HasPrefix(p, value) || name == "glob" && globMatch(value, p)) {
							wantSel = append(wantSel, p)
						}
					}
					path := "/v1/aggregates?device_id=" + device + "&" + sel + day + "&bucket=7d&agg=count"
					if len(wantSel) == 0 {
						ts.wantProblem(t, path, http.StatusNotFound, "", tn.header)
						continue
					}
					var agg struct {
						Series []AggregateSeries `json:"series"`
					}
					ts.getJSON(t, path, http.StatusOK, &agg, tn.header)
					var got []string
					for _, s := range agg.Series {
						got = append(got, s.Parameter)
					}
					if !slices.Equal(got, wantSel) {
						t.Errorf("aggregates %s: %q, want %q", path, got, wantSel)
					}
				}
			}

			g := getLegacy(t, ts, "", tn.header)
			seen := map[string]int{}
			for _, x := range g.GraphData {
				seen[x.DeviceID+"/"+x.Parameter]++
			}
			got := make([]string, 0, len(seen))
			for k := range seen {
				got = append(got, k)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("process_request: series %q, want %q", got, want)
			}
		})
	}
}

func seriesNames(items []seriesItemJSON) []string {
	out := []string{}
	for _, s := range items {
		out = append(out, s.DeviceID+"/"+s.Parameter)
	}
	return out
}

// testCursorReplay: a cursor never widens a scope. One issued to a caller
// that may see a series, replayed by a caller that may not, is a 404 (the
// series does not exist for it), for pages and exports alike; and a cursor
// of one series cannot read another.
func testCursorReplay(t *testing.T, pool *pgxpool.Pool) {
	f := newAccessFixture(t, pool, nil)
	ts := f.ts
	admin, tenantA, tenantB := f.tenant("admin"), f.tenant("tenantA"), f.tenant("tenantB (JWT)")
	secret := url.Values{"device_id": {"device.bar"}, "parameter": {"tenantB.deviceBar.datasourceB.cat"}, "limit": {"5"}}
	var p readingsPageJSON
	ts.getJSON(t, "/v1/readings?"+secret.Encode(), http.StatusOK, &p, admin.header)
	if p.NextCursor == "" {
		t.Fatal("no cursor")
	}
	replay := url.Values{}
	for k, v := range secret {
		replay[k] = v
	}
	replay.Set("cursor", p.NextCursor)
	path := "/v1/readings?" + replay.Encode()

	ts.wantProblem(t, path, http.StatusNotFound, "query.device_id", tenantA.header)
	ts.wantProblem(t, path, http.StatusNotFound, "", tenantA.header, "Accept: text/csv")
	// The cursor with a series tenantA may see: it belongs to another series.
	own := url.Values{"device_id": {"device.foo"}, "parameter": {"tenantA.deviceFoo.datasourceA.bar"}, "limit": {"5"}, "cursor": {p.NextCursor}}
	ts.wantProblem(t, "/v1/readings?"+own.Encode(), http.StatusBadRequest, "query.cursor", tenantA.header)
	ts.wantProblem(t, "/v1/readings?"+own.Encode(), http.StatusBadRequest, "query.cursor", tenantA.header, "Accept: application/x-ndjson")
	// A caller that may see the series continues where the cursor says.
	var next readingsPageJSON
	ts.getJSON(t, path, http.StatusOK, &next, tenantB.header)
	if len(next.Readings) != 5 || next.Readings[0].Time <= p.Readings[4].Time {
		t.Errorf("replay by a caller in scope: %+v after %+v", next.Readings, p.Readings)
	}
}

// testRateLimit: each caller has its own token bucket; an empty one is a
// 429 with Retry-After in whole seconds; probes are never limited.
func testRateLimit(t *testing.T, pool *pgxpool.Pool) {
	// One request per 10 s after a burst of two, so that no refill happens
	// during the test however slow the machine.
	f := newAccessFixture(t, pool, func(_ *Deps, o *Options) { o.RateLimit = ratelimit.New(0.1, 2, 0) })
	ts := f.ts
	a, admin, bar := f.tenant("tenantA"), f.tenant("admin"), f.tenant("barParameters")
	for range 2 {
		ts.getJSON(t, "/v1/devices", http.StatusOK, nil, a.header)
	}
	p := ts.wantProblem(t, "/v1/series", http.StatusTooManyRequests, "", a.header)
	resp := ts.get(t, "/v1/latest", a.header)
	retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != http.StatusTooManyRequests || err != nil || retry < 1 || retry > 10 {
		t.Errorf("429: Retry-After %q, want whole seconds from 1 to 10", resp.Header.Get("Retry-After"))
	}
	if !strings.Contains(p.Detail, "rate limit") {
		t.Errorf("429 problem: %+v", p)
	}
	ts.getJSON(t, "/v1/devices", http.StatusOK, nil, admin.header) // another caller's bucket
	for range 5 {
		ts.getJSON(t, "/healthz", http.StatusOK, nil)
		ts.getJSON(t, "/readyz", http.StatusOK, nil)
	}
	// The original endpoint answers in its own shape.
	for range 2 {
		getLegacy(t, ts, "?limit=1", bar.header)
	}
	resp = ts.get(t, "/api/v1/core/process_request?limit=1", bar.header)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.HasPrefix(string(resp.Body), `{"message":`) {
		t.Errorf("process_request over the limit: %d %s %s", resp.StatusCode, resp.Header, resp.Body)
	}
	// A JWT's bucket is its subject's.
	tenantB := f.tenant("tenantB (JWT)")
	ts.getJSON(t, "/v1/devices", http.StatusOK, nil, tenantB.header)
	ts.getJSON(t, "/v1/devices", http.StatusOK, nil, "Authorization: Bearer "+f.idp.Token(t, "client-b", authtest.Scope{Prefixes: []string{"tenantB."}}, nil))
	ts.wantProblem(t, "/v1/devices", http.StatusTooManyRequests, "", tenantB.header)

	// Without authentication, callers are told apart by address.
	open := newTestServer(t, pool, func(_ *Deps, o *Options) { o.RateLimit = ratelimit.New(0.1, 1, 0) })
	open.getJSON(t, "/v1/devices", http.StatusOK, nil)
	open.wantProblem(t, "/v1/devices", http.StatusTooManyRequests, "")
}

// testETag: answers carry a weak ETag of the dataset version, request and
// scope; If-None-Match with it answers 304 until the next load.
func testETag(t *testing.T, d *dbtest.DB, pool *pgxpool.Pool) {
	f := newAccessFixture(t, pool, func(_ *Deps, o *Options) { o.DatasetVersionTTL = time.Nanosecond })
	ts := f.ts
	a, foo := f.tenant("tenantA"), f.tenant("foo")
	paths := []string{
		"/v1/devices",
		"/v1/series?prefix=tenantA.&type=numeric",
		"/v1/readings?device_id=device.foo&parameter=tenantA.deviceFoo.datasourceA.bar&limit=3",
		"/v1/aggregates?device_id=device.foo&prefix=tenantA.&from=2024-03-01T00:00:00Z&to=2024-04-01T00:00:00Z&bucket=1d&agg=count,last",
		"/v1/latest?device_id=device.foo",
		"/api/v1/core/process_request?device_id=device.foo&limit=3",
	}
	tags := map[string]string{}
	for _, path := range paths {
		first := ts.get(t, path, a.header)
		tag := first.Header.Get("ETag")
		if first.StatusCode != http.StatusOK || !strings.HasPrefix(tag, `W/"`) || !strings.HasSuffix(tag, `"`) {
			t.Fatalf("GET %s: %d, ETag %q; want 200 with a weak ETag", path, first.StatusCode, tag)
		}
		if cc, vary := first.Header.Get("Cache-Control"), strings.Join(first.Header.Values("Vary"), ", "); cc != "private, no-cache" || !strings.Contains(vary, "Authorization") || !strings.Contains(vary, "X-API-Key") {
			t.Errorf("GET %s: Cache-Control %q, Vary %q", path, cc, vary)
		}
		if prev, ok := tags[tag]; ok {
			t.Errorf("GET %s and %s share the ETag %s", path, prev, tag)
		}
		tags[tag] = path
		for _, inm := range []string{tag, strings.TrimPrefix(tag, "W/"), `"other", ` + tag} {
			again := ts.get(t, path, a.header, "If-None-Match: "+inm)
			if again.StatusCode != http.StatusNotModified || len(again.Body) != 0 || again.Header.Get("ETag") != tag {
				t.Errorf("GET %s, If-None-Match %s: %d, %d bytes, ETag %q; want 304 without a body", path, inm, again.StatusCode, len(again.Body), again.Header.Get("ETag"))
			}
		}
		// Another scope sees other data: another ETag, and no 304 for the first.
		other := ts.get(t, path, foo.header, "If-None-Match: "+tag)
		if other.StatusCode != http.StatusOK || other.Header.Get("ETag") == tag || other.Header.Get("ETag") == "" {
			t.Errorf("GET %s by another scope with the first's ETag: %d, ETag %q", path, other.StatusCode, other.Header.Get("ETag"))
		}
		if ts.get(t, path, a.header, "If-None-Match: *").StatusCode != http.StatusOK {
			t.Errorf("GET %s, If-None-Match *: not 200", path)
		}
	}
	// The same query with its parameters reordered is the same request.
	if x, y := ts.get(t, "/v1/series?type=numeric&prefix=tenantA.", a.header).Header.Get("ETag"), ts.get(t, paths[1], a.header).Header.Get("ETag"); x != y {
		t.Errorf("reordered query: ETag %s, want %s", x, y)
	}
	// The order of a repeated parameter's values is kept: it orders the
	// answer's aggregates.
	base := "/v1/aggregates?device_id=device.foo&parameter=tenantA.deviceFoo.datasourceA.bar&from=2024-03-01T00:00:00Z&to=2024-04-01T00:00:00Z&bucket=1d"
	two, swapped := ts.get(t, base+"&agg=count&agg=last", a.header), ts.get(t, base+"&agg=last&agg=count", a.header)
	reordered := ts.get(t, "/v1/aggregates?agg=count&bucket=1d&parameter=tenantA.deviceFoo.datasourceA.bar&agg=last&to=2024-04-01T00:00:00Z&device_id=device.foo&from=2024-03-01T00:00:00Z", a.header)
	if two.StatusCode != http.StatusOK || swapped.StatusCode != http.StatusOK || reordered.StatusCode != http.StatusOK {
		t.Fatalf("repeated agg: %d, %d, %d; want 200", two.StatusCode, swapped.StatusCode, reordered.StatusCode)
	}
	if x, s, r := two.Header.Get("ETag"), swapped.Header.Get("ETag"), reordered.Header.Get("ETag"); x == s || x != r {
		t.Errorf("agg values swapped: ETag %s, as given %s, names reordered %s; want the swap to differ and the reorder not", s, x, r)
	}
	// An export is another representation.
	csv := ts.get(t, paths[2], a.header, "Accept: text/csv")
	if tag := csv.Header.Get("ETag"); tag == "" || tags[tag] != "" {
		t.Errorf("CSV export: ETag %q, want one of its own", tag)
	}
	if ts.get(t, paths[2], a.header, "Accept: text/csv", "If-None-Match: "+csv.Header.Get("ETag")).StatusCode != http.StatusNotModified {
		t.Error("conditional export: not 304")
	}
	// Errors carry no validator.
	if nf := ts.get(t, "/v1/readings?device_id=device.bar&parameter=parameter.baz", a.header); nf.StatusCode != http.StatusNotFound || nf.Header.Get("ETag") != "" {
		t.Errorf("404: ETag %q", nf.Header.Get("ETag"))
	}

	// A load changes the version: the old validators no longer match.
	if _, err := d.Pool.Exec(t.Context(), `UPDATE sensorhub.dataset_state SET version = version + 1`); err != nil {
		t.Fatal(err)
	}
	for tag, path := range tags {
		resp := ts.get(t, path, a.header, "If-None-Match: "+tag)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == tag || len(resp.Body) == 0 {
			t.Errorf("GET %s after a load, with the ETag from before: %d, ETag %q", path, resp.StatusCode, resp.Header.Get("ETag"))
		}
	}
}

// TestVersionCache: the dataset version is read at most once per TTL, and
// not at all by requests that arrive while it is being read.
func TestVersionCache(t *testing.T) {
	var reads atomic.Int64
	version := int64(7)
	fail := false
	c := &versionCache{ttl: time.Hour, read: func(context.Context) (int64, error) {
		reads.Add(1)
		if fail {
			return 0, errors.New("database down")
		}
		return version, nil
	}}
	for range 10 {
		if v, ok := c.get(context.Background()); !ok || v != 7 {
			t.Fatalf("get: %d %v", v, ok)
		}
	}
	if n := reads.Load(); n != 1 {
		t.Errorf("%d reads within the TTL, want 1", n)
	}
	c.ttl = 0
	version = 8
	if v, _ := c.get(context.Background()); v != 8 {
		t.Errorf("after the TTL: version %d, want 8", v)
	}
	fail = true
	if _, ok := c.get(context.Background()); ok {
		t.Error("a failed read gave a version")
	}
	// While another request reads, the previous version serves.
	fail = false
	c.mu.Lock()
	v, ok := c.get(context.Background())
	c.mu.Unlock()
	if !ok || v != 8 {
		t.Errorf("during a read: %d %v, want the previous 8", v, ok)
	}
}

// TestReadyzSchemaVersions: readiness accepts a schema newer than this
// build's (a rolling deploy migrated first), and reports both versions; an
// older one is a 503 that names both.
func TestReadyzSchemaVersions(t *testing.T) {
	d := dbtest.New(t)
	ts := newTestServer(t, openPool(t, d.DSN), nil)
	want := db.ExpectedVersion()
	var h HealthBody
	ts.getJSON(t, "/readyz", http.StatusOK, &h)
	if h.SchemaVersion != want || h.ExpectedSchemaVersion != want {
		t.Errorf("readyz at the expected version: %+v, want %d for both", h, want)
	}

	if _, err := d.Pool.Exec(t.Context(), `INSERT INTO `+db.VersionTable+` (version_id, is_applied) VALUES ($1, true)`, want+1); err != nil {
		t.Fatal(err)
	}
	ts.getJSON(t, "/readyz", http.StatusOK, &h)
	if h.SchemaVersion != want+1 || h.ExpectedSchemaVersion != want {
		t.Errorf("readyz on a newer schema: %+v, want schema %d, expected %d", h, want+1, want)
	}

	if _, err := d.Pool.Exec(t.Context(), `DELETE FROM `+db.VersionTable+` WHERE version_id >= $1`, want); err != nil {
		t.Fatal(err)
	}
	p := ts.wantProblem(t, "/readyz", http.StatusServiceUnavailable, "")
	if !strings.Contains(p.Detail, fmt.Sprint(want-1)) || !strings.Contains(p.Detail, fmt.Sprint(want)) {
		t.Errorf("readyz on an older schema: %q does not name both versions", p.Detail)
	}
}
