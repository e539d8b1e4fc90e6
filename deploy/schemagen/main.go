// Command schemagen writes the JSON schemas that kubeconform validates deploy/kubernetes against,
// offline, from the Kubernetes API's own OpenAPI description (api/openapi-spec/swagger.json of the
// k8s.io/kubernetes module of the chosen release, fetched by `go mod download`).
//
//	go run ./deploy/schemagen -kubernetes v1.34.3 -manifests deploy/kubernetes -out deploy/kubernetes/schemas
//
// It writes one schema for each apiVersion and kind the manifests use, named as kubeconform's
// -schema-location template {{ .ResourceKind }}{{ .KindSuffix }}.json expects
// (deployment-apps-v1.json, configmap-v1.json), built the way the standalone-strict schemas
// kubeconform downloads by default are built from the same file (openapi2jsonschema with
// --kubernetes --expanded --stand-alone --strict): every $ref inlined; IntOrString is a string or
// an integer, Quantity a string or a number; apiVersion and kind are enums of the kind's own; every
// object with properties allows no others; and a property that its object does not require may
// also be null. `make k8s-schemas` runs it.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v2"
)

func main() {
	release := flag.String("kubernetes", "", "the Kubernetes release whose OpenAPI to use (a version of the Go module k8s.io/kubernetes, such as v1.34.3)")
	swagger := flag.String("swagger", "", "an OpenAPI v2 file to use instead of the release's")
	manifests := flag.String("manifests", "deploy/kubernetes", "the folder of manifests whose kinds need schemas")
	out := flag.String("out", "deploy/kubernetes/schemas", "where to write the schemas")
	flag.Parse()
	if err := run(*release, *swagger, *manifests, *out); err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
}

func run(release, swagger, manifests, out string) error {
	if swagger == "" {
		if release == "" {
			return errors.New("give -kubernetes VERSION or -swagger FILE")
		}
		dir, err := moduleDir("k8s.io/kubernetes@" + release)
		if err != nil {
			return err
		}
		swagger = filepath.Join(dir, "api", "openapi-spec", "swagger.json")
	}
	raw, err := os.ReadFile(swagger)
	if err != nil {
		return err
	}
	var spec struct {
		Definitions map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		return fmt.Errorf("%s: %w", swagger, err)
	}
	kinds, err := manifestKinds(manifests)
	if err != nil {
		return err
	}
	defs := prepare(spec.Definitions)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, k := range kinds {
		name, schema, err := kindSchema(defs, k)
		if err != nil {
			return err
		}
		b, err := json.MarshalIndent(schema, "", "  ")
		if err != nil {
			return err
		}
		path := filepath.Join(out, name+".json")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", path)
	}
	return nil
}

// moduleDir downloads a module through the Go module proxy (or finds it in the module cache) and
// returns its folder.
func moduleDir(module string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", module)
	cmd.Dir = os.TempDir() // outside any module, so the project's go.mod is left alone
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w: %s", module, err, stderr.String())
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(b, &info); err != nil {
		return "", err
	}
	if info.Error != "" {
		return "", fmt.Errorf("go mod download %s: %s", module, info.Error)
	}
	return info.Dir, nil
}

// gvk is one apiVersion and kind.
type gvk struct{ group, version, kind string }

// manifestKinds reads every YAML document of the folder's .yaml files and returns the kinds
// they use (kustomize's own file aside), sorted.
func manifestKinds(dir string) ([]gvk, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	seen := map[gvk]bool{}
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		dec := yaml.NewDecoder(f)
		for {
			var doc struct {
				APIVersion string `yaml:"apiVersion"`
				Kind       string `yaml:"kind"`
			}
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			if doc.Kind == "" || doc.Kind == "Kustomization" {
				continue
			}
			group, version, ok := strings.Cut(doc.APIVersion, "/")
			if !ok {
				group, version = "", doc.APIVersion
			}
			seen[gvk{group, version, doc.Kind}] = true
		}
		f.Close()
	}
	if len(seen) == 0 {
		return nil, fmt.Errorf("no manifests in %s", dir)
	}
	out := make([]gvk, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]) < fmt.Sprint(out[j]) })
	return out, nil
}

