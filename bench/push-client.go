// Command push-client is the load generator of bench/push.sh: it pushes an
// NDJSON file of readings to the write service (`ingest serve`, POST
// /v1/write) in batches from concurrent clients, and probes how soon the
// read API (`api serve`) shows a pushed reading. Standard library only:
//
//	go run bench/push-client.go -url http://127.0.0.1:8081/v1/write -file readings.ndjson -batch 1000 -clients 32 [-limit N]
//	go run bench/push-client.go -url http://127.0.0.1:8081/v1/write -probe-api http://127.0.0.1:8080 -probes 50
//
// Push (-file): the first -limit readings of the file (0: all; one reading a
// non-empty line, sent as they are, in file order) are cut into batches of
// -batch lines. -clients goroutines each take the next batch from a shared
// counter and POST it as application/x-ndjson; a 503 (or 429) is sent again
// after its Retry-After (1 s when absent) and counted as a retry; any other
// answer but 200 is a failure. A batch's latency runs from its first send to
// its acknowledgement (the 200's body read), retries included. The rate is
// readings / (last acknowledgement - first request). The sums of the
// answers' counts must show every reading inserted and none rejected; only
// a batch sent again after a 503 may find its readings stored already (the
// 503 can come after its commit), as duplicates.
//
// Probe (-probes N with -probe-api): N single-reading bodies of one new
// series (-probe-device, -probe-parameter), the i-th at -probe-start + i
// minutes, pushed one at a time. Before each push it GETs once, so that the
// response cache holds the answer without the reading,
//
//	/v1/readings?device_id=D&parameter=P&from=T&to=T+1m
//	/v1/aggregates?device_id=D&parameter=P&from=T&to=T+1m&bucket=1m&agg=count
//
// and after the push's 200 two goroutines poll one of them each, back to
// back without sleeping, until the readings list the reading and the count
// includes it. A delay runs from the acknowledgement to the end of the first
// answer that shows the reading.
//
// Both wait up to -ready-timeout for /readyz of the services they use. The
// result is one JSON line on stdout, {"push": {...}} and/or {"probe": {...}},
// times in milliseconds; exit status 1 on any failure (after that line when
// the counts are wrong), 2 on usage errors.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type pushResult struct {
	Readings   int   `json:"readings"`
	Batch      int   `json:"batch"`
	Clients    int   `json:"clients"`
	Batches    int   `json:"batches"`
	Requests   int64 `json:"requests"`
	Retries    int64 `json:"retries"`
	Accepted   int64 `json:"accepted"`
	Inserted   int64 `json:"inserted"`
	Duplicates int64 `json:"duplicates"`
	// RetriedDuplicates are the duplicates of batches sent more than once:
	// a 503 can come after the batch was committed all the same.
	RetriedDuplicates int64   `json:"retried_duplicates"`
	Updated           int64   `json:"updated"`
	Rejected          int64   `json:"rejected"`
	WallS             float64 `json:"wall_s"`
	RowsPerS          float64 `json:"rows_per_s"`
	P50Ms             float64 `json:"p50_ms"`
	P99Ms             float64 `json:"p99_ms"`
	MaxMs             float64 `json:"max_ms"`
	MeanMs            float64 `json:"mean_ms"`
}

type probeResult struct {
	Probes          int     `json:"probes"`
	Retries         int64   `json:"probe_retries"`
	AckP50Ms        float64 `json:"ack_p50_ms"`
	AckP99Ms        float64 `json:"ack_p99_ms"`
	ReadingsP50Ms   float64 `json:"readings_p50_ms"`
	ReadingsP99Ms   float64 `json:"readings_p99_ms"`
	ReadingsMaxMs   float64 `json:"readings_max_ms"`
	ReadingsFirst   int     `json:"readings_first_poll"` // probes the first poll after the ack showed
	ReadingsPolls   int64   `json:"readings_polls"`
	AggregatesP50Ms float64 `json:"aggregates_p50_ms"`
	AggregatesP99Ms float64 `json:"aggregates_p99_ms"`
	AggregatesMaxMs float64 `json:"aggregates_max_ms"`
	AggregatesFirst int     `json:"aggregates_first_poll"`
	AggregatesPolls int64   `json:"aggregates_polls"`
}

