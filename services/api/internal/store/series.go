package store

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sensorhub/sensorhub/db/scope"
)

// Device summarises the in-scope series of one device.
type Device struct {
	ID           string
	SeriesCount  int
	ReadingCount int64
	// FirstTime and LastTime are nil while the device has no readings.
	FirstTime, LastTime *time.Time
}

// devicesSQL reads the per-device totals the catalog's triggers keep
// (migration 00015), for scopes that select whole devices: a device's
// totals are then exactly those of its in-scope series.
const devicesSQL = `
SELECT d.device_id, d.series_count, d.reading_count, d.first_time, d.last_time
FROM sensorhub.device_summary d
WHERE ($1::boolean OR d.device_id = ANY($2::text[]))
  AND d.series_count > 0
ORDER BY d.device_id`

// devicesInScopeSQL aggregates the catalog like the summary does, but over
// the in-scope series only: a scope narrowed to parameter prefixes must not
// leak the counts of the device's other series. This one grows with the
// catalog; only such scopes pay for it.
const devicesInScopeSQL = `
SELECT s.device_id, count(*)::integer, coalesce(sum(s.reading_count), 0)::bigint, min(s.first_time), max(s.last_time)
FROM sensorhub.series s
WHERE ` + scopeFilter + `
GROUP BY s.device_id
ORDER BY s.device_id`

// Devices lists the devices that have in-scope series, by id.
func (s *Store) Devices(ctx context.Context, sc scope.Scope) ([]Device, error) {
	defer s.observe("devices")()
	anyDevice, devices, anyParam, _ := sc.Args()
	sql, args := devicesSQL, []any{anyDevice, devices}
	if !anyParam {
		sql, args = devicesInScopeSQL, scopeArgs(sc)
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", translate(ctx, err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Device, error) {
		var d Device
		err := row.Scan(&d.ID, &d.SeriesCount, &d.ReadingCount, &d.FirstTime, &d.LastTime)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", translate(ctx, err))
	}
	return out, nil
}

// SeriesFilter selects series; zero fields do not filter.
type SeriesFilter struct {
	DeviceID string
	// Parameters are exact parameter names.
	Parameters []string
	// Prefix is a parameter prefix ("tenantA." matches "tenantA.x.y").
	Prefix string
	// Glob matches the whole dotted parameter name: * is any run of characters
	// other than '.', ** is any run of characters; everything else is literal.
	Glob string
	// Type is TypeNumeric or TypeText.
	Type string
}

// seriesFilter follows scopeFilter: $5-$9 are SeriesFilter.args.
const seriesFilter = `
  AND ($5::text IS NULL OR s.device_id = $5)
  AND ($6::text[] IS NULL OR s.parameter = ANY($6))
  AND ($7::text IS NULL OR starts_with(s.parameter, $7))
  AND ($8::text IS NULL OR s.parameter ~ $8)
  AND ($9::text IS NULL OR s.value_type = $9)`

