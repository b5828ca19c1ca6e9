//go:build ignore

// Command gen writes the JSON Schemas in deploy/k8s/schemas: one
// self-contained, strict JSON Schema (draft 2020-12) per apiVersion/kind the
// manifests render, from the Kubernetes OpenAPI v3 documents of the target
// version and the operators' CustomResourceDefinitions. deploy/k8s's
// TestRenderedObjectsMatchSchemas validates every rendered object against
// them. deploy/k8s/schemas/README.md says where the sources come from; from
// deploy/:
//
//	go run ./k8s/schemas/gen/main.go -version LABEL -k8s DIR -crd FILE[#LABEL] ... -out k8s/schemas
//
// DIR holds the OpenAPI v3 documents, named either as in kubernetes'
// api/openapi-spec/v3 (api__v1_openapi.json, apis__apps__v1_openapi.json) or
// as in kubectl-validate's builtins (api/v1.json, apis/apps/v1.json).
//
// The conversion is the one kubeconform's "strict" schemas make, plus what
// the API server does that the OpenAPI documents do not say:
//   - references are bundled as $defs (only those the kind reaches), so each
//     file stands alone;
//   - an object with fixed properties gets additionalProperties: false,
//     unless it has x-kubernetes-preserve-unknown-fields (then anything
//     beyond its properties is accepted);
//   - x-kubernetes-int-or-string (and the IntOrString definition) accepts an
//     integer or a string; Quantity a string or a number;
//   - OpenAPI's nullable, and the definitions the API server decodes from
//     null (Time, MicroTime, RawExtension, Quantity, ...), accept null;
//   - a custom resource's metadata is the ObjectMeta of the Kubernetes
//     documents (the CRDs only say "type: object"), and an
//     x-kubernetes-embedded-resource object accepts apiVersion, kind and
//     metadata;
//   - x-kubernetes-list-type: set in a CRD means unique items;
//   - apiVersion and kind are required and must be those of the file.
//
// Left out, because they annotate or cannot be checked offline: description,
// default, example, format (Kubernetes' formats are not JSON Schema's, e.g. a
// duration), CEL rules (x-kubernetes-validations) and the other
// x-kubernetes-* markers. Any other keyword is an error, so a new one is not
// silently dropped.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// kind is one apiVersion/kind to write a schema for.
type kind struct{ group, version, kind string }

func (k kind) apiVersion() string {
	if k.group == "" {
		return k.version
	}
	return k.group + "/" + k.version
}

// fileName is the schema's file name; deploy/k8s/schema_test.go derives the
// same from an object's apiVersion and kind.
func (k kind) fileName() string {
	name := strings.ToLower(k.kind)
	if k.group != "" {
		name += "-" + k.group
	}
	return name + "-" + k.version + ".json"
}

// builtins and crds are the kinds the manifests render (keep them in step
// with newObject in deploy/k8s/k8s_test.go).
var builtins = []kind{
	{"", "v1", "Namespace"},
	{"", "v1", "ConfigMap"},
	{"", "v1", "Secret"},
	{"", "v1", "Service"},
	{"", "v1", "ServiceAccount"},
	{"", "v1", "PersistentVolumeClaim"},
	{"apps", "v1", "Deployment"},
	{"apps", "v1", "StatefulSet"},
	{"batch", "v1", "Job"},
	{"batch", "v1", "CronJob"},
	{"autoscaling", "v2", "HorizontalPodAutoscaler"},
	{"policy", "v1", "PodDisruptionBudget"},
	{"networking.k8s.io", "v1", "Ingress"},
	{"networking.k8s.io", "v1", "NetworkPolicy"},
}

var crds = []kind{
	{"monitoring.coreos.com", "v1", "ServiceMonitor"},
	{"monitoring.coreos.com", "v1", "PrometheusRule"},
	{"postgresql.cnpg.io", "v1", "Cluster"},
	{"gateway.networking.k8s.io", "v1", "HTTPRoute"},
}

const objectMeta = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

