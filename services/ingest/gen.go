package main

import (
	"bufio"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
	"github.com/sensorhub/sensorhub/services/ingest/internal/gen"
)

func runGen(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ingest gen", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: ingest gen [flags]

Writes a synthetic dataset for ingest load: the same flags always write the
same bytes. Exit status: 0 ok, 1 failure, 2 usage.

Flags:
`)
		fs.PrintDefaults()
	}
	var (
		c      gen.Config
		format string
		start  string
		out    string
	)
	fs.Uint64Var(&c.Seed, "seed", 1, "seed; the same flags always write the same bytes")
	fs.IntVar(&c.Devices, "devices", 2, "number of devices")
	fs.IntVar(&c.Params, "params", 17, "parameters per device")
	fs.Float64Var(&c.TextShare, "text-share", 0.5, "share of text parameters, 0..1")
	fs.DurationVar(&c.Interval, "interval", time.Minute, "time between two readings of a series")
	fs.IntVar(&c.Points, "points", 588, "readings per series")
	fs.StringVar(&start, "start", "2024-03-07T02:34:07.325831+02:00", "first timestamp (RFC 3339; its offset is written)")
	fs.StringVar(&format, "format", "reference", "output format: reference, ndjson or csv")
	fs.StringVar(&out, "o", "-", "output file; - is stdout; a .gz suffix compresses")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: ingest gen takes no arguments, got %q", errUsage, fs.Args())
	}
	var err error
	if c.Format, err = dataset.ParseFormat(format); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if c.Start, err = time.Parse(time.RFC3339Nano, start); err != nil {
		return fmt.Errorf("%w: -start: %v", errUsage, err)
	}

	var (
		w  io.Writer = stdout
		f  *os.File
		zw *gzip.Writer
	)
	if out != "-" {
		if f, err = os.Create(out); err != nil {
			return fmt.Errorf("gen: %w", err)
		}
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	w = bw
	if strings.HasSuffix(out, ".gz") {
		zw = gzip.NewWriter(bw)
		w = zw
	}
	_, err = gen.Write(w, c)
	if zw != nil && err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("gen: %w", err)
	}
	return nil
}
