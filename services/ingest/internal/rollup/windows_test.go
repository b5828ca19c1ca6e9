package rollup_test

import (
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/services/ingest/internal/rollup"
)

// TestWindows: a refresh is cut at the chunk boundaries aligned to the
// width, and the windows cover the range's buckets exactly once.
func TestWindows(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	r := rollup.Range{Lo: at("2024-01-01T10:17:30Z"), Hi: at("2024-01-15T00:00:00Z")}
	// Chunks of 7 days from the epoch end on Thursdays; one edge is not on an
	// hour, as a chunk interval of 90 minutes would give.
	edges := []time.Time{at("2024-01-04T00:00:00Z"), at("2024-01-04T01:30:00Z"), at("2024-01-11T00:00:00Z"), at("2024-01-15T00:00:00Z")}
	for _, tc := range []struct {
		w    time.Duration
		want []string
	}{
		{time.Minute, []string{"2024-01-01T10:17:00Z", "2024-01-04T00:00:00Z", "2024-01-04T01:30:00Z", "2024-01-11T00:00:00Z", "2024-01-15T00:00:00Z", "2024-01-15T00:01:00Z"}},
		{time.Hour, []string{"2024-01-01T10:00:00Z", "2024-01-04T00:00:00Z", "2024-01-04T01:00:00Z", "2024-01-11T00:00:00Z", "2024-01-15T00:00:00Z", "2024-01-15T01:00:00Z"}},
		{24 * time.Hour, []string{"2024-01-01T00:00:00Z", "2024-01-04T00:00:00Z", "2024-01-11T00:00:00Z", "2024-01-15T00:00:00Z", "2024-01-16T00:00:00Z"}},
	} {
		got := rollup.Windows(r, edges, tc.w)
		if len(got) != len(tc.want)-1 {
			t.Fatalf("width %v: %d windows %v; want %d", tc.w, len(got), got, len(tc.want)-1)
		}
		for i, win := range got {
			if !win[0].Equal(at(tc.want[i])) || !win[1].Equal(at(tc.want[i+1])) {
				t.Errorf("width %v: window %d is [%v, %v); want [%s, %s)", tc.w, i, win[0], win[1], tc.want[i], tc.want[i+1])
			}
		}
	}
	if got := rollup.Windows(r, nil, time.Hour); len(got) != 1 || !got[0][0].Equal(at("2024-01-01T10:00:00Z")) || !got[0][1].Equal(at("2024-01-15T01:00:00Z")) {
		t.Errorf("no edges: %v; want the whole range in one window", got)
	}
}
