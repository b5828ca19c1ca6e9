package dataset_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
)

const (
	ts1 = "2024-03-07T12:22:07.315194+02:00"
	ts2 = "2024-03-07T12:23:07.315194+02:00"
)

// ndjsonLine is a valid NDJSON reading.
func ndjsonLine(device, param, ts, value string) string {
	return `{"device_id":"` + device + `","parameter":"` + param + `","timestamp":"` + ts + `","value":` + value + `}`
}

func TestNDJSONPositions(t *testing.T) {
	lines := []string{
		"",
		ndjsonLine("d1", "p", ts1, "1"),
		"   \t",
		`{"device_id":"d1","parameter":"p",`, // broken: costs this line only
		ndjsonLine("d1", "p", ts2, `"x"`) + "\r",
		ndjsonLine("d2", "p", "bad", "1"),
		"[1,2]",
		`{"device_id":"d1","parameter":"p","timestamp":"` + ts1 + `","value":NaN}`,
		ndjsonLine("d2", "q", ts1, "2.5") + " ", // last line without newline
	}
	in := strings.Join(lines, "\n")
	res := readAll(t, []byte(in), dataset.Options{File: "r.ndjson"})
	if res.fatal != nil || res.format != dataset.NDJSON {
		t.Fatalf("format %v, fatal %v", res.format, res.fatal)
	}
	offset := func(line int) int64 { // 1-based
		return int64(len(strings.Join(lines[:line-1], "\n")) + 1)
	}
	wantReadings := []string{"d1|p|" + ts1 + "|numeric|1", "d1|p|" + ts2 + "|text|x", "d2|q|" + ts1 + "|numeric|2.5"}
	if got := renderAll(res.readings); !slices.Equal(got, wantReadings) {
		t.Fatalf("readings\n got %q\nwant %q", got, wantReadings)
	}
	for i, line := range []int{2, 5, 9} {
		want := dataset.Position{File: "r.ndjson", Line: int64(line), Offset: offset(line)}
		if res.positions[i] != want {
			t.Errorf("reading %d at %+v, want %+v", i, res.positions[i], want)
		}
	}
	wantRejects := []struct {
		line  int
		field string
	}{{4, ""}, {6, "timestamp"}, {7, ""}, {8, ""}}
	if len(res.rejects) != len(wantRejects) {
		t.Fatalf("rejects %v", res.rejects)
	}
	for i, w := range wantRejects {
		re := res.rejects[i]
		want := dataset.Position{File: "r.ndjson", Line: int64(w.line), Offset: offset(w.line)}
		if re.Pos != want || re.Field != w.field || string(re.Raw) != lines[w.line-1] {
			t.Errorf("reject %d: %v field %q raw %q; want %+v field %q raw %q", i, re, re.Field, re.Raw, want, w.field, lines[w.line-1])
		}
	}
	if s := res.rejects[0].Error(); s != `r.ndjson:4 (byte `+strconv.FormatInt(offset(4), 10)+`): malformed JSON: unexpected EOF (byte 34 of the record)` {
		t.Errorf("message %q", s)
	}
}

func TestNDJSONLongLine(t *testing.T) {
	huge := `{"device_id":"d","parameter":"p","timestamp":"` + ts1 + `","value":"` + strings.Repeat("a", 2<<20) + `"}`
	in := huge + "\n" + ndjsonLine("d", "p", ts1, "1") + "\n"
	res := readAll(t, []byte(in), dataset.Options{})
	if len(res.rejects) != 1 || len(res.readings) != 1 || res.fatal != nil {
		t.Fatalf("rejects %d readings %d fatal %v", len(res.rejects), len(res.readings), res.fatal)
	}
	if re := res.rejects[0]; !strings.Contains(re.Reason, "longer than the bound") || len(re.Raw) > len(huge) {
		t.Errorf("reject %v with %d raw bytes", re, len(re.Raw))
	}
	if pos := res.positions[0]; pos.Line != 2 || pos.Offset != int64(len(huge)+1) {
		t.Errorf("reading after the long line at %+v", pos)
	}
	// A long line within the bound is fine: the value is a 100 KiB text.
	ok := `{"device_id":"d","parameter":"p","timestamp":"` + ts1 + `","value":"` + strings.Repeat("a", 100<<10) + `"}`
	res = readAll(t, []byte(ok), dataset.Options{MaxTextLen: 200 << 10})
	if len(res.readings) != 1 || len(res.readings[0].Text) != 100<<10 {
		t.Errorf("long valid line: %v %v", res.rejects, res.fatal)
	}
}

