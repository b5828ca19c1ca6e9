package apikey_test

import (
	"strings"
	"testing"

	"github.com/sensorhub/sensorhub/db/apikey"
)

const (
	keyA     = "key-of-tenant-a-0123456789"
	keyAdmin = "key-of-the-admin-0123456789"
)

func testKeys(t *testing.T) []apikey.Key {
	t.Helper()
	keys, err := apikey.ParseKeys([]byte(`[
		{"name": "tenantA", "sha256": "` + apikey.HashKey(keyA) + `", "devices": ["device.foo"], "prefixes": ["tenantA.", "parameter."]},
		{"name": "admin", "sha256": "` + strings.ToUpper(apikey.HashKey(keyAdmin)) + `"}
	]`))
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestParseKeys(t *testing.T) {
	h := apikey.HashKey("k")
	for name, doc := range map[string]string{
		"not JSON":        `tenantA:abc`,
		"not an array":    `{"name": "a", "sha256": "` + h + `"}`,
		"unknown field":   `[{"name": "a", "sha256": "` + h + `", "device": ["d"]}]`,
		"no name":         `[{"sha256": "` + h + `"}]`,
		"short hash":      `[{"name": "a", "sha256": "abcd"}]`,
		"plaintext key":   `[{"name": "a", "sha256": "my-secret-key"}]`,
		"name twice":      `[{"name": "a", "sha256": "` + h + `"}, {"name": "a", "sha256": "` + apikey.HashKey("j") + `"}]`,
		"hash twice":      `[{"name": "a", "sha256": "` + h + `"}, {"name": "b", "sha256": "` + strings.ToUpper(h) + `"}]`,
		"empty prefix":    `[{"name": "a", "sha256": "` + h + `", "prefixes": [""]}]`,
		"empty device":    `[{"name": "a", "sha256": "` + h + `", "devices": ["d", ""]}]`,
		"trailing object": `[] []`,
	} {
		if _, err := apikey.ParseKeys([]byte(doc)); err == nil {
			t.Errorf("%s: accepted %s", name, doc)
		}
	}
	keys := testKeys(t)
	if len(keys) != 2 || keys[0].Name != "tenantA" || keys[0].Scope.IsAll() || !keys[1].Scope.IsAll() {
		t.Fatalf("keys: %+v", keys)
	}
	if sc := keys[0].Scope; !sc.Allows("device.foo", "tenantA.x") || sc.Allows("device.bar", "tenantA.x") || sc.Allows("device.foo", "tenantB.x") {
		t.Errorf("tenantA scope: %v", sc)
	}
}

func TestSetLookup(t *testing.T) {
	set := apikey.NewSet(testKeys(t))
	if k, ok := set.Lookup(keyA); !ok || k.Name != "tenantA" {
		t.Errorf("Lookup(keyA) = %+v, %v", k, ok)
	}
	if k, ok := set.Lookup(keyAdmin); !ok || k.Name != "admin" || !k.Scope.IsAll() {
		t.Errorf("Lookup(keyAdmin) = %+v, %v", k, ok)
	}
	for _, wrong := range []string{"", keyA + "x", apikey.HashKey(keyA), strings.ToUpper(keyA)} {
		if k, ok := set.Lookup(wrong); ok {
			t.Errorf("Lookup(%q) found %q", wrong, k.Name)
		}
	}
	if n := set.Len(); n != 2 {
		t.Errorf("Len = %d", n)
	}
}
