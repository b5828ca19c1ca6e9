package copyload

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/sensorhub/sensorhub/services/ingest/internal/catalog"
	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
	"github.com/sensorhub/sensorhub/services/ingest/internal/dbretry"
)

// Submission is one pushed body's readings, validated and resolved to their
// series, waiting for a Committer to write them. It is all or nothing: a
// body that cannot be parsed to its end commits none of its readings.
type Submission struct {
	b *batch
	// Read counts the valid readings; Rejected the readings refused, whose
	// first ones (up to the listing bound) are in Rejects.
	Read, Rejected int64
	Rejects        []Reject
	// Format is the body's format, detected or given.
	Format dataset.Format
}

// Len returns how many readings the submission would write.
func (s *Submission) Len() int { return s.b.len() }

// ErrTooManyReadings refuses a body with more readings than the bound
// PrepareOptions.MaxReadings sets, so one request cannot hold the memory of
// many.
var ErrTooManyReadings = errors.New("too many readings in one body")

// PrepareOptions bound and filter what Prepare accepts.
type PrepareOptions struct {
	// Dataset are the parser's options (format, naive zone, bounds); File
	// names the body in positions.
	Dataset dataset.Options
	// Allow, when set, says whether the caller may write (device, parameter);
	// a reading it refuses is rejected with the reason AllowReason.
	Allow       func(device, parameter string) bool
	AllowReason string
	// MaxReadings bounds valid plus rejected readings (0: no bound).
	MaxReadings int64
	// MaxListed bounds Submission.Rejects; the count goes on.
	MaxListed int
}

// Prepare reads src to its end with the batch job's parser and validation,
// and resolves each reading's series (creating new ones, as the job does). A
// malformed body returns the *dataset.FatalError that names its position; a
// reading the database refuses (its series holds the other value type), the
// caller's scope refuses or validation refuses is listed in the Submission,
// and its good neighbours are kept.
func (l *Loader) Prepare(ctx context.Context, src io.Reader, opts PrepareOptions) (*Submission, error) {
	rd, err := dataset.NewReader(src, opts.Dataset)
	if err != nil {
		return nil, err
	}
	sub := &Submission{b: newBatch(nil, 64), Format: rd.Format()}
	// Parse outside the catalog's lock, so that bodies arriving together
	// parse side by side; only the series lookups take turns. Rejects keep
	// body order: each carries the sequence number of its record.
	type parsed struct {
		r   dataset.Reading
		pos dataset.Position
		seq int
	}
	type listed struct {
		rej Reject
		seq int
	}
	var (
		readings    []parsed
		parseRejs   []listed
		resolveRejs []listed
	)
	seq := 0
	for ; ; seq++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if opts.MaxReadings > 0 && int64(seq) > opts.MaxReadings {
			return nil, fmt.Errorf("%w: more than %d", ErrTooManyReadings, opts.MaxReadings)
		}
		r, pos, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var rec *dataset.RecordError
			if !errors.As(err, &rec) {
				return nil, err
			}
			sub.Rejected++
			if len(parseRejs) < opts.MaxListed {
				parseRejs = append(parseRejs, listed{Reject{Pos: rec.Pos, Field: rec.Field, Reason: rec.Reason, Raw: rec.Raw, RawCut: rec.RawCut}, seq})
			}
			continue
		}
		readings = append(readings, parsed{r, pos, seq})
	}
	resolveReject := func(r Reject, seq int) {
		sub.Rejected++
		if len(resolveRejs) < opts.MaxListed {
			resolveRejs = append(resolveRejs, listed{r, seq})
		}
	}
	l.catMu.Lock()
	defer l.catMu.Unlock()
	for _, p := range readings {
		r := &p.r
		if opts.Allow != nil && !opts.Allow(r.DeviceID, r.Parameter) {
			resolveReject(Reject{Pos: p.pos, Field: "device_id", Reason: opts.AllowReason}, p.seq)
			continue
		}
		var s catalog.Series
		err = dbretry.Idempotent(ctx, l.opts.retry, l.opts.logger, "resolve series", func() (err error) {
			s, err = l.catalog.Resolve(ctx, r.DeviceID, r.Parameter, r.Type)
			return err
		})
		if errors.Is(err, catalog.ErrTypeConflict) {
			resolveReject(Reject{Pos: p.pos, Field: "type", Reason: err.Error()}, p.seq)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.pos, err)
		}
		if sub.b.len() == 0 {
			sub.b.first = p.pos
		}
		sub.Read++
		sub.b.add(s.ID, r.Time, r.OffsetMinutes(), r.Num, r.Text, r.Type == dataset.Text)
	}
	// The first MaxListed rejects overall are among the first MaxListed of
	// each kind: merge the two lists in body order.
	for len(sub.Rejects) < opts.MaxListed && (len(parseRejs) > 0 || len(resolveRejs) > 0) {
		if len(resolveRejs) == 0 || (len(parseRejs) > 0 && parseRejs[0].seq < resolveRejs[0].seq) {
			sub.Rejects, parseRejs = append(sub.Rejects, parseRejs[0].rej), parseRejs[1:]
		} else {
			sub.Rejects, resolveRejs = append(sub.Rejects, resolveRejs[0].rej), resolveRejs[1:]
		}
	}
	return sub, nil
}