func TestCSV(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    []string // rendered readings
		rejects []string // "line field" of each reject
		fatal   string
	}{
		{
			name: "all columns",
			in:   "device_id,parameter,timestamp,value,type\nd1,p,2024-03-07T12:22:07.315194+02:00,1.5,numeric\nd1,q,2024-03-07T12:22:07.315194+02:00,on,text\n",
			want: []string{"d1|p|" + ts1 + "|numeric|1.5", "d1|q|" + ts1 + "|text|on"},
		},
		{
			name: "any column order, no type, CRLF",
			in:   "value,timestamp,parameter,device_id\r\n1.5,2024-03-07T12:22:07.315194+02:00,p,d1\r\nhigh,2024-03-07T12:22:07.315194+02:00,q,d1\r\n",
			want: []string{"d1|p|" + ts1 + "|numeric|1.5", "d1|q|" + ts1 + "|text|high"},
		},
		{
			name: "inference",
			in: "device_id,parameter,timestamp,value\n" +
				"d,a,2024-03-07T12:22:07Z,-1e3\n" +
				"d,b,2024-03-07T12:22:07Z,0x1p-2\n" +
				"d,c,2024-03-07T12:22:07Z,NaN\n" +
				"d,d,2024-03-07T12:22:07Z,Inf\n" +
				"d,e,2024-03-07T12:22:07Z,1e400\n" +
				"d,f,2024-03-07T12:22:07Z, 1\n" +
				"d,g,2024-03-07T12:22:07Z,\n" +
				"d,h,2024-03-07T12:22:07Z,\"1,5\"\n",
			want: []string{
				"d|a|2024-03-07T12:22:07Z|numeric|-1000", "d|b|2024-03-07T12:22:07Z|numeric|0.25",
				"d|c|2024-03-07T12:22:07Z|text|NaN", "d|d|2024-03-07T12:22:07Z|text|Inf",
				"d|e|2024-03-07T12:22:07Z|text|1e400", "d|f|2024-03-07T12:22:07Z|text| 1",
				"d|g|2024-03-07T12:22:07Z|text|", "d|h|2024-03-07T12:22:07Z|text|1,5",
			},
		},
		{
			name: "explicit types",
			in: "device_id,parameter,timestamp,value,type\n" +
				"d,a,2024-03-07T12:22:07Z,1.5,text\n" +
				"d,b,2024-03-07T12:22:07Z,abc,numeric\n" +
				"d,c,2024-03-07T12:22:07Z,NaN,numeric\n" +
				"d,d,2024-03-07T12:22:07Z,1e400,numeric\n" +
				"d,e,2024-03-07T12:22:07Z,2,\n" +
				"d,f,2024-03-07T12:22:07Z,2,float\n" +
				"d,g,2024-03-07T12:22:07Z,\"a\x00b\",text\n",
			want:    []string{"d|a|2024-03-07T12:22:07Z|text|1.5", "d|e|2024-03-07T12:22:07Z|numeric|2"},
			rejects: []string{"3 value not a number", "4 value not finite", "5 value beyond float64 range", "7 type not \"float\"", "8 value NUL"},
		},
		{
			name: "validation",
			in: "device_id,parameter,timestamp,value\n" +
				",p,2024-03-07T12:22:07Z,1\n" +
				"d,,2024-03-07T12:22:07Z,1\n" +
				"d,p,2024-03-07T12:22:07,1\n" +
				"d,p,2024-03-07T12:22:07.0000001Z,1\n" +
				"\"d\n1\",p,2024-03-07T12:22:07Z,1\n" +
				"d\xff,p,2024-03-07T12:22:07Z,1\n" +
				"d,p,2024-03-07T12:22:07Z,\xff\n",
			rejects: []string{"2 device_id empty", "3 parameter empty", "4 timestamp no UTC offset", "5 timestamp sub-microsecond", "6 device_id control character", "8 device_id UTF-8", "9 value UTF-8"},
		},
		{
			name: "broken records cost one record",
			in: "device_id,parameter,timestamp,value\n" +
				"d,p,2024-03-07T12:22:07Z,1,extra\n" +
				"d,p,2024-03-07T12:22:07Z\n" +
				"d,p\"x,2024-03-07T12:22:07Z,1\n" +
				"\n" +
				"d,\"multi\nline\",2024-03-07T12:22:07Z,1\n" +
				"d,p,2024-03-07T12:22:07Z,2\n",
			want:    []string{"d|p|2024-03-07T12:22:07Z|numeric|2"},
			rejects: []string{"2  5 fields, the header has 4", "3  3 fields", "4  bare \"", "6 parameter control character"},
		},
		{name: "header only", in: "device_id,parameter,timestamp,value,type\n"},
		{name: "unknown column", in: "device_id,parameter,timestamp,value,unit\nd,p,2024-03-07T12:22:07Z,1,C\n", fatal: `unknown column "unit"`},
		{name: "missing column", in: "device_id,timestamp\nd,2024-03-07T12:22:07Z\n", fatal: "missing column parameter, value"},
		{name: "duplicate column", in: "device_id,parameter,timestamp,value,value\n", fatal: `column "value" appears twice`},
		{name: "header case", in: "Device_ID,parameter,timestamp,value\n", fatal: `unknown column "Device_ID"`},
		{name: "broken header", in: "device_id,\"parameter,timestamp,value\n", fatal: "CSV header row"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := readAll(t, []byte(tc.in), dataset.Options{Format: dataset.CSV, File: "r.csv"})
			if tc.fatal != "" {
				var fe *dataset.FatalError
				if !errors.As(res.fatal, &fe) || !strings.Contains(res.fatal.Error(), tc.fatal) || fe.Pos.Line != 1 {
					t.Fatalf("fatal = %v, want ...%s... at line 1", res.fatal, tc.fatal)
				}
				return
			}
			if res.fatal != nil {
				t.Fatal(res.fatal)
			}
			if got := renderAll(res.readings); !slices.Equal(got, tc.want) && len(got)+len(tc.want) > 0 {
				t.Errorf("readings\n got %q\nwant %q", got, tc.want)
			}
			if len(res.rejects) != len(tc.rejects) {
				t.Fatalf("rejects %v, want %q", res.rejects, tc.rejects)
			}
			for i, want := range tc.rejects {
				re := res.rejects[i]
				line, rest, _ := strings.Cut(want, " ")
				field, reason, _ := strings.Cut(rest, " ")
				if strconv.FormatInt(re.Pos.Line, 10) != line || re.Field != field || !strings.Contains(re.Reason, reason) {
					t.Errorf("reject %d = %v (field %q), want %q", i, re, re.Field, want)
				}
			}
		})
	}
}

