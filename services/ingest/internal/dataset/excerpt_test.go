package dataset_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
)

// maxErrorBytes bounds the text of any error the Reader returns for these
// inputs: a position, a field and a reason that a person reads at a glance.
const maxErrorBytes = 1 << 10

// hostileCase is an input built to make a message quote too much.
type hostileCase struct {
	name   string
	format dataset.Format // Auto unless detection would not see the case
	in     string
	fatal  bool   // the error ends the file; otherwise it rejects record
	record string // the rejected record as it stands in the input
	line   int64  // the line the error must name; 0: none
	path   string // the head of the pointer the error must name; "" none
	cut    string // what the error must say about the cut; "" nothing
}

// hostileCases are documents nested 10,000 deep, a 1 MiB string and 100 KiB
// ids and names in every format and every place a message could quote them.
// The ids are of three-byte runes, so that a cut between bytes would show.
func hostileCases() []hostileCase {
	const ts = `"timestamp":"2024-03-07T12:22:07Z"`
	good := ndjsonLine("d", "p", ts1, "1")
	deep := strings.Repeat("[", 10000)
	id := strings.Repeat("€", 100<<10/3) // 102,399 bytes
	mib := strings.Repeat("a", 1<<20)
	ndDeep := `{"device_id":"d","parameter":` + deep
	ndString := `"` + mib + `"`
	ndTS := `{"device_id":"d","parameter":"p","timestamp":"` + mib[:512<<10] + `","value":1}`
	ndID := `{"device_id":"` + id + `","parameter":"p",` + ts + `,"value":1}`
	ndParam := `{"device_id":"d","parameter":"` + id + `",` + ts + `,"value":1}`
	ndDup := `{"device_id":"d","` + id + `":1,"` + id + `":2}`
	refReading := `{"parameter":"p",` + ts + `,"value":1}`
	refParam := `{"parameter":"` + id + `",` + ts + `,"value":1}`
	csvNum := "d,p," + ts1 + "," + mib + ",numeric"
	lpTime := "m v=1 " + mib[:512<<10]
	lpTag := "m,t=" + id + " v=1"
	lpField := "m " + id + "=1"
	return []hostileCase{
		{name: "reference nested 10,000 deep", in: `{"dev": [{"parameter": ` + deep, fatal: true,
			line: 1, path: "/dev/0/", cut: "more segments)/0/0/0"},
		{name: "reference nested 10,000 deep under a 100 KiB device", in: `{"d":[],"` + id + `":[{"parameter":` + deep, fatal: true,
			line: 1, path: "/€€€€", cut: "more bytes)/0/0/0"},
		{name: "NDJSON nested 10,000 deep", in: good + "\n" + ndDeep + "\n" + good + "\n", record: ndDeep, line: 2},
		{name: "NDJSON line that is a 1 MiB string", in: ndString + "\r\n" + good, format: dataset.NDJSON, record: ndString,
			line: 1, cut: "line is 1048578 bytes"},
		{name: "NDJSON 512 KiB timestamp", in: good + "\n" + ndTS + "\n", record: ndTS, line: 2, cut: `aaaa…" (524,188 more bytes)`},
		{name: "NDJSON 100 KiB device id", in: ndID + "\n", format: dataset.NDJSON, record: ndID, line: 1},
		{name: "NDJSON 100 KiB parameter", in: good + "\n" + ndParam, record: ndParam, line: 2},
		{name: "NDJSON duplicate 100 KiB member", in: good + "\n" + ndDup, record: ndDup, line: 2, cut: "€… (102,300 more bytes)"},
		{name: "reference 100 KiB device id", in: `{"d":[],"` + id + `":[` + refReading + `]}`, record: refReading,
			line: 1, path: "/€€€€", cut: "more bytes)/0"},
		{name: "reference 100 KiB device holding no array", in: `{"d":[],"` + id + `":7}`, line: 1, path: "/€€€€", cut: "more bytes)"},
		{name: "reference fatal after a 100 KiB device", in: `{"d":[],"` + id + "\":[\n" + refReading + ",\nx", fatal: true,
			line: 3, path: "/€€€€", cut: "more bytes)/1"},
		{name: "reference 100 KiB parameter", in: `{"d":[` + refParam + `]}`, record: refParam, line: 1, path: "/d/0"},
		{name: "CSV 1 MiB numeric value", in: "device_id,parameter,timestamp,value,type\n" + csvNum + "\n", record: csvNum,
			line: 2, cut: `aaaa…" (1,048,476 more bytes)`},
		{name: "line protocol 512 KiB timestamp", format: dataset.LineProtocol, in: "m v=1 1709806927315194000\n" + lpTime + "\n", record: lpTime,
			line: 2, cut: "more bytes)"},
		{name: "line protocol 100 KiB tag value", format: dataset.LineProtocol, in: lpTag, record: lpTag, line: 1},
		{name: "line protocol 100 KiB field key", format: dataset.LineProtocol, in: "# c\n" + lpField, record: lpField,
			line: 2, cut: "€…\" (102,300 more bytes)"},
		{name: "CSV 100 KiB column name", in: "device_id,parameter,timestamp,value," + id + "\n", fatal: true,
			line: 1, cut: "€…\" (102,300 more bytes)"},
	}
}

