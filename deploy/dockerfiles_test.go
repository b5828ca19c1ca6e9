package deploy

import (
	"bufio"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"golang.org/x/mod/modfile"

	"github.com/sensorhub/sensorhub/deploy/internal/testenv"
)

// The images, their Dockerfiles and the package each one builds.
var images = []struct {
	name, dockerfile, pkg, binary string
}{
	{"api", "services/api/Dockerfile", "./services/api", "/usr/local/bin/api"},
	{"ingest", "services/ingest/Dockerfile", "./services/ingest", "/usr/local/bin/ingest"},
	{"migrate", "db/Dockerfile", "./db/cmd/migrate", "/usr/local/bin/migrate"},
}

type instruction struct {
	cmd  string // upper case: FROM, COPY, RUN, ...
	args string
}

type stage struct {
	from, name string
	body       []instruction
}

// parseDockerfile splits a Dockerfile into stages of instructions, joining
// continued lines and dropping comments (enough for these Dockerfiles; no
// heredocs).
func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		stages []stage
		cur    strings.Builder
	)
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			fields := strings.Fields(in.args)
			s := stage{}
			for i := 0; i < len(fields); i++ {
				switch {
				case strings.HasPrefix(fields[i], "--"):
				case strings.EqualFold(fields[i], "AS") && i+1 < len(fields):
					s.name = fields[i+1]
					i++
				default:
					s.from = fields[i]
				}
			}
			stages = append(stages, s)
			return
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Errorf("%s: %s before FROM", path, in.cmd)
			}
			return
		}
		stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if trimmed := strings.TrimSpace(line); strings.HasPrefix(trimmed, "#") && cur.Len() == 0 {
			continue
		} else if strings.HasPrefix(trimmed, "#") {
			continue // a comment inside a continued instruction
		}
		if body, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return stages
}

