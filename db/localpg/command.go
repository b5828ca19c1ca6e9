package localpg

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// command prepares one of the PostgreSQL programs to run as the cluster
// owner, from "/" (root's working folder may be unreadable to postgres), with
// the caller's PG* variables removed so that only our flags decide.
func (b binaries) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(b.dir, name), args...)
	cmd.Dir = "/"
	cmd.Env = cleanEnv()
	cmd.SysProcAttr = b.sysProcAttr()
	return cmd
}

// sysProcAttr runs a child as the cluster owner in its own session, so a
// Ctrl-C aimed at our terminal's process group reaches us, not the server.
func (b binaries) sysProcAttr() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setsid: true}
	if b.owner != nil {
		attr.Credential = &syscall.Credential{Uid: b.owner.uid, Gid: b.owner.gid, Groups: []uint32{}}
	}
	return attr
}

// run runs a PostgreSQL program and folds its output into the error.
func (b binaries) run(ctx context.Context, name string, args ...string) error {
	out, err := b.command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// tail returns the last n bytes of a file, for error messages.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-n, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return ""
	}
	return strings.TrimSpace(string(buf))
}