// TestHostileMessagesBounded reads each hostile input and checks that its
// error stays below maxErrorBytes, is valid UTF-8, still names the place
// (line, byte offset, the head of the pointer) and says how much it cut, and
// that a rejected record keeps at most MaxRawBytes of its head and counts
// the rest.
func TestHostileMessagesBounded(t *testing.T) {
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			res := readAll(t, []byte(tc.in), dataset.Options{File: "f", Format: tc.format})
			var err error
			var re *dataset.RecordError
			switch {
			case tc.fatal && res.fatal != nil:
				err = res.fatal
			case !tc.fatal && len(res.rejects) == 1 && res.fatal == nil:
				re = res.rejects[0]
				err = re
			default:
				t.Fatalf("rejects %v, fatal %v; want fatal=%v", res.rejects, res.fatal, tc.fatal)
			}
			for _, re := range res.rejects { // those before a fatal error too
				if n := len(re.Error()); n > maxErrorBytes || len(re.Raw) > dataset.MaxRawBytes {
					t.Errorf("reject of %d bytes with %d raw bytes", n, len(re.Raw))
				}
			}
			msg := err.Error()
			t.Logf("error of %d bytes: %s", len(msg), msg)
			if len(msg) > maxErrorBytes || !utf8.ValidString(msg) {
				t.Errorf("error of %d bytes (valid UTF-8: %v), want at most %d", len(msg), utf8.ValidString(msg), maxErrorBytes)
			}
			var pos dataset.Position
			if fe, ok := errors.AsType[*dataset.FatalError](err); ok {
				pos = fe.Pos
			} else {
				pos = re.Pos
			}
			place := "f"
			if tc.line > 0 {
				place += ":" + strconv.FormatInt(tc.line, 10)
			}
			if !strings.HasPrefix(msg, place+" ") || !strings.Contains(msg, "(byte "+strconv.FormatInt(pos.Offset, 10)+")") {
				t.Errorf("error does not start with %q and name byte %d", place, pos.Offset)
			}
			if !strings.HasPrefix(pos.Path, tc.path) || !strings.Contains(msg, " "+tc.path) {
				t.Errorf("path %.300q, want it to start with %q", pos.Path, tc.path)
			}
			if len(pos.Path) > dataset.MaxPointerBytes || strings.Count(pos.Path, "/") > dataset.MaxPointerSegments {
				t.Errorf("path of %d bytes and %d segments", len(pos.Path), strings.Count(pos.Path, "/"))
			}
			if !strings.Contains(msg, tc.cut) {
				t.Errorf("error does not say %q", tc.cut)
			}
			if re == nil {
				return
			}
			t.Logf("raw: %d bytes kept, %d cut", len(re.Raw), re.RawCut)
			if tc.record != "" && (int64(len(re.Raw))+re.RawCut != int64(len(tc.record)) || !strings.HasPrefix(tc.record, string(re.Raw))) {
				t.Errorf("raw of %d bytes + %d cut is not the record of %d bytes", len(re.Raw), re.RawCut, len(tc.record))
			}
			if len(re.Raw) > dataset.MaxRawBytes || !bytes.HasPrefix([]byte(tc.in[re.Pos.Offset:]), re.Raw) || !utf8.Valid(re.Raw) {
				t.Errorf("raw of %d bytes (valid UTF-8: %v) is not the head of the input at %d", len(re.Raw), utf8.Valid(re.Raw), re.Pos.Offset)
			}
		})
	}
}

