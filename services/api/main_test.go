package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/services/api/internal/config"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// TestOpenAPIFileUpToDate fails when the repository's openapi-3.0.yaml is not
// what the code generates.
func TestOpenAPIFileUpToDate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "openapi.yaml")
	if err := run(t.Context(), []string{"openapi", "-o", out}, func(string) string { return "" }, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	generated, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(generated, []byte("components:")) || !bytes.Contains(generated, []byte("openapi: 3.0.3")) {
		t.Fatalf("generated document is not OpenAPI 3.0.3 YAML: %.200s", generated)
	}
	committed, err := os.ReadFile(filepath.Join("..", "..", "openapi-3.0.yaml"))
	if err != nil || !bytes.Equal(committed, generated) {
		t.Fatalf("openapi-3.0.yaml at the repository root is missing or out of date (%v); regenerate it from the repository root with\n\tgo run ./services/api openapi -o openapi-3.0.yaml", err)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"frobnicate"}, {"serve", "-max-points", "0"}, {"openapi", "-x"}} {
		err := run(t.Context(), args, func(string) string { return "" }, io.Discard, io.Discard)
		if !errors.Is(err, config.ErrUsage) || exitCode(err, io.Discard) != 2 {
			t.Errorf("%q: %v (exit %d), want a usage error", args, err, exitCode(err, io.Discard))
		}
	}
}

// TestRun runs the real program on free ports against a migrated database,
// as a member of sensorhub_reader, then stops it as SIGTERM would: readiness
// fails first, then it exits cleanly without leaking goroutines.
func TestRun(t *testing.T) {
	d := dbtest.New(t)
	dsn := d.RoleDSN(t, "sensorhub_reader")
	leaks := goleak.IgnoreCurrent()
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}

	env := map[string]string{
		"DATABASE_URL":             dsn,
		"SENSORHUB_API_ADDR":       "127.0.0.1:0",
		"SENSORHUB_ADMIN_ADDR":     "127.0.0.1:0",
		"SENSORHUB_SHUTDOWN_DELAY": "2s",
		"LOG_FORMAT":               "json",
	}
	logs := &syncBuffer{}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, func(k string) string { return env[k] }, io.Discard, logs) }()

	addrs := waitListening(t, logs, done)
	api, admin := "http://"+addrs["api"], "http://"+addrs["admin"]
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(api + "/readyz"); code != http.StatusOK {
		t.Fatalf("readyz: %d %s", code, body)
	}
	if code, body := get(api + "/v1/devices"); code != http.StatusOK || !strings.Contains(body, `"devices":[]`) {
		t.Errorf("devices of an empty database: %d %s", code, body)
	}
	if code, body := get(admin + "/metrics"); code != http.StatusOK || !strings.Contains(body, `sensorhub_http_requests_total{method="GET",route="/readyz",status="200"} 1`) {
		t.Errorf("admin /metrics: %d %.300s", code, body)
	}
	if code, _ := get(api + "/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics on the API port with an admin port: %d, want 404", code)
	}
	if password := passwordOf(dsn); password == "" || strings.Contains(logs.String(), password) {
		t.Errorf("the log shows the database password (or the DSN has none): %s", logs.String())
	}
	if !strings.Contains(logs.String(), "SENSORHUB_CURSOR_KEY is not set") {
		t.Error("no warning about the random cursor key")
	}

	stop() // SIGTERM
	deadline := time.Now().Add(1500 * time.Millisecond)
	for {
		code, _ := get(api + "/readyz")
		if code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz still %d during the shutdown delay", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _ := get(api + "/healthz"); code != http.StatusOK {
		t.Errorf("healthz during the shutdown delay: %d", code)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after shutdown")
	}
	if i, j := strings.Index(logs.String(), "shutting down"), strings.Index(logs.String(), `"msg":"stopped"`); i < 0 || j < i {
		t.Errorf("shutdown not logged in order: %s", logs.String())
	}
	client.CloseIdleConnections()
	goleak.VerifyNone(t, leaks)
}

// waitListening polls the log for the "listening" lines and returns the
// address of each server.
func waitListening(t *testing.T, logs *syncBuffer, done <-chan error) map[string]string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		addrs := map[string]string{}
		for _, line := range strings.Split(logs.String(), "\n") {
			var rec struct{ Msg, Server, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				addrs[rec.Server] = rec.Addr
			}
		}
		if len(addrs) == 2 {
			return addrs
		}
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("servers did not start:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func passwordOf(dsn string) string {
	_, rest, _ := strings.Cut(dsn, "://")
	userinfo, _, _ := strings.Cut(rest, "@")
	_, password, _ := strings.Cut(userinfo, ":")
	return password
}

// syncBuffer is a bytes.Buffer safe for the server's and the test's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
