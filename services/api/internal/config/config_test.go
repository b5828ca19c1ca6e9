package config

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		DatabaseURL: DefaultDatabaseURL, Addr: ":8080", AdminAddr: ":9090",
		RequestTimeout: 10 * time.Second, StatementTimeout: 5 * time.Second,
		MaxPoints: 100_000, MaxRawRange: 31 * 24 * time.Hour, PoolSize: 10, DBListen: true, LogFormat: "auto",
		ShutdownTimeout: 20 * time.Second,
	}
	if c.DatabaseURL != want.DatabaseURL || c.Addr != want.Addr || c.AdminAddr != want.AdminAddr ||
		c.RequestTimeout != want.RequestTimeout || c.StatementTimeout != want.StatementTimeout ||
		c.MaxPoints != want.MaxPoints || c.MaxRawRange != want.MaxRawRange || c.PoolSize != want.PoolSize ||
		c.LogFormat != want.LogFormat || c.ShutdownTimeout != want.ShutdownTimeout || c.CORSOrigins != nil || c.CursorKey != "" || c.Pprof ||
		!c.DBListen {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
	// Authentication is on unless turned off; no rate limit.
	if c.Auth != AuthOn || c.JWTClaim != "sensorhub" || c.JWKSRefresh != 10*time.Minute || c.RateLimit != 0 || c.RateBurst != 0 ||
		c.APIKeys != "" || c.APIKeysFile != "" || c.JWKSURL != "" {
		t.Errorf("auth defaults: %+v", c)
	}
}

func TestAuthSettings(t *testing.T) {
	keys := `[{"name": "a", "sha256": "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"}]`
	e := env(map[string]string{
		"SENSORHUB_AUTH":         "off",
		"SENSORHUB_API_KEYS":     keys,
		"SENSORHUB_JWKS_URL":     "https://user:pw@idp.example/jwks.json",
		"SENSORHUB_JWT_ISSUER":   "https://idp.example/",
		"SENSORHUB_JWT_AUDIENCE": "sensorhub",
		"SENSORHUB_JWT_CLAIM":    "scope",
		"SENSORHUB_RATE_LIMIT":   "2.5",
		"SENSORHUB_RATE_BURST":   "10",
	})
	c, err := Load([]string{"-auth", "on", "-rate-burst", "5"}, e, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth != AuthOn || c.APIKeys != keys || c.JWKSURL == "" || c.JWTIssuer != "https://idp.example/" || c.JWTAudience != "sensorhub" ||
		c.JWTClaim != "scope" || c.RateLimit != 2.5 || c.RateBurst != 5 {
		t.Errorf("got %+v", c)
	}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "config", c)
	for _, secret := range []string{"2bb80d537b", ":pw@"} {
		if strings.Contains(b.String(), secret) {
			t.Errorf("printed config shows %q: %s", secret, b.String())
		}
	}
	if !strings.Contains(b.String(), "api_keys=SENSORHUB_API_KEYS") || !strings.Contains(b.String(), "rate_limit=2.5") {
		t.Errorf("printed config lacks the auth settings: %s", b.String())
	}
}

func TestEnvAndFlags(t *testing.T) {
	e := env(map[string]string{
		"DATABASE_URL":           "postgres://api:hunter2@db:5432/sensorhub",
		"SENSORHUB_API_ADDR":     ":1",
		"SENSORHUB_ADMIN_ADDR":   "off",
		"SENSORHUB_MAX_POINTS":   "500",
		"SENSORHUB_CORS_ORIGINS": "https://a.example, https://b.example",
		"SENSORHUB_CURSOR_KEY":   "s3cret",
		"LOG_FORMAT":             "json",
	})
	c, err := Load([]string{"-addr", ":2", "-statement-timeout", "250ms"}, e, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":2" || c.AdminAddr != "" || c.MaxPoints != 500 || c.StatementTimeout != 250*time.Millisecond ||
		len(c.CORSOrigins) != 2 || c.CORSOrigins[1] != "https://b.example" || c.CursorKey != "s3cret" || c.LogFormat != "json" {
		t.Errorf("got %+v", c)
	}

	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "config", c)
	for _, secret := range []string{"hunter2", "s3cret"} {
		if strings.Contains(b.String(), secret) {
			t.Errorf("printed config shows %q: %s", secret, b.String())
		}
	}
	if !strings.Contains(b.String(), "api:xxxxx@db") {
		t.Errorf("printed config lacks the masked DSN: %s", b.String())
	}
}

