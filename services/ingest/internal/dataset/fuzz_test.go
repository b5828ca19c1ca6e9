package dataset_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

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

func FuzzLineProtocol(f *testing.F) {
	for _, seed := range []string{
		"cpu,region=eu,host=a usage=1.5,idle=98i,up=t,note=\"a \\\"b\\\"\" " + lpTS + "\n# c\n\ncpu usage=2u\r\n",
		`we\ ather\,x,lo\,c\=a\ b=v\ 1\,2\=3,t=a\\,u f\ k\=1\,2=1,g=-1e3 ` + lpTS + "\nm=x,t=a\\b f=\"\"",
		"m a=9007199254740993i,b=18446744073709551615u,c=1e101,d=-Inf,e=1x,a=2 1709806927315194001\nm,t=1,t=2 v=1\n",
		"m v=\"open\nm,=1 v=1\n\tm v=1\nm\xff v=1\nm v=1 12a\nm v=1 1 2\nm v=1 -62135596801\n  m v=1 0 \n",
		"\xef\xbb\xbfm v=1\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFuzz(t, data, dataset.LineProtocol)
		checkLineProtocol(t, data)
	})
}

// checkLineProtocol checks what holds for line protocol whatever the input:
// every reading and reject sits at the start of its line and names that
// line; a reject's Raw is the line (or its head, with the rest counted); a
// line costs either one reject or one reading or reject per field; the
// device id parses back into the line's measurement and sorted tags; and an
// accepted reading written as NDJSON passes the same checks unchanged.
func checkLineProtocol(t *testing.T, data []byte) {
	start := 0
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		start = 3
	}
	if bytes.HasPrefix(data[start:], []byte{0x1f, 0x8b}) {
		return // positions count in the inflated stream
	}
	opts := dataset.Options{Format: dataset.LineProtocol, MaxIDLen: 16, MaxTextLen: 32, Now: func() time.Time { return lpNow }}
	res := readAll(t, data, opts)
	if res.fatal != nil {
		t.Fatalf("fatal error on line protocol: %v", res.fatal)
	}
	// The lines as the reader splits them, by offset.
	lines := map[int64][]byte{}
	for off := start; off < len(data); {
		end := bytes.IndexByte(data[off:], '\n')
		next := off + end + 1
		if end < 0 {
			end, next = len(data)-off, len(data)
		}
		lines[int64(off)] = bytes.TrimRight(data[off:off+end], "\r\n")
		off = next
	}
	lineAt := func(what string, pos dataset.Position) []byte {
		line, ok := lines[pos.Offset]
		if !ok {
			t.Fatalf("%s at %+v: not the start of a line", what, pos)
		}
		if want := int64(bytes.Count(data[:pos.Offset], []byte{'\n'})) + 1; pos.Line != want {
			t.Fatalf("%s at %+v: line %d, want %d", what, pos, pos.Line, want)
		}
		return line
	}
	type outcome struct{ readings, rejects, lineRejects int }
	outcomes := map[int64]*outcome{}
	count := func(off int64) *outcome {
		if outcomes[off] == nil {
			outcomes[off] = &outcome{}
		}
		return outcomes[off]
	}
	for _, re := range res.rejects {
		line := lineAt("reject", re.Pos)
		if !bytes.HasPrefix(line, re.Raw) || int64(len(re.Raw))+re.RawCut != int64(len(line)) {
			t.Fatalf("reject %v: raw %q (%d cut) is not the line %q", re, re.Raw, re.RawCut, line)
		}
		o := count(re.Pos.Offset)
		o.rejects++
		if !strings.HasPrefix(re.Reason, "field ") {
			o.lineRejects++
		}
	}
	for i, r := range res.readings {
		line := lineAt("reading", res.positions[i])
		count(res.positions[i].Offset).readings++
		// The device id is the line's series key, exactly: it parses back
		// into the measurement and the tags of the line, sorted.
		m, tags, _, err := decodeLine(line)
		if err != nil {
			t.Fatalf("reading %s from line %q that does not parse: %v", render(r), line, err)
		}
		slices.SortStableFunc(tags, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
		idM, idTags, _, err := decodeLine([]byte(r.DeviceID + " f=1"))
		if err != nil || idM != m || !slices.Equal(idTags, tags) {
			t.Fatalf("device id %q reads back as %q %q (%v), the line %q has %q %q", r.DeviceID, idM, idTags, err, line, m, tags)
		}
		// The same reading as NDJSON passes the same checks unchanged.
		rec := map[string]any{"device_id": r.DeviceID, "parameter": r.Parameter, "timestamp": r.Time.Format(time.RFC3339Nano), "type": r.Type.String()}
		if r.Type == dataset.Numeric {
			rec["value"] = r.Num
		} else {
			rec["value"] = r.Text
		}
		js, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		again := readAll(t, js, dataset.Options{Format: dataset.NDJSON, MaxIDLen: opts.MaxIDLen, MaxTextLen: opts.MaxTextLen})
		if len(again.readings) != 1 || render(again.readings[0]) != render(r) {
			t.Fatalf("reading %s as NDJSON %s: %q %v", render(r), js, renderAll(again.readings), again.rejects)
		}
	}
	// A line costs one reject as a whole, or gives a reading or a reject
	// for each of its fields: no field is lost or made up.
	for off, o := range outcomes {
		_, _, fields, err := decodeLine(lines[off])
		switch {
		case err != nil && (o.readings > 0 || o.rejects != 1):
			t.Fatalf("line %q that does not parse (%v): %d readings, %d rejects", lines[off], err, o.readings, o.rejects)
		case o.lineRejects > 0 && (o.lineRejects != 1 || o.rejects != 1 || o.readings > 0):
			t.Fatalf("line %q rejected whole: %d readings, %d rejects", lines[off], o.readings, o.rejects)
		case err == nil && o.lineRejects == 0 && o.readings+o.rejects != fields:
			t.Fatalf("line %q of %d fields: %d readings, %d rejects", lines[off], fields, o.readings, o.rejects)
		}
	}
}

// decodeLine decodes one line with the library alone: its measurement, its
// tags in the order of the line and its number of fields.
func decodeLine(line []byte) (m string, tags [][2]string, fields int, err error) {
	dec := lineprotocol.NewDecoderWithBytes(line)
	if !dec.Next() {
		return "", nil, 0, errors.New("no point")
	}
	mb, err := dec.Measurement()
	if err != nil {
		return "", nil, 0, err
	}
	for {
		k, v, err := dec.NextTag()
		if err != nil {
			return "", nil, 0, err
		}
		if k == nil {
			break
		}
		tags = append(tags, [2]string{string(k), string(v)})
	}
	for {
		k, _, _, err := dec.NextFieldBytes()
		if err != nil {
			return "", nil, 0, err
		}
		if k == nil {
			break
		}
		fields++
	}
	if _, err := dec.TimeBytes(); err != nil {
		return "", nil, 0, err
	}
	return string(mb), tags, fields, nil
}
