package prometheus

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/sensorhub/sensorhub/deploy/internal/testenv"
)

const installPromtool = "Debian: apt-get install prometheus"

// rulesFile is the shape of a Prometheus rules file.
type rulesFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Record      string            `json:"record"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

// testFile is the part of a promtool unit test file the coverage check reads.
type testFile struct {
	RuleFiles          []string `json:"rule_files"`
	EvaluationInterval string   `json:"evaluation_interval"`
	Tests              []struct {
		Name          string `json:"name"`
		Interval      string `json:"interval"`
		InputSeries   []any  `json:"input_series"`
		AlertRuleTest []struct {
			EvalTime  string `json:"eval_time"`
			Alertname string `json:"alertname"`
			ExpAlerts []any  `json:"exp_alerts"`
		} `json:"alert_rule_test"`
	} `json:"tests"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// The alerts issue 4 asks for; docs/operations.md explains each.
var wantAlerts = []string{
	"SensorhubAPIHighErrorRatio",
	"SensorhubAPIHighLatency",
	"SensorhubAPINotReady",
	"SensorhubIngestFailed",
	"SensorhubIngestRejects",
	"SensorhubIngestStale",
	"SensorhubRollupsStale",
}

func TestPromtoolCheckRules(t *testing.T) {
	promtool := testenv.Tool(t, "promtool", installPromtool)
	testenv.Run(t, ".", promtool, "check", "rules", "rules.yml")
}

func TestPromtoolTestRules(t *testing.T) {
	promtool := testenv.Tool(t, "promtool", installPromtool)
	out := testenv.Run(t, ".", promtool, "test", "rules", "rules_test.yml")
	t.Log(out)
}

func TestPromtoolCheckConfig(t *testing.T) {
	promtool := testenv.Tool(t, "promtool", installPromtool)
	testenv.Run(t, ".", promtool, "check", "config", "prometheus.yml")
}

// TestRules checks what promtool does not: every wanted alert is there with
// a severity, a summary and a runbook link, and uses only metrics and labels
// the services expose.
func TestRules(t *testing.T) {
	var rf rulesFile
	readYAML(t, "rules.yml", &rf)
	ops, err := os.ReadFile(filepath.Join(testenv.Root(t), "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: rule %q is not an alert", g.Name, r.Record)
				continue
			}
			got = append(got, r.Alert)
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			for _, a := range []string{"summary", "description", "runbook"} {
				if r.Annotations[a] == "" {
					t.Errorf("%s: no %s annotation", r.Alert, a)
				}
			}
			// The runbook is the alert's section of the operations guide.
			if want := "docs/operations.md#" + strings.ToLower(r.Alert); r.Annotations["runbook"] != want {
				t.Errorf("%s: runbook %q, want %q", r.Alert, r.Annotations["runbook"], want)
			}
			if !strings.Contains(string(ops), "\n### "+r.Alert+"\n") {
				t.Errorf("%s: docs/operations.md has no section \"### %s\"", r.Alert, r.Alert)
			}
			if u := testenv.UnknownMetrics(r.Expr); len(u) > 0 {
				t.Errorf("%s: metrics the services do not expose: %v", r.Alert, u)
			}
			if u := testenv.UnknownLabels(r.Expr); len(u) > 0 {
				t.Errorf("%s: labels the metrics do not have: %v", r.Alert, u)
			}
		}
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(wantAlerts))
	if !slices.Equal(got, want) {
		t.Errorf("alerts %v, want %v", got, want)
	}
}

// TestEveryAlertIsTestedBothWays checks that rules_test.yml has, for each
// alert, a case where it fires and one where it stays silent.
func TestEveryAlertIsTestedBothWays(t *testing.T) {
	var tf testFile
	readYAML(t, "rules_test.yml", &tf)
	if !slices.Equal(tf.RuleFiles, []string{"rules.yml"}) {
		t.Errorf("rule_files %v, want [rules.yml]", tf.RuleFiles)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, c := range tf.Tests {
		for _, a := range c.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				silent[a.Alertname] = true
			}
		}
	}
	for _, a := range wantAlerts {
		if !fires[a] {
			t.Errorf("%s: no test case where it fires", a)
		}
		if !silent[a] {
			t.Errorf("%s: no test case where it stays silent", a)
		}
	}
}
