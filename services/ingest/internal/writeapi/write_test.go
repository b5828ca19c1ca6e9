package writeapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/db/apikey"
	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/db/ratelimit"
	"github.com/sensorhub/sensorhub/services/ingest/internal/copyload"
	"github.com/sensorhub/sensorhub/services/ingest/internal/writeapi"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

const (
	keyAll    = "write-key-of-the-gateway-0123456789"
	keyTenant = "write-key-of-tenant-a-0123456789"
)

func testKeys(t *testing.T) *apikey.Set {
	t.Helper()
	keys, err := apikey.ParseKeys([]byte(`[
		{"name": "gateway", "sha256": "` + apikey.HashKey(keyAll) + `"},
		{"name": "tenantA", "sha256": "` + apikey.HashKey(keyTenant) + `", "devices": ["dev.a"], "prefixes": ["temp"]}
	]`))
	if err != nil {
		t.Fatal(err)
	}
	return apikey.NewSet(keys)
}

type service struct {
	url  string
	pool *pgxpool.Pool
}

type serviceOpts struct {
	keys   *apikey.Set
	limits writeapi.Limits
	rate   *ratelimit.Limiter
}

// newService runs the write service over d with real committers.
func newService(t *testing.T, d *dbtest.DB, o serviceOpts) service {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	loader, err := copyload.NewLoader(ctx, d.Pool)
	if err != nil {
		t.Fatal(err)
	}
	committers := map[copyload.Mode]*copyload.Committer{}
	var wg sync.WaitGroup
	for _, mode := range []copyload.Mode{copyload.ModeSkip, copyload.ModeOverwrite} {
		c := copyload.NewCommitter(loader, copyload.GroupOptions{Mode: mode, MaxWait: 2 * time.Millisecond, CommitTimeout: 2 * time.Second})
		committers[mode] = c
		wg.Go(func() { c.Run(ctx) })
	}
	if o.limits.MaxListed == 0 {
		o.limits.MaxListed = 100
	}
	h := writeapi.NewHandler(writeapi.Deps{Loader: loader, Committers: committers, Keys: o.keys, RateLimit: o.rate, Limits: o.limits}, nil)
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		cancel()
		wg.Wait()
	})
	return service{url: srv.URL, pool: d.Pool}
}

type answer struct {
	status int
	header http.Header
	result writeapi.WriteResult
	body   string
}

func (s service) push(t *testing.T, query, contentType, key string, body []byte, gz bool) answer {
	t.Helper()
	if gz {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(body)
		zw.Close()
		body = buf.Bytes()
	}
	req, err := http.NewRequest(http.MethodPost, s.url+"/v1/write"+query, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, body: string(raw)}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &a.result); err != nil {
			t.Fatalf("answer %s: %v", raw, err)
		}
	}
	return a
}

// storedReading is one reading as the database holds it.
type storedReading struct {
	device, parameter, time string
	offset                  int
	num                     *float64
	text                    *string
}

