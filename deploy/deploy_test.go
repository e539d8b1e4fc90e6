// Package deploy holds the deployment files' tests: the Kubernetes manifests of deploy/kubernetes
// pass kubeconform (strict, offline, against the schemas committed in deploy/kubernetes/schemas)
// and hang together (selectors, ports, probes, names); docker-compose.yml builds the image once,
// pins every other image and wires the migration, the health check and Prometheus; .dockerignore
// keeps every file the build reads.
package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v2"
)

// kubeconform is run through the Go module proxy at this version, so CI needs no download of
// its own; the schemas are local, so it needs no network past the module proxy.
const kubeconform = "github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0"

const (
	manifestDir    = "kubernetes"
	schemaLocation = "kubernetes/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json"
)

// manifestFiles are the manifests kubeconform validates: every .yaml file of deploy/kubernetes
// but kustomize's own.
func manifestFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files = slices.DeleteFunc(files, func(f string) bool { return filepath.Base(f) == "kustomization.yaml" })
	if len(files) < 9 {
		t.Fatalf("found only %d manifests in %s", len(files), dir)
	}
	return files
}

// kubeconformResult is one resource in kubeconform's JSON output.
type kubeconformResult struct {
	Filename string `json:"filename"`
	Kind     string `json:"kind"`
	Name     string `json:"name"`
	Version  string `json:"version"`
	Status   string `json:"status"`
	Msg      string `json:"msg"`
}

