package copyload

import (
	"time"

	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
)

// batch holds up to batchSize readings column by column, ready for COPY.
// It is committed as one transaction together with the series statistics and
// the rollup range it touches, so a crash leaves either all of it or none.
type batch struct {
	file    *fileState
	series  []int32
	times   []time.Time
	offsets []int16
	nums    []float64
	texts   []string
	isText  []bool
	lo, hi  time.Time
	// first is where the batch's first reading stands in its file, so that a
	// batch that cannot be written is reported at a place the user can find.
	first dataset.Position
}

func newBatch(f *fileState, capacity int) *batch {
	return &batch{
		file:    f,
		series:  make([]int32, 0, capacity),
		times:   make([]time.Time, 0, capacity),
		offsets: make([]int16, 0, capacity),
		nums:    make([]float64, 0, capacity),
		texts:   make([]string, 0, capacity),
		isText:  make([]bool, 0, capacity),
	}
}

func (b *batch) len() int { return len(b.series) }

func (b *batch) add(series int32, t time.Time, offsetMin int16, num float64, text string, isText bool) {
	if b.len() == 0 || t.Before(b.lo) {
		b.lo = t
	}
	if b.len() == 0 || t.After(b.hi) {
		b.hi = t
	}
	b.series = append(b.series, series)
	b.times = append(b.times, t)
	b.offsets = append(b.offsets, offsetMin)
	b.nums = append(b.nums, num)
	b.texts = append(b.texts, text)
	b.isText = append(b.isText, isText)
}

// seriesDelta is the per-series change a batch makes to the catalog's counts.
type seriesDelta struct {
	ids    []int32
	counts []int64
	los    []time.Time
	his    []time.Time
}

// deltas summarises the batch per series, sorted by id so that concurrent
// transactions lock series rows in the same order and cannot deadlock.
func (b *batch) deltas() seriesDelta {
	m := spans{}
	for i, id := range b.series {
		m.add(id, 1, b.times[i], b.times[i])
	}
	return m.deltas()
}
