package k8s

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// imagePrefix is the one name scheme of sensorhub's images: what the release
// workflow publishes (its IMAGE_PREFIX), the manifests run, compose builds
// and the docs tell people to build and load.
const imagePrefix = "ghcr.io/sensorhub/sensorhub-"

// ours matches any reference to one of sensorhub's images, however spelled.
var ours = regexp.MustCompile(`[\w./-]*sensorhub[-/](api|ingest|migrate):[\w.${}:-]+`)

// TestOneImageNamingScheme: compose, both overlays, the release and deploy
// workflows and the docs name the same images; the dev overlay and compose
// use the locally built tag dev, prod a release version.
func TestOneImageNamingScheme(t *testing.T) {
	release := readRoot(t, ".github/workflows/release.yml")
	if !strings.Contains(release, "IMAGE_PREFIX: "+imagePrefix) {
		t.Errorf("release.yml does not publish under %s", imagePrefix)
	}
	semver := regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)
	for _, overlay := range overlays {
		o := render(t, overlay)
		n := 0
		for _, p := range pods(o) {
			for _, c := range append(p.spec.InitContainers, p.spec.Containers...) {
				if !strings.Contains(c.Image, "sensorhub") {
					continue
				}
				n++
				name, tag, _ := strings.Cut(strings.TrimPrefix(c.Image, imagePrefix), ":")
				if !strings.HasPrefix(c.Image, imagePrefix) || (name != "api" && name != "ingest" && name != "migrate") {
					t.Errorf("%s: %s %s runs %s, not one of %s{api,ingest,migrate}", overlay, p.kind, p.name, c.Image, imagePrefix)
				}
				if overlay == "dev" && tag != "dev" {
					t.Errorf("dev: %s %s runs %s; the dev overlay runs the locally built tag dev", p.kind, p.name, c.Image)
				}
				if overlay != "dev" && !semver.MatchString(tag) {
					t.Errorf("%s: %s %s runs %s; want a release version tag as the release workflow publishes", overlay, p.kind, p.name, c.Image)
				}
			}
		}
		if n < 4 {
			t.Errorf("%s: only %d containers run sensorhub images", overlay, n)
		}
	}
	for _, f := range []string{"compose.yaml", "README.md", "docs/operations.md", ".github/workflows/deploy.yml"} {
		text := readRoot(t, f)
		for _, ref := range ours.FindAllString(text, -1) {
			if !strings.HasPrefix(ref, imagePrefix) {
				t.Errorf("%s names the image %q; the scheme is %s<name>:<tag>", f, ref, imagePrefix)
			}
			if f == "compose.yaml" && !strings.HasSuffix(ref, ":${SENSORHUB_TAG:-dev}") {
				t.Errorf("compose.yaml: %s; want the tag ${SENSORHUB_TAG:-dev}", ref)
			}
		}
	}
}

func readRoot(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