func TestCSVPositionsAndRaw(t *testing.T) {
	rows := []string{
		"device_id,parameter,timestamp,value",
		"d,p,2024-03-07T12:22:07Z,1",
		"",
		"",
		"d,\"p,q\",2024-03-07T12:22:07Z,bad\"quote",
		"d,\"multi",
		"line\",2024-03-07T12:22:07Z,2",
		"d,p,2024-03-07T12:22:07Z",
		"d,p,2024-03-07T12:22:07Z,3",
	}
	in := strings.Join(rows, "\r\n") + "\r\n"
	offset := func(line int) int64 { return int64(len(strings.Join(rows[:line-1], "\r\n")) + 2) }
	res := readAll(t, []byte(in), dataset.Options{File: "r.csv"})
	if res.format != dataset.CSV || res.fatal != nil {
		t.Fatalf("format %v fatal %v", res.format, res.fatal)
	}
	if len(res.readings) != 2 {
		t.Fatalf("readings %q", renderAll(res.readings))
	}
	for i, line := range []int{2, 9} {
		if want := (dataset.Position{File: "r.csv", Line: int64(line), Offset: offset(line)}); res.positions[i] != want {
			t.Errorf("reading %d at %+v, want %+v", i, res.positions[i], want)
		}
	}
	if len(res.rejects) != 3 {
		t.Fatalf("rejects %v", res.rejects)
	}
	for i, tc := range []struct {
		line  int
		field string
		raw   string
	}{
		{5, "", rows[4]},
		{6, "parameter", rows[5] + "\r\n" + rows[6]},
		{8, "", rows[7]},
	} {
		re := res.rejects[i]
		if want := (dataset.Position{File: "r.csv", Line: int64(tc.line), Offset: offset(tc.line)}); re.Pos != want || re.Field != tc.field || string(re.Raw) != tc.raw {
			t.Errorf("reject %d = %v field %q raw %q; want %+v field %q raw %q", i, re, re.Field, re.Raw, want, tc.field, tc.raw)
		}
	}
}