func readAll(t *testing.T, pool *pgxpool.Pool) []storedReading {
	t.Helper()
	rows, err := pool.Query(t.Context(), `
		SELECT s.device_id, s.parameter, to_char(r.time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), r.utc_offset_min, r.value_num, r.value_text
		FROM sensorhub.readings r JOIN sensorhub.series s USING (series_id) ORDER BY 1, 2, r.time`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []storedReading
	for rows.Next() {
		var r storedReading
		if err := rows.Scan(&r.device, &r.parameter, &r.time, &r.offset, &r.num, &r.text); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func (r storedReading) String() string {
	v := "<nil>"
	if r.num != nil {
		v = fmt.Sprint(*r.num)
	}
	if r.text != nil {
		v = fmt.Sprintf("%q", *r.text)
	}
	return fmt.Sprintf("%s/%s@%s%+d=%s", r.device, r.parameter, r.time, r.offset, v)
}

func strs(rs []storedReading) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	return out
}

// TestWriteEachFormat pushes the same four readings in each format, plain
// and gzipped, and checks what is stored against the readings written out
// by hand; the second push of each is all duplicates.
func TestWriteEachFormat(t *testing.T) {
	want := []string{
		`dev.a/hum@2024-03-10T09:30:00.000000+60="dry"`,
		`dev.a/temp@2024-03-10T09:30:00.000000+60=21.5`,
		`dev.a/temp@2024-03-10T09:31:00.000001+60=-0.000125`,
		`dev.b/temp@2024-03-10T09:30:00.000000+60=1e+99`,
	}
	bodies := []struct {
		name, contentType, query, body string
	}{
		{"ndjson", "application/x-ndjson", "", `{"device_id":"dev.a","parameter":"temp","timestamp":"2024-03-10T10:30:00+01:00","value":21.5}
{"device_id":"dev.a","parameter":"temp","timestamp":"2024-03-10T10:31:00.000001+01:00","value":-0.000125}
{"device_id":"dev.a","parameter":"hum","timestamp":"2024-03-10T10:30:00+01:00","value":"dry","type":"text"}
{"device_id":"dev.b","parameter":"temp","timestamp":"2024-03-10T10:30:00+01:00","value":1e99}
`},
		{"ndjson", "application/x-www-form-urlencoded", "", `{"device_id":"dev.a","parameter":"temp","timestamp":"2024-03-10T10:30:00+01:00","value":21.5}
{"device_id":"dev.a","parameter":"temp","timestamp":"2024-03-10T10:31:00.000001+01:00","value":-0.000125}
{"device_id":"dev.a","parameter":"hum","timestamp":"2024-03-10T10:30:00+01:00","value":"dry","type":"text"}
{"device_id":"dev.b","parameter":"temp","timestamp":"2024-03-10T10:30:00+01:00","value":1e99}
`},
		{"csv", "text/csv", "", "device_id,parameter,timestamp,value,type\n" +
			"dev.a,temp,2024-03-10T10:30:00+01:00,21.5,numeric\n" +
			"dev.a,temp,2024-03-10T10:31:00.000001+01:00,-0.000125,numeric\n" +
			"dev.a,hum,2024-03-10T10:30:00+01:00,dry,text\n" +
			"dev.b,temp,2024-03-10T10:30:00+01:00,1e99,numeric\n"},
		{"reference", "application/json", "", `{"dev.a": [
			{"parameter": "temp", "timestamp": "2024-03-10T10:30:00+01:00", "value": 21.5, "type": "numeric"},
			{"parameter": "temp", "timestamp": "2024-03-10T10:31:00.000001+01:00", "value": -0.000125, "type": "numeric"},
			{"parameter": "hum", "timestamp": "2024-03-10T10:30:00+01:00", "value": "dry", "type": "text"}],
			"dev.b": [{"parameter": "temp", "timestamp": "2024-03-10T10:30:00+01:00", "value": 1e99, "type": "numeric"}]}`},
	}
	dbtest.Each(t, func(t *testing.T, d *dbtest.DB) {
		s := newService(t, d, serviceOpts{})
		for _, b := range bodies {
			for _, gz := range []bool{false, true} {
				name := fmt.Sprintf("%s (%s) gzip=%v", b.name, b.contentType, gz)
				if _, err := d.Pool.Exec(t.Context(), `TRUNCATE sensorhub.readings`); err != nil {
					t.Fatal(err)
				}
				a := s.push(t, b.query, b.contentType, "", []byte(b.body), gz)
				if a.status != http.StatusOK || a.result.Accepted != 4 || a.result.Inserted != 4 || a.result.Rejected != 0 || a.result.Format != b.name {
					t.Fatalf("%s: %d %s", name, a.status, a.body)
				}
				if got := strs(readAll(t, d.Pool)); strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("%s: stored\n%s\nwant\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				a = s.push(t, b.query, b.contentType, "", []byte(b.body), gz)
				if a.status != http.StatusOK || a.result.Inserted != 0 || a.result.Duplicates != 4 {
					t.Errorf("%s again: %d %s", name, a.status, a.body)
				}
			}
		}
	})
}

// TestWriteLineProtocol checks the documented mapping: the series key as
// device, a parameter per field, the precision parameter, and the server's
// time for a line without one.
func TestWriteLineProtocol(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *dbtest.DB) {
		s := newService(t, d, serviceOpts{})
		body := "env,room=b\\ 2,site=x temp=21.5,ok=true,label=\"hi\",n=3i 1710063000\n" +
			"# a comment\n\n" +
			"env temp=1 1710063060\n"
		before := time.Now().UTC().Truncate(time.Second)
		a := s.push(t, "?precision=s", "text/plain; charset=utf-8", "", []byte(body+"env now=7\n"), false)
		after := time.Now().UTC()
		if a.status != http.StatusOK || a.result.Inserted != 6 || a.result.Format != "line" {
			t.Fatalf("%d %s", a.status, a.body)
		}
		got := readAll(t, d.Pool)
		want := []string{
			`env/temp@2024-03-10T09:31:00.000000+0=1`,
			`env,room=b\ 2,site=x/label@2024-03-10T09:30:00.000000+0="hi"`,
			`env,room=b\ 2,site=x/n@2024-03-10T09:30:00.000000+0=3`,
			`env,room=b\ 2,site=x/ok@2024-03-10T09:30:00.000000+0="true"`,
			`env,room=b\ 2,site=x/temp@2024-03-10T09:30:00.000000+0=21.5`,
		}
		var now *storedReading
		var rest []storedReading
		for i := range got {
			if got[i].parameter == "now" {
				now = &got[i]
			} else {
				rest = append(rest, got[i])
			}
		}
		if g := strs(rest); strings.Join(g, "\n") != strings.Join(want, "\n") {
			t.Errorf("stored\n%s\nwant\n%s", strings.Join(g, "\n"), strings.Join(want, "\n"))
		}
		if now == nil {
			t.Fatal("the line without a timestamp was not stored")
		}
		at, err := time.Parse("2006-01-02T15:04:05.000000", now.time)
		if err != nil || at.Before(before) || at.After(after) || at.Nanosecond() != 0 {
			t.Errorf("line without timestamp stored at %s; want the server's time in [%s, %s] in whole seconds", now.time, before, after)
		}
	})
}

// TestWriteRejectsAndMalformed: rejected readings are listed with their
// line and their neighbours committed; a malformed body commits nothing and
// names its position; the bounds answer 413.
func TestWriteRejectsAndMalformed(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *dbtest.DB) {
		s := newService(t, d, serviceOpts{limits: writeapi.Limits{MaxBodyBytes: 4096, MaxReadings: 30, MaxListed: 2}})
		body := `{"device_id":"d","parameter":"p","timestamp":"2024-01-01T00:00:00Z","value":1}
{"device_id":"d","parameter":"p","timestamp":"2024-01-01T00:01:00","value":2}
{"device_id":"d","parameter":"p","timestamp":"2024-01-01T00:02:00Z","value":"NaN"}
{"device_id":"d","parameter":"p","timestamp":"2024-01-01T00:03:00Z","value":"x","type":"text"}
{"device_id":"d","parameter":"p","timestamp":"2024-01-01T00:04:00Z","value":5}
`
		a := s.push(t, "", "application/x-ndjson", "", []byte(body), false)
		if a.status != http.StatusOK || a.result.Accepted != 2 || a.result.Inserted != 2 || a.result.Rejected != 3 ||
			len(a.result.Rejects) != 2 || a.result.RejectsListedAll {
			t.Fatalf("%d %s", a.status, a.body)
		}
		if r := a.result.Rejects[0]; r.Line != 2 || r.Field != "timestamp" || r.Reason == "" {
			t.Errorf("first reject %+v; want line 2, field timestamp", r)
		}
		if r := a.result.Rejects[1]; r.Line != 3 || r.Field != "type" || !strings.Contains(r.Reason, "series d/p is numeric") {
			t.Errorf("second reject %+v; want line 3, field type, the series' type as reason", r)
		}
		if n := len(readAll(t, d.Pool)); n != 2 {
			t.Errorf("%d readings stored, want 2", n)
		}

		// A reference document cut short: its readings before the cut
		// parse, but the body as a whole is malformed.
		malformed := `{"d": [
{"parameter": "q", "timestamp": "2024-01-01T00:00:00Z", "value": 1, "type": "numeric"},
{"parameter": "q", "timestamp": "2024-01-01T00:01:00Z", "value": 2, "type": "numeric"},
{"parameter": "q", "timestamp": `
		a = s.push(t, "", "application/json", "", []byte(malformed), false)
		if a.status != http.StatusBadRequest || !strings.Contains(a.body, "body:4 /d/2/timestamp") || !strings.Contains(a.body, "nothing was written") {
			t.Errorf("malformed: %d %s; want 400 naming body:4 /d/2/timestamp", a.status, a.body)
		}
		if n := len(readAll(t, d.Pool)); n != 2 {
			t.Errorf("after the malformed body %d readings are stored, want still 2", n)
		}

		line := `{"device_id":"d","parameter":"p","timestamp":"2024-01-01T00:00:00Z","value":1}` + "\n"
		long := `{"device_id":"d","parameter":"` + strings.Repeat("p", 150) + `","timestamp":"2024-01-01T00:00:00Z","value":1}` + "\n"
		if a := s.push(t, "", "application/x-ndjson", "", []byte(strings.Repeat(long, 20)), false); a.status != http.StatusRequestEntityTooLarge || !strings.Contains(a.body, "4096 bytes") {
			t.Errorf("body over the byte bound: %d %s", a.status, a.body)
		}
		if a := s.push(t, "", "application/x-ndjson", "", []byte(strings.Repeat(line, 31)), false); a.status != http.StatusRequestEntityTooLarge || !strings.Contains(a.body, "30 readings") {
			t.Errorf("body over the readings bound: %d %s", a.status, a.body)
		}
		if a := s.push(t, "", "application/xml", "", []byte("<x/>"), false); a.status != http.StatusUnsupportedMediaType {
			t.Errorf("xml: %d %s", a.status, a.body)
		}
		if n := len(readAll(t, d.Pool)); n != 2 {
			t.Errorf("after the refused bodies %d readings are stored, want still 2", n)
		}
	})
}