func TestCutPointer(t *testing.T) {
	deep := "/dev/0/parameter" + strings.Repeat("/0", 9997)
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"/dev/0/value", "/dev/0/value"},
		{"/a" + strings.Repeat("/0", 15), "/a" + strings.Repeat("/0", 15)},
		{deep, "/dev/0/parameter/0/0/0/0/0/0/0/0/0/… (9,985 more segments)/0/0/0"},
		{"/a" + strings.Repeat("/0", 16), "/a/0/0/0/0/0/0/0/0/0/0/0/… (2 more segments)/0/0/0"},
		{"/a/" + strings.Repeat("x", 200) + "/c", "/a/… (1 more segment)/c"},
		{"/" + strings.Repeat("x", 300) + "/17", "/" + strings.Repeat("x", 103) + "… (197 more bytes)/17"},
		{"/" + strings.Repeat("€", 100) + "/17", "/" + strings.Repeat("€", 34) + "… (198 more bytes)/17"},
		{"/d/0/" + strings.Repeat("y", 300), "/d/0/… (252 more bytes)" + strings.Repeat("y", 48)},
		// Neither cut splits an escape: the head ends before a '~', the tail starts after its digit.
		{"/" + strings.Repeat("ab~1", 80) + "xyz", "/" + strings.Repeat("ab~1", 25) + "ab… (174 more bytes)" + strings.Repeat("ab~1", 11) + "xyz"},
	} {
		got := dataset.CutPointer(tc.in)
		if got != tc.want {
			t.Errorf("CutPointer(%.40q… %d bytes)\n = %q\nwant %q", tc.in, len(tc.in), got, tc.want)
		}
	}
}

// TestCutPointerBounds checks on random pointers that the cut one is within
// the bounds, valid UTF-8, and left as it is by a second cut.
func TestCutPointerBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tokens := []string{"0", "17", "dev", "~0", "~1", "€", strings.Repeat("z", 47), strings.Repeat("€", 40), strings.Repeat("q", 300), ""}
	for range 20000 {
		var b strings.Builder
		for range rng.IntN(40) {
			b.WriteByte('/')
			for range 1 + rng.IntN(2) {
				b.WriteString(tokens[rng.IntN(len(tokens))])
			}
		}
		p := b.String()
		got := dataset.CutPointer(p)
		switch {
		case len(got) > dataset.MaxPointerBytes || strings.Count(got, "/") > dataset.MaxPointerSegments:
			t.Fatalf("CutPointer(%q) = %q: %d bytes, %d segments", p, got, len(got), strings.Count(got, "/"))
		case !utf8.ValidString(got):
			t.Fatalf("CutPointer(%q) = %q: invalid UTF-8", p, got)
		case dataset.CutPointer(got) != got:
			t.Fatalf("CutPointer(%q) = %q, cut again %q", p, got, dataset.CutPointer(got))
		case len(p) <= dataset.MaxPointerBytes && strings.Count(p, "/") <= dataset.MaxPointerSegments && got != p:
			t.Fatalf("CutPointer(%q) = %q, want it whole", p, got)
		case got != p && !strings.Contains(got, " more "):
			t.Fatalf("CutPointer(%q) = %q does not say what it cut", p, got)
		}
	}
}

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"2024-03-07", `"2024-03-07"`},
		{strings.Repeat("a", 100), `"` + strings.Repeat("a", 100) + `"`},
		{strings.Repeat("a", 101), `"` + strings.Repeat("a", 100) + `…" (1 more byte)`},
		{strings.Repeat("€", 1000), `"` + strings.Repeat("€", 33) + `…" (2,901 more bytes)`},
		// Escapes would quadruple it: fewer bytes are quoted.
		{strings.Repeat("\x00", 100), `"` + strings.Repeat(`\x00`, 25) + `…" (75 more bytes)`},
	} {
		if got := dataset.Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%.20q… %d bytes) = %q, want %q", tc.in, len(tc.in), got, tc.want)
		}
	}
}
