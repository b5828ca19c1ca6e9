package localpg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Status describes the cluster in a data folder, as read from its files and
// one TCP probe; Inspect changes nothing.
type Status struct {
	Dir         string // the data folder, absolute
	Initialized bool   // PG_VERSION exists
	Running     bool   // postmaster.pid names a live process and its port answers
	PID         int    // from postmaster.pid, 0 when absent
	Port        int    // from postmaster.pid, 0 when absent
}

// DSN returns the superuser URL of dbname on the running cluster.
func (s Status) DSN(dbname string) string { return dsn(s.Port, dbname) }

// Inspect reports whether dir holds a cluster and whether it runs.
func Inspect(ctx context.Context, dir string) (Status, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Status{}, fmt.Errorf("resolve %s: %w", dir, err)
	}
	st := Status{Dir: abs}
	if _, err := os.Stat(filepath.Join(abs, "PG_VERSION")); err == nil {
		st.Initialized = true
	} else if !errors.Is(err, os.ErrNotExist) {
		return st, fmt.Errorf("inspect %s: %w", abs, err)
	}
	pid, port, err := readPostmasterPID(abs)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	st.PID, st.Port = pid, port
	st.Running = processAlive(pid) && portAnswers(ctx, port)
	return st, nil
}

// readPostmasterPID reads the PID (line 1) and port (line 4) that a running
// postmaster writes into its data folder.
func readPostmasterPID(dir string) (pid, port int, err error) {
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0, 0, fmt.Errorf("read postmaster.pid: %w", err)
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return 0, 0, fmt.Errorf("read postmaster.pid in %s: %d lines, want at least 4", dir, len(lines))
	}
	if pid, err = strconv.Atoi(strings.TrimSpace(lines[0])); err != nil {
		return 0, 0, fmt.Errorf("parse pid in %s/postmaster.pid: %w", dir, err)
	}
	if port, err = strconv.Atoi(strings.TrimSpace(lines[3])); err != nil {
		return 0, 0, fmt.Errorf("parse port in %s/postmaster.pid: %w", dir, err)
	}
	return pid, port, nil
}

// processAlive reports whether pid exists; EPERM means it does but belongs
// to another user (the postgres account when we are not root). A zombie
// counts as dead: an init that does not reap would keep it forever.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		// Without procfs (macOS) trust kill; with it, the process just ended.
		_, noProcfs := os.Stat("/proc/self/stat")
		return noProcfs != nil
	}
	// The state follows the parenthesized command name, which may hold spaces.
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

// portAnswers reports whether something accepts TCP connections on the
// loopback port.
func portAnswers(ctx context.Context, port int) bool {
	if port <= 0 {
		return false
	}
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Shutdown stops the cluster running in cfg.Dir (fast mode: sessions are
// disconnected, work is not lost). It is a no-op when none runs there.
func Shutdown(ctx context.Context, cfg Config) error {
	st, err := Inspect(ctx, cfg.Dir)
	if err != nil {
		return err
	}
	if st.PID == 0 || !processAlive(st.PID) {
		return nil
	}
	bins, err := findBinaries(cfg.BinDir)
	if err != nil {
		return err
	}
	if err := bins.run(ctx, "pg_ctl", "stop", "-D", st.Dir, "-m", "fast", "-w", "-t", "60"); err != nil {
		return fmt.Errorf("stop cluster in %s: %w", st.Dir, err)
	}
	return nil
}
