package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/sensorhub/sensorhub/deploy/internal/testenv"
)

type workflow struct {
	file        string
	raw         string
	Name        string         `json:"name"`
	On          any            `json:"on"`
	Permissions map[string]any `json:"permissions"`
	Jobs        map[string]struct {
		Uses  string `json:"uses"`
		Steps []struct {
			Uses string            `json:"uses"`
			Run  string            `json:"run"`
			With map[string]any    `json:"with"`
			Env  map[string]string `json:"env"`
		} `json:"steps"`
		Env map[string]string `json:"env"`
	} `json:"jobs"`
}

func loadWorkflows(t *testing.T) map[string]workflow {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(testenv.Root(t), ".github", "workflows", "*.yml"))
	if len(files) == 0 {
		t.Fatal("no workflows")
	}
	out := map[string]workflow{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var w workflow
		if err := yaml.Unmarshal(b, &w); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		w.file, w.raw = filepath.Base(f), string(b)
		out[w.file] = w
	}
	return out
}

var (
	shaPin     = regexp.MustCompile(`^[\w.-]+/[\w./-]+@[0-9a-f]{40}$`)
	versionPin = regexp.MustCompile(`^[\w.-]+/[\w./-]+@v[0-9]+\.[0-9]+\.[0-9]+$`)
)

// TestWorkflowActionsPinned: every action is pinned to a full commit SHA
// (with the version it is in a comment) or at least an exact vX.Y.Z tag.
func TestWorkflowActionsPinned(t *testing.T) {
	for _, w := range loadWorkflows(t) {
		var uses []string
		for _, j := range w.Jobs {
			if j.Uses != "" {
				uses = append(uses, j.Uses)
			}
			for _, s := range j.Steps {
				if s.Uses != "" {
					uses = append(uses, s.Uses)
				}
			}
		}
		for _, u := range uses {
			switch {
			case strings.HasPrefix(u, "./"):
			case shaPin.MatchString(u):
				if !regexp.MustCompile(regexp.QuoteMeta(u) + ` # v[0-9]+\.[0-9]+\.[0-9]+`).MatchString(w.raw) {
					t.Errorf("%s: %s: say which version the SHA is in a comment (# vX.Y.Z)", w.file, u)
				}
			case versionPin.MatchString(u):
			default:
				t.Errorf("%s: uses %s: pin it to a commit SHA or an exact vX.Y.Z", w.file, u)
			}
		}
		if len(w.Permissions) == 0 {
			t.Errorf("%s: no top-level permissions; the token would get the defaults", w.file)
		}
	}
}

// TestWorkflowContents checks the pipeline does what the docs say.
func TestWorkflowContents(t *testing.T) {
	ws := loadWorkflows(t)
	for file, wants := range map[string][]string{
		"ci.yml": {
			`tags: ["v*"]`,
			"golangci/golangci-lint-action@",
			`SENSORHUB_REQUIRE_TIMESCALEDB: "1"`,
			"make test",
			"make vet",
			"go run ./services/api openapi -o openapi-3.0.yaml",
			"git diff --exit-code -- openapi-3.0.yaml",
			"./scripts/openapi-lint.sh",
			`SENSORHUB_REQUIRE_BROWSER: "1"`,
			"kubectl kustomize",
			"promtool test rules rules_test.yml",
			"govulncheck",
			"services/api/Dockerfile", "services/ingest/Dockerfile", "db/Dockerfile",
		},
		"release.yml": {
			"workflows: [CI]",
			"github.event.workflow_run.conclusion == 'success'",
			"ref: ${{ github.event.workflow_run.head_sha }}",
			"docker/build-push-action@",
			"push: true",
			"IMAGE_PREFIX: ghcr.io/sensorhub/sensorhub-",
			"images: ${{ env.IMAGE_PREFIX }}${{ matrix.name }}",
			"type=semver,pattern={{version}},value=${{ env.TAG }}",
			"services/api/Dockerfile", "services/ingest/Dockerfile", "db/Dockerfile",
			"packages: write",
		},
		"deploy.yml": {
			"workflow_dispatch",
			"workflows: [Release]",
			"kustomize edit set image",
			"kubectl apply -k deploy/k8s/overlays/prod",
			"kubectl -n sensorhub wait --for=condition=complete job/sensorhub-migrate",
			"kubectl -n sensorhub rollout status deployment/sensorhub-api",
		},
	} {
		w, ok := ws[file]
		if !ok {
			t.Errorf("no workflow %s", file)
			continue
		}
		for _, want := range wants {
			if !strings.Contains(w.raw, want) {
				t.Errorf("%s does not contain %q", file, want)
			}
		}
	}
	// The image names the deploy workflow rewrites are the ones the
	// manifests use.
	for _, img := range []string{"api", "ingest", "migrate"} {
		base, err := os.ReadFile(filepath.Join(testenv.Root(t), "deploy", "k8s", "overlays", "prod", "kustomization.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(base), "name: ghcr.io/sensorhub/sensorhub-"+img) {
			t.Errorf("overlays/prod does not set the image ghcr.io/sensorhub/sensorhub-%s that deploy.yml rewrites", img)
		}
	}
}

// TestDependabotCoversEverything: every Go module of the workspace, every
// Dockerfile's folder, the workflows and compose get update PRs.
func TestDependabotCoversEverything(t *testing.T) {
	root := testenv.Root(t)
	raw, err := os.ReadFile(filepath.Join(root, ".github", "dependabot.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Version int `json:"version"`
		Updates []struct {
			Ecosystem   string   `json:"package-ecosystem"`
			Directory   string   `json:"directory"`
			Directories []string `json:"directories"`
			Schedule    struct {
				Interval string `json:"interval"`
			} `json:"schedule"`
			Groups map[string]any `json:"groups"`
		} `json:"updates"`
	}
	if err := yaml.UnmarshalStrict(raw, &cfg); err != nil {
		t.Fatalf("dependabot.yml: %v", err)
	}
	covered := map[string]bool{}
	for _, u := range cfg.Updates {
		if u.Schedule.Interval == "" {
			t.Errorf("dependabot.yml: %s has no schedule", u.Ecosystem)
		}
		for _, d := range append([]string{u.Directory}, u.Directories...) {
			if d != "" {
				covered[u.Ecosystem+" "+d] = true
			}
		}
	}
	want := []string{"github-actions /", "docker-compose /"}
	for _, pattern := range []struct{ glob, ecosystem string }{{"*/go.mod", "gomod"}, {"*/*/go.mod", "gomod"}, {"*/Dockerfile", "docker"}, {"*/*/Dockerfile", "docker"}} {
		files, _ := filepath.Glob(filepath.Join(root, pattern.glob))
		for _, f := range files {
			rel, _ := filepath.Rel(root, filepath.Dir(f))
			want = append(want, pattern.ecosystem+" /"+filepath.ToSlash(rel))
		}
	}
	if cfg.Version != 2 || len(want) < 8 {
		t.Fatalf("version %d, %d expected entries", cfg.Version, len(want))
	}
	for _, w := range want {
		if !covered[w] {
			t.Errorf("dependabot.yml has no %s", w)
		}
	}
}
