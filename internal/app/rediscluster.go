package app

// This file builds the Redis Cluster client (REDIS_CLUSTER_ADDRS) so that it follows a failover
// at once. go-redis sends a slot's commands to the master its map names, and moves on only on a
// MOVED answer or when the map is reloaded, by default once a minute. A master that died answers
// nothing, so no MOVED comes: for up to a minute after its replica took over (about four seconds
// with a node timeout of two), every command for its slots failed. The client here reloads its
// map as soon as a command fails for want of a node, and every ten seconds in any case.

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// clusterStateReload bounds how stale the cluster client's slot map can get without an error
// (go-redis's default is a minute).
const clusterStateReload = 10 * time.Second

// ClusterOpt is asynq's connection option for a Redis Cluster: the nodes to start from (the
// client finds the others). Every client asynq, the queue and the app make from it reloads its
// slot map when a command fails because a node is gone or the cluster is failing over.
type ClusterOpt struct {
	Addrs []string
}

var _ asynq.RedisConnOpt = ClusterOpt{}

// MakeRedisClient implements asynq.RedisConnOpt: a *redis.ClusterClient.
func (o ClusterOpt) MakeRedisClient() any {
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: o.Addrs, ClusterStateReloadInterval: clusterStateReload})
	c.AddHook(reloadOnLostNode{c})
	return c
}

// reloadOnLostNode asks the cluster client to reload its slot map (in the background, coalesced)
// when a command or pipeline failed because a node did not answer or the cluster said it is
// down: after a failover the map names a master that is gone.
type reloadOnLostNode struct{ c *redis.ClusterClient }

// DialHook implements redis.Hook.
func (h reloadOnLostNode) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (h reloadOnLostNode) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if lostNode(err) {
			h.c.ReloadState(ctx)
		}
		return err
	}
}

// ProcessPipelineHook implements redis.Hook.
func (h reloadOnLostNode) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			if lostNode(cmd.Err()) {
				h.c.ReloadState(ctx)
				break
			}
		}
		return err
	}
}

// lostNode says whether err means a node is gone or the cluster is between masters: a network
// error (refused, reset, timed out, closed midway) or CLUSTERDOWN. Answers of a working node
// (redis.Nil, a script's error, MOVED, which go-redis follows itself) and a cancelled caller do
// not.
func lostNode(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, redis.Nil) {
		return false
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		strings.HasPrefix(err.Error(), "CLUSTERDOWN")
}
