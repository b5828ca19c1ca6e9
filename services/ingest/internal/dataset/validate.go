package dataset

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// naiveLayout is RFC 3339 without the offset, accepted only with a NaiveZone.
const naiveLayout = "2006-01-02T15:04:05.999999999"

// maxInterned bounds the id cache; past it the cache starts over.
const maxInterned = 1 << 14

// checker validates the fields of readings for one Reader. It caches what
// repeats across readings (ids, zones) so that most readings allocate only
// for their timestamp and text.
type checker struct {
	maxID, maxText int
	naive          *time.Location
	ids            map[string]string // validated ids, shared by all readings that use them
	zones          map[int]*time.Location
	buf            []byte // unquoting scratch
	wire           wireReading
	jsonOpts       jsontext.Options
	src            bytes.Reader      // the record decodeJSON reads
	name           []byte            // scratch: the member name being read
	dec            *jsontext.Decoder // reused for every record
}

func newChecker(o Options) *checker {
	return &checker{
		maxID:    o.MaxIDLen,
		maxText:  o.MaxTextLen,
		naive:    o.NaiveZone,
		ids:      make(map[string]string),
		zones:    make(map[int]*time.Location),
		jsonOpts: jsontext.AllowInvalidUTF8(true), // so invalid UTF-8 is a record error naming its field
	}
}

// fieldError is a rejected field, turned into a RecordError by the parser
// that knows the position.
type fieldError struct {
	field, reason string
}

// reject builds every fieldError, so it bounds what they quote: a field is
// a member name from the input when it is a duplicate, and a reason the
// callers keep short is cut should one not be.
func reject(field, reason string) *fieldError {
	return &fieldError{cutText(field, maxQuoteBytes), cutText(reason, maxReasonBytes)}
}

// id validates a device id or parameter name.
func (c *checker) id(field, s string) (string, *fieldError) {
	if v, ok := c.ids[s]; ok {
		return v, nil
	}
	switch {
	case s == "":
		return "", reject(field, "is empty")
	case len(s) > c.maxID:
		return "", reject(field, "is "+strconv.Itoa(len(s))+" bytes, longer than the bound of "+strconv.Itoa(c.maxID))
	}
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b < 0x20 || b == 0x7f {
				return "", reject(field, "contains the control character "+strconv.QuoteRune(rune(b)))
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return "", reject(field, "is not valid UTF-8 (byte "+strconv.Itoa(i)+")")
		}
		if unicode.IsControl(r) {
			return "", reject(field, "contains the control character "+strconv.QuoteRune(r))
		}
		i += n
	}
	if len(c.ids) >= maxInterned {
		clear(c.ids)
	}
	s = strings.Clone(s) // s may point into a larger record that must not stay alive
	c.ids[s] = s
	return s, nil
}

// idBytes is id for unquoted JSON bytes; a cached id costs no allocation.
func (c *checker) idBytes(field string, b []byte) (string, *fieldError) {
	if v, ok := c.ids[string(b)]; ok {
		return v, nil
	}
	return c.id(field, string(b))
}

// timestamp parses an RFC 3339 timestamp and checks it fits PostgreSQL's
// timestamptz exactly.
func (c *checker) timestamp(s string) (time.Time, *fieldError) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		loc := c.naive
		if loc == nil {
			loc = time.UTC
		}
		nt, nerr := time.ParseInLocation(naiveLayout, s, loc)
		switch {
		case nerr != nil:
			return time.Time{}, reject("timestamp", quote(s)+" is not an RFC 3339 timestamp with a UTC offset, like 2024-03-07T12:22:07.315194+02:00")
		case c.naive == nil:
			return time.Time{}, reject("timestamp", quote(s)+" has no UTC offset (give one, or configure a zone for naive timestamps)")
		}
		t = nt
	}
	return c.instant(t, s)
}

// instant checks that t, written s in the input, fits PostgreSQL's
// timestamptz exactly, and returns it in the fixed zone of its offset. Every
// format's timestamps pass here, so the rules are the same for all.
func (c *checker) instant(t time.Time, s string) (time.Time, *fieldError) {
	if y := t.Year(); y < 1 || y > 9999 {
		return time.Time{}, reject("timestamp", quote(s)+": year outside 0001..9999")
	}
	if t.Nanosecond()%1000 != 0 {
		return time.Time{}, reject("timestamp", quote(s)+" has sub-microsecond digits; PostgreSQL stores microseconds, so they would be lost")
	}
	_, off := t.Zone()
	if off <= -16*3600 || off >= 16*3600 {
		return time.Time{}, reject("timestamp", quote(s)+" has a UTC offset beyond ±15:59, the most PostgreSQL accepts")
	}
	loc, ok := c.zones[off]
	if !ok {
		loc = time.FixedZone("", off)
		c.zones[off] = loc
	}
	return t.In(loc), nil
}

// text validates a text value.
func (c *checker) text(s string) *fieldError {
	switch {
	case len(s) > c.maxText:
		return reject("value", "text is "+strconv.Itoa(len(s))+" bytes, longer than the bound of "+strconv.Itoa(c.maxText))
	case !utf8.ValidString(s):
		return reject("value", "text is not valid UTF-8")
	case strings.IndexByte(s, 0) >= 0:
		return reject("value", "text contains NUL, which PostgreSQL text cannot hold")
	}
	return nil
}

// MaxAbsNumber bounds numeric values. The rollups keep sums of squares
// (to re-aggregate stddev exactly), and a day of readings near float64's
// limit would overflow them; no sensor reads anything near 1e100.
const MaxAbsNumber = 1e100

// number parses a numeric value; JSON numbers are a subset of what
// strconv.ParseFloat accepts.
func number(s string) (float64, *fieldError) {
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return 0, reject("value", excerpt(s)+" is beyond float64 range")
	case err != nil:
		return 0, reject("value", quote(s)+" is not a number")
	}
	return checkNumber(f, s)
}

// checkNumber checks a parsed numeric value, written s in the input, against
// what the store and its rollups hold. Every format's numbers pass here; s is
// read only for the reason of a rejection.
func checkNumber[S ~string | ~[]byte](f float64, s S) (float64, *fieldError) {
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return 0, reject("value", excerpt(string(s))+" is not finite")
	case math.Abs(f) > MaxAbsNumber:
		return 0, reject("value", excerpt(string(s))+" has a magnitude beyond 1e100, which aggregates cannot square without overflow")
	}
	return f, nil
}
