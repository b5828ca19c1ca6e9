// Package dataset reads sensor readings from the three input formats sensorhub
// ingests (the reference JSON document, NDJSON and CSV) and validates each
// reading against what the store can hold, so that a loader sees only clean
// readings plus an exact account, with its place in the file, of every reading
// it has to reject.
//
// A [Reader] streams: memory stays flat however large the input is.
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
)

var formatNames = [...]string{Auto: "auto", Reference: "reference", NDJSON: "ndjson", CSV: "csv"}

// String returns the name ParseFormat accepts.
func (f Format) String() string {
	if int(f) < len(formatNames) {
		return formatNames[f]
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// ParseFormat parses a format name as given to a --format flag: "auto",
// "reference" (or "json"), "ndjson" (or "jsonl") and "csv", in any case.
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
	}
	return Auto, fmt.Errorf("format %q: want auto, reference, ndjson or csv", s)
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
	// NDJSON line or the CSV row, without its line ending; nil when the
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
	case o.Format > CSV:
		return o, fmt.Errorf("unknown format %d", uint8(o.Format))
	}
	return o, nil
}

// maxRecordBytes bounds one record (an NDJSON line, the raw bytes kept for a
// CSV row): room for the largest valid reading with every byte escaped, plus
// slack for unknown members.
func (o Options) maxRecordBytes() int {
	return max(1<<20, 6*(2*o.MaxIDLen+o.MaxTextLen)+4096)
}
