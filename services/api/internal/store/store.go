// Package store reads sensorhub's database for the API. Every query takes the
// request's scope.Scope and filters by it in SQL, so out-of-scope series are
// indistinguishable from missing ones. The SQL sits next to the method that
// runs it; pgx and PostgreSQL errors become this package's errors here and
// nowhere else.
package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sensorhub/sensorhub/db"
	"github.com/sensorhub/sensorhub/db/scope"
)

// Errors callers map to responses.
var (
	// ErrNotFound: no such series (or not in scope).
	ErrNotFound = errors.New("not found")
	// ErrTimeout: the statement or request ran out of time.
	ErrTimeout = errors.New("query exceeded its time limit")
	// ErrUnavailable: the database cannot be reached or is shutting down.
	ErrUnavailable = errors.New("database unavailable")
	// ErrInvalid: PostgreSQL rejected a value the caller supplied.
	ErrInvalid = errors.New("invalid query input")
)

// readBufferSize is each connection's read buffer.
const readBufferSize = 64 << 10

// PoolConfig is the pool configuration the API reads with: at most size
// connections, statement_timeout on every session, and read-only
// transactions by default as a second line behind the role's privileges.
func PoolConfig(dsn string, size int, statementTimeout time.Duration) (*pgxpool.Config, error) {
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	pc.MaxConns = int32(size)
	rp := pc.ConnConfig.RuntimeParams
	rp["statement_timeout"] = strconv.FormatInt(statementTimeout.Milliseconds(), 10)
	rp["default_transaction_read_only"] = "on"
	if rp["application_name"] == "" {
		rp["application_name"] = "sensorhub-api"
	}
	// pgproto3 reads the socket 8 KiB at a time, so a page of 1,000
	// readings took several read calls; a 64 KiB buffer in front takes one
	// or two (docs/benchmarks.md, "Cheaper misses").
	pc.ConnConfig.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
		return pgproto3.NewFrontend(bufio.NewReaderSize(r, readBufferSize), w)
	}
	pc.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		registerBucketStarts(c)
		return nil
	}
	return pc, nil
}

// Store runs the API's queries on a pool.
type Store struct {
	pool          *pgxpool.Pool
	queryDuration *prometheus.HistogramVec
	listenerUp    prometheus.Gauge // 1 while ListenDatasetVersion listens
}

// New returns a Store reading through pool.
func New(pool *pgxpool.Pool) *Store {
	return &Store{
		pool: pool,
		queryDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sensorhub_db_query_duration_seconds",
			Help:    "Time the API's database operations took, by operation (a fixed set of names).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"operation"}),
		listenerUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sensorhub_dataset_version_listener_up",
			Help: "1 while the API listens for notifications of new dataset versions (SENSORHUB_DB_LISTEN); 0 while it only polls the version.",
		}),
	}
}

// observe starts timing operation op; call the result when it is done. The
// label is one of the store's own operation names, never request data.
func (s *Store) observe(op string) func() {
	start := time.Now()
	return func() { s.queryDuration.WithLabelValues(op).Observe(time.Since(start).Seconds()) }
}

// Types of series values, as sensorhub.series.value_type has them.
const (
	TypeNumeric = "numeric"
	TypeText    = "text"
)

// Series is one (device, parameter) pair of the catalog.
type Series struct {
	ID        int32
	DeviceID  string
	Parameter string
	Type      string // TypeNumeric or TypeText
	// FirstTime and LastTime are nil while the series has no readings.
	FirstTime, LastTime *time.Time
	Count               int64
}

// Reading is one stored reading; exactly one of Num and Text is meaningful,
// as IsText says.
type Reading struct {
	// Time is the instant.
	Time time.Time
	// OffsetMin is the UTC offset, in minutes, the reading was recorded with.
	OffsetMin int16
	Num       float64
	Text      string
	IsText    bool
}

// scopeFilter admits the series s of the request's scope; its four bind
// parameters come first in every query ($1-$4, see scopeArgs).
const scopeFilter = `($1::boolean OR s.device_id = ANY($2::text[]))
  AND ($3::boolean OR EXISTS (SELECT FROM unnest($4::text[]) AS a(prefix) WHERE starts_with(s.parameter, a.prefix)))`

