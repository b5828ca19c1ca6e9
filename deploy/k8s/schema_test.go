package k8s

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// schemaDir holds one strict JSON Schema per apiVersion/kind the manifests
// render: the Kubernetes 1.30 OpenAPI and the operators' CRD schemas,
// converted by schemas/gen (schemas/README.md).
const schemaDir = "schemas"

// schemaTargets are the kustomizations validated against the schemas, as
// render names them: the overlays and the example with every optional
// Component.
func schemaTargets() []string {
	return append(slices.Clone(overlays), "../examples/components")
}

// schemaObject is one rendered object as JSON values (numbers as
// json.Number), the way the validator takes it.
type schemaObject struct {
	id         string // kind namespace/name, for messages
	apiVersion string
	kind       string
	value      map[string]any
}

// schemaRender builds a kustomization the way render does, and returns each
// resource as it would be sent to the API server.
func schemaRender(t *testing.T, overlay string) []schemaObject {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join("overlays", overlay))
	if err != nil {
		t.Fatalf("kustomize build overlays/%s: %v", overlay, err)
	}
	var out []schemaObject
	for _, r := range rm.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		j, err := yaml.YAMLToJSONStrict(y)
		if err != nil {
			t.Fatalf("%s: %v\n%s", overlay, err, y)
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
		if err != nil {
			t.Fatal(err)
		}
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: not an object:\n%s", overlay, y)
		}
		id := r.GetKind() + " " + r.GetName()
		if ns := r.GetNamespace(); ns != "" {
			id = r.GetKind() + " " + ns + "/" + r.GetName()
		}
		av, _ := m["apiVersion"].(string)
		kind, _ := m["kind"].(string)
		out = append(out, schemaObject{id: id, apiVersion: av, kind: kind, value: m})
	}
	if len(out) == 0 {
		t.Fatalf("%s: nothing rendered", overlay)
	}
	return out
}

// schemaFileName is the file in schemaDir for apiVersion/kind, as
// schemas/gen names it: kind-group-version.json, lower case, without the
// group for the core group (deployment-apps-v1.json, service-v1.json).
func schemaFileName(apiVersion, kind string) string {
	name := strings.ToLower(kind)
	group, version, ok := strings.Cut(apiVersion, "/")
	if !ok {
		return name + "-" + apiVersion + ".json"
	}
	return name + "-" + group + "-" + version + ".json"
}

// schemaSet compiles each schema file once.
type schemaSet struct {
	c    *jsonschema.Compiler
	byID map[string]*jsonschema.Schema
}

func newSchemaSet() *schemaSet {
	return &schemaSet{c: jsonschema.NewCompiler(), byID: map[string]*jsonschema.Schema{}}
}

// get returns the schema of apiVersion/kind, or an error that says which
// file is missing.
func (s *schemaSet) get(apiVersion, kind string) (*jsonschema.Schema, string, error) {
	file := schemaFileName(apiVersion, kind)
	if sch, ok := s.byID[file]; ok {
		return sch, file, nil
	}
	path := filepath.Join(schemaDir, file)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, file, fmt.Errorf("no schema %s for %s %s: add the kind to schemas/gen/main.go and regenerate (schemas/README.md)", path, apiVersion, kind)
	}
	if err != nil {
		return nil, file, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, file, fmt.Errorf("%s: %w", path, err)
	}
	url := "file:///deploy/k8s/schemas/" + file
	if err := s.c.AddResource(url, doc); err != nil {
		return nil, file, fmt.Errorf("%s: %w", path, err)
	}
	sch, err := s.c.Compile(url)
	if err != nil {
		return nil, file, fmt.Errorf("%s: %w", path, err)
	}
	s.byID[file] = sch
	return sch, file, nil
}

// schemaViolation is one failed leaf of a validation: where in the object,
// and what.
type schemaViolation struct{ pointer, message string }

func (v schemaViolation) String() string {
	p := v.pointer
	if p == "" {
		p = "/"
	}
	return p + ": " + v.message
}

// schemaViolations validates v; nil means it is valid.
func schemaViolations(sch *jsonschema.Schema, v any) ([]schemaViolation, error) {
	err := sch.Validate(v)
	if err == nil {
		return nil, nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return nil, err
	}
	var out []schemaViolation
	var walk func(u jsonschema.OutputUnit)
	walk = func(u jsonschema.OutputUnit) {
		if len(u.Errors) == 0 {
			msg := "invalid"
			if u.Error != nil {
				msg = u.Error.String()
			}
			out = append(out, schemaViolation{u.InstanceLocation, msg})
			return
		}
		for _, c := range u.Errors {
			walk(c)
		}
	}
	walk(*ve.DetailedOutput())
	return out, nil
}