// refDoc is a small pretty-printed reference document.
const refDoc = `{
  "device.foo": [
    {"parameter": "p.a", "timestamp": "2024-03-07T12:22:07.315194+02:00", "value": 1.25, "type": "numeric"},
    {
      "parameter": "p.b",
      "timestamp": "2024-03-07T12:22:07.315194+02:00",
      "value": "on",
      "type": "text"
    }
  ],
  "a/b~c": [
    {"parameter": "p.a", "timestamp": "2024-03-07T12:22:07.315194+02:00", "value": 2}
  ],
  "device.foo": [
    {"parameter": "p.a", "timestamp": "2024-03-07T12:23:07.315194+02:00", "value": 3, "type": "numeric"}
  ],
  "empty": []
}
`

func TestReferencePositions(t *testing.T) {
	res := readAll(t, []byte(refDoc), dataset.Options{File: "ref.json"})
	if res.format != dataset.Reference || res.fatal != nil || len(res.rejects) > 0 {
		t.Fatalf("format %v fatal %v rejects %v", res.format, res.fatal, res.rejects)
	}
	want := []string{
		"device.foo|p.a|" + ts1 + "|numeric|1.25",
		"device.foo|p.b|" + ts1 + "|text|on",
		"a/b~c|p.a|" + ts1 + "|numeric|2",
		"device.foo|p.a|" + ts2 + "|numeric|3",
	}
	if got := renderAll(res.readings); !slices.Equal(got, want) {
		t.Fatalf("readings\n got %q\nwant %q", got, want)
	}
	paths := []string{"/device.foo/0", "/device.foo/1", "/a~1b~0c/0", "/device.foo/0"}
	checkReferencePositions(t, []byte(refDoc), res.positions, paths)
}

// checkReferencePositions checks each position independently: the offset
// starts a JSON object, the line is the count of newlines before it, and the
// pointer is the one given.
func checkReferencePositions(t *testing.T, doc []byte, positions []dataset.Position, paths []string) {
	t.Helper()
	var lines, counted int64 // newlines in doc[:counted]
	for i, pos := range positions {
		if pos.Offset < counted || pos.Offset >= int64(len(doc)) || doc[pos.Offset] != '{' {
			t.Fatalf("position %d %+v does not start an object after the previous one", i, pos)
		}
		lines += int64(bytes.Count(doc[counted:pos.Offset], []byte{'\n'}))
		counted = pos.Offset
		if want := lines + 1; pos.Line != want {
			t.Errorf("position %d line %d, want %d", i, pos.Line, want)
		}
		if pos.Path != paths[i] {
			t.Errorf("position %d path %q, want %q", i, pos.Path, paths[i])
		}
	}
}

