package core

import (
	"context"
	"errors"
	"log/slog"

	"github.com/google/uuid"
)

// ImportRunner runs imports in the worker. (Being written: see the import pipeline.)
type ImportRunner struct {
	lists ListStore
	log   *slog.Logger
}

// NewImportRunner returns the import runner.
func NewImportRunner(lists ListStore, _ any, log *slog.Logger) *ImportRunner {
	return &ImportRunner{lists: lists, log: log}
}

// Run runs one import.
func (r *ImportRunner) Run(ctx context.Context, merchantID, importID uuid.UUID) error {
	return errors.New("import runner not written yet")
}

// Sweeper does periodic upkeep.
type Sweeper struct {
	log *slog.Logger
}

// NewSweeper returns the sweeper.
func NewSweeper(_ any, _ TaskQueue, log *slog.Logger) *Sweeper { return &Sweeper{log: log} }

// Sweep runs one round of upkeep.
func (s *Sweeper) Sweep(ctx context.Context) error { return nil }
