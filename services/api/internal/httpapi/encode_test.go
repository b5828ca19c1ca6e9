package httpapi

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/services/api/internal/store"
)

func TestAppendTime(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 10_000 {
		us := r.Int64N(253402300799_000000) - 62135596800_000000 // years 0001..9999 in Unix µs
		if i == 0 {
			us = 0
		}
		tm := time.UnixMicro(us)
		off := int16(r.IntN(2*1439+1) - 1439)
		if i%3 == 0 {
			off = 120
		}
		got := string(appendTime(nil, tm, off))
		want := tm.In(time.FixedZone("", int(off)*60)).Format("2006-01-02T15:04:05.000000Z07:00")
		if got != want {
			t.Fatalf("appendTime(%v, %d) = %s, want %s", tm, off, got, want)
		}
		if back, err := time.Parse(time.RFC3339Nano, got); err != nil || !back.Equal(tm) {
			t.Fatalf("%s does not parse back to %v: %v", got, tm, err)
		}
	}
	ref := time.Date(2024, 3, 7, 10, 22, 7, 315190000, time.UTC)
	if got := string(appendTime(nil, ref, 120)); got != "2024-03-07T12:22:07.315190+02:00" {
		t.Errorf("trailing zero trimmed: %s", got)
	}
}

// TestTimeAppender checks the appender that keeps the last day's date on
// runs of readings as a response has them: steps of a second to two days,
// forwards and backwards, across midnight, New Year and the epoch, with
// offsets that move the local day, and the years outside 0000-9999 that
// fall back to AppendFormat, each against time.Format.
func TestTimeAppender(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	starts := []time.Time{
		time.Date(2024, 12, 31, 23, 59, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 0, 0, 999000, time.UTC),
		time.Date(2024, 3, 31, 0, 30, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 0, 0, 0, time.UTC),
		time.Date(0, 1, 1, 3, 0, 0, 0, time.UTC),
	}
	for _, start := range starts {
		var ta timeAppender
		tm := start
		for range 5000 {
			step := time.Duration(r.Int64N(int64(48*time.Hour)/1000)) * 1000
			if r.IntN(3) == 0 {
				step = -step
			}
			tm = tm.Add(step)
			off := int16(0)
			if r.IntN(2) == 0 {
				off = int16(r.IntN(2*1439+1) - 1439)
			}
			got := string(ta.append(nil, tm, off))
			want := tm.In(time.FixedZone("", int(off)*60)).Format("2006-01-02T15:04:05.000000Z07:00")
			if got != want {
				t.Fatalf("timeAppender(%v, %d) = %s, want %s", tm, off, got, want)
			}
		}
	}
}

// TestAppendJSON checks the hand-written encoders against encoding/json.
func TestAppendJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	floats := []float64{0, -0.0, 1, -1, 0.1, 801.4240531704808, 1e-7, 1.5e-7, 123456789e-15, 1e20, 1e21, 1.7976931348623157e308, 5e-324, 0.07590000000000001}
	for range 10_000 {
		floats = append(floats, math.Float64frombits(r.Uint64()), r.NormFloat64()*math.Pow(10, float64(r.IntN(40)-20)))
	}
	for _, f := range floats {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		want, _ := json.Marshal(f)
		if got := appendFloat(nil, f); !bytes.Equal(got, want) {
			t.Fatalf("appendFloat(%v) = %s, want %s", f, got, want)
		}
	}
	strs := []string{"", "plain", `quo"te`, `back\\slash`, "new\nline\r\t", "\x00\x01\x1f", "<&>", "\u2028\u2029", "ä😀", "bad\xffutf8", strings.Repeat("x", 100)}
	for range 2000 {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		strs = append(strs, string(b))
	}
	for _, s := range strs {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s)
		if got := appendString(nil, s); !bytes.Equal(got, bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want.Bytes())
		}
	}
}

func TestAppendCSVField(t *testing.T) {
	for in, want := range map[string]string{
		"abc": "abc", "": "", "a,b": `"a,b"`, `say "hi"`: `"say ""hi"""`, "two\nlines": "\"two\nlines\"", " pad": `" pad"`,
	} {
		if got := string(appendCSVField(nil, in)); got != want {
			t.Errorf("appendCSVField(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestAppendDevices: the hand-written /v1/devices body is the bytes
// encoding/json (as huma's encoder runs it) writes for the DeviceList.
func TestAppendDevices(t *testing.T) {
	at := func(us int64) *time.Time { v := time.UnixMicro(us).In(time.FixedZone("", 7200)); return &v }
	for _, devices := range [][]store.Device{
		nil,
		{{ID: "d", SeriesCount: 0, ReadingCount: 0}},
		{
			{ID: "device.0001", SeriesCount: 17, ReadingCount: 10_000, FirstTime: at(1709770927315194), LastTime: at(1709800000000001)},
			{ID: `quo"te <&> ä😀 bad\xff`, SeriesCount: 1, ReadingCount: 1 << 40, FirstTime: at(-62135596800_000000), LastTime: at(253402300799_999999)},
			{ID: "no last", SeriesCount: 2, ReadingCount: 3, FirstTime: at(0)},
		},
	} {
		want, err := encodeDevicesJSON(devices)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendDevices(nil, devices); !bytes.Equal(got, want) {
			t.Errorf("appendDevices(%v) =\n%s\nwant\n%s", devices, got, want)
		}
	}
}

// BenchmarkDevicesBody: the /v1/devices body of 64 devices (bench/scale.sh's
// 100M shape), hand-written against encoding/json, which huma ran before.
func BenchmarkDevicesBody(b *testing.B) {
	devices := make([]store.Device, 64)
	for i := range devices {
		first, last := time.UnixMicro(1704067200_000000), time.UnixMicro(1713441000_000000+int64(i))
		devices[i] = store.Device{ID: "device." + strings.Repeat("0", 3) + string(rune('a'+i%26)), SeriesCount: 100, ReadingCount: 1_562_500, FirstTime: &first, LastTime: &last}
	}
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			if _, err := encodeDevicesJSON(devices); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hand-written", func(b *testing.B) {
		buf := make([]byte, 0, 16<<10)
		for b.Loop() {
			buf = appendDevices(buf[:0], devices)
		}
	})
}

// encodeDevicesJSON is the /v1/devices body as huma wrote it before
// appendDevices: encoding/json of the DeviceList, HTML unescaped.
func encodeDevicesJSON(devices []store.Device) ([]byte, error) {
	list := DeviceList{Devices: make([]DeviceItem, 0, len(devices))}
	for _, d := range devices {
		list.Devices = append(list.Devices, DeviceItem{DeviceID: d.ID, SeriesCount: d.SeriesCount, ReadingCount: d.ReadingCount,
			FirstTime: utcTimePtr(d.FirstTime), LastTime: utcTimePtr(d.LastTime)})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(list)
	return buf.Bytes(), err
}