func TestPprof(t *testing.T) {
	c, err := Load(nil, env(map[string]string{"SENSORHUB_PPROF": "1"}), io.Discard)
	if err != nil || !c.Pprof {
		t.Errorf("SENSORHUB_PPROF=1: pprof %v, err %v", c.Pprof, err)
	}
	c, err = Load([]string{"-pprof=false"}, env(map[string]string{"SENSORHUB_PPROF": "true"}), io.Discard)
	if err != nil || c.Pprof {
		t.Errorf("-pprof=false over the environment: pprof %v, err %v", c.Pprof, err)
	}
}

func TestDBListen(t *testing.T) {
	c, err := Load(nil, env(map[string]string{"SENSORHUB_DB_LISTEN": "off"}), io.Discard)
	if err != nil || c.DBListen {
		t.Errorf("SENSORHUB_DB_LISTEN=off: listen %v, err %v", c.DBListen, err)
	}
	c, err = Load([]string{"-db-listen", "on"}, env(map[string]string{"SENSORHUB_DB_LISTEN": "off"}), io.Discard)
	if err != nil || !c.DBListen {
		t.Errorf("-db-listen on over the environment: listen %v, err %v", c.DBListen, err)
	}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "config", c)
	if !strings.Contains(b.String(), "db_listen=true") {
		t.Errorf("printed config lacks db_listen: %s", b.String())
	}
}

func TestResponseCacheSize(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want int
	}{{nil, nil, 64}, {nil, map[string]string{"SENSORHUB_RESPONSE_CACHE_MIB": "0"}, 0}, {[]string{"-response-cache-mib", "8"}, nil, 8}} {
		c, err := Load(tc.args, env(tc.env), io.Discard)
		if err != nil || c.ResponseCacheMiB != tc.want {
			t.Errorf("%v %v: %d MiB, err %v; want %d", tc.args, tc.env, c.ResponseCacheMiB, err, tc.want)
		}
	}
}

func TestInvalid(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
	}{
		"env not an integer":      {env: map[string]string{"SENSORHUB_MAX_POINTS": "many"}},
		"env not a duration":      {env: map[string]string{"SENSORHUB_REQUEST_TIMEOUT": "10"}},
		"zero points":             {args: []string{"-max-points", "0"}},
		"negative pool":           {args: []string{"-pool-size", "-1"}},
		"unknown log format":      {args: []string{"-log-format", "xml"}},
		"unknown flag":            {args: []string{"-nope"}},
		"stray argument":          {args: []string{"extra"}},
		"tiny statement time":     {args: []string{"-statement-timeout", "10us"}},
		"auth neither on nor off": {env: map[string]string{"SENSORHUB_AUTH": "false"}},
		"listen not on or off":    {env: map[string]string{"SENSORHUB_DB_LISTEN": "no"}},
		"negative cache":          {args: []string{"-response-cache-mib", "-1"}},
		"keys in two places":      {env: map[string]string{"SENSORHUB_API_KEYS": "[]", "SENSORHUB_API_KEYS_FILE": "keys.json"}},
		"rate not a number":       {env: map[string]string{"SENSORHUB_RATE_LIMIT": "fast"}},
		"negative rate":           {args: []string{"-rate-limit", "-1"}},
		"infinite rate":           {args: []string{"-rate-limit", "+Inf"}},
		"negative burst":          {args: []string{"-rate-burst", "-1"}},
		"empty claim":             {args: []string{"-jwt-claim", ""}},
		"zero JWKS refresh":       {args: []string{"-jwks-refresh", "0s"}},
		"pprof not a boolean":     {env: map[string]string{"SENSORHUB_PPROF": "yes please"}},
		"pprof on the API port":   {env: map[string]string{"SENSORHUB_PPROF": "true", "SENSORHUB_ADMIN_ADDR": "off"}},
	} {
		if _, err := Load(tc.args, env(tc.env), io.Discard); !errors.Is(err, ErrUsage) {
			t.Errorf("%s: %v, want ErrUsage", name, err)
		}
	}
	if _, err := Load([]string{"-h"}, env(nil), io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:pw@h/db":                    "postgres://u:xxxxx@h/db",
		"postgres://u@h/db?password=pw&sslmode=x": "postgres://u@h/db?password=xxxxx&sslmode=x",
		"host=h user=u password=pw dbname=d":      "host=h user=u password=xxxxx dbname=d",
		"host=h password='p w' dbname=d":          "host=h password=xxxxx dbname=d",
	} {
		if got := RedactDSN(in); got != want {
			t.Errorf("RedactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}
