// couponctl import and export: codes into a list from a file, and a list's codes out as CSV, through
// the same core services as the API's upload and export.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/api"
	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/app"
	"github.com/coupongate/coupongate/internal/numfmt"
)

// importActor is who an import by couponctl is recorded as (the import's created_by, the codes'
// timelines).
const importActor = "couponctl"

// shownRowErrors is how many rejected rows the text report prints; the import keeps more.
const shownRowErrors = 20

// listFlag parses a --list value.
func listFlag(value string) (uuid.UUID, error) {
	id, err := uuid.Parse(value)
	if err != nil {
		return uuid.Nil, usageError{msg: "--list must be a list id (a uuid)"}
	}
	return id, nil
}

// optionalMerchant parses a --merchant value that may be left out (uuid.Nil then).
func optionalMerchant(value string) (uuid.UUID, error) {
	if value == "" {
		return uuid.Nil, nil
	}
	return merchantFlag(value)
}

// findList returns the list and its merchant: the merchant given, or, when merchantID is
// uuid.Nil, the one that owns the list.
func findList(ctx context.Context, a *app.Ctl, merchantID, listID uuid.UUID) (core.List, error) {
	given := merchantID != uuid.Nil
	if !given {
		var err error
		if merchantID, err = a.DB.MerchantOfList(ctx, listID); errors.Is(err, core.ErrListNotFound) {
			return core.List{}, fmt.Errorf("no list has the id %s", listID)
		} else if err != nil {
			return core.List{}, err
		}
	}
	l, err := a.Lists.Get(ctx, merchantID, listID)
	if given && errors.Is(err, core.ErrListNotFound) {
		return core.List{}, fmt.Errorf("merchant %s has no list with the id %s", merchantID, listID)
	}
	return l, err
}

// importFlags is `couponctl import FILE --list ID`. The file is stored and queued as an upload to
// POST /api/v1/lists/{id}/imports is (core.Imports.Start: the same import record, numbered in the
// list, and the same worker task), then couponctl runs the import itself with the worker's runner
// (core.ImportRunner) so that it finishes without a worker, while showing its progress. The runner
// saves rows in batches, each with its checkpoint, so a worker that takes the same import's task
// meanwhile and couponctl never save a row twice: whichever saves a batch first goes on, the other
// stops at its next batch (couponctl then follows the import to its end). A couponctl that is
// killed or interrupted after the upload leaves the import queued or running with its saved rows
// and its task queued; a worker resumes it from the checkpoint (the sweeper queues it again if the
// task was lost). One killed during the upload leaves no import: it is discarded at once on an
// interrupt, and failed by the sweeper after an hour on SIGKILL, with no code imported.
func importFlags(fs *flag.FlagSet) action {
	list := fs.String("list", "", "the list's `id` (required)")
	merchant := fs.String("merchant", "", "the merchant's `id` (found from the list when left out)")
	format := fs.String("format", "", "read FILE as `csv` (a header row with a Code column) or txt (one code a line); default: txt for a .txt file, csv otherwise")
	asJSON := fs.Bool("json", false, "print the finished import as the admin API answers it")
	return func(ctx context.Context, c *cli, args []string) error {
		if len(args) != 1 {
			return usageError{msg: "import takes one FILE (- reads stdin)"}
		}
		listID, err := listFlag(*list)
		if err != nil {
			return err
		}
		merchantID, err := optionalMerchant(*merchant)
		if err != nil {
			return err
		}
		name := args[0]
		f := core.ImportFormat(*format)
		switch {
		case f == "" && strings.EqualFold(filepath.Ext(name), ".txt"):
			f = core.FormatText
		case f == "":
			f = core.FormatCSV
		case f != core.FormatCSV && f != core.FormatText:
			return usageError{msg: "--format must be csv or txt"}
		}
		file := c.stdin
		var size int64
		filename := ""
		if name != "-" {
			fh, err := os.Open(name)
			if err != nil {
				return err
			}
			defer fh.Close()
			if st, err := fh.Stat(); err == nil && st.Mode().IsRegular() {
				size = st.Size()
			}
			file, filename = fh, filepath.Base(name)
		}

		a, err := c.open(ctx)
		if err != nil {
			return err
		}
		defer a.Close()
		l, err := findList(ctx, a, merchantID, listID)
		if err != nil {
			return err
		}
		imp, err := c.upload(ctx, a, l, f, filename, file, size)
		if err != nil {
			return err
		}
		done, err := c.follow(ctx, a, imp)
		if err != nil {
			return err
		}
		if *asJSON {
			if err := json.NewEncoder(c.stdout).Encode(api.ImportJSON(done)); err != nil {
				return err
			}
		} else {
			writeImportReport(c.stdout, a.Config.AppURL, done)
		}
		if done.Status == core.ImportFailed {
			return fmt.Errorf("import %d failed: %s", done.Number, done.Error)
		}
		return nil
	}
}

