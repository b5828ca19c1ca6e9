package dataset

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// bufSize is the read buffer; detection peeks at most this far.
const bufSize = 64 << 10

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Reader streams validated readings from one input.
type Reader struct {
	opts     Options
	format   Format
	check    *checker
	base     int64 // bytes of the stream before what the parser sees (a BOM, leading space)
	lineBase int64 // lines before what the parser sees
	parse    func(*Reading) (Position, error)
	err      error   // sticky: io.EOF or the fatal error
	cur      Reading // filled by parse; a field so that it is not allocated per call
}

// NewReader prepares to read r. It skips a UTF-8 byte order mark, inflates
// gzip input (detected by its magic bytes, bounded by
// Options.MaxDecompressedBytes) and, when Options.Format is Auto, detects the
// format from the first bytes: a JSON object whose first member holds an array
// is the reference document, any other JSON object starts NDJSON, anything
// else is CSV with its header in the first row; an empty object alone is an
// empty reference document. It reads no further than that. Input that is
// empty or only whitespace holds no readings. Detection never picks
// LineProtocol: it is read only when Options.Format asks for it.
func NewReader(r io.Reader, opts Options) (*Reader, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("dataset options: %w", err)
	}
	rd := &Reader{opts: opts, format: opts.Format, check: newChecker(opts)}
	fail := func(err error) (*Reader, error) {
		return nil, &FatalError{Pos: Position{File: opts.File}, Err: err}
	}

	br := bufio.NewReaderSize(r, bufSize)
	if err := rd.skipBOM(br); err != nil {
		return fail(err)
	}
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fail(fmt.Errorf("gzip: %w", err))
		}
		rd.base = 0 // offsets count in the inflated stream
		br = bufio.NewReaderSize(&boundedReader{r: zr, left: opts.MaxDecompressedBytes, limit: opts.MaxDecompressedBytes}, bufSize)
		if err := rd.skipBOM(br); err != nil {
			return fail(err)
		}
	} else if err != nil && err != io.EOF {
		return fail(fmt.Errorf("read: %w", err))
	}

	// Forced NDJSON and line protocol need no look ahead: lines are parsed
	// as they arrive, so a stream that stays open (a pipe, a tail) flows
	// reading by reading instead of waiting for the detection window to fill.
	if rd.format != NDJSON && rd.format != LineProtocol {
		empty, detected, err := rd.detect(br)
		if err != nil {
			return fail(err)
		}
		if empty {
			rd.err = io.EOF
			return rd, nil
		}
		if rd.format == Auto {
			rd.format = detected
		}
	}
	switch rd.format {
	case Reference:
		rd.parse = newReferenceParser(rd, br).next
	case NDJSON:
		rd.parse = newNDJSONParser(rd, br).next
	case CSV:
		rd.parse = newCSVParser(rd, br).next
	case LineProtocol:
		rd.parse = newLineProtocolParser(rd, br).next
	}
	return rd, nil
}

func (rd *Reader) skipBOM(br *bufio.Reader) error {
	b, err := br.Peek(len(utf8BOM))
	if err != nil && err != io.EOF {
		return fmt.Errorf("read: %w", err)
	}
	if bytes.Equal(b, utf8BOM) {
		br.Discard(len(utf8BOM))
		rd.base += int64(len(utf8BOM))
	}
	return nil
}

// Format returns the format being read: the one asked for, or the detected one.
func (rd *Reader) Format() Format { return rd.format }

// Next returns the next valid reading and its position. It returns io.EOF at
// the end of the input, a *RecordError for a rejected reading (call Next again
// to go on), and a *FatalError when the input cannot be read further; after
// io.EOF or a FatalError it keeps returning the same error.
func (rd *Reader) Next() (Reading, Position, error) {
	if rd.err != nil {
		return Reading{}, Position{}, rd.err
	}
	rd.cur = Reading{}
	pos, err := rd.parse(&rd.cur)
	if err != nil {
		if _, ok := err.(*RecordError); !ok {
			rd.err = err
		}
		return Reading{}, pos, err
	}
	return rd.cur, pos, nil
}