func (f SeriesFilter) args() []any {
	var params any
	if f.Parameters != nil {
		params = f.Parameters
	}
	var glob any
	if f.Glob != "" {
		glob = GlobRegexp(f.Glob)
	}
	return []any{nullable(f.DeviceID), params, nullable(f.Prefix), glob, nullable(f.Type)}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// GlobRegexp translates a parameter glob into an anchored PostgreSQL regular
// expression: ** becomes .*, * becomes [^.]*, and every other ASCII
// punctuation or control character is escaped, so a glob can only ever match
// literally. The result is passed as a bind parameter, never spliced into SQL.
func GlobRegexp(glob string) string {
	var b strings.Builder
	b.WriteByte('^')
	for i := 0; i < len(glob); {
		switch {
		case strings.HasPrefix(glob[i:], "**"):
			b.WriteString(".*")
			i += 2
		case glob[i] == '*':
			b.WriteString("[^.]*")
			i++
		default:
			r, size := utf8.DecodeRuneInString(glob[i:])
			if r < utf8.RuneSelf && !isAlnum(byte(r)) {
				// In PostgreSQL's AREs a backslash before a non-alphanumeric
				// character makes it literal.
				b.WriteByte('\\')
			}
			b.WriteString(glob[i : i+size])
			i += size
		}
	}
	b.WriteByte('$')
	return b.String()
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

const seriesColumns = `s.series_id, s.device_id, s.parameter, s.value_type, s.first_time, s.last_time, s.reading_count`

func scanSeries(row pgx.Row, x *Series, more ...any) error {
	return row.Scan(append([]any{&x.ID, &x.DeviceID, &x.Parameter, &x.Type, &x.FirstTime, &x.LastTime, &x.Count}, more...)...)
}

const findSeriesSQL = `
SELECT ` + seriesColumns + `
FROM sensorhub.series s
WHERE ` + scopeFilter + `
  AND s.device_id = $5 AND s.parameter = $6`

// FindSeries returns the in-scope series (deviceID, parameter), or ErrNotFound.
func (s *Store) FindSeries(ctx context.Context, sc scope.Scope, deviceID, parameter string) (Series, error) {
	defer s.observe("find_series")()
	var x Series
	if err := scanSeries(s.queryRow(ctx, findSeriesSQL, scopeArgs(sc, deviceID, parameter)...), &x); err != nil {
		return Series{}, fmt.Errorf("find series %s/%s: %w", deviceID, parameter, translate(ctx, err))
	}
	return x, nil
}

const listSeriesSQL = `
SELECT ` + seriesColumns + `
FROM sensorhub.series s
WHERE ` + scopeFilter + seriesFilter + `
ORDER BY s.device_id, s.parameter
LIMIT $10`

// ListSeries returns up to limit in-scope series matching f, by device and
// parameter.
func (s *Store) ListSeries(ctx context.Context, sc scope.Scope, f SeriesFilter, limit int) ([]Series, error) {
	defer s.observe("list_series")()
	out, err := s.listSeries(ctx, listSeriesSQL, sc, f, limit)
	if err != nil {
		return nil, fmt.Errorf("list series: %w", err)
	}
	return out, nil
}

// SeriesLatest is a series with its newest reading, if it has any.
type SeriesLatest struct {
	Series
	Latest *Reading
}

// listSeriesWithReadingsSQL is listSeriesSQL without the series that have
// no readings (the catalog sets their times with the first).
const listSeriesWithReadingsSQL = `
SELECT ` + seriesColumns + `
FROM sensorhub.series s
WHERE ` + scopeFilter + seriesFilter + `
  AND s.last_time IS NOT NULL
ORDER BY s.device_id, s.parameter
LIMIT $10`

// latestByIDsSQL returns the newest reading at or after $2 of each series
// in $1, labelled with its position there: one backward step on the
// readings primary key (series_id, time) per series. The lower bound is a
// bind parameter, the earliest of the series' catalog last_time, so that
// PostgreSQL prunes older partitions (TimescaleDB: chunks) when the
// executor starts. Without it, as a LATERAL under the catalog query, every
// execution opened and locked every partition, a cost that grew with the
// time span stored (bench/scale.sh: /v1/latest of a device 1.56x slower at
// 100M readings than at 1M on plain PostgreSQL, 2.25x on TimescaleDB).
const latestByIDsSQL = `
SELECT u.ord::int4, l.time, l.utc_offset_min, l.value_num, l.value_text
FROM unnest($1::int4[]) WITH ORDINALITY AS u(series_id, ord)
JOIN LATERAL (
    SELECT r.time, r.utc_offset_min, r.value_num, r.value_text
    FROM sensorhub.readings r
    WHERE r.series_id = u.series_id AND r.time >= $2::timestamptz
    ORDER BY r.time DESC
    LIMIT 1) l ON true`

// ListSeriesLatest is ListSeries with each series' newest reading.
func (s *Store) ListSeriesLatest(ctx context.Context, sc scope.Scope, f SeriesFilter, limit int) ([]SeriesLatest, error) {
	defer s.observe("list_series_latest")()
	list, err := s.listSeries(ctx, listSeriesSQL, sc, f, limit)
	if err != nil {
		return nil, fmt.Errorf("list series: %w", err)
	}
	return s.withLatest(ctx, list, false)
}

// Latest returns the newest reading of up to limit in-scope series matching
// f; series without readings are left out.
func (s *Store) Latest(ctx context.Context, sc scope.Scope, f SeriesFilter, limit int) ([]SeriesLatest, error) {
	defer s.observe("latest")()
	list, err := s.listSeries(ctx, listSeriesWithReadingsSQL, sc, f, limit)
	if err != nil {
		return nil, fmt.Errorf("latest readings: %w", err)
	}
	return s.withLatest(ctx, list, true)
}

func (s *Store) listSeries(ctx context.Context, sql string, sc scope.Scope, f SeriesFilter, limit int) ([]Series, error) {
	rows, err := s.pool.Query(ctx, sql, scopeArgs(sc, append(f.args(), limit)...)...)
	if err != nil {
		return nil, translate(ctx, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Series, error) {
		var x Series
		err := scanSeries(row, &x)
		return x, err
	})
	if err != nil {
		return nil, translate(ctx, err)
	}
	return out, nil
}

// withLatest looks up the newest reading of each listed series that has
// readings; onlyFound drops the series where none was found.
func (s *Store) withLatest(ctx context.Context, list []Series, onlyFound bool) ([]SeriesLatest, error) {
	out := make([]SeriesLatest, len(list))
	var ids []int32
	var at []int // index in out of ids[k]
	var lo time.Time
	for i, x := range list {
		out[i].Series = x
		if x.LastTime == nil {
			continue
		}
		if len(ids) == 0 || x.LastTime.Before(lo) {
			lo = *x.LastTime
		}
		ids, at = append(ids, x.ID), append(at, i)
	}
	if len(ids) > 0 {
		missed, err := s.latestByIDs(ctx, ids, at, pgtype.Timestamptz{Time: lo, Valid: true}, out)
		if err != nil {
			return nil, err
		}
		// The catalog's last_time names a reading that is gone (deleted
		// outside sensorhub, or by retention): look again without the bound.
		if len(missed) > 0 {
			ids, at = ids[:0], at[:0]
			for _, i := range missed {
				ids, at = append(ids, out[i].ID), append(at, i)
			}
			if _, err := s.latestByIDs(ctx, ids, at, pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}, out); err != nil {
				return nil, err
			}
		}
	}
	if onlyFound {
		kept := out[:0]
		for _, x := range out {
			if x.Latest != nil {
				kept = append(kept, x)
			}
		}
		out = kept
	}
	return out, nil
}

// latestByIDs sets out[at[k]].Latest to the newest reading of series ids[k]
// at or after lo, and returns the
// indexes in out of the series it found none for.
func (s *Store) latestByIDs(ctx context.Context, ids []int32, at []int, lo pgtype.Timestamptz, out []SeriesLatest) ([]int, error) {
	rows, err := s.pool.Query(ctx, latestByIDsSQL, ids, lo)
	if err != nil {
		return nil, fmt.Errorf("latest readings: %w", translate(ctx, err))
	}
	defer rows.Close()
	found := make([]bool, len(ids))
	var (
		ord  int32
		t    pgtype.Timestamptz
		off  pgtype.Int2
		num  pgtype.Float8
		text pgtype.Text
	)
	for rows.Next() {
		if err := rows.Scan(&ord, &t, &off, &num, &text); err != nil {
			return nil, fmt.Errorf("latest readings: %w", translate(ctx, err))
		}
		k := int(ord) - 1
		if k < 0 || k >= len(ids) || !t.Valid {
			return nil, fmt.Errorf("latest readings: row for position %d of %d", ord, len(ids))
		}
		found[k] = true
		out[at[k]].Latest = &Reading{Time: t.Time, OffsetMin: off.Int16, Num: num.Float64, Text: text.String, IsText: text.Valid}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("latest readings: %w", translate(ctx, err))
	}
	var missed []int
	for k, ok := range found {
		if !ok {
			missed = append(missed, at[k])
		}
	}
	return missed, nil
}
