// The image's build context: .dockerignore, read with Docker's matching rules, must keep every
// file `go build ./cmd/...` reads (go list names them) and leave out what the build never reads.
package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// ignoreRule is one line of .dockerignore: a pattern, or an exception to the ones before it.
type ignoreRule struct {
	re      *regexp.Regexp
	exclude bool
}

// readDockerignore reads .dockerignore with Docker's rules: paths relative to the context, `*`
// within one path element, `**` across any number, `!` for an exception, the last match wins,
// and a path is left out with its folder.
func readDockerignore(t *testing.T, path string) []ignoreRule {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rules []ignoreRule
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		exclude := true
		if strings.HasPrefix(line, "!") {
			exclude, line = false, strings.TrimSpace(line[1:])
		}
		line = strings.TrimPrefix(filepath.ToSlash(filepath.Clean(line)), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(line); i++ {
			switch c := line[i]; {
			case strings.HasPrefix(line[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(line[i:], "**"):
				re.WriteString(".*")
				i++
			case c == '*':
				re.WriteString("[^/]*")
			case c == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		re.WriteString("$")
		rules = append(rules, ignoreRule{regexp.MustCompile(re.String()), exclude})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rules
}

// ignored reports whether Docker leaves path (relative to the context, with slashes) out of the
// build context: the last rule matching it or one of its folders decides.
func ignored(rules []ignoreRule, path string) bool {
	out := false
	for _, r := range rules {
		for p := path; ; {
			if r.re.MatchString(p) {
				out = r.exclude
				break
			}
			i := strings.LastIndexByte(p, '/')
			if i < 0 {
				break
			}
			p = p[:i]
		}
	}
	return out
}

// buildInputs lists, relative to the repository, every file `go build ./cmd/...` reads from it:
// go.mod and go.sum, the Go and embedded files of the module's packages the commands import, and
// the commands' default.pgo profiles.
func buildInputs(t *testing.T, root string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json", "./cmd/...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, stderr.String())
	}
	inputs := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var pkg struct {
			Dir                           string
			Standard                      bool
			Module                        *struct{ Main bool }
			GoFiles, CgoFiles, EmbedFiles []string
			Name                          string
		}
		if err := dec.Decode(&pkg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if pkg.Standard || pkg.Module == nil || !pkg.Module.Main {
			continue
		}
		rel, err := filepath.Rel(root, pkg.Dir)
		if err != nil {
			t.Fatal(err)
		}
		files := append(append(append([]string{}, pkg.GoFiles...), pkg.CgoFiles...), pkg.EmbedFiles...)
		if pkg.Name == "main" {
			if _, err := os.Stat(filepath.Join(pkg.Dir, "default.pgo")); err == nil {
				files = append(files, "default.pgo")
			}
		}
		for _, f := range files {
			inputs = append(inputs, filepath.ToSlash(filepath.Join(rel, f)))
		}
	}
	return inputs
}

// TestDockerignoreKeepsTheBuildInputs: every file the image's `go build ./cmd/...` reads is in the
// build context, and what the build never reads (the history, docs, tests, benches) is not.
func TestDockerignoreKeepsTheBuildInputs(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	rules := readDockerignore(t, filepath.Join(root, ".dockerignore"))
	inputs := buildInputs(t, root)
	if len(inputs) < 100 {
		t.Fatalf("go list named only %d build inputs", len(inputs))
	}
	for _, f := range inputs {
		if ignored(rules, f) {
			t.Errorf(".dockerignore leaves out %s, which the build reads", f)
		}
	}
	for _, f := range []string{".git/HEAD", "docs/screenshots/lists.png", "bench/README.md", "store/codes_test.go",
		"core/codefile/testdata/x.csv", ".pgo/gateway-1.pprof", "bin/gateway", "deploy/kubernetes/schemas/configmap-v1.json"} {
		if !ignored(rules, f) {
			t.Errorf(".dockerignore sends %s, which the build does not read", f)
		}
	}
}

// TestDockerignoreRules: the reading of .dockerignore follows Docker's matching.
func TestDockerignoreRules(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), ".dockerignore")
	if err := os.WriteFile(path, []byte("# comment\n.git\n**/*_test.go\n**/testdata\ndocs\n!docs/keep.md\n/bin\n*.out\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rules := readDockerignore(t, path)
	for path, want := range map[string]bool{
		".git/objects/ab":           true,
		"store/codes_test.go":       true,
		"main_test.go":              true,
		"store/codes.go":            false,
		"core/testdata/a/b.csv":     true,
		"testdata/x":                true,
		"docs/a.png":                true,
		"docs/keep.md":              false,
		"bin/gateway":               true,
		"cmd/bin/x.go":              false,
		"cover.out":                 true,
		"sub/cover.out":             false,
		"integrations/git/thing.go": false,
	} {
		if got := ignored(rules, path); got != want {
			t.Errorf("%s: ignored %v, want %v", path, got, want)
		}
	}
}
