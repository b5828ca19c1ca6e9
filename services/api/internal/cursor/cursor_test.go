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
	} {
		if _, err := c.Decode(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Decode(%q) = %v, want ErrInvalid", name, s, err)
		}
	}
}
