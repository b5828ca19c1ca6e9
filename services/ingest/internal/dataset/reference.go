package dataset

import (
	"bufio"
	"bytes"
	"errors"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"
)

type referenceState uint8

const (
	refStart    referenceState = iota // before the top-level '{'
	refDevices                        // at a device key or the closing '}'
	refReadings                       // inside a device's array
)

// referenceParser streams the reference document token by token, so only one
// reading object is in memory at a time however large the document is.
type referenceParser struct {
	rd    *Reader
	dec   *jsontext.Decoder
	win   *window
	state referenceState

	device    string      // the current device id
	deviceErr *fieldError // set when the device key is not a valid id
	prefix    []byte      // JSON pointer of the current device array plus '/'
	index     int64       // index of the next element in the device array
	path      []byte
}

func newReferenceParser(rd *Reader, br *bufio.Reader) *referenceParser {
	win := &window{r: br}
	return &referenceParser{
		rd:  rd,
		win: win,
		// Duplicate device keys continue a device; duplicates inside a
		// reading are rejected per reading by the checker. Invalid UTF-8 is
		// rejected per field instead of failing the whole document.
		dec: jsontext.NewDecoder(win, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)),
	}
}

func (p *referenceParser) next(r *Reading) (Position, error) {
	for {
		switch p.state {
		case refStart:
			tok, err := p.dec.ReadToken()
			if err != nil {
				return p.fail(err)
			}
			if k := tok.Kind(); k != '{' {
				return p.fail(errors.New("the reference document must be a JSON object keyed by device id, not " + kindName(k)))
			}
			p.state = refDevices

		case refDevices:
			switch p.dec.PeekKind() {
			case '}':
				if _, err := p.dec.ReadToken(); err != nil {
					return p.fail(err)
				}
				// Only whitespace may follow the document.
				if p.dec.PeekKind() == jsontext.KindInvalid {
					_, err := p.dec.ReadToken()
					return p.fail(err) // io.EOF passes through
				}
				ub := p.dec.UnreadBuffer()
				off := p.dec.InputOffset() + int64(len(ub)-len(bytes.TrimLeft(ub, " \t\r\n")))
				pos := p.rd.pos(p.win.line(off), off, "")
				return pos, p.rd.fatal(pos, errors.New("data after the end of the reference document"))
			case '"':
				name, err := p.dec.ReadValue()
				if err != nil {
					return p.fail(err)
				}
				p.setDevice(name)
				switch k := p.dec.PeekKind(); k {
				case '[':
					if _, err := p.dec.ReadToken(); err != nil {
						return p.fail(err)
					}
					p.state, p.index = refReadings, 0
				case jsontext.KindInvalid:
					_, err := p.dec.ReadToken()
					return p.fail(err)
				default:
					// Skip the value without holding it: it may be large.
					ub := p.dec.UnreadBuffer()
					start := p.dec.InputOffset() + int64(len(ub)-len(bytes.TrimLeft(ub, " \t\r\n:")))
					if err := p.dec.SkipValue(); err != nil {
						return p.fail(err)
					}
					pos := p.rd.pos(p.win.line(start), start, string(p.prefix[:len(p.prefix)-1]))
					fe := reject("", "the readings of device "+quote(p.device)+" must be a JSON array, not "+kindName(k))
					return pos, p.rd.recordError(pos, fe, nil)
				}
			default:
				_, err := p.dec.ReadValue() // reports the syntax error
				return p.fail(err)
			}

		case refReadings:
			if p.dec.PeekKind() == ']' {
				if _, err := p.dec.ReadToken(); err != nil {
					return p.fail(err)
				}
				p.state = refDevices
				continue
			}
			v, err := p.dec.ReadValue()
			if err != nil {
				return p.fail(err)
			}
			start := p.dec.InputOffset() - int64(len(v))
			p.path = strconv.AppendInt(append(p.path[:0], p.prefix...), p.index, 10)
			pos := p.rd.pos(p.win.line(start), start, string(p.path))
			p.index++
			fe := p.deviceErr
			if fe == nil {
				fe = p.rd.check.decodeJSON(v, p.device, r)
			}
			if fe != nil {
				return pos, p.rd.recordError(pos, fe, v)
			}
			return pos, nil
		}
	}
}

// setDevice starts a device array from its raw quoted key.
func (p *referenceParser) setDevice(name jsontext.Value) {
	p.device, p.deviceErr = "", nil
	b, fe := p.rd.check.jsonString("device_id", name)
	if fe == nil {
		p.device, fe = p.rd.check.idBytes("device_id", b)
	}
	if fe != nil {
		p.deviceErr = fe
		b, _ = jsontext.AppendUnquote(nil, name) // for the pointer, with invalid UTF-8 replaced
		p.device = string(b)
	}
	// The pointer shows the head of a huge device id only: it is built once
	// per device but copied into the position of every reading.
	token := p.device
	n := runeCut(token, maxPointerTokenBytes)
	p.prefix = append(p.prefix[:0], '/')
	for _, c := range []byte(token[:n]) {
		switch c {
		case '~':
			p.prefix = append(p.prefix, "~0"...)
		case '/':
			p.prefix = append(p.prefix, "~1"...)
		default:
			p.prefix = append(p.prefix, c)
		}
	}
	if n < len(token) {
		p.prefix = append(p.prefix, moreBytes(int64(len(token)-n))...)
	}
	p.prefix = append(p.prefix, '/')
}

// fail turns an error of the decoder into a fatal error at its position.
func (p *referenceParser) fail(err error) (Position, error) {
	var pos Position
	if se, ok := errors.AsType[*jsontext.SyntacticError](err); ok {
		pos = p.rd.pos(p.win.line(se.ByteOffset), se.ByteOffset, string(se.JSONPointer))
	} else {
		off := p.dec.InputOffset()
		pos = p.rd.pos(p.win.line(off), off, string(p.dec.StackPointer()))
	}
	return pos, p.rd.fatal(pos, err)
}