// upload stores the file and queues its import, as the API's upload does, with the upload's
// progress.
func (c *cli) upload(ctx context.Context, a *app.Ctl, l core.List, f core.ImportFormat, filename string, file io.Reader, size int64) (core.Import, error) {
	bar := newProgress(c.stderr, c.tty, c.now, "upload")
	r := &countingReader{r: file, seen: func(n int64) {
		note := bytesText(n)
		if size > 0 {
			note += " of " + bytesText(size)
		}
		bar.Update(n, size, note)
	}}
	imp, err := a.Imports.Start(ctx, l.MerchantID, l.ID, f, filename, r, a.Config.MaxUploadBytes, importActor)
	if err != nil {
		bar.Stop()
		switch {
		case errors.Is(err, core.ErrUploadTooLarge):
			return core.Import{}, fmt.Errorf("the file is larger than MAX_UPLOAD_BYTES (%s); nothing was imported", bytesText(a.Config.MaxUploadBytes))
		case ctx.Err() != nil:
			return core.Import{}, errors.New("interrupted during the upload; nothing was imported")
		}
		return core.Import{}, err
	}
	bar.Finish(imp.SizeBytes, bytesText(imp.SizeBytes)+" stored")
	return imp, nil
}

// follow runs the queued import in this process with the worker's runner, then reads it until it
// has ended (a worker may have taken it over), showing its progress; it returns the ended import.
func (c *cli) follow(ctx context.Context, a *app.Ctl, imp core.Import) (core.Import, error) {
	bar := newProgress(c.stderr, c.tty, c.now, "import")
	show := func(i core.Import) {
		bar.Update(i.BytesDone, i.SizeBytes, numfmt.Thousands(i.LinesDone)+" lines read")
	}
	get := func(ctx context.Context) (core.Import, error) {
		return a.Imports.Get(ctx, imp.MerchantID, imp.ListID, imp.ID)
	}
	polling, stopPolling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(c.pollEvery)
		defer tick.Stop()
		for {
			select {
			case <-polling.Done():
				return
			case <-tick.C:
				if i, err := get(polling); err == nil {
					show(i)
				}
			}
		}
	})
	err := a.Importer.Run(ctx, imp.MerchantID, imp.ID)
	stopPolling()
	wg.Wait()
	if errors.Is(err, core.ErrImportMoved) {
		fmt.Fprintln(c.stderr, "import: a worker is running this import too; following it")
		err = nil
	}
	for err == nil {
		var i core.Import
		if i, err = get(ctx); err != nil {
			break
		}
		if i.Status == core.ImportSucceeded || i.Status == core.ImportFailed {
			bar.Finish(i.LinesDone, numfmt.Thousands(i.LinesDone)+" lines read")
			return i, nil
		}
		show(i) // a worker has it: wait for its end
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(c.pollEvery):
		}
	}
	bar.Stop()
	what := "stopped: " + err.Error()
	if ctx.Err() != nil {
		what = "interrupted"
	}
	return core.Import{}, fmt.Errorf("import %d %s; the rows read so far are saved, and the import stays queued for a worker, which resumes it from there; its report: %s",
		imp.Number, what, importAPIURL(a.Config.AppURL, imp))
}

// importAPIURL is where the admin API answers the import.
func importAPIURL(appURL string, i core.Import) string {
	return fmt.Sprintf("%s/api/v1/lists/%s/imports/%s", appURL, i.ListID, i.ID)
}

