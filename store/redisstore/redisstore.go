// Package redisstore implements the core ports that live in Redis: the per-list allocation cursor
// and the failed-validation rate limiter. Keys carry the list or merchant id in a hash tag
// ({...}), so each key lands whole on one node of a Redis cluster.
package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/coupongate/coupongate/core"
)

// Cursor is the per-list allocation cursor (core.AllocationCursor) on Redis INCR.
type Cursor struct {
	rdb redis.UniversalClient
}

var _ core.AllocationCursor = (*Cursor)(nil)

// NewCursor returns the cursor on rdb.
func NewCursor(rdb redis.UniversalClient) *Cursor { return &Cursor{rdb: rdb} }

func cursorKey(listID uuid.UUID) string { return "cg:cursor:{" + listID.String() + "}" }

// Next implements core.AllocationCursor.
func (c *Cursor) Next(ctx context.Context, listID uuid.UUID) (int64, error) {
	return c.rdb.Incr(ctx, cursorKey(listID)).Result()
}

var atLeast = redis.NewScript(`
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 0`)

var atMost = redis.NewScript(`
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v > tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 0`)

// AtLeast implements core.AllocationCursor.
func (c *Cursor) AtLeast(ctx context.Context, listID uuid.UUID, pos int64) error {
	return atLeast.Run(ctx, c.rdb, []string{cursorKey(listID)}, pos).Err()
}

// AtMost implements core.AllocationCursor.
func (c *Cursor) AtMost(ctx context.Context, listID uuid.UUID, pos int64) error {
	return atMost.Run(ctx, c.rdb, []string{cursorKey(listID)}, pos).Err()
}

// FailureLimiter counts failed storefront validations per storefront key and client address in a
// fixed one-minute window (core.FailureLimiter).
type FailureLimiter struct {
	rdb    redis.UniversalClient
	limit  int64
	window time.Duration
}

// NewFailureLimiter allows limit failures per window.
func NewFailureLimiter(rdb redis.UniversalClient, limit int, window time.Duration) *FailureLimiter {
	return &FailureLimiter{rdb: rdb, limit: int64(limit), window: window}
}

func limiterKey(merchantID uuid.UUID, client string) string {
	return fmt.Sprintf("cg:vfail:{%s}:%s", merchantID, client)
}

// Blocked reports whether the client used up its failures, and for how long it stays blocked.
func (f *FailureLimiter) Blocked(ctx context.Context, merchantID uuid.UUID, client string) (time.Duration, error) {
	key := limiterKey(merchantID, client)
	pipe := f.rdb.Pipeline()
	get := pipe.Get(ctx, key)
	ttl := pipe.PTTL(ctx, key)
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return 0, err
	}
	n, _ := get.Int64()
	if n < f.limit {
		return 0, nil
	}
	wait := ttl.Val()
	if wait <= 0 {
		wait = f.window
	}
	return wait, nil
}

var countFailure = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`)

// Fail records one failed validation.
func (f *FailureLimiter) Fail(ctx context.Context, merchantID uuid.UUID, client string) error {
	return countFailure.Run(ctx, f.rdb, []string{limiterKey(merchantID, client)}, f.window.Milliseconds()).Err()
}
