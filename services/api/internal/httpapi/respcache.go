package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/maypok86/otter/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// The response cache keeps whole answers of the authenticated GET
// operations in memory, keyed by their ETag (see caching.go): the dataset
// version, the build and limits, the method, path and canonical query, the
// caller's scope and Accept. A load moves the version, so answers computed
// before it are never served after the API learned of it; they age out of
// the byte-bounded LRU. A scope is part of the key, so an answer computed
// for one scope is served only to callers with the same scope.
//
// Identical concurrent misses run the operation once: the first request
// computes the answer, and every request waiting for it writes the same
// bytes. The computation's context outlives the request that started it
// while others wait, and is cancelled when every waiting client has left, so
// an abandoned query stops as it would without the cache; that refcount is
// why this is not golang.org/x/sync/singleflight, which cannot cancel. Streamed exports are not
// cached, and an answer larger than a quarter of the cache is served but not
// kept. Bodies worth compressing are gzipped once, on the first request that
// accepts gzip, and that copy is served from then on.

// DefaultResponseCacheBytes bounds the cache when the configuration does not:
// small enough for a pod with a 512 MiB limit.
const DefaultResponseCacheBytes = 64 << 20

// statusAborted marks the answer of an operation that aborted its response.
const statusAborted = -1

// cachedAnswer is one recorded answer.
type cachedAnswer struct {
	status int
	header http.Header
	body   []byte

	gzOnce sync.Once
	gz     []byte
}

// size is what the answer costs the cache, its bookkeeping included.
func (a *cachedAnswer) size() int {
	n := len(a.body) + len(a.gz) + 256
	for k, vs := range a.header {
		n += len(k)
		for _, v := range vs {
			n += len(v)
		}
	}
	return n
}

// gzipped returns the gzip copy of the body, making it on first use; made
// says this call made it (the entry's weight grew).
func (a *cachedAnswer) gzipped() (gz []byte, made bool) {
	a.gzOnce.Do(func() {
		made = true
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
		zw.Write(a.body) //nolint:errcheck // writes to memory
		zw.Close()       //nolint:errcheck // writes to memory
		a.gz = b.Bytes()
	})
	return a.gz, made
}

// responseCache is the cache and its metrics.
type responseCache struct {
	entries  *otter.Cache[string, *cachedAnswer]
	maxEntry int

	mu       sync.Mutex
	inflight map[string]*computation

	hits, misses, coalesced, evictions prometheus.Counter
}

func newResponseCache(maxBytes int64, reg prometheus.Registerer) (*responseCache, error) {
	c := &responseCache{
		maxEntry: int(maxBytes / 4),
		inflight: map[string]*computation{},
		hits: prometheus.NewCounter(prometheus.CounterOpts{Name: "sensorhub_response_cache_hits_total",
			Help: "Answers served from the response cache."}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{Name: "sensorhub_response_cache_misses_total",
			Help: "Cacheable requests that ran their operation (once per set of identical concurrent requests)."}),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{Name: "sensorhub_response_cache_coalesced_total",
			Help: "Requests that waited for an identical request's answer instead of running the operation."}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{Name: "sensorhub_response_cache_evictions_total",
			Help: "Answers evicted from the response cache to stay within its byte bound."}),
	}
	entries, err := otter.New(&otter.Options[string, *cachedAnswer]{
		MaximumWeight: uint64(maxBytes),
		Weigher:       func(_ string, a *cachedAnswer) uint32 { return uint32(min(a.size(), 1<<31)) },
		OnDeletion: func(e otter.DeletionEvent[string, *cachedAnswer]) {
			if e.WasEvicted() {
				c.evictions.Inc()
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("response cache: %w", err)
	}
	c.entries = entries
	if reg != nil {
		bytesGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sensorhub_response_cache_bytes",
			Help: "Bytes the response cache holds (bodies, their gzip copies and headers)."},
			func() float64 { return float64(entries.WeightedSize()) })
		for _, m := range []prometheus.Collector{c.hits, c.misses, c.coalesced, c.evictions, bytesGauge} {
			if err := reg.Register(m); err != nil {
				return nil, fmt.Errorf("register response cache metrics: %w", err)
			}
		}
	}
	return c, nil
}

// cacheable reports whether the operation's answer may be cached: not the
// streamed exports.
func cacheable(ctx huma.Context) bool {
	return !(ctx.Operation().OperationID == "list-readings" && exportFormat(ctx.Header("Accept")) != "")
}

// computation is one running miss and the requests waiting for it.
type computation struct {
	done   chan struct{}
	answer *cachedAnswer
	ctx    context.Context
	cancel context.CancelFunc
	refs   int // requests still waiting, the one computing included
}

