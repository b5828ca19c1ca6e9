// Package dataset reads sensor readings from the four input formats sensorhub
// ingests (the reference JSON document, NDJSON, CSV and InfluxDB line
// protocol) and validates each reading against what the store can hold, so
// that a loader sees only clean readings plus an exact account, with its place
// in the file, of every reading it has to reject.
//
// A [Reader] streams: memory stays flat however large the input is.
//
// # InfluxDB line protocol
//
// Line protocol is read only when asked for ([LineProtocol]); detection never
// picks it, because its lines hold no mark that tells them from CSV rows, and
// a wrong guess would reject a whole file. Each line,
//
//	measurement[,tag_key=tag_value...] field_key=field_value[,field_key=field_value...] [timestamp]
//
// becomes one reading per field, in the order of the line's fields:
//
//   - device_id is the InfluxDB series key: the measurement, then the tags
//     sorted by key (in byte order) as ,key=value, each escaped as line
//     protocol escapes it (a comma or space in the measurement, a comma,
//     equals sign or space in a tag key or value takes a backslash). It is
//     exact and reversible: a series has the same id whatever the order of
//     its tags in the input, and the id parses back into its measurement and
//     tags. Without tags it is the measurement alone. So
//     cpu,region=eu\ west,host=a usage=1 yields device_id
//     cpu,host=a,region=eu\ west.
//   - parameter is the field key, unescaped.
//   - Float, integer (12i) and unsigned integer (12u) fields are numeric. An
//     integer beyond ±2^53 that float64 cannot hold exactly is rejected, never
//     rounded. String fields are text, in which \" and \\ stand for " and
//     \ (and, as the decoder reads them, \n, \r and \t for a newline, a
//     carriage return and a tab); boolean fields are the text "true" or
//     "false".
//   - The timestamp is an integer count of Options.Precision (nanoseconds by
//     default, as InfluxDB's precision parameter) since the Unix epoch, in
//     UTC (offset 0). A line without one takes Options.Now, read once when
//     the Reader is made so that every such line of the input gets the same
//     instant, truncated to the precision, as InfluxDB does, and to whole
//     microseconds, the store's precision.
//
// The readings are then validated as in every other format, by the same
// rules: a timestamp with sub-microsecond digits (1709814127315194001 in
// nanoseconds) or outside the years 0001..9999 is rejected, as are ids and
// texts beyond their bounds and numbers beyond ±1e100. Blank lines and
// comment lines (whose first character other than a space or tab is #) are
// skipped. A raw newline always ends a line, even inside quotes: line
// protocol has none in values. A line that does not parse, whose series key
// is invalid (such as a tag key given twice) or whose timestamp is rejected
// costs one *RecordError for the whole line; a field whose key or value is
// rejected (or whose key appeared before in the line) costs one for that
// field alone, and the other fields of the line are read. Every reading and
// reject of a line has the position of the line's start, and Raw is the line.
package dataset

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// ValueType says how a reading's value is stored: every series (device,
// parameter) holds one type, and the store keeps numbers and text apart.
type ValueType uint8

// The value types. The zero ValueType is not a valid type, so a Reading that
// was never filled in cannot pass for a numeric one.
const (
	Numeric ValueType = iota + 1
	Text
)

// String returns the name used in the input formats: "numeric" or "text".
func (t ValueType) String() string {
	switch t {
	case Numeric:
		return "numeric"
	case Text:
		return "text"
	}
	return "ValueType(" + strconv.Itoa(int(t)) + ")"
}

// ParseValueType parses the "type" field of the input formats. It is exact
// ("numeric" or "text"), as the reference dataset is.
func ParseValueType(s string) (ValueType, error) {
	switch s {
	case "numeric":
		return Numeric, nil
	case "text":
		return Text, nil
	}
	return 0, fmt.Errorf(`value type %q: want "numeric" or "text"`, s)
}

// Format is an input format. The zero Format, Auto, asks [NewReader] to detect
// the format from the content, so that callers need no flag for the usual case.
type Format uint8

// The input formats.
const (
	Auto      Format = iota // detect from the content
	Reference               // one JSON object keyed by device id, as in the sensor-target dataset
	NDJSON                  // one JSON reading object per line
	CSV                     // a header row, then one reading per row
	// LineProtocol is InfluxDB line protocol, one point per line and one
	// reading per field (see the package documentation). Detection never
	// picks it: it is read only when asked for.
	LineProtocol
)

var formatNames = [...]string{Auto: "auto", Reference: "reference", NDJSON: "ndjson", CSV: "csv", LineProtocol: "line"}

// String returns the name ParseFormat accepts.
func (f Format) String() string {
	if int(f) < len(formatNames) {
		return formatNames[f]
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// ParseFormat parses a format name as given to a --format flag: "auto",
// "reference" (or "json"), "ndjson" (or "jsonl"), "csv" and "line" (or
// "lineprotocol", "line-protocol", "influx"), in any case.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return Auto, nil
	case "reference", "json":
		return Reference, nil
	case "ndjson", "jsonl":
		return NDJSON, nil
	case "csv":
		return CSV, nil
	case "line", "lineprotocol", "line-protocol", "influx":
		return LineProtocol, nil
	}
	return Auto, fmt.Errorf("format %q: want auto, reference, ndjson, csv or line", s)
}