// prepare applies the Kubernetes rules to the shared definitions: IntOrString and Quantity take
// the values kubectl takes, and apiVersion and kind of each top-level type are enums.
func prepare(defs map[string]any) map[string]any {
	defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = map[string]any{
		"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}},
	}
	// The API takes a Quantity as a string; manifests commonly give a number (cpu: 1), which
	// kubectl and the API server accept.
	defs["io.k8s.apimachinery.pkg.api.resource.Quantity"] = map[string]any{
		"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}},
	}
	for _, d := range defs {
		def, _ := d.(map[string]any)
		props, _ := def["properties"].(map[string]any)
		gvks, _ := def["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			g := g.(map[string]any)
			apiVersion := g["version"].(string)
			if group := g["group"].(string); group != "" {
				apiVersion = group + "/" + apiVersion
			}
			if p, ok := props["apiVersion"].(map[string]any); ok {
				appendEnum(p, apiVersion)
			}
			if p, ok := props["kind"].(map[string]any); ok {
				appendEnum(p, g["kind"].(string))
			}
		}
	}
	return defs
}

func appendEnum(prop map[string]any, value string) {
	enum, _ := prop["enum"].([]any)
	if !slices.Contains(enum, any(value)) {
		prop["enum"] = append(enum, value)
	}
}

// kindSchema finds the definition of a kind and returns its file name and standalone, strict
// schema.
func kindSchema(defs map[string]any, k gvk) (string, map[string]any, error) {
	var found string
	for name, d := range defs {
		gvks, _ := d.(map[string]any)["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			g := g.(map[string]any)
			if g["group"] == k.group && g["version"] == k.version && g["kind"] == k.kind {
				found = name
			}
		}
	}
	if found == "" {
		return "", nil, fmt.Errorf("the OpenAPI has no %s/%s %s", k.group, k.version, k.kind)
	}
	file := strings.ToLower(k.kind)
	if k.group == "" {
		file += "-" + k.version
	} else {
		file += "-" + strings.Split(k.group, ".")[0] + "-" + k.version
	}
	root, err := inline(defs[found], defs, nil)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", found, err)
	}
	schema := root.(map[string]any)
	if _, ok := schema["type"]; !ok {
		schema["type"] = "object"
	}
	schema["$schema"] = "http://json-schema.org/schema#"
	schema["additionalProperties"] = false
	if props, ok := schema["properties"].(map[string]any); ok {
		closeObjects(props)
		schema["properties"] = nullable(props, nil, nil, "").(map[string]any)
	}
	return file, schema, nil
}

// inline returns a deep copy of v with every "#/definitions/…" reference replaced by a copy of
// the definition; stack holds the references being inlined, to refuse a recursive type.
func inline(v any, defs map[string]any, stack []string) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		if ref, ok := v["$ref"].(string); ok {
			name := strings.TrimPrefix(ref, "#/definitions/")
			if slices.Contains(stack, name) {
				return nil, fmt.Errorf("recursive type %s", name)
			}
			def, ok := defs[name]
			if !ok {
				return nil, fmt.Errorf("unknown reference %s", ref)
			}
			return inline(def, defs, append(stack, name))
		}
		out := make(map[string]any, len(v))
		for key, val := range v {
			c, err := inline(val, defs, stack)
			if err != nil {
				return nil, err
			}
			out[key] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, val := range v {
			c, err := inline(val, defs, stack)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	}
	return v, nil
}

// closeObjects sets additionalProperties to false on every object that lists its properties and
// does not say otherwise, as kubectl's validation does.
func closeObjects(v any) {
	switch v := v.(type) {
	case map[string]any:
		if _, ok := v["properties"]; ok {
			if _, set := v["additionalProperties"]; !set {
				v["additionalProperties"] = false
			}
		}
		for _, val := range v {
			closeObjects(val)
		}
	case []any:
		for _, val := range v {
			closeObjects(val)
		}
	}
}

// nullable lets a value be null where its object does not require it: a "type" of a schema
// reached as property key of an object whose "required" does not name key becomes [type, "null"].
func nullable(v any, parent, grandParent any, key string) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, val := range v {
			switch val := val.(type) {
			case map[string]any:
				out[k] = nullable(val, v, parent, k)
			case []any:
				list := make([]any, len(val))
				for i, x := range val {
					list[i] = nullable(x, val, parent, k)
				}
				out[k] = list
			case string:
				if k == "type" && val != "null" && !required(grandParent, key) {
					out[k] = []any{val, "null"}
				} else {
					out[k] = val
				}
			default:
				out[k] = val
			}
		}
		return out
	}
	return v
}

func required(object any, key string) bool {
	m, ok := object.(map[string]any)
	if !ok {
		return false
	}
	req, _ := m["required"].([]any)
	return slices.Contains(req, any(key))
}
