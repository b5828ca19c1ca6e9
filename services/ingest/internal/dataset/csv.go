package dataset

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// CSV columns, in the order of csvParser.cols.
const (
	colDevice = iota
	colParameter
	colTimestamp
	colValue
	colType
	numCols
)

var csvColumns = [numCols]string{"device_id", "parameter", "timestamp", "value", "type"}

// csvParser reads a header row naming the columns, then one reading per row.
type csvParser struct {
	rd     *Reader
	cr     *csv.Reader
	win    *window
	cols   [numCols]int // field index of each column; -1 when absent
	header bool
}

func newCSVParser(rd *Reader, br *bufio.Reader) *csvParser {
	win := &window{r: br}
	cr := csv.NewReader(win)
	cr.ReuseRecord = true
	return &csvParser{rd: rd, cr: cr, win: win}
}

func (p *csvParser) next(r *Reading) (Position, error) {
	if !p.header {
		if pos, err := p.readHeader(); err != nil {
			return pos, err
		}
	}
	start := p.cr.InputOffset()
	p.win.release(start)
	rec, err := p.cr.Read()
	if err == io.EOF {
		return p.rd.pos(0, start, ""), io.EOF
	}
	pe, isParseErr := errors.AsType[*csv.ParseError](err)
	if err != nil && !isParseErr {
		pos := p.rd.pos(0, start, "")
		return pos, p.rd.fatal(pos, fmt.Errorf("read: %w", err))
	}
	// Raw record without the blank lines encoding/csv skipped before it.
	raw := p.win.bytes(start, p.cr.InputOffset())
	for len(raw) > 0 && (raw[0] == '\n' || raw[0] == '\r') {
		raw, start = raw[1:], start+1
	}
	raw = trimNewline(raw)

	var line int64
	if isParseErr {
		line = int64(pe.StartLine)
	} else {
		l, _ := p.cr.FieldPos(0)
		line = int64(l)
	}
	pos := p.rd.pos(line, start, "")
	if isParseErr {
		reason := pe.Err.Error()
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			reason = "has " + strconv.Itoa(len(rec)) + " fields, the header has " + strconv.Itoa(p.cr.FieldsPerRecord)
		} else if pe.Line > 0 {
			reason += " (line " + strconv.Itoa(pe.Line) + ", column " + strconv.Itoa(pe.Column) + ")"
		}
		return pos, p.rd.recordError(pos, reject("", "malformed CSV record: "+reason), raw)
	}
	if fe := p.decode(rec, r); fe != nil {
		return pos, p.rd.recordError(pos, fe, raw)
	}
	return pos, nil
}

func (p *csvParser) readHeader() (Position, error) {
	pos := p.rd.pos(1, 0, "")
	rec, err := p.cr.Read()
	switch {
	case err == io.EOF:
		return pos, p.rd.fatal(pos, errors.New("CSV header row is missing"))
	case err != nil:
		return pos, p.rd.fatal(pos, fmt.Errorf("CSV header row: %w", err))
	}
	p.cols = [numCols]int{-1, -1, -1, -1, -1}
	for i, name := range rec {
		c := 0
		for c < numCols && csvColumns[c] != name {
			c++
		}
		switch {
		case c == numCols:
			return pos, p.rd.fatal(pos, errors.New("CSV header: unknown column "+quote(name)+" (want device_id, parameter, timestamp, value and optionally type)"))
		case p.cols[c] >= 0:
			return pos, p.rd.fatal(pos, errors.New("CSV header: column "+quote(name)+" appears twice"))
		}
		p.cols[c] = i
	}
	var missing []string
	for c := range colType {
		if p.cols[c] < 0 {
			missing = append(missing, csvColumns[c])
		}
	}
	if len(missing) > 0 {
		return pos, p.rd.fatal(pos, fmt.Errorf("CSV header: missing column %s", strings.Join(missing, ", ")))
	}
	p.header = true
	return pos, nil
}

// decode validates one row.
func (p *csvParser) decode(rec []string, r *Reading) *fieldError {
	c := p.rd.check
	var fe *fieldError
	if r.DeviceID, fe = c.id("device_id", rec[p.cols[colDevice]]); fe != nil {
		return fe
	}
	if r.Parameter, fe = c.id("parameter", rec[p.cols[colParameter]]); fe != nil {
		return fe
	}
	if r.Time, fe = c.timestamp(rec[p.cols[colTimestamp]]); fe != nil {
		return fe
	}
	var typ ValueType
	if i := p.cols[colType]; i >= 0 && rec[i] != "" {
		if typ, _ = ParseValueType(rec[i]); typ == 0 {
			return reject("type", `must be "numeric" or "text", not `+quote(rec[i]))
		}
	}
	v := rec[p.cols[colValue]]
	if typ == 0 {
		// Inferred: numeric when it is a finite float64, text otherwise.
		if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			r.Type, r.Num = Numeric, f
			return nil
		}
		typ = Text
	}
	if typ == Numeric {
		if r.Num, fe = number(v); fe != nil {
			return fe
		}
		r.Type = Numeric
		return nil
	}
	if fe = c.text(v); fe != nil {
		return fe
	}
	r.Type, r.Text = Text, v
	return nil
}

func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}
