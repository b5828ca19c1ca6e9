package localpg

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// BinDirEnv names the environment variable that chooses the PostgreSQL bin
// folder, e.g. a separate tree that has a TimescaleDB build next to it.
const BinDirEnv = "SENSORHUB_PG_BINDIR"

// serverUser is the system account that owns clusters when we run as root:
// initdb and postgres refuse to run as root.
const serverUser = "postgres"

// binaries is one PostgreSQL installation and the account its programs run as.
type binaries struct {
	dir   string
	owner *owner // nil: run as ourselves
}

// owner is the account a cluster's files and processes belong to.
type owner struct {
	name     string
	uid, gid uint32
}

// Available reports whether PostgreSQL server binaries can be found (see
// findBinaries).
func Available() bool {
	_, err := findBinaries("")
	return err == nil
}

// findBinaries resolves the bin folder: explicit, else SENSORHUB_PG_BINDIR,
// else the real folder of initdb on PATH (following symlinks, since distros
// link initdb into /usr/local/bin while pg_config and the libraries live
// beside the real binary), else where Debian and Ubuntu keep the server
// binaries off PATH: `pg_config --bindir`, then the newest
// /usr/lib/postgresql/<major>/bin.
func findBinaries(dir string) (binaries, error) {
	if dir == "" {
		dir = os.Getenv(BinDirEnv)
	}
	if dir == "" {
		dir = searchBinDir()
	}
	if dir == "" {
		return binaries{}, fmt.Errorf("no PostgreSQL server binaries (initdb) on PATH, from pg_config --bindir or in %s; "+
			"install them (Debian/Ubuntu: apt-get install postgresql) or set %s to their bin folder", debianGlob, BinDirEnv)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return binaries{}, fmt.Errorf("resolve bin dir %s: %w", dir, err)
	}
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return binaries{}, fmt.Errorf("find PostgreSQL binaries in %s: %w", dir, err)
		}
	}
	o, err := serverOwner()
	if err != nil {
		return binaries{}, err
	}
	return binaries{dir: dir, owner: o}, nil
}

// debianGlob is where Debian's postgresql-<major> packages put the servers.
const debianGlob = "/usr/lib/postgresql/*/bin"

// searchBinDir returns the first folder holding initdb: initdb's on PATH,
// pg_config's --bindir, the newest Debian one; "" if none has it.
func searchBinDir() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		return filepath.Dir(p)
	}
	has := func(dir string) bool {
		_, err := os.Stat(filepath.Join(dir, "initdb"))
		return err == nil
	}
	if pgConfig, err := exec.LookPath("pg_config"); err == nil {
		if out, err := exec.Command(pgConfig, "--bindir").Output(); err == nil {
			if dir := strings.TrimSpace(string(out)); has(dir) {
				return dir
			}
		}
	}
	dirs, _ := filepath.Glob(debianGlob)
	best, bestMajor := "", -1
	for _, d := range dirs {
		major, err := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		if err == nil && major > bestMajor && has(d) {
			best, bestMajor = d, major
		}
	}
	return best
}

// serverOwner returns the postgres account when we are root, nil otherwise.
func serverOwner() (*owner, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(serverUser)
	if err != nil {
		return nil, fmt.Errorf("running as root, look up user %q to run PostgreSQL as: %w", serverUser, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse uid of %s: %w", serverUser, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse gid of %s: %w", serverUser, err)
	}
	return &owner{name: u.Username, uid: uint32(uid), gid: uint32(gid)}, nil
}

// pkgLibDir is where extensions' shared libraries live for these binaries.
func (b binaries) pkgLibDir() string {
	pgConfig := filepath.Join(b.dir, "pg_config")
	if _, err := os.Stat(pgConfig); err == nil {
		out, err := exec.Command(pgConfig, "--pkglibdir").Output()
		if err == nil && len(strings.TrimSpace(string(out))) > 0 {
			return strings.TrimSpace(string(out))
		}
	}
	return filepath.Join(filepath.Dir(b.dir), "lib")
}

// hasTimescaleDB reports whether these binaries can load TimescaleDB.
func (b binaries) hasTimescaleDB() bool {
	_, err := os.Stat(filepath.Join(b.pkgLibDir(), "timescaledb.so"))
	return err == nil
}

// chown gives path to the cluster owner; a no-op when we run as ourselves.
func (b binaries) chown(path string) error {
	if b.owner == nil {
		return nil
	}
	if err := os.Lchown(path, int(b.owner.uid), int(b.owner.gid)); err != nil {
		return fmt.Errorf("chown %s to %s: %w", path, b.owner.name, err)
	}
	return nil
}

// letTraverse makes every folder above path traversable (o+x, never read)
// for the cluster owner when we run as root on its behalf: a checkout in a
// private folder (mktemp -d, a 0700 home) would otherwise keep the postgres
// account from reaching its own data folder.
func (b binaries) letTraverse(path string) error {
	if b.owner == nil {
		return nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", path, err)
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		st, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("stat %s: %w", dir, err)
		}
		if st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(dir, st.Mode().Perm()|0o001); err != nil {
				return fmt.Errorf("let %s traverse %s: %w", b.owner.name, dir, err)
			}
		}
		if dir == filepath.Dir(dir) {
			return nil
		}
	}
}
