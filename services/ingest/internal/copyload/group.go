package copyload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/db"
	"github.com/sensorhub/sensorhub/services/ingest/internal/dbretry"
)

// Outcome is what committing one Submission did.
type Outcome struct {
	Inserted, Duplicates, Updated int64
}

// ErrBusy reports a submission that was not committed: it waited longer
// than its bound for a group (the queue was full, the database slow or down)
// and was withdrawn, so none of its readings were written; or its caller
// left. The client may send it again.
var ErrBusy = errors.New("the write queue did not commit in time")

// GroupOptions tune a Committer.
type GroupOptions struct {
	// Mode is what the committer does with readings stored already.
	Mode Mode
	// MaxWait is how long the first submission of a group waits for others
	// to share its transaction (default 5 ms).
	MaxWait time.Duration
	// MaxReadings ends a group early once it holds this many readings
	// (default 50,000, the job's batch size).
	MaxReadings int
	// Queue bounds the submissions waiting for a group (default 256).
	Queue int
	// Workers is how many groups are written at once, each on its own
	// connection (default 2): while one group waits for its commit's WAL
	// flush, the next one is copied, as the batch job's workers do.
	Workers int
	// CommitTimeout bounds writing one group, retries included (default
	// 10 s): past it the transaction is cancelled, rolled back, and its
	// submissions fail, so no caller waits without bound on a stuck
	// database.
	CommitTimeout time.Duration
	// OnCommit, when set, is called after each group's commit with its
	// size, on the committer's goroutine.
	OnCommit func(GroupStats)
}

// GroupStats describe one committed group, for metrics.
type GroupStats struct {
	Submissions, Readings int
	Inserted              int64
	Took                  time.Duration
}

// Committer writes submissions in group transactions: submissions arriving
// within MaxWait of each other share one transaction, and so one WAL flush,
// which is what a small write costs most. Each transaction commits
// synchronously, so a submission is acknowledged only once it is durable.
type Committer struct {
	l      *Loader
	opts   GroupOptions
	queue  chan *pending
	queued atomic.Int64 // readings waiting, for the queue-depth gauge
}

type pending struct {
	ctx  context.Context
	sub  *Submission
	done chan result // buffered: the committer never blocks on a gone client
	// state decides who owns the submission: the committer takes it for a
	// group (queued → taken) unless its caller gave up first (queued →
	// abandoned). So a caller that gives up knows it was never written.
	state atomic.Int32
}

const (
	queued int32 = iota
	taken
	abandoned
)

type result struct {
	out Outcome
	err error
}

