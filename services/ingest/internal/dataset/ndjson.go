package dataset

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// ndjsonParser reads one reading per line. A broken line costs only that
// line: the next one starts afresh.
type ndjsonParser struct {
	rd    *Reader
	lines lineReader
}

func newNDJSONParser(rd *Reader, br *bufio.Reader) *ndjsonParser {
	return &ndjsonParser{rd: rd, lines: newLineReader(rd, br)}
}

func (p *ndjsonParser) next(r *Reading) (Position, error) {
	for {
		pos, b, err := p.lines.next()
		if err != nil {
			return pos, err
		}
		rec := bytes.Trim(b, " \t\r")
		if len(rec) == 0 {
			continue
		}
		if fe := p.rd.check.decodeJSON(rec, "", r); fe != nil {
			return pos, p.rd.recordError(pos, fe, b)
		}
		return pos, nil
	}
}

// lineReader splits the stream into lines for the line-oriented formats
// (NDJSON, line protocol) and keeps their positions. It bounds each line by
// the record bound: a longer line is consumed and rejected as a whole while
// only its head is kept, so memory stays flat whatever the input holds.
type lineReader struct {
	rd   *Reader
	br   *bufio.Reader
	off  int64 // offset of the next line
	line int64 // number of the next line, 1-based
	long []byte
	// longLen is the length of the last line longer than the bound,
	// without its line ending; long holds its head.
	longLen int64
	max     int
}

func newLineReader(rd *Reader, br *bufio.Reader) lineReader {
	return lineReader{rd: rd, br: br, line: 1, max: rd.opts.maxRecordBytes()}
}

// next returns the next line without its line ending (the CRs and LFs at its
// end) and the position of its start. The line is valid until the next call.
// The error is io.EOF at the end of the input, a *RecordError for a line
// longer than the bound (call next again to go on) and a *FatalError when the
// input fails.
func (l *lineReader) next() (Position, []byte, error) {
	pos := l.rd.pos(l.line, l.off, "")
	b, n, err := l.readLine()
	l.off += n
	l.line++
	if err != nil && err != io.EOF {
		return pos, nil, l.rd.fatal(pos, err)
	}
	if n == 0 && err == io.EOF {
		return pos, nil, io.EOF
	}
	if b == nil {
		fe := reject("", "line is "+strconv.FormatInt(l.longLen, 10)+" bytes, longer than the bound of "+strconv.Itoa(l.max)+" bytes")
		re := l.rd.recordError(pos, fe, l.long)
		re.RawCut += l.longLen - int64(len(l.long))
		return pos, nil, re
	}
	return pos, bytes.TrimRight(b, "\r\n"), nil
}

// readLine returns the next line including its newline and the number of
// bytes consumed. A line longer than the record bound is consumed whole and
// returned as nil, with its start left in l.long and its length in l.longLen.
func (l *lineReader) readLine() ([]byte, int64, error) {
	b, err := l.br.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return b, int64(len(b)), wrapRead(err)
	}
	l.long = append(l.long[:0], b...)
	n := int64(len(b))
	var before byte // the last byte of the chunk before b
	for err == bufio.ErrBufferFull {
		before = b[len(b)-1]
		b, err = l.br.ReadSlice('\n')
		n += int64(len(b))
		if len(l.long) <= l.max {
			l.long = append(l.long, b...)
		}
	}
	if len(l.long) > l.max {
		l.long = l.long[:l.max]
		// The line ending, as next trims it: CRs and LFs at the end.
		end := int64(len(b) - len(bytes.TrimRight(b, "\r\n")))
		if end == int64(len(b)) && before == '\r' {
			end++ // a CR in the chunk before; one is all that counts here
		}
		l.longLen = n - end
		return nil, n, wrapRead(err)
	}
	return l.long, n, wrapRead(err)
}

func wrapRead(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return fmt.Errorf("read: %w", err)
}
