package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/db/dbtest"
)

// server is a running `ingest serve`.
type server struct {
	url string
	cmd *exec.Cmd
	out *bytes.Buffer
}

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startServe starts the real program's write service on addr and waits
// until it is ready.
func startServe(t *testing.T, dsn, addr string, args ...string) *server {
	t.Helper()
	cmd := ingestCmd(t, dsn, append([]string{"serve", "-addr", addr, "-auth", "off", "-refresh-interval", "200ms"}, args...)...)
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{url: "http://" + addr, cmd: cmd, out: out}
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
			_ = s.cmd.Wait()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("ingest serve did not become ready:\n%s", out)
	return nil
}

type pushResult struct {
	Accepted, Inserted, Duplicates, Updated, Rejected int64
}

// post pushes an NDJSON body; it returns the status and the result of a 200.
func post(url string, body []byte) (int, pushResult, error) {
	resp, err := http.Post(url+"/v1/write", "application/x-ndjson", bytes.NewReader(body))
	if err != nil {
		return 0, pushResult{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, pushResult{}, err
	}
	var r pushResult
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &r); err != nil {
			return 0, r, fmt.Errorf("%s: %w", raw, err)
		}
	}
	return resp.StatusCode, r, nil
}

// pushLines builds readings of devices × params × points, some text, as
// NDJSON lines, at -04:00 and with values of large mean and small spread.
func pushLines(devices, params, points int) []string {
	start := time.Date(2024, 5, 1, 0, 0, 0, 0, time.FixedZone("", -4*3600))
	var lines []string
	for d := range devices {
		for p := range params {
			for i := range points {
				ts := start.Add(time.Duration(i) * 7 * time.Second).Format(time.RFC3339Nano)
				if p == 0 {
					lines = append(lines, fmt.Sprintf(`{"device_id":"dev.%d","parameter":"state","timestamp":%q,"value":"s%d","type":"text"}`, d, ts, i%3))
					continue
				}
				lines = append(lines, fmt.Sprintf(`{"device_id":"dev.%d","parameter":"p%d","timestamp":%q,"value":%v}`, d, p, ts, 1e6+float64((i*31+p)%97)/1000))
			}
		}
	}
	return lines
}

