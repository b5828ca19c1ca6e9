package cmdline

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
)

// ParseFlags parses args with fs, whose Usage must print to fs.Output().
// Help asked for with -h goes to stdout, so it can be paged or grepped, and
// the result is flag.ErrHelp; after a bad flag the usage goes to stderr and
// the result wraps usageErr, which the binary maps to exit status 2.
func ParseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer, usageErr error) error {
	var out bytes.Buffer
	fs.SetOutput(&out)
	err := fs.Parse(args)
	fs.SetOutput(stderr)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		_, _ = stdout.Write(out.Bytes())
		return err
	default:
		_, _ = stderr.Write(out.Bytes())
		return fmt.Errorf("%w: %v", usageErr, err)
	}
}
