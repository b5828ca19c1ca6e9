package cmdline

import (
	"regexp"
	"runtime/debug"
	"testing"
)

func TestLine(t *testing.T) {
	if got := Line("api", "1.2.3"); !regexp.MustCompile(`^api 1\.2\.3 \(go[^,]+, [a-z0-9]+/[a-z0-9]+\)$`).MatchString(got) {
		t.Errorf("Line = %q", got)
	}
	if got := Line("ingest", "dev"); !regexp.MustCompile(`^ingest dev(-[0-9a-f]{1,12}(\+dirty)?)? \(`).MatchString(got) {
		t.Errorf("Line of a dev build = %q", got)
	}
}

func TestRevision(t *testing.T) {
	for _, tc := range []struct {
		settings []debug.BuildSetting
		want     string
	}{
		{nil, ""},
		{[]debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "false"}}, "0123456789ab"},
		{[]debug.BuildSetting{{Key: "vcs.modified", Value: "true"}, {Key: "vcs.revision", Value: "0123456789abcdef0123"}}, "0123456789ab+dirty"},
	} {
		if got := revision(tc.settings); got != tc.want {
			t.Errorf("revision(%v) = %q, want %q", tc.settings, got, tc.want)
		}
	}
}
