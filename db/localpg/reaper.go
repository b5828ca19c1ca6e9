package localpg

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
)

// reaperScript waits for its stdin to close, then stops the cluster and
// removes its folder. Its stdin is a pipe only this process holds (Go opens
// it close-on-exec, so no server or other child inherits it); the kernel
// closes it whenever we die, by panic, os.Exit or SIGKILL alike. That is why
// an ephemeral cluster cannot outlive its test binary.
const reaperScript = `cat >/dev/null; "$1" -D "$2" stop -m immediate -w >/dev/null 2>&1; rm -rf "$3"`

// reaper is the watchdog process of one ephemeral cluster.
type reaper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// startReaper starts the watchdog for the cluster in data, which lives in
// root. It runs as the cluster owner (pg_ctl refuses root) in its own
// session, so a Ctrl-C sent to our process group does not kill it first.
func startReaper(b binaries, data, root string) (*reaper, error) {
	// Not CommandContext: the reaper must outlive every context of ours.
	cmd := exec.Command("/bin/sh", "-c", reaperScript, "localpg-reaper", filepath.Join(b.dir, "pg_ctl"), data, root)
	cmd.Dir = "/"
	cmd.Env = cleanEnv()
	cmd.SysProcAttr = b.sysProcAttr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("reaper stdin: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start reaper: %w", err)
	}
	return &reaper{cmd: cmd, stdin: stdin}, nil
}

// release lets the reaper run now and waits for it to finish.
func (r *reaper) release(ctx context.Context) error {
	r.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- r.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("reaper: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for reaper: %w", ctx.Err())
	}
}
