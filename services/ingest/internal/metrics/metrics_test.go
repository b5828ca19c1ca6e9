package metrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/sensorhub/sensorhub/services/ingest/internal/copyload"
)

// pushed is what a fake Pushgateway received.
type pushed struct {
	method, path string
	families     map[string]*dto.MetricFamily
}

// fakePushgateway records every push and answers 200.
func fakePushgateway(t *testing.T) (url string, got func() []pushed) {
	t.Helper()
	var (
		mu  sync.Mutex
		all []pushed
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fams, err := decodeDelimited(r.Body)
		if err != nil {
			t.Errorf("push body: %v", err)
		}
		mu.Lock()
		all = append(all, pushed{r.Method, r.URL.Path, fams})
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []pushed {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(all)
	}
}

// decodeDelimited reads the length-delimited protobuf the push client sends.
func decodeDelimited(r io.Reader) (map[string]*dto.MetricFamily, error) {
	fams := map[string]*dto.MetricFamily{}
	dec := expfmt.NewDecoder(r, expfmt.NewFormat(expfmt.TypeProtoDelim))
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			if errors.Is(err, io.EOF) {
				return fams, nil
			}
			return fams, err
		}
		fams[mf.GetName()] = mf
	}
}

func gather(t *testing.T, g prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// value returns the value of the family's metric whose labels are
// label=value pairs (none for an unlabelled metric).
func value(mf *dto.MetricFamily, labels ...string) (float64, bool) {
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		var ls []string
		for _, l := range m.GetLabel() {
			ls = append(ls, l.GetName()+"="+l.GetValue())
		}
		if slices.Equal(ls, labels) {
			return m.GetGauge().GetValue() + m.GetCounter().GetValue() + m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

func counters() *copyload.Counters {
	c := &copyload.Counters{}
	c.Read.Store(10)
	c.Inserted.Store(6)
	c.Duplicates.Store(2)
	c.Updated.Store(1)
	c.Rejected.Store(1)
	c.Bytes.Store(1234)
	c.Batches.Store(3)
	return c
}

var lastRunNames = []string{
	"sensorhub_ingest_last_run_batches",
	"sensorhub_ingest_last_run_bytes",
	"sensorhub_ingest_last_run_duration_seconds",
	"sensorhub_ingest_last_run_failed",
	"sensorhub_ingest_last_run_readings",
}

// TestPushCarriesTheLastRunOnly: a successful run pushes its last_run_*
// gauges and the success time, with POST to the job's group, and no runtime
// metrics, which the Pushgateway would keep, stale, after the job exited.
func TestPushCarriesTheLastRunOnly(t *testing.T) {
	url, got := fakePushgateway(t)
	m := New(counters())
	m.Finish(90*time.Second, nil)
	if err := m.Push(t.Context(), url); err != nil {
		t.Fatal(err)
	}
	pushes := got()
	if len(pushes) != 1 || pushes[0].method != http.MethodPost || pushes[0].path != "/metrics/job/"+Job {
		t.Fatalf("pushes %+v; want one POST to /metrics/job/%s", pushes, Job)
	}
	fams := pushes[0].families
	var names []string
	for name, mf := range fams {
		names = append(names, name)
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") || strings.HasPrefix(name, "promhttp_") {
			t.Errorf("pushed the runtime metric %s", name)
		}
		if strings.HasSuffix(name, "_total") || mf.GetType() == dto.MetricType_COUNTER {
			t.Errorf("pushed %s as a counter: a pushed value is the last run's, a gauge", name)
		}
	}
	slices.Sort(names)
	want := append(slices.Clone(lastRunNames), "sensorhub_ingest_last_success_timestamp_seconds")
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("pushed %v, want %v", names, want)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"sensorhub_ingest_last_run_duration_seconds", nil, 90},
		{"sensorhub_ingest_last_run_failed", nil, 0},
		{"sensorhub_ingest_last_run_readings", []string{"result=read"}, 10},
		{"sensorhub_ingest_last_run_readings", []string{"result=inserted"}, 6},
		{"sensorhub_ingest_last_run_readings", []string{"result=duplicate"}, 2},
		{"sensorhub_ingest_last_run_readings", []string{"result=updated"}, 1},
		{"sensorhub_ingest_last_run_readings", []string{"result=rejected"}, 1},
		{"sensorhub_ingest_last_run_bytes", nil, 1234},
		{"sensorhub_ingest_last_run_batches", nil, 3},
	} {
		if v, ok := value(fams[c.name], c.labels...); !ok || v != c.want {
			t.Errorf("pushed %s%v = %v (present %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	if v, _ := value(fams["sensorhub_ingest_last_success_timestamp_seconds"]); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last success %v is not now", v)
	}
}

// TestFailedRunKeepsTheLastSuccess: a failed run pushes failed=1 and no
// success time, so the Pushgateway keeps the previous run's (POST replaces
// only the names it carries).
func TestFailedRunKeepsTheLastSuccess(t *testing.T) {
	url, got := fakePushgateway(t)
	m := New(counters())
	m.Finish(time.Second, errors.New("boom"))
	if err := m.Push(t.Context(), url); err != nil {
		t.Fatal(err)
	}
	pushes := got()
	if len(pushes) != 1 || pushes[0].method != http.MethodPost {
		t.Fatalf("pushes %+v; want one POST", pushes)
	}
	fams := pushes[0].families
	if _, ok := fams["sensorhub_ingest_last_success_timestamp_seconds"]; ok {
		t.Error("a failed run pushed a last success time")
	}
	if v, ok := value(fams["sensorhub_ingest_last_run_failed"]); !ok || v != 1 {
		t.Errorf("last_run_failed = %v (present %v), want 1", v, ok)
	}
	if v, ok := value(fams["sensorhub_ingest_last_run_readings"], "result=rejected"); !ok || v != 1 {
		t.Errorf("a failed run's rejects = %v (present %v), want 1", v, ok)
	}
}

// TestLiveRegistry: -metrics-addr serves the loader's counters as they grow
// and the runtime metrics, and none of the last-run gauges, which mean
// nothing before the run ends.
func TestLiveRegistry(t *testing.T) {
	c := counters()
	m := New(c)
	fams := gather(t, m.Live)
	if v, ok := value(fams["sensorhub_ingest_readings_total"], "result=read"); !ok || v != 10 ||
		fams["sensorhub_ingest_readings_total"].GetType() != dto.MetricType_COUNTER {
		t.Errorf("live readings_total{read} = %v (present %v), want the counter at 10", v, ok)
	}
	c.Read.Add(5)
	if v, _ := value(gather(t, m.Live)["sensorhub_ingest_readings_total"], "result=read"); v != 15 {
		t.Errorf("live readings_total{read} = %v after 5 more, want 15", v)
	}
	for _, name := range []string{"sensorhub_ingest_bytes_total", "sensorhub_ingest_batches_total", "go_goroutines"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("live registry lacks %s", name)
		}
	}
	if runtime.GOOS == "linux" {
		if _, ok := fams["process_cpu_seconds_total"]; !ok {
			t.Error("live registry lacks process_cpu_seconds_total")
		}
	}
	m.Finish(time.Second, nil)
	for name := range gather(t, m.Live) {
		if strings.HasPrefix(name, "sensorhub_ingest_last_") {
			t.Errorf("live registry serves %s", name)
		}
	}
}
