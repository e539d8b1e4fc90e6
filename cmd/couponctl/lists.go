// couponctl lists: a merchant's code lists with their counts.

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/coupongate/coupongate/api"
	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/numfmt"
)

// listsFlags is `couponctl lists`: every list of the merchant, oldest first, read a page at a
// time; a table, or with --json {"items": [...]} holding each list as GET /api/v1/lists/{id}
// answers it.
func listsFlags(fs *flag.FlagSet) action {
	merchant := fs.String("merchant", "", "the merchant's `id` (required)")
	asJSON := fs.Bool("json", false, "print JSON: {\"items\": [list, …]}, each list as the admin API answers it")
	return func(ctx context.Context, c *cli, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		id, err := merchantFlag(*merchant)
		if err != nil {
			return err
		}
		a, err := c.open(ctx)
		if err != nil {
			return err
		}
		defer a.Close()
		if _, err := a.DB.GetMerchant(ctx, id); err != nil {
			if core.IsKind(err, core.KindUnauthorized) || errors.Is(err, core.ErrMerchantNotFound) {
				return fmt.Errorf("no merchant has the id %s", id)
			}
			return err
		}
		var table *tabwriter.Writer
		if *asJSON {
			fmt.Fprint(c.stdout, `{"items":[`)
		} else {
			table = tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(table, "ID\tNAME\tKIND\tSTATUS\tTOTAL\tAVAILABLE\tDELIVERED\tREDEEMED\tREMOVED")
		}
		page, n := core.Page{Limit: 500}, 0
		for {
			lists, next, err := a.Lists.List(ctx, id, page)
			if err != nil {
				return err
			}
			for _, l := range lists {
				if *asJSON {
					b, err := json.Marshal(api.ListJSON(l))
					if err != nil {
						return err
					}
					if n > 0 {
						fmt.Fprint(c.stdout, ",")
					}
					if _, err := c.stdout.Write(b); err != nil {
						return err
					}
				} else {
					fmt.Fprintf(table, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.ID, tableText(l.Name), l.Kind,
						l.Status(c.now()), numfmt.Thousands(l.Counts.Total), numfmt.Thousands(l.Counts.Available), numfmt.Thousands(l.Counts.Delivered),
						numfmt.Thousands(l.Counts.Redeemed), numfmt.Thousands(l.Counts.Removed))
				}
				n++
			}
			if next == "" {
				break
			}
			page.Cursor = next
		}
		if *asJSON {
			_, err := fmt.Fprintln(c.stdout, "]}")
			return err
		}
		if err := table.Flush(); err != nil {
			return err
		}
		if n == 0 {
			fmt.Fprintln(c.stdout, "(no lists)")
		}
		return nil
	}
}

// tableText keeps a name on one table row: tabs and line breaks become spaces, and a long name is
// cut to 40 characters.
func tableText(s string) string {
	r := []rune(s)
	for i, c := range r {
		if c == '\t' || c == '\n' || c == '\r' {
			r[i] = ' '
		}
	}
	if len(r) > 40 {
		return string(r[:39]) + "…"
	}
	return string(r)
}
