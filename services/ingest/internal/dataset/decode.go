package dataset

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// JSON decoding of one reading object, shared by the reference and NDJSON
// readers: one pass of a reused decoder into the checker's wire struct.

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
