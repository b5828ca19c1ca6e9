package grafana

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"sigs.k8s.io/yaml"

	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/db/seed"
	"github.com/sensorhub/sensorhub/deploy/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// dashboard is the part of Grafana's dashboard JSON model the tests read.
type dashboard struct {
	file       string
	raw        any     // the whole model, for the checks that walk all of it
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Schema     int     `json:"schemaVersion"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	Targets    []target       `json:"targets"`
	Panels     []panel        `json:"panels"` // of a collapsed row
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
}

type target struct {
	RefID      string         `json:"refId"`
	Datasource *datasourceRef `json:"datasource"`
	Expr       string         `json:"expr"`
	RawSQL     string         `json:"rawSql"`
}

type variable struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Datasource *datasourceRef `json:"datasource"`
	Query      any            `json:"query"` // a string, or an object in newer models
	Current    struct {
		Text  any `json:"text"`  // a string, or a list for multi-value variables
		Value any `json:"value"` // likewise
	} `json:"current"`
	Options []struct {
		Value string `json:"value"`
	} `json:"options"`
}

func (v variable) queryText() string {
	switch q := v.Query.(type) {
	case string:
		return q
	case map[string]any:
		s, _ := q["query"].(string)
		return s
	}
	return ""
}

// provisioned is deploy/grafana/provisioning/datasources/datasources.yaml.
type provisioned struct {
	APIVersion  int `json:"apiVersion"`
	Datasources []struct {
		Name           string            `json:"name"`
		UID            string            `json:"uid"`
		Type           string            `json:"type"`
		Access         string            `json:"access"`
		URL            string            `json:"url"`
		User           string            `json:"user"`
		IsDefault      bool              `json:"isDefault"`
		Editable       bool              `json:"editable"`
		JSONData       map[string]any    `json:"jsonData"`
		SecureJSONData map[string]string `json:"secureJsonData"`
	} `json:"datasources"`
}

const (
	promType = "prometheus"
	pgType   = "grafana-postgresql-datasource"
)

func loadDashboards(t *testing.T) []dashboard {
	t.Helper()
	files, err := filepath.Glob("dashboards/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	var out []dashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if err := json.Unmarshal(b, &d.raw); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		d.file = f
		out = append(out, d)
	}
	return out
}

// allPanels flattens rows.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

func provisionedDatasources(t *testing.T) provisioned {
	t.Helper()
	b, err := os.ReadFile("provisioning/datasources/datasources.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var p provisioned
	if err := yaml.UnmarshalStrict(b, &p); err != nil {
		t.Fatalf("datasources.yaml: %v", err)
	}
	return p
}

// datasourceVar is how a dashboard refers to a datasource: "${name}" of a
// variable of type datasource, never a literal uid.
var datasourceVar = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$`)

// datasourceVariables maps a dashboard's datasource variables to the
// datasource type (plugin id) each offers.
func (d dashboard) datasourceVariables() map[string]string {
	out := map[string]string{}
	for _, v := range d.Templating.List {
		if v.Type == "datasource" {
			out[v.Name] = v.queryText()
		}
	}
	return out
}

// checkRef reports what is wrong with a datasource reference: it must be
// "${name}" of a datasource variable offering the reference's type.
func (d dashboard) checkRef(ref *datasourceRef) error {
	if ref == nil {
		return fmt.Errorf("no datasource")
	}
	m := datasourceVar.FindStringSubmatch(ref.UID)
	if m == nil {
		return fmt.Errorf("datasource uid %q is not a ${variable} reference", ref.UID)
	}
	offers, ok := d.datasourceVariables()[m[1]]
	if !ok {
		return fmt.Errorf("datasource %s: no datasource variable %s", ref.UID, m[1])
	}
	if offers != ref.Type {
		return fmt.Errorf("datasource %s has type %q, but variable %s offers %q", ref.UID, ref.Type, m[1], offers)
	}
	return nil
}

