// Package scope says which series a request may see. Authentication puts
// the caller's Scope into the request context (All when authentication is
// off); stores filter by it in SQL, so an out-of-scope series behaves
// exactly like one that does not exist.
package scope

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Scope is a set of allowed device ids and parameter prefixes, or All. A
// series is in scope when its device is allowed and its parameter starts with
// an allowed prefix. The zero Scope allows nothing.
type Scope struct {
	anyDevice bool
	anyParam  bool
	devices   []string
	prefixes  []string
}

// All allows every series.
func All() Scope { return Scope{anyDevice: true, anyParam: true} }

// Restrict allows the given devices and parameter prefixes; a nil slice leaves
// that dimension unrestricted, an empty non-nil slice allows nothing.
func Restrict(devices, prefixes []string) Scope {
	return Scope{
		anyDevice: devices == nil,
		anyParam:  prefixes == nil,
		devices:   slices.Clone(devices),
		prefixes:  slices.Clone(prefixes),
	}
}

// FromLists builds a Scope from configured or claimed lists: an empty list
// leaves that dimension unrestricted; empty strings are refused, because an
// empty prefix would match every parameter.
func FromLists(devices, prefixes []string) (Scope, error) {
	for _, list := range []struct {
		name  string
		items []string
	}{{"devices", devices}, {"prefixes", prefixes}} {
		for _, it := range list.items {
			if it == "" {
				return Scope{}, fmt.Errorf("%s holds an empty string (leave the list empty to allow any)", list.name)
			}
		}
	}
	var d, p []string
	if len(devices) > 0 {
		d = devices
	}
	if len(prefixes) > 0 {
		p = prefixes
	}
	return Restrict(d, p), nil
}

// IsAll reports whether s allows every series.
func (s Scope) IsAll() bool { return s.anyDevice && s.anyParam }

// Allows reports whether s admits the series (deviceID, parameter); stores do
// the same test in SQL.
func (s Scope) Allows(deviceID, parameter string) bool {
	if !s.anyDevice && !slices.Contains(s.devices, deviceID) {
		return false
	}
	if s.anyParam {
		return true
	}
	for _, p := range s.prefixes {
		if strings.HasPrefix(parameter, p) {
			return true
		}
	}
	return false
}

// Args returns the four bind parameters of a store's scope filter, in order:
// any device, allowed devices, any parameter, allowed prefixes. Empty slices
// rather than nil so that they bind as empty arrays, not NULL.
func (s Scope) Args() (anyDevice bool, devices []string, anyParam bool, prefixes []string) {
	devices, prefixes = s.devices, s.prefixes
	if devices == nil {
		devices = []string{}
	}
	if prefixes == nil {
		prefixes = []string{}
	}
	return s.anyDevice, devices, s.anyParam, prefixes
}

// Key identifies what s allows, for cache validators: scopes that allow the
// same series have the same key, whatever the order or repetition of their
// devices and prefixes.
func (s Scope) Key() string {
	if s.IsAll() {
		return "all"
	}
	part := func(unrestricted bool, items []string) string {
		if unrestricted {
			return "*"
		}
		sorted := slices.Clone(items)
		slices.Sort(sorted)
		sorted = slices.Compact(sorted)
		return strconv.Itoa(len(sorted)) + ":" + strings.Join(quoteAll(sorted), ",")
	}
	return "devices=" + part(s.anyDevice, s.devices) + ";prefixes=" + part(s.anyParam, s.prefixes)
}

func quoteAll(items []string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = strconv.Quote(it)
	}
	return out
}

// String describes s for logs.
func (s Scope) String() string {
	if s.IsAll() {
		return "all"
	}
	d, p := "any device", "any parameter"
	if !s.anyDevice {
		d = "devices [" + strings.Join(s.devices, " ") + "]"
	}
	if !s.anyParam {
		p = "prefixes [" + strings.Join(s.prefixes, " ") + "]"
	}
	return d + ", " + p
}

type ctxKey struct{}

// With returns ctx carrying s.
func With(ctx context.Context, s Scope) context.Context { return context.WithValue(ctx, ctxKey{}, s) }

// From returns the Scope in ctx; a context without one allows nothing, so a
// forgotten middleware fails closed.
func From(ctx context.Context) Scope {
	s, _ := ctx.Value(ctxKey{}).(Scope)
	return s
}
