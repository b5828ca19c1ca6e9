package gen_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
	"github.com/sensorhub/sensorhub/services/ingest/internal/gen"
)

var formats = []dataset.Format{dataset.Reference, dataset.NDJSON, dataset.CSV}

func config(f dataset.Format) gen.Config {
	return gen.Config{
		Seed: 1, Devices: 3, Params: 7, TextShare: 0.3, Points: 50,
		Start:    time.Date(2024, 3, 7, 2, 34, 7, 325831000, time.FixedZone("", 2*3600)),
		Interval: time.Minute, Format: f,
	}
}

func write(t testing.TB, c gen.Config) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := gen.Write(&buf, c)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("Write reported %d bytes, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

func TestDeterministic(t *testing.T) {
	for _, f := range formats {
		a, b := write(t, config(f)), write(t, config(f))
		if !bytes.Equal(a, b) {
			t.Errorf("%v: the same config wrote different bytes", f)
		}
		other := config(f)
		other.Seed = 2
		if bytes.Equal(a, write(t, other)) {
			t.Errorf("%v: seeds 1 and 2 wrote the same bytes", f)
		}
	}
}

// read parses generated output back with package dataset, detecting the format.
func read(t *testing.T, data []byte) (dataset.Format, []dataset.Reading) {
	t.Helper()
	r, err := dataset.NewReader(bytes.NewReader(data), dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out []dataset.Reading
	for {
		rd, _, err := r.Next()
		if err == io.EOF {
			return r.Format(), out
		}
		if err != nil {
			t.Fatalf("generated data does not parse: %v", err)
		}
		out = append(out, rd)
	}
}

func TestParsesBack(t *testing.T) {
	idRE := regexp.MustCompile(`^device\.\d{4}$`)
	paramRE := regexp.MustCompile(`^[A-Za-z]+(\.[A-Za-z0-9]+)*\.p\d{3}$`)
	var first []dataset.Reading
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			c := config(f)
			format, readings := read(t, write(t, c))
			if format != f {
				t.Fatalf("detected %v", format)
			}
			if len(readings) != c.Devices*c.Params*c.Points {
				t.Fatalf("%d readings, want %d", len(readings), c.Devices*c.Params*c.Points)
			}
			nText := int(math.Round(float64(c.Params) * c.TextShare))
			type series struct{ device, param string }
			params := map[string][]string{} // device → parameters in order
			jitter := map[series]time.Duration{}
			depths := map[int]bool{}
			for i, rd := range readings {
				d, rest := i/(c.Params*c.Points), i%(c.Params*c.Points)
				point, p := rest/c.Params, rest%c.Params
				if want := fmt.Sprintf("device.%04d", d+1); rd.DeviceID != want || !idRE.MatchString(rd.DeviceID) {
					t.Fatalf("reading %d of device %q, want %q", i, rd.DeviceID, want)
				}
				if !paramRE.MatchString(rd.Parameter) {
					t.Fatalf("parameter %q", rd.Parameter)
				}
				depths[len(regexp.MustCompile(`\.`).FindAllString(rd.Parameter, -1))] = true
				if point == 0 {
					params[rd.DeviceID] = append(params[rd.DeviceID], rd.Parameter)
				} else if rd.Parameter != params[rd.DeviceID][p] {
					t.Fatalf("reading %d: parameter %q, want the order of the first point", i, rd.Parameter)
				}
				if wantType := map[bool]dataset.ValueType{true: dataset.Text, false: dataset.Numeric}[p < nText]; rd.Type != wantType {
					t.Fatalf("reading %d (param %d) is %v, want %v", i, p, rd.Type, wantType)
				}
				switch rd.Type {
				case dataset.Numeric:
					if rd.Num < 0 || rd.Num >= 1000 {
						t.Fatalf("value %v outside 0..1000", rd.Num)
					}
				case dataset.Text:
					if !regexp.MustCompile(`^[A-Za-z]{1,20}$`).MatchString(rd.Text) {
						t.Fatalf("text %q", rd.Text)
					}
				}
				if rd.OffsetMinutes() != 120 {
					t.Fatalf("offset %d", rd.OffsetMinutes())
				}
				j := rd.Time.Sub(c.Start) - time.Duration(point)*c.Interval
				s := series{rd.DeviceID, rd.Parameter}
				if prev, ok := jitter[s]; ok && prev != j {
					t.Fatalf("series %v jitter changes from %v to %v", s, prev, j)
				}
				jitter[s] = j
				if j < 0 || j >= c.Interval || j%time.Microsecond != 0 {
					t.Fatalf("jitter %v", j)
				}
			}
			if len(jitter) != c.Devices*c.Params || len(depths) < 3 {
				t.Errorf("%d series, parameter depths %v", len(jitter), depths)
			}
			// Every format carries the same readings.
			if first == nil {
				first = readings
			} else if !slices.EqualFunc(first, readings, func(a, b dataset.Reading) bool {
				return a.DeviceID == b.DeviceID && a.Parameter == b.Parameter && a.Time.Equal(b.Time) &&
					a.Type == b.Type && a.Num == b.Num && a.Text == b.Text
			}) {
				t.Errorf("%v readings differ from %v", f, formats[0])
			}
		})
	}
}

