// Package gen writes deterministic synthetic sensor datasets in the formats
// package dataset reads, so that loaders and queries can be tested and
// benchmarked at any size (up to hundreds of millions of readings) without
// storing the data: the same Config always yields the same bytes.
package gen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
)

// Config describes a synthetic dataset: Devices × Params series of Points
// readings each.
type Config struct {
	// Seed selects the dataset; the same Config gives identical output.
	Seed uint64
	// Devices and Params count the devices and the parameters per device.
	Devices, Params int
	// TextShare is the share of parameters holding text, 0..1; the first
	// round(Params*TextShare) parameters of every device are text.
	TextShare float64
	// Start is the first timestamp; its Location gives the offset written.
	// It must be whole microseconds, as the store keeps no more.
	Start time.Time
	// Interval separates a series' readings (whole microseconds). Each
	// series is shifted by its own jitter in [0, Interval).
	Interval time.Duration
	// Points is the number of readings per series.
	Points int
	// Format is the output format; Auto writes the reference format.
	Format dataset.Format
}

func (c Config) validate() error {
	switch {
	case c.Devices < 0 || c.Params < 0 || c.Points < 0:
		return fmt.Errorf("negative size: %d devices, %d params, %d points", c.Devices, c.Params, c.Points)
	case !(c.TextShare >= 0 && c.TextShare <= 1):
		return fmt.Errorf("text share %v is outside 0..1", c.TextShare)
	case c.Interval < 0 || c.Interval%time.Microsecond != 0:
		return fmt.Errorf("interval %v must be a non-negative whole number of microseconds", c.Interval)
	case c.Interval == 0 && c.Points > 1:
		return errors.New("interval must be positive when a series has more than one point")
	case c.Start.Nanosecond()%1000 != 0:
		return fmt.Errorf("start %v has sub-microsecond digits", c.Start)
	case c.Format > dataset.CSV:
		return fmt.Errorf("unknown format %v", c.Format)
	}
	return nil
}

// Write streams the dataset to w in constant memory (one device's parameter
// names at a time) and returns the number of bytes written. Readings come
// device by device, then by time, then by parameter, in every format.
func Write(w io.Writer, c Config) (n int64, err error) {
	if err := c.validate(); err != nil {
		return 0, fmt.Errorf("gen config: %w", err)
	}
	if c.Format == dataset.Auto {
		c.Format = dataset.Reference
	}
	cw := &countingWriter{w: w}
	bw := bufio.NewWriterSize(cw, 256<<10)
	g := &generator{
		c:       c,
		rng:     rand.New(rand.NewPCG(c.Seed, c.Seed^0x9e3779b97f4a7c15)),
		nText:   int(math.Round(float64(c.Params) * c.TextShare)),
		idWidth: max(4, len(strconv.Itoa(c.Devices))),
		pWidth:  max(3, len(strconv.Itoa(c.Params))),
		params:  make([]string, c.Params),
		jitter:  make([]time.Duration, c.Params),
	}
	if err := g.write(bw); err != nil {
		return cw.n, fmt.Errorf("gen: write: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return cw.n, fmt.Errorf("gen: write: %w", err)
	}
	return cw.n, nil
}

type generator struct {
	c       Config
	rng     *rand.Rand
	nText   int
	idWidth int
	pWidth  int
	params  []string        // names of the current device's parameters
	jitter  []time.Duration // per-series shift of the current device
	buf     []byte
}

func (g *generator) write(bw *bufio.Writer) error {
	c := g.c
	ref := c.Format == dataset.Reference
	switch {
	case c.Format == dataset.CSV:
		bw.WriteString("device_id,parameter,timestamp,value,type\n")
	case ref:
		bw.WriteString("{")
	}
	for d := range c.Devices {
		device := g.device(d)
		if ref {
			if d > 0 {
				bw.WriteString(",")
			}
			g.buf = append(append(append(g.buf[:0], "\n\""...), device...), "\": ["...)
			if _, err := bw.Write(g.buf); err != nil {
				return err
			}
		}
		for i := range c.Points {
			base := c.Start.Add(time.Duration(i) * c.Interval)
			for p := range c.Params {
				g.buf = g.reading(g.buf[:0], device, p, base.Add(g.jitter[p]), i == 0 && p == 0)
				if _, err := bw.Write(g.buf); err != nil {
					return err
				}
			}
		}
		if ref {
			bw.WriteString("\n]")
		}
	}
	if ref {
		bw.WriteString("\n}\n")
	}
	_, err := bw.Write(nil) // reports a sticky write error
	return err
}

// device prepares the names and jitters of device d's series and returns its id.
func (g *generator) device(d int) string {
	id := "device." + pad(d+1, g.idWidth)
	tenant := string(rune('A' + d%4))
	dev := "device" + pad(d+1, g.idWidth)
	for p := range g.c.Params {
		name := "p" + pad(p+1, g.pWidth)
		source := "datasource" + string(rune('A'+p%5))
		// Mixed depths, as real tenants name their parameters.
		switch p % 3 {
		case 0:
			g.params[p] = "tenant" + tenant + "." + dev + "." + source + "." + name
		case 1:
			g.params[p] = "tenant" + tenant + "." + source + "." + name
		default:
			g.params[p] = "parameter." + name
		}
		g.jitter[p] = 0
		if us := uint64(g.c.Interval / time.Microsecond); us > 0 {
			// Derived from the series alone, not the value stream.
			g.jitter[p] = time.Duration(mix(g.c.Seed, uint64(d), uint64(p))%us) * time.Microsecond
		}
	}
	return id
}

// reading appends one reading in the configured format.
func (g *generator) reading(b []byte, device string, p int, t time.Time, first bool) []byte {
	text := p < g.nText
	switch g.c.Format {
	case dataset.CSV:
		b = append(append(b, device...), ',')
		b = append(append(b, g.params[p]...), ',')
		b = append(t.AppendFormat(b, time.RFC3339Nano), ',')
		b = g.value(b, text)
		if text {
			return append(b, ",text\n"...)
		}
		return append(b, ",numeric\n"...)
	case dataset.NDJSON:
		b = append(append(append(b, `{"device_id":"`...), device...), `","parameter":"`...)
	default:
		if !first {
			b = append(b, ',')
		}
		b = append(b, "\n{\"parameter\":\""...)
	}
	b = append(append(b, g.params[p]...), `","timestamp":"`...)
	b = append(t.AppendFormat(b, time.RFC3339Nano), `","value":`...)
	if text {
		b = append(g.value(append(b, '"'), text), `","type":"text"}`...)
	} else {
		b = append(g.value(b, text), `,"type":"numeric"}`...)
	}
	if g.c.Format == dataset.NDJSON {
		b = append(b, '\n')
	}
	return b
}

const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// value appends a random value: 0..1000 at full float64 precision, or 1 to
// 20 ASCII letters.
func (g *generator) value(b []byte, text bool) []byte {
	if !text {
		return strconv.AppendFloat(b, g.rng.Float64()*1000, 'g', -1, 64)
	}
	for n := 1 + g.rng.IntN(20); n > 0; n-- {
		b = append(b, letters[g.rng.IntN(len(letters))])
	}
	return b
}

func pad(v, width int) string {
	s := strconv.Itoa(v)
	for len(s) < width {
		s = "0" + s
	}
	return s
}

// mix hashes a series to its jitter (SplitMix64 finaliser over the inputs).
func mix(seed, d, p uint64) uint64 {
	z := seed ^ d*0x9e3779b97f4a7c15 ^ p*0xbf58476d1ce4e5b9
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