// TestProvisioning checks the datasources (Prometheus, and PostgreSQL as the
// read-only API user with its password from the environment) and that the
// dashboard provider reads the folder compose.yaml mounts the dashboards on.
func TestProvisioning(t *testing.T) {
	b, err := os.ReadFile("provisioning/datasources/datasources.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var p provisioned
	if err := yaml.UnmarshalStrict(b, &p); err != nil {
		t.Fatalf("datasources.yaml: %v", err)
	}
	types := map[string]string{}
	for _, ds := range p.Datasources {
		types[ds.UID] = ds.Type
		if ds.Type == pgType {
			if ds.User != "${SENSORHUB_PG_USER}" || ds.SecureJSONData["password"] != "${SENSORHUB_PG_PASSWORD}" {
				t.Errorf("PostgreSQL datasource: user %q, password %q: want them from the environment", ds.User, ds.SecureJSONData["password"])
			}
		}
	}
	if types["prometheus"] != promType || types["sensorhub-postgres"] != pgType {
		t.Errorf("datasources by uid %v: want prometheus (%s) and sensorhub-postgres (%s)", types, promType, pgType)
	}

	compose, err := os.ReadFile(filepath.Join(testenv.Root(t), "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"./deploy/grafana/dashboards:/etc/grafana/dashboards:ro",
		"./deploy/grafana/provisioning:/etc/grafana/provisioning:ro",
		"SENSORHUB_PG_USER: sensorhub_api",
	} {
		if !strings.Contains(string(compose), want) {
			t.Errorf("compose.yaml does not contain %q", want)
		}
	}
	var providers struct {
		APIVersion int `json:"apiVersion"`
		Providers  []struct {
			Name                  string            `json:"name"`
			Folder                string            `json:"folder"`
			Type                  string            `json:"type"`
			DisableDeletion       bool              `json:"disableDeletion"`
			AllowUIUpdates        bool              `json:"allowUiUpdates"`
			UpdateIntervalSeconds int               `json:"updateIntervalSeconds"`
			Options               map[string]string `json:"options"`
		} `json:"providers"`
	}
	b, err = os.ReadFile("provisioning/dashboards/dashboards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, &providers); err != nil {
		t.Fatalf("dashboards.yaml: %v", err)
	}
	if len(providers.Providers) != 1 || providers.Providers[0].Options["path"] != "/etc/grafana/dashboards" {
		t.Errorf("dashboard providers %+v: want one reading /etc/grafana/dashboards", providers.Providers)
	}
}

// TestDashboards checks the model: unique uids and panel ids, panels inside
// the 24-column grid, and every panel and query on a datasource variable
// of the right kind (TestDatasourceVariables checks what they resolve to)
// with a query of that kind.
func TestDashboards(t *testing.T) {
	uids := map[string]string{}
	for _, d := range loadDashboards(t) {
		if d.UID == "" || d.Title == "" || d.Schema == 0 {
			t.Errorf("%s: uid %q, title %q, schemaVersion %d: all are needed", d.file, d.UID, d.Title, d.Schema)
		}
		if prev, dup := uids[d.UID]; dup {
			t.Errorf("%s: uid %q already used by %s", d.file, d.UID, prev)
		}
		uids[d.UID] = d.file
		ids := map[int]bool{}
		for _, p := range allPanels(d.Panels) {
			where := fmt.Sprintf("%s: panel %d %q", d.file, p.ID, p.Title)
			if ids[p.ID] {
				t.Errorf("%s: duplicate panel id", where)
			}
			ids[p.ID] = true
			if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("%s: gridPos %+v outside the 24 columns", where, p.GridPos)
			}
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: no queries", where)
			}
			if p.Datasource != nil {
				if err := d.checkRef(p.Datasource); err != nil {
					t.Errorf("%s: %v", where, err)
				}
			}
			for _, q := range p.Targets {
				ds := q.Datasource
				if ds == nil {
					ds = p.Datasource
				}
				if err := d.checkRef(ds); err != nil {
					t.Errorf("%s/%s: %v", where, q.RefID, err)
					continue
				}
				switch {
				case ds.Type == promType && (q.Expr == "" || q.RawSQL != ""):
					t.Errorf("%s/%s: a Prometheus query needs expr only", where, q.RefID)
				case ds.Type == pgType && (q.RawSQL == "" || q.Expr != ""):
					t.Errorf("%s/%s: a PostgreSQL query needs rawSql only", where, q.RefID)
				}
			}
		}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			if err := d.checkRef(v.Datasource); err != nil || v.queryText() == "" {
				t.Errorf("%s: variable %s: needs a query on a datasource variable: %v", d.file, v.Name, err)
			}
		}
		// Anything else that names a datasource (annotations, say) too.
		walkObjects(d.raw, func(o map[string]any) {
			switch ds := o["datasource"].(type) {
			case nil:
			case map[string]any:
				typ, _ := ds["type"].(string)
				uid, _ := ds["uid"].(string)
				if err := d.checkRef(&datasourceRef{Type: typ, UID: uid}); err != nil {
					t.Errorf("%s: %v", d.file, err)
				}
			default:
				t.Errorf("%s: datasource %v by name; refer to a datasource variable as {type, uid: \"${name}\"}", d.file, ds)
			}
		})
	}
}