func TestReferenceRecordErrors(t *testing.T) {
	doc := `{"d": [1, {"parameter":"p","timestamp":"` + ts1 + `","value":1}, "x", null, [{"a":1}], {"parameter":"p","timestamp":"` + ts1 + `","value":{}}],
"e": {"parameter":"p"},
"f": 5,
"g\u0001": [{"parameter":"p","timestamp":"` + ts1 + `","value":1}, {"parameter":"q","timestamp":"` + ts1 + `","value":2}],
"h": [{"parameter":"p","timestamp":"` + ts1 + `","value":1, "device_id": 7}]
}`
	res := readAll(t, []byte(doc), dataset.Options{})
	if res.fatal != nil {
		t.Fatal(res.fatal)
	}
	if got, want := renderAll(res.readings), []string{"d|p|" + ts1 + "|numeric|1", "h|p|" + ts1 + "|numeric|1"}; !slices.Equal(got, want) {
		t.Errorf("readings %q, want %q", got, want)
	}
	for i, w := range []struct{ path, field, reason, raw string }{
		{"/d/0", "", "must be a JSON object, not a number", "1"},
		{"/d/2", "", "not a string", `"x"`},
		{"/d/3", "", "not null", "null"},
		{"/d/4", "", "not an array", `[{"a":1}]`},
		{"/d/5", "value", "not an object", ""},
		{"/e", "", `readings of device "e" must be a JSON array, not an object`, ""},
		{"/f", "", "not a number", ""},
		{"/g\x01/0", "device_id", "control character", ""},
		{"/g\x01/1", "device_id", "control character", ""},
	} {
		if i >= len(res.rejects) {
			t.Fatalf("only %d rejects: %v", len(res.rejects), res.rejects)
		}
		re := res.rejects[i]
		if re.Pos.Path != w.path || re.Field != w.field || !strings.Contains(re.Reason, w.reason) || (w.raw != "" && string(re.Raw) != w.raw) {
			t.Errorf("reject %d = %v field %q raw %q; want %s %q ...%s... %q", i, re, re.Field, re.Raw, w.path, w.field, w.reason, w.raw)
		}
		if !strings.HasPrefix(doc[re.Pos.Offset:], string(re.Raw)) {
			t.Errorf("reject %d: offset %d does not start its raw record", i, re.Pos.Offset)
		}
	}
	if len(res.rejects) != 9 {
		t.Errorf("%d rejects, want 9", len(res.rejects))
	}
	if off := res.rejects[5].Pos.Offset; !strings.HasPrefix(doc[off:], `{"parameter":"p"}`) {
		t.Errorf("non-array device value at offset %d: %q", off, doc[off:])
	}
}

