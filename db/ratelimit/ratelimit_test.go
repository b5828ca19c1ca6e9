package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	l := New(2, 3, 0) // 2/s, burst 3
	now := time.Unix(1_700_000_000, 0)
	for i := range 3 {
		if ok, _ := l.Allow("a", now); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.Allow("a", now)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("4th request at once: ok %v, wait %v; want refused, 500ms", ok, wait)
	}
	// A refused request takes no token: after the wait, exactly one passes.
	if ok, _ := l.Allow("a", now.Add(500*time.Millisecond)); !ok {
		t.Error("refused after waiting as told")
	}
	if ok, _ := l.Allow("a", now.Add(500*time.Millisecond)); ok {
		t.Error("a second request passed on one refilled token")
	}
	// Callers do not share buckets.
	if ok, _ := l.Allow("b", now); !ok {
		t.Error("caller b limited by caller a's requests")
	}
	// A full second refills two tokens.
	later := now.Add(1500 * time.Millisecond)
	for i := range 2 {
		if ok, _ := l.Allow("a", later); !ok {
			t.Fatalf("refilled request %d refused", i+1)
		}
	}
}

func TestSlowRate(t *testing.T) {
	l := New(0.1, 0, 0) // one request per 10s, burst at least 1
	now := time.Unix(1_700_000_000, 0)
	if ok, _ := l.Allow("a", now); !ok {
		t.Fatal("first request refused")
	}
	if ok, wait := l.Allow("a", now); ok || wait != 10*time.Second {
		t.Fatalf("second request: ok %v wait %v, want refused for 10s", ok, wait)
	}
	if _, burst := l.Rate(); burst != 1 {
		t.Errorf("burst %d, want 1", burst)
	}
}

// TestBounded: however many callers come, the limiter keeps maxKeys
// buckets, evicting the least recently used.
func TestBounded(t *testing.T) {
	l := New(1, 1, 100)
	now := time.Unix(1_700_000_000, 0)
	l.Allow("keep", now)
	for i := range 1000 {
		l.Allow(fmt.Sprint("caller", i), now)
		if i%10 == 0 {
			l.Allow("keep", now) // recently used: never evicted
		}
	}
	if n := l.Len(); n != 100 {
		t.Fatalf("%d buckets, want 100", n)
	}
	if ok, _ := l.Allow("keep", now); ok {
		t.Error(`the bucket of "keep" was evicted although it was used recently`)
	}
	// caller0's bucket was evicted: it starts full again.
	if ok, _ := l.Allow("caller0", now); !ok {
		t.Error("an evicted caller's new bucket is not full")
	}
}