// walkObjects calls fn on every JSON object in v.
func walkObjects(v any, fn func(map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		fn(x)
		for _, e := range x {
			walkObjects(e, fn)
		}
	case []any:
		for _, e := range x {
			walkObjects(e, fn)
		}
	}
}

// walkStrings calls fn on every JSON string in v.
func walkStrings(v any, fn func(string)) {
	switch x := v.(type) {
	case string:
		fn(x)
	case map[string]any:
		for _, e := range x {
			walkStrings(e, fn)
		}
	case []any:
		for _, e := range x {
			walkStrings(e, fn)
		}
	}
}

// TestDatasourceVariables checks that each datasource variable resolves to
// a provisioned datasource the way Grafana picks one: the datasources of the
// variable's type; of those the one its current value names (by uid or
// name), else the default datasource, else the first. The Prometheus one
// must be the default datasource, so a dashboard opened without a saved
// choice, or on a Grafana with other Prometheus datasources, starts on it.
func TestDatasourceVariables(t *testing.T) {
	p := provisionedDatasources(t)
	var def string
	for _, ds := range p.Datasources {
		if ds.IsDefault {
			if def != "" {
				t.Errorf("datasources %s and %s are both the default", def, ds.UID)
			}
			def = ds.UID
		}
	}
	for _, d := range loadDashboards(t) {
		vars := d.datasourceVariables()
		if len(vars) == 0 {
			t.Errorf("%s: no datasource variable", d.file)
		}
		for _, v := range d.Templating.List {
			if v.Type != "datasource" {
				continue
			}
			var candidates []string
			isDefault := false
			byName := map[string]string{}
			for _, ds := range p.Datasources {
				if ds.Type == v.queryText() {
					candidates = append(candidates, ds.UID)
					byName[ds.UID], byName[ds.Name] = ds.UID, ds.UID
					isDefault = isDefault || ds.IsDefault
				}
			}
			if len(candidates) == 0 {
				t.Errorf("%s: variable %s offers datasources of type %q; none is provisioned", d.file, v.Name, v.queryText())
				continue
			}
			resolved := candidates[0]
			if isDefault {
				resolved = def
			}
			if cur, _ := v.Current.Value.(string); cur != "" {
				uid, ok := byName[cur]
				if !ok {
					t.Errorf("%s: variable %s: current value %q is no provisioned %s datasource (%v)", d.file, v.Name, cur, v.queryText(), candidates)
					continue
				}
				resolved = uid
			}
			switch v.queryText() {
			case promType:
				if !isDefault || resolved != def {
					t.Errorf("%s: variable %s resolves to %s; want the default datasource %s", d.file, v.Name, resolved, def)
				}
			case pgType:
				if resolved != "sensorhub-postgres" {
					t.Errorf("%s: variable %s resolves to %s; want sensorhub-postgres", d.file, v.Name, resolved)
				}
			default:
				t.Errorf("%s: variable %s offers %q: neither Prometheus nor PostgreSQL", d.file, v.Name, v.queryText())
			}
		}
	}
}