// MarshalText lets a Format be used with flag.TextVar and in text encodings.
func (f Format) MarshalText() ([]byte, error) {
	if int(f) >= len(formatNames) {
		return nil, fmt.Errorf("invalid format %d", uint8(f))
	}
	return []byte(formatNames[f]), nil
}

// UnmarshalText lets a Format be set with flag.TextVar; it accepts what
// ParseFormat accepts.
func (f *Format) UnmarshalText(b []byte) error {
	v, err := ParseFormat(string(b))
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// Precision is the unit of line-protocol timestamps, named as InfluxDB's
// precision parameter names it. The zero Precision, Nanosecond, is InfluxDB's
// default, so that line protocol written for InfluxDB reads the same here.
type Precision uint8

// The precisions of line-protocol timestamps.
const (
	Nanosecond  Precision = iota // "ns"
	Microsecond                  // "us"
	Millisecond                  // "ms"
	Second                       // "s"
)

var precisionNames = [...]string{Nanosecond: "ns", Microsecond: "us", Millisecond: "ms", Second: "s"}

// String returns the name ParsePrecision accepts.
func (p Precision) String() string {
	if int(p) < len(precisionNames) {
		return precisionNames[p]
	}
	return "Precision(" + strconv.Itoa(int(p)) + ")"
}

// ParsePrecision parses a precision as InfluxDB's precision parameter gives
// it: "ns", "us", "ms" or "s", exactly. "" is the default, "ns", as an
// omitted parameter is for InfluxDB.
func ParsePrecision(s string) (Precision, error) {
	switch s {
	case "", "ns":
		return Nanosecond, nil
	case "us":
		return Microsecond, nil
	case "ms":
		return Millisecond, nil
	case "s":
		return Second, nil
	}
	return Nanosecond, fmt.Errorf("precision %q: want ns, us, ms or s", s)
}

// Duration returns the length of one unit: time.Nanosecond for Nanosecond.
func (p Precision) Duration() time.Duration {
	switch p {
	case Microsecond:
		return time.Microsecond
	case Millisecond:
		return time.Millisecond
	case Second:
		return time.Second
	}
	return time.Nanosecond
}

// MarshalText lets a Precision be used with flag.TextVar and in text
// encodings.
func (p Precision) MarshalText() ([]byte, error) {
	if int(p) >= len(precisionNames) {
		return nil, fmt.Errorf("invalid precision %d", uint8(p))
	}
	return []byte(precisionNames[p]), nil
}

// UnmarshalText lets a Precision be set with flag.TextVar; it accepts what
// ParsePrecision accepts.
func (p *Precision) UnmarshalText(b []byte) error {
	v, err := ParsePrecision(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Reading is one validated sensor reading. Exactly one of Num and Text is
// meaningful, as Type says.
type Reading struct {
	DeviceID  string
	Parameter string
	// Time is the reading's instant in a fixed zone at the offset the input
	// gave, so the original offset survives a round trip through the store.
	// It has microsecond precision at most.
	Time time.Time
	Type ValueType
	Num  float64 // the value when Type is Numeric: finite
	Text string  // the value when Type is Text: valid UTF-8 without NUL
}

// OffsetMinutes returns the reading's original UTC offset in minutes, which
// the store keeps next to the instant because timestamptz drops it.
func (r Reading) OffsetMinutes() int16 {
	_, off := r.Time.Zone()
	return int16(off / 60)
}

// Position is where a reading or an error sits in the input, precise enough
// for a person to open the file there.
type Position struct {
	File   string // Options.File; "" when reading an unnamed stream
	Line   int64  // 1-based line of the record start; 0 when unknown
	Offset int64  // byte offset of the record start in the (decompressed) stream
	// Path is the JSON pointer, such as /device.foo/17, into the reference
	// document; "" otherwise. A pointer longer than 200 bytes or deeper
	// than 16 segments is cut to its head and tail with a note of what lies
	// between, as in /dev/0/0/0/0/0/0/0/0/0/0/0/… (9,985 more
	// segments)/0/0/0: it is for a person to read, and Line and Offset
	// still locate the place exactly.
	Path string
}

// String renders the position as "data.json:1234 /device.foo/17 (byte 56789)",
// leaving out what is unknown.
func (p Position) String() string {
	b := make([]byte, 0, len(p.File)+len(p.Path)+40)
	if p.File != "" {
		b = append(b, p.File...)
	} else {
		b = append(b, "input"...)
	}
	if p.Line > 0 {
		b = strconv.AppendInt(append(b, ':'), p.Line, 10)
	}
	if p.Path != "" {
		b = append(append(b, ' '), p.Path...)
	}
	b = strconv.AppendInt(append(b, " (byte "...), p.Offset, 10)
	b = append(b, ')')
	return string(b)
}

// RecordError rejects one reading; the stream goes on after it, so a loader
// can count and report rejects without losing the rest of the file.
type RecordError struct {
	Pos Position
	// Field names the offending field ("device_id", "parameter", "timestamp",
	// "value", "type"); it is "" when the record as a whole is malformed.
	Field  string
	Reason string
	// Raw is the record as it appeared in the input: the JSON object, the
	// NDJSON line, the CSV row or the line-protocol line, without its line
	// ending (every reading of a line-protocol line shares its line); nil when the
	// rejected value is no record (a device key holding no array). Of a
	// record longer than MaxRawBytes it holds the head, cut on a UTF-8 rune
	// boundary, so it is always a prefix of the record in the input.
	Raw []byte
	// RawCut is how many bytes of the record Raw leaves out; 0 when Raw is
	// the whole record.
	RawCut int64
}

func (e *RecordError) Error() string {
	if e.Field == "" {
		return e.Pos.String() + ": " + e.Reason
	}
	return e.Pos.String() + ": " + e.Field + ": " + e.Reason
}

// FatalError ends the reading of a file: the document is malformed past
// recovery, the input failed, or it exceeded a bound. Pos says where; Err is
// the cause (a *jsontext.SyntacticError, an I/O error, ErrDecompressedTooLarge, ...).
type FatalError struct {
	Pos Position
	Err error
}

func (e *FatalError) Error() string {
	msg := e.Err.Error()
	// The syntactic error repeats the offset and pointer that Pos already gives.
	var se *jsontext.SyntacticError
	if errors.As(e.Err, &se) && se.Err != nil {
		msg = "malformed JSON: " + se.Err.Error()
	}
	// The causes built here quote little of the input, but the message of
	// a library might quote much: bound it whatever the cause.
	return e.Pos.String() + ": " + cutText(msg, maxReasonBytes)
}

func (e *FatalError) Unwrap() error { return e.Err }

// ErrDecompressedTooLarge reports a gzip stream that inflates beyond
// Options.MaxDecompressedBytes, the guard against decompression bombs.
var ErrDecompressedTooLarge = errors.New("decompressed input exceeds the bound")

// Defaults for the zero fields of Options.
const (
	DefaultMaxDecompressedBytes = 64 << 30
	DefaultMaxIDLen             = 256
	DefaultMaxTextLen           = 65536
)

// Options configure a Reader. The zero Options detect the format, reject
// timestamps without an offset and apply the default bounds.
type Options struct {
	// Format forces the input format; Auto detects it from the content.
	Format Format
	// File names the input in positions and errors.
	File string
	// NaiveZone, when set, is the zone of timestamps written without an
	// offset; such a reading keeps the zone's offset at its instant. When nil
	// they are rejected: guessing a zone would silently shift readings by
	// hours.
	NaiveZone *time.Location
	// MaxDecompressedBytes bounds the inflated size of gzip input
	// (default 64 GiB); exceeding it is a fatal error.
	MaxDecompressedBytes int64
	// MaxIDLen bounds device ids and parameters in bytes (default 256).
	MaxIDLen int
	// MaxTextLen bounds text values in bytes (default 65536).
	MaxTextLen int
	// Precision is the unit of line-protocol timestamps (default
	// nanoseconds); the other formats ignore it.
	Precision Precision
	// Now gives the instant of line-protocol lines without a timestamp; nil
	// is time.Now. A line-protocol Reader calls it once, in NewReader, so
	// that all such lines of one input share one instant, as the lines of
	// one write do in InfluxDB; a fixed Now makes the readings reproducible.
	Now func() time.Time
}

func (o Options) withDefaults() (Options, error) {
	if o.MaxDecompressedBytes == 0 {
		o.MaxDecompressedBytes = DefaultMaxDecompressedBytes
	}
	if o.MaxIDLen == 0 {
		o.MaxIDLen = DefaultMaxIDLen
	}
	if o.MaxTextLen == 0 {
		o.MaxTextLen = DefaultMaxTextLen
	}
	switch {
	case o.MaxDecompressedBytes < 0:
		return o, fmt.Errorf("MaxDecompressedBytes %d is negative", o.MaxDecompressedBytes)
	case o.MaxIDLen < 0:
		return o, fmt.Errorf("MaxIDLen %d is negative", o.MaxIDLen)
	case o.MaxTextLen < 0:
		return o, fmt.Errorf("MaxTextLen %d is negative", o.MaxTextLen)
	case o.Format > LineProtocol:
		return o, fmt.Errorf("unknown format %d", uint8(o.Format))
	case o.Precision > Second:
		return o, fmt.Errorf("unknown precision %d", uint8(o.Precision))
	}
	return o, nil
}

// maxRecordBytes bounds one record (an NDJSON or line-protocol line, the raw
// bytes kept for a CSV row): room for the largest valid reading with every byte escaped, plus
// slack for unknown members.
func (o Options) maxRecordBytes() int {
	return max(1<<20, 6*(2*o.MaxIDLen+o.MaxTextLen)+4096)
}
