// Package ratelimit limits the request rate of each caller with a token
// bucket per caller name, keeping at most a fixed number of buckets.
package ratelimit

import (
	"container/list"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxKeys is how many callers' buckets a Limiter keeps by default.
const DefaultMaxKeys = 10_000

// Limiter holds one token bucket per caller. When it holds maxKeys buckets,
// a new caller's bucket replaces the least recently used one: that caller
// has been idle longest, so its bucket has most likely refilled already, and
// memory stays bounded whatever the number of callers.
type Limiter struct {
	rate    rate.Limit
	burst   int
	maxKeys int

	mu      sync.Mutex
	buckets map[string]*list.Element // of *entry
	lru     *list.List               // front: most recently used
}

type entry struct {
	key string
	lim *rate.Limiter
}

// New returns a Limiter allowing each caller perSecond requests a second on
// average and burst at once (at least 1), keeping at most maxKeys buckets
// (DefaultMaxKeys when maxKeys <= 0). perSecond must be positive.
func New(perSecond float64, burst, maxKeys int) *Limiter {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &Limiter{
		rate: rate.Limit(perSecond), burst: max(burst, 1), maxKeys: maxKeys,
		buckets: make(map[string]*list.Element), lru: list.New(),
	}
}

// Rate returns the configured requests per second and burst.
func (l *Limiter) Rate() (perSecond float64, burst int) { return float64(l.rate), l.burst }

// Allow takes a token from key's bucket at now. When the bucket is empty it
// takes nothing and returns false with the time until a token is there.
func (l *Limiter) Allow(key string, now time.Time) (bool, time.Duration) {
	lim := l.bucket(key)
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Duration(math.MaxInt64)
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Len returns how many buckets l holds.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

func (l *Limiter) bucket(key string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.buckets[key]; ok {
		l.lru.MoveToFront(el)
		return el.Value.(*entry).lim
	}
	if l.lru.Len() >= l.maxKeys {
		oldest := l.lru.Back()
		l.lru.Remove(oldest)
		delete(l.buckets, oldest.Value.(*entry).key)
	}
	e := &entry{key: key, lim: rate.NewLimiter(l.rate, l.burst)}
	l.buckets[key] = l.lru.PushFront(e)
	return e.lim
}
