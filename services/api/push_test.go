package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/db/dbtest"
)

// freshnessBound is the documented bound from a push's acknowledgement to
// the API's answers including it: with LISTEN the API learns of the new
// dataset version by NOTIFY, in milliseconds (1 s leaves room for a loaded
// machine); without it, by its once-a-second poll, so within 1 s plus the
// time of the answer itself, bounded here at 1.5 s.
var freshnessBound = map[string]time.Duration{"on": time.Second, "off": 1500 * time.Millisecond}

// TestPushedReadingsServedWithinBound runs the real write service (`ingest
// serve`, built from this workspace) and the API, as the reader, on one
// database; the API's response cache is on and has cached the answers
// before each push. Every pushed reading must show in /v1/readings and in
// the count of its /v1/aggregates bucket within freshnessBound of its
// acknowledgement, with LISTEN and with polling only.
func TestPushedReadingsServedWithinBound(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the ingest binary")
	}
	ingest := filepath.Join(t.TempDir(), "ingest")
	build := exec.Command("go", "build", "-o", ingest, "github.com/sensorhub/sensorhub/services/ingest")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build ingest: %v\n%s", err, out)
	}
	for _, listen := range []string{"on", "off"} {
		t.Run("db-listen="+listen, func(t *testing.T) {
			d := dbtest.New(t)
			waddr := freeAddr(t)
			serve := exec.Command(ingest, "serve", "-addr", waddr, "-auth", "off", "-log-format", "json")
			serve.Env = append(os.Environ(), "DATABASE_URL="+d.DSN)
			var wlog bytes.Buffer
			serve.Stdout, serve.Stderr = &wlog, &wlog
			if err := serve.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = serve.Process.Kill(); _ = serve.Wait() })
			addrs, _, _, _ := serving(t, map[string]string{
				"DATABASE_URL": d.RoleDSN(t, "sensorhub_reader"), "SENSORHUB_API_ADDR": "127.0.0.1:0", "SENSORHUB_ADMIN_ADDR": "127.0.0.1:0",
				"SENSORHUB_AUTH": "off", "SENSORHUB_DB_LISTEN": listen, "LOG_FORMAT": "json",
			})
			api := "http://" + addrs["api"]
			write := "http://" + waddr
			waitReady(t, write, &wlog)

			from, to := "2024-06-01T00:00:00Z", "2024-06-02T00:00:00Z"
			readingsURL := api + "/v1/readings?device_id=fresh&parameter=p&from=" + url.QueryEscape(from) + "&to=" + url.QueryEscape(to)
			aggURL := api + "/v1/aggregates?device_id=fresh&parameter=p&from=" + url.QueryEscape(from) + "&to=" + url.QueryEscape(to) + "&bucket=1h&agg=count"
			var worst time.Duration
			for i := range 8 {
				ts := time.Date(2024, 6, 1, 3, i, 0, 0, time.UTC).Format(time.RFC3339)
				if i > 0 {
					// Cache the answers the push makes stale.
					readingsCount(t, readingsURL)
					aggCount(t, aggURL)
				}
				body := fmt.Sprintf(`{"device_id":"fresh","parameter":"p","timestamp":%q,"value":%d}`+"\n", ts, i)
				resp, err := http.Post(write+"/v1/write", "application/x-ndjson", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				acked := time.Now()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("push %d: %s\n%s", i, resp.Status, &wlog)
				}
				for {
					if readingsCount(t, readingsURL) == i+1 && aggCount(t, aggURL) == i+1 {
						break
					}
					if time.Since(acked) > freshnessBound[listen] {
						t.Fatalf("push %d: not in the API's answers %v after its acknowledgement (readings %d, aggregated count %d, want %d)",
							i, freshnessBound[listen], readingsCount(t, readingsURL), aggCount(t, aggURL), i+1)
					}
					time.Sleep(5 * time.Millisecond)
				}
				worst = max(worst, time.Since(acked))
			}
			t.Logf("db-listen=%s: slowest push served %v after its acknowledgement", listen, worst.Round(time.Millisecond))
		})
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitReady(t *testing.T, base string, log *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not become ready:\n%s", base, log)
}

func getJSON(t *testing.T, u string, v any) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

// readingsCount is how many readings the API answers; 0 while the series
// does not exist yet (404).
func readingsCount(t *testing.T, u string) int {
	t.Helper()
	var page struct {
		Readings []json.RawMessage `json:"readings"`
	}
	if getJSON(t, u, &page) != http.StatusOK {
		return 0
	}
	return len(page.Readings)
}

// aggCount is the count of the 03:00 bucket, where every push lands.
func aggCount(t *testing.T, u string) int {
	t.Helper()
	var res struct {
		Series []struct {
			Points []struct {
				Time  string   `json:"time"`
				Count *float64 `json:"count"`
			} `json:"points"`
		} `json:"series"`
	}
	if getJSON(t, u, &res) != http.StatusOK || len(res.Series) == 0 {
		return 0
	}
	for _, p := range res.Series[0].Points {
		if strings.HasPrefix(p.Time, "2024-06-01T03:00:00") && p.Count != nil {
			return int(*p.Count)
		}
	}
	return 0
}