// nullable are the definitions whose Go types decode null (the list of
// kubectl-validate's AnnotateNullable patch).
var nullable = map[string]bool{
	"io.k8s.apimachinery.pkg.runtime.RawExtension":                                    true,
	"io.k8s.apimachinery.pkg.apis.meta.v1.Time":                                       true,
	"io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime":                                  true,
	"io.k8s.apimachinery.pkg.apis.meta.v1.Duration":                                   true,
	"io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON":                   true,
	"io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool":  true,
	"io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray": true,
	"io.k8s.apimachinery.pkg.api.resource.Quantity":                                   true,
}

// dropped are the keywords that annotate, or that cannot be checked offline.
var dropped = map[string]bool{
	"description": true, "default": true, "example": true, "format": true,
	"title": true, "externalDocs": true, "deprecated": true, "readOnly": true,
	"discriminator": true, "x-kubernetes-validations": true,
	"x-kubernetes-list-map-keys": true, "x-kubernetes-map-type": true,
	"x-kubernetes-patch-strategy": true, "x-kubernetes-patch-merge-key": true,
	"x-kubernetes-unions": true, "x-kubernetes-group-version-kind": true,
	"x-kubernetes-selectable-fields": true,
}

// kept are the validation keywords copied as they are (their subschemas
// converted) or interpreted by convert.
var kept = map[string]bool{
	"type": true, "properties": true, "required": true, "items": true,
	"additionalProperties": true, "enum": true, "pattern": true,
	"minLength": true, "maxLength": true, "minimum": true, "maximum": true,
	"exclusiveMinimum": true, "exclusiveMaximum": true, "multipleOf": true,
	"minItems": true, "maxItems": true, "uniqueItems": true,
	"minProperties": true, "maxProperties": true, "allOf": true,
	"anyOf": true, "oneOf": true, "not": true, "$ref": true, "nullable": true,
	"x-kubernetes-int-or-string": true, "x-kubernetes-list-type": true,
	"x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true,
}

type obj = map[string]any

func main() {
	log.SetFlags(0)
	k8sDir := flag.String("k8s", "", "directory of the Kubernetes OpenAPI v3 documents")
	var crdFiles []string
	flag.Func("crd", "a YAML file of CustomResourceDefinitions, optionally #a label of its source for the titles (repeatable)", func(s string) error {
		crdFiles = append(crdFiles, s)
		return nil
	})
	out := flag.String("out", ".", "directory to write the schemas to")
	version := flag.String("version", "", "the Kubernetes version of -k8s and their source, for the schemas' titles")
	flag.Parse()
	if *k8sDir == "" || *version == "" {
		log.Fatal("usage: gen -k8s DIR -version 'Kubernetes 1.30 ...' [-crd FILE[#LABEL] ...] -out DIR")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}

	written := 0
	docs := map[string]obj{} // group/version -> components.schemas
	for _, k := range builtins {
		defs, ok := docs[k.apiVersion()]
		if !ok {
			var err error
			if defs, err = loadOpenAPI(*k8sDir, k); err != nil {
				log.Fatal(err)
			}
			docs[k.apiVersion()] = defs
		}
		name, err := definitionOf(defs, k)
		if err != nil {
			log.Fatal(err)
		}
		c := &converter{defs: defs, out: obj{}}
		c.addDef(name)
		if err := c.err(); err != nil {
			log.Fatalf("%s: %v", k.fileName(), err)
		}
		sch := rootSchema(k, obj{"$ref": "#/$defs/" + short(name)}, c.out,
			fmt.Sprintf("%s %s, %s", k.apiVersion(), k.kind, *version))
		if err := write(*out, k, sch); err != nil {
			log.Fatal(err)
		}
		written++
	}

	// A custom resource's metadata is an ObjectMeta; take it from the core
	// group's document.
	coreDefs, err := loadOpenAPI(*k8sDir, kind{"", "v1", ""})
	if err != nil {
		log.Fatal(err)
	}
	found := map[kind]bool{}
	for _, f := range crdFiles {
		f, label, _ := strings.Cut(f, "#")
		crdDocs, err := loadCRDs(f)
		if err != nil {
			log.Fatal(err)
		}
		for _, crd := range crdDocs {
			for _, k := range crds {
				s, src, ok, err := crdSchema(crd, k)
				if err != nil {
					log.Fatalf("%s: %v", f, err)
				}
				if !ok {
					continue
				}
				if found[k] {
					log.Fatalf("%s: a second CRD for %s %s", f, k.apiVersion(), k.kind)
				}
				found[k] = true
				c := &converter{defs: coreDefs, out: obj{}, crd: true}
				root := c.convert(s, "")
				props, _ := root["properties"].(obj)
				if props == nil {
					props = obj{}
					root["properties"] = props
				}
				props["metadata"] = obj{"$ref": "#/$defs/" + short(objectMeta)}
				c.addDef(objectMeta)
				if err := c.err(); err != nil {
					log.Fatalf("%s: %v", k.fileName(), err)
				}
				if label != "" {
					src += ", " + label
				}
				if err := write(*out, k, rootSchema(k, root, c.out,
					fmt.Sprintf("%s %s, %s", k.apiVersion(), k.kind, src))); err != nil {
					log.Fatal(err)
				}
				written++
			}
		}
	}
	for _, k := range crds {
		if !found[k] {
			log.Fatalf("no -crd file defines %s %s", k.apiVersion(), k.kind)
		}
	}
	log.Printf("wrote %d schemas to %s", written, *out)
}