func TestEdgeSizes(t *testing.T) {
	for _, f := range formats {
		for _, c := range []gen.Config{
			{Format: f},
			{Devices: 2, Format: f},
			{Devices: 2, Params: 3, Format: f},
			{Devices: 1, Params: 1, Points: 1, TextShare: 1, Format: f},
			{Devices: 12000, Params: 1, Points: 1, Interval: time.Second, Format: f},
		} {
			data := write(t, c)
			_, readings := read(t, data)
			if len(readings) != c.Devices*c.Params*c.Points {
				t.Errorf("%+v: %d readings", c, len(readings))
			}
			if c.Devices == 12000 && readings[11999].DeviceID != "device.12000" {
				t.Errorf("last device %q", readings[11999].DeviceID)
			}
		}
	}
}

func TestInvalidConfig(t *testing.T) {
	ok := config(dataset.NDJSON)
	for name, mutate := range map[string]func(*gen.Config){
		"negative devices":   func(c *gen.Config) { c.Devices = -1 },
		"text share above 1": func(c *gen.Config) { c.TextShare = 1.5 },
		"text share NaN":     func(c *gen.Config) { c.TextShare = math.NaN() },
		"nanosecond start":   func(c *gen.Config) { c.Start = c.Start.Add(1) },
		"nanosecond step":    func(c *gen.Config) { c.Interval = time.Millisecond + 1 },
		"zero interval":      func(c *gen.Config) { c.Interval = 0 },
		"unknown format":     func(c *gen.Config) { c.Format = 9 },
	} {
		c := ok
		mutate(&c)
		if n, err := gen.Write(io.Discard, c); err == nil || n != 0 {
			t.Errorf("%s: wrote %d bytes, err %v", name, n, err)
		}
	}
}

type failingWriter struct{ left int }

var errDiskFull = errors.New("disk full")

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		n := w.left
		w.left = 0
		return n, errDiskFull
	}
	w.left -= len(p)
	return len(p), nil
}

func TestWriteError(t *testing.T) {
	c := config(dataset.CSV)
	c.Points = 5000
	n, err := gen.Write(&failingWriter{left: 300000}, c)
	if !errors.Is(err, errDiskFull) || n != 300000 {
		t.Errorf("Write = %d, %v; want 300000 bytes and the writer's error", n, err)
	}
}

// TestConstantMemory checks allocations do not grow with the number of
// readings, so that 100M readings fit as well as 1,000.
func TestConstantMemory(t *testing.T) {
	for _, f := range formats {
		allocs := func(points int) float64 {
			c := config(f)
			c.Points = points
			return testing.AllocsPerRun(3, func() {
				if _, err := gen.Write(io.Discard, c); err != nil {
					t.Fatal(err)
				}
			})
		}
		if small, large := allocs(10), allocs(2000); large > small {
			t.Errorf("%v: %v allocations for 10 points, %v for 2000", f, small, large)
		}
	}
}

func BenchmarkWrite(b *testing.B) {
	for _, f := range formats {
		b.Run(f.String(), func(b *testing.B) {
			c := config(f)
			c.Devices, c.Params, c.Points, c.TextShare = 10, 17, 1000, 0.47
			n, err := gen.Write(io.Discard, c)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := gen.Write(io.Discard, c); err != nil {
					b.Fatal(err)
				}
			}
			readings := float64(c.Devices*c.Params*c.Points) * float64(b.N)
			b.ReportMetric(readings/b.Elapsed().Seconds(), "readings/s")
		})
	}
}
