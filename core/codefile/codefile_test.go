package codefile_test

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/core/codefile"
)

// row is a compact expectation: line, code, reason.
type row struct {
	Line   int64
	Code   string
	Reason string
}

func readAll(t *testing.T, r *codefile.Reader) ([]codefile.Row, error) {
	t.Helper()
	var out []codefile.Row
	for {
		got, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, got)
	}
}

func compact(rows []codefile.Row) []row {
	out := []row{}
	for _, r := range rows {
		out = append(out, row{r.Line, r.Code, r.Reason})
	}
	return out
}

func TestCSV(t *testing.T) {
	t.Parallel()
	bomb := "\xEF\xBB\xBF"
	tests := []struct {
		name string
		in   string
		want []row
	}{
		{"plain", "Code\nA1\nB2\n", []row{{2, "A1", ""}, {3, "B2", ""}}},
		{"no final newline", "Code\nA1\nB2", []row{{2, "A1", ""}, {3, "B2", ""}}},
		{"case-insensitive trimmed header", " CODE \nA1\n", []row{{2, "A1", ""}}},
		{"byte-order mark", bomb + "Code\nA1\n", []row{{2, "A1", ""}}},
		{"CRLF", "Code\r\nA1\r\nB2\r\n", []row{{2, "A1", ""}, {3, "B2", ""}}},
		{"Excel semicolons", bomb + "Name;Code;Note\r\nx;A1;n\r\ny;\"B;2\";m\r\n", []row{{2, "A1", ""}, {3, "B;2", ""}}},
		{"Excel sep line", "sep=;\r\nName;Code\r\nx;A1\r\n", []row{{3, "A1", ""}}},
		{"tabs", "id\tcode\n1\tA1\n", []row{{2, "A1", ""}}},
		{"extra columns ignored", "Name,Code,Value\nx,A1,10\ny,B2,20\n", []row{{2, "A1", ""}, {3, "B2", ""}}},
		{"quoted code with comma", "Code,Other\n\"A,1\",x\n", []row{{2, "A,1", ""}}},
		{"embedded newline keeps physical lines", "Note,Code\n\"two\nlines\",A1\nx,B2\n", []row{{2, "A1", ""}, {4, "B2", ""}}},
		{"escaped quotes", "Code\n\"A\"\"1\"\n", []row{{2, `A"1`, ""}}},
		{"empty lines and cells skipped", "Code,x\n\nA1,1\n,2\n  ,3\nB2,4\n", []row{{3, "A1", ""}, {6, "B2", ""}}},
		{"surrounding space trimmed", "Code\n  A1  \n", []row{{2, "A1", ""}}},
		{"invalid codes", "Code\nA 1\n" + strings.Repeat("x", 101) + "\nok\n", []row{{2, "A 1", "invalid_code"}, {3, strings.Repeat("x", 101), "invalid_code"}, {4, "ok", ""}}},
		{"invalid UTF-8 rejects the row only", "Code\nA\xff1\nB2\n", []row{{2, "A\xff1", "invalid_code"}, {3, "B2", ""}}},
		{"formula guard undone", "Code\n'=A1\n'+B2\n'-C3\n'@D4\n'E5\n", []row{{2, "=A1", ""}, {3, "+B2", ""}, {4, "-C3", ""}, {5, "@D4", ""}, {6, "'E5", ""}}},
		{"short rows", "Name,Code\nonly-name\nx,A1\n", []row{{3, "A1", ""}}},
		{"header only", "Code\n", []row{}},
		{"lazy quotes", "Code\nA\"1\n", []row{{2, `A"1`, ""}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rows, err := readAll(t, codefile.NewCSV(strings.NewReader(tc.in), core.CheckCode))
			if err != nil {
				t.Fatal(err)
			}
			if got := compact(rows); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestCSVWithoutCodeColumn(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]string{
		"other columns":         "Name,Value\na,1\n",
		"empty file":            "",
		"only BOM":              "\xEF\xBB\xBF",
		"blank lines":           "\n\r\n\n",
		"codes, no header name": "ABC\nDEF\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := readAll(t, codefile.NewCSV(strings.NewReader(in), core.CheckCode))
			if !errors.Is(err, codefile.ErrNoCodeColumn) {
				t.Fatalf("err %v, want ErrNoCodeColumn", err)
			}
			if !strings.Contains(err.Error(), "Code column") {
				t.Fatalf("message does not say so: %v", err)
			}
		})
	}
}

func TestCSVWindows(t *testing.T) {
	t.Parallel()
	in := "code,Available_From,available_till,Issue Start,issue-end\n" +
		"A1,2030-01-01,2030-02-01T12:00:00Z,2030-01-05 10:30:00,2030-01-06T00:00:00+02:00\n" +
		"A2,,,,\n" +
		"A3,yesterday,,,\n" +
		"A4,2030-02-01,2030-01-01,,\n"
	rows, err := readAll(t, codefile.NewCSV(strings.NewReader(in), core.CheckCode))
	if err != nil {
		t.Fatal(err)
	}
	want := []row{{2, "A1", ""}, {3, "A2", ""}, {4, "A3", "invalid_date"}, {5, "A4", "invalid_date"}}
	if got := compact(rows); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	r := rows[0]
	for name, tc := range map[string]struct {
		got  *time.Time
		want time.Time
	}{
		"available_from": {r.AvailableFrom, at("2030-01-01T00:00:00Z")},
		"available_till": {r.AvailableTill, at("2030-02-01T12:00:00Z")},
		"issue_start":    {r.IssueStart, at("2030-01-05T10:30:00Z")},
		"issue_end":      {r.IssueEnd, at("2030-01-05T22:00:00Z")},
	} {
		if tc.got == nil || !tc.got.Equal(tc.want) || tc.got.Location() != time.UTC {
			t.Errorf("%s = %v, want %v UTC", name, tc.got, tc.want)
		}
	}
	if rows[1].AvailableFrom != nil || rows[1].IssueEnd != nil {
		t.Errorf("empty cells are not nil: %+v", rows[1])
	}
}

func TestCSVUnclosedQuoteStops(t *testing.T) {
	t.Parallel()
	in := "Code\nA1\n\"B2\n" + strings.Repeat("C3\n", codefile.MaxRecordBytes)
	rows, err := readAll(t, codefile.NewCSV(strings.NewReader(in), core.CheckCode))
	var fe *codefile.FileError
	if !errors.As(err, &fe) || fe.Line != 3 {
		t.Fatalf("err %v (%T), want a FileError at line 3", err, err)
	}
	if len(rows) != 1 || rows[0].Code != "A1" {
		t.Fatalf("rows before the bad one: %+v", compact(rows))
	}
}

func TestCSVOffsetTracksConsumedBytes(t *testing.T) {
	t.Parallel()
	in := "\xEF\xBB\xBFCode\r\nA1\r\nB2\r\n"
	r := codefile.NewCSV(strings.NewReader(in), core.CheckCode)
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if got, want := r.Offset(), int64(len("\xEF\xBB\xBFCode\r\nA1\r\n")); got != want {
		t.Fatalf("offset after first row %d, want %d", got, want)
	}
	if _, err := readAll(t, r); err != nil {
		t.Fatal(err)
	}
	if r.Offset() != int64(len(in)) {
		t.Fatalf("offset at end %d, want %d", r.Offset(), len(in))
	}
}

func TestText(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("y", 100_000)
	tests := []struct {
		name string
		in   string
		want []row
	}{
		{"plain", "A1\nB2\n", []row{{1, "A1", ""}, {2, "B2", ""}}},
		{"CRLF, BOM, no final newline", "\xEF\xBB\xBFA1\r\nB2", []row{{1, "A1", ""}, {2, "B2", ""}}},
		{"blank lines and spaces", "\n  A1 \n\t\n\r\nB2\n", []row{{2, "A1", ""}, {5, "B2", ""}}},
		{"header-like line is a code", "Code\nA1\n", []row{{1, "Code", ""}, {2, "A1", ""}}},
		{"invalid", "A 1\nB\x002\n", []row{{1, "A 1", "invalid_code"}, {2, "B\x002", "invalid_code"}}},
		{"very long line", "A1\n" + long + "\nB2\n", []row{{1, "A1", ""}, {2, long[:1024], "invalid_code"}, {3, "B2", ""}}},
		{"empty", "", []row{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rows, err := readAll(t, codefile.NewText(strings.NewReader(tc.in), core.CheckCode))
			if err != nil {
				t.Fatal(err)
			}
			if got := compact(rows); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %.200v\nwant %.200v", got, tc.want)
			}
		})
	}
}

func TestReaderErrorsPassThrough(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	for name, r := range map[string]*codefile.Reader{
		"csv":  codefile.NewCSV(io.MultiReader(strings.NewReader("Code\nA1\n"), errReader{boom}), core.CheckCode),
		"text": codefile.NewText(io.MultiReader(strings.NewReader("A1\n"), errReader{boom}), core.CheckCode),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := readAll(t, r)
			if !errors.Is(err, boom) {
				t.Fatalf("err %v, want boom", err)
			}
		})
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func BenchmarkCSV(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("Code\n")
	for i := 0; i < 100_000; i++ {
		sb.WriteString("CODE-")
		sb.WriteString(strings.Repeat("X", 8))
		sb.WriteString("\n")
	}
	in := sb.String()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		r := codefile.NewCSV(strings.NewReader(in), core.CheckCode)
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
	}
}
