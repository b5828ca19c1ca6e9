package k8s

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// runbookRules is the part of a rules file (or a PrometheusRule's spec)
// TestRunbookBaseRecipe reads.
type runbookRules struct {
	Groups []struct {
		Rules []struct {
			Alert       string            `json:"alert"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

func (r runbookRules) urls() map[string]string {
	out := map[string]string{}
	for _, g := range r.Groups {
		for _, rule := range g.Rules {
			if rule.Alert != "" {
				out[rule.Alert] = rule.Annotations["runbook_url"]
			}
		}
	}
	return out
}

// runbookRecipe returns the overlay lines components/monitoring's
// kustomization.yaml documents in its comment: the commented block that
// starts with "#   configMapGenerator:", without the "#   ".
func runbookRecipe(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("components/monitoring/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var recipe []string
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case line == "#   configMapGenerator:":
			recipe = []string{"configMapGenerator:"}
		case recipe != nil && strings.HasPrefix(line, "#   "):
			recipe = append(recipe, strings.TrimPrefix(line, "#   "))
		case recipe != nil:
			return strings.Join(recipe, "\n") + "\n"
		}
	}
	t.Fatal(`components/monitoring/kustomization.yaml documents no runbook recipe (a commented block starting "#   configMapGenerator:")`)
	return ""
}

// TestRunbookBaseRecipe renders components/monitoring in an overlay that
// adds the recipe its kustomization.yaml documents for pointing the alerts'
// runbook links elsewhere: every runbook_url must then be the recipe's base
// with the alert's #fragment from rules.yml, and the recipe's ConfigMap
// must not be rendered.
func TestRunbookBaseRecipe(t *testing.T) {
	recipe := runbookRecipe(t)
	m := regexp.MustCompile(`(?m)^\s*- base=(\S+)$`).FindStringSubmatch(recipe)
	if m == nil {
		t.Fatalf("the recipe sets no base=...:\n%s", recipe)
	}
	base := m[1]
	if strings.Contains(base, "github.com/sensorhub/sensorhub") {
		t.Fatalf("the recipe's example base %s is the default one; the test could not tell it worked", base)
	}

	// The component and the dashboards it includes, at their relative places.
	root := t.TempDir()
	for src, dst := range map[string]string{
		"components/monitoring": filepath.Join(root, "k8s", "components", "monitoring"),
		"../grafana":            filepath.Join(root, "grafana"),
	} {
		if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
			t.Fatal(err)
		}
	}
	overlay := filepath.Join(root, "k8s", "overlays", "runbooks")
	if err := os.MkdirAll(overlay, 0o755); err != nil {
		t.Fatal(err)
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\ncomponents:\n  - ../../components/monitoring\n" + recipe
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), overlay)
	if err != nil {
		t.Fatalf("kustomize build with the runbook recipe: %v\n%s", err, k)
	}

	var rendered *runbookRules
	for _, r := range rm.Resources() {
		switch {
		case r.GetKind() == "ConfigMap" && r.GetName() == "sensorhub-runbooks":
			t.Error("the recipe's ConfigMap sensorhub-runbooks is rendered; it must stay local (config.kubernetes.io/local-config)")
		case r.GetKind() == "PrometheusRule" && r.GetName() == "sensorhub":
			b, err := r.AsYAML()
			if err != nil {
				t.Fatal(err)
			}
			var pr struct {
				Spec runbookRules `json:"spec"`
			}
			if err := yaml.Unmarshal(b, &pr); err != nil {
				t.Fatal(err)
			}
			rendered = &pr.Spec
		}
	}
	if rendered == nil {
		t.Fatal("no PrometheusRule sensorhub rendered")
	}

	b, err := os.ReadFile("../prometheus/rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules runbookRules
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	got := rendered.urls()
	want := rules.urls()
	if len(want) == 0 {
		t.Fatal("no alerts in rules.yml")
	}
	for alert, u := range want {
		_, fragment, ok := strings.Cut(u, "#")
		if !ok {
			t.Errorf("%s: rules.yml's runbook_url %q has no #fragment", alert, u)
			continue
		}
		if w := base + "#" + fragment; got[alert] != w {
			t.Errorf("%s: runbook_url with the recipe %q, want %q", alert, got[alert], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("rendered alerts %v, rules.yml's %v", got, want)
	}
}