// TestRenderedObjectsMatchSchemas validates every object of every overlay
// (and of examples/components) against the JSON Schema of its apiVersion and
// kind: the Kubernetes 1.30 API for the built-in kinds, the operators' CRDs
// for theirs, unknown fields rejected. A kind without a schema fails, so a
// new kind cannot go unvalidated.
func TestRenderedObjectsMatchSchemas(t *testing.T) {
	schemas := newSchemaSet()
	used := map[string]bool{}
	for _, overlay := range schemaTargets() {
		n := 0
		for _, o := range schemaRender(t, overlay) {
			sch, file, err := schemas.get(o.apiVersion, o.kind)
			if err != nil {
				t.Errorf("%s: %s: %v", overlay, o.id, err)
				continue
			}
			used[file] = true
			vs, err := schemaViolations(sch, o.value)
			if err != nil {
				t.Errorf("%s: %s: %v", overlay, o.id, err)
				continue
			}
			for _, v := range vs {
				t.Errorf("%s: %s (%s): %s", overlay, o.id, file, v)
			}
			n++
		}
		t.Logf("%s: %d objects validated", overlay, n)
	}

	// Vendor only what the manifests need.
	files, err := filepath.Glob(filepath.Join(schemaDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !used[filepath.Base(f)] {
			t.Errorf("%s validates no rendered object: drop its kind from schemas/gen/main.go and the file", f)
		}
	}
}

// TestSchemasRejectInvalidObjects proves the validation bites: a rendered
// Deployment with an unknown container field or a string for replicas, and a
// ServiceMonitor with an unknown spec or metadata field, fail; int-or-string
// fields take either.
func TestSchemasRejectInvalidObjects(t *testing.T) {
	objs := schemaRender(t, "prod")
	find := func(kind string) schemaObject {
		t.Helper()
		for _, o := range objs {
			if o.kind == kind {
				return o
			}
		}
		t.Fatalf("prod renders no %s", kind)
		return schemaObject{}
	}
	// clone returns a deep copy of o's value, to change.
	clone := func(o schemaObject) map[string]any {
		t.Helper()
		b, err := json.Marshal(o.value)
		if err != nil {
			t.Fatal(err)
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		return v.(map[string]any)
	}
	at := func(m map[string]any, path ...any) map[string]any {
		t.Helper()
		var v any = m
		for _, p := range path {
			switch p := p.(type) {
			case string:
				v = v.(map[string]any)[p]
			case int:
				v = v.([]any)[p]
			}
		}
		obj, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("no object at %v", path)
		}
		return obj
	}

	deployment, monitor := find("Deployment"), find("ServiceMonitor")
	cases := []struct {
		name   string
		base   schemaObject
		change func(m map[string]any)
		// want is the JSON pointer and a part of the message of the
		// violation; empty for a change that must stay valid.
		pointer, message string
	}{
		{
			name: "unknown container field", base: deployment,
			change: func(m map[string]any) {
				at(m, "spec", "template", "spec", "containers", 0)["imagePullPolicyy"] = "Always"
			},
			pointer: "/spec/template/spec/containers/0", message: "imagePullPolicyy",
		},
		{
			name: "replicas a string", base: deployment,
			change:  func(m map[string]any) { at(m, "spec")["replicas"] = "three" },
			pointer: "/spec/replicas", message: "want integer",
		},
		{
			name: "wrong apiVersion", base: deployment,
			change:  func(m map[string]any) { m["apiVersion"] = "apps/v1beta2" },
			pointer: "/apiVersion", message: "apps/v1",
		},
		{
			name: "maxSurge a percentage", base: deployment,
			change: func(m map[string]any) {
				at(m, "spec")["strategy"] = map[string]any{"type": "RollingUpdate", "rollingUpdate": map[string]any{"maxSurge": "25%", "maxUnavailable": json.Number("0")}}
			},
		},
		{
			name: "maxSurge a boolean", base: deployment,
			change: func(m map[string]any) {
				at(m, "spec")["strategy"] = map[string]any{"rollingUpdate": map[string]any{"maxSurge": true}}
			},
			pointer: "/spec/strategy/rollingUpdate/maxSurge", message: "want integer or string",
		},
		{
			name: "unknown ServiceMonitor spec field", base: monitor,
			change:  func(m map[string]any) { at(m, "spec")["scrapeIntervall"] = "30s" },
			pointer: "/spec", message: "scrapeIntervall",
		},
		{
			name: "unknown ServiceMonitor metadata field", base: monitor,
			change:  func(m map[string]any) { at(m, "metadata")["label"] = map[string]any{"a": "b"} },
			pointer: "/metadata", message: "label",
		},
	}
	schemas := newSchemaSet()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sch, _, err := schemas.get(tc.base.apiVersion, tc.base.kind)
			if err != nil {
				t.Fatal(err)
			}
			if vs, err := schemaViolations(sch, tc.base.value); err != nil || len(vs) > 0 {
				t.Fatalf("the rendered %s is already invalid: %v %v", tc.base.id, vs, err)
			}
			m := clone(tc.base)
			tc.change(m)
			vs, err := schemaViolations(sch, m)
			if err != nil {
				t.Fatal(err)
			}
			if tc.pointer == "" {
				if len(vs) > 0 {
					t.Errorf("%s: rejected: %v", tc.base.id, vs)
				}
				return
			}
			for _, v := range vs {
				if v.pointer == tc.pointer && strings.Contains(v.message, tc.message) {
					return
				}
			}
			t.Errorf("%s: want a violation at %s mentioning %q, got %v", tc.base.id, tc.pointer, tc.message, vs)
		})
	}
}
