// Package progress shows a running load: a progress bar with rows/s and ETA on
// a terminal, periodic structured log lines otherwise (CI, Kubernetes Jobs).
package progress

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/sensorhub/sensorhub/services/ingest/internal/copyload"
)

// Reporter watches Counters until Stop.
type Reporter struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// Start reports progress of c every interval. The bar counts bytes from
// baseBytes (c's total when this file started) to baseBytes+totalBytes, the
// file's size when known (0 otherwise); it drives the ETA.
func Start(ctx context.Context, c *copyload.Counters, baseBytes, totalBytes int64, out io.Writer, logger *slog.Logger, interval time.Duration) *Reporter {
	ctx, cancel := context.WithCancel(ctx)
	r := &Reporter{cancel: cancel, done: make(chan struct{})}
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		go r.bar(ctx, c, baseBytes, totalBytes, out)
	} else {
		go r.log(ctx, c, logger, interval)
	}
	return r
}

// Stop ends reporting and waits for the last update.
func (r *Reporter) Stop() {
	r.cancel()
	<-r.done
}

func (r *Reporter) bar(ctx context.Context, c *copyload.Counters, base, total int64, out io.Writer) {
	defer close(r.done)
	max := total
	if max <= 0 {
		max = -1 // spinner: size unknown (stdin, gzip)
	}
	bar := progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(out),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionFullWidth(),
	)
	start := time.Now()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	update := func() {
		read := c.Read.Load()
		rate := float64(read) / max1(time.Since(start).Seconds())
		bar.Describe(fmt.Sprintf("%d readings  %.0f rows/s  %d rejected", read, rate, c.Rejected.Load()))
		_ = bar.Set64(c.Bytes.Load() - base)
	}
	for {
		select {
		case <-ctx.Done():
			update()
			_ = bar.Finish()
			fmt.Fprintln(out)
			return
		case <-t.C:
			update()
		}
	}
}

func (r *Reporter) log(ctx context.Context, c *copyload.Counters, logger *slog.Logger, interval time.Duration) {
	defer close(r.done)
	start := time.Now()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			read := c.Read.Load()
			logger.Info("progress",
				"read", read, "inserted", c.Inserted.Load(), "duplicates", c.Duplicates.Load(),
				"rejected", c.Rejected.Load(), "bytes", c.Bytes.Load(),
				"rows_per_s", int64(float64(read)/max1(time.Since(start).Seconds())))
		}
	}
}

func max1(s float64) float64 {
	if s < 1e-9 {
		return 1e-9
	}
	return s
}
