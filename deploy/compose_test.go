package deploy

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/sensorhub/sensorhub/deploy/internal/testenv"
)

// loadCompose loads compose.yaml the way `docker compose` does (schema
// validation, interpolation with env, normalization, consistency checks),
// without the machine's environment or an .env file.
func loadCompose(t *testing.T, env map[string]string) *types.Project {
	t.Helper()
	root := testenv.Root(t)
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "compose.yaml")},
		cli.WithWorkingDirectory(root),
		cli.WithEnv(environ),
		cli.WithDiscardEnvFile,
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load compose.yaml: %v", err)
	}
	return p
}

// Our services: built from this repository, hardened.
var ourServices = []string{"migrate", "sample", "ingest", "api", "ingest-serve"}

// TestComposeGraph checks the start order: TimescaleDB healthy → migrate
// exits 0 → the sample is generated → ingest exits 0 → the API starts; the
// write service once migrate exited 0; and Prometheus, the Pushgateway and
// Grafana beside them.
func TestComposeGraph(t *testing.T) {
	p := loadCompose(t, nil)
	got := slices.Sorted(maps.Keys(p.Services))
	want := []string{"api", "grafana", "ingest", "ingest-serve", "migrate", "prometheus", "pushgateway", "sample", "timescaledb"}
	if !slices.Equal(got, want) {
		t.Fatalf("services %v, want %v", got, want)
	}
	wantDeps := map[string]map[string]string{
		"timescaledb": {},
		"migrate":     {"timescaledb": types.ServiceConditionHealthy},
		"sample":      {},
		"ingest": {
			"migrate":     types.ServiceConditionCompletedSuccessfully,
			"sample":      types.ServiceConditionCompletedSuccessfully,
			"pushgateway": types.ServiceConditionStarted,
		},
		"api": {
			"migrate": types.ServiceConditionCompletedSuccessfully,
			"ingest":  types.ServiceConditionCompletedSuccessfully,
		},
		"ingest-serve": {"migrate": types.ServiceConditionCompletedSuccessfully},
		"pushgateway":  {},
		"prometheus":   {"pushgateway": types.ServiceConditionStarted},
		"grafana": {
			"prometheus": types.ServiceConditionStarted,
			"migrate":    types.ServiceConditionCompletedSuccessfully,
		},
	}
	for name, deps := range wantDeps {
		s := p.Services[name]
		gotDeps := map[string]string{}
		for dep, d := range s.DependsOn {
			gotDeps[dep] = d.Condition
			if !d.Required {
				t.Errorf("%s: dependency on %s is not required", name, dep)
			}
		}
		if !maps.Equal(gotDeps, deps) {
			t.Errorf("%s depends on %v, want %v", name, gotDeps, deps)
		}
	}
	// One-shot jobs must not restart, or depends_on completed would never hold.
	for _, name := range []string{"migrate", "sample", "ingest"} {
		if r := p.Services[name].Restart; r != "no" {
			t.Errorf("%s: restart %q, want \"no\"", name, r)
		}
	}
	// The servers come back after a crash or a database outage at start.
	for _, name := range []string{"api", "ingest-serve"} {
		if r := p.Services[name].Restart; r != "unless-stopped" {
			t.Errorf("%s: restart %q, want unless-stopped", name, r)
		}
	}
	// The graph has no cycle (compose-go's consistency check would also fail).
	if err := p.ForEachService(nil, func(string, *types.ServiceConfig) error { return nil }); err != nil {
		t.Error(err)
	}
}

func TestComposeHealthchecks(t *testing.T) {
	p := loadCompose(t, nil)
	hc := p.Services["timescaledb"].HealthCheck
	if hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Test[0] != "CMD" || hc.Test[1] != "pg_isready" {
		t.Errorf("timescaledb healthcheck %+v, want CMD pg_isready", hc)
	}
	if hc != nil && (hc.Interval == nil || hc.Retries == nil) {
		t.Errorf("timescaledb healthcheck without interval or retries: %+v", hc)
	}
	// The API image is distroless (no shell, no curl): its healthcheck must
	// run the binary's own probe subcommand.
	api := p.Services["api"].HealthCheck
	if api == nil || api.Disable || len(api.Test) != 3 || api.Test[0] != "CMD" || api.Test[1] != "/usr/local/bin/api" || api.Test[2] != "healthcheck" {
		t.Errorf("api healthcheck %+v, want CMD /usr/local/bin/api healthcheck", api)
	}
	// The ingest image is distroless too and its binary has no probe
	// subcommand: any healthcheck of the write service could only fail.
	if hc := p.Services["ingest-serve"].HealthCheck; hc != nil && !hc.Disable {
		t.Errorf("ingest-serve healthcheck %+v: the ingest image has nothing to run it with", hc)
	}
}

