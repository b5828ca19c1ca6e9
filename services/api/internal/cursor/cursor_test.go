package cursor

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	from := time.Date(2024, 3, 7, 0, 0, 0, 0, time.UTC)
	c := NewCodec([]byte("0123456789abcdef0123456789abcdef"))
	in := Position{SeriesID: 7, Last: time.Date(2024, 3, 7, 10, 22, 7, 315194000, time.UTC), Desc: true, From: &from}
	got, err := c.Decode(c.Encode(in))
	if err != nil {
		t.Fatal(err)
	}
	if got.SeriesID != 7 || !got.Last.Equal(in.Last) || !got.Desc || got.From == nil || !got.From.Equal(from) || got.To != nil {
		t.Fatalf("round trip: got %+v, want %+v", got, in)
	}
}

func TestRejects(t *testing.T) {
	c := NewCodec([]byte("key one"))
	good := c.Encode(Position{SeriesID: 1, Last: time.Unix(1, 0)})
	body, sig, _ := strings.Cut(good, ".")
	flipped := []byte(body)
	flipped[3] ^= 1
	for name, s := range map[string]string{
		"empty":       "",
		"no dot":      body,
		"bad base64":  "!!!." + sig,
		"altered":     string(flipped) + "." + sig,
		"other key":   NewCodec([]byte("key two")).Encode(Position{SeriesID: 1, Last: time.Unix(1, 0)}),
		"sig missing": body + ".",
		"after 9999":  c.Encode(Position{SeriesID: 1, Last: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}),
		"before 1":    c.Encode(Position{SeriesID: 1, Last: time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC)}),
		"from before 1": c.Encode(Position{SeriesID: 1, Last: time.Unix(1, 0),
			From: func() *time.Time { t := time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC); return &t }()}),
	} {
		if _, err := c.Decode(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Decode(%q) = %v, want ErrInvalid", name, s, err)
		}
	}
}

func TestYearBounds(t *testing.T) {
	c := NewCodec([]byte("key"))
	first := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	last := time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
	for _, at := range []time.Time{first, last} {
		p, err := c.Decode(c.Encode(Position{SeriesID: 1, Last: at, From: &first, To: &last}))
		if err != nil || !p.Last.Equal(at) {
			t.Errorf("position at %v: %+v, %v; want it back", at, p, err)
		}
	}
}
