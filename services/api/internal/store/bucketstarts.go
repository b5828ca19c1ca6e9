package store

import (
	"encoding/binary"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// bucketStarts binds bucket starts as a timestamptz[]. pgx encodes a
// []time.Time by boxing every element twice; this hands out pointers into
// the caller's slice, which box for free, so binding copies and allocates
// nothing per bucket. (timestamptz is an instant: the times' locations do
// not matter.) On the connections of PoolConfig, bucketStartsCodec encodes
// it without going through the elements' interfaces at all.
type bucketStarts []time.Time

// bucketStart is one bucket start; *bucketStart is a pgtype.TimestamptzValuer.
type bucketStart time.Time

// Dimensions implements pgtype.ArrayGetter.
func (b bucketStarts) Dimensions() []pgtype.ArrayDimension {
	if b == nil {
		return nil
	}
	return []pgtype.ArrayDimension{{Length: int32(len(b)), LowerBound: 1}}
}

// Index implements pgtype.ArrayGetter.
func (b bucketStarts) Index(i int) any { return (*bucketStart)(&b[i]) }

// IndexType implements pgtype.ArrayGetter.
func (b bucketStarts) IndexType() any { return new(bucketStart) }

// TimestamptzValue implements pgtype.TimestamptzValuer.
func (s *bucketStart) TimestamptzValue() (pgtype.Timestamptz, error) {
	return pgtype.Timestamptz{Time: time.Time(*s), Valid: true}, nil
}

// bucketStartsCodec is timestamptz[]'s codec with a direct binary encoding
// of bucketStarts. pgx's array codec plans and calls an encoder per
// element, through reflection and interfaces: about 60 ns a bucket, 10 us
// for a week of hours, 3-4% of the API's CPU per aggregates request
// (docs/benchmarks.md). Every other value goes to pgx's codec.
type bucketStartsCodec struct{ pgtype.Codec }

// registerBucketStarts installs bucketStartsCodec on a connection's type map.
func registerBucketStarts(c *pgx.Conn) {
	m := c.TypeMap()
	if t, ok := m.TypeForOID(pgtype.TimestamptzArrayOID); ok {
		if _, done := t.Codec.(bucketStartsCodec); !done {
			m.RegisterType(&pgtype.Type{Name: t.Name, OID: t.OID, Codec: bucketStartsCodec{t.Codec}})
		}
	}
}

// PlanEncode implements pgtype.Codec.
func (c bucketStartsCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.(bucketStarts); ok && format == pgtype.BinaryFormatCode {
		return encodeBucketStarts{}
	}
	return c.Codec.PlanEncode(m, oid, format, value)
}

type encodeBucketStarts struct{}

// microsecondsToY2K is PostgreSQL's timestamp epoch, 2000-01-01 UTC, in
// microseconds after the Unix epoch.
const microsecondsToY2K = 946684800 * 1000000

// Encode appends the array in PostgreSQL's binary array format: dimensions,
// a has-nulls flag, the element type, then the one dimension's length and
// lower bound, then each element as length 8 and microseconds since 2000.
func (encodeBucketStarts) Encode(value any, buf []byte) ([]byte, error) {
	b := value.(bucketStarts)
	if b == nil {
		return nil, nil // NULL, as pgx encodes a nil slice
	}
	be := binary.BigEndian
	buf = be.AppendUint32(buf, 1)
	buf = be.AppendUint32(buf, 0)
	buf = be.AppendUint32(buf, pgtype.TimestamptzOID)
	buf = be.AppendUint32(buf, uint32(len(b)))
	buf = be.AppendUint32(buf, 1)
	for _, t := range b {
		buf = be.AppendUint32(buf, 8)
		buf = be.AppendUint64(buf, uint64(t.Unix()*1000000+int64(t.Nanosecond())/1000-microsecondsToY2K))
	}
	return buf, nil
}
