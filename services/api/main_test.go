package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
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
	if err := run(t.Context(), []string{"openapi", "-o", out}, func(string) string { return "" }, nil, io.Discard, io.Discard); err != nil {
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
	for _, args := range [][]string{{"frobnicate"}, {"serve", "-max-points", "0"}, {"openapi", "-x"}, {"hashkey", "key-in-argv"}, {"healthcheck", "-url", "::"}, {"serve", "-auth", "maybe"},
		{"-bogus"}, {"serve", "-bogus"}, {"healthcheck", "-bogus"}, {"help", "serve"}, {"--version", "x"}} {
		var stdout bytes.Buffer
		err := run(t.Context(), args, func(string) string { return "" }, strings.NewReader(""), &stdout, io.Discard)
		if !errors.Is(err, config.ErrUsage) || exitCode(err, io.Discard) != 2 {
			t.Errorf("%q: %v (exit %d), want a usage error", args, err, exitCode(err, io.Discard))
		}
		if stdout.Len() != 0 {
			t.Errorf("%q: a usage error wrote to stdout: %q", args, stdout.String())
		}
	}
}

// versionPattern is what --version prints on every binary.
var versionPattern = regexp.MustCompile(`^api \S+ \(go\S+, \w+/\w+\)\n$`)

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		var stdout bytes.Buffer
		err := run(t.Context(), args, func(string) string { return "" }, nil, &stdout, io.Discard)
		if code := exitCode(err, io.Discard); code != 0 || !versionPattern.MatchString(stdout.String()) {
			t.Errorf("%q: exit %d, stdout %q; want exit 0 and one line api VERSION (GO, OS/ARCH)", args, code, stdout.String())
		}
	}
}

// TestHelp: -h and --help print to stdout and exit 0, at the top level (every
// command named) and on each command (its synopsis and flags).
func TestHelp(t *testing.T) {
	help := func(t *testing.T, args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), args, func(string) string { return "" }, nil, &stdout, &stderr)
		if code := exitCode(err, io.Discard); code != 0 || stderr.Len() != 0 {
			t.Errorf("%q: exit %d, stderr %q; want exit 0 and nothing on stderr", args, code, stderr.String())
		}
		return stdout.String()
	}
	for _, flag := range []string{"-h", "--help", "-help", "help"} {
		out := help(t, flag)
		for _, cmd := range []string{"serve", "openapi", "hashkey", "healthcheck", "version", "help"} {
			if !strings.Contains(out, "api "+cmd) {
				t.Errorf("%s: no %q in %s", flag, cmd, out)
			}
		}
	}
	for _, args := range [][]string{{"serve", "-h"}, {"openapi", "-h"}, {"hashkey", "-h"}, {"healthcheck", "-h"}} {
		for _, h := range []string{"-h", "--help"} {
			if out := help(t, args[0], h); !strings.HasPrefix(out, "usage: api "+args[0]) {
				t.Errorf("%s %s: %q, want a synopsis", args[0], h, out)
			}
		}
	}
	// Each of serve's flags has an environment variable, named in its help.
	out := help(t, "serve", "-h")
	lines := strings.Split(out, "\n")
	var flags int
	for i, line := range lines {
		if strings.HasPrefix(line, "  -") {
			flags++
			if i+1 == len(lines) || !strings.Contains(lines[i+1], "(env ") {
				t.Errorf("flag %s: help names no environment variable", strings.TrimSpace(line))
			}
		}
	}
	if flags < 20 || !strings.Contains(out, "-database-url") {
		t.Errorf("serve -h lists %d flags:\n%s", flags, out)
	}
	// Flags without a command are still serve's.
	if out := help(t, "-addr", ":1234", "-h"); !strings.HasPrefix(out, "usage: api serve") {
		t.Errorf("-addr :1234 -h: %q, want serve's usage", out)
	}
	// -h shows where a default came from, not a DSN that may hold a password.
	var stdout bytes.Buffer
	env := func(k string) string { return map[string]string{"DATABASE_URL": "postgres://u:s3cret@h/db"}[k] }
	if err := run(t.Context(), []string{"serve", "-h"}, env, nil, &stdout, io.Discard); exitCode(err, io.Discard) != 0 ||
		strings.Contains(stdout.String(), "s3cret") || !strings.Contains(stdout.String(), "$DATABASE_URL") {
		t.Errorf("serve -h with DATABASE_URL set: %v\n%s", err, stdout.String())
	}
}

