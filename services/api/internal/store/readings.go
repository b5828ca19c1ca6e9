package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sensorhub/sensorhub/db/scope"
)

// ReadingsQuery selects readings of one series in [From, To).
type ReadingsQuery struct {
	SeriesID int32
	// From and To bound the range; nil leaves that side open.
	From, To *time.Time
	Desc     bool
	// After is the time of the last reading a previous page returned; the
	// result continues after it in the query's order (keyset pagination).
	After *time.Time
}

// bounds folds After into the range: readings are stored with microsecond
// precision, so "after t" ascending is "from t+1µs".
func (q ReadingsQuery) bounds() (lo, hi *time.Time) {
	lo, hi = q.From, q.To
	if q.After == nil {
		return lo, hi
	}
	a := *q.After
	if q.Desc {
		if hi == nil || a.Before(*hi) {
			hi = &a
		}
		return lo, hi
	}
	next := a.Add(time.Microsecond)
	if lo == nil || next.After(*lo) {
		lo = &next
	}
	return lo, hi
}

// readingsWhere reads one in-scope series ($5) in [$6, $7); the scalar
// subquery keeps an out-of-scope series id from reading anything.
const readingsWhere = `
FROM sensorhub.readings r
WHERE r.series_id = (SELECT s.series_id FROM sensorhub.series s WHERE s.series_id = $5 AND ` + scopeFilter + `)
  AND r.time >= coalesce($6::timestamptz, '-infinity')
  AND r.time < coalesce($7::timestamptz, 'infinity')`

// A NULL limit ($8) is LIMIT ALL.
const (
	readingsAscSQL  = `SELECT r.time, r.utc_offset_min, r.value_num, r.value_text` + readingsWhere + ` ORDER BY r.time LIMIT $8`
	readingsDescSQL = `SELECT r.time, r.utc_offset_min, r.value_num, r.value_text` + readingsWhere + ` ORDER BY r.time DESC LIMIT $8`
)

func (q ReadingsQuery) sql() string {
	if q.Desc {
		return readingsDescSQL
	}
	return readingsAscSQL
}

func (q ReadingsQuery) args(sc scope.Scope, limit any) []any {
	lo, hi := q.bounds()
	return scopeArgs(sc, q.SeriesID, lo, hi, limit)
}

// readingScanner decodes rows of (time, utc_offset_min, value_num,
// value_text). pgx asks for these types in binary, and reading the fixed-size
// fields straight from the row costs a fraction of rows.Scan, which looks up
// a scan plan per value: at 1,000 rows a page, Scan was a tenth of the API's
// CPU (docs/benchmarks.md, "Cheaper misses"). Rows in any other form fall
// back to Scan, which also reports what the decoder does not handle.
type readingScanner struct {
	checked, binary bool
	t               time.Time
	off             int16
	num             pgtype.Float8
	text            pgtype.Text
	dest            []any
}

// pgEpochMicros is where timestamptz's binary form counts microseconds from.
var pgEpochMicros = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

func (rs *readingScanner) scan(rows pgx.Rows) (Reading, error) {
	if !rs.checked {
		rs.checked = true
		fd := rows.FieldDescriptions()
		rs.binary = len(fd) == 4 &&
			fd[0].DataTypeOID == pgtype.TimestamptzOID && fd[0].Format == pgtype.BinaryFormatCode &&
			fd[1].DataTypeOID == pgtype.Int2OID && fd[1].Format == pgtype.BinaryFormatCode &&
			fd[2].DataTypeOID == pgtype.Float8OID && fd[2].Format == pgtype.BinaryFormatCode &&
			fd[3].DataTypeOID == pgtype.TextOID
	}
	if rs.binary {
		if r, ok := decodeReading(rows.RawValues()); ok {
			return r, nil
		}
	}
	if rs.dest == nil {
		rs.dest = []any{&rs.t, &rs.off, &rs.num, &rs.text}
	}
	if err := rows.Scan(rs.dest...); err != nil {
		return Reading{}, err
	}
	return Reading{Time: rs.t, OffsetMin: rs.off, Num: rs.num.Float64, Text: rs.text.String, IsText: rs.text.Valid}, nil
}

// decodeReading reads one binary row; ok is false for a value it does not
// handle (a NULL time or offset, an infinite timestamp), which Scan then
// reports or converts.
func decodeReading(v [][]byte) (Reading, bool) {
	if len(v) != 4 || len(v[0]) != 8 || len(v[1]) != 2 {
		return Reading{}, false
	}
	us := int64(binary.BigEndian.Uint64(v[0]))
	if us == math.MaxInt64 || us == math.MinInt64 { // infinity, -infinity
		return Reading{}, false
	}
	r := Reading{Time: time.UnixMicro(us + pgEpochMicros).UTC(), OffsetMin: int16(binary.BigEndian.Uint16(v[1]))}
	switch {
	case v[2] != nil:
		if len(v[2]) != 8 {
			return Reading{}, false
		}
		r.Num = math.Float64frombits(binary.BigEndian.Uint64(v[2]))
	case v[3] != nil:
		r.Text, r.IsText = string(v[3]), true
	}
	return r, true
}

