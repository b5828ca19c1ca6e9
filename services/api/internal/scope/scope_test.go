package scope

import (
	"context"
	"slices"
	"testing"
)

func TestAllows(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Scope
		in   []string // device/parameter pairs allowed
		out  []string
	}{
		{"all", All(), []string{"a/x.1", "b/y"}, nil},
		{"zero", Scope{}, nil, []string{"a/x.1"}},
		{"devices", Restrict([]string{"a"}, nil), []string{"a/x.1", "a/y"}, []string{"b/x.1"}},
		{"prefixes", Restrict(nil, []string{"x."}), []string{"a/x.1", "b/x.2"}, []string{"a/y", "a/xx"}},
		{"both", Restrict([]string{"a"}, []string{"x.", "y"}), []string{"a/x.1", "a/yz"}, []string{"b/x.1", "a/z"}},
		{"none", Restrict([]string{}, nil), nil, []string{"a/x.1"}},
	} {
		for _, pair := range tc.in {
			d, p, _ := cut(pair)
			if !tc.s.Allows(d, p) {
				t.Errorf("%s: %s not allowed", tc.name, pair)
			}
		}
		for _, pair := range tc.out {
			d, p, _ := cut(pair)
			if tc.s.Allows(d, p) {
				t.Errorf("%s: %s allowed", tc.name, pair)
			}
		}
	}
}

func cut(pair string) (string, string, bool) {
	for i := range pair {
		if pair[i] == '/' {
			return pair[:i], pair[i+1:], true
		}
	}
	return pair, "", false
}

func TestArgsAndContext(t *testing.T) {
	anyDev, devs, anyParam, prefixes := Restrict([]string{"a"}, nil).Args()
	if anyDev || !slices.Equal(devs, []string{"a"}) || !anyParam || prefixes == nil {
		t.Errorf("Args: %v %v %v %v", anyDev, devs, anyParam, prefixes)
	}
	if From(context.Background()).Allows("a", "x") {
		t.Error("a context without a scope allows something")
	}
	if !From(With(context.Background(), All())).IsAll() {
		t.Error("With/From lost the scope")
	}
}
