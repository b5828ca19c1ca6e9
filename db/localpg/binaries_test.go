package localpg

import (
	"os"
	"path/filepath"
	"testing"
)

// TestFindsDebianBinariesOffPath: Debian and Ubuntu install initdb under
// /usr/lib/postgresql/<major>/bin, which is not on PATH; make up and the
// tests must find it there anyway.
func TestFindsDebianBinariesOffPath(t *testing.T) {
	dirs, _ := filepath.Glob(debianGlob)
	var want []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			want = append(want, d)
		}
	}
	if len(want) == 0 {
		t.Skipf("no %s/initdb on this machine", debianGlob)
	}
	t.Setenv("PATH", t.TempDir())
	t.Setenv(BinDirEnv, "")
	b, err := findBinaries("")
	if err != nil {
		t.Fatalf("with an empty PATH: %v", err)
	}
	if b.dir != want[len(want)-1] && len(want) == 1 {
		t.Errorf("found %s, want %s", b.dir, want[0])
	}
}
