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

func TestKey(t *testing.T) {
	same := [][2]Scope{
		{All(), Restrict(nil, nil)},
		{Restrict([]string{"a", "b"}, nil), Restrict([]string{"b", "a", "a"}, nil)},
		{Restrict(nil, []string{"x.", "y."}), Restrict(nil, []string{"y.", "x."})},
	}
	for _, p := range same {
		if p[0].Key() != p[1].Key() {
			t.Errorf("%v and %v allow the same series but have keys %q and %q", p[0], p[1], p[0].Key(), p[1].Key())
		}
	}
	distinct := []Scope{
		All(), {}, Restrict([]string{}, nil), Restrict([]string{"a"}, nil), Restrict(nil, []string{"a"}),
		Restrict([]string{"a,b"}, nil), Restrict([]string{"a", "b"}, nil), Restrict([]string{"a"}, []string{"x."}),
		Restrict([]string{`a";prefixes=*`}, nil),
	}
	seen := map[string]Scope{}
	for _, s := range distinct {
		if prev, ok := seen[s.Key()]; ok {
			t.Errorf("%v and %v share the key %q", prev, s, s.Key())
		}
		seen[s.Key()] = s
	}
}
