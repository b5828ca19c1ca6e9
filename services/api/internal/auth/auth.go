// Package auth decides who a request comes from and which series it may see.
//
// Credentials come as `Authorization: Bearer <credential>` or
// `X-API-Key: <key>`. A bearer credential that looks like a JWT (three
// dot-separated base64url parts) is verified as one against a JWKS; anything
// else is an API key, compared by its SHA-256 hash with the configured
// hashes (the configuration never holds a key itself). Either way the result
// is a Principal: a name for rate limiting and logs, and a scope.Scope.
package auth

import (
	"context"
	"strings"

	"github.com/sensorhub/sensorhub/db/apikey"
	"github.com/sensorhub/sensorhub/db/scope"
)

// Principal is the caller of a request.
type Principal struct {
	// Name identifies the caller for rate limiting and logs: "key:<name>"
	// for an API key, "jwt:<subject>" for a token; empty when
	// authentication is off.
	Name string
	// Scope is what the caller may see.
	Scope scope.Scope
}

// Kind classifies authentication failures.
type Kind int

// Kinds of failure.
const (
	// Missing: the request carries no credentials.
	Missing Kind = iota + 1
	// Invalid: the credentials are malformed, unknown, expired or not for
	// this service.
	Invalid
	// Unavailable: the credentials cannot be checked now (the JWKS cannot
	// be fetched); the client may retry.
	Unavailable
)

// Error is an authentication failure. Reason is safe to show the client.
type Error struct {
	Kind   Kind
	Reason string
	// Err is the underlying error, for the server's log; never shown.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

func fail(kind Kind, reason string, err error) error {
	return &Error{Kind: kind, Reason: reason, Err: err}
}

// maxCredential bounds what is hashed or parsed; real keys and tokens are far
// smaller.
const maxCredential = 16 << 10

// Authenticator checks credentials. The zero value accepts nothing; use New
// or Disabled.
type Authenticator struct {
	disabled bool
	keys     *apikey.Set
	jwt      *JWTVerifier
}

// New returns an Authenticator for the API keys and, when jwt is not nil,
// JWT bearer tokens.
func New(keys []apikey.Key, jwt *JWTVerifier) *Authenticator {
	return &Authenticator{keys: apikey.NewSet(keys), jwt: jwt}
}

// Disabled returns an Authenticator that lets every request see every series:
// for development only.
func Disabled() *Authenticator { return &Authenticator{disabled: true} }

// Enabled reports whether a calls for credentials.
func (a *Authenticator) Enabled() bool { return !a.disabled }

// Authenticate returns the principal of a request given its Authorization
// and X-API-Key header values.
func (a *Authenticator) Authenticate(ctx context.Context, authorization, apiKey string) (Principal, error) {
	if a.disabled {
		return Principal{Scope: scope.All()}, nil
	}
	authorization, apiKey = strings.TrimSpace(authorization), strings.TrimSpace(apiKey)
	var bearer string
	if authorization != "" {
		scheme, cred, _ := strings.Cut(authorization, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return Principal{}, fail(Invalid, "the Authorization header must use the Bearer scheme", nil)
		}
		bearer = strings.TrimSpace(cred)
		if bearer == "" {
			return Principal{}, fail(Invalid, "the Authorization header has no credential after Bearer", nil)
		}
	}
	switch {
	case bearer == "" && apiKey == "":
		return Principal{}, fail(Missing, "credentials required: an API key as Authorization: Bearer <key> or X-API-Key: <key>, or a bearer JWT", nil)
	case bearer != "" && apiKey != "":
		return Principal{}, fail(Invalid, "send one credential, in Authorization or in X-API-Key, not both", nil)
	case len(bearer) > maxCredential || len(apiKey) > maxCredential:
		return Principal{}, fail(Invalid, "the credential is too long", nil)
	case bearer != "" && LooksLikeJWT(bearer):
		if a.jwt == nil {
			return Principal{}, fail(Invalid, "bearer tokens (JWT) are not accepted by this server; use an API key", nil)
		}
		return a.jwt.Verify(ctx, bearer)
	case bearer != "":
		return a.apiKey(bearer)
	default:
		return a.apiKey(apiKey)
	}
}

// apiKey finds the configured key whose hash is the presented key's.
func (a *Authenticator) apiKey(presented string) (Principal, error) {
	k, ok := a.keys.Lookup(presented)
	if !ok {
		return Principal{}, fail(Invalid, "unknown API key", nil)
	}
	return Principal{Name: "key:" + k.Name, Scope: k.Scope}, nil
}

// LooksLikeJWT reports whether s has the shape of a compact JWS: three
// base64url parts separated by dots, the first two not empty (the third is
// empty for alg "none", which then fails verification).
func LooksLikeJWT(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return false
	}
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			c := p[i]
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