// TestRun runs the real program on free ports against a migrated database,
// as a member of sensorhub_reader and with an API key from a file, then
// stops it as SIGTERM would: readiness fails first, then it exits cleanly
// without leaking goroutines.
func TestRun(t *testing.T) {
	d := dbtest.New(t)
	dsn := d.RoleDSN(t, "sensorhub_reader")
	leaks := goleak.IgnoreCurrent()
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}

	const apiKey = "run-test-key-0123456789abcdef"
	keysFile := filepath.Join(t.TempDir(), "keys.json")
	keys := `[{"name": "ops", "sha256": "` + hashOf(t, apiKey) + `"}]`
	if err := os.WriteFile(keysFile, []byte(keys), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"DATABASE_URL":             dsn,
		"SENSORHUB_API_ADDR":       "127.0.0.1:0",
		"SENSORHUB_ADMIN_ADDR":     "127.0.0.1:0",
		"SENSORHUB_SHUTDOWN_DELAY": "2s",
		"SENSORHUB_API_KEYS_FILE":  keysFile,
		"SENSORHUB_RATE_LIMIT":     "1000",
		"LOG_FORMAT":               "json",
	}
	rate := runtime.MemProfileRate
	t.Cleanup(func() { runtime.MemProfileRate = rate })
	runtime.MemProfileRate = 512 * 1024 // the runtime's default, whatever ran before
	addrs, logs, stop, wait := serving(t, env)
	api, admin := "http://"+addrs["api"], "http://"+addrs["admin"]
	if runtime.MemProfileRate != 0 {
		t.Errorf("heap sampling rate %d without -pprof, want 0: nothing serves its profiles", runtime.MemProfileRate)
	}
	get := func(url string, headers ...string) (int, string) {
		t.Helper()
		return httpGet(t, client, url, headers...)
	}
	if code, body := get(api + "/readyz"); code != http.StatusOK {
		t.Fatalf("readyz: %d %s", code, body)
	}
	if code, body := get(api + "/v1/devices"); code != http.StatusUnauthorized {
		t.Errorf("devices without a key: %d %s, want 401", code, body)
	}
	if code, body := get(api+"/v1/devices", "X-API-Key: "+apiKey); code != http.StatusOK || !strings.Contains(body, `"devices":[]`) {
		t.Errorf("devices of an empty database: %d %s", code, body)
	}
	if code, body := get(admin + "/metrics"); code != http.StatusOK || !strings.Contains(body, `sensorhub_http_requests_total{code="200",method="GET",route="/readyz"} 1`) ||
		!strings.Contains(body, `sensorhub_build_info{goversion="`+runtime.Version()+`",version="dev"} 1`) {
		t.Errorf("admin /metrics: %d %.300s", code, body)
	}
	// The dataset version listener runs (SENSORHUB_DB_LISTEN defaults to on).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, body := get(admin + "/metrics")
		if strings.Contains(body, "\nsensorhub_dataset_version_listener_up 1\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("sensorhub_dataset_version_listener_up is not 1 within 5s: %s", logs.String())
			break
		}
	}
	if err := run(t.Context(), []string{"healthcheck", "-url", api + "/healthz"}, func(string) string { return "" }, nil, io.Discard, io.Discard); err != nil {
		t.Errorf("healthcheck of the running server: %v", err)
	}
	if !strings.Contains(logs.String(), `"msg":"authentication on"`) || strings.Contains(logs.String(), apiKey) {
		t.Errorf("start log does not say authentication is on, or shows the key: %s", logs.String())
	}
	if code, _ := get(api + "/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics on the API port with an admin port: %d, want 404", code)
	}
	for _, u := range []string{admin + "/debug/pprof/heap", api + "/debug/pprof/heap"} {
		if code, _ := get(u); code != http.StatusNotFound {
			t.Errorf("%s without -pprof: %d, want 404", u, code)
		}
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
	wait()
	if i, j := strings.Index(logs.String(), "shutting down"), strings.Index(logs.String(), `"msg":"stopped"`); i < 0 || j < i {
		t.Errorf("shutdown not logged in order: %s", logs.String())
	}
	client.CloseIdleConnections()
	goleak.VerifyNone(t, leaks)
}

