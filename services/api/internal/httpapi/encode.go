package httpapi

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sensorhub/sensorhub/services/api/internal/store"
)

// Hand-written encoders for the hot paths (process_request and exports),
// which write tens of thousands of readings per response: appending to one
// buffer costs no reflection and no allocation per reading.

// appendTime appends the instant t as seen at a UTC offset of offsetMin
// minutes, in RFC 3339 with exactly six fractional digits (PostgreSQL's
// precision, and the reference dataset's form: every one of its 20,000
// timestamps has six, so they come back byte for byte; trimming trailing
// zeros would alter the 2,142 that end in 0). Offset zero is written "Z".
func appendTime(b []byte, t time.Time, offsetMin int16) []byte {
	var ta timeAppender
	return ta.append(b, t, offsetMin)
}

// timeAppender is appendTime for the readings of a response, which mostly
// fall on the same local day as the one before: it keeps the last day's
// date, so that per reading only the time of day is computed. Hand-rolled
// because this runs for every reading of a response, and AppendFormat's
// layout interpretation, then time.Date's calendar arithmetic, dominated the
// profile (docs/benchmarks.md, "Cheaper misses"). The zero value is ready.
type timeAppender struct {
	day  int64 // days since 1970-01-01 of date, when valid
	date [11]byte
	ok   bool
}

const secondsPerDay = 86400

func (ta *timeAppender) append(b []byte, t time.Time, offsetMin int16) []byte {
	sec := t.Unix() + int64(offsetMin)*60
	day := sec / secondsPerDay
	if sec%secondsPerDay < 0 {
		day--
	}
	if !ta.ok || day != ta.day {
		year, month, dom := time.Unix(day*secondsPerDay, 0).UTC().Date()
		if year < 0 || year > 9999 {
			ta.ok = false
			local := t.UTC().Add(time.Duration(offsetMin) * time.Minute)
			return appendOffset(local.AppendFormat(b, "2006-01-02T15:04:05.000000"), offsetMin)
		}
		ta.date = [11]byte{
			byte('0' + year/1000), byte('0' + year/100%10), byte('0' + year/10%10), byte('0' + year%10), '-',
			byte('0' + int(month)/10), byte('0' + int(month)%10), '-',
			byte('0' + dom/10), byte('0' + dom%10), 'T'}
		ta.day, ta.ok = day, true
	}
	sod := int(sec - day*secondsPerDay)
	hour, minute, s := sod/3600, sod/60%60, sod%60
	us := t.Nanosecond() / 1000
	b = append(b, ta.date[:]...)
	b = append(b,
		byte('0'+hour/10), byte('0'+hour%10), ':',
		byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+s/10), byte('0'+s%10), '.',
		byte('0'+us/100000), byte('0'+us/10000%10), byte('0'+us/1000%10),
		byte('0'+us/100%10), byte('0'+us/10%10), byte('0'+us%10))
	return appendOffset(b, offsetMin)
}

// appendOffset appends a UTC offset of offsetMin minutes: "Z" or ±hh:mm.
func appendOffset(b []byte, offsetMin int16) []byte {
	if offsetMin == 0 {
		return append(b, 'Z')
	}
	sign := byte('+')
	m := int(offsetMin)
	if m < 0 {
		sign, m = '-', -m
	}
	return append(b, sign, byte('0'+m/600), byte('0'+m/60%10), ':', byte('0'+m%60/10), byte('0'+m%10))
}

// appendFloat appends f exactly as encoding/json does: the shortest decimal
// that parses back to the same float64, never cut to fewer digits.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9, as encoding/json does.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Like huma's encoder it does not
// escape <, > and &; invalid UTF-8 becomes U+FFFD, and U+2028/U+2029 are
// escaped for JavaScript's sake.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendValue appends a reading's value: a JSON number for numeric readings,
// a string for text ones.
func appendValue(b []byte, r *store.Reading) []byte {
	if r.IsText {
		return appendString(b, r.Text)
	}
	return appendFloat(b, r.Num)
}

// Timestamp is an instant rendered at a chosen UTC offset (see appendTime).
type Timestamp struct {
	Time      time.Time
	OffsetMin int16
}

// utcTime renders t in UTC.
func utcTime(t time.Time) Timestamp { return Timestamp{Time: t} }

// utcTimePtr is utcTime for optional catalog times.
func utcTimePtr(t *time.Time) *Timestamp {
	if t == nil {
		return nil
	}
	ts := utcTime(*t)
	return &ts
}

// MarshalJSON implements json.Marshaler.
func (ts Timestamp) MarshalJSON() ([]byte, error) {
	return appendTimestamp(make([]byte, 0, 36), ts), nil
}

// appendTimestamp appends ts as a JSON string.
func appendTimestamp(b []byte, ts Timestamp) []byte {
	b = append(b, '"')
	b = appendTime(b, ts.Time, ts.OffsetMin)
	return append(b, '"')
}

// Response bodies are built in pooled buffers; buffers that grew beyond
// maxPooledBuffer are left to the garbage collector.
const maxPooledBuffer = 1 << 20

var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func getBuffer() *[]byte { return buffers.Get().(*[]byte) }

func putBuffer(b *[]byte) {
	if cap(*b) <= maxPooledBuffer {
		buffers.Put(b)
	}
}

// writeJSON answers 200 with body, a whole JSON document.
func writeJSON(hctx huma.Context, body []byte) {
	hctx.SetHeader("Content-Type", mediaJSON)
	hctx.SetHeader("Content-Length", strconv.Itoa(len(body)))
	hctx.SetStatus(http.StatusOK)
	_, _ = hctx.BodyWriter().Write(body) // a write error means the client left
}

// UnmarshalJSON implements json.Unmarshaler, keeping the offset.
func (ts *Timestamp) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	_, off := t.Zone()
	*ts = Timestamp{Time: t.UTC(), OffsetMin: int16(off / 60)}
	return nil
}

// Schema implements huma.SchemaProvider.
func (Timestamp) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: huma.TypeString, Format: "date-time", Examples: []any{"2024-03-07T12:22:07.315194+02:00"}}
}

// Value is a reading's value: a number or a string, as the series' type says.
type Value struct{ r store.Reading }

// MarshalJSON implements json.Marshaler.
func (v Value) MarshalJSON() ([]byte, error) { return appendValue(nil, &v.r), nil }

// Schema implements huma.SchemaProvider.
func (Value) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{
		Description: "A number for numeric series (full float64 precision), a string for text series.",
		OneOf:       []*huma.Schema{{Type: huma.TypeNumber}, {Type: huma.TypeString}},
		Examples:    []any{801.4240531704808},
	}
}

// readingTime renders a reading's time at its original offset, or in UTC.
func readingTime(r *store.Reading, utc bool) Timestamp {
	if utc {
		return Timestamp{Time: r.Time}
	}
	return Timestamp{Time: r.Time, OffsetMin: r.OffsetMin}
}
