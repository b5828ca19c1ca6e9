package httpapi

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sensorhub/sensorhub/db/scope"
)

// HTTP caching. Every answer of an authenticated GET operation is a function
// of the dataset (whose version every load changes), the request and the
// caller's scope. So its ETag is derived from those, without looking at the
// body:
//
//	W/"<dataset version>-<base64url of SHA-256(build, limits, cursor key,
//	    method, path, canonical query, scope, Accept)[:16]>"
//
// The ETag is weak: derived from what determines the answer rather than
// from its bytes, it promises an equivalent answer, not identical bytes
// (If-None-Match compares weakly anyway, and ranges are not served). A
// request whose If-None-Match holds the current
// ETag is answered 304 without running the operation. Answers are
// Cache-Control: private, no-cache (a browser may keep them, but asks again
// each time; shared caches must not serve one caller's data to another) and
// vary with Accept, Authorization and X-API-Key.
//
// The ETag also keys the response cache (respcache.go): an answer is kept
// under the validator that names it.
//
// The dataset version changes with every commit of new data: ingest bumps it
// in each batch's transaction and once more when a run ends. The database
// notifies each bump as it commits (migration 00014), and where the API
// listens (store.ListenDatasetVersion, SENSORHUB_DB_LISTEN on) the listener
// passes it to SetDatasetVersion: an API replica then sees a load's commit
// within the notification's delivery, milliseconds. The version is also read
// at most once per DatasetVersionTTL (1s); where nothing is notified (behind
// PgBouncer in transaction mode, on a standby, or while the listener
// reconnects) that bounds how long after a commit an answer may still be
// validated against, or served from the response cache under, the previous
// version.

const cacheControl = "private, no-cache"

// validators gives answers ETags and answers conditional requests.
type validators struct {
	versions *versionCache
	salt     string
	cache    *responseCache // nil: off
}

func newValidators(d Deps, o Options) (*validators, error) {
	ttl := o.DatasetVersionTTL
	if ttl <= 0 {
		ttl = time.Second
	}
	v := &validators{versions: &versionCache{ttl: ttl}}
	if d.Store != nil {
		v.versions.read = d.Store.DatasetVersion
	}
	// What else changes answers to the same request on the same data: the
	// build, the limits, and the key next_cursor is signed with.
	v.salt = fmt.Sprintf("%s|%d|%d", o.Version, d.Limits.MaxPoints, d.Limits.MaxRawRange)
	if d.Cursors != nil {
		v.salt += "|" + d.Cursors.KeyID()
	}
	if size := cmp.Or(o.ResponseCacheBytes, DefaultResponseCacheBytes); size > 0 && d.Store != nil {
		c, err := newResponseCache(size, o.Metrics)
		if err != nil {
			return nil, err
		}
		v.cache = c
	}
	return v, nil
}

// middleware is huma middleware; it needs the scope authenticate put in the
// context.
func (v *validators) middleware(ctx huma.Context, next func(huma.Context)) {
	op := ctx.Operation()
	if !needsCredentials(op) || op.Method != http.MethodGet || v.versions.read == nil {
		next(ctx)
		return
	}
	ctx.SetHeader("Cache-Control", cacheControl)
	ctx.AppendHeader("Vary", "Accept, Authorization, X-API-Key")
	version, ok := v.versions.get(ctx.Context())
	if !ok {
		next(ctx) // the database does not answer: no validator, and the operation reports why
		return
	}
	tag := v.etag(version, ctx)
	if etagListed(ctx.Header("If-None-Match"), tag) {
		ctx.SetHeader("ETag", tag)
		ctx.SetStatus(http.StatusNotModified)
		return
	}
	if v.cache != nil && cacheable(ctx) {
		// The ETag names the answer exactly: it is the cache key.
		v.cache.serve(ctx, tag, tag, next)
		return
	}
	next(&taggedContext{humaContext: ctx, etag: tag})
}