// serve answers ctx from the cache, or runs next once for every identical
// concurrent request and caches a 200.
func (c *responseCache) serve(ctx huma.Context, key, etag string, next func(huma.Context)) {
	if a, ok := c.entries.GetIfPresent(key); ok {
		c.hits.Inc()
		if writeAnswer(ctx, a, etag) {
			c.reweigh(key, a)
		}
		return
	}
	c.mu.Lock()
	if w := c.inflight[key]; w != nil {
		w.refs++
		c.mu.Unlock()
		c.coalesced.Inc()
		select {
		case <-w.done:
			c.release(w)
			if writeAnswer(ctx, w.answer, etag) {
				c.reweigh(key, w.answer)
			}
		case <-ctx.Context().Done():
			c.release(w) // the client left; nothing to write
		}
		return
	}
	w := &computation{done: make(chan struct{}), refs: 1}
	w.ctx, w.cancel = detached(ctx.Context())
	c.inflight[key] = w
	c.mu.Unlock()
	c.misses.Inc()

	// This request computes; if its client leaves, the computation goes on
	// for the others, and stops when none is left.
	stop := context.AfterFunc(ctx.Context(), func() { c.release(w) })
	rec := &recorder{humaContext: ctx, ctx: w.ctx, header: http.Header{}}
	func() {
		defer func() {
			c.mu.Lock()
			delete(c.inflight, key)
			c.mu.Unlock()
			w.answer = rec.answer()
			r := recover()
			if r != nil {
				// The operation aborted midway (http.ErrAbortHandler after
				// its status was sent): the waiting requests abort too.
				w.answer = &cachedAnswer{status: statusAborted}
			}
			close(w.done)
			if r != nil {
				panic(r)
			}
		}()
		next(rec)
	}()
	if w.answer.status == http.StatusOK && len(w.answer.body) <= c.maxEntry {
		c.entries.Set(key, w.answer)
	}
	if stop() {
		c.release(w)
	}
	if ctx.Context().Err() == nil && writeAnswer(ctx, w.answer, etag) {
		c.reweigh(key, w.answer)
	}
}

// reweigh stores a again under key if it is still cached, so that the
// gzip copy it just got counts toward the byte bound.
func (c *responseCache) reweigh(key string, a *cachedAnswer) {
	if cur, ok := c.entries.GetIfPresent(key); ok && cur == a {
		c.entries.Set(key, a)
	}
}

// release drops one waiting request; the last one cancels the computation
// (a no-op once it has finished).
func (c *responseCache) release(w *computation) {
	c.mu.Lock()
	w.refs--
	last := w.refs == 0
	c.mu.Unlock()
	if last {
		w.cancel()
	}
}

// detached returns a context with parent's values and deadline but not its
// cancellation: the request that starts a computation may leave before
// those waiting for it.
func detached(parent context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := parent.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	return context.WithDeadline(context.WithoutCancel(parent), deadline)
}

// writeAnswer writes a recorded answer to ctx, gzipped when the client takes
// gzip and the body is worth it (the compression middleware passes an
// encoded body through).
func writeAnswer(ctx huma.Context, a *cachedAnswer, etag string) (gzipMade bool) {
	if a.status == statusAborted {
		panic(http.ErrAbortHandler)
	}
	for k, vs := range a.header {
		for i, v := range vs {
			if i == 0 {
				ctx.SetHeader(k, v)
			} else {
				ctx.AppendHeader(k, v)
			}
		}
	}
	body := a.body
	if a.status == http.StatusOK {
		ctx.SetHeader("ETag", etag)
		// The stored gzip copy only when gzip is what the client prefers;
		// otherwise the compression middleware picks (zstd) or leaves it.
		if len(body) >= compressMinSize && prefersGzip(ctx.Header("Accept-Encoding")) {
			body, gzipMade = a.gzipped()
			ctx.SetHeader("Content-Encoding", "gzip")
			ctx.AppendHeader("Vary", "Accept-Encoding")
		}
	}
	if a.header.Get("Content-Length") != "" || len(body) != len(a.body) {
		ctx.SetHeader("Content-Length", strconv.Itoa(len(body)))
	}
	ctx.SetStatus(a.status)
	_, _ = ctx.BodyWriter().Write(body) // a write error means the client left
	return gzipMade
}

// recorder is a huma.Context that records the answer instead of sending it,
// under the computation's context.
type recorder struct {
	humaContext
	ctx    context.Context
	status int
	header http.Header
	body   bytes.Buffer
}

func (r *recorder) Context() context.Context        { return r.ctx }
func (r *recorder) SetStatus(code int)              { r.status = code }
func (r *recorder) Status() int                     { return r.status }
func (r *recorder) SetHeader(name, value string)    { r.header.Set(name, value) }
func (r *recorder) AppendHeader(name, value string) { r.header.Add(name, value) }
func (r *recorder) BodyWriter() io.Writer           { return &r.body }

func (r *recorder) answer() *cachedAnswer {
	status := r.status
	if status == 0 {
		status = http.StatusOK
	}
	return &cachedAnswer{status: status, header: r.header, body: bytes.Clone(r.body.Bytes())}
}

// prefersGzip reports whether an Accept-Encoding header takes gzip (q > 0,
// directly or through *) at least as gladly as zstd, the other coding the
// compression middleware offers.
func prefersGzip(header string) bool {
	q := map[string]float64{}
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		weight := 1.0
		if v, ok := strings.CutPrefix(strings.ReplaceAll(strings.TrimSpace(params), " ", ""), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				weight = f
			}
		}
		q[name] = weight
	}
	get := func(coding string) float64 {
		if w, ok := q[coding]; ok {
			return w
		}
		return q["*"] // absent: 0
	}
	return get("gzip") > 0 && get("gzip") >= get("zstd")
}
