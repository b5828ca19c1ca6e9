package dataset_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
	"github.com/sensorhub/sensorhub/services/ingest/internal/gen"
)

// addGenerated seeds a fuzz target with small generated inputs in format f.
func addGenerated(f *testing.F, format dataset.Format) {
	for seed := range 3 {
		var buf bytes.Buffer
		_, err := gen.Write(&buf, gen.Config{
			Seed: uint64(seed), Devices: 2, Params: 3, TextShare: 0.5, Points: 2,
			Start:    time.Date(2024, 3, 7, 2, 34, 7, 325831000, time.FixedZone("", 7200)),
			Interval: time.Minute, Format: format,
		})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
}

// fuzzOptions bound ids and texts tightly so the bounds get exercised.
var fuzzOptions = dataset.Options{MaxIDLen: 16, MaxTextLen: 32, NaiveZone: time.UTC, MaxDecompressedBytes: 1 << 20}

// checkFuzz reads data as format and as detected, checking what holds for
// any input: no panic, Next terminates, accepted readings pass validation
// (readAll), and every record sits where its position says.
func checkFuzz(t *testing.T, data []byte, format dataset.Format) {
	for _, opts := range []dataset.Options{fuzzOptions, {Format: format, MaxDecompressedBytes: 1 << 20}} {
		if opts.Format == dataset.Auto {
			opts.Format = format
		}
		res := readAll(t, data, opts)
		// Whatever the input, messages stay short and raw is bounded.
		if res.fatal != nil && len(res.fatal.Error()) > maxErrorBytes {
			t.Fatalf("fatal error of %d bytes", len(res.fatal.Error()))
		}
		for _, re := range res.rejects {
			if len(re.Error()) > maxErrorBytes || len(re.Raw) > dataset.MaxRawBytes || re.RawCut < 0 {
				t.Fatalf("reject of %d bytes with %d raw bytes (%d cut)", len(re.Error()), len(re.Raw), re.RawCut)
			}
		}
		if bytes.HasPrefix(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), []byte{0x1f, 0x8b}) {
			continue // positions count in the inflated stream
		}
		for i, pos := range res.positions {
			if pos.Offset < 0 || pos.Offset >= int64(len(data)) {
				t.Fatalf("reading %d at %+v outside the input", i, pos)
			}
			if format == dataset.Reference && data[pos.Offset] != '{' {
				t.Fatalf("reading %d at %+v does not start an object", i, pos)
			}
		}
		for _, re := range res.rejects {
			if re.Pos.Offset < 0 || re.Pos.Offset > int64(len(data)) || !bytes.HasPrefix(data[re.Pos.Offset:], re.Raw) {
				t.Fatalf("reject %v: raw %q is not at its offset", re, re.Raw)
			}
		}
	}
	readAll(t, data, dataset.Options{MaxDecompressedBytes: 1 << 20}) // detection
}

func FuzzReference(f *testing.F) {
	addGenerated(f, dataset.Reference)
	f.Add([]byte(refDoc))
	f.Add([]byte(`{"d":[1,{"parameter":"p","timestamp":"2024-03-07T12:22:07Z","value":1e999},[],{"a":1,"a":2}],"e":{},"d":[]}`))
	f.Add([]byte(`{"d\u0000":[{"parameter":"p","timestamp":"2024-03-07T12:22:07.1234567Z","value":"a\u0000"}]} x`))
	f.Add([]byte("\xef\xbb\xbf{\"d\":[{\"parameter\":\"p\xff\",\"timestamp\":\"0000-01-01T00:00:00Z\",\"value\":NaN}"))
	f.Fuzz(func(t *testing.T, data []byte) { checkFuzz(t, data, dataset.Reference) })
}

func FuzzNDJSON(f *testing.F) {
	addGenerated(f, dataset.NDJSON)
	f.Add([]byte("\n" + ndjsonLine("d", "p", ts1, "1") + "\r\n\n{\"device_id\":\n[1]\n" + ndjsonLine("d", "p", "2024-03-07T12:22:07", `"x"`)))
	f.Add([]byte(`{"device_id":"d","parameter":"p","timestamp":"2024-03-07T12:22:07Z","value":"1","type":"numeric","value":2}`))
	f.Fuzz(func(t *testing.T, data []byte) { checkFuzz(t, data, dataset.NDJSON) })
}

func FuzzCSV(f *testing.F) {
	addGenerated(f, dataset.CSV)
	f.Add([]byte("value,timestamp,parameter,device_id\r\n1.5," + ts1 + ",p,d\r\n\"a\nb\",x,p,d\nNaN," + ts1 + ",p,d,extra\n"))
	f.Add([]byte("device_id,parameter,timestamp,value,type\nd,p," + ts1 + ",abc,numeric\nd,\"p\"q," + ts1 + ",1,text\n"))
	f.Fuzz(func(t *testing.T, data []byte) { checkFuzz(t, data, dataset.CSV) })
}
