// Package cursor encodes keyset-pagination positions as opaque, signed
// strings. A cursor is base64url(JSON) "." base64url(HMAC-SHA256(JSON)): the
// client can read it but not forge or alter it, and one signed with another
// key (another deployment, or a replica with its own random key) is rejected.
package cursor

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrInvalid is returned for a cursor that is malformed, tampered with or
// signed with another key.
var ErrInvalid = errors.New("invalid cursor")

// Position is where a page ended: the last reading returned of one series,
// and the query the cursor belongs to.
type Position struct {
	SeriesID int32
	// Last is the time of the last reading returned (microsecond precision).
	Last time.Time
	// Desc is the order of the walk.
	Desc bool
	// From and To are the request's range; nil when open.
	From, To *time.Time
}

// wire is the signed JSON; times are Unix microseconds, PostgreSQL's precision.
type wire struct {
	V    int    `json:"v"`
	S    int32  `json:"s"`
	T    int64  `json:"t"`
	O    string `json:"o"`
	From *int64 `json:"f,omitempty"`
	To   *int64 `json:"u,omitempty"`
}

const version = 1

// Codec signs and verifies cursors with one key.
type Codec struct{ key []byte }

// NewCodec returns a Codec for key, which should be at least 32 random bytes.
func NewCodec(key []byte) *Codec { return &Codec{key: append([]byte(nil), key...)} }

// KeyID is a fingerprint of the signing key (not enough to recover it): two
// codecs with the same KeyID issue the same cursors.
func (c *Codec) KeyID() string {
	sum := sha256.Sum256(append([]byte("sensorhub cursor key id\x00"), c.key...))
	return base64.RawURLEncoding.EncodeToString(sum[:9])
}

// Encode returns the opaque cursor for p.
func (c *Codec) Encode(p Position) string {
	w := wire{V: version, S: p.SeriesID, T: p.Last.UnixMicro(), O: "asc", From: micros(p.From), To: micros(p.To)}
	if p.Desc {
		w.O = "desc"
	}
	payload, _ := json.Marshal(w) // a struct of numbers and strings always marshals
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(c.sign(payload))
}

// Decode verifies s and returns its position.
func (c *Codec) Decode(s string) (Position, error) {
	body, sig, ok := strings.Cut(s, ".")
	if !ok {
		return Position{}, fmt.Errorf("%w: not a cursor", ErrInvalid)
	}
	payload, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return Position{}, fmt.Errorf("%w: not a cursor", ErrInvalid)
	}
	mac, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(mac, c.sign(payload)) {
		return Position{}, fmt.Errorf("%w: signature does not match (altered, or issued by another deployment)", ErrInvalid)
	}
	var w wire
	if err := json.Unmarshal(payload, &w); err != nil || w.V != version || (w.O != "asc" && w.O != "desc") {
		return Position{}, fmt.Errorf("%w: unsupported cursor", ErrInvalid)
	}
	if !inYears(&w.T) || w.From != nil && !inYears(w.From) || w.To != nil && !inYears(w.To) {
		return Position{}, fmt.Errorf("%w: position out of range", ErrInvalid)
	}
	return Position{SeriesID: w.S, Last: time.UnixMicro(w.T).UTC(), Desc: w.O == "desc", From: fromMicros(w.From), To: fromMicros(w.To)}, nil
}

func (c *Codec) sign(payload []byte) []byte {
	h := hmac.New(sha256.New, c.key)
	h.Write(payload)
	return h.Sum(nil)
}

// The API's times lie within the years 1 to 9999 (UTC), so a cursor's do:
// a signed one outside them (which only a holder of the key could make)
// would reach the database as a time PostgreSQL may not hold.
var (
	minMicros = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	endMicros = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
)

func inYears(us *int64) bool { return *us >= minMicros && *us < endMicros }

func micros(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	v := t.UnixMicro()
	return &v
}

func fromMicros(v *int64) *time.Time {
	if v == nil {
		return nil
	}
	t := time.UnixMicro(*v).UTC()
	return &t
}
