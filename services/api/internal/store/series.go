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

// devicesSQL aggregates the catalog like the sensorhub.devices view does, but
// over the in-scope series only: a scope narrowed to parameter prefixes must
// not leak the counts of the device's other series.
const devicesSQL = `
SELECT s.device_id, count(*)::integer, coalesce(sum(s.reading_count), 0)::bigint, min(s.first_time), max(s.last_time)
FROM sensorhub.series s
WHERE ` + scopeFilter + `
GROUP BY s.device_id
ORDER BY s.device_id`

// Devices lists the devices that have in-scope series, by id.
func (s *Store) Devices(ctx context.Context, sc scope.Scope) ([]Device, error) {
	defer s.observe("devices")()
	rows, err := s.pool.Query(ctx, devicesSQL, scopeArgs(sc)...)
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
	rows, err := s.pool.Query(ctx, listSeriesSQL, scopeArgs(sc, append(f.args(), limit)...)...)
	if err != nil {
		return nil, fmt.Errorf("list series: %w", translate(ctx, err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Series, error) {
		var x Series
		err := scanSeries(row, &x)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("list series: %w", translate(ctx, err))
	}
	return out, nil
}

// SeriesLatest is a series with its newest reading, if it has any.
type SeriesLatest struct {
	Series
	Latest *Reading
}

// The newest reading of each series: one backward step on the readings
// primary key (series_id, time) per series.
const latestLateral = `
LATERAL (
    SELECT r.time, r.utc_offset_min, r.value_num, r.value_text
    FROM sensorhub.readings r
    WHERE r.series_id = s.series_id
    ORDER BY r.time DESC
    LIMIT 1) l ON true`

const listSeriesLatestSQL = `
SELECT ` + seriesColumns + `, l.time, l.utc_offset_min, l.value_num, l.value_text
FROM sensorhub.series s
LEFT JOIN ` + latestLateral + `
WHERE ` + scopeFilter + seriesFilter + `
ORDER BY s.device_id, s.parameter
LIMIT $10`

const latestSQL = `
SELECT ` + seriesColumns + `, l.time, l.utc_offset_min, l.value_num, l.value_text
FROM sensorhub.series s
JOIN ` + latestLateral + `
WHERE ` + scopeFilter + seriesFilter + `
ORDER BY s.device_id, s.parameter
LIMIT $10`

// ListSeriesLatest is ListSeries with each series' newest reading.
func (s *Store) ListSeriesLatest(ctx context.Context, sc scope.Scope, f SeriesFilter, limit int) ([]SeriesLatest, error) {
	defer s.observe("list_series_latest")()
	return s.seriesLatest(ctx, listSeriesLatestSQL, sc, f, limit)
}

// Latest returns the newest reading of up to limit in-scope series matching
// f; series without readings are left out.
func (s *Store) Latest(ctx context.Context, sc scope.Scope, f SeriesFilter, limit int) ([]SeriesLatest, error) {
	defer s.observe("latest")()
	return s.seriesLatest(ctx, latestSQL, sc, f, limit)
}

func (s *Store) seriesLatest(ctx context.Context, sql string, sc scope.Scope, f SeriesFilter, limit int) ([]SeriesLatest, error) {
	rows, err := s.pool.Query(ctx, sql, scopeArgs(sc, append(f.args(), limit)...)...)
	if err != nil {
		return nil, fmt.Errorf("latest readings: %w", translate(ctx, err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (SeriesLatest, error) {
		var (
			x    SeriesLatest
			t    pgtype.Timestamptz
			off  pgtype.Int2
			num  pgtype.Float8
			text pgtype.Text
		)
		if err := scanSeries(row, &x.Series, &t, &off, &num, &text); err != nil {
			return x, err
		}
		if t.Valid {
			x.Latest = &Reading{Time: t.Time, OffsetMin: off.Int16, Num: num.Float64, Text: text.String, IsText: text.Valid}
		}
		return x, nil
	})
	if err != nil {
		return nil, fmt.Errorf("latest readings: %w", translate(ctx, err))
	}
	return out, nil
}
