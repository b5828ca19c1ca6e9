package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/sensorhub/sensorhub/db/apikey"
	"github.com/sensorhub/sensorhub/services/api/internal/auth"
	"github.com/sensorhub/sensorhub/services/api/internal/config"
)

// The small subcommands: api hashkey and api healthcheck.

// hashKey prints the SHA-256 of the API key on stdin: what
// SENSORHUB_API_KEYS holds instead of the key.
func hashKey(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("api hashkey", flag.ContinueOnError)
	fs.Usage = usageFunc(fs, "api hashkey < KEYFILE", "Prints the hex SHA-256 of the API key read from stdin (surrounding white space ignored),\n"+
		"for the sha256 field of SENSORHUB_API_KEYS. A new key: openssl rand -hex 32 > KEYFILE")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: hashkey reads the key from stdin, not from arguments (they show in ps and shell history)", config.ErrUsage)
	}
	b, err := io.ReadAll(io.LimitReader(stdin, 64<<10))
	if err != nil {
		return fmt.Errorf("read key: %w", err)
	}
	key := strings.TrimSpace(string(b))
	switch {
	case key == "":
		return fmt.Errorf("%w: no key on stdin", config.ErrUsage)
	case strings.ContainsAny(key, "\r\n"):
		return fmt.Errorf("%w: stdin holds more than one line; give one key", config.ErrUsage)
	case auth.LooksLikeJWT(key):
		return fmt.Errorf("%w: the key has the shape of a JWT (three dot-separated base64url parts), so the API would verify it as a token; choose another", config.ErrUsage)
	case len(key) < 16:
		fmt.Fprintln(stderr, "api hashkey: warning: a short key is easy to guess; use 32 random bytes, e.g. openssl rand -hex 32")
	}
	fmt.Fprintln(stdout, apikey.HashKey(key))
	return nil
}

// healthcheck probes a running server: nil when its URL answers 200. It is
// the compose healthcheck of the distroless image, which has no shell or curl.
func healthcheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("api healthcheck", flag.ContinueOnError)
	fs.Usage = usageFunc(fs, "api healthcheck [flags]", "Exits 0 when URL answers 200 and 1 otherwise: the container healthcheck of an image without a shell.")
	target := fs.String("url", defaultHealthURL(getenv("SENSORHUB_API_ADDR")), "URL to probe; the default is /healthz at the port of env SENSORHUB_API_ADDR")
	timeout := fs.Duration("timeout", 3*time.Second, "bound on the probe")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", config.ErrUsage, fs.Args())
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *target, nil)
	if err != nil {
		return fmt.Errorf("%w: -url: %v", config.ErrUsage, err)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", *target, resp.Status)
	}
	return nil
}

// defaultHealthURL is /healthz on the loopback interface at the port of the
// API's listen address (":8080" when it is not set).
func defaultHealthURL(addr string) string {
	if addr == "" {
		addr = ":8080"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || port == "0" {
		return "http://127.0.0.1:8080/healthz"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz"
}
