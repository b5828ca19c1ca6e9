package writeapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sensorhub/sensorhub/db/apikey"
	"github.com/sensorhub/sensorhub/db/ratelimit"
	"github.com/sensorhub/sensorhub/db/scope"
)

// Security schemes of the OpenAPI document.
const (
	schemeBearer = "bearer"
	schemeAPIKey = "apiKey"
)

// maxCredential bounds what is hashed; real keys are far smaller.
const maxCredential = 16 << 10

func authenticated(op huma.Operation) huma.Operation {
	op.Security = []map[string][]string{{schemeBearer: {}}, {schemeAPIKey: {}}}
	op.Errors = append(op.Errors, http.StatusUnauthorized, http.StatusTooManyRequests)
	return op
}

type callerKey struct{}

// caller is who sent a request: its key's name ("" without authentication)
// and the series it may write.
type caller struct {
	name  string
	scope scope.Scope
}

func callerFrom(ctx context.Context) caller {
	c, _ := ctx.Value(callerKey{}).(caller)
	return c
}

// authenticate finds the request's key (401 without a valid one), applies
// the key's rate limit (429) and puts the caller into the context. Without
// keys every request may write every series.
func authenticate(api huma.API, keys *apikey.Set, lim *ratelimit.Limiter, m *Metrics) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		if len(ctx.Operation().Security) == 0 {
			next(ctx)
			return
		}
		c := caller{scope: scope.All()}
		if keys != nil {
			presented, reason := credential(ctx.Header("Authorization"), ctx.Header("X-API-Key"))
			if reason != "" {
				writeErr(api, ctx, huma.Error401Unauthorized(reason))
				return
			}
			k, ok := keys.Lookup(presented)
			if !ok {
				writeErr(api, ctx, huma.Error401Unauthorized("unknown write API key"))
				return
			}
			c = caller{name: k.Name, scope: k.Scope}
		}
		if lim != nil {
			if ok, wait := lim.Allow("key:"+c.name, time.Now()); !ok {
				m.rateLimited()
				secs := int64(math.Ceil(wait.Seconds()))
				if wait == time.Duration(math.MaxInt64) {
					secs = 60
				}
				perSecond, burst := lim.Rate()
				err := huma.Error429TooManyRequests(fmt.Sprintf("rate limit of %g requests/s (burst %d) for this key; retry after %d s", perSecond, burst, secs))
				writeErr(api, ctx, huma.ErrorWithHeaders(err, http.Header{"Retry-After": {strconv.FormatInt(max(secs, 1), 10)}}))
				return
			}
		}
		next(huma.WithValue(ctx, callerKey{}, c))
	}
}

// credential returns the presented key, or the reason there is none usable.
// Besides Bearer it accepts the Token scheme InfluxDB clients send.
func credential(authorization, xAPIKey string) (string, string) {
	authorization, xAPIKey = strings.TrimSpace(authorization), strings.TrimSpace(xAPIKey)
	var bearer string
	if authorization != "" {
		scheme, cred, _ := strings.Cut(authorization, " ")
		if !strings.EqualFold(scheme, "Bearer") && !strings.EqualFold(scheme, "Token") {
			return "", "the Authorization header must use the Bearer (or Token) scheme"
		}
		if bearer = strings.TrimSpace(cred); bearer == "" {
			return "", "the Authorization header has no key after its scheme"
		}
	}
	switch {
	case bearer == "" && xAPIKey == "":
		return "", "credentials required: a write API key as Authorization: Bearer <key> or X-API-Key: <key>"
	case bearer != "" && xAPIKey != "":
		return "", "send one credential, in Authorization or in X-API-Key, not both"
	case len(bearer) > maxCredential || len(xAPIKey) > maxCredential:
		return "", "the credential is too long"
	case bearer != "":
		return bearer, ""
	}
	return xAPIKey, ""
}

// writeErr writes err as a problem. huma.WriteErr takes a status and a
// message; errors carrying headers (Retry-After) need their headers set first.
func writeErr(api huma.API, ctx huma.Context, err error) {
	var he huma.HeadersError
	if errors.As(err, &he) {
		for name, values := range he.GetHeaders() {
			for _, v := range values {
				ctx.AppendHeader(name, v)
			}
		}
	}
	var se huma.StatusError
	if !errors.As(err, &se) {
		se = huma.Error500InternalServerError("internal error")
	}
	ctx.SetStatus(se.GetStatus())
	ct := "application/problem+json"
	ctx.SetHeader("Content-Type", ct)
	_ = api.Marshal(ctx.BodyWriter(), ct, se)
}
