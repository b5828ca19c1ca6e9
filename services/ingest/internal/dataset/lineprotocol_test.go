package dataset_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
)

// lpTS is ts1 (2024-03-07T10:22:07.315194Z) in nanoseconds, and lpUTC the
// rendering of that instant.
const (
	lpTS  = "1709806927315194000"
	lpUTC = "2024-03-07T10:22:07.315194Z"
)

// lpNow is the fixed Now of the tests: it has digits below every precision.
var lpNow = time.Date(2024, 3, 7, 12, 22, 7, 315194789, time.FixedZone("", 7200))

func TestLineProtocol(t *testing.T) {
	long := strings.Repeat("x", 257)
	for _, tc := range []struct {
		name    string
		in      string
		opts    dataset.Options
		want    []string // rendered readings
		rejects []string // "line field reason" of each reject, the reason a substring
	}{
		{
			name: "tags sorted by key",
			in:   "cpu,region=eu,host=a,zone=1 usage=1.5 " + lpTS + "\ncpu,zone=1,host=a,region=eu usage=2 " + lpTS + "\n",
			want: []string{"cpu,host=a,region=eu,zone=1|usage|" + lpUTC + "|numeric|1.5", "cpu,host=a,region=eu,zone=1|usage|" + lpUTC + "|numeric|2"},
		},
		{
			name: "tags sorted in byte order",
			in:   "m,b=1,B=2,a=3,_=4 v=1 " + lpTS,
			want: []string{"m,B=2,_=4,a=3,b=1|v|" + lpUTC + "|numeric|1"},
		},
		{
			name: "no tags",
			in:   "temperature v=21.5 " + lpTS,
			want: []string{"temperature|v|" + lpUTC + "|numeric|21.5"},
		},
		{
			name: "escaping kept exact in the series key",
			in: `we\ ather\,x,lo\,c\=a\ b=v\ 1\,2\=3 f\ k\=1\,2=1 ` + lpTS + "\n" +
				`m=x,t=a\b,u=é f=1 ` + lpTS + "\n" +
				`m,t=a\\,u f=1 ` + lpTS + "\n",
			want: []string{
				`we\ ather\,x,lo\,c\=a\ b=v\ 1\,2\=3|f k=1,2|` + lpUTC + "|numeric|1",
				`m=x,t=a\b,u=é|f|` + lpUTC + "|numeric|1",
				`m,t=a\\,u|f|` + lpUTC + "|numeric|1", // a\\,u is a\ and an escaped comma: the value a\,u
			},
		},
		{
			name: "several fields in the line's order",
			in:   "m,d=1 c=1,a=2,b=3 " + lpTS,
			want: []string{"m,d=1|c|" + lpUTC + "|numeric|1", "m,d=1|a|" + lpUTC + "|numeric|2", "m,d=1|b|" + lpUTC + "|numeric|3"},
		},
		{
			name: "every field type",
			in:   `m f=-1.5e3,g=.25,i=-3i,u=7u,s="he said \"hi\" \\o/",n="a\nb\tc\q",e="",b=t,B=FALSE,c=True ` + lpTS,
			want: []string{
				"m|f|" + lpUTC + "|numeric|-1500", "m|g|" + lpUTC + "|numeric|0.25",
				"m|i|" + lpUTC + "|numeric|-3", "m|u|" + lpUTC + "|numeric|7",
				"m|s|" + lpUTC + `|text|he said "hi" \o/`, "m|n|" + lpUTC + "|text|a\nb\tc\\q", "m|e|" + lpUTC + "|text|",
				"m|b|" + lpUTC + "|text|true", "m|B|" + lpUTC + "|text|false", "m|c|" + lpUTC + "|text|true",
			},
		},
		{
			name: "integers and float64",
			in: "m a=9007199254740992i,b=-9007199254740992i,c=9007199254740993i,d=9223372036854775807i,e=-9223372036854775808i\n" +
				"m a=9007199254740992u,c=9007199254740993u,d=18446744073709551615u,f=4611686018427387904u\n" +
				"m g=99999999999999999999i\nm h=18446744073709551616u\nm j=-1u\nm k=1.5i\n",
			opts: dataset.Options{Now: func() time.Time { return lpNow }},
			want: []string{
				"m|a|" + lpUTC + "|numeric|9.007199254740992e+15", "m|b|" + lpUTC + "|numeric|-9.007199254740992e+15",
				"m|e|" + lpUTC + "|numeric|-9.223372036854776e+18",
				"m|a|" + lpUTC + "|numeric|9.007199254740992e+15", "m|f|" + lpUTC + "|numeric|4.611686018427388e+18",
			},
			rejects: []string{
				`1 value field "c": 9007199254740993i is beyond 2^53 and has no exact float64`, `1 value field "d": 9223372036854775807i is beyond 2^53`,
				`2 value field "c": 9007199254740993u is beyond 2^53`, `2 value field "d": 18446744073709551615u is beyond 2^53`,
				`3 value field "g": 99999999999999999999i is beyond the range of a 64-bit integer`,
				`4 value field "h": 18446744073709551616u is beyond the range of a 64-bit unsigned integer`,
				`5 value field "j": "-1u" is not a 64-bit unsigned integer`, `6 value field "k": "1.5i" is not a 64-bit integer`,
			},
		},
		{
			name: "floats checked as in every format",
			in:   "m a=1e100,b=-1e101,c=1e400,d=-Inf,e=1.2.3,f=0x1p-2 " + lpTS + "\nm v=NaN " + lpTS + "\n",
			want: []string{"m|a|" + lpUTC + "|numeric|1e+100", "m|f|" + lpUTC + "|numeric|0.25"},
			rejects: []string{
				`1 value field "b": -1e101 has a magnitude beyond 1e100`, `1 value field "c": 1e400 is beyond float64 range`,
				`1 value field "d": -Inf is not finite`, `1 value field "e": "1.2.3" is not a number`,
				"2  malformed line protocol at byte 4 of the line: field value has unrecognized type",
			},
		},
		{
			name: "precision s",
			in:   "m v=1 1709806927\nm v=1 -1\nm v=1 253402300799\nm v=1 253402300800\nm v=1 -62135596800\nm v=1 -62135596801\n",
			opts: dataset.Options{Precision: dataset.Second},
			want: []string{
				"m|v|2024-03-07T10:22:07Z|numeric|1", "m|v|1969-12-31T23:59:59Z|numeric|1",
				"m|v|9999-12-31T23:59:59Z|numeric|1", "m|v|0001-01-01T00:00:00Z|numeric|1",
			},
			rejects: []string{`4 timestamp "253402300800": year outside 0001..9999`, `6 timestamp "-62135596801": year outside`},
		},
		{
			name: "precision ms",
			in:   "m v=1 1709806927315\n",
			opts: dataset.Options{Precision: dataset.Millisecond},
			want: []string{"m|v|2024-03-07T10:22:07.315Z|numeric|1"},
		},
		{
			name: "precision us",
			in:   "m v=1 1709806927315194\nm v=1 -1\n",
			opts: dataset.Options{Precision: dataset.Microsecond},
			want: []string{"m|v|" + lpUTC + "|numeric|1", "m|v|1969-12-31T23:59:59.999999Z|numeric|1"},
		},
		{
			name: "precision ns",
			in:   "m v=1 " + lpTS + "\nm v=1 1709806927315194001\nm v=1 0\nm v=1 -1000\nm v=1 9223372036854775807\nm v=1 9223372036854775808\n",
			want: []string{"m|v|" + lpUTC + "|numeric|1", "m|v|1970-01-01T00:00:00Z|numeric|1", "m|v|1969-12-31T23:59:59.999999Z|numeric|1"},
			rejects: []string{
				`2 timestamp "1709806927315194001" has sub-microsecond digits`, `5 timestamp "9223372036854775807" has sub-microsecond digits`,
				`6 timestamp "9223372036854775808" is beyond the range of a 64-bit integer`,
			},
		},
		{
			name:    "bad timestamps",
			in:      "m v=1 12a\nm v=1 1 2\nm v=1 --1\nm v=1 1-\n",
			rejects: []string{"1 timestamp invalid timestamp", "2 timestamp unexpected text after timestamp", `3 timestamp "--1" is not an integer count of nanoseconds`, `4 timestamp "1-" is not an integer`},
		},
		{
			name: "missing timestamp takes Now truncated, ns",
			in:   "m v=1\nm w=2 \n",
			opts: dataset.Options{Now: func() time.Time { return lpNow }},
			want: []string{"m|v|" + lpUTC + "|numeric|1", "m|w|" + lpUTC + "|numeric|2"},
		},
		{
			name: "missing timestamp takes Now truncated, ms",
			in:   "m v=1\nm v=2 1709806927000\n",
			opts: dataset.Options{Precision: dataset.Millisecond, Now: func() time.Time { return lpNow }},
			want: []string{"m|v|2024-03-07T10:22:07.315Z|numeric|1", "m|v|2024-03-07T10:22:07Z|numeric|2"},
		},
		{
			name: "missing timestamp takes Now truncated, s",
			in:   "m v=1",
			opts: dataset.Options{Precision: dataset.Second, Now: func() time.Time { return lpNow }},
			want: []string{"m|v|2024-03-07T10:22:07Z|numeric|1"},
		},
		{
			name:    "an invalid Now rejects the lines without a timestamp",
			in:      "m v=1\nm v=2 " + lpTS + "\n",
			opts:    dataset.Options{Now: func() time.Time { return time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }},
			want:    []string{"m|v|" + lpUTC + "|numeric|2"},
			rejects: []string{`1 timestamp the line has none, and the time given for such lines is invalid: "10000-01-01T00:00:00Z": year outside`},
		},
		{
			name: "blank and comment lines",
			in:   "# a comment\n\n   \n\t\r\n  # indented, with \x01 in it\nm v=1 " + lpTS + "\r\n#m v=2\n",
			want: []string{"m|v|" + lpUTC + "|numeric|1"},
		},
		{
			name:    "duplicate keys",
			in:      "m,t=1,t=2 v=1 " + lpTS + "\nm v=1,w=2,v=3 " + lpTS + "\n",
			want:    []string{"m|v|" + lpUTC + "|numeric|1", "m|w|" + lpUTC + "|numeric|2"},
			rejects: []string{`1 device_id tag key "t" appears twice`, `2 parameter field "v": appears twice in the line`},
		},
		{
			name: "validation as in every format",
			in: "m," + long[:240] + "=abcdefghijklm v=1 " + lpTS + "\n" + // 256 bytes
				"m," + long[:240] + "=abcdefghijklmn v=1 " + lpTS + "\n" + // 257 bytes
				"m " + long[:256] + "=1," + long + "=2 " + lpTS + "\n" +
				"m p\u0085=1,q=\"a\u0000b\",r=\"abcd\",s=\"abcde\" " + lpTS + "\n",
			opts: dataset.Options{MaxTextLen: 4},
			want: []string{
				"m," + long[:240] + "=abcdefghijklm|v|" + lpUTC + "|numeric|1",
				"m|" + long[:256] + "|" + lpUTC + "|numeric|1",
				"m|r|" + lpUTC + "|text|abcd",
			},
			rejects: []string{
				"2 device_id is 257 bytes, longer than the bound of 256",
				`3 parameter field "xxxx` /* quoted, cut */, `4 parameter field "p\u0085": contains the control character`,
				`4 value field "q": text contains NUL`, `4 value field "s": text is 5 bytes, longer than the bound of 4`,
			},
		},
		{
			name: "malformed lines",
			in: "m\nm,t=1\nm v=1,\n m,t v=1\nm v=\"open\nm,=1 v=1\nm v=1x\n\tm v=1\nm\xff v=1\n" +
				"m v=1 " + lpTS + "\n",
			want: []string{"m|v|" + lpUTC + "|numeric|1"},
			rejects: []string{
				"1  malformed line protocol at byte 1 of the line", "2  malformed line protocol at byte 5 of the line: expected field key",
				"3  malformed line protocol at byte 6", "4  malformed line protocol at byte 3 of the line: expected '=' after tag key \"t\"",
				"5  expected closing quote", "6  malformed line protocol at byte 2", `7 value field "v": "1x" is not a number`,
				"8  malformed line protocol at byte 0", "9  invalid utf-8",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Format, tc.opts.File = dataset.LineProtocol, "m.lp"
			res := readAll(t, []byte(tc.in), tc.opts)
			if res.fatal != nil || res.format != dataset.LineProtocol {
				t.Fatalf("format %v, fatal %v", res.format, res.fatal)
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
				if l, _ := strconv.Atoi(line); string(re.Raw) != strings.TrimRight(strings.Split(tc.in, "\n")[l-1], "\r") {
					t.Errorf("reject %d raw %q is not line %d", i, re.Raw, l)
				}
			}
		})
	}
}