// etag derives the validator of the answer to ctx's request at version.
// The query enters by name in sorted order, each name with its values in
// their order (it matters), every part prefixed with its length, so that
// no two requests that differ hash the same bytes. A query that does not
// parse enters raw, after a marker no parsed one has, so that it is not
// answered from the cache of the query without its bad pairs before the
// guards (which run after this middleware) refuse it.
func (v *validators) etag(version int64, ctx huma.Context) string {
	q, err := queryValues(ctx)
	names := make([]string, 0, 16)
	if err == nil {
		for name := range q {
			names = append(names, name)
		}
		slices.Sort(names)
	}
	h := sha256.New()
	var n [8]byte
	write := func(part string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:]) // hash.Hash writes never fail
		io.WriteString(h, part)
	}
	write(v.salt)
	write(ctx.Method())
	write(ctx.URL().Path)
	if err != nil {
		write("\x00malformed")
		write(ctx.URL().RawQuery)
	}
	binary.BigEndian.PutUint64(n[:], uint64(len(names)))
	h.Write(n[:])
	for _, name := range names {
		write(name)
		binary.BigEndian.PutUint64(n[:], uint64(len(q[name])))
		h.Write(n[:])
		for _, value := range q[name] {
			write(value)
		}
	}
	write(scope.From(ctx.Context()).Key())
	write(ctx.Header("Accept"))
	var sum [sha256.Size]byte
	var b [48]byte
	out := append(b[:0], `W/"`...)
	out = strconv.AppendInt(out, version, 10)
	out = append(out, '-')
	out = base64.RawURLEncoding.AppendEncode(out, h.Sum(sum[:0])[:16])
	out = append(out, '"')
	return string(out)
}

// etagListed reports whether an If-None-Match header lists tag, comparing
// weakly (W/ prefixes ignored), as RFC 9110 says for If-None-Match. "*" is
// not honoured: whether an answer exists is not known before running the
// operation.
func etagListed(header, tag string) bool {
	if header == "" {
		return false
	}
	want := strings.TrimPrefix(tag, "W/")
	for _, t := range strings.Split(header, ",") {
		if strings.TrimPrefix(strings.TrimSpace(t), "W/") == want {
			return true
		}
	}
	return false
}

// taggedContext adds the ETag to a 200 answer when the operation sends its
// status, so that error answers carry none.
type taggedContext struct {
	humaContext
	etag string
}

// humaContext lets taggedContext embed a huma.Context, whose method Context
// would clash with a field of that name.
type humaContext huma.Context

func (c *taggedContext) SetStatus(code int) {
	if code == http.StatusOK {
		c.SetHeader("ETag", c.etag)
	}
	c.humaContext.SetStatus(code)
}

// Unwrap returns the wrapped context (humago.Unwrap follows it).
func (c *taggedContext) Unwrap() huma.Context { return c.humaContext }

// versionCache reads the dataset version at most once per ttl. While one
// request reads it, the others use the previous value.
type versionCache struct {
	read func(context.Context) (int64, error)
	ttl  time.Duration
	cur  atomic.Pointer[versionEntry]
	mu   sync.Mutex // held while reading
}

type versionEntry struct {
	v  int64
	at time.Time
}

func (c *versionCache) get(ctx context.Context) (int64, bool) {
	e := c.cur.Load()
	if e != nil && time.Since(e.at) < c.ttl {
		return e.v, true
	}
	if !c.mu.TryLock() {
		if e != nil {
			return e.v, true
		}
		return 0, false
	}
	defer c.mu.Unlock()
	if e := c.cur.Load(); e != nil && time.Since(e.at) < c.ttl {
		return e.v, true // read by the request that held the lock
	}
	v, err := c.read(ctx)
	if err != nil {
		return 0, false
	}
	return c.store(v), true
}

// store records v read now, unless a newer version arrived meanwhile (a
// notification during the read), and returns the version held.
func (c *versionCache) store(v int64) int64 {
	for {
		e := c.cur.Load()
		nv := v
		if e != nil && e.v > v {
			nv = e.v
		}
		if c.cur.CompareAndSwap(e, &versionEntry{v: nv, at: time.Now()}) {
			return nv
		}
	}
}

// set records v as the current version, e.g. from a notification that a
// load bumped it, so answers move on without waiting for the ttl. A version
// older than the one held is ignored: notifications may arrive late.
func (c *versionCache) set(v int64) { c.store(v) }
