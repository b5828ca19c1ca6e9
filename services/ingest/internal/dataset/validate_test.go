package dataset_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
)

// jsonCase is one reading written as JSON members. It runs as an NDJSON line
// and, when its device id is a JSON string, as a reading in a reference
// document keyed by that id.
type jsonCase struct {
	name    string
	device  string // raw JSON of device_id; "" leaves the member out
	members string // the other members, raw JSON
	opts    dataset.Options
	want    string // the rendered reading when accepted
	field   string // the field named by the rejection otherwise
	reason  string // a substring of the rejection's reason
	ndjson  bool   // NDJSON only: the case is about the device_id member itself
}

const (
	okTS  = `"timestamp":"2024-03-07T12:22:07.315194+02:00"`
	okNum = `"parameter":"p.x",` + okTS + `,"value":1.5,"type":"numeric"`
)

func jsonCases() []jsonCase {
	long := strings.Repeat("x", 257)
	return []jsonCase{
		// Accepted readings.
		{name: "numeric", device: `"d1"`, members: okNum, want: "d1|p.x|2024-03-07T12:22:07.315194+02:00|numeric|1.5"},
		{name: "text", device: `"d1"`, members: `"parameter":"p.x",` + okTS + `,"value":"on","type":"text"`, want: "d1|p.x|2024-03-07T12:22:07.315194+02:00|text|on"},
		{name: "numeric inferred", device: `"d1"`, members: `"parameter":"p.x",` + okTS + `,"value":-2e3`, want: "d1|p.x|2024-03-07T12:22:07.315194+02:00|numeric|-2000"},
		{name: "text inferred", device: `"d1"`, members: `"parameter":"p.x",` + okTS + `,"value":"12.5"`, want: "d1|p.x|2024-03-07T12:22:07.315194+02:00|text|12.5"},
		{name: "empty text", device: `"d1"`, members: `"parameter":"p.x",` + okTS + `,"value":""`, want: "d1|p.x|2024-03-07T12:22:07.315194+02:00|text|"},
		{name: "member order and unknown members", device: `"d1"`, members: `"extra":{"a":[1,2]},"type":"numeric","value":7,` + okTS + `,"parameter":"p.x","note":null`, want: "d1|p.x|2024-03-07T12:22:07.315194+02:00|numeric|7"},
		{name: "escapes", device: `"d\u00fc1"`, members: `"parameter":"p\u002ex\/y",` + okTS + `,"value":"a\"b\\c\u00e9\ud83d\ude00"`, want: "dü1|p.x/y|2024-03-07T12:22:07.315194+02:00|text|a\"b\\cé😀"},
		{name: "largest accepted magnitude", device: `"d1"`, members: `"parameter":"p.x",` + okTS + `,"value":-1e100`, want: "d1|p.x|2024-03-07T12:22:07.315194+02:00|numeric|-1e+100"},
		{name: "largest float64", device: `"d1"`, members: `"parameter":"p.x",` + okTS + `,"value":1.7976931348623157e308`, field: "value", reason: "magnitude beyond 1e100"},
		{name: "underflow rounds to zero", device: `"d1"`, members: `"parameter":"p.x",` + okTS + `,"value":1e-400`, want: "d1|p.x|2024-03-07T12:22:07.315194+02:00|numeric|0"},
		{name: "UTC", device: `"d1"`, members: `"parameter":"p.x","timestamp":"2024-03-07T12:22:07Z","value":1`, want: "d1|p.x|2024-03-07T12:22:07Z|numeric|1"},
		{name: "negative half-hour offset", device: `"d1"`, members: `"parameter":"p.x","timestamp":"2024-03-07T12:22:07.5-03:30","value":1`, want: "d1|p.x|2024-03-07T12:22:07.5-03:30|numeric|1"},
		{name: "zero nanosecond digits", device: `"d1"`, members: `"parameter":"p.x","timestamp":"2024-03-07T12:22:07.315194000+02:00","value":1`, want: "d1|p.x|2024-03-07T12:22:07.315194+02:00|numeric|1"},
		{name: "year 0001", device: `"d1"`, members: `"parameter":"p.x","timestamp":"0001-01-01T00:00:00Z","value":1`, want: "d1|p.x|0001-01-01T00:00:00Z|numeric|1"},
		{name: "year 9999", device: `"d1"`, members: `"parameter":"p.x","timestamp":"9999-12-31T23:59:59.999999-15:59","value":1`, want: "d1|p.x|9999-12-31T23:59:59.999999-15:59|numeric|1"},
		{name: "naive with zone", device: `"d1"`, members: `"parameter":"p.x","timestamp":"2024-07-01T12:00:00.25","value":1`,
			opts: dataset.Options{NaiveZone: mustZone("Europe/Berlin")}, want: "d1|p.x|2024-07-01T12:00:00.25+02:00|numeric|1"},
		{name: "id at the length bound", device: `"` + long[:256] + `"`, members: okNum, want: long[:256] + "|p.x|2024-03-07T12:22:07.315194+02:00|numeric|1.5"},
		{name: "text at the length bound", device: `"d1"`, members: `"parameter":"p.x",` + okTS + `,"value":"abcd"`, opts: dataset.Options{MaxTextLen: 4}, want: "d1|p.x|2024-03-07T12:22:07.315194+02:00|text|abcd"},

		// device_id
		{name: "device_id missing", members: okNum, field: "device_id", reason: "missing", ndjson: true},
		{name: "device_id null", device: `null`, members: okNum, field: "device_id", reason: "must be a JSON string, not null", ndjson: true},
		{name: "device_id number", device: `17`, members: okNum, field: "device_id", reason: "must be a JSON string, not a number", ndjson: true},
		{name: "device_id empty", device: `""`, members: okNum, field: "device_id", reason: "empty"},
		{name: "device_id too long", device: `"` + long + `"`, members: okNum, field: "device_id", reason: "257 bytes, longer than the bound of 256"},
		{name: "device_id custom bound", device: `"abcdef"`, members: okNum, opts: dataset.Options{MaxIDLen: 5}, field: "device_id", reason: "bound of 5"},
		{name: "device_id C0 control", device: `"d\u0001"`, members: okNum, field: "device_id", reason: "control character"},
		{name: "device_id tab", device: `"d\t1"`, members: okNum, field: "device_id", reason: "control character"},
		{name: "device_id DEL", device: "\"d\x7f\"", members: okNum, field: "device_id", reason: "control character"},
		{name: "device_id C1 control", device: `"d\u0085"`, members: okNum, field: "device_id", reason: "control character"},
		{name: "device_id invalid UTF-8", device: "\"d\xff\"", members: okNum, field: "device_id", reason: "not valid UTF-8"},
		{name: "device_id escaped lone surrogate", device: `"d\ud800"`, members: okNum, field: "device_id", reason: "not valid UTF-8"},

		// parameter
		{name: "parameter missing", device: `"d1"`, members: okTS + `,"value":1`, field: "parameter", reason: "missing"},
		{name: "parameter empty", device: `"d1"`, members: `"parameter":"",` + okTS + `,"value":1`, field: "parameter", reason: "empty"},
		{name: "parameter array", device: `"d1"`, members: `"parameter":["p"],` + okTS + `,"value":1`, field: "parameter", reason: "not an array"},
		{name: "parameter newline", device: `"d1"`, members: `"parameter":"p\nq",` + okTS + `,"value":1`, field: "parameter", reason: "control character"},
		{name: "parameter too long", device: `"d1"`, members: `"parameter":"` + long + `",` + okTS + `,"value":1`, field: "parameter", reason: "longer than the bound"},
		{name: "parameter invalid UTF-8", device: `"d1"`, members: "\"parameter\":\"p\xc3\"," + okTS + ",\"value\":1", field: "parameter", reason: "not valid UTF-8"},

		// timestamp
		{name: "timestamp missing", device: `"d1"`, members: `"parameter":"p.x","value":1`, field: "timestamp", reason: "missing"},
		{name: "timestamp number", device: `"d1"`, members: `"parameter":"p.x","timestamp":1709806927,"value":1`, field: "timestamp", reason: "must be a JSON string, not a number"},
		{name: "timestamp naive", device: `"d1"`, members: `"parameter":"p.x","timestamp":"2024-03-07T12:22:07.315194","value":1`, field: "timestamp", reason: "no UTC offset"},
		{name: "timestamp garbage", device: `"d1"`, members: `"parameter":"p.x","timestamp":"yesterday","value":1`, field: "timestamp", reason: "not an RFC 3339 timestamp"},
		{name: "timestamp space separator", device: `"d1"`, members: `"parameter":"p.x","timestamp":"2024-03-07 12:22:07+02:00","value":1`, field: "timestamp", reason: "not an RFC 3339 timestamp"},
		{name: "timestamp basic offset", device: `"d1"`, members: `"parameter":"p.x","timestamp":"2024-03-07T12:22:07+0200","value":1`, field: "timestamp", reason: "not an RFC 3339 timestamp"},
		{name: "timestamp day out of range", device: `"d1"`, members: `"parameter":"p.x","timestamp":"2024-02-30T12:22:07Z","value":1`, field: "timestamp", reason: "not an RFC 3339 timestamp"},
		{name: "timestamp hour 24", device: `"d1"`, members: `"parameter":"p.x","timestamp":"2024-03-07T24:00:00Z","value":1`, field: "timestamp", reason: "not an RFC 3339 timestamp"},
		{name: "timestamp year 0000", device: `"d1"`, members: `"parameter":"p.x","timestamp":"0000-12-31T12:00:00Z","value":1`, field: "timestamp", reason: "year outside 0001..9999"},
		{name: "timestamp nanoseconds", device: `"d1"`, members: `"parameter":"p.x","timestamp":"2024-03-07T12:22:07.3151941+02:00","value":1`, field: "timestamp", reason: "sub-microsecond digits; PostgreSQL stores microseconds"},
		{name: "timestamp offset beyond PostgreSQL", device: `"d1"`, members: `"parameter":"p.x","timestamp":"2024-03-07T12:22:07+16:00","value":1`, field: "timestamp", reason: "beyond ±15:59"},

		// type
		{name: "type unknown", device: `"d1"`, members: `"parameter":"p.x",` + okTS + `,"value":1,"type":"float"`, field: "type", reason: `must be "numeric" or "text", not "float"`},
		{name: "type case", device: `"d1"`, members: `"parameter":"p.x",` + okTS + `,"value":1,"type":"Numeric"`, field: "type", reason: `not "Numeric"`},
		{name: "type empty", device: `"d1"`, members: `"parameter":"p.x",` + okTS + `,"value":1,"type":""`, field: "type", reason: `not ""`},
		{name: "type null", device: `"d1"`, members: `"parameter":"p.x",` + okTS + `,"value":1,"type":null`, field: "type", reason: "must be a JSON string, not null"},

		// value
		{name: "value missing", device: `"d1"`, members: `"parameter":"p.x",` + okTS, field: "value", reason: "missing"},
		{name: "value null", device: `"d1"`, members: `"parameter":"p.x",` + okTS + `,"value":null`, field: "value", reason: "not null"},
		{name: "value bool", device: `"d1"`, members: `"parameter":"p.x",` + okTS + `,"value":true`, field: "value", reason: "not a boolean"},
		{name: "value object", device: `"d1"`, members: `"parameter":"p.x",` + okTS + `,"value":{"v":1}`, field: "value", reason: "not an object"},
		{name: "value array", device: `"d1"`, members: `"parameter":"p.x",` + okTS + `,"value":[1]`, field: "value", reason: "not an array"},
		{name: "value overflow", device: `"d1"`, members: `"parameter":"p.x",` + okTS + `,"value":1e309`, field: "value", reason: "beyond float64 range"},
		{name: "value negative overflow", device: `"d1"`, members: `"parameter":"p.x",` + okTS + `,"value":-123456789e400`, field: "value", reason: "beyond float64 range"},
		{name: "numeric type with string", device: `"d1"`, members: `"parameter":"p.x",` + okTS + `,"value":"1.5","type":"numeric"`, field: "value", reason: "JSON string but type is numeric"},
		{name: "text type with number", device: `"d1"`, members: `"parameter":"p.x",` + okTS + `,"value":1.5,"type":"text"`, field: "value", reason: "JSON number but type is text"},
		{name: "text with NUL", device: `"d1"`, members: `"parameter":"p.x",` + okTS + `,"value":"a\u0000b"`, field: "value", reason: "NUL"},
		{name: "text invalid UTF-8", device: `"d1"`, members: "\"parameter\":\"p.x\"," + okTS + ",\"value\":\"a\xe2\x82\"", field: "value", reason: "not valid UTF-8"},
		{name: "text too long", device: `"d1"`, members: `"parameter":"p.x",` + okTS + `,"value":"abcde"`, opts: dataset.Options{MaxTextLen: 4}, field: "value", reason: "5 bytes, longer than the bound of 4"},

		// the record as a whole
		{name: "duplicate value", device: `"d1"`, members: okNum + `,"value":2`, field: "value", reason: `duplicate member name "value"`},
		{name: "duplicate unknown member", device: `"d1"`, members: okNum + `,"x":1,"x":2`, field: "x", reason: `duplicate member name "x"`},
		{name: "duplicate device_id", device: `"d1"`, members: `"device_id":"d2",` + okNum, field: "device_id", reason: "duplicate", ndjson: true},
	}
}

