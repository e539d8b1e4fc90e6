package codefile

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"strings"
	"time"
)

// errRecordTooLong stops the CSV reader when a record runs past MaxRecordBytes.
var errRecordTooLong = errors.New("record too long")

// NewCSV returns a reader of a CSV file with a header row. The separator (',', ';' or tab) is the
// one the header line uses most, unless a first line "sep=X" (as Excel writes) names it. The header
// is matched without regard to case or surrounding space; the Code column is required and the
// window columns (available_from, available_till, issue_start, issue_end) are read when present;
// other columns are ignored.
func NewCSV(src io.Reader, check CheckFunc) *Reader {
	g := &guard{src: src, limit: MaxRecordBytes + bufSize}
	c := &csvReader{g: g, br: bufio.NewReaderSize(g, bufSize), check: check}
	return &Reader{next: c.next, offset: c.offset}
}

// guard passes the input through and fails once it has handed out more than limit bytes, so one
// record (an unclosed quote, a line without end) cannot grow without bound.
type guard struct {
	src   io.Reader
	read  int64
	limit int64
}

func (g *guard) Read(p []byte) (int, error) {
	if g.read >= g.limit {
		return 0, errRecordTooLong
	}
	if rest := g.limit - g.read; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := g.src.Read(p)
	g.read += int64(n)
	return n, err
}

type csvReader struct {
	g     *guard
	br    *bufio.Reader
	cr    *csv.Reader
	check CheckFunc
	// skipped bytes and lines before the CSV proper (byte-order mark, sep= line)
	baseBytes, baseLines int64
	// column indexes, -1 when absent
	code, from, till, start, end int
	lastLine                     int64
}

func (c *csvReader) offset() int64 {
	if c.cr == nil {
		return c.baseBytes
	}
	return c.baseBytes + c.cr.InputOffset()
}

func (c *csvReader) next() (Row, error) {
	if c.cr == nil {
		if err := c.readHeader(); err != nil {
			return Row{}, err
		}
	}
	for {
		rec, err := c.cr.Read()
		if err != nil {
			return Row{}, c.readError(err)
		}
		c.g.limit = c.offset() + MaxRecordBytes + bufSize
		line, _ := c.cr.FieldPos(0)
		row := Row{Line: c.baseLines + int64(line)}
		c.lastLine = row.Line
		raw := ""
		if c.code < len(rec) {
			raw = strings.TrimSpace(rec[c.code])
		}
		if raw == "" {
			continue // an empty code cell is an empty row
		}
		if len(rec) > 1 {
			// The record's fields share one string: keep only the code alive.
			raw = strings.Clone(raw)
		}
		code, ok := c.check(unguard(raw))
		row.Code = code
		if !ok {
			row.Reason = ReasonInvalidCode
			return row, nil
		}
		var errs [4]error
		row.AvailableFrom, errs[0] = c.time(rec, c.from)
		row.AvailableTill, errs[1] = c.time(rec, c.till)
		row.IssueStart, errs[2] = c.time(rec, c.start)
		row.IssueEnd, errs[3] = c.time(rec, c.end)
		switch {
		case errors.Join(errs[:]...) != nil,
			row.AvailableFrom != nil && row.AvailableTill != nil && row.AvailableTill.Before(*row.AvailableFrom),
			row.IssueStart != nil && row.IssueEnd != nil && row.IssueEnd.Before(*row.IssueStart):
			row.Reason = ReasonInvalidDate
			row.AvailableFrom, row.AvailableTill, row.IssueStart, row.IssueEnd = nil, nil, nil, nil
		}
		return row, nil
	}
}

func (c *csvReader) time(rec []string, i int) (*time.Time, error) {
	if i < 0 || i >= len(rec) {
		return nil, nil
	}
	return ParseTime(rec[i])
}

func (c *csvReader) readError(err error) error {
	if errors.Is(err, errRecordTooLong) {
		return &FileError{Line: c.lastLine + 1, Message: "a row is longer than 1 MiB: check that every quote in the file is closed"}
	}
	return err
}

// readHeader skips a byte-order mark and an Excel "sep=" line, picks the separator and reads the
// header row.
func (c *csvReader) readHeader() error {
	if b, _ := c.br.Peek(3); bytes.Equal(b, bom) {
		_, _ = c.br.Discard(3)
		c.baseBytes = 3
	}
	comma := ','
	peek, err := c.br.Peek(bufSize)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return c.readError(err)
	}
	// The first non-empty line decides.
	lead := len(peek) - len(bytes.TrimLeft(peek, "\r\n"))
	first := peek[lead:]
	if i := bytes.IndexByte(first, '\n'); i >= 0 {
		first = first[:i+1]
	}
	if sep, ok := excelSep(first); ok {
		comma = sep
		skip := lead + len(first)
		c.baseLines = int64(bytes.Count(peek[:skip], []byte{'\n'}))
		_, _ = c.br.Discard(skip)
		c.baseBytes += int64(skip)
	} else {
		comma = separator(first)
	}
	c.cr = csv.NewReader(c.br)
	c.cr.Comma = comma
	c.cr.LazyQuotes = true
	c.cr.FieldsPerRecord = -1
	c.cr.ReuseRecord = true
	header, err := c.cr.Read()
	if errors.Is(err, io.EOF) {
		return ErrNoCodeColumn
	}
	if err != nil {
		return c.readError(err)
	}
	line, _ := c.cr.FieldPos(0)
	c.lastLine = c.baseLines + int64(line)
	c.g.limit = c.offset() + MaxRecordBytes + bufSize
	c.code, c.from, c.till, c.start, c.end = -1, -1, -1, -1, -1
	for i, name := range header {
		var col *int
		switch headerName(name) {
		case "code":
			col = &c.code
		case "available_from":
			col = &c.from
		case "available_till":
			col = &c.till
		case "issue_start":
			col = &c.start
		case "issue_end":
			col = &c.end
		default:
			continue
		}
		if *col < 0 {
			*col = i
		}
	}
	if c.code < 0 {
		return ErrNoCodeColumn
	}
	return nil
}

// headerName normalises a header cell: trimmed, lower case, a byte-order mark or quotes left by a
// sloppy writer removed, spaces and dashes as underscores ("Available From" is available_from).
func headerName(s string) string {
	s = strings.TrimPrefix(s, "\ufeff")
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.Trim(s, `"'`)
	return strings.NewReplacer(" ", "_", "-", "_").Replace(strings.TrimSpace(s))
}

// excelSep reads Excel's "sep=X" line.
func excelSep(line []byte) (rune, bool) {
	line = bytes.TrimRight(line, "\r\n")
	if len(line) != 5 || !bytes.EqualFold(line[:4], []byte("sep=")) {
		return 0, false
	}
	switch line[4] {
	case ',', ';', '\t', '|':
		return rune(line[4]), true
	}
	return 0, false
}

// separator picks the separator used most outside quotes in the header line; ',' on a tie.
func separator(line []byte) rune {
	counts := map[rune]int{}
	quoted := false
	for _, b := range line {
		switch b {
		case '"':
			quoted = !quoted
		case ',', ';', '\t':
			if !quoted {
				counts[rune(b)]++
			}
		}
	}
	best := ','
	for _, r := range []rune{';', '\t'} {
		if counts[r] > counts[best] {
			best = r
		}
	}
	return best
}