// TestLineProtocolPositions mixes bad lines with good ones: every reading
// and reject names the exact line and byte offset of its line, and a bad
// line costs only its own readings.
func TestLineProtocolPositions(t *testing.T) {
	lines := []string{
		"# sensors",
		"cpu,host=a usage=1,idle=99 " + lpTS,
		"",
		"cpu,host=a usage=", // broken
		"  cpu,host=b usage=2 " + lpTS + "\r",
		"cpu,host=b usage=3 12x",
		"cpu,host=c usage=4,big=9007199254740993i,idle=96 " + lpTS,
		"cpu,host=c usage=5i " + lpTS, // last line without newline
	}
	in := strings.Join(lines, "\n")
	res := readAll(t, []byte(in), dataset.Options{Format: dataset.LineProtocol, File: "r.lp"})
	if res.fatal != nil {
		t.Fatal(res.fatal)
	}
	offset := func(line int) int64 { // 1-based
		return int64(len(strings.Join(lines[:line-1], "\n")) + 1)
	}
	want := []string{
		"cpu,host=a|usage|" + lpUTC + "|numeric|1", "cpu,host=a|idle|" + lpUTC + "|numeric|99",
		"cpu,host=b|usage|" + lpUTC + "|numeric|2",
		"cpu,host=c|usage|" + lpUTC + "|numeric|4", "cpu,host=c|idle|" + lpUTC + "|numeric|96",
		"cpu,host=c|usage|" + lpUTC + "|numeric|5",
	}
	if got := renderAll(res.readings); !slices.Equal(got, want) {
		t.Fatalf("readings\n got %q\nwant %q", got, want)
	}
	for i, line := range []int{2, 2, 5, 7, 7, 8} {
		if want := (dataset.Position{File: "r.lp", Line: int64(line), Offset: offset(line)}); res.positions[i] != want {
			t.Errorf("reading %d at %+v, want %+v", i, res.positions[i], want)
		}
	}
	wantRejects := []struct {
		line  int
		field string
	}{{4, ""}, {6, "timestamp"}, {7, "value"}}
	if len(res.rejects) != len(wantRejects) {
		t.Fatalf("rejects %v", res.rejects)
	}
	for i, w := range wantRejects {
		re := res.rejects[i]
		want := dataset.Position{File: "r.lp", Line: int64(w.line), Offset: offset(w.line)}
		if re.Pos != want || re.Field != w.field || string(re.Raw) != lines[w.line-1] || re.RawCut != 0 {
			t.Errorf("reject %d: %v field %q raw %q; want %+v field %q raw %q", i, re, re.Field, re.Raw, want, w.field, lines[w.line-1])
		}
	}
	if s, want := res.rejects[0].Error(), "r.lp:4 (byte "+strconv.FormatInt(offset(4), 10)+"): malformed line protocol at byte 17 of the line: expected field value, found end of input"; s != want {
		t.Errorf("message\n got %q\nwant %q", s, want)
	}
}

