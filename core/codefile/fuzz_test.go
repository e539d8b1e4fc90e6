package codefile_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/core/codefile"
)

// checkInvariants reads r to its end and checks what every reader promises, whatever the input:
// no panic, every accepted code is what core.CheckCode accepts, lines strictly increase, the
// offset never runs backwards or past the input, and the only errors are the documented ones.
func checkInvariants(t *testing.T, r *codefile.Reader, size int) {
	var last, offset int64
	for i := 0; ; i++ {
		row, err := r.Next()
		if err != nil {
			var fe *codefile.FileError
			if !errors.Is(err, io.EOF) && !errors.Is(err, codefile.ErrNoCodeColumn) && !errors.As(err, &fe) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if row.Line <= last {
			t.Fatalf("row %d: line %d after line %d", i, row.Line, last)
		}
		last = row.Line
		switch row.Reason {
		case "":
			if code, ok := core.CheckCode(row.Code); !ok || code != row.Code {
				t.Fatalf("line %d: accepted code %q fails CheckCode", row.Line, row.Code)
			}
		case codefile.ReasonInvalidDate:
			if _, ok := core.CheckCode(row.Code); !ok {
				t.Fatalf("line %d: invalid_date row has an invalid code %q", row.Line, row.Code)
			}
			if row.AvailableFrom != nil || row.AvailableTill != nil || row.IssueStart != nil || row.IssueEnd != nil {
				t.Fatalf("line %d: rejected row keeps windows", row.Line)
			}
		case codefile.ReasonInvalidCode:
			if row.Code == "" {
				t.Fatalf("line %d: empty row reported as invalid", row.Line)
			}
		default:
			t.Fatalf("line %d: unknown reason %q", row.Line, row.Reason)
		}
		o := r.Offset()
		if o < offset || o > int64(size) {
			t.Fatalf("line %d: offset %d after %d (input %d bytes)", row.Line, o, offset, size)
		}
		offset = o
	}
}

func FuzzParseCSV(f *testing.F) {
	for _, s := range []string{
		"Code\nA1\nB2\n",
		"\xEF\xBB\xBFName;Code\r\nx;\"A;1\"\r\n",
		"sep=;\r\nCode;available_from\r\nA1;2030-01-01\r\n",
		"code,issue_start,issue_end\nA1,2030-01-02,2030-01-01\n",
		"Code\n\"unclosed\nA1\n",
		"Code\n'=A1\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkInvariants(t, codefile.NewCSV(bytes.NewReader(data), core.CheckCode), len(data))
	})
}

func FuzzParseText(f *testing.F) {
	for _, s := range []string{"A1\nB2\n", "\xEF\xBB\xBFA1\r\n\r\nB 2\r\n", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkInvariants(t, codefile.NewText(bytes.NewReader(data), core.CheckCode), len(data))
	})
}
