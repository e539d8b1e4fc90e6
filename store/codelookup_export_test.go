package store

import (
	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// FindCodesInOneStatement runs one look-up statement for the codes, each of its merchant, as
// FindCode's batching would (for tests of every statement shape).
func FindCodesInOneStatement(db *DB, merchants []uuid.UUID, codes []string) ([]core.FoundCode, []bool, error) {
	batch := make([]*codeLookup, len(codes))
	for i := range codes {
		batch[i] = &codeLookup{merchantID: merchants[i], code: codes[i], done: make(chan struct{}, 1)}
	}
	db.runLookups(batch)
	found, ok := make([]core.FoundCode, len(codes)), make([]bool, len(codes))
	for i, l := range batch {
		if l.err != nil {
			return nil, nil, l.err
		}
		found[i], ok[i] = l.found, l.ok
	}
	return found, ok, nil
}