// TestComposeImagesPinned: no image without a tag, none "latest"; images we
// do not build carry a version tag.
func TestComposeImagesPinned(t *testing.T) {
	p := loadCompose(t, nil)
	built := map[string]bool{} // repositories some service builds
	for _, s := range p.Services {
		if s.Build != nil {
			built[repository(s.Image)] = true
		}
	}
	for _, name := range ourServices {
		if img := p.Services[name].Image; !built[repository(img)] {
			t.Errorf("%s: image %s is not built by any service", name, img)
		}
	}
	for name, s := range p.Services {
		image := s.Image
		ref, digest, hasDigest := strings.Cut(image, "@")
		if hasDigest && strings.HasPrefix(digest, "sha256:") {
			continue
		}
		slash, colon := strings.LastIndex(ref, "/"), strings.LastIndex(ref, ":")
		if image == "" || colon <= slash {
			t.Errorf("%s: image %q has no tag", name, image)
			continue
		}
		tag := ref[colon+1:]
		if tag == "latest" {
			t.Errorf("%s: image %q uses latest", name, image)
		}
		if !built[repository(image)] && !strings.ContainsAny(tag[:1], "0123456789v") {
			t.Errorf("%s: image %q: tag is not a version", name, image)
		}
	}
	// SENSORHUB_TAG only changes the tag of the images we build.
	p = loadCompose(t, map[string]string{"SENSORHUB_TAG": "1.2.3"})
	if img := p.Services["api"].Image; img != "ghcr.io/sensorhub/sensorhub-api:1.2.3" {
		t.Errorf("api image with SENSORHUB_TAG=1.2.3: %s", img)
	}
}

// repository is image without its tag or digest.
func repository(image string) string {
	ref, _, _ := strings.Cut(image, "@")
	if colon := strings.LastIndex(ref, ":"); colon > strings.LastIndex(ref, "/") {
		return ref[:colon]
	}
	return ref
}

func TestComposePorts(t *testing.T) {
	p := loadCompose(t, nil)
	published := map[string][]string{}
	for name, s := range p.Services {
		for _, port := range s.Ports {
			if port.Published != "" {
				published[name] = append(published[name], port.Published+":"+itoa(port.Target))
			}
		}
	}
	if !slices.Equal(published["api"], []string{"8080:8080"}) {
		t.Errorf("api publishes %v, want 8080:8080", published["api"])
	}
	if !slices.Equal(published["ingest-serve"], []string{"8081:8081"}) {
		t.Errorf("ingest-serve publishes %v, want 8081:8081", published["ingest-serve"])
	}
	if !slices.Equal(published["grafana"], []string{"3000:3000"}) {
		t.Errorf("grafana publishes %v, want 3000:3000", published["grafana"])
	}
	for _, name := range []string{"timescaledb", "migrate", "ingest", "sample", "pushgateway"} {
		if len(published[name]) > 0 {
			t.Errorf("%s publishes %v; it needs no host port", name, published[name])
		}
	}
}