// TestValidationNDJSON runs every rule on a reading given as an NDJSON line.
func TestValidationNDJSON(t *testing.T) {
	for _, tc := range jsonCases() {
		t.Run(tc.name, func(t *testing.T) {
			line := "{" + tc.members + "}"
			if tc.device != "" {
				line = `{"device_id":` + tc.device + "," + tc.members + "}"
			}
			tc.opts.Format = dataset.NDJSON
			checkCase(t, tc, line+"\n", line)
		})
	}
}

// TestValidationReference runs the same rules on a reading in a reference
// document, where the device id is the key of its array.
func TestValidationReference(t *testing.T) {
	for _, tc := range jsonCases() {
		if tc.ndjson {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			obj := "{" + tc.members + "}"
			doc := "{" + tc.device + ":[" + obj + "]}"
			tc.opts.Format = dataset.Reference
			checkCase(t, tc, doc, obj)
		})
	}
}

func checkCase(t *testing.T, tc jsonCase, input, raw string) {
	t.Helper()
	res := readAll(t, []byte(input), tc.opts)
	if res.fatal != nil {
		t.Fatalf("fatal error: %v", res.fatal)
	}
	if tc.want != "" {
		if len(res.rejects) > 0 || len(res.readings) != 1 {
			t.Fatalf("got %d readings and rejects %v, want one reading", len(res.readings), res.rejects)
		}
		if got := render(res.readings[0]); got != tc.want {
			t.Errorf("reading\n got %s\nwant %s", got, tc.want)
		}
		return
	}
	if len(res.readings) > 0 || len(res.rejects) != 1 {
		t.Fatalf("got readings %v and %d rejects, want one reject", renderAll(res.readings), len(res.rejects))
	}
	re := res.rejects[0]
	if re.Field != tc.field || !strings.Contains(re.Reason, tc.reason) {
		t.Errorf("rejected %q: %q, want %q: ...%s...", re.Field, re.Reason, tc.field, tc.reason)
	}
	if string(re.Raw) != raw {
		t.Errorf("Raw = %q, want %q", re.Raw, raw)
	}
}

