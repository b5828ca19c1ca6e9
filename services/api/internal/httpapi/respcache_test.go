package httpapi

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/db/seed"
)

// metricValue is the value of the counter or gauge name in reg (0 if absent).
func metricValue(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		return sum
	}
	return 0
}

type cacheCounts struct{ hits, misses, coalesced, evictions float64 }

func counts(t *testing.T, reg prometheus.Gatherer) cacheCounts {
	return cacheCounts{
		metricValue(t, reg, "sensorhub_response_cache_hits_total"),
		metricValue(t, reg, "sensorhub_response_cache_misses_total"),
		metricValue(t, reg, "sensorhub_response_cache_coalesced_total"),
		metricValue(t, reg, "sensorhub_response_cache_evictions_total"),
	}
}

// TestResponseCache: a repeated request is a hit with the same bytes and
// ETag; identical concurrent misses run the operation once; the gzip copy
// is made once and decodes to the answer; a load's new version is served
// within the version's poll interval and never the old answer after it; the
// byte bound holds, with evictions counted.
func TestResponseCache(t *testing.T) {
	r := loadReference(t)
	d := dbtest.New(t)
	if err := seed.Load(t.Context(), d.Pool, r.readings); err != nil {
		t.Fatal(err)
	}
	pool := openPool(t, d.DSN)
	const ttl = 100 * time.Millisecond
	ts := newTestServer(t, pool, func(_ *Deps, o *Options) { o.DatasetVersionTTL = ttl })
	reg := ts.registry

	path := "/v1/readings?device_id=device.foo&parameter=parameter.foo&limit=500"
	c0 := counts(t, reg)
	first, firstBody := rawGet(t, ts.url+path, "identity")
	second, secondBody := rawGet(t, ts.url+path, "identity")
	c1 := counts(t, reg)
	if first.StatusCode != 200 || !bytes.Equal(firstBody, secondBody) || first.Header.Get("ETag") != second.Header.Get("ETag") ||
		first.Header.Get("Content-Type") != second.Header.Get("Content-Type") {
		t.Errorf("a repeated request answered differently: %d %q %q / %q %q", first.StatusCode,
			first.Header.Get("ETag"), first.Header.Get("Content-Type"), second.Header.Get("ETag"), second.Header.Get("Content-Type"))
	}
	if c1.misses-c0.misses != 1 || c1.hits-c0.hits != 1 {
		t.Errorf("two identical requests: %v misses, %v hits; want 1 and 1", c1.misses-c0.misses, c1.hits-c0.hits)
	}

	// Identical concurrent requests: one computation, whatever the timing.
	const n = 16
	legacy := "/api/v1/core/process_request?device_id=device.bar"
	bodies := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, bodies[i] = rawGet(t, ts.url+legacy, "identity") })
	}
	wg.Wait()
	c2 := counts(t, reg)
	if c2.misses-c1.misses != 1 || (c2.hits-c1.hits)+(c2.coalesced-c1.coalesced) != n-1 {
		t.Errorf("%d identical concurrent requests: %v misses, %v hits, %v coalesced; want one miss", n,
			c2.misses-c1.misses, c2.hits-c1.hits, c2.coalesced-c1.coalesced)
	}
	for i := range bodies {
		if !bytes.Equal(bodies[i], bodies[0]) || len(bodies[0]) < 100_000 {
			t.Fatalf("concurrent answer %d: %d bytes, the first %d", i, len(bodies[i]), len(bodies[0]))
		}
	}

	// The gzip copy: made once, the same bytes every time, decoding to the answer.
	heldBefore := metricValue(t, reg, "sensorhub_response_cache_bytes")
	g1, gz1 := rawGet(t, ts.url+legacy, "gzip")
	g2, gz2 := rawGet(t, ts.url+legacy, "gzip")
	if g1.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(gz1, gz2) || !bytes.Equal(decode(t, "gzip", gz1), bodies[0]) {
		t.Errorf("cached gzip answers: %q, equal %v", g1.Header.Get("Content-Encoding"), bytes.Equal(gz1, gz2))
	}
	if held := metricValue(t, reg, "sensorhub_response_cache_bytes"); held < heldBefore+float64(len(gz1)) {
		t.Errorf("the cache holds %v bytes after keeping a %d-byte gzip copy, %v before: the copy is not counted", held, len(gz1), heldBefore)
	}
	if g2.Header.Get("Content-Length") != fmt.Sprint(len(gz2)) {
		t.Errorf("Content-Length %q for a %d-byte gzip body", g2.Header.Get("Content-Length"), len(gz2))
	}

	// A load: a new reading and a new version. Within the poll interval the
	// answer includes it, and from then on the old one is never served.
	const newest = "2024-03-08T00:00:00Z"
	_, err := d.Pool.Exec(t.Context(), `
		WITH s AS (SELECT series_id FROM sensorhub.series WHERE device_id = 'device.foo' AND parameter = 'parameter.foo')
		INSERT INTO sensorhub.readings (series_id, time, utc_offset_min, value_num) SELECT series_id, $1, 0, 42 FROM s`, newest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Pool.Exec(t.Context(), `UPDATE sensorhub.dataset_state SET version = version + 1`); err != nil {
		t.Fatal(err)
	}
	bumped := time.Now()
	latest := "/v1/readings?device_id=device.foo&parameter=parameter.foo&order=desc&limit=1"
	seen := false
	for time.Since(bumped) < 5*time.Second {
		_, body := rawGet(t, ts.url+latest, "identity")
		has := strings.Contains(string(body), `"value":42`)
		if seen && !has {
			t.Fatalf("the answer from before the load came back after the new one: %s", body)
		}
		if has && !seen {
			seen = true
			t.Logf("the load's answer was served %v after its commit (version poll interval %v)", time.Since(bumped).Round(time.Millisecond), ttl)
			if took := time.Since(bumped); took > ttl+time.Second {
				t.Errorf("the load's answer took %v, more than the poll interval %v allows", took, ttl)
			}
		}
		if seen && time.Since(bumped) > 3*ttl {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !seen {
		t.Fatal("the load's reading never showed")
	}

	// The byte bound.
	small := newTestServer(t, pool, func(_ *Deps, o *Options) { o.ResponseCacheBytes = 64 << 10 })
	for i := range 40 {
		rawGet(t, fmt.Sprintf("%s/v1/readings?device_id=device.foo&parameter=parameter.foo&limit=%d", small.url, 50+i), "identity")
	}
	cs := counts(t, small.registry)
	if held := metricValue(t, small.registry, "sensorhub_response_cache_bytes"); held > 64<<10 || held == 0 || cs.evictions == 0 {
		t.Errorf("a 64 KiB cache after 40 answers of ~5-10 KiB holds %v bytes with %v evictions", held, cs.evictions)
	}
}

// TestResponseCacheScopes: callers with different scopes never get each
// other's cached answers; the same caller gets its own from the cache.
func TestResponseCacheScopes(t *testing.T) {
	r := loadReference(t)
	d := dbtest.New(t)
	if err := seed.Load(t.Context(), d.Pool, r.readings); err != nil {
		t.Fatal(err)
	}
	f := newAccessFixture(t, openPool(t, d.DSN), nil)
	reg := f.ts.registry
	for _, path := range []string{"/v1/devices", "/v1/series", "/api/v1/core/process_request?limit=50"} {
		answers := map[string][]byte{}
		for _, round := range []int{1, 2} {
			for _, tn := range f.tenants {
				before := counts(t, reg)
				resp, body := rawGet(t, f.ts.url+path, "identity", tn.header)
				after := counts(t, reg)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s as %s: %d %s", path, tn.name, resp.StatusCode, body)
				}
				if round == 1 {
					answers[tn.name] = body
					if after.misses-before.misses != 1 {
						t.Errorf("%s as %s, first time: not a miss (another scope's answer served?)", path, tn.name)
					}
					continue
				}
				if !bytes.Equal(body, answers[tn.name]) || after.hits-before.hits != 1 {
					t.Errorf("%s as %s again: hit %v, same answer %v", path, tn.name, after.hits-before.hits, bytes.Equal(body, answers[tn.name]))
				}
			}
		}
		if bytes.Equal(answers["admin"], answers["foo"]) || bytes.Equal(answers["tenantA"], answers["foo"]) {
			t.Errorf("%s: scopes admin, foo and tenantA got equal answers; the fixture's data must tell them apart", path)
		}
		if strings.Contains(string(answers["foo"]), "device.bar") {
			t.Errorf("%s as foo (device.foo only) mentions device.bar: %.300s", path, answers["foo"])
		}
	}
}