func TestLineProtocolLongLine(t *testing.T) {
	huge := `m s="` + strings.Repeat("a", 2<<20) + `" ` + lpTS
	in := "m v=1 " + lpTS + "\n" + huge + "\r\n" + "m v=2 " + lpTS + "\n"
	res := readAll(t, []byte(in), dataset.Options{Format: dataset.LineProtocol})
	if res.fatal != nil || len(res.readings) != 2 || len(res.rejects) != 1 {
		t.Fatalf("readings %q rejects %v fatal %v", renderAll(res.readings), res.rejects, res.fatal)
	}
	re := res.rejects[0]
	if !strings.Contains(re.Reason, "line is "+strconv.Itoa(len(huge))+" bytes, longer than the bound") ||
		re.Pos.Line != 2 || re.Pos.Offset != int64(len(lpTS)+7) || len(re.Raw) > dataset.MaxRawBytes ||
		int64(len(re.Raw))+re.RawCut != int64(len(huge)) || !strings.HasPrefix(huge, string(re.Raw)) {
		t.Errorf("reject %v at %+v with %d raw bytes and %d cut", re, re.Pos, len(re.Raw), re.RawCut)
	}
	if pos := res.positions[1]; pos.Line != 3 || pos.Offset != int64(len(lpTS)+7+len(huge)+2) {
		t.Errorf("reading after the long line at %+v", pos)
	}
	// A line of 50,000 tags and 50,000 fields, within the bound, costs no
	// quadratic time, and its series key is bounded as every id.
	var many strings.Builder
	many.WriteString("m")
	for i := range 50000 {
		many.WriteString(",t" + strconv.Itoa(50000-i) + "=v")
	}
	many.WriteString(" ")
	for i := range 50000 {
		if i > 0 {
			many.WriteString(",")
		}
		many.WriteString("f" + strconv.Itoa(i) + "=1")
	}
	res = readAll(t, []byte(many.String()+"\nm"+many.String()[strings.IndexByte(many.String(), ' '):]), dataset.Options{Format: dataset.LineProtocol})
	if len(res.rejects) != 1 || res.rejects[0].Field != "device_id" || len(res.readings) != 50000 || res.readings[49999].Parameter != "f49999" {
		t.Errorf("lines of 50,000 tags and fields: %d readings, rejects %v", len(res.readings), res.rejects)
	}

	// A long line within the bound is fine: the value is a 100 KiB text.
	ok := `m s="` + strings.Repeat("a", 100<<10) + `"`
	res = readAll(t, []byte(ok), dataset.Options{Format: dataset.LineProtocol, MaxTextLen: 200 << 10})
	if len(res.readings) != 1 || len(res.readings[0].Text) != 100<<10 {
		t.Errorf("long valid line: %v %v", res.rejects, res.fatal)
	}
}

