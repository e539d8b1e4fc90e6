// The owner of a list found from the list's id alone, for operator tools.

package store

import (
	"context"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// MerchantOfList returns the merchant whose list has the id listID, or core.ErrListNotFound. It is
// for couponctl, which lets an operator name a list without its merchant: the query reads
// code_lists across merchants (on a schema distributed by merchant, every shard), unlike every
// query of the gateway and worker.
func (db *DB) MerchantOfList(ctx context.Context, listID uuid.UUID) (uuid.UUID, error) {
	var merchantID uuid.UUID
	if err := db.pool.QueryRow(ctx, `SELECT merchant_id FROM code_lists WHERE id = $1 LIMIT 1`, listID).Scan(&merchantID); err != nil {
		return uuid.Nil, notFound(err, core.ErrListNotFound)
	}
	return merchantID, nil
}
