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

func newNDJSONParser(rd *Reader, br *bufio.Reader) *ndjsonParser {
	return &ndjsonParser{rd: rd, br: br, line: 1, max: rd.opts.maxRecordBytes()}
}

func (p *ndjsonParser) next(r *Reading) (Position, error) {
	for {
		pos := p.rd.pos(p.line, p.off, "")
		b, n, err := p.readLine()
		p.off += n
		p.line++
		if err != nil && err != io.EOF {
			return pos, p.rd.fatal(pos, err)
		}
		if n == 0 && err == io.EOF {
			return pos, io.EOF
		}
		if b == nil {
			fe := reject("", "line is "+strconv.FormatInt(p.longLen, 10)+" bytes, longer than the bound of "+strconv.Itoa(p.max)+" bytes")
			re := p.rd.recordError(pos, fe, p.long)
			re.RawCut += p.longLen - int64(len(p.long))
			return pos, re
		}
		b = bytes.TrimRight(b, "\r\n")
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

// readLine returns the next line including its newline and the number of
// bytes consumed. A line longer than the record bound is consumed whole and
// returned as nil, with its start left in p.long and its length in p.longLen.
func (p *ndjsonParser) readLine() ([]byte, int64, error) {
	b, err := p.br.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return b, int64(len(b)), wrapRead(err)
	}
	p.long = append(p.long[:0], b...)
	n := int64(len(b))
	var before byte // the last byte of the chunk before b
	for err == bufio.ErrBufferFull {
		before = b[len(b)-1]
		b, err = p.br.ReadSlice('\n')
		n += int64(len(b))
		if len(p.long) <= p.max {
			p.long = append(p.long, b...)
		}
	}
	if len(p.long) > p.max {
		p.long = p.long[:p.max]
		// The line ending, as next trims it: CRs and LFs at the end.
		end := int64(len(b) - len(bytes.TrimRight(b, "\r\n")))
		if end == int64(len(b)) && before == '\r' {
			end++ // a CR in the chunk before; one is all that counts here
		}
		p.longLen = n - end
		return nil, n, wrapRead(err)
	}
	return p.long, n, wrapRead(err)
}

func wrapRead(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return fmt.Errorf("read: %w", err)
}