func (s stage) find(cmd string) []instruction {
	var out []instruction
	for _, in := range s.body {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// copySources returns the context paths a stage copies (not --from) and
// their destinations.
func (s stage) copySources() (srcs []string, dsts []string) {
	for _, in := range s.find("COPY") {
		var words []string
		from := false
		for _, w := range strings.Fields(in.args) {
			if strings.HasPrefix(w, "--from=") {
				from = true
			}
			if !strings.HasPrefix(w, "--") {
				words = append(words, w)
			}
		}
		if from || len(words) < 2 {
			continue
		}
		dst := words[len(words)-1]
		for _, src := range words[:len(words)-1] {
			srcs = append(srcs, strings.TrimSuffix(src, "/"))
			dsts = append(dsts, dst)
		}
	}
	return srcs, dsts
}

var (
	goImage       = regexp.MustCompile(`^golang:([0-9]+\.[0-9]+\.[0-9]+)-bookworm$`)
	distrolessRef = regexp.MustCompile(`^gcr\.io/distroless/static-debian12:nonroot@sha256:[0-9a-f]{64}$`)
)

// dockerignore returns a matcher of the paths .dockerignore leaves out of
// the build context.
func dockerignore(t *testing.T, root string) *patternmatcher.PatternMatcher {
	t.Helper()
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	return pm
}

func excluded(t *testing.T, pm *patternmatcher.PatternMatcher, rel string) bool {
	t.Helper()
	ex, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

// workspaceFiles are the files the Go workspace needs to resolve: go.work,
// go.work.sum, and go.mod and go.sum of every module it uses.
func workspaceFiles(t *testing.T, root string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	wf, err := modfile.ParseWork("go.work", b, nil)
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"go.work", "go.work.sum"}
	for _, u := range wf.Use {
		dir := filepath.Clean(u.Path)
		files = append(files, filepath.Join(dir, "go.mod"), filepath.Join(dir, "go.sum"))
	}
	return files
}

func goWorkVersion(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	wf, err := modfile.ParseWork("go.work", b, nil)
	if err != nil {
		t.Fatal(err)
	}
	return wf.Go.Version
}

// TestDockerfiles checks each Dockerfile statically: a Go build stage on the
// workspace's Go version compiling a static, trimmed binary, and a pinned
// distroless nonroot final stage that runs as 65532:65532.
func TestDockerfiles(t *testing.T) {
	root := testenv.Root(t)
	goVersion := goWorkVersion(t, root)
	for _, img := range images {
		t.Run(img.name, func(t *testing.T) {
			stages := parseDockerfile(t, filepath.Join(root, img.dockerfile))
			if len(stages) != 2 {
				t.Fatalf("%d stages, want a build stage and a runtime stage", len(stages))
			}
			build, final := stages[0], stages[1]
			if m := goImage.FindStringSubmatch(build.from); m == nil || m[1] != goVersion {
				t.Errorf("build stage FROM %s, want golang:%s-bookworm (go.work's version)", build.from, goVersion)
			}
			if !distrolessRef.MatchString(final.from) {
				t.Errorf("final stage FROM %s, want gcr.io/distroless/static-debian12:nonroot pinned by digest", final.from)
			}
			envs := strings.Join(func() []string {
				var s []string
				for _, in := range build.find("ENV") {
					s = append(s, in.args)
				}
				return s
			}(), " ")
			if !strings.Contains(envs, "CGO_ENABLED=0") {
				t.Error("build stage does not set CGO_ENABLED=0")
			}
			var goBuild string
			for _, in := range build.find("RUN") {
				if strings.Contains(in.args, "go build") {
					goBuild = in.args
				}
			}
			if !strings.Contains(goBuild, "-trimpath") || !strings.Contains(goBuild, " "+img.pkg) {
				t.Errorf("go build %q: want -trimpath and package %s", goBuild, img.pkg)
			}
			users := final.find("USER")
			if len(users) != 1 || users[0].args != "65532:65532" {
				t.Errorf("final stage USER %v, want 65532:65532", users)
			}
			entry := final.find("ENTRYPOINT")
			if len(entry) != 1 || entry[0].args != `["`+img.binary+`"]` {
				t.Errorf("ENTRYPOINT %v, want exec form [%q]", entry, img.binary)
			}
			if srcs, _ := final.copySources(); len(srcs) > 0 {
				t.Errorf("final stage copies %v from the context; it should only take the binary from the build stage", srcs)
			}
		})
	}
}

// TestDockerBuildContext checks that the build context .dockerignore leaves
// holds everything each image compiles from, and that the Dockerfile copies
// it: it copies the COPY sources into a folder as Docker would and runs
// `go list -deps` there against the module cache alone, then checks every Go
// and embedded file of the package's dependencies in this repository made it.
func TestDockerBuildContext(t *testing.T) {
	root := testenv.Root(t)
	pm := dockerignore(t, root)
	for _, bad := range []string{".git/HEAD", ".data/x", "bench/out/x", "aggregate.test", "db/migrate_test.go"} {
		if !excluded(t, pm, bad) {
			t.Errorf(".dockerignore sends %s", bad)
		}
	}
	for _, img := range images {
		t.Run(img.name, func(t *testing.T) {
			build := parseDockerfile(t, filepath.Join(root, img.dockerfile))[0]
			srcs, dsts := build.copySources()
			for _, f := range workspaceFiles(t, root) {
				if !slices.Contains(srcs, f) {
					t.Errorf("the build stage does not copy %s, which the workspace needs", f)
				}
			}

			// The context as Docker sees it, copied as the Dockerfile does
			// (WORKDIR /src; destinations are relative to it).
			ctx := t.TempDir()
			for i, src := range srcs {
				info, err := os.Stat(filepath.Join(root, src))
				if err != nil {
					t.Errorf("COPY %s: %v", src, err)
					continue
				}
				if excluded(t, pm, src) && !info.IsDir() {
					t.Errorf("COPY %s: .dockerignore leaves it out of the context", src)
					continue
				}
				dst := filepath.Join(ctx, dsts[i])
				if !info.IsDir() {
					if strings.HasSuffix(dsts[i], "/") {
						dst = filepath.Join(dst, filepath.Base(src))
					}
					copyFile(t, filepath.Join(root, src), dst)
					continue
				}
				err = filepath.WalkDir(filepath.Join(root, src), func(p string, d fs.DirEntry, err error) error {
					if err != nil {
						return err
					}
					rel, _ := filepath.Rel(root, p)
					if excluded(t, pm, rel) {
						if d.IsDir() {
							return nil // a later ! pattern may bring files back
						}
						return nil
					}
					if d.IsDir() || !d.Type().IsRegular() {
						return nil
					}
					inner, _ := filepath.Rel(filepath.Join(root, src), p)
					copyFile(t, p, filepath.Join(dst, inner))
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}

			inContext := goFiles(t, ctx, img.pkg, "GOFLAGS=-mod=readonly", "GOPROXY=off", "GOTOOLCHAIN=local")
			inCheckout := goFiles(t, root, img.pkg)
			if len(inCheckout) == 0 {
				t.Fatalf("go list found no files of this repository for %s", img.pkg)
			}
			for dir, files := range inCheckout {
				if got := inContext[dir]; !slices.Equal(got, files) {
					t.Errorf("%s: the image compiles %v, the checkout %v", dir, got, files)
				}
			}
		})
	}
}

// goFiles lists, per folder of dir's tree, the Go and embedded files that
// pkg and its dependencies in that tree compile from.
func goFiles(t *testing.T, dir, pkg string, env ...string) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.Dir}}|{{join .GoFiles \",\"}},{{join .EmbedFiles \",\"}}", pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list in %s: %v\n%s", dir, err, out)
	}
	files := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		d, list, _ := strings.Cut(line, "|")
		rel, err := filepath.Rel(dir, d)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // the standard library or the module cache
		}
		for _, f := range strings.Split(list, ",") {
			if f != "" {
				files[rel] = append(files[rel], f)
			}
		}
		slices.Sort(files[rel])
	}
	return files
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