var (
	// $name, ${name} (also ${name:format}) and the old [[name]].
	variableRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}|\$([A-Za-z_][A-Za-z0-9_]*)|\[\[([A-Za-z_][A-Za-z0-9_]*)(?::[^\]]*)?\]\]`)
	// A PromQL selector of a metric the services expose, or up.
	promSelector = regexp.MustCompile(`\b(sensorhub_[a-z0-9_]+|up)\b(\s*\{([^}]*)\})?`)
	jobMatcher   = regexp.MustCompile(`\bjob\s*(=~|!~|!=|=)\s*"([^"]*)"`)
	labelValues  = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*job\s*\)$`)
)

// TestVariables checks that every dashboard defines each variable it uses
// (Grafana's own, $__..., aside) and uses each it defines, and that every
// PromQL selector filters by the job variable instead of naming a job, the
// job variable offering the job labels of a metric the services expose.
func TestVariables(t *testing.T) {
	for _, d := range loadDashboards(t) {
		defined := map[string]variable{}
		for _, v := range d.Templating.List {
			if _, dup := defined[v.Name]; dup {
				t.Errorf("%s: variable %s defined twice", d.file, v.Name)
			}
			defined[v.Name] = v
		}
		used := map[string]bool{}
		walkStrings(d.raw, func(s string) {
			for _, m := range variableRef.FindAllStringSubmatch(s, -1) {
				name := m[1] + m[2] + m[3]
				if strings.HasPrefix(name, "__") {
					continue // $__rate_interval, $__timeFilter, ...
				}
				used[name] = true
				if _, ok := defined[name]; !ok {
					t.Errorf("%s: uses $%s, which its templating.list does not define (in %q)", d.file, name, s)
				}
			}
		})
		for name := range defined {
			if !used[name] {
				t.Errorf("%s: variable %s is defined but not used", d.file, name)
			}
		}

		promQL := 0
		for _, p := range allPanels(d.Panels) {
			for _, q := range p.Targets {
				if q.Expr == "" {
					continue
				}
				promQL++
				for _, m := range promSelector.FindAllStringSubmatch(q.Expr, -1) {
					jm := jobMatcher.FindAllStringSubmatch(m[3], -1)
					if len(jm) != 1 || (jm[0][1] != "=" && jm[0][1] != "=~") || (jm[0][2] != "$job" && jm[0][2] != "${job}") {
						t.Errorf("%s: panel %q: %s in %q: want it filtered by job=~\"$job\", not a literal job or none", d.file, p.Title, m[0], q.Expr)
					}
				}
			}
		}
		if promQL == 0 {
			continue
		}
		job, ok := defined["job"]
		if !ok {
			t.Errorf("%s: PromQL panels but no job variable", d.file)
			continue
		}
		want := []string{"sensorhub_api", "sensorhub_ingest", "sensorhub_write"}
		if job.Type == "query" {
			m := labelValues.FindStringSubmatch(job.queryText())
			if m == nil {
				t.Errorf("%s: job variable query %q; want label_values(<metric>, job)", d.file, job.queryText())
			} else if u := testenv.UnknownMetrics(m[1]); len(u) > 0 || !strings.HasPrefix(m[1], "sensorhub_") {
				t.Errorf("%s: job variable reads %s, a metric the services do not expose", d.file, m[1])
			} else {
				want = []string{jobOf(m[1])}
			}
		}
		if cur, _ := job.Current.Value.(string); !slices.Contains(want, cur) {
			t.Errorf("%s: job variable defaults to %q; want %s, the job compose and the ServiceMonitors or the Pushgateway give the series it reads", d.file, cur, strings.Join(want, " or "))
		}
	}
}

// jobOf is the job label of a sensorhub_* metric's series: the write service
// (ingest serve) is scraped as sensorhub_write, the ingest job pushes as
// sensorhub_ingest, and the API is scraped as sensorhub_api (compose's
// prometheus.yml, the ServiceMonitors' jobLabel, deploy/prometheus/rules.yml).
func jobOf(metric string) string {
	switch {
	case strings.HasPrefix(metric, "sensorhub_write_"):
		return "sensorhub_write"
	case strings.HasPrefix(metric, "sensorhub_ingest_"):
		return "sensorhub_ingest"
	}
	return "sensorhub_api"
}

// TestWriteServiceDashboard checks that the write service's dashboard charts
// every sensorhub_write_* metric, the latency and group quantiles operators
// read, and the 503 share with the expression of the alert
// SensorhubWriteUnavailable (over $job and $__rate_interval instead of its
// literal job and 5m window).
func TestWriteServiceDashboard(t *testing.T) {
	var d *dashboard
	for _, x := range loadDashboards(t) {
		if x.UID == "sensorhub-write" {
			d = &x
		}
	}
	if d == nil {
		t.Fatal("no dashboard with uid sensorhub-write")
	}
	var exprs []string
	for _, p := range allPanels(d.Panels) {
		for _, q := range p.Targets {
			if q.Expr != "" {
				exprs = append(exprs, q.Expr)
			}
		}
	}
	charted := func(re *regexp.Regexp) bool {
		return slices.ContainsFunc(exprs, re.MatchString)
	}
	for name := range testenv.Metrics {
		if strings.HasPrefix(name, "sensorhub_write_") && !charted(regexp.MustCompile(`\b`+name+`(_bucket|_sum|_count)?\b`)) {
			t.Errorf("%s: no panel queries %s", d.file, name)
		}
	}
	for _, h := range []struct {
		histogram, quantile string
	}{
		{"sensorhub_write_request_duration_seconds", "0.5"},
		{"sensorhub_write_request_duration_seconds", "0.99"},
		{"sensorhub_write_commit_seconds", "0.99"},
		{"sensorhub_write_group_readings", "0.5"},
	} {
		re := regexp.MustCompile(`histogram_quantile\(\s*` + regexp.QuoteMeta(h.quantile) + `\s*,.*\b` + h.histogram + `_bucket\b`)
		if !charted(re) {
			t.Errorf("%s: no panel shows histogram_quantile(%s, ...%s_bucket...)", d.file, h.quantile, h.histogram)
		}
	}

	b, err := os.ReadFile(filepath.Join(testenv.Root(t), "deploy", "prometheus", "rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
				Expr  string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatalf("rules.yml: %v", err)
	}
	var alert string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "SensorhubWriteUnavailable" {
				alert = r.Expr
			}
		}
	}
	if alert == "" {
		t.Fatal("rules.yml has no alert SensorhubWriteUnavailable")
	}
	// The alert's ratio, without its threshold, as a panel writes it.
	ratio := regexp.MustCompile(`\s*>\s*[0-9.]+\s*$`).ReplaceAllString(alert, "")
	ratio = strings.NewReplacer(`job="sensorhub_write"`, `job=~"$job"`, "[5m]", "[$__rate_interval]").Replace(ratio)
	squash := func(s string) string { return strings.Join(strings.Fields(s), "") }
	if !slices.ContainsFunc(exprs, func(e string) bool { return squash(e) == squash(ratio) }) {
		t.Errorf("%s: no panel shows the 503 share of the alert SensorhubWriteUnavailable; want the expression\n%s", d.file, strings.TrimSpace(ratio))
	}
}

// TestKustomizationListsEveryDashboard keeps the Kubernetes ConfigMaps in
// step with the files compose mounts.
func TestKustomizationListsEveryDashboard(t *testing.T) {
	b, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		ConfigMapGenerator []struct {
			Name  string   `json:"name"`
			Files []string `json:"files"`
		} `json:"configMapGenerator"`
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, g := range k.ConfigMapGenerator {
		listed = append(listed, g.Files...)
	}
	for _, d := range loadDashboards(t) {
		if !slices.Contains(listed, d.file) {
			t.Errorf("%s is not in kustomization.yaml's configMapGenerator", d.file)
		}
	}
}

// Grafana's interval variables, replaced by typical values before parsing.
var promVariables = strings.NewReplacer(
	"$__rate_interval", "5m",
	"$__interval_ms", "60000",
	"$__interval", "1m",
	"$__range_s", "3600",
	"$__range", "1h",
)

// TestPromQL parses every Prometheus expression of every dashboard with
// promtool (each becomes a recording rule of a throwaway rules file, which
// `promtool check rules` parses with Prometheus's own parser) and checks
// that it uses only metrics and labels the services expose.
func TestPromQL(t *testing.T) {
	type rule struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	var rules []rule
	for _, d := range loadDashboards(t) {
		// The dashboard's own variables: their default (current) values.
		var pairs []string
		for _, v := range d.Templating.List {
			if cur, ok := v.Current.Value.(string); ok && v.Type != "datasource" {
				pairs = append(pairs, "${"+v.Name+"}", cur, "$"+v.Name, cur)
			}
		}
		own := strings.NewReplacer(pairs...)
		for _, p := range allPanels(d.Panels) {
			for _, q := range p.Targets {
				if q.Expr == "" {
					continue
				}
				expr := own.Replace(promVariables.Replace(q.Expr))
				if strings.Contains(expr, "$") {
					t.Errorf("%s: panel %q: unknown variable in %q", d.file, p.Title, q.Expr)
					continue
				}
				if u := testenv.UnknownMetrics(expr); len(u) > 0 {
					t.Errorf("%s: panel %q: metrics the services do not expose: %v", d.file, p.Title, u)
				}
				if u := testenv.UnknownLabels(expr); len(u) > 0 {
					t.Errorf("%s: panel %q: labels the metrics do not have: %v", d.file, p.Title, u)
				}
				name := fmt.Sprintf("dashboard:%s:panel%d_%s", strings.ReplaceAll(d.UID, "-", "_"), p.ID, q.RefID)
				rules = append(rules, rule{Record: name, Expr: expr})
			}
		}
	}
	if len(rules) == 0 {
		t.Fatal("no PromQL expressions found")
	}
	promtool := testenv.Tool(t, "promtool", "Debian: apt-get install prometheus")
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboards", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboards.rules.yml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := testenv.Run(t, ".", promtool, "check", "rules", path)
	if !strings.Contains(out, fmt.Sprintf("SUCCESS: %d rules found", len(rules))) {
		t.Errorf("promtool check rules: %s (want %d rules)", out, len(rules))
	}
}

var (
	timeFilter = regexp.MustCompile(`\$__timeFilter\(([^()]*)\)`)
	varRef     = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)
)

// grafanaSQL expands Grafana's SQL macros the way Grafana's PostgreSQL
// datasource does, with the time range as parameters $1 and $2, and the
// template variables as literals (the dashboards quote them themselves).
func grafanaSQL(raw string, vars map[string]string) (string, error) {
	s := timeFilter.ReplaceAllStringFunc(raw, func(m string) string {
		col := timeFilter.FindStringSubmatch(m)[1]
		return col + " BETWEEN $1 AND $2"
	})
	s = strings.NewReplacer("$__timeFrom()", "$1", "$__timeTo()", "$2").Replace(s)
	var err error
	s = varRef.ReplaceAllStringFunc(s, func(m string) string {
		sub := varRef.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		v, ok := vars[name]
		if !ok {
			err = fmt.Errorf("unknown macro or variable %s", m)
			return m
		}
		return v
	})
	return s, err
}

// The series the SQL test seeds and selects in the variables.
const (
	seedDevice    = "device.foo"
	seedParameter = "parameter.foo"
)

func seedReadings() []seed.Reading {
	start := time.Date(2024, 3, 7, 2, 34, 7, 325831000, time.FixedZone("", 2*3600))
	var rs []seed.Reading
	for i := range 150 { // two and a half hours, one reading a minute
		ts := start.Add(time.Duration(i) * time.Minute)
		rs = append(rs,
			seed.Reading{DeviceID: seedDevice, Parameter: seedParameter, Time: ts, Num: seed.Num(float64(i%17) + 0.5)},
			seed.Reading{DeviceID: seedDevice, Parameter: "parameter.text", Time: ts, Text: seed.Text(fmt.Sprintf("t%d", i))},
			seed.Reading{DeviceID: "device.bar", Parameter: seedParameter, Time: ts, Num: seed.Num(float64(i))},
		)
	}
	return rs
}

// TestSQL runs every SQL query of every dashboard (panels and template
// variables, each value of custom variables) against a migrated and seeded
// database as a member of sensorhub_reader, the role of Grafana's PostgreSQL
// datasource, on each schema path the test server has. Every query must
// succeed and return rows, since the seeded series has data in the range.
func TestSQL(t *testing.T) {
	type query struct {
		where, sql string
		custom     map[string][]string // custom variables' values
	}
	var queries []query
	for _, d := range loadDashboards(t) {
		custom := map[string][]string{}
		for _, v := range d.Templating.List {
			if v.Type == "custom" {
				for _, o := range v.Options {
					custom[v.Name] = append(custom[v.Name], o.Value)
				}
			}
		}
		for _, v := range d.Templating.List {
			if v.Type == "query" && v.Datasource != nil && v.Datasource.Type == pgType {
				queries = append(queries, query{fmt.Sprintf("%s: variable %s", d.file, v.Name), v.queryText(), custom})
			}
		}
		for _, p := range allPanels(d.Panels) {
			for _, q := range p.Targets {
				if q.RawSQL != "" {
					queries = append(queries, query{fmt.Sprintf("%s: panel %d %q/%s", d.file, p.ID, p.Title, q.RefID), q.RawSQL, custom})
				}
			}
		}
	}
	if len(queries) == 0 {
		t.Fatal("no SQL queries found")
	}
	from := time.Date(2024, 3, 6, 0, 0, 0, 0, time.UTC)
	to := time.Date(2024, 3, 8, 0, 0, 0, 0, time.UTC)

	dbtest.Each(t, func(t *testing.T, d *dbtest.DB) {
		if err := seed.Load(t.Context(), d.Pool, seedReadings()); err != nil {
			t.Fatal(err)
		}
		conn, err := pgx.Connect(t.Context(), d.RoleDSN(t, "sensorhub_reader"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) }) // t.Context is canceled by then

		for _, q := range queries {
			// One run per combination of the custom variables' values.
			runs := []map[string]string{{"device": seedDevice, "parameter": seedParameter}}
			for name, values := range q.custom {
				var next []map[string]string
				for _, r := range runs {
					for _, v := range values {
						m := map[string]string{name: v}
						for k, x := range r {
							m[k] = x
						}
						next = append(next, m)
					}
				}
				runs = next
			}
			for _, vars := range runs {
				sql, err := grafanaSQL(q.sql, vars)
				if err != nil {
					t.Errorf("%s: %v", q.where, err)
					continue
				}
				var args []any
				if strings.Contains(sql, "$1") {
					args = []any{from, to}
				}
				rows, err := conn.Query(t.Context(), sql, args...)
				if err != nil {
					t.Errorf("%s %v: %v\n%s", q.where, vars, err, sql)
					continue
				}
				var firsts []string
				n := 0
				for rows.Next() {
					vals, err := rows.Values()
					if err != nil {
						t.Errorf("%s: %v", q.where, err)
						break
					}
					firsts = append(firsts, fmt.Sprint(vals[0]))
					n++
				}
				if err := rows.Err(); err != nil {
					t.Errorf("%s %v: %v\n%s", q.where, vars, err, sql)
					continue
				}
				if n == 0 {
					t.Errorf("%s %v: no rows\n%s", q.where, vars, sql)
				}
				// The variables must offer the series the panels were run with.
				if strings.HasSuffix(q.where, "variable device") && !slices.Contains(firsts, seedDevice) {
					t.Errorf("%s: %v does not offer %s", q.where, firsts, seedDevice)
				}
				if strings.HasSuffix(q.where, "variable parameter") && !slices.Contains(firsts, seedParameter) {
					t.Errorf("%s: %v does not offer %s", q.where, firsts, seedParameter)
				}
			}
		}
	})
}
