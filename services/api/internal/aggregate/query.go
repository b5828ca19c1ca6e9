package aggregate

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sensorhub/sensorhub/services/api/internal/store"
)

// Every query has the parameters
//
//	$1 int4[]         numeric series ids
//	$2 int4[]         text series ids
//	$3 timestamptz[]  bucket starts, ascending (QueryPlan.Buckets)
//	$4, $5            the range [From, To)
//
// and returns, ordered by series and bucket, the columns
//
//	series_id, i (1-based index into $3, from width_bucket), count, sum,
//	min, max, stddev, first, last, first_text, last_text.
//
// width_bucket(t, $3) is the index of the last bucket start <= t: buckets
// are assigned by the starts Plan computed, so the database never converts
// between time zones.
const (
	// rawNumericSQL aggregates numeric readings.
	rawNumericSQL = `
SELECT series_id, width_bucket(time, $3::timestamptz[]) AS i,
       count(*) AS count, sum(value_num), min(value_num), max(value_num),
       stddev_samp(value_num),
       (array_agg(value_num ORDER BY time))[1],
       (array_agg(value_num ORDER BY time DESC))[1],
       NULL::text, NULL::text
FROM sensorhub.readings
WHERE series_id = ANY($1::int4[]) AND time >= $4::timestamptz AND time < $5::timestamptz
  AND value_num IS NOT NULL`
	rawNumericGroup = `
GROUP BY series_id, i`

	// rollupSQL re-aggregates rollup rows. stddev merges each row's
	// (count, sum, m2) with sensorhub.stddev_merge (migration 00010): the
	// pairwise update stays exact to a few ulps when the spread is small
	// against the mean, and cannot fail on an underflow for tiny values.
	rollupSelect = `
SELECT series_id, i,
       sum(count)::bigint AS count, sum(sum), min(min), max(max),
       sensorhub.stddev_merge(ARRAY[count::float8, sum, m2]),
       (array_agg(first ORDER BY first_time))[1],
       (array_agg(last ORDER BY last_time DESC))[1],
       NULL::text, NULL::text
FROM (SELECT r.*, width_bucket(bucket, $3::timestamptz[]) AS i`
	rollupWhere = `
      WHERE series_id = ANY($1::int4[]) AND bucket >= $4::timestamptz AND bucket < $5::timestamptz) g
GROUP BY series_id, i`

	// textSQL aggregates text readings; they have no rollups.
	textSQL = `
SELECT series_id, width_bucket(time, $3::timestamptz[]) AS i,
       count(*) AS count, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8,
       (array_agg(value_text ORDER BY time))[1],
       (array_agg(value_text ORDER BY time DESC))[1]
FROM sensorhub.readings
WHERE series_id = ANY($2::int4[]) AND time >= $4::timestamptz AND time < $5::timestamptz
  AND value_text IS NOT NULL
GROUP BY series_id, i`

	orderSQL = `
ORDER BY 1, 2`

	// A rollup is stale where a load left its range in rollup_pending (ingest
	// load -rollups defer, or a load still running): a request touching such
	// a range is answered from the raw readings instead, in the same query,
	// so it is exact whether or not materialization has caught up. The
	// pending range holds reading times, and the coarsest rollup bucket is a
	// day, hence the day of margin. The gates depend on no row, so PostgreSQL
	// runs the check once and skips the branch it rules out. When the raw
	// branch runs, a first row (0, 0) says so: series ids start at 1.
	staleCTE = `
WITH stale AS MATERIALIZED (
    SELECT EXISTS (SELECT FROM sensorhub.rollup_pending
                   WHERE lo < $5::timestamptz AND hi >= $4::timestamptz - interval '1 day') AS yes)`
	staleMarkerSQL = `
SELECT 0, 0, 0::bigint, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8,
       NULL::text, NULL::text
WHERE (SELECT yes FROM stale)`
	rollupFreshWhere = `
      WHERE series_id = ANY($1::int4[]) AND bucket >= $4::timestamptz AND bucket < $5::timestamptz
        AND NOT (SELECT yes FROM stale)) g
GROUP BY series_id, i`
	rawIfStaleSQL = rawNumericSQL + `
  AND (SELECT yes FROM stale)` + rawNumericGroup

	rawSQL = rawNumericSQL + rawNumericGroup + "\nUNION ALL" + textSQL + orderSQL
)

// The rollup queries read the numeric series from their rollup (or, where
// it is stale, the raw readings) and the text series from the readings.
const (
	rollupHead  = staleCTE + staleMarkerSQL + "\nUNION ALL" + rollupSelect
	rollupTail  = rollupFreshWhere + "\nUNION ALL" + rawIfStaleSQL + "\nUNION ALL" + textSQL + orderSQL
	rollup1mSQL = rollupHead + "\n      FROM sensorhub.rollup_1m r" + rollupTail
	rollup1hSQL = rollupHead + "\n      FROM sensorhub.rollup_1h r" + rollupTail
	rollup1dSQL = rollupHead + "\n      FROM sensorhub.rollup_1d r" + rollupTail
)

