// Package authtest is an identity provider for tests: it serves a JWKS over
// httptest and signs JWTs with keys generated for the test.
package authtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// Default claims of Issuer.Token.
const (
	Issuer   = "https://idp.test/"
	Audience = "sensorhub-api"
)

// IdP serves a JWKS at URL and signs tokens.
type IdP struct {
	// URL is the JWKS URL.
	URL string
	// Key is the signing key published from the start (Ed25519, kid "k1").
	Key jwk.Key

	mu        sync.Mutex
	published []jwk.Key // private keys whose public halves the JWKS lists
	down      bool
	fetches   atomic.Int64
}

// New starts an IdP publishing one Ed25519 key; it stops when t ends.
func New(t testing.TB) *IdP {
	t.Helper()
	idp := &IdP{}
	idp.Key = NewKey(t, "k1", false)
	idp.published = []jwk.Key{idp.Key}
	srv := httptest.NewServer(http.HandlerFunc(idp.serveJWKS))
	t.Cleanup(srv.Close)
	idp.URL = srv.URL + "/.well-known/jwks.json"
	return idp
}

func (idp *IdP) serveJWKS(w http.ResponseWriter, r *http.Request) {
	idp.fetches.Add(1)
	idp.mu.Lock()
	defer idp.mu.Unlock()
	if idp.down || r.URL.Path != "/.well-known/jwks.json" {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	set := jwk.NewSet()
	for _, k := range idp.published {
		pub, err := k.PublicKey()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = set.AddKey(pub)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(set)
}

// NewKey generates a private signing key with kid: RSA (RS256) or Ed25519
// (EdDSA). The public JWK carries no "alg", as many providers publish them.
func NewKey(t testing.TB, kid string, useRSA bool) jwk.Key {
	t.Helper()
	var raw any
	var alg jwa.SignatureAlgorithm
	if useRSA {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		raw, alg = k, jwa.RS256()
	} else {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		raw, alg = k, jwa.EdDSA()
	}
	key, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := key.Set(jwk.KeyIDKey, kid); err != nil {
		t.Fatal(err)
	}
	// The algorithm is remembered here rather than set on the key, so that
	// the published JWK has no "alg" either.
	algs.Store(key, alg)
	return key
}

var algs sync.Map // jwk.Key → jwa.SignatureAlgorithm

// Publish makes the JWKS list keys (replacing what it listed).
func (idp *IdP) Publish(keys ...jwk.Key) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.published = keys
}

// SetDown makes the JWKS endpoint answer 503 (true) or serve again.
func (idp *IdP) SetDown(down bool) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.down = down
}

// Fetches returns how many times the JWKS was requested.
func (idp *IdP) Fetches() int64 { return idp.fetches.Load() }

// Scope is the value of the sensorhub claim.
type Scope struct {
	Devices  []string `json:"devices"`
	Prefixes []string `json:"prefixes"`
}

// Token returns a token for subject sub with scope sc, signed by idp.Key:
// issuer Issuer, audience Audience, valid for five minutes. change, when
// not nil, edits the claims before signing (delete one to leave it out).
func (idp *IdP) Token(t testing.TB, sub string, sc Scope, change func(claims map[string]any)) string {
	t.Helper()
	claims := Claims(sub, sc)
	if change != nil {
		change(claims)
	}
	return Sign(t, idp.Key, claims)
}

// Claims are the claims of Token before change.
func Claims(sub string, sc Scope) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": Issuer, "aud": []string{Audience}, "sub": sub,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"sensorhub": sc,
	}
}

// Sign signs claims with key.
func Sign(t testing.TB, key jwk.Key, claims map[string]any) string {
	t.Helper()
	tok := jwt.New()
	for name, v := range claims {
		if err := tok.Set(name, v); err != nil {
			t.Fatalf("claim %s: %v", name, err)
		}
	}
	alg, ok := algs.Load(key)
	if !ok {
		t.Fatal("authtest.Sign: key not made by NewKey")
	}
	b, err := jwt.Sign(tok, jwt.WithKey(alg.(jwa.SignatureAlgorithm), key))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Unsigned returns a token with header {"alg":"none"} and no signature.
func Unsigned(t testing.TB, kid string, claims map[string]any) string {
	t.Helper()
	header, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT", "kid": kid})
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc(header) + "." + enc(payload) + "."
}