// Readings appends to dst up to limit readings of q's series, in q's order.
// Callers that serve many pages pass a reused slice: a page of 1,000
// readings is 64 KiB that would otherwise be allocated, zeroed and scanned
// by the garbage collector per request.
func (s *Store) Readings(ctx context.Context, sc scope.Scope, q ReadingsQuery, limit int, dst []Reading) ([]Reading, error) {
	defer s.observe("readings")()
	rows, err := s.pool.Query(ctx, q.sql(), q.args(sc, limit)...)
	if err != nil {
		return dst, fmt.Errorf("read readings: %w", translate(ctx, err))
	}
	defer rows.Close()
	var rs readingScanner
	for rows.Next() {
		r, err := rs.scan(rows)
		if err != nil {
			return dst, fmt.Errorf("read readings: %w", translate(ctx, err))
		}
		dst = append(dst, r)
	}
	if err := rows.Err(); err != nil {
		return dst, fmt.Errorf("read readings: %w", translate(ctx, err))
	}
	return dst, nil
}

// ExportBatch is how many readings an export fetches per round trip.
const ExportBatch = 2000

const (
	exportCursor   = "sensorhub_export"
	exportFetchSQL = "FETCH FORWARD 2000 FROM " + exportCursor
)

// Export streams every reading of a query in constant memory: the query runs
// as a server-side cursor in a read-only transaction, and each FETCH is its own
// statement, so the statement timeout bounds one round trip rather than the
// whole export. Call Next until it returns no readings, then Close.
type Export struct {
	ctx   context.Context
	tx    pgx.Tx
	batch []Reading
	done  bool
}

// ExportReadings opens an export of every reading of q's series.
func (s *Store) ExportReadings(ctx context.Context, sc scope.Scope, q ReadingsQuery) (*Export, error) {
	defer s.observe("export_open")()
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("export: begin: %w", translate(ctx, err))
	}
	e := &Export{ctx: ctx, tx: tx, batch: make([]Reading, 0, ExportBatch)}
	if _, err := tx.Exec(ctx, "DECLARE "+exportCursor+" NO SCROLL CURSOR FOR "+q.sql(), q.args(sc, nil)...); err != nil {
		e.Close()
		return nil, fmt.Errorf("export: declare cursor: %w", translate(ctx, err))
	}
	return e, nil
}

