package dataset

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// naiveLayout is RFC 3339 without the offset, accepted only with a NaiveZone.
const naiveLayout = "2006-01-02T15:04:05.999999999"

// maxInterned bounds the id cache; past it the cache starts over.
const maxInterned = 1 << 14

// checker validates the fields of readings for one Reader. It caches what
// repeats across readings (ids, zones) so that most readings allocate only
// for their timestamp and text.
type checker struct {
	maxID, maxText int
	naive          *time.Location
	ids            map[string]string // validated ids, shared by all readings that use them
	zones          map[int]*time.Location
	buf            []byte // unquoting scratch
	wire           wireReading
	jsonOpts       jsontext.Options
	src            bytes.Reader      // the record decodeJSON reads
	name           []byte            // scratch: the member name being read
	dec            *jsontext.Decoder // reused for every record
}

func newChecker(o Options) *checker {
	return &checker{
		maxID:    o.MaxIDLen,
		maxText:  o.MaxTextLen,
		naive:    o.NaiveZone,
		ids:      make(map[string]string),
		zones:    make(map[int]*time.Location),
		jsonOpts: jsontext.AllowInvalidUTF8(true), // so invalid UTF-8 is a record error naming its field
	}
}

// fieldError is a rejected field, turned into a RecordError by the parser
// that knows the position.
type fieldError struct {
	field, reason string
}

// reject builds every fieldError, so it bounds what they quote: a field is
// a member name from the input when it is a duplicate, and a reason the
// callers keep short is cut should one not be.
func reject(field, reason string) *fieldError {
	return &fieldError{cutText(field, maxQuoteBytes), cutText(reason, maxReasonBytes)}
}

// id validates a device id or parameter name.
func (c *checker) id(field, s string) (string, *fieldError) {
	if v, ok := c.ids[s]; ok {
		return v, nil
	}
	switch {
	case s == "":
		return "", reject(field, "is empty")
	case len(s) > c.maxID:
		return "", reject(field, "is "+strconv.Itoa(len(s))+" bytes, longer than the bound of "+strconv.Itoa(c.maxID))
	}
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b < 0x20 || b == 0x7f {
				return "", reject(field, "contains the control character "+strconv.QuoteRune(rune(b)))
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return "", reject(field, "is not valid UTF-8 (byte "+strconv.Itoa(i)+")")
		}
		if unicode.IsControl(r) {
			return "", reject(field, "contains the control character "+strconv.QuoteRune(r))
		}
		i += n
	}
	if len(c.ids) >= maxInterned {
		clear(c.ids)
	}
	s = strings.Clone(s) // s may point into a larger record that must not stay alive
	c.ids[s] = s
	return s, nil
}

// idBytes is id for unquoted JSON bytes; a cached id costs no allocation.
func (c *checker) idBytes(field string, b []byte) (string, *fieldError) {
	if v, ok := c.ids[string(b)]; ok {
		return v, nil
	}
	return c.id(field, string(b))
}

// timestamp parses an RFC 3339 timestamp and checks it fits PostgreSQL's
// timestamptz exactly.
func (c *checker) timestamp(s string) (time.Time, *fieldError) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		loc := c.naive
		if loc == nil {
			loc = time.UTC
		}
		nt, nerr := time.ParseInLocation(naiveLayout, s, loc)
		switch {
		case nerr != nil:
			return time.Time{}, reject("timestamp", quote(s)+" is not an RFC 3339 timestamp with a UTC offset, like 2024-03-07T12:22:07.315194+02:00")
		case c.naive == nil:
			return time.Time{}, reject("timestamp", quote(s)+" has no UTC offset (give one, or configure a zone for naive timestamps)")
		}
		t = nt
	}
	if y := t.Year(); y < 1 || y > 9999 {
		return time.Time{}, reject("timestamp", quote(s)+": year outside 0001..9999")
	}
	if t.Nanosecond()%1000 != 0 {
		return time.Time{}, reject("timestamp", quote(s)+" has sub-microsecond digits; PostgreSQL stores microseconds, so they would be lost")
	}
	_, off := t.Zone()
	if off <= -16*3600 || off >= 16*3600 {
		return time.Time{}, reject("timestamp", quote(s)+" has a UTC offset beyond ±15:59, the most PostgreSQL accepts")
	}
	loc, ok := c.zones[off]
	if !ok {
		loc = time.FixedZone("", off)
		c.zones[off] = loc
	}
	return t.In(loc), nil
}