// TestWriteKeysAndScope: a key writes only inside its scope; no key, an
// unknown key and a spent rate limit are refused.
func TestWriteKeysAndScope(t *testing.T) {
	d := dbtest.New(t)
	s := newService(t, d, serviceOpts{keys: testKeys(t), rate: ratelimit.New(1, 3, 0)})
	body := []byte(`{"device_id":"dev.a","parameter":"temp.1","timestamp":"2024-01-01T00:00:00Z","value":1}
{"device_id":"dev.a","parameter":"hum","timestamp":"2024-01-01T00:00:00Z","value":2}
{"device_id":"dev.b","parameter":"temp.1","timestamp":"2024-01-01T00:00:00Z","value":3}
`)
	if a := s.push(t, "", "", "", body, false); a.status != http.StatusUnauthorized {
		t.Errorf("no key: %d %s", a.status, a.body)
	}
	if a := s.push(t, "", "", "not-a-key", body, false); a.status != http.StatusUnauthorized {
		t.Errorf("unknown key: %d %s", a.status, a.body)
	}
	a := s.push(t, "", "", keyTenant, body, false)
	if a.status != http.StatusOK || a.result.Inserted != 1 || a.result.Rejected != 2 {
		t.Fatalf("tenant key: %d %s", a.status, a.body)
	}
	for _, r := range a.result.Rejects {
		if !strings.Contains(r.Reason, `outside the scope of write key "tenantA"`) {
			t.Errorf("reject %+v: want the scope as reason", r)
		}
	}
	if got := strs(readAll(t, d.Pool)); len(got) != 1 || got[0] != "dev.a/temp.1@2024-01-01T00:00:00.000000+0=1" {
		t.Errorf("stored %v", got)
	}
	// The rate limit allows a burst of 3 per key: the tenant has spent one
	// push; two more pass, the fourth waits.
	for i := 0; i < 2; i++ {
		if a := s.push(t, "", "", keyTenant, body, false); a.status != http.StatusOK {
			t.Fatalf("push %d: %d %s", i+2, a.status, a.body)
		}
	}
	a = s.push(t, "", "", keyTenant, body, false)
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" {
		t.Errorf("over the rate: %d %s, Retry-After %q", a.status, a.body, a.header.Get("Retry-After"))
	}
	if a := s.push(t, "", "", keyAll, body, false); a.status != http.StatusOK || a.result.Inserted != 2 || a.result.Duplicates != 1 {
		t.Errorf("gateway key, its own bucket: %d %s", a.status, a.body)
	}
}