// Next returns the next batch of up to ExportBatch readings; an empty batch
// means the export is complete. The slice is reused by the next call.
func (e *Export) Next() ([]Reading, error) {
	if e.done {
		return nil, nil
	}
	rows, err := e.tx.Query(e.ctx, exportFetchSQL)
	if err != nil {
		return nil, fmt.Errorf("export: fetch: %w", translate(e.ctx, err))
	}
	defer rows.Close()
	e.batch = e.batch[:0]
	var rs readingScanner
	for rows.Next() {
		r, err := rs.scan(rows)
		if err != nil {
			return nil, fmt.Errorf("export: fetch: %w", translate(e.ctx, err))
		}
		e.batch = append(e.batch, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("export: fetch: %w", translate(e.ctx, err))
	}
	e.done = len(e.batch) < ExportBatch
	return e.batch, nil
}

// Close ends the transaction and returns the connection to the pool.
func (e *Export) Close() {
	// Rolling back a read-only transaction only drops the cursor; a canceled
	// request context must not keep that from happening.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), 5*time.Second)
	defer cancel()
	_ = e.tx.Rollback(ctx)
}

// LegacyQuery selects readings for the original service's process_request.
type LegacyQuery struct {
	DeviceID  string // "" = any
	Parameter string // "" = any
	From, To  *time.Time
}

// LegacyRow is one reading with its series' names.
type LegacyRow struct {
	DeviceID, Parameter string
	Reading
}

// The process_request query runs in two steps: the in-scope series that
// match, ordered by device and parameter, then their readings, each series'
// read in time order from the primary key and labelled with its position in
// that list. The second has no ORDER BY: its rows come in (position, time)
// order as the nested loop over the ordinal list produces them (a LATERAL
// with a LIMIT cannot be joined any other way), so the outer LIMIT stops
// reading once it has its rows. With ORDER BY u.ord, r.time, PostgreSQL,
// which does not know the list's order, read every series up to the limit
// and sorted it all: a device's process_request got 1.87x slower from 1M to
// 100M readings (bench/scale.sh) at the same 100,000 rows. LegacyRows.Next
// checks the order and fails the answer if it ever breaks.
const legacySeriesSQL = `
SELECT s.series_id, s.device_id, s.parameter
FROM sensorhub.series s
WHERE ` + scopeFilter + `
  AND ($5::text IS NULL OR s.device_id = $5)
  AND ($6::text IS NULL OR s.parameter = $6)
ORDER BY s.device_id, s.parameter`

const legacyReadingsSQL = `
SELECT u.ord, r.time, r.utc_offset_min, r.value_num, r.value_text
FROM unnest($1::integer[]) WITH ORDINALITY AS u(series_id, ord)
CROSS JOIN LATERAL (
    SELECT r.time, r.utc_offset_min, r.value_num, r.value_text
    FROM sensorhub.readings r
    WHERE r.series_id = u.series_id
      AND r.time >= coalesce($2::timestamptz, '-infinity')
      AND r.time < coalesce($3::timestamptz, 'infinity')
    ORDER BY r.time
    LIMIT $4) r
LIMIT $4`

// LegacyRows iterates over the result of Legacy as it arrives from the
// database: call Next, then Row, until Next is false; then check Err. Close
// releases the connection (Next does when the rows run out).
type LegacyRows struct {
	ctx   context.Context
	rows  pgx.Rows
	names [][2]string // device and parameter by position - 1
	row   LegacyRow
	ord   int64
	prev  time.Time // time of the previous row of the same position
	num   pgtype.Float8
	text  pgtype.Text
	err   error
}

// Legacy runs the process_request query: up to limit readings matching q,
// ordered by device, parameter and time.
func (s *Store) Legacy(ctx context.Context, sc scope.Scope, q LegacyQuery, limit int) (*LegacyRows, error) {
	defer s.observe("legacy_open")()
	rows, err := s.pool.Query(ctx, legacySeriesSQL, scopeArgs(sc, nullable(q.DeviceID), nullable(q.Parameter))...)
	if err != nil {
		return nil, fmt.Errorf("graph data: %w", translate(ctx, err))
	}
	var (
		ids   []int32
		names [][2]string
	)
	for rows.Next() {
		var (
			id   int32
			name [2]string
		)
		if err := rows.Scan(&id, &name[0], &name[1]); err != nil {
			rows.Close()
			return nil, fmt.Errorf("graph data: %w", translate(ctx, err))
		}
		ids, names = append(ids, id), append(names, name)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("graph data: %w", translate(ctx, err))
	}
	rows, err = s.pool.Query(ctx, legacyReadingsSQL, ids, q.From, q.To, limit)
	if err != nil {
		return nil, fmt.Errorf("graph data: %w", translate(ctx, err))
	}
	return &LegacyRows{ctx: ctx, rows: rows, names: names}, nil
}

// Next advances to the next row.
func (g *LegacyRows) Next() bool {
	if g.err != nil || !g.rows.Next() {
		return false
	}
	lastOrd := g.ord
	if err := g.rows.Scan(&g.ord, &g.row.Time, &g.row.OffsetMin, &g.num, &g.text); err != nil {
		g.err = err
		g.rows.Close()
		return false
	}
	if g.ord < 1 || int(g.ord) > len(g.names) {
		g.err = fmt.Errorf("series position %d out of range", g.ord)
		g.rows.Close()
		return false
	}
	if g.ord < lastOrd || g.ord == lastOrd && !g.row.Time.After(g.prev) {
		g.err = fmt.Errorf("graph data: rows out of order at series position %d, %s (after position %d, %s)", g.ord, g.row.Time, lastOrd, g.prev)
		g.rows.Close()
		return false
	}
	g.prev = g.row.Time
	name := g.names[g.ord-1]
	g.row.DeviceID, g.row.Parameter = name[0], name[1]
	g.row.Num, g.row.Text, g.row.IsText = g.num.Float64, g.text.String, g.text.Valid
	return true
}

// Row returns the current row. Its names are shared by the rows of one
// series; they are immutable strings, so callers may keep them.
func (g *LegacyRows) Row() LegacyRow { return g.row }

// Err returns the error that ended the iteration, if any.
func (g *LegacyRows) Err() error {
	err := g.err
	if err == nil {
		err = g.rows.Err()
	}
	if err != nil {
		return fmt.Errorf("graph data: %w", translate(g.ctx, err))
	}
	return nil
}

// Close releases the rows; it is safe to call more than once.
func (g *LegacyRows) Close() { g.rows.Close() }