func itoa(n uint32) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestComposeHardening: our services run as 65532 on a read-only root
// filesystem without capabilities, and connect with the least-privilege
// roles the migrate service creates.
func TestComposeHardening(t *testing.T) {
	p := loadCompose(t, nil)
	for _, name := range ourServices {
		s := p.Services[name]
		if !s.ReadOnly {
			t.Errorf("%s: read_only is not set", name)
		}
		if s.User != "65532:65532" {
			t.Errorf("%s: user %q, want 65532:65532", name, s.User)
		}
		if !slices.Contains(s.CapDrop, "ALL") || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: cap_drop %v security_opt %v, want ALL and no-new-privileges", name, s.CapDrop, s.SecurityOpt)
		}
	}
	env := func(service, key string) string {
		v := p.Services[service].Environment[key]
		if v == nil {
			return ""
		}
		return *v
	}
	if !strings.Contains(env("api", "DATABASE_URL"), "user=sensorhub_api") {
		t.Errorf("api DATABASE_URL %q: want the read-only sensorhub_api", env("api", "DATABASE_URL"))
	}
	for _, name := range []string{"ingest", "ingest-serve"} {
		if !strings.Contains(env(name, "DATABASE_URL"), "user=sensorhub_ingest") {
			t.Errorf("%s DATABASE_URL %q: want the writer sensorhub_ingest", name, env(name, "DATABASE_URL"))
		}
	}
	if env("migrate", "SENSORHUB_API_DB_USER") != "sensorhub_api" || env("migrate", "SENSORHUB_INGEST_DB_USER") != "sensorhub_ingest" {
		t.Error("migrate does not create the sensorhub_api and sensorhub_ingest login roles")
	}
	if env("api", "PGPASSWORD") != env("migrate", "SENSORHUB_API_DB_PASSWORD") || env("api", "PGPASSWORD") == "" {
		t.Error("the API's password is not the one migrate sets for sensorhub_api")
	}
	for _, name := range []string{"ingest", "ingest-serve"} {
		if env(name, "PGPASSWORD") != env("migrate", "SENSORHUB_INGEST_DB_PASSWORD") || env(name, "PGPASSWORD") == "" {
			t.Errorf("%s's password is not the one migrate sets for sensorhub_ingest", name)
		}
	}
	if env("grafana", "SENSORHUB_PG_USER") != "sensorhub_api" || env("grafana", "SENSORHUB_PG_PASSWORD") != env("api", "PGPASSWORD") {
		t.Error("Grafana's PostgreSQL datasource does not use the read-only user")
	}
	if !strings.HasPrefix(env("ingest", "INGEST_REJECTS"), "/work/") {
		t.Errorf("ingest INGEST_REJECTS %q: want it on the /work volume", env("ingest", "INGEST_REJECTS"))
	}
	// Every writable path of a read-only service is a volume.
	if !hasMount(p.Services["ingest"], "/work", false) || !hasMount(p.Services["sample"], "/work", false) {
		t.Error("ingest and sample need a writable volume on /work")
	}
}

func hasMount(s types.ServiceConfig, target string, readOnly bool) bool {
	for _, v := range s.Volumes {
		if v.Target == target && v.ReadOnly == readOnly {
			return true
		}
	}
	return false
}

// TestComposeSampleData: by default ingest loads the generated sample from
// the volume `samples`; SAMPLE_DATA switches it to a directory of the host,
// such as the reference dataset's.
func TestComposeSampleData(t *testing.T) {
	p := loadCompose(t, nil)
	ingest := p.Services["ingest"]
	if !slices.Equal(ingest.Command, types.ShellCommand{"load", "/data/data.json"}) {
		t.Errorf("ingest command %v", ingest.Command)
	}
	if v := volumeAt(ingest, "/data"); v == nil || v.Type != types.VolumeTypeVolume || v.Source != "samples" || !v.ReadOnly {
		t.Errorf("ingest /data: %+v, want the samples volume, read-only", v)
	}
	if v := volumeAt(p.Services["sample"], "/work"); v == nil || v.Source != "samples" {
		t.Errorf("sample /work: %+v, want the samples volume", v)
	}
	if !slices.Contains(p.Services["sample"].Command, "gen") {
		t.Errorf("sample command %v, want ingest gen", p.Services["sample"].Command)
	}

	root := testenv.Root(t)
	dir := filepath.Join(root, "..", "shared", "datasets", "sensor-target")
	p = loadCompose(t, map[string]string{"SAMPLE_DATA": "../shared/datasets/sensor-target"})
	v := volumeAt(p.Services["ingest"], "/data")
	if v == nil || v.Type != types.VolumeTypeBind || filepath.Clean(v.Source) != filepath.Clean(dir) || !v.ReadOnly {
		t.Errorf("ingest /data with SAMPLE_DATA: %+v, want a read-only bind of %s", v, dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "data.json")); err != nil {
		t.Logf("the reference dataset is not beside this checkout (%v); the default still works", err)
	}
}

func volumeAt(s types.ServiceConfig, target string) *types.ServiceVolumeConfig {
	for i := range s.Volumes {
		if s.Volumes[i].Target == target {
			return &s.Volumes[i]
		}
	}
	return nil
}

