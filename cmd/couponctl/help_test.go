package main

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestHelp(t *testing.T) {
	t.Parallel()
	type ask struct {
		name string
		args []string
		want []string // in stdout
	}
	var tests []ask
	for _, cmd := range commands {
		words := strings.Fields(cmd.words)
		head := strings.TrimSpace("usage: couponctl " + cmd.words + " " + cmd.synopsis)
		tests = append(tests,
			ask{cmd.words + " --help", append(words[:len(words):len(words)], "--help"), []string{head, "flags:", "-h, --help"}},
			ask{cmd.words + " -h", append(words[:len(words):len(words)], "-h"), []string{head}},
			ask{"help " + cmd.words, append([]string{"help"}, words...), []string{head}},
			// Help wins over everything else on the line, valid or not.
			ask{cmd.words + " --json --help", append(words[:len(words):len(words)], "--json", "--help"), []string{head}},
		)
	}
	everything := []string{"usage: couponctl COMMAND"}
	for _, cmd := range commands {
		everything = append(everything, strings.TrimSpace("couponctl "+cmd.words+" "+cmd.synopsis))
	}
	tests = append(tests,
		ask{"--help", []string{"--help"}, everything},
		ask{"-h", []string{"-h"}, everything},
		ask{"help", []string{"help"}, everything},
		ask{"keys --help", []string{"keys", "--help"}, []string{"usage: couponctl keys COMMAND", "couponctl keys rotate"}},
		ask{"help merchant", []string{"help", "merchant"}, []string{"usage: couponctl merchant COMMAND", "couponctl merchant create"}},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := ctl(t, tt.args...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}
	// Each command's help names its flags.
	for _, tt := range []struct {
		cmd   string
		flags []string
	}{
		{"lists", []string{"--merchant id", "--json"}},
		{"import", []string{"--list id", "--merchant id", "--format csv", "--json"}},
		{"export", []string{"--list id", "--state all", "(default all)", "--merchant id"}},
		{"keys rotate", []string{"--merchant id", "--kind kind", "--grace duration", "--json"}},
		{"user invite", []string{"--merchant id", "--email email", "--role role", "--json"}},
		{"merchant create", []string{"--name name", "--owner-email email", "--json"}},
	} {
		out := ctl(t, append(strings.Fields(tt.cmd), "--help")...).stdout
		for _, f := range tt.flags {
			if !strings.Contains(out, f) {
				t.Errorf("%s --help lacks %q:\n%s", tt.cmd, f, out)
			}
		}
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	list := uuid.NewString()
	tests := []struct {
		name   string
		args   []string
		stderr []string
	}{
		{"no command", nil, []string{"no command given", "usage: couponctl COMMAND"}},
		{"unknown command", []string{"frobnicate"}, []string{`unknown command "frobnicate"`, "usage: couponctl COMMAND"}},
		{"a group alone", []string{"keys"}, []string{"keys needs a command: keys rotate"}},
		{"unknown subcommand", []string{"keys", "spin"}, []string{`unknown command "keys spin"`}},
		{"help for nothing", []string{"help", "frobnicate"}, []string{`no command "frobnicate"`}},
		{"unknown flag", []string{"lists", "--merchant", uuid.NewString(), "--bogus"}, []string{"flag provided but not defined: -bogus", "usage: couponctl lists"}},
		{"unknown flag after FILE", []string{"import", "codes.csv", "--list", list, "--bogus"}, []string{"-bogus", "usage: couponctl import"}},
		{"flag without its value", []string{"export", "--list"}, []string{"flag needs an argument: -list", "usage: couponctl export"}},
		{"a bad list id", []string{"export", "--list", "nope"}, []string{"--list must be a list id", "usage: couponctl export"}},
		{"no list", []string{"export"}, []string{"--list must be a list id"}},
		{"an unknown state", []string{"export", "--list", list, "--state", "available"}, []string{"--state must be all, delivered, undelivered or redeemed"}},
		{"a bad merchant id", []string{"export", "--list", list, "--merchant", "42"}, []string{"--merchant must be a merchant id"}},
		{"import without FILE", []string{"import", "--list", list}, []string{"import takes one FILE"}},
		{"import with two files", []string{"import", "a.csv", "b.csv", "--list", list}, []string{"import takes one FILE"}},
		{"an unknown format", []string{"import", "a.csv", "--list", list, "--format", "xlsx"}, []string{"--format must be csv or txt"}},
		{"lists without a merchant", []string{"lists"}, []string{"--merchant must be a merchant id", "usage: couponctl lists"}},
		{"lists with an argument", []string{"lists", "--merchant", uuid.NewString(), "extra"}, []string{"unexpected argument extra"}},
		{"keys rotate, a bad kind", []string{"keys", "rotate", "--merchant", uuid.NewString(), "--kind", "webhook"}, []string{"--kind must be admin or storefront", "usage: couponctl keys rotate"}},
		{"migrate with an argument", []string{"migrate", "now"}, []string{"unexpected argument now"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := ctl(t, tt.args...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2 (stderr %q)", r.code, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("a usage error wrote to stdout: %q", r.stdout)
			}
			for _, w := range tt.stderr {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
		})
	}
}
