package store

import (
	"bytes"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// TestBucketStartsEncoding: the direct encoding writes the bytes pgx's own
// array codec writes for the same times, across the epoch and 2000, with
// microseconds, zones and the empty and nil arrays.
func TestBucketStartsEncoding(t *testing.T) {
	kolkata := time.FixedZone("IST", 5*3600+1800)
	cases := map[string][]time.Time{
		"nil":   nil,
		"empty": {},
		"hours": {
			time.Date(2024, 3, 31, 0, 0, 0, 0, time.UTC),
			time.Date(2024, 3, 31, 1, 0, 0, 0, time.UTC),
			time.Date(2024, 3, 31, 2, 0, 0, 0, time.UTC),
		},
		"around the epochs": {
			time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC),
			time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
			time.Date(1999, 12, 31, 23, 59, 59, 1000, time.UTC),
			time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
			time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC),
		},
		"zones and microseconds": {
			time.Date(2024, 10, 27, 2, 30, 0, 123456000, kolkata),
			time.Date(2262, 4, 11, 23, 47, 16, 854775000, time.UTC),
		},
	}
	m := pgtype.NewMap()
	fast := bucketStartsCodec{}
	if typ, ok := m.TypeForOID(pgtype.TimestamptzArrayOID); ok {
		fast.Codec = typ.Codec
	} else {
		t.Fatal("no timestamptz[] in pgx's type map")
	}
	for name, times := range cases {
		want, err := m.Encode(pgtype.TimestamptzArrayOID, pgtype.BinaryFormatCode, times, nil)
		if err != nil {
			t.Fatalf("%s: pgx: %v", name, err)
		}
		plan := fast.PlanEncode(m, pgtype.TimestamptzArrayOID, pgtype.BinaryFormatCode, bucketStarts(times))
		if _, ok := plan.(encodeBucketStarts); !ok {
			t.Fatalf("%s: plan %T, want the direct encoding", name, plan)
		}
		got, err := plan.Encode(bucketStarts(times), []byte("prefix"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if times == nil {
			if got != nil || want != nil {
				t.Errorf("%s: %x, pgx %x; want NULL from both", name, got, want)
			}
			continue
		}
		if !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Errorf("%s:\n got %x\nwant prefix%x", name, got, want)
		}
	}
	// Other values and the text format go to pgx's codec.
	if _, ok := fast.PlanEncode(m, pgtype.TimestamptzArrayOID, pgtype.BinaryFormatCode, []time.Time{}).(encodeBucketStarts); ok {
		t.Error("[]time.Time took the direct encoding")
	}
	if _, ok := fast.PlanEncode(m, pgtype.TimestamptzArrayOID, pgtype.TextFormatCode, bucketStarts{}).(encodeBucketStarts); ok {
		t.Error("the text format took the direct encoding")
	}
}

// BenchmarkBucketStarts encodes a week of hourly bucket starts: pgx's array
// codec through the ArrayGetter, against the direct encoding.
func BenchmarkBucketStarts(b *testing.B) {
	week := make(bucketStarts, 168)
	for i := range week {
		week[i] = time.Date(2024, 1, 1, i, 0, 0, 0, time.UTC)
	}
	m := pgtype.NewMap()
	typ, _ := m.TypeForOID(pgtype.TimestamptzArrayOID)
	plans := map[string]pgtype.EncodePlan{
		"pgx":    typ.Codec.PlanEncode(m, pgtype.TimestamptzArrayOID, pgtype.BinaryFormatCode, week),
		"direct": bucketStartsCodec{typ.Codec}.PlanEncode(m, pgtype.TimestamptzArrayOID, pgtype.BinaryFormatCode, week),
	}
	for _, name := range []string{"pgx", "direct"} {
		b.Run(name, func(b *testing.B) {
			buf := make([]byte, 0, 4096)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = plans[name].Encode(week, buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
