package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/sensorhub/sensorhub/db/apikey"
	"github.com/sensorhub/sensorhub/services/api/internal/auth"
	"github.com/sensorhub/sensorhub/services/api/internal/auth/authtest"
)

const (
	keyA     = "key-of-tenant-a-0123456789"
	keyAdmin = "key-of-the-admin-0123456789"
)

func testKeys(t *testing.T) []apikey.Key {
	t.Helper()
	keys, err := apikey.ParseKeys([]byte(`[
		{"name": "tenantA", "sha256": "` + apikey.HashKey(keyA) + `", "devices": ["device.foo"], "prefixes": ["tenantA.", "parameter."]},
		{"name": "admin", "sha256": "` + strings.ToUpper(apikey.HashKey(keyAdmin)) + `"}
	]`))
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func kindOf(err error) auth.Kind {
	var ae *auth.Error
	if errors.As(err, &ae) {
		return ae.Kind
	}
	return 0
}

func TestAPIKeys(t *testing.T) {
	a := auth.New(testKeys(t), nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name, authorization, apiKey string
		want                        string // principal name, or "" for failure
		kind                        auth.Kind
	}{
		{"bearer", "Bearer " + keyA, "", "key:tenantA", 0},
		{"bearer lower case, padded", "  bearer   " + keyA + " ", "", "key:tenantA", 0},
		{"X-API-Key", "", keyAdmin, "key:admin", 0},
		{"none", "", "", "", auth.Missing},
		{"unknown", "Bearer nope", "", "", auth.Invalid},
		{"unknown X-API-Key", "", "nope", "", auth.Invalid},
		{"basic scheme", "Basic dXNlcjpwYXNz", "", "", auth.Invalid},
		{"bearer without credential", "Bearer", "", "", auth.Invalid},
		{"both headers", "Bearer " + keyA, keyA, "", auth.Invalid},
		{"key with a suffix", "Bearer " + keyA + "x", "", "", auth.Invalid},
		{"JWT without JWKS", "Bearer aaa.bbb.ccc", "", "", auth.Invalid},
		{"huge", "Bearer " + strings.Repeat("k", 20_000), "", "", auth.Invalid},
	} {
		p, err := a.Authenticate(ctx, tc.authorization, tc.apiKey)
		switch {
		case tc.want != "" && (err != nil || p.Name != tc.want):
			t.Errorf("%s: %+v, %v; want %s", tc.name, p, err, tc.want)
		case tc.want == "" && kindOf(err) != tc.kind:
			t.Errorf("%s: %+v, %v; want failure of kind %d", tc.name, p, err, tc.kind)
		}
	}
	p, err := auth.Disabled().Authenticate(ctx, "", "")
	if err != nil || !p.Scope.IsAll() || p.Name != "" {
		t.Errorf("disabled: %+v, %v", p, err)
	}
}

func TestLooksLikeJWT(t *testing.T) {
	for s, want := range map[string]bool{
		"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln": true,
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.":      true, // alg none: verified, and refused
		"a.b":                                       false,
		"a.b.c.d":                                   false,
		".b.c":                                      false,
		"a..c":                                      false,
		"a.b+c.d":                                   false,
		"a.b=.c":                                    false,
		"0123456789abcdef":                          false,
	} {
		if got := auth.LooksLikeJWT(s); got != want {
			t.Errorf("LooksLikeJWT(%q) = %v", s, got)
		}
	}
}

func newVerifier(t *testing.T, idp *authtest.IdP, change func(*auth.JWTConfig)) *auth.Authenticator {
	t.Helper()
	cfg := auth.JWTConfig{JWKSURL: idp.URL, Issuer: authtest.Issuer, Audience: authtest.Audience, MinRefetch: time.Millisecond}
	if change != nil {
		change(&cfg)
	}
	v, err := auth.NewJWTVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return auth.New(testKeys(t), v)
}

func TestJWT(t *testing.T) {
	idp := authtest.New(t)
	a := newVerifier(t, idp, nil)
	ctx := context.Background()
	sc := authtest.Scope{Devices: []string{"device.bar"}, Prefixes: []string{"tenantB."}}

	p, err := a.Authenticate(ctx, "Bearer "+idp.Token(t, "client-7", sc, nil), "")
	if err != nil {
		t.Fatalf("valid token: %v", err)
	}
	if p.Name != "jwt:client-7" || !p.Scope.Allows("device.bar", "tenantB.x") || p.Scope.Allows("device.foo", "tenantB.x") || p.Scope.Allows("device.bar", "parameter.x") {
		t.Errorf("valid token: %+v", p)
	}
	// An empty claim list leaves that dimension open, as with API keys.
	p, err = a.Authenticate(ctx, "Bearer "+idp.Token(t, "c", authtest.Scope{Prefixes: []string{"tenantB."}}, nil), "")
	if err != nil || !p.Scope.Allows("device.foo", "tenantB.x") || p.Scope.Allows("device.foo", "tenantA.x") {
		t.Errorf("prefixes only: %+v %v", p, err)
	}

	otherKey := authtest.NewKey(t, "k1", false) // same kid, not published
	hour := time.Hour
	refused := map[string]string{
		"expired":         idp.Token(t, "c", sc, func(c map[string]any) { c["exp"] = time.Now().Add(-hour).Unix() }),
		"not yet valid":   idp.Token(t, "c", sc, func(c map[string]any) { c["nbf"] = time.Now().Add(hour).Unix() }),
		"no exp":          idp.Token(t, "c", sc, func(c map[string]any) { delete(c, "exp") }),
		"no sub":          idp.Token(t, "c", sc, func(c map[string]any) { delete(c, "sub") }),
		"wrong issuer":    idp.Token(t, "c", sc, func(c map[string]any) { c["iss"] = "https://evil.test/" }),
		"wrong audience":  idp.Token(t, "c", sc, func(c map[string]any) { c["aud"] = []string{"other-api"} }),
		"no scope claim":  idp.Token(t, "c", sc, func(c map[string]any) { delete(c, "sensorhub") }),
		"scope not list":  idp.Token(t, "c", sc, func(c map[string]any) { c["sensorhub"] = map[string]any{"devices": "device.bar"} }),
		"scope extra key": idp.Token(t, "c", sc, func(c map[string]any) { c["sensorhub"] = map[string]any{"tenant": "b"} }),
		"scope null":      idp.Token(t, "c", sc, func(c map[string]any) { c["sensorhub"] = nil }),
		"empty prefix":    idp.Token(t, "c", authtest.Scope{Prefixes: []string{""}}, nil),
		"wrong key":       authtest.Sign(t, otherKey, authtest.Claims("c", sc)),
		"alg none":        authtest.Unsigned(t, "k1", authtest.Claims("c", sc)),
		"HS256 confusion": hmacWithPublicKey(t, idp, authtest.Claims("c", sc)),
		"tampered": func() string {
			tok := idp.Token(t, "c", sc, nil)
			parts := strings.Split(tok, ".")
			other := strings.Split(idp.Token(t, "admin", authtest.Scope{}, nil), ".")
			return parts[0] + "." + other[1] + "." + parts[2]
		}(),
	}
	for name, tok := range refused {
		p, err := a.Authenticate(ctx, "Bearer "+tok, "")
		if kindOf(err) != auth.Invalid {
			t.Errorf("%s: %+v, %v; want refused as invalid", name, p, err)
		}
	}
	// Without issuer and audience configured, they are not checked.
	lax := newVerifier(t, idp, func(c *auth.JWTConfig) { c.Issuer, c.Audience = "", "" })
	if _, err := lax.Authenticate(ctx, "Bearer "+refused["wrong issuer"], ""); err != nil {
		t.Errorf("issuer checked although not configured: %v", err)
	}
	// A custom claim name.
	custom := newVerifier(t, idp, func(c *auth.JWTConfig) { c.Claim = "https://sensorhub.example/scope" })
	tok := idp.Token(t, "c", sc, func(c map[string]any) { c["https://sensorhub.example/scope"] = c["sensorhub"]; delete(c, "sensorhub") })
	if _, err := custom.Authenticate(ctx, "Bearer "+tok, ""); err != nil {
		t.Errorf("custom claim: %v", err)
	}
}

// hmacWithPublicKey signs claims with HS256, using the published public key's
// JSON as the secret and its kid: the algorithm-confusion attack.
func hmacWithPublicKey(t *testing.T, idp *authtest.IdP, claims map[string]any) string {
	t.Helper()
	pub, err := idp.Key.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	secret, err := json.Marshal(pub)
	if err != nil {
		t.Fatal(err)
	}
	key, err := jwk.Import(secret)
	if err != nil {
		t.Fatal(err)
	}
	_ = key.Set(jwk.KeyIDKey, "k1")
	tok := jwt.New()
	for k, v := range claims {
		_ = tok.Set(k, v)
	}
	b, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256(), key))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestJWKSRotation: a token signed by a key the cached JWKS lacks makes the