// text validates a text value.
func (c *checker) text(s string) *fieldError {
	switch {
	case len(s) > c.maxText:
		return reject("value", "text is "+strconv.Itoa(len(s))+" bytes, longer than the bound of "+strconv.Itoa(c.maxText))
	case !utf8.ValidString(s):
		return reject("value", "text is not valid UTF-8")
	case strings.IndexByte(s, 0) >= 0:
		return reject("value", "text contains NUL, which PostgreSQL text cannot hold")
	}
	return nil
}

// MaxAbsNumber bounds numeric values. The rollups keep sums of squares
// (to re-aggregate stddev exactly), and a day of readings near float64's
// limit would overflow them; no sensor reads anything near 1e100.
const MaxAbsNumber = 1e100

// number parses a numeric value; JSON numbers are a subset of what
// strconv.ParseFloat accepts.
func number(s string) (float64, *fieldError) {
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return 0, reject("value", excerpt(s)+" is beyond float64 range")
	case err != nil:
		return 0, reject("value", quote(s)+" is not a number")
	case math.IsNaN(f) || math.IsInf(f, 0):
		return 0, reject("value", excerpt(s)+" is not finite")
	case math.Abs(f) > MaxAbsNumber:
		return 0, reject("value", excerpt(s)+" has a magnitude beyond 1e100, which aggregates cannot square without overflow")
	}
	return f, nil
}

// members reads the members of one reading object into c.wire in a single
// pass of a reused decoder. It replaced json.Unmarshal into the struct, whose
// reflection cost as much as the rest of the parse; the decoder still rejects
// duplicate names and malformed JSON.
func (c *checker) members(raw []byte) error {
	c.src.Reset(raw)
	if c.dec == nil {
		c.dec = jsontext.NewDecoder(&c.src, c.jsonOpts)
	} else {
		c.dec.Reset(&c.src, c.jsonOpts)
	}
	d, w := c.dec, &c.wire
	if _, err := d.ReadToken(); err != nil { // '{', checked by the caller
		return err
	}
	for d.PeekKind() == '"' {
		raw, err := d.ReadValue()
		if err != nil {
			return err
		}
		// The decoder reuses its buffer: keep the name before reading on.
		name := append(c.name[:0], raw...)
		if bytes.IndexByte(name, '\\') >= 0 {
			if name, err = jsontext.AppendQuote(c.name[:0], mustUnquote(name)); err != nil {
				return err
			}
		}
		c.name = name
		val, err := d.ReadValue()
		if err != nil {
			return err
		}
		switch string(name) {
		case `"device_id"`:
			w.DeviceID = append(w.DeviceID, val...)
		case `"parameter"`:
			w.Parameter = append(w.Parameter, val...)
		case `"timestamp"`:
			w.Timestamp = append(w.Timestamp, val...)
		case `"value"`:
			w.Value = append(w.Value, val...)
		case `"type"`:
			w.Type = append(w.Type, val...)
		}
	}
	if _, err := d.ReadToken(); err != nil { // '}' or the syntax error
		return err
	}
	_, err := d.ReadToken() // nothing may follow the object
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err == nil {
		return errors.New("data after the reading object")
	}
	return err
}

func mustUnquote(name []byte) []byte {
	b, _ := jsontext.AppendUnquote(nil, name)
	return b
}

// wireReading receives the members of one JSON reading. Raw values let the
// checker tell wrong kinds, invalid UTF-8 and absent members apart, and their
// buffers are reused from reading to reading.
type wireReading struct {
	DeviceID  jsontext.Value `json:"device_id"`
	Parameter jsontext.Value `json:"parameter"`
	Timestamp jsontext.Value `json:"timestamp"`
	Value     jsontext.Value `json:"value"`
	Type      jsontext.Value `json:"type"`
}

