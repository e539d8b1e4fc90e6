package core_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/coupongate/coupongate/core"
)

func TestScrubJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
	}{
		{"clean body unchanged", `{"note":"a\u00e9\"\\u0000","n":1.50}`, `{"note":"a\u00e9\"\\u0000","n":1.50}`},
		{"NUL escape dropped", `{"note":"gift\u0000wrap","name":"\u0000"}`, `{"note":"giftwrap","name":""}`},
		{"upper-case hex", `{"a":"x\u0000y"}`, `{"a":"xy"}`},
		{"escaped backslash before u0000 kept", `{"a":"\\u0000"}`, `{"a":"\\u0000"}`},
		{"surrogate pair kept", `{"a":"\ud83d\ude00"}`, `{"a":"\ud83d\ude00"}`},
		{"lone high surrogate dropped", `{"a":"x\ud83dy"}`, `{"a":"xy"}`},
		{"lone low surrogate dropped", `{"a":"x\ude00"}`, `{"a":"x"}`},
		{"high surrogate before a non-surrogate escape", `{"a":"\ud800\u0041"}`, `{"a":"\u0041"}`},
		{"raw NUL byte dropped", "{\"a\":\"x\x00y\"}", `{"a":"xy"}`},
		{"invalid UTF-8 dropped", "{\"a\":\"caf\xe9 \xff\"}", `{"a":"caf "}`},
		{"valid UTF-8 kept beside a NUL", "{\"a\":\"café\\u0000\"}", `{"a":"café"}`},
		{"truncated escape kept", `{"a":"\u00`, `{"a":"\u00`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := core.ScrubJSON([]byte(tc.in))
			if string(got) != tc.want {
				t.Fatalf("ScrubJSON(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if json.Valid([]byte(tc.want)) {
				var v any
				if err := json.Unmarshal(got, &v); err != nil {
					t.Fatalf("scrubbed body does not parse: %v", err)
				}
				if holdsNUL(v) {
					t.Fatalf("scrubbed body still decodes to a NUL: %q", got)
				}
			}
		})
	}
	clean := []byte(`{"id":1}`)
	if got := core.ScrubJSON(clean); &got[0] != &clean[0] {
		t.Fatal("a clean body was copied")
	}
}

func TestScrubText(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"bob@example.com": "bob@example.com",
		"bo\x00b":         "bob",
		"caf\xe9":         "caf",
		"Zoë\x00":         "Zoë",
	} {
		if got := core.ScrubText(in); got != want {
			t.Errorf("ScrubText(%q) = %q, want %q", in, got, want)
		}
	}
}

// holdsNUL reports whether a decoded JSON value has a NUL in any string.
func holdsNUL(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.ContainsRune(v, 0)
	case []any:
		for _, e := range v {
			if holdsNUL(e) {
				return true
			}
		}
	case map[string]any:
		for k, e := range v {
			if strings.ContainsRune(k, 0) || holdsNUL(e) {
				return true
			}
		}
	}
	return false
}