// pos builds a position from an offset in the parsed stream.
func (rd *Reader) pos(line, off int64, path string) Position {
	if line > 0 {
		line += rd.lineBase
	}
	return Position{File: rd.opts.File, Line: line, Offset: rd.base + off, Path: cutPointer(path)}
}

// fatal wraps err with its position unless it is io.EOF.
func (rd *Reader) fatal(pos Position, err error) error {
	if err == io.EOF {
		return err
	}
	return &FatalError{Pos: pos, Err: err}
}

// recordError rejects the record raw, keeping at most MaxRawBytes of it.
func (rd *Reader) recordError(pos Position, fe *fieldError, raw []byte) *RecordError {
	n := runeCut(raw, MaxRawBytes)
	return &RecordError{Pos: pos, Field: fe.field, Reason: fe.reason, Raw: bytes.Clone(raw[:n]), RawCut: int64(len(raw) - n)}
}

// detect reports whether the input is empty or whitespace only, and otherwise
// the format the first bytes suggest.
func (rd *Reader) detect(br *bufio.Reader) (empty bool, f Format, err error) {
	for n := 512; ; n *= 4 {
		b, err := br.Peek(min(n, bufSize))
		if err != nil && err != io.EOF {
			return false, 0, fmt.Errorf("read: %w", err)
		}
		complete := err == io.EOF || len(b) >= bufSize
		f, decided := sniff(b, err == io.EOF)
		switch {
		case f == Auto && err == io.EOF:
			return true, Auto, nil
		case f == Auto && complete:
			// A buffer full of whitespace: drop it and look further.
			rd.lineBase += int64(bytes.Count(b, []byte{'\n'}))
			rd.base += int64(len(b))
			br.Discard(len(b))
			n = 512 / 4
		case decided:
			return false, f, nil
		case complete:
			// An object whose first member does not fit the buffer cannot be
			// a reference document with sane device ids.
			return false, f, nil
		}
	}
}

// sniff looks at the start of the input; atEOF says b is all of it. It
// returns Auto for whitespace only, and decided=false when b is too short to
// tell.
func sniff(b []byte, atEOF bool) (f Format, decided bool) {
	i := skipSpace(b, 0)
	if i == len(b) {
		return Auto, false
	}
	if b[i] != '{' {
		return CSV, true
	}
	// '{' ws string ws ':' ws '[' is the reference document.
	i = skipSpace(b, i+1)
	if i == len(b) {
		return NDJSON, false
	}
	if b[i] == '}' {
		// An empty object alone is an empty reference document; followed
		// by more, it is an NDJSON line (that lacks every field).
		if i = skipSpace(b, i+1); i == len(b) {
			return Reference, atEOF
		}
		return NDJSON, true
	}
	if b[i] != '"' {
		return NDJSON, true
	}
	for i++; i < len(b) && b[i] != '"'; i++ {
		if b[i] == '\\' {
			i++
		}
	}
	if i = skipSpace(b, i+1); i >= len(b) {
		return NDJSON, false
	}
	if b[i] != ':' {
		return NDJSON, true
	}
	if i = skipSpace(b, i+1); i == len(b) {
		return NDJSON, false
	}
	if b[i] == '[' {
		return Reference, true
	}
	return NDJSON, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// boundedReader fails once more than left bytes come out of r.
type boundedReader struct {
	r     io.Reader
	left  int64
	limit int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		n, err := io.ReadFull(b.r, one[:])
		if n > 0 {
			return 0, fmt.Errorf("%w of %s bytes (MaxDecompressedBytes)", ErrDecompressedTooLarge, strconv.FormatInt(b.limit, 10))
		}
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("gzip: %w", err)
	}
	return n, err
}
