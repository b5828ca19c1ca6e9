package copyload

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgreSQL's binary COPY format, written directly rather than through
// pgx.CopyFrom: pgx boxes every value in an interface and looks up its
// codec, which cost as much CPU per reading as parsing the JSON, and on two
// cores the loader's CPU is what decides whether it keeps up with the
// server. The format is fixed and small (see the COPY reference page).
var copySignature = []byte("PGCOPY\n\xff\r\n\x00")

// pgEpoch is where timestamptz's binary form counts microseconds from.
var pgEpochMicros = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

const nullLength = 0xFFFFFFFF // -1 as int32: a NULL field

// appendBinary encodes the batch's rows in the column order of
// readingColumns into buf and returns it.
func (b *batch) appendBinary(buf []byte) []byte {
	return appendTrailer(b.appendRows(appendHeader(buf)))
}

func appendHeader(buf []byte) []byte {
	be := binary.BigEndian
	buf = append(buf, copySignature...)
	buf = be.AppendUint32(buf, 0)  // flags
	return be.AppendUint32(buf, 0) // header extension length
}

// appendTrailer ends the COPY data: a field count of -1.
func appendTrailer(buf []byte) []byte { return binary.BigEndian.AppendUint16(buf, 0xFFFF) }

// appendRows appends the batch's rows, without header or trailer, so that
// several batches can go in one COPY.
func (b *batch) appendRows(buf []byte) []byte {
	be := binary.BigEndian
	for i := range b.series {
		buf = be.AppendUint16(buf, 5)
		buf = be.AppendUint32(buf, 4)
		buf = be.AppendUint32(buf, uint32(b.series[i]))
		buf = be.AppendUint32(buf, 8)
		buf = be.AppendUint64(buf, uint64(b.times[i].UnixMicro()-pgEpochMicros))
		buf = be.AppendUint32(buf, 2)
		buf = be.AppendUint16(buf, uint16(b.offsets[i]))
		if b.isText[i] {
			buf = be.AppendUint32(buf, nullLength)
			buf = be.AppendUint32(buf, uint32(len(b.texts[i])))
			buf = append(buf, b.texts[i]...)
		} else {
			buf = be.AppendUint32(buf, 8)
			buf = be.AppendUint64(buf, math.Float64bits(b.nums[i]))
			buf = be.AppendUint32(buf, nullLength)
		}
	}
	return buf
}

// copyBinary sends the batch to table (already quoted) with COPY ... FROM
// STDIN in binary, inside tx, and returns the rows copied. buf is reused
// between batches.
func copyBinary(ctx context.Context, tx pgx.Tx, table string, b *batch, buf *[]byte) (int64, error) {
	*buf = b.appendBinary((*buf)[:0])
	return copyData(ctx, tx, table, *buf)
}

// copyGroup sends the rows of every batch of g in one COPY.
func copyGroup(ctx context.Context, tx pgx.Tx, table string, g group, buf *[]byte) (int64, error) {
	b := appendHeader((*buf)[:0])
	for _, x := range g {
		b = x.appendRows(b)
	}
	*buf = appendTrailer(b)
	return copyData(ctx, tx, table, *buf)
}

func copyData(ctx context.Context, tx pgx.Tx, table string, data []byte) (int64, error) {
	sql := fmt.Sprintf("COPY %s (series_id, time, utc_offset_min, value_num, value_text) FROM STDIN (FORMAT binary)", table)
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(data), sql)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}
