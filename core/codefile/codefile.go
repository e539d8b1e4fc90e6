// Package codefile reads the codes of an import file as a stream, one row at a time, in constant
// memory: a CSV with a header row that names a Code column (as Excel and other spreadsheets write
// it: UTF-8 byte-order mark, quoted fields, CRLF line ends, ',' ';' or tab separators), or plain
// text with one code a line.
//
// The package is pure Go and knows nothing of lists or stores; whoever reads rows decides what a
// valid code is (CheckFunc) and what to do with each row.
package codefile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Reasons a row is rejected by the reader. They match core's report reasons.
const (
	ReasonInvalidCode = "invalid_code"
	ReasonInvalidDate = "invalid_date"
)

// MaxRecordBytes is the longest CSV record the reader accepts. A longer one almost always means a
// quote that is never closed, which would otherwise swallow the rest of the file into one field.
const MaxRecordBytes = 1 << 20

// bufSize is the read buffer; it also bounds how far the header line is looked at to detect the
// separator.
const bufSize = 64 << 10

// maxTextLine is the longest text line kept: anything longer cannot be a code (100 characters of
// at most 4 bytes), so only its start is kept for the error report.
const maxTextLine = 1024

// ErrNoCodeColumn is returned by a CSV reader whose header row names no Code column (an empty file
// has no header row, so it is reported the same way).
var ErrNoCodeColumn = errors.New("the file has no Code column: the header row must name a column Code (matched without regard to case)")

// FileError is a problem with the file's content that stops it from being read any further.
type FileError struct {
	// Line is the physical line (1-based) where the problem starts.
	Line int64
	// Message says what is wrong, in a sentence for the merchant.
	Message string
}

// Error implements error.
func (e *FileError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Message) }

// CheckFunc trims a raw code and reports whether it is valid (core.CheckCode).
type CheckFunc func(raw string) (code string, ok bool)

// Row is one non-empty row of a file.
type Row struct {
	// Line is the physical line number (1-based) where the row starts; a CSV's header is line 1.
	Line int64
	// Code is the code, trimmed; for a rejected row, the text that was found.
	Code string
	// The code's windows, from the CSV columns available_from, available_till, issue_start and
	// issue_end; nil when the cell is empty or absent.
	AvailableFrom, AvailableTill, IssueStart, IssueEnd *time.Time
	// Reason is empty for a valid row, else ReasonInvalidCode or ReasonInvalidDate.
	Reason string
}

// Reader reads rows from a file. It is not safe for concurrent use.
type Reader struct {
	next   func() (Row, error)
	offset func() int64
}

// Next returns the next non-empty row, io.EOF after the last one, ErrNoCodeColumn for a CSV
// without a Code column, a *FileError for content that cannot be read on, or the error of the
// underlying reader.
func (r *Reader) Next() (Row, error) { return r.next() }

// Offset is how many bytes of the input were consumed by the rows returned so far (the file's
// position just after the last one), for progress.
func (r *Reader) Offset() int64 { return r.offset() }

// NewText returns a reader of plain text, one code a line. Line ends may be LF or CRLF, a UTF-8
// byte-order mark is skipped, and empty lines are skipped.
func NewText(src io.Reader, check CheckFunc) *Reader {
	t := &textReader{br: bufio.NewReaderSize(src, bufSize), check: check}
	return &Reader{next: t.next, offset: func() int64 { return t.offset }}
}

type textReader struct {
	br     *bufio.Reader
	check  CheckFunc
	line   int64
	offset int64
	long   []byte
}

func (t *textReader) next() (Row, error) {
	for {
		b, err := t.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer is not a code: keep its start for the report.
			t.long = append(t.long[:0], b[:min(len(b), maxTextLine)]...)
			t.offset += int64(len(b))
			for errors.Is(err, bufio.ErrBufferFull) {
				b, err = t.br.ReadSlice('\n')
				t.offset += int64(len(b))
			}
			if err != nil && err != io.EOF {
				return Row{}, err
			}
			t.line++
			if t.line == 1 {
				t.long = trimBOM(t.long)
			}
			return Row{Line: t.line, Code: strings.TrimSpace(string(t.long)), Reason: ReasonInvalidCode}, nil
		}
		if len(b) == 0 {
			if err == nil {
				continue
			}
			return Row{}, err
		}
		if err != nil && err != io.EOF {
			return Row{}, err
		}
		t.offset += int64(len(b))
		t.line++
		if t.line == 1 {
			b = trimBOM(b)
		}
		raw := strings.TrimSpace(string(trimEOL(b)))
		if raw == "" {
			continue
		}
		row := Row{Line: t.line}
		code, ok := t.check(raw)
		row.Code = code
		if !ok {
			row.Reason = ReasonInvalidCode
		}
		return row, nil
	}
}

var bom = []byte{0xEF, 0xBB, 0xBF}

func trimBOM(b []byte) []byte {
	if len(b) >= 3 && b[0] == bom[0] && b[1] == bom[1] && b[2] == bom[2] {
		return b[3:]
	}
	return b
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

// unguard undoes the spreadsheet formula guard our CSV export writes: a cell that would start with
// = + - or @ is written with a leading apostrophe, so '=ABC reads back as =ABC.
func unguard(s string) string {
	if len(s) >= 2 && s[0] == '\'' && strings.IndexByte("=+-@", s[1]) >= 0 {
		return s[1:]
	}
	return s
}

// dateLayouts are the window formats accepted, tried in order; those without a zone are UTC.
var dateLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05",
	"2006-01-02T15:04",
	"2006-01-02 15:04",
	"2006-01-02",
}

// ParseTime reads a window cell: RFC 3339, or a date (and time) without a zone, taken as UTC.
// An empty cell is nil.
func ParseTime(s string) (*time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			t = t.UTC()
			return &t, nil
		}
	}
	return nil, fmt.Errorf("%q is not a date: use RFC 3339 (2025-01-31T23:59:59Z) or YYYY-MM-DD", s)
}
