//go:build ignore

// Command dashboard-client is the load generator of bench/api.sh's dashboard
// run: VIEWERS viewers watch one dashboard of PANELS panels (one API path
// each), refreshing it with the refresh interval compressed to nothing: each
// viewer requests its panels one after the other and starts again. Midway,
// it runs a load (the command after --) and notes when that command exits,
// which is after its readings committed and the dataset version moved for
// the last time.
//
//	go run bench/dashboard-client.go -base URL -panels FILE -viewers 50 -duration 30s \
//	  -fresh-before DIR -fresh-url URL -out REPORT -- ingest load ...
//
// Every answer is kept as (panel, time received, dataset version from its
// ETag, SHA-256 of its body). After the run it asks -fresh-url, an API with
// its response cache off, for every panel: the fresh computation at the
// final version. It then checks that every answer carrying the final
// version equals that fresh answer byte for byte, and that every answer
// carrying the first version equals the fresh answer before the load
// (-fresh-before: the bodies fetched before the run, panel-N.json). The
// staleness window is the time from the load's exit to the last answer still
// carrying an older version, by the time it was received (requests in flight
// at the load answer at the version they started with) and by the time it
// was sent. It prints one "DASH key=value ..." line and
// exits 1 when a check fails.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"hash/maphash"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type answer struct {
	panel   int
	sent    time.Time
	at      time.Time
	version int64
	sum     uint64
	body    []byte // set by get, kept only as the sample of a new answer
}

// Answers are compared by a 64-bit hash of their bytes (maphash: the
// comparison costs the load generator little of the CPU it shares with the
// API); one seed for the whole run.
var seed = maphash.MakeSeed()

func sum(b []byte) uint64 { return maphash.Bytes(seed, b) }

func main() {
	base := flag.String("base", "", "the API under test, e.g. http://127.0.0.1:8080")
	fresh := flag.String("fresh-url", "", "an API on the same database with its response cache off")
	panelsFile := flag.String("panels", "", "file of the dashboard's panels, one API path per line")
	viewers := flag.Int("viewers", 50, "viewers refreshing the dashboard at once")
	duration := flag.Duration("duration", 30*time.Second, "length of the run; the load starts at half of it")
	before := flag.String("fresh-before", "", "directory of the fresh answers before the load, panel-N.json (N from 0)")
	dump := flag.String("dump", "", "directory for the first answer that differs from the fresh one, per panel, beside the fresh one")
	flag.Parse()
	load := flag.Args()
	if *base == "" || *fresh == "" || *panelsFile == "" || *before == "" || len(load) == 0 {
		fmt.Fprintln(os.Stderr, "usage: dashboard-client -base URL -fresh-url URL -panels FILE -fresh-before DIR [-viewers N] [-duration D] -- LOAD COMMAND")
		os.Exit(2)
	}
	if err := run(*base, *fresh, *panelsFile, *before, *dump, *viewers, *duration, load); err != nil {
		fmt.Fprintln(os.Stderr, "dashboard-client:", err)
		os.Exit(1)
	}
}

