package dataset

import (
	"bufio"
	"bytes"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// lineProtocolParser reads InfluxDB line protocol as the package
// documentation maps it: one point per line, one reading per field.
//
// The library decodes each line on its own, handed over by the bounded line
// reader that NDJSON uses, rather than the whole stream: its streaming
// decoder grows its buffer without limit for a long line and keeps no byte
// offsets, while a line at a time keeps memory flat, makes every position
// exact and lets no broken line touch the next one.
type lineProtocolParser struct {
	rd    *Reader
	lines lineReader
	prec  Precision
	// now is the instant of lines without a timestamp, taken once for the
	// whole input; nowErr says why it is no valid timestamp, nil when it is.
	now    time.Time
	nowErr *fieldError

	// Scratch reused from line to line.
	names  []byte               // the unescaped measurement, tag keys and tag values
	tags   []lpTag              // the tags, in names
	series lineprotocol.Encoder // escapes the series key
	seen   map[string]struct{}  // the field keys of the line so far
	fields []lpField            // the fields of the current line

	// The current line, whose fields next hands out one per call.
	i      int // the field to hand out next
	pos    Position
	raw    []byte // the line, valid until the next line is read
	device string
	at     time.Time
}

// lpTag is a tag of the current line: its key is names[k0:k1], its value
// names[k1:v1].
type lpTag struct{ k0, k1, v1 int }

// lpField is a field of the current line: a reading but for what the line
// shares (device and time), or the reason it is rejected.
type lpField struct {
	param string
	typ   ValueType
	num   float64
	text  string
	fe    *fieldError
}

func newLineProtocolParser(rd *Reader, br *bufio.Reader) *lineProtocolParser {
	p := &lineProtocolParser{rd: rd, lines: newLineReader(rd, br), prec: rd.opts.Precision, seen: make(map[string]struct{})}
	p.series.SetLax(true) // the decoder has checked the names; the order is checked here
	now := time.Now
	if rd.opts.Now != nil {
		now = rd.opts.Now
	}
	// Truncated as InfluxDB truncates it, and to the microseconds the store
	// keeps: the clock is no input whose digits a rejection would save.
	t := now().UTC().Truncate(max(p.prec.Duration(), time.Microsecond))
	p.now, p.nowErr = rd.check.instant(t, t.Format(time.RFC3339Nano))
	if p.nowErr != nil {
		p.nowErr = reject("timestamp", "the line has none, and the time given for such lines is invalid: "+p.nowErr.reason)
	}
	return p
}

func (p *lineProtocolParser) next(r *Reading) (Position, error) {
	for p.i >= len(p.fields) {
		pos, line, err := p.lines.next()
		if err != nil {
			return pos, err
		}
		if rec := bytes.TrimLeft(line, " \t\r"); len(rec) == 0 || rec[0] == '#' {
			continue // blank, or a comment
		}
		p.i, p.pos, p.raw = 0, pos, line
		if fe := p.parseLine(line); fe != nil {
			p.fields = p.fields[:0]
			return pos, p.rd.recordError(pos, fe, line)
		}
	}
	f := &p.fields[p.i]
	p.i++
	if f.fe != nil {
		return p.pos, p.rd.recordError(p.pos, f.fe, p.raw)
	}
	r.DeviceID, r.Parameter, r.Time = p.device, f.param, p.at
	r.Type, r.Num, r.Text = f.typ, f.num, f.text
	return p.pos, nil
}

// parseLine decodes one line into p.device, p.at and p.fields. It returns
// why the line is rejected as a whole: it does not parse, or what all its
// fields share (the series key, the timestamp) is invalid.
func (p *lineProtocolParser) parseLine(line []byte) *fieldError {
	c := p.rd.check
	p.dropScratch()
	// The decoder counts columns from the measurement, so the spaces before
	// it are counted here for the byte offsets in reasons.
	lead := len(line) - len(bytes.TrimLeft(line, " "))
	dec := lineprotocol.NewDecoderWithBytes(line[lead:])
	if !dec.Next() {
		return reject("", "the line holds no point")
	}
	m, err := dec.Measurement()
	if err != nil {
		return lpSyntax("", lead, err)
	}
	p.names = append(p.names[:0], m...)
	mEnd := len(p.names)
	p.tags = p.tags[:0]
	for {
		k, v, err := dec.NextTag()
		if err != nil {
			return lpSyntax("", lead, err)
		}
		if k == nil {
			break
		}
		k0 := len(p.names)
		p.names = append(p.names, k...)
		k1 := len(p.names)
		p.names = append(p.names, v...)
		p.tags = append(p.tags, lpTag{k0, k1, len(p.names)})
	}
	p.fields = p.fields[:0]
	for {
		k, kind, v, err := dec.NextFieldBytes()
		if err != nil {
			return lpSyntax("", lead, err)
		}
		if k == nil {
			break
		}
		p.fields = append(p.fields, p.field(k, kind, v))
	}
	if len(p.fields) == 0 {
		return reject("", "the line has no field")
	}
	ts, err := dec.TimeBytes()
	if err != nil {
		return lpSyntax("timestamp", lead, err)
	}

	// The series key: the tags in byte order of their keys, escaped by the
	// library's own encoder so that the key is line protocol exactly.
	slices.SortFunc(p.tags, func(a, b lpTag) int {
		return bytes.Compare(p.names[a.k0:a.k1], p.names[b.k0:b.k1])
	})
	p.series.Reset()
	p.series.StartLineRaw(p.names[:mEnd])
	for i, t := range p.tags {
		key := p.names[t.k0:t.k1]
		if i > 0 && bytes.Equal(key, p.names[p.tags[i-1].k0:p.tags[i-1].k1]) {
			return reject("device_id", "tag key "+quote(string(key))+" appears twice, so the series key is ambiguous")
		}
		p.series.AddTagRaw(key, p.names[t.k1:t.v1])
	}
	if err := p.series.Err(); err != nil {
		return reject("device_id", "cannot form the series key: "+err.Error())
	}
	var fe *fieldError
	if p.device, fe = c.idBytes("device_id", p.series.Bytes()); fe != nil {
		return fe
	}
	if p.at, fe = p.timestamp(ts); fe != nil {
		return fe
	}
	return nil
}

// keptScratch bounds the scratch kept from one line to the next, in
// entries and bytes.
const keptScratch = 4096

// dropScratch empties the scratch for a new line, and lets go of what a
// hostile line (a megabyte of tags or fields) made it grow to, so that the
// lines after it do not keep that memory.
func (p *lineProtocolParser) dropScratch() {
	if len(p.seen) > keptScratch {
		p.seen = make(map[string]struct{})
	} else {
		clear(p.seen)
	}
	if cap(p.fields) > keptScratch {
		p.fields = nil
	}
	if cap(p.tags) > keptScratch {
		p.tags = nil
	}
	if cap(p.names) > 16*keptScratch {
		p.names = nil
	}
	if cap(p.series.Bytes()) > 16*keptScratch {
		p.series.SetBuffer(nil)
	}
}

// field converts one field of the line into its reading's parameter and
// value, or the reason that reading alone is rejected.
func (p *lineProtocolParser) field(key []byte, kind lineprotocol.ValueKind, data []byte) lpField {
	c := p.rd.check
	param, fe := c.idBytes("parameter", key)
	if fe != nil {
		return lpField{fe: inField(key, fe)}
	}
	if _, dup := p.seen[param]; dup {
		return lpField{fe: inField(key, reject("parameter", "appears twice in the line"))}
	}
	p.seen[param] = struct{}{}
	f := lpField{param: param, typ: Numeric}
	v, err := lineprotocol.NewValueFromBytes(kind, data)
	if err != nil {
		return lpField{fe: inField(key, lpValueError(kind, data, err))}
	}
	switch kind {
	case lineprotocol.Float:
		f.num, fe = checkNumber(v.FloatV(), data)
	case lineprotocol.Int:
		i := v.IntV()
		f.num = float64(i)
		if f.num >= 0x1p63 || int64(f.num) != i {
			return lpField{fe: inField(key, inexact(data, "i"))}
		}
		f.num, fe = checkNumber(f.num, data)
	case lineprotocol.Uint:
		u := v.UintV()
		f.num = float64(u)
		if f.num >= 0x1p64 || uint64(f.num) != u {
			return lpField{fe: inField(key, inexact(data, "u"))}
		}
		f.num, fe = checkNumber(f.num, data)
	case lineprotocol.String:
		f.typ, f.text = Text, string(data)
		fe = c.text(f.text)
	case lineprotocol.Bool:
		f.typ, f.text = Text, "false"
		if v.BoolV() {
			f.text = "true"
		}
		fe = c.text(f.text)
	default: // the decoder returns no other kind without an error
		fe = reject("value", "has no known type")
	}
	if fe != nil {
		return lpField{fe: inField(key, fe)}
	}
	return f
}

// timestamp converts the line's timestamp, nil when it has none, and checks
// it as every format's timestamps are checked.
func (p *lineProtocolParser) timestamp(ts []byte) (time.Time, *fieldError) {
	if ts == nil {
		return p.now, p.nowErr
	}
	s := string(ts)
	n, err := strconv.ParseInt(s, 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return time.Time{}, reject("timestamp", quote(s)+" is beyond the range of a 64-bit integer")
	case err != nil:
		return time.Time{}, reject("timestamp", quote(s)+" is not an integer count of "+p.prec.unit())
	}
	// Whole seconds, milliseconds and microseconds reach far beyond the
	// int64 nanoseconds of InfluxDB: the year bound of the checker decides.
	var t time.Time
	switch p.prec {
	case Second:
		t = time.Unix(n, 0)
	case Millisecond:
		t = time.UnixMilli(n)
	case Microsecond:
		t = time.UnixMicro(n)
	default:
		t = time.Unix(0, n)
	}
	return p.rd.check.instant(t.UTC(), s)
}

// unit names the precision in reasons.
func (p Precision) unit() string {
	switch p {
	case Microsecond:
		return "microseconds (precision us)"
	case Millisecond:
		return "milliseconds (precision ms)"
	case Second:
		return "seconds (precision s)"
	}
	return "nanoseconds (precision ns)"
}

// inField names the field of the line in a reason: a line holds several.
func inField(key []byte, fe *fieldError) *fieldError {
	return reject(fe.field, "field "+quote(string(key))+": "+fe.reason)
}

// inexact rejects an integer that float64, the store's numeric type, would
// round: the reading would silently differ from the input.
func inexact(data []byte, suffix string) *fieldError {
	return reject("value", excerpt(string(data))+suffix+" is beyond 2^53 and has no exact float64, the store's numeric type, so it would be rounded")
}

// lpValueError says why a field value of a known kind does not convert, in
// the words the other formats use where the rule is theirs.
func lpValueError(kind lineprotocol.ValueKind, data []byte, err error) *fieldError {
	s := string(data)
	switch kind {
	case lineprotocol.Float:
		if _, fe := number(s); fe != nil {
			return fe // not a number, not finite, beyond float64 range
		}
	case lineprotocol.Int, lineprotocol.Uint:
		suffix, name := "i", "a 64-bit integer"
		if kind == lineprotocol.Uint {
			suffix, name = "u", "a 64-bit unsigned integer"
		}
		if errors.Is(err, lineprotocol.ErrValueOutOfRange) {
			return reject("value", excerpt(s)+suffix+" is beyond the range of "+name)
		}
		return reject("value", quote(s+suffix)+" is not "+name)
	case lineprotocol.Bool:
		return reject("value", quote(s)+" is not a boolean")
	}
	return reject("value", err.Error())
}

// lpSyntax rejects a line the decoder cannot parse. lead is the number of
// spaces the decoder did not see before the measurement.
func lpSyntax(field string, lead int, err error) *fieldError {
	// The library's message may quote the rest of the line (an invalid
	// timestamp, the text after it): it is cut to about two quoted values,
	// as the messages built here quote at most one, and the offset comes
	// first so that the cut never takes it.
	if de, ok := errors.AsType[*lineprotocol.DecodeError](err); ok {
		return reject(field, "malformed line protocol at byte "+strconv.Itoa(lead+de.Column-1)+" of the line: "+cutText(de.Err.Error(), 2*maxQuoteBytes))
	}
	return reject(field, "malformed line protocol: "+cutText(err.Error(), 2*maxQuoteBytes))
}
