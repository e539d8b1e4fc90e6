package store

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/coupongate/coupongate/core"
)

// ReadPriorHandOuts reads recipients' last hand-outs from a list in tx with the statements (and
// the plan settings) an allocation reads them with, for tests of their plans.
func ReadPriorHandOuts(ctx context.Context, tx pgx.Tx, merchantID, listID uuid.UUID, keys, campaigns []string, link bool) (map[core.RecipientCampaign]core.PriorHandOut, error) {
	b := &pgx.Batch{}
	b.Queue(genericPlans)
	queuePriorHandOuts(b, merchantID, listID, keys, campaigns, link)
	br := tx.SendBatch(ctx, b)
	prior := map[core.RecipientCampaign]core.PriorHandOut{}
	_, err := br.Exec()
	if err == nil {
		err = scanPriorHandOuts(br, prior)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return prior, err
}

// LockCodesAt reads and row-locks the codes at positions in tx with the statements (and the plan
// settings) an allocation locks them with, for tests of their plans.
func LockCodesAt(ctx context.Context, tx pgx.Tx, merchantID, listID uuid.UUID, positions []int64) (map[int64]*core.OfferedCode, error) {
	b := &pgx.Batch{}
	b.Queue(genericPlans)
	queueCodesAt(b, merchantID, listID, positions)
	br := tx.SendBatch(ctx, b)
	codes := map[int64]*core.OfferedCode{}
	_, err := br.Exec()
	if err == nil {
		_, err = scanOfferedCodes(br, codes)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return codes, err
}
