package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/sensorhub/sensorhub/db/scope"
)

// JWTConfig configures the verification of JWT bearer tokens.
type JWTConfig struct {
	// JWKSURL is where the issuer publishes its signing keys (JWK Set).
	JWKSURL string
	// Issuer, when not empty, must equal the token's iss.
	Issuer string
	// Audience, when not empty, must be one of the token's aud.
	Audience string
	// Claim names the claim holding the token's scope,
	// {"devices": [...], "prefixes": [...]}; default DefaultClaim.
	Claim string
	// Refresh is how long a fetched JWKS is used before it is fetched again;
	// default 10 minutes. A token signed by a key the set does not have
	// makes it fetch sooner, at most once per MinRefetch.
	Refresh time.Duration
	// MinRefetch is the least time between two fetches of the JWKS (failed
	// or not); default 30 seconds.
	MinRefetch time.Duration
	// Leeway is the clock skew allowed on exp, nbf and iat; default 30 seconds.
	Leeway time.Duration
	// Client fetches the JWKS; default an http.Client with a 5s timeout.
	Client *http.Client
	// Logger receives fetch failures; nil discards them.
	Logger *slog.Logger
}

// DefaultClaim is the default name of the scope claim.
const DefaultClaim = "sensorhub"

// JWTVerifier verifies compact JWS tokens signed by a key of a JWKS and
// turns them into Principals.
type JWTVerifier struct {
	cfg  JWTConfig
	keys *jwksCache
}

// NewJWTVerifier checks cfg and fills in its defaults. It does not fetch
// the JWKS; see Prefetch.
func NewJWTVerifier(cfg JWTConfig) (*JWTVerifier, error) {
	u, err := url.Parse(cfg.JWKSURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("JWKS URL %q is not an http(s) URL", cfg.JWKSURL)
	}
	if cfg.Claim == "" {
		cfg.Claim = DefaultClaim
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 10 * time.Minute
	}
	if cfg.MinRefetch <= 0 {
		cfg.MinRefetch = 30 * time.Second
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = 30 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 5 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &JWTVerifier{cfg: cfg, keys: &jwksCache{
		url: cfg.JWKSURL, client: cfg.Client, refresh: cfg.Refresh, minGap: cfg.MinRefetch,
		log: cfg.Logger, sem: make(chan struct{}, 1),
	}}, nil
}

// Prefetch fetches the JWKS, so that the first request need not wait; its
// error is worth a warning only, as requests fetch again.
func (v *JWTVerifier) Prefetch(ctx context.Context) error {
	_, err := v.keys.get(ctx)
	return err
}

// scopeClaim is the value of the scope claim.
type scopeClaim struct {
	Devices  []string `json:"devices"`
	Prefixes []string `json:"prefixes"`
}

// Verify checks token's signature against the JWKS, its exp (required), nbf
// and iat, its issuer and audience when configured, and that it has a
// subject and the scope claim.
func (v *JWTVerifier) Verify(ctx context.Context, token string) (Principal, error) {
	msg, err := jws.Parse([]byte(token))
	if err != nil {
		return Principal{}, fail(Invalid, "malformed token", err)
	}
	sigs := msg.Signatures()
	if len(sigs) != 1 {
		return Principal{}, fail(Invalid, "malformed token", nil)
	}
	kid, _ := sigs[0].ProtectedHeaders().KeyID()
	set, err := v.keys.get(ctx)
	if err != nil {
		return Principal{}, fail(Unavailable, "the token issuer's keys cannot be fetched; retry later", err)
	}
	if _, ok := set.LookupKeyID(kid); kid != "" && !ok {
		// Perhaps the issuer rotated its keys since the last fetch.
		if set, err = v.keys.refetch(ctx, set); err != nil {
			return Principal{}, fail(Unavailable, "the token issuer's keys cannot be fetched; retry later", err)
		}
	}
	opts := []jwt.ParseOption{
		// Keys without an "alg" get the algorithms of their type; the
		// token's own alg must be one of them, so "none" and HMAC with a
		// public key never verify.
		jwt.WithKeySet(set, jws.WithInferAlgorithmFromKey(true), jws.WithUseDefault(true)),
		jwt.WithValidate(true),
		jwt.WithAcceptableSkew(v.cfg.Leeway),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithRequiredClaim(jwt.SubjectKey),
	}
	if v.cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.cfg.Issuer))
	}
	if v.cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(v.cfg.Audience))
	}
	tok, err := jwt.Parse([]byte(token), opts...)
	if err != nil {
		return Principal{}, fail(Invalid, invalidReason(err), err)
	}
	sub, _ := tok.Subject()
	var raw any
	if err := tok.Get(v.cfg.Claim, &raw); err != nil {
		return Principal{}, fail(Invalid, "the token has no "+v.cfg.Claim+" claim with the devices and prefixes it may read", err)
	}
	sc, err := decodeScopeClaim(raw)
	if err != nil {
		return Principal{}, fail(Invalid, "the token's "+v.cfg.Claim+" claim is malformed: "+err.Error(), nil)
	}
	return Principal{Name: "jwt:" + sub, Scope: sc}, nil
}

