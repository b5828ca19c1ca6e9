package rejects_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/sensorhub/sensorhub/services/ingest/internal/copyload"
	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
	"github.com/sensorhub/sensorhub/services/ingest/internal/rejects"
)

// maxLineBytes bounds a line of the rejects file for any input.
const maxLineBytes = 8 << 10

// TestRejectLinesBounded writes the rejects of hostile records, as the loader
// hands them on, and checks that each line is valid JSON below maxLineBytes
// that keeps every field, still names the place, and counts what raw leaves
// out exactly.
func TestRejectLinesBounded(t *testing.T) {
	const ts = `"timestamp":"2024-03-07T12:22:07Z"`
	id := strings.Repeat("€", 100<<10/3)
	deep := `{"device_id":"d","parameter":` + strings.Repeat("[", 10000)
	huge := `"` + strings.Repeat("a", 1<<20) + `"`
	ndID := `{"device_id":"` + id + `","parameter":"p",` + ts + `,"value":1}`
	dup := `{"device_id":"d","` + id + `":1,"` + id + `":2}`
	ctl := `{"device_id":"` + strings.Repeat("\x01", 8<<10) + `"}` // every byte escapes to six
	quotes := `{"device_id":"d","parameter":"p",` + ts + `,"value":"` + strings.Repeat(`\"`, 4<<10) + `","type":"numeric"}`
	small := `{"device_id":"d","parameter":"p",` + ts + `,"value":"x","type":"numeric"}`
	ndGood := `{"device_id":"d","parameter":"p",` + ts + `,"value":1}`
	refReading := `{"parameter":"p",` + ts + `,"value":1}`
	for _, tc := range []struct {
		name   string
		in     string
		record string // the rejected record
		line   int64
		path   string // the head of the path; "" none
	}{
		{"NDJSON nested 10,000 deep", deep + "\n", deep, 1, ""},
		{"NDJSON line that is a 1 MiB string", ndGood + "\n" + huge + "\n", huge, 2, ""},
		{"NDJSON 100 KiB device id", ndID, ndID, 1, ""},
		{"NDJSON duplicate 100 KiB member", dup, dup, 1, ""},
		{"NDJSON control characters", ctl, ctl, 1, ""},
		{"NDJSON escaped quotes", quotes, quotes, 1, ""},
		{"NDJSON small record", small, small, 1, ""},
		{"reference 100 KiB device id", `{"d":[],"` + id + `":[` + refReading + `]}`, refReading, 1, "/€€€"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			w := rejects.NewWriter(&out)
			rd, err := dataset.NewReader(strings.NewReader(tc.in), dataset.Options{File: "in.ndjson"})
			if err != nil {
				t.Fatal(err)
			}
			for {
				_, _, err := rd.Next()
				if err == nil {
					continue
				}
				if errors.Is(err, io.EOF) {
					break
				}
				rec, ok := errors.AsType[*dataset.RecordError](err)
				if !ok {
					t.Fatalf("Next: %v", err)
				}
				// As copyload.Loader hands a reject on.
				r := copyload.Reject{Pos: rec.Pos, Field: rec.Field, Reason: rec.Reason, Raw: rec.Raw, RawCut: rec.RawCut}
				if err := w.Reject(r); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(&out)
			sc.Buffer(nil, 16<<20)
			if !sc.Scan() {
				t.Fatal("no reject written")
			}
			line := sc.Bytes()
			t.Logf("reject line of %d bytes: %.300s", len(line), line)
			if len(line) > maxLineBytes {
				t.Errorf("reject line of %d bytes, want at most %d", len(line), maxLineBytes)
			}
			var fields map[string]any
			if err := json.Unmarshal(line, &fields); err != nil {
				t.Fatalf("reject line is not JSON: %v", err)
			}
			for _, k := range []string{"file", "line", "offset", "reason", "raw"} {
				if _, ok := fields[k]; !ok {
					t.Errorf("reject line lacks %q", k)
				}
			}
			var got rejects.Record
			if err := json.Unmarshal(line, &got); err != nil {
				t.Fatal(err)
			}
			if got.File != "in.ndjson" || got.Line != tc.line || !strings.HasPrefix(got.Path, tc.path) || got.Reason == "" {
				t.Errorf("reject at %s:%d %s (%s), want line %d and a path starting %q", got.File, got.Line, got.Path, got.Reason, tc.line, tc.path)
			}
			if !strings.HasPrefix(tc.record, got.Raw) || int64(len(got.Raw))+got.RawTruncatedBytes != int64(len(tc.record)) {
				t.Errorf("raw of %d bytes and %d truncated; the record has %d", len(got.Raw), got.RawTruncatedBytes, len(tc.record))
			}
			if len(tc.record) <= 100 && got.RawTruncatedBytes != 0 {
				t.Errorf("a small record was cut")
			}
			if sc.Scan() {
				t.Errorf("more than one reject: %.200s", sc.Bytes())
			}
		})
	}
}
