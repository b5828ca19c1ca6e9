package httpapi

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/sensorhub/sensorhub/db/dbtest"
	"github.com/sensorhub/sensorhub/db/seed"
)

// rawGet sends path with exactly the Accept-Encoding given (Go's transport
// adds and undoes gzip only when the request sets none) and returns the
// response with its body as sent.
func rawGet(t *testing.T, url, acceptEncoding string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept-Encoding", acceptEncoding)
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Set(name, strings.TrimSpace(value))
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func decode(t *testing.T, encoding string, body []byte) []byte {
	t.Helper()
	var r io.Reader
	switch encoding {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = zr
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		defer zr.Close()
		r = zr
	default:
		return body
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", encoding, err)
	}
	return out
}

// TestCompression: answers are gzip- or zstd-encoded as Accept-Encoding asks
// and decode to exactly the identity body, streamed exports too; Vary says
// so; q=0 and small bodies stay identity; the ETag validates across
// encodings.
func TestCompression(t *testing.T) {
	r := loadReference(t)
	d := dbtest.New(t)
	if err := seed.Load(t.Context(), d.Pool, r.readings); err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, openPool(t, d.DSN), nil)

	for _, c := range []struct{ path, accept string }{
		{"/v1/readings?device_id=device.foo&parameter=parameter.foo&limit=1000", "application/json"},
		// The streamed CSV export, compressed as it is flushed.
		{"/v1/readings?device_id=device.foo&parameter=parameter.foo", "text/csv"},
		{"/api/v1/core/process_request?device_id=device.bar", "application/json"},
		{"/openapi.json", "application/json"},
	} {
		path, accept := c.path, "Accept: "+c.accept
		plain, identity := rawGet(t, ts.url+path, "identity", accept)
		if plain.StatusCode != 200 || plain.Header.Get("Content-Encoding") != "" || len(identity) < 10*compressMinSize {
			t.Fatalf("%s identity: %d, Content-Encoding %q, %d bytes", path, plain.StatusCode, plain.Header.Get("Content-Encoding"), len(identity))
		}
		for _, tc := range []struct{ accept, want string }{
			{"gzip", "gzip"},
			{"zstd", "zstd"},
			{"gzip, deflate, br, zstd", "gzip"},
			{"zstd;q=1.0, gzip;q=0.5", "zstd"},
			{"gzip;q=0", ""},
			{"br", ""},
		} {
			resp, body := rawGet(t, ts.url+path, tc.accept, accept)
			got := resp.Header.Get("Content-Encoding")
			if resp.StatusCode != 200 || got != tc.want {
				t.Errorf("%s, Accept-Encoding %q: %d, Content-Encoding %q, want %q", path, tc.accept, resp.StatusCode, got, tc.want)
				continue
			}
			if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Accept-Encoding") {
				t.Errorf("%s, Accept-Encoding %q: Vary %q lacks Accept-Encoding", path, tc.accept, resp.Header.Values("Vary"))
			}
			if dec := decode(t, got, body); !bytes.Equal(dec, identity) {
				t.Errorf("%s, %s: decodes to %d bytes that differ from the %d of the identity answer", path, got, len(dec), len(identity))
			} else if got != "" && len(body)*3 > len(identity) {
				t.Errorf("%s, %s: %d bytes for %d: hardly compressed", path, got, len(body), len(identity))
			}
		}
	}

	// The ETag of a compressed answer revalidates (weak comparison).
	resp, _ := rawGet(t, ts.url+"/v1/devices", "gzip")
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("/v1/devices has no ETag")
	}
	if again, _ := rawGet(t, ts.url+"/v1/devices", "gzip", "If-None-Match: "+etag); again.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the gzip answer's ETag %s: %d, want 304", etag, again.StatusCode)
	}
	if again, _ := rawGet(t, ts.url+"/v1/devices", "identity", "If-None-Match: "+etag); again.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the gzip answer's ETag, identity: %d, want 304", again.StatusCode)
	}

	// A small answer is not worth compressing.
	if small, body := rawGet(t, ts.url+"/healthz", "gzip"); small.Header.Get("Content-Encoding") != "" || len(body) >= compressMinSize {
		t.Errorf("/healthz: Content-Encoding %q for %d bytes", small.Header.Get("Content-Encoding"), len(body))
	}
}
