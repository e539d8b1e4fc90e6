package app

// couponctl's wiring: what its lists, import and export commands call.

import (
	"context"
	"log/slog"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/core"
)

// Ctl is couponctl wired: lists and codes read as the API reads them, an import stored as an
// upload stores it (Imports) and run in the process as the worker runs it (Importer).
type Ctl struct {
	*Base
	Lists    *core.Lists
	Codes    *core.Codes
	Imports  *core.Imports
	Importer *core.ImportRunner
}

// OpenCtl opens the Base (refusing a schema that is behind) and wires couponctl on it.
func OpenCtl(ctx context.Context, cfg config.Config, log *slog.Logger) (*Ctl, error) {
	b, err := OpenBase(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	alloc := b.allocator()
	deliveries, _ := b.deliveries(alloc)
	c := &Ctl{Base: b,
		Lists:    core.NewLists(b.DB),
		Codes:    core.NewCodes(b.DB, b.DB),
		Imports:  core.NewImports(b.DB, b.DB, b.Queue),
		Importer: core.NewImportRunner(b.DB, b.DB, b.Log),
	}
	// Pushes and waiting deliveries follow the codes an import adds, as in the worker.
	c.Importer.Listener = core.Listeners{b.connections(), deliveries}
	return c, nil
}