// TestOffsetKept checks the reading keeps its original offset, which the
// store saves beside the instant.
func TestOffsetKept(t *testing.T) {
	for _, tc := range []struct {
		ts   string
		want int16
	}{
		{"2024-03-07T12:22:07.315194+02:00", 120},
		{"2024-03-07T12:22:07Z", 0},
		{"2024-03-07T12:22:07-00:00", 0},
		{"2024-03-07T12:22:07+05:45", 345},
		{"2024-03-07T12:22:07-09:30", -570},
		{"2024-03-07T12:22:07+15:59", 959},
	} {
		line := `{"device_id":"d","parameter":"p","timestamp":"` + tc.ts + `","value":1}`
		res := readAll(t, []byte(line), dataset.Options{})
		if len(res.readings) != 1 {
			t.Fatalf("%s: %v %v", tc.ts, res.rejects, res.fatal)
		}
		r := res.readings[0]
		want, _ := time.Parse(time.RFC3339Nano, tc.ts)
		if r.OffsetMinutes() != tc.want || !r.Time.Equal(want) || r.Time.Format(time.RFC3339Nano) != want.Format(time.RFC3339Nano) {
			t.Errorf("%s: got %v offset %d, want offset %d", tc.ts, r.Time, r.OffsetMinutes(), tc.want)
		}
	}
}