// decodeJSON decodes and validates one JSON reading object. device is the
// device id from the reference document's key; when it is "" the reading
// must carry a device_id member.
func (c *checker) decodeJSON(raw []byte, device string, rd *Reading) *fieldError {
	if k := jsontext.Value(raw).Kind(); k != '{' {
		if k == jsontext.KindInvalid {
			return reject("", "malformed JSON: not a JSON value")
		}
		return reject("", "a reading must be a JSON object, not "+kindName(k))
	}
	w := &c.wire
	w.DeviceID, w.Parameter, w.Timestamp, w.Value, w.Type = w.DeviceID[:0], w.Parameter[:0], w.Timestamp[:0], w.Value[:0], w.Type[:0]
	if err := c.members(raw); err != nil {
		var se *jsontext.SyntacticError
		if errors.As(err, &se) {
			if se.Err == jsontext.ErrDuplicateName {
				name := se.JSONPointer.LastToken()
				field := name
				for tok := range se.JSONPointer.Tokens() {
					field = tok // the member of the reading that holds the duplicate
					break
				}
				return reject(field, "duplicate member name "+quote(name))
			}
			return reject("", "malformed JSON: "+se.Err.Error()+" (byte "+strconv.FormatInt(se.ByteOffset, 10)+" of the record)")
		}
		return reject("", "malformed reading: "+err.Error())
	}

	var fe *fieldError
	if device != "" {
		rd.DeviceID = device
	} else if rd.DeviceID, fe = c.jsonID("device_id", w.DeviceID); fe != nil {
		return fe
	}
	if rd.Parameter, fe = c.jsonID("parameter", w.Parameter); fe != nil {
		return fe
	}
	ts, fe := c.jsonString("timestamp", w.Timestamp)
	if fe != nil {
		return fe
	}
	if rd.Time, fe = c.timestamp(string(ts)); fe != nil {
		return fe
	}

	var typ ValueType
	if len(w.Type) > 0 {
		s, fe := c.jsonString("type", w.Type)
		if fe != nil {
			return fe
		}
		if typ, _ = ParseValueType(string(s)); typ == 0 {
			return reject("type", `must be "numeric" or "text", not `+quote(string(s)))
		}
	}
	switch k := w.Value.Kind(); {
	case len(w.Value) == 0:
		return reject("value", "is missing")
	case k == '0':
		if typ == Text {
			return reject("value", "is a JSON number but type is text (text values are JSON strings)")
		}
		if rd.Num, fe = number(string(w.Value)); fe != nil {
			return fe
		}
		rd.Type, rd.Text = Numeric, ""
	case k == '"':
		if typ == Numeric {
			return reject("value", "is a JSON string but type is numeric (numeric values are JSON numbers)")
		}
		s, fe := c.jsonString("value", w.Value)
		if fe != nil {
			return fe
		}
		text := string(s)
		if fe = c.text(text); fe != nil {
			return fe
		}
		rd.Type, rd.Text, rd.Num = Text, text, 0
	default:
		return reject("value", "must be a JSON number or string, not "+kindName(k))
	}
	return nil
}

// jsonID validates a raw JSON member holding a device id or parameter.
func (c *checker) jsonID(field string, v jsontext.Value) (string, *fieldError) {
	b, fe := c.jsonString(field, v)
	if fe != nil {
		return "", fe
	}
	return c.idBytes(field, b)
}

// jsonString unquotes a raw JSON member that must be a string. The result is
// valid until the next call.
func (c *checker) jsonString(field string, v jsontext.Value) ([]byte, *fieldError) {
	switch k := v.Kind(); {
	case len(v) == 0:
		return nil, reject(field, "is missing")
	case k != '"':
		return nil, reject(field, "must be a JSON string, not "+kindName(k))
	}
	if inner := v[1 : len(v)-1]; bytes.IndexByte(inner, '\\') < 0 {
		if !utf8.Valid(inner) {
			return nil, reject(field, "is not valid UTF-8")
		}
		return inner, nil
	}
	var err error
	if c.buf, err = jsontext.AppendUnquote(c.buf[:0], v); err != nil {
		return nil, reject(field, "is not valid UTF-8")
	}
	return c.buf, nil
}

func kindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 'f', 't':
		return "a boolean"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "invalid JSON"
}
