// Package cmdline holds the command-line conventions every sensorhub binary
// (api, ingest, migrate, localpg) keeps: the `--version` line, and help on
// stdout with usage errors on stderr. It lives in the db module because every
// binary already depends on it.
package cmdline

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Line is what --version prints: name, the version stamped at build
// (-ldflags "-X main.version=..."), or for a "dev" build the commit it was
// built from when the go command recorded it, then Go and the platform.
func Line(name, version string) string {
	v := version
	if info, ok := debug.ReadBuildInfo(); ok && v == "dev" {
		if rev := revision(info.Settings); rev != "" {
			v += "-" + rev
		}
	}
	return fmt.Sprintf("%s %s (%s, %s/%s)", name, v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// revision is the VCS commit among a build's settings, shortened to 12
// characters, with "+dirty" for a modified work tree; "" when not recorded
// (go test, -buildvcs=false).
func revision(settings []debug.BuildSetting) string {
	var rev string
	var dirty bool
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return ""
	}
	rev = rev[:min(len(rev), 12)]
	if dirty {
		rev += "+dirty"
	}
	return rev
}
