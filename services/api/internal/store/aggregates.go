package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// The SQL of GET /v1/aggregates, which package aggregate plans and fills.

// Every query has the parameters
//
//	$1 int4[]         numeric series ids
//	$2 int4[]         text series ids
//	$3 timestamptz[]  bucket starts, ascending (aggregate.QueryPlan.Buckets)
//	$4, $5            the range [From, To)
//
// and returns, ordered by series and bucket, the columns
//
//	series_id, i (1-based index into $3, from width_bucket), count, sum,
//	min, max, stddev, first, last, first_text, last_text.
//
// width_bucket(t, $3) is the index of the last bucket start <= t: buckets
// are assigned by the starts aggregate.Plan computed, so the database never
// converts between time zones.
const (
	// rawNumericSQL aggregates numeric readings. The float sums are taken
	// in time order: summed in whatever order the plan delivers rows (a
	// bitmap scan under a generic plan, an index scan under a custom one),
	// the same readings gave answers that differed in their last digits
	// between requests, replicas and plans, under one ETag. In time order
	// the answer is a function of the data (the input is sorted already,
	// so this costs next to nothing).
	rawNumericSQL = `
SELECT series_id, width_bucket(time, $3::timestamptz[]) AS i,
       count(*) AS count, sum(value_num ORDER BY time), min(value_num), max(value_num),
       stddev_samp(value_num ORDER BY time),
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
	// Where a bucket spans several rollup rows, sums and merges run in
	// bucket order, for the reason rawNumericSQL gives.
	rollupSelect = `
SELECT series_id, i,
       sum(count)::bigint AS count, sum(sum ORDER BY bucket), min(min), max(max),
       sensorhub.stddev_merge(ARRAY[count::float8, sum, m2] ORDER BY bucket),
       (array_agg(first ORDER BY first_time))[1],
       (array_agg(last ORDER BY last_time DESC))[1],
       NULL::text, NULL::text
FROM (SELECT r.*, width_bucket(bucket, $3::timestamptz[]) AS i`

	// rollupOneSelect is rollupSelect for buckets as wide as the rollup's,
	// which hold one rollup row each: order cannot matter, and PostgreSQL
	// 15 would still sort every bucket's one row for each ordered aggregate
	// (a fifth of its CPU for a week of hours).
	rollupOneSelect = `
SELECT series_id, i,
       sum(count)::bigint AS count, sum(sum), min(min), max(max),
       sensorhub.stddev_merge(ARRAY[count::float8, sum, m2]),
       (array_agg(first ORDER BY first_time))[1],
       (array_agg(last ORDER BY last_time DESC))[1],
       NULL::text, NULL::text
FROM (SELECT r.*, width_bucket(bucket, $3::timestamptz[]) AS i`

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
	rollupHead     = staleCTE + staleMarkerSQL + "\nUNION ALL" + rollupSelect
	rollupOneHead  = staleCTE + staleMarkerSQL + "\nUNION ALL" + rollupOneSelect
	rollupTail     = rollupFreshWhere + "\nUNION ALL" + rawIfStaleSQL + "\nUNION ALL" + textSQL + orderSQL
	rollup1mSQL    = rollupHead + "\n      FROM sensorhub.rollup_1m r" + rollupTail
	rollup1hSQL    = rollupHead + "\n      FROM sensorhub.rollup_1h r" + rollupTail
	rollup1dSQL    = rollupHead + "\n      FROM sensorhub.rollup_1d r" + rollupTail
	rollup1mOneSQL = rollupOneHead + "\n      FROM sensorhub.rollup_1m r" + rollupTail
	rollup1hOneSQL = rollupOneHead + "\n      FROM sensorhub.rollup_1h r" + rollupTail
	rollup1dOneSQL = rollupOneHead + "\n      FROM sensorhub.rollup_1d r" + rollupTail
)

// oneRowSQL is each rollup's query for buckets of its own width, and
// rollupWidth that width.
var (
	oneRowSQL = map[string]string{
		"rollup_1m": rollup1mOneSQL,
		"rollup_1h": rollup1hOneSQL,
		"rollup_1d": rollup1dOneSQL,
	}
	rollupWidth = map[string]time.Duration{
		"rollup_1m": time.Minute,
		"rollup_1h": time.Hour,
		"rollup_1d": 24 * time.Hour,
	}
)

// oneRowPerBucket reports whether the buckets that start at at and end at
// to are at most w wide, so that each holds at most one row of a rollup of
// width w (whose rows nest in them, as aggregate.Plan chose the rollup).
func oneRowPerBucket(at []time.Time, to time.Time, w time.Duration) bool {
	if len(at) == 0 || to.Sub(at[len(at)-1]) > w {
		return false
	}
	for k := 1; k < len(at); k++ {
		if at[k].Sub(at[k-1]) != w {
			return false
		}
	}
	return true
}

// aggregateSQL is the query of each source: the raw readings or a rollup,
// named as aggregate's sources and the API's source field name them.
var aggregateSQL = map[string]string{
	"raw":       rawSQL,
	"rollup_1m": rollup1mSQL,
	"rollup_1h": rollup1hSQL,
	"rollup_1d": rollup1dSQL,
}

// AggregateCell is one non-empty bucket of one series: the aggregates the
// SQL computed. Bucket indexes the bucket starts the query was given.
type AggregateCell struct {
	Bucket                             int
	Count                              int64
	Sum, Min, Max, Stddev, First, Last pgtype.Float8
	FirstText, LastText                pgtype.Text
}

// ReadAggregates runs source's query (raw, rollup_1m, rollup_1h or
// rollup_1d) for the numeric and text series over [from, to) in the buckets
// that start at the times at, and returns each series' non-empty buckets in
// bucket order, and whether the raw readings stood in for a rollup still
// pending materialization. The cells are appended to *buf (which may be
// nil), a buffer the caller may reuse once it is done with the result: a
// week of hourly buckets is 27 KiB of cells per request.
func ReadAggregates(ctx context.Context, q Querier, source string, numIDs, textIDs []int32, at []time.Time, from, to time.Time, buf *[]AggregateCell) (_ map[int32][]AggregateCell, stale bool, _ error) {
	sql, ok := aggregateSQL[source]
	if !ok {
		return nil, false, fmt.Errorf("aggregate: no query for source %q", source)
	}
	if one, ok := oneRowSQL[source]; ok && oneRowPerBucket(at, to, rollupWidth[source]) {
		sql = one
	}
	rows, err := q.Query(ctx, sql, numIDs, textIDs, bucketStarts(at), from.UTC(), to.UTC())
	if err != nil {
		return nil, false, fmt.Errorf("aggregate from %s: %w", source, err)
	}
	defer rows.Close()
	// Rows come by series, then bucket: they go into one slice, cut per
	// series at the end.
	var all []AggregateCell
	if buf != nil {
		all = (*buf)[:0]
		defer func() { *buf = all }()
	}
	if all == nil {
		all = make([]AggregateCell, 0, min(len(at)*max(1, len(numIDs)+len(textIDs)), 4096))
	}
	var ids []int32 // series id of all[starts[k]:starts[k+1]]
	var starts []int
	// One set of destinations for every row, so scanning allocates nothing.
	var (
		id, i int32
		c     AggregateCell
	)
	dest := []any{&id, &i, &c.Count, &c.Sum, &c.Min, &c.Max, &c.Stddev, &c.First, &c.Last, &c.FirstText, &c.LastText}
	binaryRows := aggregateRowsBinary(rows.FieldDescriptions())
	for rows.Next() {
		if !binaryRows || !decodeAggregateRow(rows.RawValues(), &id, &i, &c) {
			if err := rows.Scan(dest...); err != nil {
				return nil, false, fmt.Errorf("aggregate from %s: scan: %w", source, err)
			}
		}
		if id == 0 && i == 0 {
			stale = true
			continue
		}
		if i < 1 || int(i) > len(at) {
			return nil, false, fmt.Errorf("aggregate from %s: series %d: bucket index %d outside 1..%d", source, id, i, len(at))
		}
		c.Bucket = int(i) - 1
		all = append(all, c)
		if len(ids) == 0 || ids[len(ids)-1] != id {
			ids, starts = append(ids, id), append(starts, len(all)-1)
		}
	}
	out := make(map[int32][]AggregateCell, len(ids))
	for k, id := range ids {
		end := len(all)
		if k+1 < len(starts) {
			end = starts[k+1]
		}
		out[id] = all[starts[k]:end:end]
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("aggregate from %s: %w", source, err)
	}
	return out, stale, nil
}

// aggregateColumns are the types of the aggregate queries' columns.
var aggregateColumns = [11]uint32{
	pgtype.Int4OID, pgtype.Int4OID, pgtype.Int8OID,
	pgtype.Float8OID, pgtype.Float8OID, pgtype.Float8OID, pgtype.Float8OID, pgtype.Float8OID, pgtype.Float8OID,
	pgtype.TextOID, pgtype.TextOID,
}

// aggregateRowsBinary reports whether rows come with aggregateColumns'
// types, the fixed-size ones in binary, as pgx asks for them: then
// decodeAggregateRow reads them, at a fraction of rows.Scan's cost (as
// readingScanner does for readings).
func aggregateRowsBinary(fd []pgconn.FieldDescription) bool {
	if len(fd) != len(aggregateColumns) {
		return false
	}
	for k, oid := range aggregateColumns {
		if fd[k].DataTypeOID != oid || (oid != pgtype.TextOID && fd[k].Format != pgtype.BinaryFormatCode) {
			return false
		}
	}
	return true
}

// decodeAggregateRow reads one binary row into id, i and c; ok is false for
// a value it does not handle (a NULL id, index or count), which Scan then
// reports.
func decodeAggregateRow(v [][]byte, id, i *int32, c *AggregateCell) bool {
	if len(v) != 11 || len(v[0]) != 4 || len(v[1]) != 4 || len(v[2]) != 8 {
		return false
	}
	*id = int32(binary.BigEndian.Uint32(v[0]))
	*i = int32(binary.BigEndian.Uint32(v[1]))
	c.Count = int64(binary.BigEndian.Uint64(v[2]))
	for k, f := range [...]*pgtype.Float8{&c.Sum, &c.Min, &c.Max, &c.Stddev, &c.First, &c.Last} {
		switch b := v[3+k]; len(b) {
		case 8:
			*f = pgtype.Float8{Float64: math.Float64frombits(binary.BigEndian.Uint64(b)), Valid: true}
		case 0:
			if b != nil {
				return false
			}
			*f = pgtype.Float8{}
		default:
			return false
		}
	}
	for k, t := range [...]*pgtype.Text{&c.FirstText, &c.LastText} {
		if b := v[9+k]; b != nil {
			*t = pgtype.Text{String: string(b), Valid: true}
		} else {
			*t = pgtype.Text{}
		}
	}
	return true
}