// writeImportReport writes an ended import's report for people.
func writeImportReport(w io.Writer, appURL string, i core.Import) {
	fmt.Fprintf(w, "import %d into list %s %s\n", i.Number, i.ListID, i.Status)
	if i.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", i.Error)
	}
	for _, row := range []struct {
		name string
		n    int64
	}{
		{"rows", i.Rows}, {"imported", i.Imported}, {"duplicates in the file", i.DuplicatesInFile},
		{"duplicates in the list", i.DuplicatesInList}, {"rejected (invalid)", i.Invalid}, {"codes in the list now", i.ListTotal},
	} {
		fmt.Fprintf(w, "  %-23s %s\n", row.name+":", numfmt.Thousands(row.n))
	}
	if len(i.Errors) > 0 {
		fmt.Fprintln(w, "rows not imported:")
		for _, e := range i.Errors[:min(len(i.Errors), shownRowErrors)] {
			fmt.Fprintf(w, "  line %d: %q %s\n", e.Line, e.Code, e.Reason)
		}
		if left := i.DuplicatesInFile + i.DuplicatesInList + i.Invalid - int64(min(len(i.Errors), shownRowErrors)); left > 0 {
			fmt.Fprintf(w, "  … %s more (the report lists the first %d)\n", numfmt.Thousands(left), core.MaxImportErrors)
		}
	}
	fmt.Fprintf(w, "report: %s/app/lists/%s/imports/%s\n", appURL, i.ListID, i.ID)
	fmt.Fprintf(w, "        %s (admin API)\n", importAPIURL(appURL, i))
}

// countingReader tells seen how many bytes were read so far.
type countingReader struct {
	r    io.Reader
	n    int64
	seen func(int64)
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	r.seen(r.n)
	return n, err
}

// exportFilters are the states export takes, as the API's ?state=.
var exportFilters = []core.ExportFilter{core.ExportAll, core.ExportDelivered, core.ExportUndelivered, core.ExportRedeemed}

// exportFlags is `couponctl export --list ID --state S`: the list's codes in that state as CSV on
// stdout, through the API's export (core.Codes.Export: one COPY streamed as PostgreSQL sends it, so
// memory stays flat however long the list), with the same header and columns.
func exportFlags(fs *flag.FlagSet) action {
	list := fs.String("list", "", "the list's `id` (required)")
	merchant := fs.String("merchant", "", "the merchant's `id` (found from the list when left out)")
	state := fs.String("state", string(core.ExportAll), "which codes: `all`, delivered, undelivered or redeemed, as the API's export")
	return func(ctx context.Context, c *cli, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		listID, err := listFlag(*list)
		if err != nil {
			return err
		}
		merchantID, err := optionalMerchant(*merchant)
		if err != nil {
			return err
		}
		filter := core.ExportFilter(*state)
		if !slices.Contains(exportFilters, filter) {
			return usageError{msg: "--state must be all, delivered, undelivered or redeemed"}
		}
		a, err := c.open(ctx)
		if err != nil {
			return err
		}
		defer a.Close()
		l, err := findList(ctx, a, merchantID, listID)
		if err != nil {
			return err
		}
		total := expectedRows(l.Counts, filter)
		bar := newProgress(c.stderr, c.tty, c.now, "export")
		w := &rowCounter{w: c.stdout, seen: func(rows int64) { bar.Update(rows, total, numfmt.Thousands(rows)+" codes") }}
		if err := a.Codes.Export(ctx, l.MerchantID, l.ID, filter, w); err != nil {
			bar.Stop()
			return err
		}
		bar.Finish(w.rows(), numfmt.Thousands(w.rows())+" codes")
		return nil
	}
}

// expectedRows is about how many codes an export of the list with filter writes, from the list's
// counts, for the progress bar.
func expectedRows(c core.Counts, filter core.ExportFilter) int64 {
	switch filter {
	case core.ExportDelivered:
		return c.Delivered + c.Redeemed
	case core.ExportUndelivered:
		return c.Available
	case core.ExportRedeemed:
		return c.Redeemed
	}
	return c.Total + c.Removed // the list's total leaves removed codes out; the export has them
}

// rowCounter passes CSV through to w and tells seen how many rows (lines after the header) went
// by: a field with a line break would count twice, which only moves the progress shown.
type rowCounter struct {
	w     io.Writer
	lines int64
	seen  func(int64)
}

func (r *rowCounter) Write(p []byte) (int, error) {
	n, err := r.w.Write(p)
	r.lines += int64(bytes.Count(p[:n], []byte{'\n'}))
	r.seen(r.rows())
	return n, err
}

// rows is how many lines after the header were written.
func (r *rowCounter) rows() int64 { return max(r.lines-1, 0) }
