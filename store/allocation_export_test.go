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
