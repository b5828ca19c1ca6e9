package httpapi

import (
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sensorhub/sensorhub/db/ratelimit"
	"github.com/sensorhub/sensorhub/db/scope"
	"github.com/sensorhub/sensorhub/services/api/internal/auth"
)

// Security schemes of the OpenAPI document.
const (
	schemeBearer = "bearer"
	schemeAPIKey = "apiKey"
)

func securitySchemes() map[string]*huma.SecurityScheme {
	return map[string]*huma.SecurityScheme{
		schemeBearer: {
			Type: "http", Scheme: "bearer", BearerFormat: "API key or JWT",
			Description: "An API key, or a JWT signed by a key of the configured JWKS whose claim (default `sensorhub`) " +
				`holds the caller's scope, {"devices": [...], "prefixes": [...]}; exp and sub are required. ` +
				"A credential of three dot-separated base64url parts is taken for a JWT.",
		},
		schemeAPIKey: {Type: "apiKey", In: "header", Name: "X-API-Key", Description: "An API key."},
	}
}

// authenticated marks an operation as needing credentials; authenticate,
// the validators and documentAccess act on the operations so marked.
func authenticated(op huma.Operation) huma.Operation {
	op.Security = []map[string][]string{{schemeBearer: {}}, {schemeAPIKey: {}}}
	if op.OperationID != legacyOperationID { // declares its own error shape
		op.Errors = append(op.Errors, http.StatusUnauthorized, http.StatusTooManyRequests)
	}
	return op
}

func needsCredentials(op *huma.Operation) bool { return len(op.Security) > 0 }

// authenticate is the huma middleware that authenticates the requests of
// operations with security (401 without valid credentials), applies the
// caller's rate limit (429) and puts the caller's scope into the context.
// Operations without security (the probes) pass untouched.
func authenticate(api huma.API, a *auth.Authenticator, lim *ratelimit.Limiter, log *slog.Logger) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		if !needsCredentials(ctx.Operation()) {
			next(ctx)
			return
		}
		p, err := a.Authenticate(ctx.Context(), ctx.Header("Authorization"), ctx.Header("X-API-Key"))
		if err != nil {
			writeError(api, ctx, authProblem(ctx.Context(), log, err))
			return
		}
		infoFrom(ctx.Context()).principal = p.Name
		if lim != nil {
			key := p.Name
			if key == "" { // authentication is off: limit by client address
				key = "addr:" + clientHost(ctx.RemoteAddr())
			}
			if ok, wait := lim.Allow(key, time.Now()); !ok {
				writeError(api, ctx, rateLimited(lim, wait))
				return
			}
		}
		next(huma.WithContext(ctx, scope.With(ctx.Context(), p.Scope)))
	}
}

func clientHost(remoteAddr string) string {
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return host
	}
	return remoteAddr
}

// documentAccess completes the OpenAPI description of the operations that
// need credentials: the headers of 401 and 429, the validators of 200, and
// the 304 of a conditional request.
func documentAccess(api huma.API) {
	str := func(doc string) *huma.Param {
		return &huma.Param{Description: doc, Schema: &huma.Schema{Type: huma.TypeString}}
	}
	integer := func(doc string) *huma.Param {
		return &huma.Param{Description: doc, Schema: &huma.Schema{Type: huma.TypeInteger, Minimum: ptr(1.0)}}
	}
	validators := func() map[string]*huma.Param {
		return map[string]*huma.Param{
			"ETag": str("Weak validator of this answer: it changes with every load of data and differs between " +
				"requests, callers' scopes and Accept headers. Send it back as If-None-Match."),
			"Cache-Control": str("private, no-cache: caches may keep the answer for this caller but must revalidate it."),
			"Vary":          str("Accept, Authorization, X-API-Key."),
		}
	}
	setHeader := func(r *huma.Response, name string, p *huma.Param) {
		if r.Headers == nil {
			r.Headers = map[string]*huma.Param{}
		}
		r.Headers[name] = p
	}
	for _, item := range api.OpenAPI().Paths {
		op := item.Get
		if op == nil || !needsCredentials(op) {
			continue
		}
		if r := op.Responses["401"]; r != nil {
			r.Description = "Unauthorized: credentials missing, unknown, expired or not for this service."
			setHeader(r, "WWW-Authenticate", str(`Bearer realm="sensorhub", with error="invalid_token" and an error_description when credentials were refused.`))
		}
		if r := op.Responses["429"]; r != nil {
			r.Description = "Too Many Requests: the caller's rate limit is exhausted."
			setHeader(r, "Retry-After", integer("Seconds until a request would be allowed."))
		}
		if r := op.Responses["200"]; r != nil {
			for name, p := range validators() {
				setHeader(r, name, p)
			}
		}
		op.Responses["304"] = &huma.Response{
			Description: "Not Modified: the If-None-Match validator is current; reuse the answer it came with.",
			Headers:     validators(),
		}
	}
}