var sqlBySource = map[string]string{
	SourceRaw:      rawSQL,
	SourceRollup1m: rollup1mSQL,
	SourceRollup1h: rollup1hSQL,
	SourceRollup1d: rollup1dSQL,
}

// Query plans req (see Plan), reads every series with one query and fills
// empty buckets. Invalid requests fail with a *InvalidError (errors.Is
// ErrInvalid); other errors come from the database.
func Query(ctx context.Context, q store.Querier, req Request) (Result, error) {
	p, err := Plan(req)
	if err != nil {
		return Result{}, err
	}
	numIDs, textIDs := []int32{}, []int32{}
	for _, s := range req.Series {
		if s.Type == store.TypeText {
			textIDs = append(textIDs, s.ID)
		} else {
			numIDs = append(numIDs, s.ID)
		}
	}
	cells, stale, err := read(ctx, q, p, numIDs, textIDs)
	if err != nil {
		return Result{}, err
	}
	if stale {
		p.Source = SourceRaw
	}
	res := Result{Source: p.Source, Bucket: p.Bucket, Funcs: p.Funcs, Series: make([]SeriesResult, 0, len(req.Series))}
	for _, s := range req.Series {
		src := p.Source
		if s.Type == store.TypeText {
			src = SourceRaw
		}
		res.Series = append(res.Series, SeriesResult{
			DeviceID: s.DeviceID, Parameter: s.Parameter, Type: s.Type, Source: src,
			Points: fillPoints(p, cells[s.ID]),
		})
	}
	return res, nil
}

// read runs the plan's query and returns each series' non-empty buckets in
// bucket order, and whether the raw readings stood in for a stale rollup.
func read(ctx context.Context, q store.Querier, p QueryPlan, numIDs, textIDs []int32) (_ map[int32][]cell, stale bool, _ error) {
	sql, ok := sqlBySource[p.Source]
	if !ok {
		return nil, false, fmt.Errorf("aggregate: no query for source %q", p.Source)
	}
	buckets := make(bucketStarts, len(p.Buckets))
	for i, b := range p.Buckets {
		buckets[i] = bucketStart(b.UTC())
	}
	rows, err := q.Query(ctx, sql, numIDs, textIDs, buckets, p.From.UTC(), p.To.UTC())
	if err != nil {
		return nil, false, fmt.Errorf("aggregate from %s: %w", p.Source, err)
	}
	defer rows.Close()
	// Rows come by series, then bucket: they go into one slice, cut per
	// series at the end.
	all := make([]cell, 0, min(p.Points, 4096))
	var ids []int32 // series id of all[starts[k]:starts[k+1]]
	var starts []int
	// One set of destinations for every row, so scanning allocates nothing.
	var (
		id, i int32
		c     cell
	)
	dest := []any{&id, &i, &c.count, &c.sum, &c.min, &c.max, &c.stddev, &c.first, &c.last, &c.firstText, &c.lastText}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, false, fmt.Errorf("aggregate from %s: scan: %w", p.Source, err)
		}
		if id == 0 && i == 0 {
			stale = true
			continue
		}
		if i < 1 || int(i) > len(p.Buckets) {
			return nil, false, fmt.Errorf("aggregate from %s: series %d: bucket index %d outside 1..%d", p.Source, id, i, len(p.Buckets))
		}
		c.bucket = int(i) - 1
		all = append(all, c)
		if len(ids) == 0 || ids[len(ids)-1] != id {
			ids, starts = append(ids, id), append(starts, len(all)-1)
		}
	}
	out := make(map[int32][]cell, len(ids))
	for k, id := range ids {
		end := len(all)
		if k+1 < len(starts) {
			end = starts[k+1]
		}
		out[id] = all[starts[k]:end:end]
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("aggregate from %s: %w", p.Source, err)
	}
	return out, stale, nil
}

// bucketStarts binds bucket starts as a timestamptz[]. pgx encodes a
// []time.Time by boxing every element twice; this hands out pointers, which
// box for free, so binding allocates nothing per bucket.
type bucketStarts []bucketStart

// bucketStart is one bucket start; *bucketStart is a pgtype.TimestamptzValuer.
type bucketStart time.Time

// Dimensions implements pgtype.ArrayGetter.
func (b bucketStarts) Dimensions() []pgtype.ArrayDimension {
	if b == nil {
		return nil
	}
	return []pgtype.ArrayDimension{{Length: int32(len(b)), LowerBound: 1}}
}

// Index implements pgtype.ArrayGetter.
func (b bucketStarts) Index(i int) any { return &b[i] }

// IndexType implements pgtype.ArrayGetter.
func (b bucketStarts) IndexType() any { return new(bucketStart) }

// TimestamptzValue implements pgtype.TimestamptzValuer.
func (s *bucketStart) TimestamptzValue() (pgtype.Timestamptz, error) {
	return pgtype.Timestamptz{Time: time.Time(*s), Valid: true}, nil
}
