package redisstore

import (
	"context"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

var _ core.PositionRange = (*Cursor)(nil)

// Range implements core.PositionRange: one INCRBY reserves n positions of the list's cursor for a
// bulk send's chunk, so the allocations that draw positions one by one (Next) start after them.
func (c *Cursor) Range(ctx context.Context, listID uuid.UUID, n int64) (int64, error) {
	end, err := c.rdb.IncrBy(ctx, cursorKey(listID), n).Result()
	if err != nil {
		return 0, err
	}
	return end - n + 1, nil
}