type output struct {
	Push  *pushResult  `json:"push,omitempty"`
	Probe *probeResult `json:"probe,omitempty"`
}

// writeAnswer is the part of POST /v1/write's 200 answer the client checks.
type writeAnswer struct {
	Format     string `json:"format"`
	Accepted   int64  `json:"accepted"`
	Inserted   int64  `json:"inserted"`
	Duplicates int64  `json:"duplicates"`
	Updated    int64  `json:"updated"`
	Rejected   int64  `json:"rejected"`
	Rejects    []struct {
		Line   int64  `json:"line"`
		Field  string `json:"field"`
		Reason string `json:"reason"`
	} `json:"rejects"`
}

var (
	writeURL     = flag.String("url", "", "the write service's POST /v1/write URL, e.g. http://127.0.0.1:8081/v1/write (required)")
	file         = flag.String("file", "", "NDJSON file of readings to push, one a line")
	batch        = flag.Int("batch", 1000, "readings per request")
	clients      = flag.Int("clients", 32, "concurrent clients")
	limit        = flag.Int("limit", 0, "push only the first this many readings of -file; 0: all")
	probeAPI     = flag.String("probe-api", "", "base URL of the read API for the freshness probes, e.g. http://127.0.0.1:8080")
	probes       = flag.Int("probes", 0, "single-reading pushes whose visibility in the read API is timed (needs -probe-api)")
	probeDevice  = flag.String("probe-device", "bench.push.probe", "device of the probes' series")
	probeParam   = flag.String("probe-parameter", "probe.p001", "parameter of the probes' series")
	probeStart   = flag.String("probe-start", "2024-06-01T00:00:00Z", "time of the first probe reading (RFC 3339, whole minutes); the i-th is i minutes later")
	probeTimeout = flag.Duration("probe-timeout", 30*time.Second, "how long one probe may wait to become visible")
	readyTimeout = flag.Duration("ready-timeout", 30*time.Second, "how long to wait for /readyz of each service")
	reqTimeout   = flag.Duration("request-timeout", 2*time.Minute, "bound on one HTTP request")
	retryFor     = flag.Duration("retry-for", 5*time.Minute, "how long one batch may keep being refused with 503 before the run fails")
)

func main() {
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run bench/push-client.go -url URL [-file FILE -batch N -clients N -limit N] [-probe-api URL -probes N]\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	switch {
	case flag.NArg() > 0:
		usage("unexpected arguments %q", flag.Args())
	case *writeURL == "":
		usage("-url is required")
	case *file == "" && *probes == 0:
		usage("nothing to do: give -file and/or -probes")
	case *batch < 1 || *clients < 1 || *limit < 0 || *probes < 0:
		usage("-batch and -clients must be positive, -limit and -probes not negative")
	case *probes > 0 && *probeAPI == "":
		usage("-probes needs -probe-api")
	}
	hc := &http.Client{
		Timeout: *reqTimeout,
		Transport: &http.Transport{
			Proxy:               nil, // everything goes to 127.0.0.1
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        2 * (*clients + 2),
			MaxIdleConnsPerHost: 2 * (*clients + 2), // the default (2) would reconnect most requests
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
	if err := waitReady(hc, *writeURL); err != nil {
		fail("%v", err)
	}
	if *probes > 0 {
		if err := waitReady(hc, *probeAPI); err != nil {
			fail("%v", err)
		}
	}
	var out output
	var bad error
	if *file != "" {
		r, err := push(hc)
		if err != nil {
			fail("push: %v", err)
		}
		out.Push = r
		// Every reading inserted, or, in a batch sent again after a 503,
		// found stored by the earlier attempt; the database's count is
		// bench/push.sh's check of the rest.
		switch {
		case r.Rejected != 0:
			bad = fmt.Errorf("push: %d readings rejected", r.Rejected)
		case r.Inserted+r.RetriedDuplicates != int64(r.Readings) || r.Duplicates != r.RetriedDuplicates || r.Updated != 0:
			bad = fmt.Errorf("push: the answers count %d readings inserted, not %d (accepted %d, duplicates %d of which %d in retried batches, updated %d)",
				r.Inserted, r.Readings, r.Accepted, r.Duplicates, r.RetriedDuplicates, r.Updated)
		}
	}
	if *probes > 0 && bad == nil {
		r, err := probe(hc)
		if err != nil {
			fail("probe: %v", err)
		}
		out.Probe = r
	}
	line, err := json.Marshal(out)
	if err != nil {
		fail("%v", err)
	}
	fmt.Println(string(line))
	if bad != nil {
		fail("%v", bad)
	}
}

func usage(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "push-client: "+format+"\n", args...)
	flag.Usage()
	os.Exit(2)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "push-client: "+format+"\n", args...)
	os.Exit(1)
}

