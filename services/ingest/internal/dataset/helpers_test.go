package dataset_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
)

// result is everything a Reader yields for one input.
type result struct {
	format    dataset.Format
	readings  []dataset.Reading
	positions []dataset.Position
	rejects   []*dataset.RecordError
	fatal     error // from NewReader or Next; nil when the input ended cleanly
}

// readAll drains a Reader over input, checking the invariants every accepted
// reading and every error must satisfy whatever the input.
func readAll(t testing.TB, input []byte, opts dataset.Options) result {
	t.Helper()
	var res result
	r, err := dataset.NewReader(bytes.NewReader(input), opts)
	if err != nil {
		res.fatal = err
		return res
	}
	res.format = r.Format()
	// Every record consumes at least one byte, so more calls than bytes
	// means Next is stuck.
	limit := int64(len(input)) + 2
	if bytes.HasPrefix(bytes.TrimPrefix(input, []byte("\xef\xbb\xbf")), []byte{0x1f, 0x8b}) {
		limit = opts.MaxDecompressedBytes + 2 // counted in the inflated stream
		if opts.MaxDecompressedBytes == 0 {
			limit = dataset.DefaultMaxDecompressedBytes
		}
	}
	for calls := int64(0); ; calls++ {
		if calls > limit {
			t.Fatalf("Next does not terminate: %d calls on %d bytes", calls, len(input))
		}
		rd, pos, err := r.Next()
		var re *dataset.RecordError
		switch {
		case err == nil:
			checkReading(t, rd, opts)
			res.readings = append(res.readings, rd)
			res.positions = append(res.positions, pos)
		case err == io.EOF:
			if _, _, err := r.Next(); err != io.EOF {
				t.Fatalf("Next after io.EOF = %v, want io.EOF again", err)
			}
			return res
		case errors.As(err, &re):
			if re.Reason == "" {
				t.Fatalf("record error without a reason: %#v", re)
			}
			switch re.Field {
			case "", "device_id", "parameter", "timestamp", "value", "type":
			default:
				// Only a duplicate member may name an unknown member.
				if !strings.Contains(re.Reason, "duplicate") {
					t.Fatalf("record error names field %q: %v", re.Field, re)
				}
			}
			if re.Pos != pos {
				t.Fatalf("record error position %v, Next returned %v", re.Pos, pos)
			}
			res.rejects = append(res.rejects, re)
		default:
			var fe *dataset.FatalError
			if !errors.As(err, &fe) {
				t.Fatalf("Next returned %T %v, want a *FatalError", err, err)
			}
			if _, _, again := r.Next(); again != err {
				t.Fatalf("Next after a fatal error = %v, want the same error %v", again, err)
			}
			res.fatal = err
			return res
		}
	}
}

// checkReading asserts what validation promises about an accepted reading.
func checkReading(t testing.TB, r dataset.Reading, opts dataset.Options) {
	t.Helper()
	maxID, maxText := opts.MaxIDLen, opts.MaxTextLen
	if maxID == 0 {
		maxID = dataset.DefaultMaxIDLen
	}
	if maxText == 0 {
		maxText = dataset.DefaultMaxTextLen
	}
	for _, id := range []string{r.DeviceID, r.Parameter} {
		if id == "" || len(id) > maxID || !utf8.ValidString(id) || strings.IndexFunc(id, unicode.IsControl) >= 0 {
			t.Fatalf("accepted invalid id %q in %+v", id, r)
		}
	}
	if y := r.Time.Year(); y < 1 || y > 9999 || r.Time.Nanosecond()%1000 != 0 {
		t.Fatalf("accepted timestamp %v", r.Time)
	}
	name, off := r.Time.Zone()
	if name != "" || r.Time.Location() == time.UTC || r.Time.Location() == time.Local {
		t.Fatalf("timestamp %v is not in a fixed zone", r.Time)
	}
	if int(r.OffsetMinutes())*60 != off || off%60 != 0 {
		t.Fatalf("OffsetMinutes %d for zone offset %ds", r.OffsetMinutes(), off)
	}
	switch r.Type {
	case dataset.Numeric:
		if math.IsNaN(r.Num) || math.IsInf(r.Num, 0) || r.Text != "" {
			t.Fatalf("accepted numeric reading %+v", r)
		}
	case dataset.Text:
		if len(r.Text) > maxText || !utf8.ValidString(r.Text) || strings.IndexByte(r.Text, 0) >= 0 || r.Num != 0 {
			t.Fatalf("accepted text reading %+v", r)
		}
	default:
		t.Fatalf("accepted reading of type %v", r.Type)
	}
}

// render writes a reading compactly for comparisons in tables.
func render(r dataset.Reading) string {
	v := r.Text
	if r.Type == dataset.Numeric {
		v = strconv.FormatFloat(r.Num, 'g', -1, 64)
	}
	return strings.Join([]string{r.DeviceID, r.Parameter, r.Time.Format(time.RFC3339Nano), r.Type.String(), v}, "|")
}

func renderAll(rs []dataset.Reading) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = render(r)
	}
	return out
}