// TestComposeWriteService: the write service runs `ingest serve` from the
// ingest image on the port it publishes, and its authentication follows the
// API's: off by default on this one machine, on with keys when asked.
func TestComposeWriteService(t *testing.T) {
	p := loadCompose(t, nil)
	s := p.Services["ingest-serve"]
	if repository(s.Image) != repository(p.Services["ingest"].Image) || s.Image != p.Services["ingest"].Image {
		t.Errorf("ingest-serve image %s, want ingest's %s", s.Image, p.Services["ingest"].Image)
	}
	if !slices.Equal(s.Command, types.ShellCommand{"serve"}) {
		t.Errorf("ingest-serve command %v, want [serve]", s.Command)
	}
	env := func(p *types.Project, service, key string) string {
		if v := p.Services[service].Environment[key]; v != nil {
			return *v
		}
		return ""
	}
	if a := env(p, "ingest-serve", "INGEST_SERVE_ADDR"); a != ":8081" {
		t.Errorf("ingest-serve INGEST_SERVE_ADDR %q, want :8081 (the published port)", a)
	}
	if env(p, "ingest-serve", "INGEST_AUTH") != env(p, "api", "SENSORHUB_AUTH") {
		t.Errorf("ingest-serve INGEST_AUTH %q, the API's SENSORHUB_AUTH %q: want the same default",
			env(p, "ingest-serve", "INGEST_AUTH"), env(p, "api", "SENSORHUB_AUTH"))
	}
	if env(p, "ingest-serve", "LOG_FORMAT") != "json" {
		t.Error("ingest-serve LOG_FORMAT is not json")
	}
	keys := `[{"name":"t","sha256":"` + strings.Repeat("0", 64) + `"}]`
	p = loadCompose(t, map[string]string{"INGEST_AUTH": "on", "INGEST_WRITE_KEYS": keys})
	if env(p, "ingest-serve", "INGEST_AUTH") != "on" || env(p, "ingest-serve", "INGEST_WRITE_KEYS") != keys {
		t.Errorf("INGEST_AUTH=on INGEST_WRITE_KEYS=...: ingest-serve gets %q and %q",
			env(p, "ingest-serve", "INGEST_AUTH"), env(p, "ingest-serve", "INGEST_WRITE_KEYS"))
	}
	// Docker's stop timeout must leave the shutdown timeout to pushes in flight.
	timeout, err := time.ParseDuration(env(p, "ingest-serve", "INGEST_SHUTDOWN_TIMEOUT"))
	if err != nil {
		t.Fatalf("ingest-serve INGEST_SHUTDOWN_TIMEOUT: %v", err)
	}
	if g := s.StopGracePeriod; g == nil || time.Duration(*g) <= timeout {
		t.Errorf("ingest-serve stop_grace_period %v does not exceed INGEST_SHUTDOWN_TIMEOUT %s", g, timeout)
	}
}

// TestComposeFilesExist: every bind mount and build of compose.yaml names a
// file of this repository.
func TestComposeFilesExist(t *testing.T) {
	p := loadCompose(t, nil)
	root := testenv.Root(t)
	for name, s := range p.Services {
		if s.Build != nil {
			df := filepath.Join(s.Build.Context, s.Build.Dockerfile)
			if filepath.Clean(s.Build.Context) != root {
				t.Errorf("%s: build context %s, want the repository root (the Go workspace)", name, s.Build.Context)
			}
			if _, err := os.Stat(df); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s: bind mount: %v", name, err)
			}
		}
	}
}

// TestComposePortsLoopbackByDefault: authentication is off in compose, so
// every published port binds to 127.0.0.1 unless SENSORHUB_BIND says more.
func TestComposePortsLoopbackByDefault(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{{nil, "127.0.0.1"}, {map[string]string{"SENSORHUB_BIND": "0.0.0.0"}, "0.0.0.0"}} {
		p := loadCompose(t, tc.env)
		published := 0
		for name, s := range p.Services {
			for _, port := range s.Ports {
				published++
				if port.HostIP != tc.want {
					t.Errorf("SENSORHUB_BIND=%q: service %s publishes %s on host address %q, want %q",
						tc.env["SENSORHUB_BIND"], name, port.Published, port.HostIP, tc.want)
				}
			}
		}
		if published < 3 {
			t.Errorf("only %d published ports (API, Prometheus, Grafana expected)", published)
		}
	}
}

// TestOneTimescaleDBVersion: compose, the dev overlay, GitHub Actions' test
// image and dbtest's default run the TimescaleDB release the tests run here
// (../shared/timescaledb, 2.28.3 for PostgreSQL 15); the schema relies on
// its refresh options (buckets_per_batch).
func TestOneTimescaleDBVersion(t *testing.T) {
	root := testenv.Root(t)
	const want = "timescale/timescaledb:2.28.3-pg15"
	re := regexp.MustCompile(`timescale/timescaledb:[\w.-]+`)
	for _, f := range []string{"compose.yaml", "deploy/k8s/overlays/dev/timescaledb.yaml", ".github/workflows/ci.yml", "db/dbtest/server.go", "README.md"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		refs := re.FindAllString(string(b), -1)
		if len(refs) == 0 {
			t.Errorf("%s names no TimescaleDB image", f)
		}
		for _, r := range refs {
			if r != want {
				t.Errorf("%s: %s, want %s", f, r, want)
			}
		}
	}
}
