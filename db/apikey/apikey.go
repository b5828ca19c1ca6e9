// Package apikey holds API keys as sensorhub's services configure them: a
// name, the SHA-256 of the key (the configuration never holds a key itself)
// and the scope of series the key reaches. The read API and the write
// service parse the same format, so one key file serves both.
package apikey

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sensorhub/sensorhub/db/scope"
)

// KeyConfig is one API key as configured: a JSON array of these is the value
// of SENSORHUB_API_KEYS (INGEST_WRITE_KEYS for the write service) or the
// content of the file its _FILE variant names.
//
//	[{"name": "tenantA", "sha256": "<hex>", "devices": ["device.foo"], "prefixes": ["tenantA."]}]
//
// Empty (or absent) devices or prefixes leave that dimension unrestricted.
type KeyConfig struct {
	// Name identifies the key in logs and rate limits.
	Name string `json:"name"`
	// SHA256 is the lower- or upper-case hex SHA-256 of the key (see HashKey).
	SHA256   string   `json:"sha256"`
	Devices  []string `json:"devices,omitempty"`
	Prefixes []string `json:"prefixes,omitempty"`
}

// Key is a configured API key, ready to compare.
type Key struct {
	Name  string
	Scope scope.Scope
	hash  [sha256.Size]byte
}

// HashKey returns the hex SHA-256 of key, as configurations hold it.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// ParseKeys reads a JSON array of KeyConfig strictly: unknown fields,
// malformed hashes, empty or repeated names and repeated hashes are errors,
// so that a typo cannot silently widen a key's scope.
func ParseKeys(data []byte) ([]Key, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var configs []KeyConfig
	if err := dec.Decode(&configs); err != nil {
		return nil, fmt.Errorf("API keys: not a JSON array of {name, sha256, devices, prefixes}: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("API keys: trailing data after the JSON array")
	}
	keys := make([]Key, 0, len(configs))
	names, hashes := map[string]bool{}, map[string]bool{}
	for i, c := range configs {
		where := fmt.Sprintf("API key #%d (%q)", i+1, c.Name)
		switch {
		case strings.TrimSpace(c.Name) == "" || len(c.Name) > 128:
			return nil, fmt.Errorf("%s: name must be 1 to 128 characters", where)
		case names[c.Name]:
			return nil, fmt.Errorf("%s: name used twice", where)
		}
		raw, err := hex.DecodeString(c.SHA256)
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("%s: sha256 must be 64 hex digits, the SHA-256 of the key (api hashkey prints it)", where)
		}
		h := strings.ToLower(c.SHA256)
		if hashes[h] {
			return nil, fmt.Errorf("%s: the same key hash is configured twice", where)
		}
		sc, err := scope.FromLists(c.Devices, c.Prefixes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		names[c.Name], hashes[h] = true, true
		k := Key{Name: c.Name, Scope: sc}
		copy(k.hash[:], raw)
		keys = append(keys, k)
	}
	return keys, nil
}

// Set is a list of keys to look presented keys up in.
type Set struct{ keys []Key }

// NewSet returns the Set of keys.
func NewSet(keys []Key) *Set { return &Set{keys: keys} }

// Len returns how many keys s holds.
func (s *Set) Len() int { return len(s.keys) }

// Lookup finds the key whose hash is the presented key's, comparing against
// every configured hash in constant time so that the time taken says
// nothing about which hash came close.
func (s *Set) Lookup(presented string) (Key, bool) {
	sum := sha256.Sum256([]byte(presented))
	match := -1
	for i := range s.keys {
		if subtle.ConstantTimeCompare(sum[:], s.keys[i].hash[:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return Key{}, false
	}
	return s.keys[match], true
}
