package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
)

// middleware wraps the mux, outermost first: observe (request id, recover,
// access log, metrics), CORS, the request target's length limit, timeout,
// route recording, the problems of requests no route takes.
// Authentication, the rate limit and conditional requests are huma
// middleware (see authenticate), as they depend on the operation.
func middleware(mux *http.ServeMux, o Options, m *metrics) (http.Handler, error) {
	h := recordRoute(withRouteProblems(mux))
	h = withTimeout(h, o.RequestTimeout)
	h = withTargetLimit(h)
	h = withCORS(h, o.CORSOrigins)
	// Inside observe, so the size metric and the access log count the bytes
	// on the wire.
	h, err := withCompression(h)
	if err != nil {
		return nil, err
	}
	return observe(h, o.Logger, m), nil
}

// requestInfo is filled in by the inner layers for observe to report.
type requestInfo struct {
	id    string
	route string
	// principal names the authenticated caller (auth.Principal.Name).
	principal string
	// query is the parsed query string, once parsed (see queryValues), and
	// queryErr why it did not parse.
	query    url.Values
	queryErr error
}

// queryValues parses the query string of ctx's request once and keeps it in
// the request's info, for the guards and the ETag: each parse allocates
// every name and value anew, and a request passed through three of them.
// Callers must not modify the values. A query that does not parse gives
// the pairs that did and the error, as url.ParseQuery does.
func queryValues(ctx huma.Context) (url.Values, error) {
	info, _ := ctx.Context().Value(infoKey{}).(*requestInfo)
	if info != nil && info.query != nil {
		return info.query, info.queryErr
	}
	q, err := url.ParseQuery(ctx.URL().RawQuery)
	if info != nil {
		info.query, info.queryErr = q, err
	}
	return q, err
}

type infoKey struct{}

// RequestID returns the request id of a request's context ("" outside one).
func RequestID(ctx context.Context) string {
	if info, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		return info.id
	}
	return ""
}

func infoFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(infoKey{}).(*requestInfo)
	if info == nil {
		return &requestInfo{}
	}
	return info
}

// observe gives every request an id (the client's X-Request-Id when it is
// sane), recovers panics, and reports each request once: one access-log line
// and the metrics, labelled with the route template, never the raw path.
func observe(next http.Handler, log *slog.Logger, m *metrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		info := &requestInfo{id: id}
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
		rw := &responseWriter{ResponseWriter: w}
		m.inFlight.Inc()
		defer func() {
			m.inFlight.Dec()
			p := recover()
			if p != nil && p != http.ErrAbortHandler {
				log.Error("panic", "request_id", id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if rw.status == 0 {
					writeProblem(rw, r, http.StatusInternalServerError, "internal error; the request id identifies it in the server's log", nil)
				}
			}
			status := rw.status
			if status == 0 {
				status = http.StatusOK
			}
			if p == http.ErrAbortHandler {
				status = statusClientClosed
			}
			route := info.route
			if route == "" {
				route = "unmatched"
			}
			d := time.Since(start)
			m.observe(route, r.Method, status, d, rw.bytes)
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelWarn
			}
			attrs := []slog.Attr{
				slog.String("request_id", id), slog.String("method", r.Method), slog.String("route", route),
				slog.Int("status", status), slog.Duration("duration", d), slog.Int64("bytes", rw.bytes),
			}
			if info.principal != "" {
				attrs = append(attrs, slog.String("principal", info.principal))
			}
			if errors.Is(r.Context().Err(), context.Canceled) && status < 500 {
				attrs = append(attrs, slog.Bool("client_gone", true))
			}
			log.LogAttrs(context.Background(), level, "request", attrs...)
			if p == http.ErrAbortHandler {
				panic(p) // let net/http drop the connection as asked
			}
		}()
		next.ServeHTTP(rw, r)
	})
}

// recordRoute notes the mux pattern that matched ("GET /v1/readings" →
// "/v1/readings") once the mux has set it on the request.

// exportRoute labels streamed exports apart from JSON pages of the same
// operation: they last as long as the client reads, so latency alerts
// leave them out.
const exportRoute = "/v1/readings:export"

func recordRoute(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			pattern := r.Pattern
			if _, p, ok := strings.Cut(pattern, " "); ok {
				pattern = p
			}
			// The catch-all stays "unmatched"; a handler may have named a
			// variant of its route already (exports).
			if info := infoFrom(r.Context()); pattern != "/" && info.route == "" {
				info.route = pattern
			}
		}()
		mux.ServeHTTP(w, r)
	})
}

// withRouteProblems answers the requests that the mux would answer itself,
// in plain text or with a redirect, with problem documents: the
// asterisk-form target (400); a path that is not canonical (dot or empty
// segments, which the mux redirects to the cleaned path: 404, as the API
// serves each route at one spelling only, and a redirect would let a
// traversal attempt look like it led somewhere); and a method other than
// GET and HEAD (405 on the API's routes, 404 elsewhere).
func withRouteProblems(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.RequestURI == "*":
			writeProblem(w, r, http.StatusBadRequest, "the request target * is for OPTIONS of the whole server only", nil)
		case !canonicalPath(r.URL.EscapedPath()):
			writeProblem(w, r, http.StatusNotFound, notFoundDetail, nil)
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			// Every route is GET (and so HEAD); the catch-all "GET /" is not one.
			get := *r
			get.Method = http.MethodGet
			if _, pattern := mux.Handler(&get); pattern != "" && pattern != "GET /" {
				writeProblem(w, r, http.StatusMethodNotAllowed, "only GET and HEAD are served", http.Header{"Allow": {"GET, HEAD"}})
			} else {
				writeProblem(w, r, http.StatusNotFound, notFoundDetail, nil)
			}
		default:
			mux.ServeHTTP(w, r)
		}
	})
}

// canonicalPath reports whether p is as net/http's mux would clean it: no
// dot segments, no empty segments.
func canonicalPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean == p
}

// withTimeout bounds each request by d through its context, which cancels
// the database query; the handler still answers (503). Streamed exports are
// exempt: they run as long as the client reads, each database round trip
// bounded by the statement timeout.
func withTimeout(next http.Handler, d time.Duration) http.Handler {
	if d <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isExport(r) {
			next.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// withCORS answers preflights and marks responses readable by the allowed
// origins; with no origins configured it does nothing.
func withCORS(next http.Handler, origins []string) http.Handler {
	if len(origins) == 0 {
		return next
	}
	anyOrigin := slices.Contains(origins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		if !anyOrigin && !slices.Contains(origins, origin) {
			next.ServeHTTP(w, r) // no CORS headers: the browser withholds the response
			return
		}
		if anyOrigin {
			h.Set("Access-Control-Allow-Origin", "*")
		} else {
			h.Set("Access-Control-Allow-Origin", origin)
		}
		h.Set("Access-Control-Expose-Headers", "ETag, Link, Retry-After, WWW-Authenticate, X-Request-Id")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Accept, Authorization, Content-Type, If-None-Match, X-API-Key, X-Request-Id")
			h.Set("Access-Control-Max-Age", "600")
			infoFrom(r.Context()).route = "preflight"
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// responseWriter records the status and size of a response. It unwraps for
// http.ResponseController, so handlers can flush through it.
type responseWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush implements http.Flusher.
func (w *responseWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the wrapped writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// codeLabel is the value of the status code label ("200", "404").
func codeLabel(code int) string { return strconv.Itoa(code) }