// verifier fetch the JWKS again (once), so rotated keys work at once.
func TestJWKSRotation(t *testing.T) {
	idp := authtest.New(t)
	a := newVerifier(t, idp, func(c *auth.JWTConfig) { c.Refresh = time.Hour })
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, "Bearer "+idp.Token(t, "c", authtest.Scope{}, nil), ""); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := a.Authenticate(ctx, "Bearer "+idp.Token(t, "c", authtest.Scope{}, nil), ""); err != nil {
			t.Fatal(err)
		}
	}
	if n := idp.Fetches(); n != 1 {
		t.Errorf("%d JWKS fetches for 4 tokens of a known key, want 1 (cached)", n)
	}

	k2 := authtest.NewKey(t, "k2", true) // RSA
	idp.Publish(idp.Key, k2)
	tok := authtest.Sign(t, k2, authtest.Claims("c", authtest.Scope{}))
	if _, err := a.Authenticate(ctx, "Bearer "+tok, ""); err != nil {
		t.Fatalf("token of a newly published key: %v", err)
	}
	if n := idp.Fetches(); n != 2 {
		t.Errorf("%d JWKS fetches, want 2", n)
	}

	// The provider is down: the cached keys still verify; unknown ones are
	// refused as unavailable, not as invalid.
	idp.SetDown(true)
	if _, err := a.Authenticate(ctx, "Bearer "+tok, ""); err != nil {
		t.Errorf("cached key while the JWKS is down: %v", err)
	}
	k3 := authtest.NewKey(t, "k3", false)
	if _, err := a.Authenticate(ctx, "Bearer "+authtest.Sign(t, k3, authtest.Claims("c", authtest.Scope{})), ""); kindOf(err) != auth.Invalid {
		t.Errorf("unknown key while the JWKS is down (a stale set is kept): %v, want invalid", err)
	}
}

