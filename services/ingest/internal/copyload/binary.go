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
	be := binary.BigEndian
	buf = append(buf, copySignature...)
	buf = be.AppendUint32(buf, 0) // flags
	buf = be.AppendUint32(buf, 0) // header extension length
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
	return be.AppendUint16(buf, 0xFFFF) // file trailer: field count -1
}

// copyBinary sends the batch to table (already quoted) with COPY ... FROM
// STDIN in binary, inside tx, and returns the rows copied. buf is reused
// between batches.
func copyBinary(ctx context.Context, tx pgx.Tx, table string, b *batch, buf *[]byte) (int64, error) {
	*buf = b.appendBinary((*buf)[:0])
	sql := fmt.Sprintf("COPY %s (series_id, time, utc_offset_min, value_num, value_text) FROM STDIN (FORMAT binary)", table)
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(*buf), sql)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}
