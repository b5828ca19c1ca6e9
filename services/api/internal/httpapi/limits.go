package httpapi

import (
	"log"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
)

// Limits on the size of a request, before any operation runs (OWASP API4).
// No operation needs a long URL: the longest real one names a series and a
// cursor of under 1 KiB. Headers need more room, for large JWTs.
const (
	// MaxRequestTarget bounds the request target (path and query, as sent):
	// longer ones are answered 414 URI Too Long.
	MaxRequestTarget = 16 << 10
	// MaxHeaderBytes is the API server's http.Server.MaxHeaderBytes: the
	// request line and headers together (net/http allows 4 KiB more). Beyond
	// it net/http answers 431 in plain text before any handler runs.
	MaxHeaderBytes = 64 << 10
)

// HTTPServer returns the http.Server that serves the API on addr, with the
// timeouts and header limit every deployment wants. There is no
// WriteTimeout: exports stream for as long as the client reads.
func (s *Server) HTTPServer(addr string, errorLog *log.Logger) *http.Server {
	return &http.Server{
		Addr: addr, Handler: s.handler, ErrorLog: errorLog,
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: MaxHeaderBytes,
	}
}

var targetTooLong = "the request target (path and query) is longer than the " + strconv.Itoa(MaxRequestTarget) + " bytes the API accepts"

// withTargetLimit answers 414 for request targets longer than
// MaxRequestTarget, before they are routed or parsed.
func withTargetLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.RequestURI) > MaxRequestTarget {
			writeProblem(w, r, http.StatusRequestURITooLong, targetTooLong, nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// documentLimits adds the 414 of withTargetLimit to every operation of the
// OpenAPI document that does not describe it (or every error) yet.
func documentLimits(api huma.API) {
	for _, item := range api.OpenAPI().Paths {
		op := item.Get
		if op == nil || op.Responses["414"] != nil || op.Responses["default"] != nil {
			continue
		}
		op.Responses["414"] = &huma.Response{
			Description: "URI Too Long: " + targetTooLong + ".",
			Content: map[string]*huma.MediaType{
				"application/problem+json": {Schema: &huma.Schema{Ref: "#/components/schemas/ErrorModel"}},
			},
		}
	}
}