// TestWriteBusyAnswers503 holds a lock the commit needs: the push is
// answered 503 with Retry-After within its bounds (-write-wait, then the
// commit timeout rolls its group back), nothing of it is written, and once
// the lock is gone the same body is inserted. A push queued behind the
// stuck group is withdrawn at its wait and answered 503 too.
func TestWriteBusyAnswers503(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *dbtest.DB) {
		s := newService(t, d, serviceOpts{limits: writeapi.Limits{Wait: 500 * time.Millisecond}})
		body := []byte(`{"device_id":"d","parameter":"p","timestamp":"2024-01-01T00:00:00Z","value":1}` + "\n")
		// Create the series first, so that only the commit can block.
		if a := s.push(t, "", "", "", body, false); a.status != http.StatusOK {
			t.Fatalf("%d %s", a.status, a.body)
		}
		tx, err := d.Pool.Begin(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(t.Context(), `LOCK TABLE sensorhub.dataset_state IN ACCESS EXCLUSIVE MODE`); err != nil {
			t.Fatal(err)
		}
		stuck := []byte(`{"device_id":"d","parameter":"p","timestamp":"2024-01-02T00:00:00Z","value":2}` + "\n")
		queued := []byte(`{"device_id":"d","parameter":"p","timestamp":"2024-01-03T00:00:00Z","value":3}` + "\n")
		var wg sync.WaitGroup
		answers := make([]answer, 2)
		start := time.Now()
		wg.Go(func() { answers[0] = s.push(t, "", "", "", stuck, false) })
		time.Sleep(100 * time.Millisecond) // the first push's group is writing
		wg.Go(func() { answers[1] = s.push(t, "", "", "", queued, false) })
		wg.Wait()
		took := time.Since(start)
		for i, a := range answers {
			if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" {
				t.Errorf("push %d while locked: %d %s, Retry-After %q; want 503 with Retry-After", i, a.status, a.body, a.header.Get("Retry-After"))
			}
		}
		if took > 5*time.Second {
			t.Errorf("the pushes were answered after %v; the bounds are 0.5 s + 2 s", took)
		}
		if err := tx.Rollback(t.Context()); err != nil {
			t.Fatal(err)
		}
		if n := len(readAll(t, d.Pool)); n != 1 {
			t.Errorf("%d readings stored after two 503 answers, want the first push's 1", n)
		}
		for i, b := range [][]byte{stuck, queued} {
			if a := s.push(t, "", "", "", b, false); a.status != http.StatusOK || a.result.Inserted != 1 {
				t.Errorf("push %d again after the lock: %d %s; want it inserted", i, a.status, a.body)
			}
		}
	})
}

