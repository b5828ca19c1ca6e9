package docsui_test

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/sensorhub/sensorhub/services/api/internal/docsui"
	"github.com/sensorhub/sensorhub/services/api/internal/httpapi"
)

// server serves /docs as the API does, beside the real OpenAPI document.
func server(t *testing.T) *httptest.Server {
	t.Helper()
	spec, err := httpapi.Spec()
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	docsui.Register(mux, "sensorhub API reference")
	mux.HandleFunc("GET /openapi.yaml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/openapi+yaml")
		w.Write(spec)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

func TestPageAndAssets(t *testing.T) {
	ts := server(t)
	resp, err := http.Get(ts.URL + "/docs")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != 200 || !strings.Contains(csp, "script-src 'self';") || strings.Contains(string(body), "://") {
		t.Errorf("/docs: %d, CSP %q; the page must load only same-origin assets:\n%s", resp.StatusCode, csp, body)
	}
	for _, name := range []string{"web-components.min.js", "styles.min.css"} {
		u := ts.URL + docsui.AssetsPrefix + name
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatalf("%s: not gzip: %v", name, err)
		}
		got, err := io.ReadAll(zr)
		resp.Body.Close()
		want, _ := os.ReadFile(filepath.Join("elements", name))
		if err != nil || string(got) != string(want) || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
			t.Errorf("%s: %d bytes after gunzip (%v), want the %d vendored; Cache-Control %q", name, len(got), err, len(want), resp.Header.Get("Cache-Control"))
		}
	}
	if resp, err := http.Get(ts.URL + docsui.AssetsPrefix + "LICENSE"); err != nil || resp.StatusCode != 404 {
		t.Errorf("only the page's assets are served; LICENSE: %v %v", resp.StatusCode, err)
	}
}

// chromium finds a Chromium or Chrome: CHROMIUM if set, else the usual names
// on PATH (Debian's package is chromium).
func chromium(t *testing.T) string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const why = "no Chromium on PATH (Debian: apt-get install chromium; or set CHROMIUM): /docs is not rendered in a browser here"
	if os.Getenv("SENSORHUB_REQUIRE_BROWSER") != "" {
		t.Fatal(why + ", and SENSORHUB_REQUIRE_BROWSER is set")
	}
	t.Skip(why)
	return ""
}

// TestDocsRenderOffline loads /docs in headless Chromium with every request
// outside the API's origin refused, and checks that the operations render,
// that nothing tried to leave the origin, and that the CSP blocked nothing.
func TestDocsRenderOffline(t *testing.T) {
	exe := chromium(t)
	ts := server(t)
	origin, _ := url.Parse(ts.URL)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("headless", "new"),
		chromedp.Flag("disable-gpu", true),
		// No name resolves: a request to another host fails even if the
		// interception below missed it.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.WindowSize(1400, 1000),
	)
	actx, cancel := chromedp.NewExecAllocator(t.Context(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	var mu sync.Mutex
	var outside, problems []string
	// Every request pauses; only the API's origin may go on. Subscribed
	// before the first command, so no request slips past.
	paused := chromedp.Events(ctx, fetch.RequestPaused)
	go func() {
		for e, err := range paused {
			if err != nil {
				return
			}
			u, perr := url.Parse(e.Request.URL)
			if perr == nil && (u.Scheme == "data" || u.Scheme == "blob" || u.Host == origin.Host) {
				chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: e.RequestID}) //nolint:errcheck // the page may be gone
				continue
			}
			mu.Lock()
			outside = append(outside, e.Request.URL)
			mu.Unlock()
			chromedp.Call(ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: e.RequestID, ErrorReason: network.ErrorReasonBlockedByClient}) //nolint:errcheck
		}
	}()
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				mu.Lock()
				problems = append(problems, string(m.Type)+": "+m.Text)
				mu.Unlock()
			}
		}
	}()

	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: "*"}}}); err != nil {
		t.Fatalf("enable request interception: %v", err)
	}
	// The overview with the sidebar's groups, then two operations' pages
	// (Elements routes by the URL's hash), each by its summary and path.
	var text string
	var shot []byte
	pages := []struct{ hash, want string }{
		{"", `t.includes("sensorhub API") && t.includes("ENDPOINTS") && t.includes("readings") && t.includes("legacy")`},
		{"#/operations/aggregate-readings", `t.includes("Bucketed aggregates of series") && t.includes("/v1/aggregates")`},
		{"#/operations/process-request", `t.includes("/api/v1/core/process_request")`},
	}
	var err error
	for _, pg := range pages {
		if err = chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/docs"+pg.hash)); err != nil {
			break
		}
		_, err = chromedp.Run(ctx, chromedp.Poll[bool](`(() => { const t = document.body.innerText; return `+pg.want+`; })()`,
			chromedp.WithPollingTimeout(30*time.Second)))
		if err != nil {
			text, _ = chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
			err = fmt.Errorf("/docs%s never showed %s: %w", pg.hash, pg.want, err)
			break
		}
	}
	if err == nil {
		shot, err = chromedp.Run(ctx, chromedp.FullScreenshot(80))
	}
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		t.Fatalf("render /docs: %v\npage text: %.500s\nproblems: %q\noutside requests: %q", err, text, problems, outside)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "docs.jpg"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", filepath.Join(dir, "docs.jpg"), len(shot))
	if len(outside) > 0 {
		t.Errorf("/docs tried to reach outside its origin: %q", outside)
	}
	for _, p := range problems {
		if strings.Contains(p, "Content Security Policy") || strings.Contains(p, "Refused to") {
			t.Errorf("the CSP blocked part of /docs: %s", p)
		} else {
			t.Logf("page reported: %.300s", p)
		}
	}
}
