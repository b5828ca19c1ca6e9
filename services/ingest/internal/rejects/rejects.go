// Package rejects writes rejected readings to an NDJSON file, one object per
// reading with its place and reason, so a user can fix and reload exactly those.
package rejects

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/sensorhub/sensorhub/services/ingest/internal/copyload"
)

// Record is one line of the rejects file.
type Record struct {
	File   string `json:"file"`
	Line   int64  `json:"line,omitempty"`
	Offset int64  `json:"offset"`
	Path   string `json:"path,omitempty"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
	// Raw is the record as it stood in the input, when it could be cut out.
	Raw string `json:"raw,omitempty"`
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
	err := w.enc.Encode(Record{
		File: r.Pos.File, Line: r.Pos.Line, Offset: r.Pos.Offset, Path: r.Pos.Path,
		Field: r.Field, Reason: r.Reason, Raw: string(r.Raw),
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