func TestJWKSUnavailable(t *testing.T) {
	idp := authtest.New(t)
	idp.SetDown(true)
	a := newVerifier(t, idp, func(c *auth.JWTConfig) { c.MinRefetch = time.Hour })
	tok := "Bearer " + idp.Token(t, "c", authtest.Scope{}, nil)
	for i := range 3 {
		if _, err := a.Authenticate(context.Background(), tok, ""); kindOf(err) != auth.Unavailable {
			t.Fatalf("attempt %d with the JWKS down: %v, want unavailable", i, err)
		}
	}
	if n := idp.Fetches(); n != 1 {
		t.Errorf("%d fetches of a failing JWKS within MinRefetch, want 1", n)
	}
	// API keys do not depend on the JWKS.
	if _, err := a.Authenticate(context.Background(), "", keyA); err != nil {
		t.Errorf("API key while the JWKS is down: %v", err)
	}
}

// TestJWKSConcurrent: requests that arrive together before the JWKS is
// fetched share one fetch.
func TestJWKSConcurrent(t *testing.T) {
	idp := authtest.New(t)
	a := newVerifier(t, idp, nil)
	tok := "Bearer " + idp.Token(t, "c", authtest.Scope{}, nil)
	errs := make(chan error, 32)
	for range cap(errs) {
		go func() {
			_, err := a.Authenticate(context.Background(), tok, "")
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := idp.Fetches(); n != 1 {
		t.Errorf("%d JWKS fetches for concurrent first requests, want 1", n)
	}
}