func run(base, fresh, panelsFile, beforeDir, dumpDir string, viewers int, duration time.Duration, load []string) error {
	raw, err := os.ReadFile(panelsFile)
	if err != nil {
		return err
	}
	var panels []string
	for _, l := range strings.Split(string(raw), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			panels = append(panels, l)
		}
	}
	if len(panels) == 0 {
		return fmt.Errorf("%s: no panels", panelsFile)
	}
	freshBefore := make([]uint64, len(panels))
	freshBeforeBody := make([][]byte, len(panels))
	for i := range panels {
		b, err := os.ReadFile(filepath.Join(beforeDir, fmt.Sprintf("panel-%d.json", i)))
		if err != nil {
			return err
		}
		freshBefore[i], freshBeforeBody[i] = sum(b), b
	}
	// One body of each distinct answer, for the dump.
	type key struct {
		panel int
		sum   uint64
	}
	var samplesMu sync.Mutex
	samples := map[key][]byte{}
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: viewers, DisableCompression: true,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}, Timeout: 30 * time.Second}

	var (
		mu       sync.Mutex
		answers  []answer
		errs     atomic.Int64
		firstErr atomic.Value
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	start := time.Now()
	for v := range viewers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]answer, 0, 4096)
			var buf bytes.Buffer
			// Viewers open the dashboard at different panels, as their
			// refreshes drift apart.
			for p := v % len(panels); ; p = (p + 1) % len(panels) {
				select {
				case <-stop:
					mu.Lock()
					answers = append(answers, local...)
					mu.Unlock()
					return
				default:
				}
				a, err := get(client, base+panels[p], &buf)
				if err != nil {
					if errs.Add(1) == 1 {
						firstErr.Store(fmt.Errorf("panel %d: %w", p, err))
					}
					continue
				}
				a.panel = p
				samplesMu.Lock()
				if _, ok := samples[key{p, a.sum}]; !ok && len(samples) < 10_000 {
					samples[key{p, a.sum}] = bytes.Clone(a.body)
				}
				samplesMu.Unlock()
				a.body = nil
				local = append(local, a)
			}
		}()
	}

	time.Sleep(duration / 2)
	loadStart := time.Now()
	cmd := exec.Command(load[0], load[1:]...)
	var loadLog bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &loadLog
	loadErr := cmd.Run()
	loadEnd := time.Now()
	if rest := duration - loadEnd.Sub(start); rest > 0 {
		time.Sleep(rest)
	}
	close(stop)
	wg.Wait()
	end := time.Now()
	if loadErr != nil {
		return fmt.Errorf("load %v: %w\n%s", load, loadErr, tail(loadLog.String(), 2000))
	}

	// The fresh computation at the final version.
	freshAfter := make([]uint64, len(panels))
	freshAfterBody := make([][]byte, len(panels))
	var finalVersion int64
	for i, p := range panels {
		a, err := get(client, fresh+p, new(bytes.Buffer))
		if err != nil {
			return fmt.Errorf("fresh answer of panel %d: %w", i, err)
		}
		freshAfter[i], freshAfterBody[i] = a.sum, a.body
		if i == 0 {
			finalVersion = a.version
		} else if a.version != finalVersion {
			return fmt.Errorf("the fresh API answered versions %d and %d: the dataset moved after the load", finalVersion, a.version)
		}
	}

	slices.SortFunc(answers, func(a, b answer) int { return a.at.Compare(b.at) })
	var firstVersion int64 = -1
	if len(answers) > 0 {
		firstVersion = answers[0].version
	}
	var nFirst, nFinal, nBetween, wrongFirst, wrongFinal, staleAfter int
	var lastStale, lastStaleSent time.Time
	staleSent := 0
	var badPanel = -1
	dumped := map[int]bool{}
	dumpWrong := func(a answer, fresh []byte) {
		if dumpDir == "" || dumped[a.panel] {
			return
		}
		dumped[a.panel] = true
		_ = os.MkdirAll(dumpDir, 0o755)
		_ = os.WriteFile(filepath.Join(dumpDir, fmt.Sprintf("panel-%d-v%d-served.json", a.panel, a.version)), samples[key{a.panel, a.sum}], 0o644)
		_ = os.WriteFile(filepath.Join(dumpDir, fmt.Sprintf("panel-%d-v%d-fresh.json", a.panel, a.version)), fresh, 0o644)
	}
	// check counts a and reports whether it differs from the fresh answer
	// of its panel at its version.
	check := func(a answer, n *int, want []uint64, wantBody [][]byte) int {
		*n++
		if a.sum == want[a.panel] {
			return 0
		}
		badPanel = a.panel
		dumpWrong(a, wantBody[a.panel])
		return 1
	}
	for _, a := range answers {
		switch {
		case a.version == finalVersion:
			wrongFinal += check(a, &nFinal, freshAfter, freshAfterBody)
		case a.version == firstVersion:
			wrongFirst += check(a, &nFirst, freshBefore, freshBeforeBody)
		default:
			nBetween++
		}
		if a.version != finalVersion && a.at.After(loadEnd) {
			staleAfter++
			lastStale = a.at
		}
		if a.version != finalVersion && a.sent.After(loadEnd) {
			staleSent++
			if a.sent.After(lastStaleSent) {
				lastStaleSent = a.sent
			}
		}
	}
	window, windowSent := time.Duration(0), time.Duration(0)
	if !lastStale.IsZero() {
		window = lastStale.Sub(loadEnd)
	}
	if !lastStaleSent.IsZero() {
		windowSent = lastStaleSent.Sub(loadEnd)
	}
	secs := end.Sub(start).Seconds()
	fmt.Printf("DASH requests=%d rate=%.1f errors=%d panels=%d viewers=%d first_version=%d final_version=%d "+
		"answers_first=%d answers_between=%d answers_final=%d wrong_first=%d wrong_final=%d "+
		"load_s=%.3f stale_after_load=%d staleness_ms=%.1f stale_sent_after_load=%d staleness_sent_ms=%.1f\n",
		len(answers), float64(len(answers))/secs, errs.Load(), len(panels), viewers, firstVersion, finalVersion,
		nFirst, nBetween, nFinal, wrongFirst, wrongFinal,
		loadEnd.Sub(loadStart).Seconds(), staleAfter, float64(window.Microseconds())/1000,
		staleSent, float64(windowSent.Microseconds())/1000)
	var failed []string
	if e := errs.Load(); e > 0 {
		failed = append(failed, fmt.Sprintf("%d requests failed, the first: %v", e, firstErr.Load()))
	}
	if wrongFirst+wrongFinal > 0 {
		failed = append(failed, fmt.Sprintf("%d answers differ from the fresh computation at their version (panel %d among them)", wrongFirst+wrongFinal, badPanel))
	}
	if firstVersion == finalVersion {
		failed = append(failed, "the dataset version did not move: the load changed nothing")
	}
	if nFinal == 0 {
		failed = append(failed, "no answer carried the final version")
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}

// get fetches one path and reads the dataset version from the weak ETag
// the API sets, W/"<version>-<hash>".
func get(c *http.Client, url string, buf *bytes.Buffer) (answer, error) {
	sent := time.Now()
	resp, err := c.Get(url)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	buf.Reset()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return answer{}, err
	}
	body := buf.Bytes()
	if resp.StatusCode != http.StatusOK {
		return answer{}, fmt.Errorf("%s: status %d: %s", url, resp.StatusCode, tail(string(body), 300))
	}
	tag := strings.TrimPrefix(resp.Header.Get("ETag"), `W/"`)
	dash := strings.IndexByte(tag, '-')
	if dash < 1 {
		return answer{}, fmt.Errorf("%s: ETag %q carries no version", url, resp.Header.Get("ETag"))
	}
	v, err := strconv.ParseInt(tag[:dash], 10, 64)
	if err != nil {
		return answer{}, fmt.Errorf("%s: ETag %q: %w", url, resp.Header.Get("ETag"), err)
	}
	return answer{sent: sent, at: time.Now(), version: v, sum: sum(body), body: body}, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
