package dataset

import (
	"bytes"
	"io"
)

// window is an io.Reader that keeps the bytes it has passed on since the last
// release. Parsers that read ahead (jsontext, encoding/csv) hide their
// buffers; the window lets the Reader still recover a record's raw bytes and
// count the lines before it, while memory stays bounded by the read-ahead plus
// one record.
type window struct {
	r     io.Reader
	buf   []byte // buf[start:] holds the stream from offset base on
	start int
	base  int64

	lines   int64 // newlines before lineOff
	lineOff int64
}

func (w *window) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if n > 0 {
		if w.start > 0 && cap(w.buf)-len(w.buf) < n {
			m := copy(w.buf, w.buf[w.start:])
			w.buf, w.start = w.buf[:m], 0
		}
		w.buf = append(w.buf, p[:n]...)
	}
	return n, err
}

// bytes returns the retained bytes of the stream in [from, to), clipped to
// what is retained. The result is valid until the next Read.
func (w *window) bytes(from, to int64) []byte {
	end := w.base + int64(len(w.buf)-w.start)
	from, to = max(from, w.base), min(to, end)
	if from >= to {
		return nil
	}
	return w.buf[w.start+int(from-w.base) : w.start+int(to-w.base)]
}

// release forgets the bytes before off.
func (w *window) release(off int64) {
	if off <= w.base {
		return
	}
	k := min(off-w.base, int64(len(w.buf)-w.start))
	w.start += int(k)
	w.base += k
	if w.start == len(w.buf) {
		w.buf, w.start = w.buf[:0], 0
	}
}

// line returns the 1-based line holding offset off and releases the bytes
// before it; offsets must not go backwards. It returns 0 when off lies before
// the last offset asked for.
func (w *window) line(off int64) int64 {
	if off < w.lineOff {
		return 0
	}
	w.lines += int64(bytes.Count(w.bytes(w.lineOff, off), []byte{'\n'}))
	w.lineOff = off
	w.release(off)
	return w.lines + 1
}