func TestLineProtocolGzip(t *testing.T) {
	plain := "\xef\xbb\xbf# bom and comment\ncpu,host=a usage=1 " + lpTS + "\ncpu,host=a usage=x " + lpTS + "\ncpu,host=a usage=2 " + lpTS + "\n"
	res := readAll(t, gzipped([]byte(plain)), dataset.Options{Format: dataset.LineProtocol})
	if res.fatal != nil || res.format != dataset.LineProtocol {
		t.Fatalf("format %v fatal %v", res.format, res.fatal)
	}
	if got, want := renderAll(res.readings), []string{"cpu,host=a|usage|" + lpUTC + "|numeric|1", "cpu,host=a|usage|" + lpUTC + "|numeric|2"}; !slices.Equal(got, want) {
		t.Errorf("readings %q, want %q", got, want)
	}
	// Offsets count in the inflated stream, the BOM included.
	if len(res.positions) != 2 || res.positions[0] != (dataset.Position{Line: 2, Offset: 21}) {
		t.Errorf("positions %+v", res.positions)
	}
	if len(res.rejects) != 1 || res.rejects[0].Pos.Line != 3 || res.rejects[0].Pos.Offset != int64(21+len("cpu,host=a usage=1 "+lpTS+"\n")) {
		t.Errorf("rejects %v", res.rejects)
	}
	// A bomb is stopped at the bound as in every format.
	bomb := gzipped([]byte("m v=1 " + strings.Repeat(" ", 4<<20)))
	if res := readAll(t, bomb, dataset.Options{Format: dataset.LineProtocol, MaxDecompressedBytes: 1 << 20}); !errors.Is(res.fatal, dataset.ErrDecompressedTooLarge) {
		t.Errorf("bomb: %v", res.fatal)
	}
}