// TestServeConcurrentWritersEndExact: clients push the same readings, in
// different orders and batches, at once. Each reading is inserted exactly
// once, the answers add up, and the end state equals a batch job's load of
// the same readings: readings, catalog counts and, once the service's
// refresher ran, rollups equal to a recomputation.
func TestServeConcurrentWritersEndExact(t *testing.T) {
	lines := pushLines(3, 5, 400)
	file := filepath.Join(t.TempDir(), "all.ndjson")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := dbtest.New(t)
	if out, err := ingestCmd(t, ref.DSN, "load", "-rollups", "wait", file).CombinedOutput(); err != nil {
		t.Fatalf("reference load: %v\n%s", err, out)
	}
	want := readTotals(t, ref.Pool)

	d := dbtest.New(t)
	v0 := datasetVersion(t, d.Pool)
	s := startServe(t, d.DSN, freeAddr(t))
	const clients = 8
	var inserted, duplicates atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			order := rng.Perm(len(lines))
			for i := 0; i < len(order); {
				n := 1 + rng.IntN(300)
				var body bytes.Buffer
				for _, j := range order[i:min(i+n, len(order))] {
					body.WriteString(lines[j])
					body.WriteByte('\n')
				}
				i += n
				status, r, err := post(s.url, body.Bytes())
				if err != nil || status != http.StatusOK {
					errs <- fmt.Errorf("client %d: status %d, %v", c, status, err)
					return
				}
				if r.Inserted+r.Duplicates != r.Accepted || r.Rejected != 0 {
					errs <- fmt.Errorf("client %d: answer %+v does not add up", c, r)
					return
				}
				inserted.Add(r.Inserted)
				duplicates.Add(r.Duplicates)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := int64(len(lines)); inserted.Load() != n || duplicates.Load() != (clients-1)*n {
		t.Errorf("answers count %d inserted and %d duplicates; want %d and %d", inserted.Load(), duplicates.Load(), n, (clients-1)*n)
	}
	if v := datasetVersion(t, d.Pool); v <= v0 {
		t.Errorf("dataset version %d did not move past %d", v, v0)
	}
	// The refresher (every 200 ms here) materializes what the pushes left
	// pending; the bound is generous for a loaded CI machine.
	deadline := time.Now().Add(20 * time.Second)
	var got totals
	for {
		got = readTotals(t, d.Pool)
		if got.pending == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got.readings != want.readings || got.numeric != want.numeric || got.text != want.text || got.catalog != want.catalog ||
		got.rollup1m != want.rollup1m || got.pending != 0 || got.digest != want.digest {
		t.Errorf("after the pushes: %+v; the batch job's load of the same readings: %+v\n%s", got, want, s.out)
	}
	assertCatalogRecounts(t, d.Pool)
	assertRollupsRecompute(t, d.Pool)
}

// TestServeFreshAtAcknowledgement: at the moment a push is answered, its
// readings are stored, the dataset version has moved and the range is
// pending, which makes the API answer aggregates over it from the raw
// readings (TestQueryPendingRangeServedRaw in the API covers that side).
func TestServeFreshAtAcknowledgement(t *testing.T) {
	d := dbtest.New(t)
	s := startServe(t, d.DSN, freeAddr(t), "-refresh-interval", "1h")
	for i := range 5 {
		v0 := datasetVersion(t, d.Pool)
		ts := time.Date(2024, 6, 1, 12, 0, i, 0, time.UTC).Format(time.RFC3339)
		body := fmt.Sprintf(`{"device_id":"fresh","parameter":"p","timestamp":%q,"value":%d}`+"\n", ts, i)
		status, r, err := post(s.url, []byte(body))
		if err != nil || status != http.StatusOK || r.Inserted != 1 {
			t.Fatalf("push %d: %d %+v %v", i, status, r, err)
		}
		var stored, pending int
		err = d.Pool.QueryRow(t.Context(), `
			SELECT (SELECT count(*) FROM sensorhub.readings r JOIN sensorhub.series USING (series_id) WHERE device_id = 'fresh' AND r.time = $1),
			       (SELECT count(*) FROM sensorhub.rollup_pending WHERE lo <= $1 AND hi >= $1)`, ts).Scan(&stored, &pending)
		if err != nil {
			t.Fatal(err)
		}
		if stored != 1 || pending == 0 {
			t.Errorf("push %d acknowledged, but stored=%d, pending ranges over it=%d", i, stored, pending)
		}
		if v := datasetVersion(t, d.Pool); v <= v0 {
			t.Errorf("push %d acknowledged, but the dataset version is still %d", i, v)
		}
	}
}

// TestServeKillLosesNothingAcknowledged SIGKILLs the service while clients
// push. Every batch answered 200 before the kill is stored in full; the
// clients send what got no answer again to a restarted service, and the
// end holds every reading exactly once.
func TestServeKillLosesNothingAcknowledged(t *testing.T) {
	d := dbtest.New(t)
	addr := freeAddr(t)
	s := startServe(t, d.DSN, addr)
	const clients, batches, perBatch = 4, 60, 100
	batchBody := func(c, b int) []byte {
		var body bytes.Buffer
		base := time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(b*perBatch) * time.Second)
		for i := range perBatch {
			fmt.Fprintf(&body, `{"device_id":"kill.%d","parameter":"p","timestamp":%q,"value":%d}`+"\n", c, base.Add(time.Duration(i)*time.Second).Format(time.RFC3339), b*perBatch+i)
		}
		return body.Bytes()
	}
	var mu sync.Mutex
	acked := map[[2]int]bool{}
	var killed atomic.Bool
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for b := 0; b < batches; {
				status, _, err := post("http://"+addr, batchBody(c, b))
				if err != nil || status != http.StatusOK {
					time.Sleep(50 * time.Millisecond) // the service is down or busy: send it again
					continue
				}
				mu.Lock()
				if !killed.Load() {
					acked[[2]int{c, b}] = true
				}
				mu.Unlock()
				b++
			}
		})
	}
	// Kill once a good part is acknowledged.
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= clients*batches/4 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	killed.Store(true)
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = s.cmd.Wait()
	ackedAtKill := len(acked)
	mu.Unlock()
	for k := range acked {
		var n int
		if err := d.Pool.QueryRow(t.Context(), `
			SELECT count(*) FROM sensorhub.readings r JOIN sensorhub.series USING (series_id)
			WHERE device_id = $1 AND r.value_num >= $2 AND r.value_num < $3`,
			fmt.Sprintf("kill.%d", k[0]), k[1]*perBatch, (k[1]+1)*perBatch).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != perBatch {
			t.Errorf("batch %v was acknowledged before the kill, but %d of its %d readings are stored", k, n, perBatch)
		}
	}
	t.Logf("%d batches acknowledged when the service was killed", ackedAtKill)
	startServe(t, d.DSN, addr)
	wg.Wait()
	got := readTotals(t, d.Pool)
	if got.readings != clients*batches*perBatch || got.catalog != got.readings {
		t.Errorf("after restart and retries: %+v; want %d readings, counted once in the catalog", got, clients*batches*perBatch)
	}
	assertCatalogRecounts(t, d.Pool)
}

// TestOpenAPIFileUpToDate fails when the repository's openapi-write-3.0.yaml
// is not what the code generates.
func TestOpenAPIFileUpToDate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "openapi.yaml")
	if code, _, stderr := runCLI(t, "openapi", "-o", out); code != 0 {
		t.Fatalf("ingest openapi: exit %d: %s", code, stderr)
	}
	generated, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(generated, []byte("openapi: 3.0.3")) || !bytes.Contains(generated, []byte("/v1/write:")) {
		t.Fatalf("generated document is not the write API's OpenAPI 3.0.3: %.200s", generated)
	}
	committed, err := os.ReadFile(filepath.Join("..", "..", "openapi-write-3.0.yaml"))
	if err != nil || !bytes.Equal(committed, generated) {
		t.Fatalf("openapi-write-3.0.yaml at the repository root is missing or out of date (%v); regenerate it from the repository root with\n\tgo run ./services/ingest openapi -o openapi-write-3.0.yaml", err)
	}
}
