package aggregate

import (
	"context"

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
	cells, stale, err := store.ReadAggregates(ctx, q, p.Source, numIDs, textIDs, p.Buckets, p.From, p.To)
	if err != nil {
		return Result{}, err
	}
	if stale {
		p.Source = SourceRaw
	}
	res := Result{Source: p.Source, Bucket: p.Bucket, Funcs: p.Funcs, Series: make([]SeriesResult, 0, len(req.Series))}
	for _, s := range req.Series {
		src := p.Source
		if s.Type == store.TypeText {
			src = SourceRaw
		}
		res.Series = append(res.Series, SeriesResult{
			DeviceID: s.DeviceID, Parameter: s.Parameter, Type: s.Type, Source: src,
			Points: fillPoints(p, cells[s.ID]),
		})
	}
	return res, nil
}
