package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// runCLI runs migrate in this process on env, as main would; none of these
// invocations gets as far as a database.
func runCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(t.Context(), args, func(k string) string { return env[k] }, &out, &errOut)
	return exitCode(err, &errOut), out.String(), errOut.String()
}

// TestUsageErrors: each way of invoking migrate wrongly exits 2 and names
// the problem on stderr.
func TestUsageErrors(t *testing.T) {
	dsn := map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"bad flag", dsn, []string{"-bogus"}, "flag provided but not defined: -bogus"},
		{"bad flag value", dsn, []string{"-version=maybe"}, "invalid boolean value"},
		{"no DATABASE_URL", nil, nil, "DATABASE_URL is not set"},
		{"empty -database-url", dsn, []string{"-database-url", ""}, "DATABASE_URL is not set"},
		{"bad -flavor", dsn, []string{"-flavor", "oracle"}, `-flavor (env SENSORHUB_SCHEMA_FLAVOR): unknown schema flavor "oracle"`},
		{"bad SENSORHUB_SCHEMA_FLAVOR", map[string]string{"DATABASE_URL": dsn["DATABASE_URL"], "SENSORHUB_SCHEMA_FLAVOR": "oracle"}, nil, "unknown schema flavor"},
		{"positional argument", dsn, []string{"up"}, `migrate takes no arguments, got ["up"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.env, tc.args...)
			if code != 2 || stdout != "" || !strings.Contains(stderr, "migrate: usage: ") || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and %q on stderr", code, stdout, stderr, tc.want)
			}
		})
	}
}

// versionPattern is what --version prints on every binary.
var versionPattern = regexp.MustCompile(`^migrate \S+ \(go\S+, \w+/\w+\)\n$`)

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-version"}} {
		// No DATABASE_URL: asking for the version needs no configuration.
		if code, stdout, stderr := runCLI(t, nil, args...); code != 0 || !versionPattern.MatchString(stdout) || stderr != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 0 and one line migrate VERSION (GO, OS/ARCH)", args, code, stdout, stderr)
		}
	}
}

// TestHelp: -h and --help print the synopsis and every flag, each naming its
// environment variable, to stdout and exit 0, without hinting at the DSN.
func TestHelp(t *testing.T) {
	env := map[string]string{"DATABASE_URL": "postgres://u:s3cret@h/db"}
	for _, h := range []string{"-h", "--help"} {
		code, stdout, stderr := runCLI(t, env, h)
		if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "usage: migrate [flags]\n") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 0 and the synopsis on stdout", h, code, stdout, stderr)
		}
		if strings.Contains(stdout, "s3cret") {
			t.Errorf("%s shows DATABASE_URL's password:\n%s", h, stdout)
		}
		lines := strings.Split(stdout, "\n")
		var flags int
		for i, line := range lines {
			if !strings.HasPrefix(line, "  -") || strings.HasPrefix(line, "  -version") {
				continue
			}
			flags++
			if i+1 == len(lines) || !strings.Contains(lines[i+1], "(env ") {
				t.Errorf("%s: flag %s names no environment variable", h, strings.TrimSpace(line))
			}
		}
		if flags != 7 {
			t.Errorf("%s lists %d flags with a variable, want 7:\n%s", h, flags, stdout)
		}
	}
}
