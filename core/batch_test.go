package core_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/coupongate/coupongate/core"
)

func TestBatchSpecValidate(t *testing.T) {
	t.Parallel()
	spec := func(count int64, length int, charset string) core.BatchSpec {
		return core.BatchSpec{Count: count, Length: length, Charset: charset, Separator: "-"}
	}
	full := core.List{Counts: core.Counts{Total: 1000, Available: 1000}}
	removed := core.List{Counts: core.Counts{Removed: 1000}}
	tests := []struct {
		name  string
		spec  core.BatchSpec
		list  core.List
		code  string // "" for valid
		field string
	}{
		{"defaults", spec(1000, core.DefaultLength, core.DefaultCharset), core.List{}, "", ""},
		{"zero count", spec(0, 8, core.DefaultCharset), core.List{}, "invalid_field", "count"},
		{"too many", spec(core.MaxBatchCount+1, 8, core.DefaultCharset), core.List{}, "invalid_field", "count"},
		{"zero length", spec(10, 0, core.DefaultCharset), core.List{}, "invalid_field", "length"},
		{"length 65", spec(10, 65, core.DefaultCharset), core.List{}, "invalid_field", "length"},
		{"one-char charset", spec(10, 8, "A"), core.List{}, "invalid_field", "charset"},
		{"repeated charset", spec(10, 8, "AAB"), core.List{}, "invalid_field", "charset"},
		{"charset with space", spec(10, 8, "A B"), core.List{}, "invalid_field", "charset"},
		{"prefix with space", core.BatchSpec{Count: 10, Length: 8, Charset: "AB", Prefix: "A B"}, core.List{}, "invalid_field", "prefix"},
		{"over 100 characters", core.BatchSpec{Count: 1, Length: 8, Charset: core.DefaultCharset, Prefix: strings.Repeat("P", 92), Separator: "-"}, core.List{}, "invalid_field", "length"},
		{"exactly 100 characters", core.BatchSpec{Count: 1, Length: 8, Charset: core.DefaultCharset, Prefix: strings.Repeat("P", 91), Separator: "-"}, core.List{}, "", ""},
		{"space of 4 for 10", spec(10, 2, "AB"), core.List{}, "code_space_too_small", "length"},
		{"space just big enough", spec(10, 10, "AB"), core.List{}, "", ""},                     // 1024 >= 10*100
		{"space one short", spec(11, 10, "AB"), core.List{}, "code_space_too_small", "length"}, // 1024 < 1100
		{"existing codes count", spec(1, 2, core.DefaultCharset), full, "code_space_too_small", "length"},
		{"removed codes count", spec(1, 2, core.DefaultCharset), removed, "code_space_too_small", "length"},
		{"empty list same spec", spec(1, 2, core.DefaultCharset), core.List{}, "", ""},
		{"case-sensitive aAbB", spec(1, 4, "aAbB"), core.List{}, "", ""},                                                  // 256 >= 100
		{"case-insensitive aAbB", spec(1, 4, "aAbB"), core.List{CaseInsensitive: true}, "code_space_too_small", "length"}, // 16 < 100
		{"huge space does not overflow", spec(core.MaxBatchCount, 64, core.DefaultCharset), core.List{}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.spec.Validate(tc.list)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("valid spec refused: %v", err)
				}
				return
			}
			var ce *core.Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a core error %s", err, tc.code)
			}
			if ce.Kind != core.KindInvalid || ce.Code != tc.code {
				t.Fatalf("got kind %d code %s, want 422 %s", ce.Kind, ce.Code, tc.code)
			}
			if len(ce.Details) == 0 || ce.Details[0].Field != tc.field {
				t.Fatalf("details %v do not name %s", ce.Details, tc.field)
			}
		})
	}
}

func TestCodeGenerator(t *testing.T) {
	t.Parallel()
	spec := core.BatchSpec{Count: 1, Prefix: "SPRING", Separator: "_", Length: 10, Charset: "XYZ9"}
	g := core.NewCodeGenerator(spec, nil)
	seen := map[string]bool{}
	counts := map[rune]int{}
	for range 2000 {
		c, err := g.Next()
		if err != nil {
			t.Fatal(err)
		}
		random, ok := strings.CutPrefix(c, "SPRING_")
		if !ok || utf8.RuneCountInString(random) != 10 || strings.Trim(random, "XYZ9") != "" {
			t.Fatalf("code %q does not follow the spec", c)
		}
		seen[c] = true
		for _, r := range random {
			counts[r]++
		}
	}
	if len(seen) < 1990 {
		t.Fatalf("only %d distinct codes of 2000 from a space of 4^10", len(seen))
	}
	// 20000 draws over 4 characters: each near 5000; rejection sampling keeps it uniform.
	for r, n := range counts {
		if n < 4500 || n > 5500 {
			t.Fatalf("character %q drawn %d times of 20000", r, n)
		}
	}
	// Without a prefix the code is the random part alone; a fixed source gives fixed codes.
	g = core.NewCodeGenerator(core.BatchSpec{Length: 4, Charset: "AB", Separator: "-"}, bytes.NewReader(make([]byte, 8192)))
	if c, _ := g.Next(); c != "AAAA" {
		t.Fatalf("zero bytes made %q, want AAAA", c)
	}
}
