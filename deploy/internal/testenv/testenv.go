// Package testenv gives the deployment tests the checkout they validate and
// the external tools they run.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Root returns the repository root: the nearest folder above the working
// directory that holds go.work.
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testenv: no go.work above the working directory")
		}
		dir = parent
	}
}

// Tool returns the path of the program name. When it is not on PATH the
// test fails under CI=true (CI installs it, see .ci/run) and is skipped with
// how to install it otherwise.
func Tool(t testing.TB, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not on PATH and CI=true: install it (%s)", name, install)
	}
	t.Skipf("%s is not on PATH: install it (%s) to run this test", name, install)
	return ""
}

// Run runs a program in dir and fails t with its output when it fails.
func Run(t testing.TB, dir, prog string, args ...string) string {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", filepath.Base(prog), args, err, out)
	}
	return string(out)
}
