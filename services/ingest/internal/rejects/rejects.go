// Package rejects writes rejected readings to an NDJSON file, one object per
// reading with its place and reason, so a user can fix and reload exactly those.
package rejects

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"unicode/utf8"

	"github.com/sensorhub/sensorhub/services/ingest/internal/copyload"
)

// Record is one line of the rejects file. Every line stays small whatever
// the input: the dataset package bounds the path (a long or deep pointer is
// cut to its head and tail, with a note of what lies between), the field and
// the reason, and Writer bounds raw.
type Record struct {
	File   string `json:"file"`
	Line   int64  `json:"line,omitempty"`
	Offset int64  `json:"offset"`
	Path   string `json:"path,omitempty"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
	// Raw is the record as it stood in the input, when it could be cut out,
	// or its head: a record whose JSON string would take more than
	// maxRawJSONBytes is cut on a UTF-8 rune boundary. The cut is told by
	// RawTruncatedBytes rather than by a marker inside raw, so that raw
	// holds nothing but a prefix of the record at offset (invalid UTF-8
	// aside, which JSON writes as U+FFFD) and a program can tell a cut
	// record from one that ends in "…".
	Raw string `json:"raw,omitempty"`
	// RawTruncatedBytes is how many bytes of the record, counted in the
	// input, raw leaves out; absent when raw is the whole record.
	RawTruncatedBytes int64 `json:"raw_truncated_bytes,omitempty"`
}

// maxRawJSONBytes bounds the raw field as encoded: a few KiB keeps every
// ordinary record whole and a line of the rejects file readable in an editor,
// however large or hostile the record; the file and offset lead to the rest.
// With the bounds dataset puts on the path, field and reason, a line stays
// under 8 KiB for a file name of ordinary length.
const maxRawJSONBytes = 4 << 10

// rawHead returns the longest head of raw, cut on a rune boundary, whose JSON
// string takes at most maxRawJSONBytes as encoding/json writes it (HTML
// escaping off). It counts each byte as its worst case, so it may cut a
// little early, never late.
func rawHead(raw []byte) []byte {
	if len(raw)*6 <= maxRawJSONBytes {
		return raw
	}
	n := 0
	for i := 0; i < len(raw); {
		c, size := 1, 1
		switch b := raw[i]; {
		case b == '"' || b == '\\':
			c = 2
		case b < 0x20:
			c = 6 // \u00XX; \n, \r and \t take 2, but 6 is the bound
		case b >= utf8.RuneSelf:
			r, sz := utf8.DecodeRune(raw[i:])
			size = sz
			switch {
			case r == utf8.RuneError && sz == 1, r == '\u2028', r == '\u2029':
				c = 6 // \ufffd, \u2028, \u2029
			default:
				c = sz
			}
		}
		if n+c > maxRawJSONBytes {
			return raw[:i]
		}
		n += c
		i += size
	}
	return raw
}

// Writer is a copyload.RejectSink that writes NDJSON.
type Writer struct {
	mu  sync.Mutex
	w   *bufio.Writer
	enc *json.Encoder
	n   int64
}

// NewWriter writes rejects to w; call Flush at the end.
func NewWriter(w io.Writer) *Writer {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &Writer{w: bw, enc: enc}
}

// Reject writes one rejected reading.
func (w *Writer) Reject(r copyload.Reject) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n++
	raw := rawHead(r.Raw)
	err := w.enc.Encode(Record{
		File: r.Pos.File, Line: r.Pos.Line, Offset: r.Pos.Offset, Path: r.Pos.Path,
		Field: r.Field, Reason: r.Reason, Raw: string(raw),
		RawTruncatedBytes: r.RawCut + int64(len(r.Raw)-len(raw)),
	})
	if err != nil {
		return fmt.Errorf("write reject: %w", err)
	}
	return nil
}

// Flush writes buffered rejects out.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("flush rejects: %w", err)
	}
	return nil
}

// Count is how many rejects were written.
func (w *Writer) Count() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}