func TestReferenceFatal(t *testing.T) {
	good := `{"parameter":"p","timestamp":"` + ts1 + `","value":1}`
	for _, tc := range []struct {
		name    string
		doc     string
		opts    dataset.Options
		offset  int64 // -1: len(doc)
		path    string
		line    int64
		reason  string
		reading int // readings before the error
	}{
		{name: "truncated", doc: "{\n\"d\": [\n" + good + ",\n" + good[:30], offset: -1, path: "/d/1/timestamp", line: 4, reason: "unexpected EOF", reading: 1},
		{name: "truncated between readings", doc: `{"d": [` + good + ",", offset: -1, path: "/d", line: 1, reason: "unexpected EOF", reading: 1},
		{name: "NaN literal", doc: `{"d": [` + strings.Replace(good, "1}", "NaN}", 1) + "]}", offset: int64(len(`{"d": [`) + strings.Index(good, "1}")), path: "/d/0/value", line: 1, reason: "invalid character 'N'"},
		{name: "Infinity literal", doc: "{\"d\": [" + good + ",\n" + strings.Replace(good, "1}", "-Infinity}", 1) + "]}", path: "/d/1/value", line: 2, reason: "invalid character 'I'", reading: 1, offset: int64(len(`{"d": [`+good+",\n") + strings.Index(good, "1}") + 1)},
		{name: "missing comma", doc: `{"d": [` + good + good + "]}", offset: int64(len(`{"d": [` + good)), path: "/d", line: 1, reason: "after array element", reading: 1},
		{name: "trailing data", doc: `{"d": [` + good + "]} {}", offset: int64(len(`{"d": [` + good + "]} ")), line: 1, reason: "data after the end", reading: 1},
		{name: "trailing garbage", doc: `{"d": [` + good + "]} x", offset: int64(len(`{"d": [` + good + "]} ")), line: 1, reason: "invalid character 'x'", reading: 1},
		{name: "not an object", doc: `[` + good + "]", opts: dataset.Options{Format: dataset.Reference}, offset: 1, reason: "must be a JSON object keyed by device id"},
		{name: "numeric key", doc: `{1: []}`, opts: dataset.Options{Format: dataset.Reference}, offset: 1, line: 1, reason: "object member name must be a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.File = "ref.json"
			res := readAll(t, []byte(tc.doc), tc.opts)
			var fe *dataset.FatalError
			if !errors.As(res.fatal, &fe) {
				t.Fatalf("got %v, want a fatal error", res.fatal)
			}
			if tc.offset < 0 {
				tc.offset = int64(len(tc.doc))
			}
			if fe.Pos.Offset != tc.offset || fe.Pos.Path != tc.path || (tc.line != 0 && fe.Pos.Line != tc.line) || !strings.Contains(fe.Error(), tc.reason) {
				t.Errorf("fatal %v at %+v; want offset %d path %q line %d ...%s...", fe, fe.Pos, tc.offset, tc.path, tc.line, tc.reason)
			}
			if len(res.readings) != tc.reading {
				t.Errorf("%d readings before the error, want %d", len(res.readings), tc.reading)
			}
			if tc.reason == "unexpected EOF" && !errors.Is(res.fatal, io.ErrUnexpectedEOF) {
				t.Errorf("%v is not io.ErrUnexpectedEOF", res.fatal)
			}
			if _, ok := errors.AsType[*jsontext.SyntacticError](res.fatal); !ok && !strings.Contains(tc.reason, "data after") && !strings.Contains(tc.reason, "must be") {
				t.Errorf("%v does not wrap the syntactic error", res.fatal)
			}
		})
	}
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func TestDetection(t *testing.T) {
	bom := "\xef\xbb\xbf"
	nd := ndjsonLine("d", "p", ts1, "1") + "\n" + ndjsonLine("d", "p", ts2, "2") + "\n"
	csvIn := "device_id,parameter,timestamp,value\nd,p," + ts1 + ",1\nd,p," + ts2 + ",2\n"
	ref := `{"d":[{"parameter":"p","timestamp":"` + ts1 + `","value":1},{"parameter":"p","timestamp":"` + ts2 + `","value":2}]}`
	long := strings.Repeat(" ", 100<<10) + "\n"
	for _, tc := range []struct {
		name   string
		in     []byte
		opts   dataset.Options
		format dataset.Format
		n      int
		first  dataset.Position // position of the first reading, when set
	}{
		{name: "reference", in: []byte(ref), format: dataset.Reference, n: 2},
		{name: "reference with space", in: []byte(" \n\t{ \n \"d\" \n : \r\n [" + ref[6:]), format: dataset.Reference, n: 2},
		{name: "reference escaped key", in: []byte(`{"a\"b\\":[` + ref[6:]), format: dataset.Reference, n: 2},
		{name: "reference empty array first", in: []byte(`{"x":[],` + ref[1:]), format: dataset.Reference, n: 2},
		{name: "ndjson", in: []byte(nd), format: dataset.NDJSON, n: 2},
		{name: "ndjson object first member", in: []byte(`{"meta":{"a":[]},` + nd[1:]), format: dataset.NDJSON, n: 2},
		{name: "csv", in: []byte(csvIn), format: dataset.CSV, n: 2},
		{name: "bom reference", in: []byte(bom + ref), format: dataset.Reference, n: 2, first: dataset.Position{Line: 1, Offset: 3 + 6, Path: "/d/0"}},
		{name: "bom ndjson", in: []byte(bom + nd), format: dataset.NDJSON, n: 2, first: dataset.Position{Line: 1, Offset: 3}},
		{name: "bom csv", in: []byte(bom + csvIn), format: dataset.CSV, n: 2, first: dataset.Position{Line: 2, Offset: 3 + 36}},
		{name: "gzip reference", in: gzipped([]byte(ref)), format: dataset.Reference, n: 2, first: dataset.Position{Line: 1, Offset: 6, Path: "/d/0"}},
		{name: "gzip ndjson", in: gzipped([]byte(nd)), format: dataset.NDJSON, n: 2},
		{name: "gzip csv with bom", in: gzipped([]byte(bom + csvIn)), format: dataset.CSV, n: 2, first: dataset.Position{Line: 2, Offset: 3 + 36}},
		{name: "concatenated gzip members", in: append(gzipped([]byte(nd)), gzipped([]byte(nd))...), format: dataset.NDJSON, n: 4},
		{name: "forced ndjson", in: []byte(nd), opts: dataset.Options{Format: dataset.NDJSON}, format: dataset.NDJSON, n: 2},
		{name: "forced csv", in: []byte(csvIn), opts: dataset.Options{Format: dataset.CSV}, format: dataset.CSV, n: 2},
		{name: "leading whitespace beyond the buffer", in: []byte(long + nd), format: dataset.NDJSON, n: 2, first: dataset.Position{Line: 2, Offset: int64(len(long))}},
		{name: "empty", in: nil, format: dataset.Auto},
		{name: "whitespace only", in: []byte(" \n\r\n\t"), format: dataset.Auto},
		{name: "empty gzip", in: gzipped(nil), format: dataset.Auto},
		{name: "empty forced", in: nil, opts: dataset.Options{Format: dataset.CSV}, format: dataset.CSV},
		{name: "empty reference", in: []byte("{}"), opts: dataset.Options{Format: dataset.Reference}, format: dataset.Reference},
		{name: "empty reference detected", in: []byte(" {\n}\n"), format: dataset.Reference},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := readAll(t, tc.in, tc.opts)
			if res.fatal != nil || len(res.rejects) > 0 {
				t.Fatalf("fatal %v rejects %v", res.fatal, res.rejects)
			}
			if res.format != tc.format || len(res.readings) != tc.n {
				t.Errorf("format %v with %d readings, want %v with %d", res.format, len(res.readings), tc.format, tc.n)
			}
			if tc.first != (dataset.Position{}) && res.positions[0] != tc.first {
				t.Errorf("first reading at %+v, want %+v", res.positions[0], tc.first)
			}
		})
	}
}