// NewCommitter returns a Committer writing with l's pool and retry policy. Run must be running for Commit to return.
func NewCommitter(l *Loader, opts GroupOptions) *Committer {
	if opts.MaxWait <= 0 {
		opts.MaxWait = 5 * time.Millisecond
	}
	if opts.MaxReadings <= 0 {
		opts.MaxReadings = 50_000
	}
	if opts.Queue <= 0 {
		opts.Queue = 256
	}
	if opts.CommitTimeout <= 0 {
		opts.CommitTimeout = 10 * time.Second
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	return &Committer{l: l, opts: opts, queue: make(chan *pending, opts.Queue)}
}

// Queued returns how many readings wait for a group.
func (c *Committer) Queued() int64 { return c.queued.Load() }

// Commit queues sub and waits until its group committed. When wait passes
// first and the submission is still queued, it is withdrawn and Commit
// returns ErrBusy: an ErrBusy answer means none of its readings were
// written. A submission whose group is already being written is waited for,
// since its outcome is then the database's. When ctx ends (the client left,
// shutdown), Commit returns ErrBusy at once.
func (c *Committer) Commit(ctx context.Context, sub *Submission, wait time.Duration) (Outcome, error) {
	if sub.Len() == 0 {
		return Outcome{}, nil
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	p := &pending{ctx: ctx, sub: sub, done: make(chan result, 1)}
	select {
	case c.queue <- p:
		c.queued.Add(int64(sub.Len()))
	case <-timer.C:
		return Outcome{}, fmt.Errorf("%w: the queue stayed full for %v", ErrBusy, wait)
	case <-ctx.Done():
		return Outcome{}, fmt.Errorf("%w: %w", ErrBusy, context.Cause(ctx))
	}
	select {
	case r := <-p.done:
		return r.out, r.err
	case <-timer.C:
		if p.state.CompareAndSwap(queued, abandoned) {
			return Outcome{}, fmt.Errorf("%w: not committed within %v", ErrBusy, wait)
		}
	case <-ctx.Done():
		p.state.CompareAndSwap(queued, abandoned)
		return Outcome{}, fmt.Errorf("%w: %w", ErrBusy, context.Cause(ctx))
	}
	select {
	case r := <-p.done:
		return r.out, r.err
	case <-ctx.Done():
		return Outcome{}, fmt.Errorf("%w: %w", ErrBusy, context.Cause(ctx))
	}
}

// Run commits groups on Workers connections until ctx ends, then fails what
// is still queued.
func (c *Committer) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range c.opts.Workers {
		wg.Go(func() { c.work(ctx) })
	}
	wg.Wait()
	c.drain(ctx)
}

func (c *Committer) work(ctx context.Context) {
	w := &writer{pool: c.l.pool, mode: c.opts.Mode, retry: c.l.opts.retry, logger: c.l.opts.logger}
	defer w.release()
	for {
		var first *pending
		select {
		case first = <-c.queue:
		case <-ctx.Done():
			return
		}
		c.commitGroup(ctx, w, c.gather(ctx, first))
	}
}

// gather collects submissions for MaxWait after the first, or until the
// group is full.
func (c *Committer) gather(ctx context.Context, first *pending) []*pending {
	gathered := []*pending{first}
	n := first.sub.Len()
	timer := time.NewTimer(c.opts.MaxWait)
	defer timer.Stop()
	for n < c.opts.MaxReadings {
		select {
		case p := <-c.queue:
			gathered = append(gathered, p)
			n += p.sub.Len()
		case <-timer.C:
			return gathered
		case <-ctx.Done():
			return gathered
		}
	}
	return gathered
}

func (c *Committer) drain(ctx context.Context) {
	for {
		select {
		case p := <-c.queue:
			c.queued.Add(-int64(p.sub.Len()))
			if p.state.CompareAndSwap(queued, taken) {
				p.done <- result{err: fmt.Errorf("%w: %w", ErrBusy, context.Cause(ctx))}
			}
		default:
			return
		}
	}
}

func (c *Committer) commitGroup(ctx context.Context, w *writer, gathered []*pending) {
	live := gathered[:0]
	for _, p := range gathered {
		c.queued.Add(-int64(p.sub.Len()))
		// A submission its caller withdrew has its 503 already: writing
		// it now would commit readings nobody is told about.
		if !p.state.CompareAndSwap(queued, taken) {
			continue
		}
		live = append(live, p)
	}
	if len(live) == 0 {
		return
	}
	subs := make([]*Submission, len(live))
	all := make(group, len(live))
	for i, p := range live {
		subs[i], all[i] = p.sub, p.sub.b
	}
	start := time.Now()
	var outs []Outcome
	gctx, cancel := context.WithTimeout(ctx, c.opts.CommitTimeout)
	defer cancel()
	err := dbretry.Idempotent(gctx, c.l.opts.retry, c.l.opts.logger, "commit pushed readings", func() error {
		var err error
		// A partition this process remembers may be gone; then forget them
		// all and create what is missing, once.
		for attempt := 0; attempt < 2; attempt++ {
			for _, b := range all {
				if err := c.l.parts.ensure(gctx, c.l.pool, b.times); err != nil {
					return err
				}
			}
			if err = w.acquire(gctx); err == nil {
				outs, err = w.writeGroup(gctx, all, subs)
			}
			if !noPartition(err) {
				break
			}
			c.l.parts.forget()
		}
		if err != nil && (dbretry.Transient(err) || gctx.Err() != nil) {
			w.discard() // a cancelled statement leaves the connection unusable
		}
		return err
	})
	if err != nil {
		for _, p := range live {
			p.done <- result{err: fmt.Errorf("commit %d readings: %w", p.sub.Len(), err)}
		}
		return
	}
	var inserted int64
	cnt := c.l.opts.counters
	for i, p := range live {
		o := outs[i]
		inserted += o.Inserted
		cnt.Inserted.Add(o.Inserted)
		cnt.Duplicates.Add(o.Duplicates)
		cnt.Updated.Add(o.Updated)
		p.done <- result{out: o}
	}
	cnt.Batches.Add(1)
	if c.opts.OnCommit != nil {
		c.opts.OnCommit(GroupStats{Submissions: len(live), Readings: all.len(), Inserted: inserted, Took: time.Since(start)})
	}
}

// spans sums, per series, what staged inserts report: how many readings
// went in and the time range they cover.
type spans map[int32]*span

type span struct {
	n      int64
	lo, hi time.Time
}

func (m spans) add(id int32, n int64, lo, hi time.Time) {
	a, ok := m[id]
	if !ok {
		m[id] = &span{n: n, lo: lo, hi: hi}
		return
	}
	a.n += n
	if lo.Before(a.lo) {
		a.lo = lo
	}
	if hi.After(a.hi) {
		a.hi = hi
	}
}

// deltas returns the sums sorted by series id, the order series rows are
// locked in.
func (m spans) deltas() seriesDelta {
	var d seriesDelta
	for id := range m {
		d.ids = append(d.ids, id)
	}
	slices.Sort(d.ids)
	for _, id := range d.ids {
		a := m[id]
		d.counts = append(d.counts, a.n)
		d.los = append(d.los, a.lo)
		d.his = append(d.his, a.hi)
	}
	return d
}

// group is the batches of one group commit, one per submission.
type group []*batch

func (g group) len() (n int) {
	for _, b := range g {
		n += b.len()
	}
	return n
}

// span returns the time range of every reading of g.
func (g group) span() (lo, hi time.Time) {
	for i, b := range g {
		if i == 0 || b.lo.Before(lo) {
			lo = b.lo
		}
		if i == 0 || b.hi.After(hi) {
			hi = b.hi
		}
	}
	return lo, hi
}

// deltas sums the group's readings per series, sorted by id.
func (g group) deltas() seriesDelta {
	m := spans{}
	for _, b := range g {
		for i, id := range b.series {
			m.add(id, 1, b.times[i], b.times[i])
		}
	}
	return m.deltas()
}

// writeGroup commits the group's readings in one synchronous transaction and
// returns each submission's outcome. New readings go straight into the table
// with one COPY; when some exist already, each submission runs through the
// staging table in turn, so that its counts are its own and a reading sent
// twice in one group counts as inserted once and then as a duplicate.
func (w *writer) writeGroup(ctx context.Context, all group, subs []*Submission) ([]Outcome, error) {
	outs := make([]Outcome, len(subs))
	if w.mode == ModeSkip {
		_, err := w.copyGroupDirect(ctx, all, false)
		if err == nil {
			for i, s := range subs {
				outs[i] = Outcome{Inserted: int64(s.Len())}
			}
			return outs, nil
		}
		if !uniqueViolation(err) {
			return nil, err
		}
	}
	if !w.stageDone {
		if _, err := w.conn.Exec(ctx, createStageSQL); err != nil {
			return nil, fmt.Errorf("create staging table: %w", err)
		}
		w.stageDone = true
	}
	err := pgx.BeginFunc(ctx, w.conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockSeriesSQL, all.deltas().ids); err != nil {
			return fmt.Errorf("lock series: %w", err)
		}
		sum := spans{} // what the group inserted, for the series counts
		changed := false
		for i, s := range subs {
			outs[i] = Outcome{}
			if _, err := copyBinary(ctx, tx, "pg_temp.readings_stage", s.b, &w.buf); err != nil {
				return fmt.Errorf("copy to staging: %w", err)
			}
			var err error
			if outs[i].Inserted, outs[i].Updated, err = w.insertStaged(ctx, tx, sum); err != nil {
				return err
			}
			outs[i].Duplicates = int64(s.Len()) - outs[i].Inserted - outs[i].Updated
			changed = changed || outs[i].Inserted+outs[i].Updated > 0
			if _, err := tx.Exec(ctx, clearStageSQL); err != nil {
				return fmt.Errorf("clear staging table: %w", err)
			}
		}
		// One row per series: an UPDATE ... FROM applies only one of several
		// rows matching the same series.
		d := sum.deltas()
		if _, err := tx.Exec(ctx, updateSeriesSQL, d.ids, d.counts, d.los, d.his); err != nil {
			return fmt.Errorf("update series counts: %w", err)
		}
		if !changed {
			return nil
		}
		return finishTx(ctx, tx, all)
	})
	if err != nil {
		return nil, err
	}
	return outs, nil
}

// clearStageSQL empties the staging table between the submissions of one
// transaction (ON COMMIT DELETE ROWS empties it only at the end).
const clearStageSQL = `DELETE FROM pg_temp.readings_stage`

// finishTx records the group's stale rollup range and moves the dataset
// version, in the group's transaction, so that the API serves the range from
// the raw readings and its caches follow the moment the group commits.
func finishTx(ctx context.Context, tx pgx.Tx, g group) error {
	lo, hi := g.span()
	if _, err := tx.Exec(ctx, pendingSQL, lo, hi); err != nil {
		return fmt.Errorf("record rollup range: %w", err)
	}
	return db.BumpDatasetVersion(ctx, tx)
}

// Pool returns the loader's pool, for callers that wire their own queries
// (readiness checks) to the same database.
func (l *Loader) Pool() *pgxpool.Pool { return l.pool }

// Logger returns the loader's logger.
func (l *Loader) Logger() *slog.Logger { return l.opts.logger }