// TestLineProtocolNowOnce checks that Now is read once per Reader, so that
// every line without a timestamp gets the same instant.
func TestLineProtocolNowOnce(t *testing.T) {
	calls := 0
	now := func() time.Time {
		calls++
		return lpNow.Add(time.Duration(calls) * time.Hour)
	}
	res := readAll(t, []byte("m v=1\nm v=2\nm v=3 "+lpTS+"\nm v=4\n"), dataset.Options{Format: dataset.LineProtocol, Now: now})
	if calls != 1 || len(res.readings) != 4 {
		t.Fatalf("Now called %d times, %d readings", calls, len(res.readings))
	}
	at := lpNow.Add(time.Hour).Truncate(time.Microsecond)
	for _, i := range []int{0, 1, 3} {
		if r := res.readings[i]; !r.Time.Equal(at) || r.OffsetMinutes() != 0 {
			t.Errorf("reading %d at %v, want %v in UTC", i, r.Time, at)
		}
	}
	// Without Now, the clock: a reading of this second, in UTC.
	before := time.Now().Truncate(time.Microsecond)
	res = readAll(t, []byte("m v=1"), dataset.Options{Format: dataset.LineProtocol})
	if len(res.readings) != 1 || res.readings[0].Time.Before(before) || res.readings[0].Time.After(time.Now()) {
		t.Errorf("reading %+v, want one of now (%v)", res.readings, before)
	}
}

