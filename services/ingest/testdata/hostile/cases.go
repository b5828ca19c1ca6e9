// Package hostile describes the hostile input corpus beside it: what each
// file must give when loaded, for the tests of the batch job and of the
// write service, which push the same files over HTTP.
package hostile

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Case is one file of the corpus and what loading it must give.
type Case struct {
	File string `json:"file"`
	// Good readings in the file, stored by the batch job; the write
	// service stores them too unless the file is Fatal.
	Good int64 `json:"good"`
	// Rejected holds a fragment of each rejected reading's reason, in order.
	Rejected []string `json:"rejected"`
	// Fatal is a fragment of the error that stops the file; "" for none.
	Fatal string `json:"fatal"`
}

// Cases reads cases.json from dir.
func Cases(t testing.TB, dir string) []Case {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cs []Case
	if err := json.Unmarshal(data, &cs); err != nil {
		t.Fatalf("cases.json: %v", err)
	}
	return cs
}