func TestEmptyObjectThenNDJSON(t *testing.T) {
	res := readAll(t, []byte("{}\n"+ndjsonLine("d", "p", ts1, "1")), dataset.Options{})
	if res.format != dataset.NDJSON || len(res.readings) != 1 || len(res.rejects) != 1 || res.rejects[0].Field != "device_id" {
		t.Errorf("format %v, %d readings, rejects %v", res.format, len(res.readings), res.rejects)
	}
}

func TestForcedFormatMismatch(t *testing.T) {
	csvIn := "device_id,parameter,timestamp,value\nd,p," + ts1 + ",1\n"
	res := readAll(t, []byte(csvIn), dataset.Options{Format: dataset.Reference})
	if _, ok := errors.AsType[*dataset.FatalError](res.fatal); !ok {
		t.Errorf("CSV read as reference: %v", res.fatal)
	}
	res = readAll(t, []byte(csvIn), dataset.Options{Format: dataset.NDJSON})
	if res.fatal != nil || len(res.rejects) != 2 {
		t.Errorf("CSV read as NDJSON: every line is a reject; got %v %v", res.rejects, res.fatal)
	}
}

func TestDecompressionBound(t *testing.T) {
	var nd strings.Builder
	for i := range 100 {
		nd.WriteString(ndjsonLine("d", "p"+strconv.Itoa(i), ts1, "1") + "\n")
	}
	plain := []byte(nd.String())
	zipped := gzipped(plain)

	res := readAll(t, zipped, dataset.Options{MaxDecompressedBytes: int64(len(plain))})
	if res.fatal != nil || len(res.readings) != 100 {
		t.Errorf("input of exactly the bound: %d readings, %v", len(res.readings), res.fatal)
	}
	res = readAll(t, zipped, dataset.Options{MaxDecompressedBytes: int64(len(plain)) - 1, File: "big.gz"})
	if !errors.Is(res.fatal, dataset.ErrDecompressedTooLarge) || !strings.Contains(res.fatal.Error(), strconv.Itoa(len(plain)-1)+" bytes") ||
		!strings.HasPrefix(res.fatal.Error(), "big.gz:") {
		t.Errorf("input beyond the bound: %v", res.fatal)
	}
	if len(res.readings) != 99 {
		t.Errorf("%d readings before the bound, want 99", len(res.readings))
	}

	// A bomb: 64 MiB of "{" and spaces in 64 KiB is stopped at the bound,
	// whichever parser reads it.
	bomb := gzipped(append([]byte{'{'}, bytes.Repeat([]byte{' '}, 64<<20)...))
	for _, f := range []dataset.Format{dataset.Reference, dataset.NDJSON, dataset.CSV} {
		res = readAll(t, bomb, dataset.Options{Format: f, MaxDecompressedBytes: 1 << 20})
		if !errors.Is(res.fatal, dataset.ErrDecompressedTooLarge) {
			t.Errorf("%v bomb: %v", f, res.fatal)
		}
	}

	// A truncated gzip stream is a fatal error, not a silent end.
	res = readAll(t, zipped[:len(zipped)/2], dataset.Options{})
	if res.fatal == nil || !errors.Is(res.fatal, io.ErrUnexpectedEOF) {
		t.Errorf("truncated gzip: %v", res.fatal)
	}
}
