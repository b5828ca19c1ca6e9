// Package docsui serves the API's reference documentation at /docs from
// assets embedded in the binary: Stoplight Elements (Apache-2.0, see
// elements/LICENSE), vendored from npm at the version in elements/VERSION
// by update.sh. Nothing the page loads leaves the API's origin, so /docs
// works on air-gapped sites, behind egress proxies and under the
// NetworkPolicy, and its Content-Security-Policy allows scripts from 'self'
// only.
package docsui

import (
	"bytes"
	"compress/gzip"
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
)

//go:embed elements
var assets embed.FS

// Version is the vendored Stoplight Elements release.
var Version = func() string {
	b, err := assets.ReadFile("elements/VERSION")
	if err != nil {
		panic("docsui: elements/VERSION is not embedded: " + err.Error())
	}
	return strings.TrimSpace(string(b))
}()

// AssetsPrefix is where the page loads its script and stylesheet from. The
// version in the path lets browsers cache them for good: another release
// gets other URLs.
var AssetsPrefix = "/docs/assets/" + Version + "/"

// CSP is the page's Content-Security-Policy. React sets style attributes, so
// styles may be inline; scripts come only from the API's origin, and the
// page may fetch nothing but the API itself (the OpenAPI document, and
// "try it" requests).
const CSP = "default-src 'none'; base-uri 'none'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; " +
	"img-src 'self' data:; font-src 'self' data:; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"sandbox allow-same-origin allow-scripts allow-popups allow-forms"

// Paths are relative, so the page also works behind a proxy that serves the
// API under a path prefix (/docs's base is the API's root).
func page(title string) []byte {
	return []byte(`<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="referrer" content="no-referrer">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <link rel="icon" href="data:,">
    <title>` + title + `</title>
    <link rel="stylesheet" href="` + strings.TrimPrefix(AssetsPrefix, "/") + `styles.min.css">
    <script src="` + strings.TrimPrefix(AssetsPrefix, "/") + `web-components.min.js"></script>
  </head>
  <body style="height: 100vh; margin: 0;">
    <elements-api apiDescriptionUrl="openapi.yaml" router="hash" layout="sidebar" tryItCredentialsPolicy="same-origin"></elements-api>
  </body>
</html>
`)
}

// Register adds GET /docs and its assets to mux. title is the page's title
// (HTML-escaped by the caller if it needs to be).
func Register(mux *http.ServeMux, title string) {
	body := page(title)
	mux.HandleFunc("GET /docs", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		w.Write(body) //nolint:errcheck // the client went away
	})
	mux.Handle("GET "+AssetsPrefix+"{name}", assetHandler())
}

// asset is one embedded file, with its gzip form made on first demand (the
// script is 2 MB, about 600 kB gzipped).
type asset struct {
	raw         []byte
	contentType string
	once        sync.Once
	gz          []byte
}

func (a *asset) gzipped() []byte {
	a.once.Do(func() {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		zw.Write(a.raw) //nolint:errcheck // writes to memory
		zw.Close()      //nolint:errcheck // writes to memory
		a.gz = b.Bytes()
	})
	return a.gz
}

var contentTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".txt": "text/plain; charset=utf-8",
}

func assetHandler() http.Handler {
	files := map[string]*asset{}
	err := fs.WalkDir(assets, "elements", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return nil // VERSION and LICENSE are for people, not the page
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		files[path.Base(p)] = &asset{raw: b, contentType: ct}
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("docsui: read embedded assets: %v", err))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := files[r.PathValue("name")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
		h.Add("Vary", "Accept-Encoding")
		body := a.raw
		if acceptsGzip(r) {
			body = a.gzipped()
			h.Set("Content-Encoding", "gzip")
		}
		h.Set("Content-Length", fmt.Sprint(len(body)))
		if r.Method != http.MethodHead {
			w.Write(body) //nolint:errcheck // the client went away
		}
	})
}

// acceptsGzip reports whether Accept-Encoding lists gzip with a non-zero
// quality.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