func TestNaiveZoneDST(t *testing.T) {
	// A naive timestamp takes the offset its zone has at that instant.
	berlin := mustZone("Europe/Berlin")
	in := `{"device_id":"d","parameter":"p","timestamp":"2024-01-15T08:00:00","value":1}
{"device_id":"d","parameter":"p","timestamp":"2024-07-15T08:00:00","value":1}
`
	res := readAll(t, []byte(in), dataset.Options{NaiveZone: berlin})
	if len(res.readings) != 2 {
		t.Fatalf("%v %v", res.rejects, res.fatal)
	}
	if a, b := res.readings[0].OffsetMinutes(), res.readings[1].OffsetMinutes(); a != 60 || b != 120 {
		t.Errorf("offsets %d, %d; want 60, 120", a, b)
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]dataset.Format{
		"": dataset.Auto, "auto": dataset.Auto, "reference": dataset.Reference, "JSON": dataset.Reference,
		"ndjson": dataset.NDJSON, "jsonl": dataset.NDJSON, " CSV ": dataset.CSV,
		"line": dataset.LineProtocol, "LineProtocol": dataset.LineProtocol, "line-protocol": dataset.LineProtocol, "Influx": dataset.LineProtocol,
	} {
		got, err := dataset.ParseFormat(in)
		if err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := dataset.ParseFormat("xml"); err == nil {
		t.Error("ParseFormat(xml) succeeded")
	}
	if _, err := dataset.ParseFormat("xml"); err == nil || !strings.Contains(err.Error(), "csv or line") {
		t.Errorf("ParseFormat(xml) error %v does not list line", err)
	}
	for _, f := range []dataset.Format{dataset.Auto, dataset.Reference, dataset.NDJSON, dataset.CSV, dataset.LineProtocol} {
		var back dataset.Format
		text, err := f.MarshalText()
		if err != nil || back.UnmarshalText(text) != nil || back != f || f.String() != string(text) {
			t.Errorf("%v does not round-trip through text: %q %v", f, text, err)
		}
	}
	for in, want := range map[string]dataset.ValueType{"numeric": dataset.Numeric, "text": dataset.Text} {
		if got, err := dataset.ParseValueType(in); err != nil || got != want || got.String() != in {
			t.Errorf("ParseValueType(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := dataset.ParseValueType("Text"); err == nil {
		t.Error("ParseValueType(Text) succeeded")
	}
}

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}