// TestInfluxV2Write: what Telegraf's influxdb_v2 output sends (Token auth,
// org and bucket, precision, gzip) is written and answered 204; a batch with
// a bad line commits the others and answers InfluxDB's 400 partial write.
func TestInfluxV2Write(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *dbtest.DB) {
		s := newService(t, d, serviceOpts{keys: testKeys(t)})
		post := func(body string, gz bool) (int, string) {
			t.Helper()
			data := []byte(body)
			if gz {
				var buf bytes.Buffer
				zw := gzip.NewWriter(&buf)
				zw.Write(data)
				zw.Close()
				data = buf.Bytes()
			}
			req, err := http.NewRequest(http.MethodPost, s.url+"/api/v2/write?org=acme&bucket=telegraf&precision=s", bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Token "+keyAll)
			req.Header.Set("Content-Type", "text/plain; charset=utf-8")
			if gz {
				req.Header.Set("Content-Encoding", "gzip")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(raw)
		}
		if code, body := post("cpu,host=a usage_idle=97.5,usage_user=1.25 1710063000\n", true); code != http.StatusNoContent || body != "" {
			t.Fatalf("good batch: %d %q; want 204 without a body", code, body)
		}
		code, body := post("cpu,host=a usage_idle=96 1710063010\ncpu,host=a usage_idle= 1710063020\ncpu,host=a usage_idle=95 1710063030\n", false)
		var e writeapi.InfluxError
		if code != http.StatusBadRequest || json.Unmarshal([]byte(body), &e) != nil || e.Code != "invalid" ||
			!strings.HasPrefix(e.Message, "partial write: 1 of 3") || !strings.Contains(e.Message, "line 2") {
			t.Errorf("batch with a bad line: %d %s; want InfluxDB's 400 partial write naming line 2", code, body)
		}
		got := strs(readAll(t, d.Pool))
		want := []string{
			"cpu,host=a/usage_idle@2024-03-10T09:30:00.000000+0=97.5",
			"cpu,host=a/usage_idle@2024-03-10T09:30:10.000000+0=96",
			"cpu,host=a/usage_idle@2024-03-10T09:30:30.000000+0=95",
			"cpu,host=a/usage_user@2024-03-10T09:30:00.000000+0=1.25",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("stored\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if code, _ := post("cpu usage_idle=1\n", false); code != http.StatusNoContent {
			t.Errorf("a line without timestamp: %d", code)
		}
	})
}

// TestWriteAfterPartitionDropped: on plain PostgreSQL the service remembers
// which partitions exist; one dropped behind its back (by hand, by a
// retention job) is created again instead of failing every later push.
func TestWriteAfterPartitionDropped(t *testing.T) {
	d := dbtest.NewFlavor(t, "postgres")
	s := newService(t, d, serviceOpts{})
	body := []byte(`{"device_id":"d","parameter":"p","timestamp":"2024-01-01T00:00:00Z","value":1}` + "\n")
	if a := s.push(t, "", "", "", body, false); a.status != http.StatusOK || a.result.Inserted != 1 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	var part string
	if err := d.Pool.QueryRow(t.Context(), `SELECT tableoid::regclass::text FROM sensorhub.readings LIMIT 1`).Scan(&part); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Pool.Exec(t.Context(), `DROP TABLE `+part); err != nil {
		t.Fatal(err)
	}
	body = []byte(`{"device_id":"d","parameter":"p","timestamp":"2024-01-01T00:01:00Z","value":2}` + "\n")
	if a := s.push(t, "", "", "", body, false); a.status != http.StatusOK || a.result.Inserted != 1 {
		t.Errorf("after the partition %s was dropped: %d %s; want it created again and the reading inserted", part, a.status, a.body)
	}
}