// waitReady polls /readyz of the service that serves u.
func waitReady(hc *http.Client, u string) error {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return fmt.Errorf("not a URL: %q", u)
	}
	ready := p.Scheme + "://" + p.Host + "/readyz"
	deadline := time.Now().Add(*readyTimeout)
	for {
		resp, err := hc.Get(ready)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %v", ready, *readyTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// post sends body to the write service until it is answered 200, waiting out
// 503 and 429 answers as their Retry-After says; it returns the answer and
// the number of retries.
func post(ctx context.Context, hc *http.Client, body []byte) (writeAnswer, int64, error) {
	var retries int64
	first := time.Now()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, *writeURL, bytes.NewReader(body))
		if err != nil {
			return writeAnswer{}, retries, err
		}
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := hc.Do(req)
		if err != nil {
			return writeAnswer{}, retries, err
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return writeAnswer{}, retries, fmt.Errorf("reading the answer: %w", err)
		}
		switch resp.StatusCode {
		case http.StatusOK:
			var a writeAnswer
			if err := json.Unmarshal(raw, &a); err != nil {
				return a, retries, fmt.Errorf("200 answer is not the expected JSON: %v: %.200s", err, raw)
			}
			if a.Rejected > 0 && len(a.Rejects) > 0 {
				r := a.Rejects[0]
				fmt.Fprintf(os.Stderr, "push-client: %d readings rejected, the first at line %d (%s): %s\n", a.Rejected, r.Line, r.Field, r.Reason)
			}
			return a, retries, nil
		case http.StatusServiceUnavailable, http.StatusTooManyRequests:
			if time.Since(first) > *retryFor {
				return writeAnswer{}, retries, fmt.Errorf("still refused (%s) after %s: %.200s", resp.Status, *retryFor, raw)
			}
			retries++
			select {
			case <-time.After(retryAfter(resp.Header.Get("Retry-After"))):
			case <-ctx.Done():
				return writeAnswer{}, retries, ctx.Err()
			}
		default:
			return writeAnswer{}, retries, fmt.Errorf("answered %s: %.300s", resp.Status, raw)
		}
	}
}

// retryAfter reads a Retry-After header: seconds or an HTTP date; 1 s when
// absent or unreadable.
func retryAfter(v string) time.Duration {
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return time.Second
}

// lines returns the file and the [start, end) offsets of its non-empty lines
// (the end includes the newline), at most max of them when max > 0.
func lines(path string, max int) ([]byte, [][2]int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var out [][2]int
	for off := 0; off < len(data) && (max == 0 || len(out) < max); {
		end := len(data)
		if i := bytes.IndexByte(data[off:], '\n'); i >= 0 {
			end = off + i + 1
		}
		if len(bytes.TrimSpace(data[off:end])) > 0 {
			out = append(out, [2]int{off, end})
		}
		off = end
	}
	return data, out, nil
}

