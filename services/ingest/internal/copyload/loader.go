// Package copyload streams readings from dataset files into PostgreSQL with
// COPY, in parallel transactions of one batch each.
//
// Every batch commits its readings, the series statistics they change and the
// time range whose rollups they make stale in one transaction. A load that is
// killed at any moment therefore leaves whole batches only, and running it
// again inserts exactly what is missing: rows whose (series, time) exist are
// skipped (or, in overwrite mode, replaced), never stored twice.
package copyload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/sensorhub/sensorhub/services/ingest/internal/catalog"
	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
	"github.com/sensorhub/sensorhub/services/ingest/internal/dbretry"
)

// Mode says what happens to a reading whose (series, time) is stored already.
type Mode int

const (
	// ModeSkip keeps the stored reading and counts the new one as a duplicate.
	ModeSkip Mode = iota
	// ModeOverwrite replaces the stored reading with the new one.
	ModeOverwrite
)

// ParseMode accepts "skip" and "overwrite".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "skip", "":
		return ModeSkip, nil
	case "overwrite":
		return ModeOverwrite, nil
	}
	return 0, fmt.Errorf("unknown duplicate mode %q (want skip or overwrite)", s)
}

// Reject is one reading that was not loaded, with its place and reason.
type Reject struct {
	Pos    dataset.Position
	Field  string
	Reason string
	Raw    []byte
	RawCut int64 // bytes of the record Raw leaves out (dataset.RecordError.RawCut)
}

// RejectSink receives rejected readings (a rejects file, a test's slice).
type RejectSink interface {
	Reject(Reject) error
}

// Counters are live totals of a load, safe to read while it runs (progress
// bars, metrics).
type Counters struct {
	Read, Inserted, Duplicates, Updated, Rejected, Batches, Bytes atomic.Int64
}

type options struct {
	workers    int
	batchSize  int
	mode       Mode
	dryRun     bool
	maxErrors  int64
	rejects    RejectSink
	logger     *slog.Logger
	counters   *Counters
	datasetOpt dataset.Options
	retry      dbretry.Policy
}

// Option configures a Loader.
type Option func(*options)

// WithWorkers sets how many connections COPY in parallel (default 2).
func WithWorkers(n int) Option { return func(o *options) { o.workers = max(1, n) } }

// WithBatchSize sets readings per transaction (default 50,000: measured on
// two cores, batches of 10,000 spent a third of the load on per-commit work).
func WithBatchSize(n int) Option { return func(o *options) { o.batchSize = max(1, n) } }

// WithMode chooses what to do with readings already stored.
func WithMode(m Mode) Option { return func(o *options) { o.mode = m } }

// WithDryRun validates everything and writes nothing.
func WithDryRun(b bool) Option { return func(o *options) { o.dryRun = b } }

// WithMaxErrors aborts a load once more than n readings were rejected in total
// (negative: unlimited, the default).
func WithMaxErrors(n int64) Option { return func(o *options) { o.maxErrors = n } }

// WithRejects sends each rejected reading to sink.
func WithRejects(sink RejectSink) Option { return func(o *options) { o.rejects = sink } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithCounters makes the loader count into c, so callers can watch progress.
func WithCounters(c *Counters) Option { return func(o *options) { o.counters = c } }

// WithRetry bounds how transient database errors are retried.
func WithRetry(p dbretry.Policy) Option { return func(o *options) { o.retry = p } }

// WithDatasetOptions sets parser options (format, naive time zone, limits).
func WithDatasetOptions(d dataset.Options) Option { return func(o *options) { o.datasetOpt = d } }

// ErrTooManyRejects stops a load that passed its --max-errors bound.
var ErrTooManyRejects = errors.New("too many rejected readings")

// Loader loads dataset files. Use one Loader for all files of a run so that
// the series catalog is read once.
type Loader struct {
	pool    *pgxpool.Pool
	opts    options
	catalog *catalog.Catalog
	parts   *partitions
}

// NewLoader prepares a loader: it reads the series catalog and the
// partitioning settings.
func NewLoader(ctx context.Context, pool *pgxpool.Pool, opts ...Option) (*Loader, error) {
	o := options{workers: 2, batchSize: 50_000, maxErrors: -1, logger: slog.New(slog.DiscardHandler), retry: dbretry.Default}
	for _, opt := range opts {
		opt(&o)
	}
	if o.counters == nil {
		o.counters = &Counters{}
	}
	cat := catalog.New(pool, o.dryRun)
	if err := cat.Preload(ctx); err != nil {
		return nil, err
	}
	parts, err := loadPartitions(ctx, pool)
	if err != nil {
		return nil, err
	}
	return &Loader{pool: pool, opts: o, catalog: cat, parts: parts}, nil
}

// Counters returns the live totals over every file loaded so far.
func (l *Loader) Counters() *Counters { return l.opts.counters }

// FileResult is the outcome of loading one file.
type FileResult struct {
	File                                                 string
	Format                                               dataset.Format
	Read, Inserted, Duplicates, Updated, Rejected, Bytes int64
	Lo, Hi                                               time.Time // time range of the readings read
	Duration                                             time.Duration
	// Err is why the file stopped early (malformed document, too many rejects,
	// database failure); what was committed before it stays.
	Err error
}

// Rate is readings read per second.
func (r FileResult) Rate() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Read) / r.Duration.Seconds()
}