// TestRunPprof: -pprof serves profiles on the admin listener only.
func TestRunPprof(t *testing.T) {
	d := dbtest.New(t)
	env := map[string]string{
		"DATABASE_URL":         d.RoleDSN(t, "sensorhub_reader"),
		"SENSORHUB_API_ADDR":   "127.0.0.1:0",
		"SENSORHUB_ADMIN_ADDR": "127.0.0.1:0",
		"SENSORHUB_AUTH":       "off",
		"SENSORHUB_PPROF":      "true",
		"LOG_FORMAT":           "json",
	}
	addrs, logs, stop, wait := serving(t, env)
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	get := func(url string) (int, string) {
		t.Helper()
		return httpGet(t, client, url)
	}
	if code, body := get("http://" + addrs["admin"] + "/debug/pprof/heap?debug=1"); code != http.StatusOK || !strings.Contains(body, "heap profile:") {
		t.Errorf("admin heap profile: %d %.200s", code, body)
	}
	if code, body := get("http://" + addrs["admin"] + "/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("admin goroutine profile: %d %.200s", code, body)
	}
	if code, _ := get("http://" + addrs["api"] + "/debug/pprof/heap"); code != http.StatusNotFound {
		t.Errorf("heap profile on the API port: %d, want 404", code)
	}
	if !strings.Contains(logs.String(), "keep that listener private") {
		t.Errorf("no warning that profiles are served: %s", logs.String())
	}
	stop()
	wait()
}

// serving starts `api serve` on env and returns once both servers listen:
// their addresses by name, the log, stop (a SIGTERM) and wait, which fails
// the test unless run returns nil within 15 s of stop.
func serving(t *testing.T, env map[string]string) (addrs map[string]string, logs *syncBuffer, stop func(), wait func()) {
	t.Helper()
	logs = &syncBuffer{}
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, func(k string) string { return env[k] }, nil, io.Discard, logs)
	}()
	wait = func() {
		t.Helper()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("run did not return after shutdown")
		}
	}
	return waitListening(t, logs, done), logs, stop, wait
}

// httpGet GETs url with headers ("Name: value") and returns the status and
// body; a transport error fails the test.
func httpGet(t *testing.T, client *http.Client, url string, headers ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ": ")
		req.Header.Set(name, value)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func hashOf(t *testing.T, key string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(t.Context(), []string{"hashkey"}, func(string) string { return "" }, strings.NewReader(key+"\n"), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out.String())
}

func TestHashKey(t *testing.T) {
	// sha256("secret"), from coreutils' sha256sum.
	const want = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
	for _, in := range []string{"secret", "secret\n", "  secret\r\n"} {
		if got := hashOf(t, in); got != want {
			t.Errorf("hashkey of %q: %s, want %s", in, got, want)
		}
	}
	for name, in := range map[string]string{"empty": " \n", "two lines": "a\nb", "JWT-shaped": "aaa.bbb.ccc"} {
		err := run(t.Context(), []string{"hashkey"}, func(string) string { return "" }, strings.NewReader(in), io.Discard, io.Discard)
		if !errors.Is(err, config.ErrUsage) {
			t.Errorf("%s: %v, want a usage error", name, err)
		}
	}
	var stderr bytes.Buffer
	if err := run(t.Context(), []string{"hashkey"}, func(string) string { return "" }, strings.NewReader("short"), io.Discard, &stderr); err != nil || !strings.Contains(stderr.String(), "warning") {
		t.Errorf("short key: %v, stderr %q; want a warning", err, stderr.String())
	}
}

func TestHealthcheck(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	check := func(args ...string) error {
		return run(t.Context(), append([]string{"healthcheck"}, args...), func(k string) string {
			if k == "SENSORHUB_API_ADDR" {
				return srv.Listener.Addr().String()
			}
			return ""
		}, nil, io.Discard, io.Discard)
	}
	if err := check(); err != nil {
		t.Errorf("healthy server, default URL from SENSORHUB_API_ADDR: %v", err)
	}
	if err := check("-url", srv.URL+"/other"); err == nil || exitCode(err, io.Discard) != 1 {
		t.Errorf("404: %v, want exit 1", err)
	}
	status = http.StatusServiceUnavailable
	if err := check(); err == nil || exitCode(err, io.Discard) != 1 {
		t.Errorf("503: %v, want exit 1", err)
	}
	if err := check("-url", "http://"+closedAddr(t)+"/healthz", "-timeout", "2s"); err == nil || exitCode(err, io.Discard) != 1 {
		t.Errorf("nothing listening: %v, want exit 1", err)
	}
	for addr, want := range map[string]string{
		"":               "http://127.0.0.1:8080/healthz",
		":9000":          "http://127.0.0.1:9000/healthz",
		"0.0.0.0:9000":   "http://127.0.0.1:9000/healthz",
		"10.1.2.3:9000":  "http://10.1.2.3:9000/healthz",
		"[::1]:9000":     "http://[::1]:9000/healthz",
		"not an address": "http://127.0.0.1:8080/healthz",
	} {
		if got := defaultHealthURL(addr); got != want {
			t.Errorf("defaultHealthURL(%q) = %s, want %s", addr, got, want)
		}
	}
}