// TestLineProtocolNotDetected checks that detection keeps to the other
// formats: line protocol is read only when asked for.
func TestLineProtocolNotDetected(t *testing.T) {
	res := readAll(t, []byte("m v=1 "+lpTS+"\n"), dataset.Options{})
	if res.format != dataset.CSV || res.fatal == nil {
		t.Errorf("detected %v (fatal %v), want CSV that lacks its header", res.format, res.fatal)
	}
	res = readAll(t, nil, dataset.Options{Format: dataset.LineProtocol})
	if res.fatal != nil || len(res.readings)+len(res.rejects) > 0 || res.format != dataset.LineProtocol {
		t.Errorf("empty input: %v", res)
	}
}

func TestPrecision(t *testing.T) {
	for in, want := range map[string]dataset.Precision{
		"": dataset.Nanosecond, "ns": dataset.Nanosecond, "us": dataset.Microsecond, "ms": dataset.Millisecond, "s": dataset.Second,
	} {
		got, err := dataset.ParsePrecision(in)
		if err != nil || got != want {
			t.Errorf("ParsePrecision(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"NS", "µs", "u", "h", "m", " s", "1s"} {
		if _, err := dataset.ParsePrecision(in); err == nil {
			t.Errorf("ParsePrecision(%q) succeeded", in)
		}
	}
	for p, d := range map[dataset.Precision]time.Duration{dataset.Nanosecond: time.Nanosecond, dataset.Microsecond: time.Microsecond, dataset.Millisecond: time.Millisecond, dataset.Second: time.Second} {
		var back dataset.Precision
		text, err := p.MarshalText()
		if err != nil || back.UnmarshalText(text) != nil || back != p || p.String() != string(text) || p.Duration() != d {
			t.Errorf("%v does not round-trip through text: %q %v", p, text, err)
		}
	}
	if _, err := dataset.Precision(4).MarshalText(); err == nil {
		t.Error("Precision(4) marshals")
	}
	if _, err := dataset.NewReader(strings.NewReader(""), dataset.Options{Precision: 4}); err == nil {
		t.Error("NewReader accepts Precision(4)")
	}
}

// writeLineProtocol writes n lines of 4 devices with 4 fields each (two
// numeric, two text), one second apart, and returns the bytes written.
func writeLineProtocol(w io.Writer, n int) (int64, error) {
	bw := bufio.NewWriter(w)
	var size int64
	b := make([]byte, 0, 256)
	for i := range n {
		b = append(b[:0], "weather,site=north\\ field,station=st"...)
		b = strconv.AppendInt(b, int64(i%4), 10)
		b = append(b, " temp="...)
		b = strconv.AppendFloat(b, float64(i%400)/10, 'f', -1, 64)
		b = append(b, ",count="...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `i,state="ok",door=f `...)
		b = strconv.AppendInt(b, 1709806927315194000+int64(i/4)*1e9, 10)
		b = append(b, '\n')
		k, err := bw.Write(b)
		size += int64(k)
		if err != nil {
			return size, err
		}
	}
	return size, bw.Flush()
}

func BenchmarkLineProtocol(b *testing.B) {
	var buf bytes.Buffer
	if _, err := writeLineProtocol(&buf, 5000); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var n int
	for b.Loop() {
		r, err := dataset.NewReader(bytes.NewReader(data), dataset.Options{Format: dataset.LineProtocol})
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, _, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "readings/s")
}

// TestLineProtocolStreamingMemory reads line protocol much larger than the
// bound on the heap through a pipe: the Reader must not hold the input.
func TestLineProtocolStreamingMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 30 MB")
	}
	const lines = 300000
	pr, pw := io.Pipe()
	var size int64
	go func() {
		n, err := writeLineProtocol(pw, lines)
		size = n
		pw.CloseWithError(err)
	}()
	r, err := dataset.NewReader(pr, dataset.Options{Format: dataset.LineProtocol})
	if err != nil {
		t.Fatal(err)
	}
	var peak uint64
	var ms runtime.MemStats
	n := 0
	for {
		_, _, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n++; n%50000 == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}
	if n != 4*lines {
		t.Fatalf("%d readings", n)
	}
	if peak > 8<<20 || size < 25<<20 {
		t.Errorf("live heap reached %d bytes reading %d bytes", peak, size)
	}
}
