package config_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/services/ingest/internal/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// TestParseServe: defaults that work locally, variables under flags, and
// each bad combination a usage error that names the setting.
func TestParseServe(t *testing.T) {
	base := map[string]string{"DATABASE_URL": "postgres://localhost/x"}
	c, err := config.ParseServe([]string{"-auth", "off"}, env(base), io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8081" || c.MaxInFlight != 32 || c.Wait != 10*time.Second || c.GroupWait != 5*time.Millisecond || c.RefreshInterval != time.Second {
		t.Errorf("defaults: %+v", c)
	}
	withEnv := map[string]string{"DATABASE_URL": "postgres://localhost/x", "INGEST_AUTH": "off", "INGEST_GROUP_WAIT": "20ms", "INGEST_MAX_IN_FLIGHT": "4"}
	c, err = config.ParseServe([]string{"-max-in-flight", "8"}, env(withEnv), io.Discard, io.Discard)
	if err != nil || c.GroupWait != 20*time.Millisecond || c.MaxInFlight != 8 {
		t.Errorf("env and flag: %+v, %v; want group wait 20ms from the environment, in-flight 8 from the flag", c, err)
	}
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"auth on without keys": {nil, base, "INGEST_WRITE_KEYS"},
		"both key sources":     {[]string{"-write-keys-file", "k.json"}, map[string]string{"DATABASE_URL": "x", "INGEST_WRITE_KEYS": "[]"}, "not both"},
		"no database":          {[]string{"-auth", "off"}, nil, "DATABASE_URL"},
		"bad auth":             {[]string{"-auth", "maybe"}, base, "-auth"},
		"bad duration":         {[]string{"-auth", "off"}, map[string]string{"DATABASE_URL": "x", "INGEST_WRITE_WAIT": "soon"}, "INGEST_WRITE_WAIT"},
		"zero in flight":       {[]string{"-auth", "off", "-max-in-flight", "0"}, base, "must be positive"},
		"arguments":            {[]string{"-auth", "off", "extra"}, base, "no arguments"},
	} {
		_, err := config.ParseServe(tc.args, env(tc.env), io.Discard, io.Discard)
		if !errors.Is(err, config.ErrUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want a usage error naming %q", name, err, tc.want)
		}
	}
}
