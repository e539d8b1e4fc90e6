package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Waits between tries while Redis or PostgreSQL does not answer: the first retry after retryFirst,
// each next one twice as long, up to retryMax.
const (
	retryFirst    = 250 * time.Millisecond
	retryMax      = 10 * time.Second
	redisPingTime = 3 * time.Second
)

// AwaitRedis returns once Redis answers a PING, or with ctx's error when ctx ends first. While
// Redis does not answer it says so once, at warn ("redis unreachable at ADDR; retrying"), and
// retries quietly (each failure at debug) with a growing wait; when Redis answers after that it
// says so at info. The worker waits for it before it starts; the gateway runs it beside serving.
func (b *Base) AwaitRedis(ctx context.Context) error {
	return awaitDependency(ctx, "redis", RedisPing{b.Redis}.Ping, RedisAddr(b.Config.RedisURL, b.Config.RedisClusterAddrs), b.Log,
		redisPingTime, retryFirst, retryMax, sleepCtx)
}

// permanent marks an error of a dependency's ping that waiting will not mend (a wrong password, a
// database that does not exist): awaitDependency returns it at once.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// awaitDependency asks ping until it answers, as AwaitRedis describes, for the dependency named
// what at addr: each try bounded by tryTime, sleep waiting between tries (returning ctx's error
// when ctx ends), the wait growing from first to most. A ping error marked permanent ends it.
func awaitDependency(ctx context.Context, what string, ping func(context.Context) error, addr string, log *slog.Logger,
	tryTime, first, most time.Duration, sleep func(context.Context, time.Duration) error) error {
	wait := first
	for try := 1; ; try++ {
		pingCtx, cancel := context.WithTimeout(ctx, tryTime)
		err := ping(pingCtx)
		cancel()
		var p permanent
		switch {
		case err == nil && try == 1:
			return nil
		case err == nil:
			log.InfoContext(ctx, what+" reachable at "+addr, "tries", try)
			return nil
		case errors.As(err, &p):
			return p.error
		case ctx.Err() != nil:
			return ctx.Err()
		case try == 1:
			log.WarnContext(ctx, fmt.Sprintf("%s unreachable at %s; retrying", what, addr), "err", err)
		default:
			log.DebugContext(ctx, what+" still unreachable", "addr", addr, "tries", try, "retry_in", wait.String(), "err", err)
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
		wait = min(2*wait, most)
	}
}

// sleepCtx waits d, or returns ctx's error when ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RedisAddr names the configured Redis for logs: the cluster's addresses, or REDIS_URL's host
// (never its password).
func RedisAddr(redisURL string, clusterAddrs []string) string {
	if len(clusterAddrs) > 0 {
		return strings.Join(clusterAddrs, ",")
	}
	u, err := url.Parse(redisURL)
	if err != nil || u.Host == "" {
		return "(REDIS_URL)"
	}
	return u.Host
}

// redisLogger writes go-redis's own messages (redis.SetLogger) through slog rather than as plain
// text beside the JSON lines: failures to reach Redis at debug, since the process reports an
// unreachable Redis itself (AwaitRedis, health checks, failed requests and tasks), anything else
// that went wrong at warn, and the rest at debug.
type redisLogger struct{ log *slog.Logger }

// Printf implements go-redis's logging interface.
func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, v...))
	level := slog.LevelDebug
	if lower := strings.ToLower(msg); !unreachable(lower) &&
		(strings.Contains(lower, "fail") || strings.Contains(lower, "error") || strings.Contains(lower, "panic")) {
		level = slog.LevelWarn
	}
	l.log.Log(ctx, level, msg, "component", "go-redis")
}

// unreachable says whether a go-redis message is about not reaching the server.
func unreachable(msg string) bool {
	for _, s := range []string{"dial", "connection refused", "i/o timeout", "no such host", "connection reset", "broken pipe", "eof"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