func decodeScopeClaim(raw any) (scope.Scope, error) {
	b, err := json.Marshal(raw)
	if err != nil {
		return scope.Scope{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c *scopeClaim
	if err := dec.Decode(&c); err != nil || c == nil {
		return scope.Scope{}, errors.New(`want {"devices": [...], "prefixes": [...]}`)
	}
	return scope.FromLists(c.Devices, c.Prefixes)
}

// invalidReason says, for the client, why a token was refused.
func invalidReason(err error) string {
	switch {
	case errors.Is(err, jwt.TokenExpiredError()):
		return "the token has expired"
	case errors.Is(err, jwt.TokenNotYetValidError()):
		return "the token is not valid yet"
	case errors.Is(err, jwt.InvalidIssuerError()):
		return "the token's issuer is not accepted"
	case errors.Is(err, jwt.InvalidAudienceError()):
		return "the token is not for this audience"
	case errors.Is(err, jwt.InvalidIssuedAtError()):
		return "the token's iat is in the future"
	case errors.Is(err, jwt.MissingRequiredClaimError()):
		return "the token lacks a required claim (exp and sub are required)"
	}
	return "the token's signature does not verify with the issuer's keys"
}

// jwksCache holds the issuer's key set: fetched on first use, used for
// Refresh, then fetched again by one request while the others go on with
// the previous set; a failed fetch keeps the previous set. Fetches are
// serialised and at least minGap apart. It runs no goroutines.
type jwksCache struct {
	url     string
	client  *http.Client
	refresh time.Duration
	minGap  time.Duration
	log     *slog.Logger

	cur atomic.Pointer[jwksEntry]
	sem chan struct{} // held while fetching

	// Guarded by sem.
	lastAttempt time.Time
	lastErr     error
}

type jwksEntry struct {
	set     jwk.Set
	fetched time.Time
}

// fetchTimeout bounds one fetch of the JWKS, even when the request that
// triggered it goes away (the others need the result).
const fetchTimeout = 5 * time.Second

// get returns the key set, fetching it when there is none or it is older
// than refresh.
func (c *jwksCache) get(ctx context.Context) (jwk.Set, error) {
	e := c.cur.Load()
	if e != nil && time.Since(e.fetched) < c.refresh {
		return e.set, nil
	}
	if e != nil {
		select {
		case c.sem <- struct{}{}:
		default:
			return e.set, nil // another request is fetching
		}
		defer func() { <-c.sem }()
		if cur := c.cur.Load(); cur != e {
			return cur.set, nil
		}
		return c.fetchLocked(ctx, e)
	}
	if err := c.acquire(ctx); err != nil {
		return nil, err
	}
	defer func() { <-c.sem }()
	if cur := c.cur.Load(); cur != nil {
		return cur.set, nil
	}
	return c.fetchLocked(ctx, nil)
}

// refetch fetches the key set anew because a token names a key that seen
// does not have, unless another request has replaced seen meanwhile.
func (c *jwksCache) refetch(ctx context.Context, seen jwk.Set) (jwk.Set, error) {
	if err := c.acquire(ctx); err != nil {
		return nil, err
	}
	defer func() { <-c.sem }()
	cur := c.cur.Load()
	if cur != nil && cur.set != seen {
		return cur.set, nil
	}
	return c.fetchLocked(ctx, cur)
}

func (c *jwksCache) acquire(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fetchLocked fetches the JWKS unless the last attempt is less than minGap
// ago; on failure it returns the stale set, if any. The caller holds sem.
func (c *jwksCache) fetchLocked(ctx context.Context, stale *jwksEntry) (jwk.Set, error) {
	if !c.lastAttempt.IsZero() && time.Since(c.lastAttempt) < c.minGap {
		if stale != nil {
			return stale.set, nil
		}
		return nil, fmt.Errorf("JWKS fetch failed %v ago: %w", time.Since(c.lastAttempt).Round(time.Second), c.lastErr)
	}
	c.lastAttempt = time.Now()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	set, err := jwk.Fetch(fctx, c.url, jwk.WithHTTPClient(c.client))
	if err == nil && set.Len() == 0 {
		err = errors.New("the JWKS holds no keys")
	}
	if err != nil {
		c.lastErr = err
		c.log.Warn("cannot fetch the JWKS; tokens are verified with the keys fetched before, if any", "url", c.url, "err", err)
		if stale != nil {
			return stale.set, nil
		}
		return nil, err
	}
	c.lastErr = nil
	c.cur.Store(&jwksEntry{set: set, fetched: time.Now()})
	return set, nil
}