// fileState accumulates one file's counts across workers.
type fileState struct {
	inserted, duplicates, updated atomic.Int64
}

// Load streams src (named name in messages and rejects) into the database. A
// malformed document or a rejected-readings bound stops the file and is
// returned in FileResult.Err with a nil error; the error return is for
// failures that must stop the whole run (database unreachable, canceled).
func (l *Loader) Load(ctx context.Context, name string, src io.Reader) (FileResult, error) {
	start := time.Now()
	res := FileResult{File: name}
	counted := &countingReader{r: src, n: &l.opts.counters.Bytes}
	dopts := l.opts.datasetOpt
	dopts.File = name
	rd, err := dataset.NewReader(counted, dopts)
	if err != nil {
		res.Err = fmt.Errorf("open %s: %w", name, err)
		return res, nil
	}
	res.Format = rd.Format()

	fs := &fileState{}
	batches := make(chan *batch, l.opts.workers)
	g, gctx := errgroup.WithContext(ctx)

	if !l.opts.dryRun {
		for range l.opts.workers {
			g.Go(func() error { return l.work(gctx, batches) })
		}
	}

	var readErr error
	g.Go(func() error {
		defer close(batches)
		var err error
		readErr, err = l.read(gctx, rd, fs, batches, &res)
		return err
	})
	err = g.Wait()
	res.Inserted, res.Duplicates, res.Updated = fs.inserted.Load(), fs.duplicates.Load(), fs.updated.Load()
	res.Bytes = counted.local
	res.Duration = time.Since(start)
	res.Err = readErr
	if err != nil {
		return res, fmt.Errorf("load %s: %w", name, err)
	}
	return res, nil
}

// read parses the file, resolves series and hands out full batches. Its first
// result is a problem of the file (stop this file, keep what was committed),
// its second a failure of the run.
func (l *Loader) read(ctx context.Context, rd *dataset.Reader, fs *fileState, out chan<- *batch, res *FileResult) (fileErr, runErr error) {
	c := l.opts.counters
	b := newBatch(fs, l.opts.batchSize)
	send := func() error {
		if b.len() == 0 {
			return nil
		}
		if !l.opts.dryRun {
			select {
			case out <- b:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		b = newBatch(fs, l.opts.batchSize)
		return nil
	}
	reject := func(r Reject) error {
		res.Rejected++
		n := c.Rejected.Add(1)
		if l.opts.rejects != nil {
			if err := l.opts.rejects.Reject(r); err != nil {
				return fmt.Errorf("write reject: %w", err)
			}
		}
		if l.opts.maxErrors >= 0 && n > l.opts.maxErrors {
			return fmt.Errorf("%w: %d > --max-errors %d (last: %s: %s)", ErrTooManyRejects, n, l.opts.maxErrors, r.Pos, r.Reason)
		}
		return nil
	}
	for {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		r, pos, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var rec *dataset.RecordError
			if errors.As(err, &rec) {
				if err := reject(Reject{Pos: rec.Pos, Field: rec.Field, Reason: rec.Reason, Raw: rec.Raw, RawCut: rec.RawCut}); err != nil {
					if errors.Is(err, ErrTooManyRejects) {
						return err, send()
					}
					return nil, err
				}
				continue
			}
			// A malformed document: commit what came before, stop the file.
			return err, send()
		}
		res.Read++
		c.Read.Add(1)
		if res.Read == 1 || r.Time.Before(res.Lo) {
			res.Lo = r.Time
		}
		if res.Read == 1 || r.Time.After(res.Hi) {
			res.Hi = r.Time
		}
		s, err := l.resolve(ctx, &r)
		if errors.Is(err, catalog.ErrTypeConflict) {
			if err := reject(Reject{Pos: pos, Field: "type", Reason: err.Error()}); err != nil {
				if errors.Is(err, ErrTooManyRejects) {
					return err, send()
				}
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pos, err)
		}
		if b.len() == 0 {
			b.first = pos
		}
		b.add(s.ID, r.Time, r.OffsetMinutes(), r.Num, r.Text, r.Type == dataset.Text)
		if b.len() >= l.opts.batchSize {
			if err := send(); err != nil {
				return nil, err
			}
		}
	}
	return nil, send()
}

// work commits batches on one connection until the channel closes.
func (l *Loader) work(ctx context.Context, in <-chan *batch) error {
	w := &writer{pool: l.pool, mode: l.opts.mode, retry: l.opts.retry, logger: l.opts.logger}
	defer w.release()
	c := l.opts.counters
	for b := range in {
		if err := dbretry.Idempotent(ctx, l.opts.retry, l.opts.logger, "create partitions", func() error {
			return l.parts.ensure(ctx, l.pool, b.times)
		}); err != nil {
			return fmt.Errorf("%s: %w", b.first, err)
		}
		out, err := w.writeWithRetry(ctx, b)
		if err != nil {
			return fmt.Errorf("write batch of %d readings starting at %s: %w", b.len(), b.first, err)
		}
		b.file.inserted.Add(out.inserted)
		b.file.duplicates.Add(out.duplicates)
		b.file.updated.Add(out.updated)
		c.Inserted.Add(out.inserted)
		c.Duplicates.Add(out.duplicates)
		c.Updated.Add(out.updated)
		c.Batches.Add(1)
	}
	return nil
}

type countingReader struct {
	r     io.Reader
	n     *atomic.Int64
	local int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.local += int64(n)
	c.n.Add(int64(n))
	return n, err
}
