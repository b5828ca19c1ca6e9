package httpapi

import (
	"context"
	"strconv"
	"sync"

	"github.com/sensorhub/sensorhub/db/scope"
	"github.com/sensorhub/sensorhub/services/api/internal/store"
)

// seriesCache remembers how a caller's explicitly named series resolved
// (device and parameter names to id and type), so that /v1/readings and
// /v1/aggregates skip the catalog round trip on repeated requests. Only
// complete resolutions are kept: every named series found in scope. A
// series' id and type never change once created, and loads only add
// series, so such an entry stays true; entries are still dropped whenever
// the dataset version changes (read as for ETags, at most DatasetVersionTTL
// old), which bounds any staleness after out-of-band catalog edits to that
// of the ETags. Lists by prefix or glob are never cached: a load may add
// matches.
type seriesCache struct {
	versions *versionCache
	mu       sync.RWMutex
	version  int64
	entries  map[string][]store.Series
}

// maxCachedSelections bounds the cache; when full it starts over.
const maxCachedSelections = 10_000

func newSeriesCache(versions *versionCache) *seriesCache {
	if versions == nil || versions.read == nil {
		return nil
	}
	return &seriesCache{versions: versions, entries: map[string][]store.Series{}}
}

// seriesCacheKey identifies the series named by device and parameters as seen
// by sc.
func seriesCacheKey(sc scope.Scope, device string, parameters ...string) string {
	b := make([]byte, 0, 64)
	b = appendKeyPart(b, sc.Key())
	b = appendKeyPart(b, device)
	for _, p := range parameters {
		b = appendKeyPart(b, p)
	}
	return string(b)
}

func appendKeyPart(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

// get returns the cached resolution of key at the current dataset version,
// and that version (ok false when it cannot be read: then put is skipped).
func (c *seriesCache) get(ctx context.Context, key string) (found []store.Series, version int64, ok bool) {
	if c == nil {
		return nil, 0, false
	}
	version, ok = c.versions.get(ctx)
	if !ok {
		return nil, 0, false
	}
	c.mu.RLock()
	if c.version == version {
		found = c.entries[key]
	}
	c.mu.RUnlock()
	return found, version, true
}

// put stores a complete resolution read at version.
func (c *seriesCache) put(key string, version int64, found []store.Series) {
	if c == nil || len(found) == 0 {
		return
	}
	trimmed := make([]store.Series, len(found))
	for i, s := range found {
		trimmed[i] = store.Series{ID: s.ID, DeviceID: s.DeviceID, Parameter: s.Parameter, Type: s.Type}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if version != c.version || len(c.entries) >= maxCachedSelections {
		clear(c.entries)
		c.version = version
	}
	c.entries[key] = trimmed
}