// loadOpenAPI reads the OpenAPI v3 document of k's group/version and returns
// its components.schemas.
func loadOpenAPI(dir string, k kind) (obj, error) {
	var candidates []string
	if k.group == "" {
		candidates = []string{"api__" + k.version + "_openapi.json", filepath.Join("api", k.version+".json")}
	} else {
		candidates = []string{"apis__" + k.group + "__" + k.version + "_openapi.json", filepath.Join("apis", k.group, k.version+".json")}
	}
	for _, c := range candidates {
		b, err := os.ReadFile(filepath.Join(dir, c))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var doc struct {
			Components struct {
				Schemas obj `json:"schemas"`
			} `json:"components"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", c, err)
		}
		if len(doc.Components.Schemas) == 0 {
			return nil, fmt.Errorf("%s: no components.schemas", c)
		}
		return doc.Components.Schemas, nil
	}
	return nil, fmt.Errorf("%s: none of %v", dir, candidates)
}

// definitionOf finds the definition of k by its x-kubernetes-group-version-kind.
func definitionOf(defs obj, k kind) (string, error) {
	var names []string
	for name, d := range defs {
		gvks, _ := d.(obj)["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			g := g.(obj)
			if g["group"] == k.group && g["version"] == k.version && g["kind"] == k.kind {
				names = append(names, name)
			}
		}
	}
	if len(names) != 1 {
		return "", fmt.Errorf("%s %s: %d definitions (%v)", k.apiVersion(), k.kind, len(names), names)
	}
	return names[0], nil
}

func loadCRDs(file string) ([]obj, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var out []obj
	for _, doc := range bytes.Split(b, []byte("\n---")) {
		if len(bytes.TrimSpace(bytes.TrimPrefix(doc, []byte("---")))) == 0 {
			continue
		}
		var o obj
		if err := yaml.Unmarshal(doc, &o); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if o["kind"] == "CustomResourceDefinition" {
			out = append(out, o)
		}
	}
	return out, nil
}

// crdSchema returns the openAPIV3Schema of version k.version if crd defines
// k, and a description of its source (the CRD's name and version
// annotations).
func crdSchema(crd obj, k kind) (obj, string, bool, error) {
	spec, _ := crd["spec"].(obj)
	names, _ := spec["names"].(obj)
	if spec["group"] != k.group || names["kind"] != k.kind {
		return nil, "", false, nil
	}
	meta, _ := crd["metadata"].(obj)
	src := fmt.Sprint("CRD ", meta["name"])
	if ann, _ := meta["annotations"].(obj); ann != nil {
		var keys []string
		for a := range ann {
			if !strings.HasPrefix(a, "controller-gen.") && (strings.HasSuffix(a, "/version") || strings.HasSuffix(a, "/bundle-version") || strings.HasSuffix(a, "/channel")) {
				keys = append(keys, a)
			}
		}
		sort.Strings(keys)
		for _, a := range keys {
			src += fmt.Sprintf(" %s=%v", a, ann[a])
		}
	}
	versions, _ := spec["versions"].([]any)
	for _, v := range versions {
		v := v.(obj)
		if v["name"] != k.version {
			continue
		}
		if v["served"] != true {
			return nil, "", false, fmt.Errorf("%s %s is not served", k.apiVersion(), k.kind)
		}
		s, _ := v["schema"].(obj)["openAPIV3Schema"].(obj)
		if s == nil {
			return nil, "", false, fmt.Errorf("%s %s has no openAPIV3Schema", k.apiVersion(), k.kind)
		}
		return s, src, true, nil
	}
	return nil, "", false, fmt.Errorf("CRD %v has no version %s", meta["name"], k.version)
}

// short shortens a definition's name for $defs: io.k8s.api.apps.v1.Deployment
// is apps.v1.Deployment, io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta is
// meta.v1.ObjectMeta.
func short(name string) string {
	for _, p := range []string{"io.k8s.api.", "io.k8s.apimachinery.pkg.apis.", "io.k8s.apimachinery.pkg."} {
		if s, ok := strings.CutPrefix(name, p); ok {
			return s
		}
	}
	return name
}

type converter struct {
	defs obj  // the OpenAPI document's components.schemas
	out  obj  // the $defs written so far
	crd  bool // converting a CRD's own schema (x-kubernetes-list-type: set is enforced)
	errs []error
}

func (c *converter) err() error { return errors.Join(c.errs...) }

func (c *converter) fail(path, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

// addDef converts the definition name and, through convert, those it refers
// to, into c.out.
func (c *converter) addDef(name string) {
	key := short(name)
	if _, ok := c.out[key]; ok {
		return
	}
	d, ok := c.defs[name].(obj)
	if !ok {
		c.fail(name, "no such definition")
		return
	}
	c.out[key] = obj{} // placeholder, for recursive references
	// A Kubernetes definition means the same in a CRD's schema as in the
	// built-in kinds'.
	crd := c.crd
	c.crd = false
	defer func() { c.crd = crd }()
	var s obj
	switch {
	case name == "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
		s = obj{"type": []any{"integer", "string"}}
	case name == "io.k8s.apimachinery.pkg.api.resource.Quantity":
		s = obj{"type": []any{"string", "number"}}
	default:
		s = c.convert(d, name)
	}
	if nullable[name] {
		s = allowNull(s)
	}
	c.out[key] = s
}

// convert turns one OpenAPI schema into a JSON Schema.
func (c *converter) convert(in obj, path string) obj {
	out := obj{}
	for k, v := range in {
		if dropped[k] {
			continue
		}
		if !kept[k] {
			c.fail(path, "unknown keyword %q", k)
			continue
		}
		switch k {
		case "$ref":
			ref, _ := v.(string)
			name, ok := strings.CutPrefix(ref, "#/components/schemas/")
			if !ok {
				c.fail(path, "reference %q", ref)
				continue
			}
			c.addDef(name)
			out["$ref"] = "#/$defs/" + short(name)
		case "properties":
			props := obj{}
			for p, ps := range v.(obj) {
				props[p] = c.convert(ps.(obj), path+"/"+p)
			}
			out[k] = props
		case "items", "not":
			out[k] = c.convert(v.(obj), path+"/"+k)
		case "additionalProperties":
			if s, ok := v.(obj); ok {
				out[k] = c.convert(s, path+"/*")
			} else {
				out[k] = v
			}
		case "allOf", "anyOf", "oneOf":
			var list []any
			for i, s := range v.([]any) {
				list = append(list, c.convert(s.(obj), fmt.Sprintf("%s/%s/%d", path, k, i)))
			}
			out[k] = list
		case "exclusiveMinimum", "exclusiveMaximum":
			// OpenAPI 3.0's booleans are JSON Schema 2020-12's numbers.
			bound := map[string]string{"exclusiveMinimum": "minimum", "exclusiveMaximum": "maximum"}[k]
			if b, ok := v.(bool); ok {
				if b {
					out[k] = in[bound]
				}
			} else {
				out[k] = v
			}
		case "type", "required", "enum", "pattern", "minLength", "maxLength",
			"minimum", "maximum", "multipleOf", "minItems", "maxItems",
			"uniqueItems", "minProperties", "maxProperties":
			out[k] = v
		}
	}
	if b, _ := in["exclusiveMinimum"].(bool); b {
		delete(out, "minimum")
	}
	if b, _ := in["exclusiveMaximum"].(bool); b {
		delete(out, "maximum")
	}

	// A single allOf of a reference (how the Kubernetes documents attach a
	// description to a $ref) is the reference.
	if all, ok := out["allOf"].([]any); ok && len(all) == 1 {
		if _, isRef := all[0].(obj)["$ref"]; isRef && out["$ref"] == nil {
			out["$ref"] = all[0].(obj)["$ref"]
			delete(out, "allOf")
		}
	}

	if in["x-kubernetes-int-or-string"] == true {
		out["type"] = []any{"integer", "string"}
		// The CRDs' anyOf [{type: integer}, {type: string}] says the same.
		if any, ok := out["anyOf"].([]any); ok && len(any) == 2 && isType(any[0], "integer") && isType(any[1], "string") {
			delete(out, "anyOf")
		}
	}
	preserve := in["x-kubernetes-preserve-unknown-fields"] == true
	if in["x-kubernetes-embedded-resource"] == true {
		props, _ := out["properties"].(obj)
		if props == nil && !preserve {
			props = obj{}
			out["properties"] = props
		}
		if props != nil {
			for _, p := range []string{"apiVersion", "kind"} {
				if _, ok := props[p]; !ok {
					props[p] = obj{"type": "string"}
				}
			}
			if _, ok := props["metadata"]; !ok {
				c.addDef(objectMeta)
				props["metadata"] = obj{"$ref": "#/$defs/" + short(objectMeta)}
			}
		}
	}
	if out["type"] == "object" && out["properties"] != nil && out["additionalProperties"] == nil && !preserve {
		out["additionalProperties"] = false
	}
	if c.crd && in["x-kubernetes-list-type"] == "set" {
		out["uniqueItems"] = true
	}
	if in["nullable"] == true {
		out = allowNull(out)
	}
	return out
}

func isType(s any, t string) bool {
	o, ok := s.(obj)
	return ok && len(o) == 1 && o["type"] == t
}

// allowNull makes s accept null too.
func allowNull(s obj) obj {
	switch t := s["type"].(type) {
	case string:
		s["type"] = []any{t, "null"}
	case []any:
		if !slices.Contains(t, any("null")) {
			s["type"] = append(t, "null")
		}
	default:
		return obj{"anyOf": []any{s, obj{"type": "null"}}}
	}
	if e, ok := s["enum"].([]any); ok {
		s["enum"] = append(e, nil)
	}
	return s
}

// rootSchema wraps the schema of kind k: apiVersion and kind are required
// and must be k's.
func rootSchema(k kind, s obj, defs obj, title string) obj {
	root := obj{
		"$schema":  "https://json-schema.org/draft/2020-12/schema",
		"title":    title,
		"required": []any{"apiVersion", "kind"},
	}
	consts := obj{"apiVersion": obj{"const": k.apiVersion()}, "kind": obj{"const": k.kind}}
	if ref, ok := s["$ref"]; ok && len(s) == 1 {
		root["$ref"] = ref
		root["properties"] = consts
	} else {
		// The CRD's own schema is the root; its apiVersion and kind
		// properties get the constants beside their type.
		for key, v := range s {
			root[key] = v
		}
		props, _ := root["properties"].(obj)
		for p, c := range consts {
			if ps, ok := props[p].(obj); ok {
				ps["const"] = c.(obj)["const"]
			} else {
				props[p] = c
			}
		}
		if req, ok := s["required"].([]any); ok {
			seen := map[any]bool{}
			var all []any
			for _, r := range append([]any{"apiVersion", "kind"}, req...) {
				if !seen[r] {
					seen[r] = true
					all = append(all, r)
				}
			}
			root["required"] = all
		}
	}
	if len(defs) > 0 {
		root["$defs"] = defs
	}
	return root
}

func write(dir string, k kind, s obj) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil { // sorted keys, minified, a final newline
		return err
	}
	return os.WriteFile(filepath.Join(dir, k.fileName()), buf.Bytes(), 0o644)
}
