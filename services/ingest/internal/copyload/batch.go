package copyload

import (
	"slices"
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
	type acc struct {
		n      int64
		lo, hi time.Time
	}
	m := make(map[int32]*acc)
	for i, id := range b.series {
		a, ok := m[id]
		if !ok {
			m[id] = &acc{n: 1, lo: b.times[i], hi: b.times[i]}
			continue
		}
		a.n++
		if b.times[i].Before(a.lo) {
			a.lo = b.times[i]
		}
		if b.times[i].After(a.hi) {
			a.hi = b.times[i]
		}
	}
	var d seriesDelta
	for id := range m {
		d.ids = append(d.ids, id)
	}
	slices.Sort(d.ids)
	for _, id := range d.ids {
		a := m[id]
		d.counts = append(d.counts, a.n)
		d.los = append(d.los, a.lo)
		d.his = append(d.his, a.hi)
	}
	return d
}