// runKubeconform validates files strictly against the committed schemas and returns each
// resource's result and kubeconform's exit status.
func runKubeconform(t *testing.T, files []string) ([]kubeconformResult, error) {
	t.Helper()
	args := append([]string{"run", kubeconform, "-strict", "-summary", "-verbose", "-output", "json",
		"-schema-location", schemaLocation}, files...)
	cmd := exec.Command("go", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var out struct {
		Resources []kubeconformResult `json:"resources"`
		Summary   struct {
			Valid, Invalid, Errors, Skipped int
		} `json:"summary"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("kubeconform: %v (exit: %v)\nstdout: %s\nstderr: %s", err, runErr, stdout.String(), stderr.String())
	}
	t.Logf("kubeconform: %d valid, %d invalid, %d errors, %d skipped", out.Summary.Valid, out.Summary.Invalid, out.Summary.Errors, out.Summary.Skipped)
	return out.Resources, runErr
}

// documents counts the YAML documents of files that hold a resource.
func documents(t *testing.T, files []string) int {
	t.Helper()
	n := 0
	for _, f := range files {
		for _, doc := range readDocs(t, f) {
			if doc["kind"] != nil {
				n++
			}
		}
	}
	return n
}

func readDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		docs = append(docs, normalize(doc).(map[string]any))
	}
}

// normalize turns yaml.v2's map[interface{}]interface{} into map[string]any, all the way down.
func normalize(v any) any {
	switch v := v.(type) {
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, val := range v {
			out[fmt.Sprint(k)] = normalize(val)
		}
		return out
	case map[string]any:
		for k, val := range v {
			v[k] = normalize(val)
		}
		return v
	case []any:
		for i, val := range v {
			v[i] = normalize(val)
		}
		return v
	}
	return v
}

// TestKubeconformAcceptsTheManifests: every resource of deploy/kubernetes is valid against the
// Kubernetes API's schemas, strictly (no unknown or duplicated field), none skipped and none
// without a schema.
func TestKubeconformAcceptsTheManifests(t *testing.T) {
	t.Parallel()
	files := manifestFiles(t, manifestDir)
	results, err := runKubeconform(t, files)
	for _, r := range results {
		if r.Status != "statusValid" {
			t.Errorf("%s: %s %s: %s %s", r.Filename, r.Kind, r.Name, r.Status, r.Msg)
		}
	}
	if err != nil {
		t.Errorf("kubeconform exited with %v", err)
	}
	if want := documents(t, files); len(results) != want {
		t.Errorf("kubeconform reported %d resources, the manifests hold %d", len(results), want)
	}
}

// TestKubeconformRefusesBrokenManifests: the same run fails on what a typo or a wrong edit makes
// of the gateway's Deployment, so the test above can fail.
func TestKubeconformRefusesBrokenManifests(t *testing.T) {
	t.Parallel()
	orig, err := os.ReadFile(filepath.Join(manifestDir, "gateway-deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cases := map[string][2]string{
		// name: {text to replace, replacement}
		"unknown-field.yaml":     {"path: /healthz", "paht: /healthz"},
		"wrong-type.yaml":        {"replicas: 2", "replicas: two"},
		"missing-name.yaml":      {"- name: gateway\n", "- \n"},
		"not-int-or-string.yaml": {"maxUnavailable: 0", "maxUnavailable: [0]"},
		"unknown-version.yaml":   {"apiVersion: apps/v1", "apiVersion: apps/v1beta1"},
	}
	var files []string
	for name, edit := range cases {
		if !bytes.Contains(orig, []byte(edit[0])) {
			t.Fatalf("%s: gateway-deployment.yaml no longer has %q", name, edit[0])
		}
		broken := bytes.Replace(orig, []byte(edit[0]), []byte(edit[1]), 1)
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, broken, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, path)
	}
	results, err := runKubeconform(t, files)
	if err == nil {
		t.Error("kubeconform exited 0 on broken manifests")
	}
	got := map[string]string{}
	for _, r := range results {
		got[filepath.Base(r.Filename)] = r.Status
	}
	for name := range cases {
		if s := got[name]; s != "statusInvalid" && s != "statusError" {
			t.Errorf("%s: status %q, want invalid or error", name, s)
		}
	}
}

// kustomization is kustomization.yaml, read strictly: a field it does not know is refused.
type kustomization struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Resources  []string `yaml:"resources"`
	Images     []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
	} `yaml:"images"`
}

// TestKustomizationListsEveryManifest: `kubectl apply -k` applies every manifest but the Secret
// example, and sets the image every container uses.
func TestKustomizationListsEveryManifest(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(manifestDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(raw, &k); err != nil {
		t.Fatal(err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("kustomization.yaml is %s %s", k.APIVersion, k.Kind)
	}
	var want []string
	for _, f := range manifestFiles(t, manifestDir) {
		if base := filepath.Base(f); base != "secret.example.yaml" {
			want = append(want, base)
		}
	}
	got := slices.Clone(k.Resources)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("kustomization resources %v, want %v", got, want)
	}
	if len(k.Images) != 1 || k.Images[0].Name != "coupongate" || k.Images[0].NewTag == "" || k.Images[0].NewTag == "latest" {
		t.Errorf("kustomization images %+v, want one that sets coupongate to a pinned tag", k.Images)
	}
	for _, f := range manifestFiles(t, manifestDir) {
		for _, doc := range readDocs(t, f) {
			for _, c := range containers(doc) {
				if c["image"] != "coupongate" {
					t.Errorf("%s: container %v runs image %v, which the kustomization does not set", f, c["name"], c["image"])
				}
			}
		}
	}
}

// get walks a decoded document by keys.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func list(v any) []map[string]any {
	items, _ := v.([]any)
	var out []map[string]any
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func podSpec(doc map[string]any) any {
	return get(doc, "spec", "template", "spec")
}

func containers(doc map[string]any) []map[string]any {
	return list(get(podSpec(doc), "containers"))
}

// resources reads every manifest into kind/name → document.
func resources(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, f := range manifestFiles(t, manifestDir) {
		for _, doc := range readDocs(t, f) {
			out[fmt.Sprintf("%s/%s", doc["kind"], get(doc, "metadata", "name"))] = doc
		}
	}
	return out
}

// TestManifestsHangTogether: what kubeconform cannot see. The gateway is ready on /healthz of its
// HTTP port; every pod runs as non-root on a read-only filesystem with requests and limits and
// its settings from the ConfigMap and the Secret; metrics ports, METRICS_ADDR and the scrape
// annotations agree; the Service, the autoscalers and the disruption budgets find their pods.
func TestManifestsHangTogether(t *testing.T) {
	t.Parallel()
	res := resources(t)
	need := func(key string) map[string]any {
		doc, ok := res[key]
		if !ok {
			t.Fatalf("no %s in deploy/kubernetes", key)
		}
		return doc
	}
	gateway := need("Deployment/coupongate-gateway")
	worker := need("Deployment/coupongate-worker")
	job := need("Job/coupongate-migrate")
	configMap := get(need("ConfigMap/coupongate-config"), "data").(map[string]any)
	need("Secret/coupongate-secrets")

	for _, doc := range []map[string]any{gateway, worker, job} {
		name := get(doc, "metadata", "name")
		pod := podSpec(doc)
		if get(pod, "securityContext", "runAsNonRoot") != true {
			t.Errorf("%s: the pod does not require a non-root user", name)
		}
		if get(pod, "automountServiceAccountToken") != false {
			t.Errorf("%s: the pod mounts a service account token it does not use", name)
		}
		cs := containers(doc)
		if len(cs) != 1 {
			t.Fatalf("%s: %d containers, want 1", name, len(cs))
		}
		c := cs[0]
		if get(c, "securityContext", "readOnlyRootFilesystem") != true || get(c, "securityContext", "allowPrivilegeEscalation") != false {
			t.Errorf("%s: the container's filesystem is writable or it may escalate privileges", name)
		}
		for _, r := range []string{"requests", "limits"} {
			for _, q := range []string{"cpu", "memory"} {
				if get(c, "resources", r, q) == nil {
					t.Errorf("%s: no resources.%s.%s", name, r, q)
				}
			}
		}
		var from []string
		for _, e := range list(c["envFrom"]) {
			if n := get(e, "configMapRef", "name"); n != nil {
				from = append(from, "ConfigMap/"+n.(string))
			}
			if n := get(e, "secretRef", "name"); n != nil {
				from = append(from, "Secret/"+n.(string))
			}
		}
		if !slices.Equal(from, []string{"ConfigMap/coupongate-config", "Secret/coupongate-secrets"}) {
			t.Errorf("%s: settings from %v, want the ConfigMap and the Secret", name, from)
		}
	}

	// The gateway: ready on /healthz of the port it listens on (HTTP_ADDR).
	gc := containers(gateway)[0]
	ports := map[string]int{}
	for _, p := range list(gc["ports"]) {
		ports[p["name"].(string)] = p["containerPort"].(int)
	}
	if addr := configMap["HTTP_ADDR"]; addr != fmt.Sprintf(":%d", ports["http"]) {
		t.Errorf("HTTP_ADDR %v, but the gateway's http port is %d", addr, ports["http"])
	}
	if get(gc, "readinessProbe", "httpGet", "path") != "/healthz" || get(gc, "readinessProbe", "httpGet", "port") != "http" {
		t.Errorf("the gateway's readiness probe is %v, want GET /healthz on port http", gc["readinessProbe"])
	}
	if gc["livenessProbe"] == nil {
		t.Error("the gateway has no liveness probe")
	}

	// Metrics: METRICS_ADDR, the metrics port and the scrape annotation agree.
	for _, doc := range []map[string]any{gateway, worker} {
		c := containers(doc)[0]
		var addr string
		for _, e := range list(c["env"]) {
			if e["name"] == "METRICS_ADDR" {
				addr, _ = e["value"].(string)
			}
		}
		var metricsPort int
		for _, p := range list(c["ports"]) {
			if p["name"] == "metrics" {
				metricsPort = p["containerPort"].(int)
			}
		}
		annotated := get(doc, "spec", "template", "metadata", "annotations", "prometheus.io/port")
		if metricsPort == 0 || addr != fmt.Sprintf("0.0.0.0:%d", metricsPort) || annotated != fmt.Sprint(metricsPort) {
			t.Errorf("%s: METRICS_ADDR %q, metrics port %d and scrape annotation %v disagree", get(doc, "metadata", "name"), addr, metricsPort, annotated)
		}
	}

	// The Service, the autoscalers and the budgets find the pods they are for.
	labels := func(doc map[string]any) map[string]any {
		return get(doc, "spec", "template", "metadata", "labels").(map[string]any)
	}
	matches := func(selector any, doc map[string]any) bool {
		sel, ok := selector.(map[string]any)
		if !ok || len(sel) == 0 {
			return false
		}
		for k, v := range sel {
			if labels(doc)[k] != v {
				return false
			}
		}
		return true
	}
	svc := need("Service/coupongate-gateway")
	if !matches(get(svc, "spec", "selector"), gateway) || matches(get(svc, "spec", "selector"), worker) {
		t.Errorf("the Service's selector %v does not pick the gateway's pods alone", get(svc, "spec", "selector"))
	}
	for _, p := range list(get(svc, "spec", "ports")) {
		if _, ok := ports[fmt.Sprint(p["targetPort"])]; !ok {
			t.Errorf("the Service targets port %v, which the gateway does not name", p["targetPort"])
		}
	}
	for _, target := range []map[string]any{gateway, worker} {
		name := get(target, "metadata", "name").(string)
		hpa := need("HorizontalPodAutoscaler/" + name)
		if get(hpa, "spec", "scaleTargetRef", "kind") != "Deployment" || get(hpa, "spec", "scaleTargetRef", "name") != name {
			t.Errorf("the autoscaler %s scales %v", name, get(hpa, "spec", "scaleTargetRef"))
		}
		if minR, _ := get(hpa, "spec", "minReplicas").(int); minR < 2 {
			t.Errorf("the autoscaler %s may go down to %d replica: a drain would stop the service", name, minR)
		}
		pdb := need("PodDisruptionBudget/" + name)
		if !matches(get(pdb, "spec", "selector", "matchLabels"), target) {
			t.Errorf("the disruption budget %s selects %v, not %s's pods", name, get(pdb, "spec", "selector", "matchLabels"), name)
		}
		if !matches(get(target, "spec", "selector", "matchLabels"), target) {
			t.Errorf("%s's selector does not match its own pods", name)
		}
	}
	if cmd := containers(job)[0]["command"]; fmt.Sprint(cmd) != "[/usr/local/bin/couponctl migrate]" {
		t.Errorf("the migrate Job runs %v, want couponctl migrate", cmd)
	}
}

// compose is the part of docker-compose.yml the tests read.
type compose struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       any               `yaml:"build"`
		PullPolicy  string            `yaml:"pull_policy"`
		Entrypoint  []string          `yaml:"entrypoint"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		DependsOn   any               `yaml:"depends_on"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		Volumes []string `yaml:"volumes"`
	} `yaml:"services"`
}

// pinnedTag is an exact version: a tag with a digit in it, never latest; or a digest.
var pinnedTag = regexp.MustCompile(`^[^:@]+(:[^:@]*[0-9][^:@]*)?(@sha256:[0-9a-f]{64})?$`)

func pinned(image string) bool {
	if strings.Contains(image, "@sha256:") {
		return pinnedTag.MatchString(image)
	}
	_, tag, ok := strings.Cut(image, ":")
	return ok && tag != "latest" && pinnedTag.MatchString(image)
}

// TestCompose: docker-compose.yml builds the image once and runs it as the one-shot migration,
// the gateway and the worker, which start only after the migration succeeded; every other image
// is pinned; the gateway's health check asks /healthz with the image's own binary; Prometheus
// scrapes the ports the gateway and the worker serve their metrics on.
func TestCompose(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	var built []string
	for name, s := range c.Services {
		if s.Build != nil {
			built = append(built, name)
		}
	}
	if len(built) != 1 {
		t.Fatalf("services %v build an image, want exactly one", built)
	}
	image := c.Services[built[0]].Image
	if image == "" || c.Services[built[0]].PullPolicy != "build" {
		t.Errorf("the built service names image %q with pull_policy %q: name it, and never pull it from a registry (pull_policy: build)", image, c.Services[built[0]].PullPolicy)
	}
	for name, s := range c.Services {
		switch {
		case s.Image == image && s.Build == nil && s.PullPolicy != "never":
			t.Errorf("%s runs the built image %s with pull_policy %q, want never", name, image, s.PullPolicy)
		case s.Image != image && !pinned(s.Image):
			t.Errorf("%s runs image %q, which is not pinned to a version", name, s.Image)
		}
	}
	mustRun := func(name string) {
		if s, ok := c.Services[name]; !ok || s.Image != image {
			t.Errorf("service %s does not run the built image %s", name, image)
		}
	}
	for _, name := range []string{"migrate", "gateway", "worker"} {
		mustRun(name)
	}
	if m := c.Services["migrate"]; fmt.Sprint(append(m.Entrypoint, m.Command...)) != "[/usr/local/bin/couponctl migrate]" {
		t.Errorf("migrate runs %v %v, want couponctl migrate", m.Entrypoint, m.Command)
	}
	for _, name := range []string{"gateway", "worker"} {
		deps, _ := normalize(c.Services[name].DependsOn).(map[string]any)
		if get(deps, "migrate", "condition") != "service_completed_successfully" {
			t.Errorf("%s does not wait for migrate to complete successfully: depends_on %v", name, deps)
		}
	}
	hc := c.Services["gateway"].Healthcheck.Test
	if len(hc) < 3 || hc[0] != "CMD" || hc[1] != "/usr/local/bin/healthcheck" || !strings.HasSuffix(hc[2], ":8080/healthz") {
		t.Errorf("the gateway's health check is %v, want the image's healthcheck binary asking :8080/healthz", hc)
	}

	// Prometheus scrapes the gateway's and the worker's METRICS_ADDR ports.
	prom := c.Services["prometheus"]
	if !slices.ContainsFunc(prom.Volumes, func(v string) bool { return strings.HasPrefix(v, "./deploy/prometheus.yml:") }) {
		t.Errorf("prometheus does not mount deploy/prometheus.yml: volumes %v", prom.Volumes)
	}
	rawProm, err := os.ReadFile("prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		ScrapeConfigs []struct {
			JobName      string `yaml:"job_name"`
			DNSSDConfigs []struct {
				Names []string `yaml:"names"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(rawProm, &p); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	scraped := map[string]int{}
	for _, sc := range p.ScrapeConfigs {
		for _, d := range sc.DNSSDConfigs {
			for _, n := range d.Names {
				scraped[n] = d.Port
			}
		}
	}
	for _, name := range []string{"gateway", "worker"} {
		addr := c.Services[name].Environment["METRICS_ADDR"]
		if addr == "" || !strings.HasPrefix(addr, "0.0.0.0:") || addr != fmt.Sprintf("0.0.0.0:%d", scraped[name]) {
			t.Errorf("%s serves metrics on %q, Prometheus scrapes it on port %d", name, addr, scraped[name])
		}
	}
}

// TestDockerfilePinsItsImages: the build and runtime images of the Dockerfile are exact versions.
func TestDockerfilePinsItsImages(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || !strings.EqualFold(fields[0], "FROM") {
			continue
		}
		image := fields[1]
		if strings.HasPrefix(image, "golang:") && !regexp.MustCompile(`^golang:\d+\.\d+\.\d+`).MatchString(image) {
			t.Errorf("Dockerfile builds with %s: pin Go's patch version", image)
		}
		if !pinned(image) && !strings.HasPrefix(image, "gcr.io/distroless/") {
			t.Errorf("Dockerfile uses %s, which is not pinned", image)
		}
	}
}
