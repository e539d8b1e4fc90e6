package browsertest

import (
	_ "embed"
	"fmt"
	"strings"

	"github.com/chromedp/chromedp"
)

// axeSource is axe-core, vendored for the tests only (testdata/axe/README.md says which version
// and where from). Only tests import this package: no binary of cmd/ carries it.
//
//go:embed testdata/axe/axe.min.js
var axeSource string

// AxeViolation is one accessibility rule that axe-core found broken on a page, with the elements
// that break it.
type AxeViolation struct {
	// Rule is axe's rule id (color-contrast, label, …); Impact is minor, moderate, serious or
	// critical.
	Rule    string    `json:"rule"`
	Impact  string    `json:"impact"`
	Help    string    `json:"help"`
	HelpURL string    `json:"helpUrl"`
	Nodes   []AxeNode `json:"nodes"`
}

// AxeNode is one element that breaks a rule.
type AxeNode struct {
	// Target is the element's CSS selector; Summary says what to fix; HTML is its opening tag.
	Target  string `json:"target"`
	Summary string `json:"summary"`
	HTML    string `json:"html"`
}

// Serious reports whether the violation's impact is serious or critical.
func (v AxeViolation) Serious() bool { return v.Impact == "serious" || v.Impact == "critical" }

// String is the violation as a test prints it: the rule, its impact, every element with what to
// fix, and the rule's help page.
func (v AxeViolation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): %s — %s", v.Rule, v.Impact, v.Help, v.HelpURL)
	for _, n := range v.Nodes {
		fmt.Fprintf(&b, "\n    at %s: %s\n      %s", n.Target, strings.ReplaceAll(n.Summary, "\n", " "), n.HTML)
	}
	return b.String()
}

// Axe runs axe-core on the page as it is now (every rule: WCAG 2.x A and AA, and axe's best
// practices) and returns the violations it finds. axe is injected through DevTools, which the
// page's Content-Security-Policy does not govern, so the page is tested with its real policy.
func (b *Browser) Axe() []AxeViolation {
	b.t.Helper()
	if !Eval[bool](b, `typeof window.axe === "object"`) {
		Run(b, "inject axe-core", chromedp.Evaluate[bool](axeSource+"\n;typeof window.axe === \"object\""))
	}
	return Eval[[]AxeViolation](b, `axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations.map(v => ({
		rule: v.id, impact: v.impact || "", help: v.help, helpUrl: v.helpUrl,
		nodes: v.nodes.map(n => ({target: n.target.map(String).join(" "), summary: n.failureSummary || "", html: (n.html || "").slice(0, 200)})),
	})))`)
}
