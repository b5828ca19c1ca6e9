package prometheus

import (
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

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
	"SensorhubWriteUnavailable",
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
// a severity, a summary and a runbook link to its section, and uses only
// metrics and labels the services expose.
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
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[a] == "" {
					t.Errorf("%s: no %s annotation", r.Alert, a)
				}
			}
			// The runbook is the alert's section of the operations guide
			// (TestRunbookURLs checks that the link resolves).
			if want := runbookBase + "#" + strings.ToLower(r.Alert); r.Annotations["runbook_url"] != want {
				t.Errorf("%s: runbook_url %q, want %q", r.Alert, r.Annotations["runbook_url"], want)
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

// pushedJobs are the jobs whose series reach Prometheus through the
// Pushgateway (scraped with honor_labels), not as a scrape job of their own.
var pushedJobs = map[string]bool{"sensorhub_ingest": true}

// TestRuleJobsAreScraped checks that every job="..." the rules select is a
// scrape job of compose's prometheus.yml (the same names the Kubernetes
// ServiceMonitors' jobLabels give, which deploy/k8s checks), or a pushed job
// kept by a honor_labels scrape of the Pushgateway: a typo there would leave
// an alert silent for ever.
func TestRuleJobsAreScraped(t *testing.T) {
	var cfg struct {
		ScrapeConfigs []struct {
			JobName     string `json:"job_name"`
			HonorLabels bool   `json:"honor_labels"`
		} `json:"scrape_configs"`
	}
	b, err := os.ReadFile("prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	scraped, honoring := map[string]bool{}, false
	for _, sc := range cfg.ScrapeConfigs {
		scraped[sc.JobName] = true
		honoring = honoring || sc.HonorLabels
	}
	var rf rulesFile
	readYAML(t, "rules.yml", &rf)
	jobMatcher := regexp.MustCompile(`\bjob\s*=\s*"([^"]*)"`)
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			for _, m := range jobMatcher.FindAllStringSubmatch(r.Expr, -1) {
				switch job := m[1]; {
				case scraped[job]:
				case pushedJobs[job] && honoring:
				default:
					t.Errorf("%s: selects job=%q, which prometheus.yml does not scrape", r.Alert, job)
				}
			}
		}
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

// runbookBase is the page every alert's runbook_url points into, its
// #fragment naming the alert's section. Alertmanager and its receivers show
// the link outside this repository, so it must be absolute. One base for all
// alerts is what the recipes of docs/operations.md#alerts (a sed of
// rules.yml, a kustomize replacement of the PrometheusRule) replace.
const runbookBase = "https://github.com/sensorhub/sensorhub/blob/main/docs/operations.md"

// TestRunbookURLs checks every alert rule's runbook_url: an absolute https
// URL under runbookBase whose fragment is the anchor GitHub gives a heading
// of docs/operations.md, so the link lands on the alert's section.
func TestRunbookURLs(t *testing.T) {
	var rf rulesFile
	readYAML(t, "rules.yml", &rf)
	ops, err := os.ReadFile(filepath.Join(testenv.Root(t), "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := githubAnchors(string(ops))
	n := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if _, old := r.Annotations["runbook"]; old {
				t.Errorf("%s: a runbook annotation beside runbook_url; runbook_url replaces it", r.Alert)
			}
			raw := r.Annotations["runbook_url"]
			u, err := url.Parse(raw)
			if err != nil {
				t.Errorf("%s: runbook_url %q: %v", r.Alert, raw, err)
				continue
			}
			if !u.IsAbs() || u.Scheme != "https" || u.Host == "" || u.Fragment == "" {
				t.Errorf("%s: runbook_url %q: want an absolute https URL with a #fragment", r.Alert, raw)
				continue
			}
			if base, _, _ := strings.Cut(raw, "#"); base != runbookBase {
				t.Errorf("%s: runbook_url %q is not under %s", r.Alert, raw, runbookBase)
			}
			if !anchors[u.Fragment] {
				t.Errorf("%s: runbook_url %q: docs/operations.md has no heading with the anchor #%s", r.Alert, raw, u.Fragment)
			}
		}
	}
	if n == 0 {
		t.Fatal("no alerts in rules.yml")
	}
}

var (
	atxHeading = regexp.MustCompile(`^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$`)
	codeFence  = regexp.MustCompile("^ {0,3}(`{3,}|~{3,})")
	mdLink     = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	htmlTag    = regexp.MustCompile(`<[^>]+>`)
)

// githubAnchors returns the anchors GitHub gives the ATX headings of a
// Markdown document: the heading's text (link and image text without their
// targets, no HTML tags) in lower case, without punctuation other than '-'
// and '_', spaces turned into '-'; a repeated anchor gets -1, -2, ...
// Lines in fenced code blocks are not headings.
func githubAnchors(md string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	fence := ""
	for _, line := range strings.Split(md, "\n") {
		line = strings.TrimRight(line, "\r")
		if m := codeFence.FindStringSubmatch(line); m != nil {
			switch {
			case fence == "":
				fence = m[1]
			case m[1][0] == fence[0] && len(m[1]) >= len(fence) && strings.TrimSpace(line) == m[1]:
				fence = ""
			}
			continue
		}
		if fence != "" {
			continue
		}
		m := atxHeading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		text := htmlTag.ReplaceAllString(mdLink.ReplaceAllString(m[1], "$1"), "")
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(text)) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.M, r):
				b.WriteRune(r)
			}
		}
		a := b.String()
		if k := seen[a]; k > 0 {
			seen[a]++
			a = a + "-" + strconv.Itoa(k)
		} else {
			seen[a] = 1
		}
		anchors[a] = true
	}
	return anchors
}

func TestGithubAnchors(t *testing.T) {
	md := strings.Join([]string{
		"# Operating sensorhub",
		"## Upgrades and migrations",
		"### `ingest load`: flags (and env)",
		"## [The images](https://example.com/x) <em>now</em>",
		"### dev",
		"### dev",
		"## Ünïcode_names 2 ##",
		"```sh",
		"# API:        http://localhost:8080/v1/devices",
		"```",
		"~~~",
		"## not a heading",
		"~~~",
		"#not a heading either",
		"    ## indented code, not a heading",
	}, "\n")
	got := slices.Sorted(maps.Keys(githubAnchors(md)))
	want := []string{"dev", "dev-1", "ingest-load-flags-and-env", "operating-sensorhub", "the-images-now", "upgrades-and-migrations", "ünïcode_names-2"}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("anchors %q, want %q", got, want)
	}
}
