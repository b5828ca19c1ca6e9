package aggregate

import (
	"context"
	"sync"

	"github.com/sensorhub/sensorhub/services/api/internal/store"
)

// Query plans req (see Plan), reads every series with one query and fills
// empty buckets. Invalid requests fail with a *InvalidError (errors.Is
// ErrInvalid); other errors come from the database.
func Query(ctx context.Context, q store.Querier, req Request) (Result, error) {
	p, err := Plan(req)
	if err != nil {
		return Result{}, err
	}
	numIDs, textIDs := []int32{}, []int32{}
	for _, s := range req.Series {
		if s.Type == store.TypeText {
			textIDs = append(textIDs, s.ID)
		} else {
			numIDs = append(numIDs, s.ID)
		}
	}
	buf := cellBuffers.Get().(*[]store.AggregateCell)
	defer putCells(buf)
	cells, stale, err := store.ReadAggregates(ctx, q, p.Source, numIDs, textIDs, p.Buckets, p.From, p.To, buf)
	if err != nil {
		return Result{}, err
	}
	if stale {
		p.Source = SourceRaw
	}
	res := Result{Source: p.Source, Bucket: p.Bucket, Funcs: p.Funcs, Series: make([]SeriesResult, 0, len(req.Series))}
	n := 0
	for _, s := range req.Series {
		n += pointCount(p, cells[s.ID])
	}
	res.arena = newArena(n, len(p.Funcs))
	for _, s := range req.Series {
		src := p.Source
		if s.Type == store.TypeText {
			src = SourceRaw
		}
		res.Series = append(res.Series, SeriesResult{
			DeviceID: s.DeviceID, Parameter: s.Parameter, Type: s.Type, Source: src,
			Points: fillPoints(p, cells[s.ID], res.arena),
		})
	}
	return res, nil
}

// The cells of a query are read into pooled buffers: fillPoints copies what
// it needs, so a buffer is free again once Query returns. Buffers grown
// beyond maxPooledCells are left to the garbage collector.
const maxPooledCells = 16 << 10

var cellBuffers = sync.Pool{New: func() any { return new([]store.AggregateCell) }}

func putCells(buf *[]store.AggregateCell) {
	if cap(*buf) > maxPooledCells {
		return
	}
	clear(*buf) // drop the text values' strings
	*buf = (*buf)[:0]
	cellBuffers.Put(buf)
}