// scopeArgs returns the scope's bind parameters followed by rest ($5, ...).
func scopeArgs(sc scope.Scope, rest ...any) []any {
	anyDevice, devices, anyParam, prefixes := sc.Args()
	return append([]any{anyDevice, devices, anyParam, prefixes}, rest...)
}

// SchemaVersion returns the newest applied migration, for readiness.
func (s *Store) SchemaVersion(ctx context.Context) (int64, error) {
	defer s.observe("schema_version")()
	v, err := db.DBVersion(ctx, s.pool)
	if err != nil {
		return 0, translate(ctx, err)
	}
	return v, nil
}

const datasetVersionSQL = `SELECT version FROM sensorhub.dataset_state`

// DatasetVersion returns the dataset's version, which every load changes:
// the basis of the API's cache validators.
func (s *Store) DatasetVersion(ctx context.Context) (int64, error) {
	defer s.observe("dataset_version")()
	var v int64
	if err := s.queryRow(ctx, datasetVersionSQL).Scan(&v); err != nil {
		return 0, fmt.Errorf("read dataset version: %w", translate(ctx, err))
	}
	return v, nil
}

const mayWriteSQL = `SELECT has_table_privilege(current_user, 'sensorhub.readings', 'INSERT')`

// MayWrite reports whether the connected role could insert readings, which
// the API's role should not be able to do.
func (s *Store) MayWrite(ctx context.Context) (bool, error) {
	var ok bool
	if err := s.queryRow(ctx, mayWriteSQL).Scan(&ok); err != nil {
		return false, fmt.Errorf("check privileges: %w", translate(ctx, err))
	}
	return ok, nil
}

// translate maps pgx and PostgreSQL errors onto this package's errors,
// keeping the original in the chain for logs.
func translate(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	// The client went away: not the database's fault, not worth a problem.
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("%w: %w", context.Canceled, err)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case pg.Code == "57014": // query_canceled: statement_timeout
			return fmt.Errorf("%w: %w", ErrTimeout, err)
		case pg.Code == "2201B" || pg.Code == "22P02" || pg.Code == "22007" || pg.Code == "22008" || pg.Code == "22023" || pg.Code == "22021":
			// invalid regular expression, text representation, datetime format,
			// datetime field overflow, invalid parameter value, character not
			// in repertoire (NUL, invalid UTF-8)
			return fmt.Errorf("%w: %s", ErrInvalid, pg.Message)
		case pg.Code[:2] == "08" || pg.Code[:2] == "53" || pg.Code[:3] == "57P":
			// connection exception, insufficient resources, operator intervention
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	// A pooled connection the server or network closed mid-query reads EOF.
	if errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// Querier runs one query: what ReadAggregates runs on, for package
// aggregate; *pgxpool.Pool, *pgx.Conn and pgx.Tx satisfy it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Run lets package aggregate, which plans and fills the answer around
// ReadAggregates, run on the store's pool; database errors it returns are
// translated like the store's own, other errors pass through unchanged.
func (s *Store) Run(ctx context.Context, fn func(context.Context, Querier) error) error {
	defer s.observe("aggregates")()
	return translate(ctx, fn(ctx, s.pool))
}

// queryRow is pool.QueryRow without pgxpool's row handles. pgxpool hands
// those out from a per-connection slab of 128 that is only dropped when
// used up, and each used handle keeps a pointer into the slab of
// pgxpool.Conn values that was current when it ran. With QueryRow rare
// among many Query calls (the dataset version, the /metrics collector, a
// series lookup the cache missed), every handle pinned a different 2 KiB
// slab: up to 256 KiB per connection, the live-heap growth the soak saw
// (docs/benchmarks.md). Query's row handles are used up as fast as the
// connection slabs, so they pin next to nothing.
func (s *Store) queryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return &oneRow{ctx: ctx, pool: s.pool, sql: sql, args: args}
}

// oneRow runs its query when scanned, with pgx.Row's semantics: the first
// row's columns, pgx.ErrNoRows when there is none.
type oneRow struct {
	ctx  context.Context
	pool *pgxpool.Pool
	sql  string
	args []any
}

// Scan implements pgx.Row.
func (r *oneRow) Scan(dest ...any) error {
	rows, err := r.pool.Query(r.ctx, r.sql, r.args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}