// TestAuthSettings: authentication is on unless turned off explicitly;
// on without credentials the server refuses to start, off it says so
// loudly at every start.
func TestAuthSettings(t *testing.T) {
	base := map[string]string{
		"DATABASE_URL":         "postgres://nobody@" + closedAddr(t) + "/nothing?sslmode=disable&connect_timeout=1",
		"SENSORHUB_API_ADDR":   "127.0.0.1:0",
		"SENSORHUB_ADMIN_ADDR": "off",
		"LOG_FORMAT":           "json",
	}
	start := func(t *testing.T, extra map[string]string) (error, string) {
		t.Helper()
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range extra {
			env[k] = v
		}
		logs := &syncBuffer{}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"serve"}, func(k string) string { return env[k] }, nil, io.Discard, logs)
		}()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case err := <-done:
				cancel()
				return err, logs.String()
			case <-deadline:
				cancel()
				t.Fatalf("serve neither started nor failed: %s", logs.String())
			case <-time.After(10 * time.Millisecond):
				if strings.Contains(logs.String(), `"msg":"listening"`) {
					cancel()
					return <-done, logs.String()
				}
			}
		}
	}
	for name, extra := range map[string]map[string]string{
		"default":        nil,
		"explicitly on":  {"SENSORHUB_AUTH": "on"},
		"empty key list": {"SENSORHUB_API_KEYS": "[]"},
	} {
		t.Run("refuses/"+name, func(t *testing.T) {
			err, logs := start(t, extra)
			if !errors.Is(err, config.ErrUsage) || !strings.Contains(err.Error(), "SENSORHUB_AUTH=off") {
				t.Errorf("start without credentials: %v, want a usage error naming SENSORHUB_AUTH=off\n%s", err, logs)
			}
		})
	}
	for name, extra := range map[string]map[string]string{
		"malformed keys":  {"SENSORHUB_API_KEYS": `[{"name": "a", "sha256": "not hex"}]`},
		"unknown field":   {"SENSORHUB_API_KEYS": `[{"name": "a", "sha256": "` + strings.Repeat("ab", 32) + `", "device": ["x"]}]`},
		"missing file":    {"SENSORHUB_API_KEYS_FILE": filepath.Join(t.TempDir(), "nope.json")},
		"both key places": {"SENSORHUB_API_KEYS": "[]", "SENSORHUB_API_KEYS_FILE": "/dev/null"},
		"bad JWKS URL":    {"SENSORHUB_JWKS_URL": "ftp://example.com/jwks"},
	} {
		t.Run("invalid/"+name, func(t *testing.T) {
			if err, logs := start(t, extra); !errors.Is(err, config.ErrUsage) {
				t.Errorf("%v, want a usage error\n%s", err, logs)
			}
		})
	}
	t.Run("off", func(t *testing.T) {
		err, logs := start(t, map[string]string{"SENSORHUB_AUTH": "off"})
		if err != nil {
			t.Fatalf("serve with SENSORHUB_AUTH=off: %v\n%s", err, logs)
		}
		var warned bool
		for _, line := range strings.Split(logs, "\n") {
			var rec struct{ Level, Msg string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Level == "WARN" && strings.Contains(rec.Msg, "AUTHENTICATION IS OFF") {
				warned = true
			}
		}
		if !warned {
			t.Errorf("no WARN line about authentication being off:\n%s", logs)
		}
	})
	t.Run("keys", func(t *testing.T) {
		keys := `[{"name": "a", "sha256": "` + strings.Repeat("AB", 32) + `", "prefixes": ["tenantA."]}]`
		if err, logs := start(t, map[string]string{"SENSORHUB_API_KEYS": keys}); err != nil || !strings.Contains(logs, "tenantA.") {
			t.Errorf("serve with an API key: %v\n%s", err, logs)
		}
	})
}

// closedAddr returns a local address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
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