func push(hc *http.Client) (*pushResult, error) {
	data, ls, err := lines(*file, *limit)
	if err != nil {
		return nil, err
	}
	if len(ls) == 0 {
		return nil, fmt.Errorf("%s holds no readings", *file)
	}
	if *limit > 0 && len(ls) < *limit {
		return nil, fmt.Errorf("-limit %d, but %s holds only %d readings", *limit, *file, len(ls))
	}
	nb := (len(ls) + *batch - 1) / *batch
	body := func(b int) []byte {
		first, last := b**batch, min((b+1)**batch, len(ls))-1
		return data[ls[first][0]:ls[last][1]]
	}
	lat := make([]time.Duration, nb)
	var (
		next, requests, retries                           atomic.Int64
		accepted, inserted, duplicates, updated, rejected atomic.Int64
		retriedDuplicates                                 atomic.Int64
		mu                                                sync.Mutex
		lastAck                                           time.Time
		firstErr                                          error
		wg                                                sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	for range *clients {
		wg.Go(func() {
			var last time.Time
			defer func() {
				mu.Lock()
				if last.After(lastAck) {
					lastAck = last
				}
				mu.Unlock()
			}()
			for ctx.Err() == nil {
				b := int(next.Add(1) - 1)
				if b >= nb {
					return
				}
				t0 := time.Now()
				a, n, err := post(ctx, hc, body(b))
				requests.Add(n + 1)
				retries.Add(n)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("batch %d of %d: %w", b+1, nb, err)
					}
					mu.Unlock()
					cancel()
					return
				}
				last = time.Now()
				lat[b] = last.Sub(t0)
				accepted.Add(a.Accepted)
				inserted.Add(a.Inserted)
				duplicates.Add(a.Duplicates)
				if n > 0 {
					retriedDuplicates.Add(a.Duplicates)
				}
				updated.Add(a.Updated)
				rejected.Add(a.Rejected)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	wall := lastAck.Sub(start)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	slices.Sort(lat)
	return &pushResult{
		Readings: len(ls), Batch: *batch, Clients: *clients, Batches: nb,
		Requests: requests.Load(), Retries: retries.Load(),
		Accepted: accepted.Load(), Inserted: inserted.Load(), Duplicates: duplicates.Load(),
		RetriedDuplicates: retriedDuplicates.Load(), Updated: updated.Load(), Rejected: rejected.Load(),
		WallS: round(wall.Seconds(), 6), RowsPerS: round(float64(len(ls))/wall.Seconds(), 1),
		P50Ms: ms(pct(lat, 0.50)), P99Ms: ms(pct(lat, 0.99)), MaxMs: ms(lat[len(lat)-1]),
		MeanMs: ms(sum / time.Duration(len(lat))),
	}, nil
}

// pct is the nearest-rank percentile of sorted durations.
func pct(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return round(float64(d)/1e6, 3) }

func round(x float64, digits int) float64 {
	f := math.Pow(10, float64(digits))
	return math.Round(x*f) / f
}

// visibleFn reports whether an answer's body shows the probe's reading.
type visibleFn func(body []byte) (bool, error)

func readingsVisible(want time.Time) visibleFn {
	return func(body []byte) (bool, error) {
		var page struct {
			Readings []struct {
				Time time.Time `json:"time"`
			} `json:"readings"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return false, fmt.Errorf("/v1/readings answer: %v: %.200s", err, body)
		}
		for _, r := range page.Readings {
			if r.Time.Equal(want) {
				return true, nil
			}
		}
		return false, nil
	}
}

func aggregatesVisible(body []byte) (bool, error) {
	var agg struct {
		Series []struct {
			Points []struct {
				Count int64 `json:"count"`
			} `json:"points"`
		} `json:"series"`
	}
	if err := json.Unmarshal(body, &agg); err != nil {
		return false, fmt.Errorf("/v1/aggregates answer: %v: %.200s", err, body)
	}
	var n int64
	for _, s := range agg.Series {
		for _, p := range s.Points {
			n += p.Count
		}
	}
	return n >= 1, nil
}

// get fetches u once and says whether it shows the reading: a 404 (the
// series does not exist yet) does not.
func get(ctx context.Context, hc *http.Client, u string, visible visibleFn) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return false, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return visible(body)
	case http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("GET %s: %s: %.300s", u, resp.Status, body)
}

// poll GETs u back to back until it shows the reading; it returns the time
// from ack to that answer and the number of GETs.
func poll(ctx context.Context, hc *http.Client, u string, visible visibleFn, ack time.Time) (time.Duration, int64, error) {
	var n int64
	for {
		n++
		ok, err := get(ctx, hc, u, visible)
		if err != nil && ctx.Err() == nil {
			return 0, n, err
		}
		if ok {
			return time.Since(ack), n, nil
		}
		if ctx.Err() != nil {
			return 0, n, fmt.Errorf("%s: the reading did not show within %s (%d polls)", u, *probeTimeout, n)
		}
	}
}

func probe(hc *http.Client) (*probeResult, error) {
	t0, err := time.Parse(time.RFC3339Nano, *probeStart)
	if err != nil {
		return nil, fmt.Errorf("-probe-start: %v", err)
	}
	if t0.Truncate(time.Minute) != t0 {
		return nil, errors.New("-probe-start must be a whole minute")
	}
	base := *probeAPI
	for len(base) > 0 && base[len(base)-1] == '/' {
		base = base[:len(base)-1]
	}
	res := &probeResult{Probes: *probes}
	var acks, rd, ad []time.Duration
	for i := range *probes {
		ts := t0.Add(time.Duration(i) * time.Minute).UTC()
		window := url.Values{
			"device_id": {*probeDevice}, "parameter": {*probeParam},
			"from": {ts.Format(time.RFC3339Nano)}, "to": {ts.Add(time.Minute).Format(time.RFC3339Nano)},
		}
		readingsURL := base + "/v1/readings?" + window.Encode()
		window.Set("bucket", "1m")
		window.Set("agg", "count")
		aggregatesURL := base + "/v1/aggregates?" + window.Encode()
		wantReading := readingsVisible(ts)

		// Prime the response cache with the answers without the reading.
		ctx := context.Background()
		for _, q := range []struct {
			u string
			v visibleFn
		}{{readingsURL, wantReading}, {aggregatesURL, aggregatesVisible}} {
			ok, err := get(ctx, hc, q.u, q.v)
			if err != nil {
				return nil, fmt.Errorf("probe %d, before the push: %w", i+1, err)
			}
			if ok {
				return nil, fmt.Errorf("probe %d: %s shows the reading before it was pushed: is %s/%s new?", i+1, q.u, *probeDevice, *probeParam)
			}
		}

		body := fmt.Appendf(nil, `{"device_id":%q,"parameter":%q,"timestamp":%q,"value":%d,"type":"numeric"}`+"\n",
			*probeDevice, *probeParam, ts.Format(time.RFC3339Nano), i)
		sent := time.Now()
		a, n, err := post(ctx, hc, body)
		if err != nil {
			return nil, fmt.Errorf("probe %d: push: %w", i+1, err)
		}
		ack := time.Now()
		res.Retries += n
		if a.Inserted+min(n, 1)*a.Duplicates != 1 {
			return nil, fmt.Errorf("probe %d: push answered inserted %d (duplicates %d, rejected %d), want 1", i+1, a.Inserted, a.Duplicates, a.Rejected)
		}
		acks = append(acks, ack.Sub(sent))

		pctx, cancel := context.WithTimeout(ctx, *probeTimeout)
		var wg sync.WaitGroup
		var rDelay, aDelay time.Duration
		var rPolls, aPolls int64
		var rErr, aErr error
		wg.Go(func() { rDelay, rPolls, rErr = poll(pctx, hc, readingsURL, wantReading, ack) })
		wg.Go(func() { aDelay, aPolls, aErr = poll(pctx, hc, aggregatesURL, aggregatesVisible, ack) })
		wg.Wait()
		cancel()
		if err := errors.Join(rErr, aErr); err != nil {
			return nil, fmt.Errorf("probe %d: %w", i+1, err)
		}
		rd, ad = append(rd, rDelay), append(ad, aDelay)
		res.ReadingsPolls += rPolls
		res.AggregatesPolls += aPolls
		if rPolls == 1 {
			res.ReadingsFirst++
		}
		if aPolls == 1 {
			res.AggregatesFirst++
		}
	}
	for _, s := range [][]time.Duration{acks, rd, ad} {
		slices.Sort(s)
	}
	res.AckP50Ms, res.AckP99Ms = ms(pct(acks, 0.50)), ms(pct(acks, 0.99))
	res.ReadingsP50Ms, res.ReadingsP99Ms, res.ReadingsMaxMs = ms(pct(rd, 0.50)), ms(pct(rd, 0.99)), ms(rd[len(rd)-1])
	res.AggregatesP50Ms, res.AggregatesP99Ms, res.AggregatesMaxMs = ms(pct(ad, 0.50)), ms(pct(ad, 0.99)), ms(ad[len(ad)-1])
	return res, nil
}
