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
	reject := func(r Reject) {
		sub.Rejected++
		if len(sub.Rejects) < opts.MaxListed {
			sub.Rejects = append(sub.Rejects, r)
		}
	}
	for n := int64(0); ; n++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if opts.MaxReadings > 0 && n > opts.MaxReadings {
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
			reject(Reject{Pos: rec.Pos, Field: rec.Field, Reason: rec.Reason, Raw: rec.Raw, RawCut: rec.RawCut})
			continue
		}
		if opts.Allow != nil && !opts.Allow(r.DeviceID, r.Parameter) {
			reject(Reject{Pos: pos, Field: "device_id", Reason: opts.AllowReason})
			continue
		}
		s, err := l.resolve(ctx, &r)
		if errors.Is(err, catalog.ErrTypeConflict) {
			reject(Reject{Pos: pos, Field: "type", Reason: err.Error()})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pos, err)
		}
		if sub.b.len() == 0 {
			sub.b.first = pos
		}
		sub.Read++
		sub.b.add(s.ID, r.Time, r.OffsetMinutes(), r.Num, r.Text, r.Type == dataset.Text)
	}
	return sub, nil
}

// resolve returns the series of r: from the catalog's cache when it knows
// it, which is every reading but a series' first, so the retry wrapper and
// its closure are paid only for the round trips that need them.
func (l *Loader) resolve(ctx context.Context, r *dataset.Reading) (catalog.Series, error) {
	s, ok, err := l.catalog.Cached(r.DeviceID, r.Parameter, r.Type)
	if ok || err != nil {
		return s, err
	}
	err = dbretry.Idempotent(ctx, l.opts.retry, l.opts.logger, "resolve series", func() (err error) {
		s, err = l.catalog.Resolve(ctx, r.DeviceID, r.Parameter, r.Type)
		return err
	})
	return s, err
}
