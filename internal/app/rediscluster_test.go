package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestLostNode: the errors after which the cluster client reloads its slot map (a node that does
// not answer, a cluster between masters) and those after which it must not (a working node's
// answers, a caller that gave up).
func TestLostNode(t *testing.T) {
	t.Parallel()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("connect: %w", syscall.ECONNREFUSED)}
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", refused, true},
		{"wrapped", fmt.Errorf("raise webhook mark: %w", refused), true},
		{"closed midway", io.EOF, true},
		{"reset", syscall.ECONNRESET, true},
		{"cluster down", replyErr("CLUSTERDOWN The cluster is down"), true},
		{"no error", nil, false},
		{"no such key", redis.Nil, false},
		{"cancelled", context.Canceled, false},
		{"a script's error", replyErr("ERR user_script:1: bad"), false},
		{"moved", replyErr("MOVED 3999 127.0.0.1:6381"), false},
		{"other", errors.New("decode: bad payload"), false},
	} {
		if got := lostNode(c.err); got != c.want {
			t.Errorf("%s: lostNode(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

// TestClusterOptMakesClusterClients: REDIS_CLUSTER_ADDRS gives cluster clients with the hook
// that reloads the slot map.
func TestClusterOptMakesClusterClients(t *testing.T) {
	t.Parallel()
	c, ok := ClusterOpt{Addrs: []string{"127.0.0.1:1"}}.MakeRedisClient().(*redis.ClusterClient)
	if !ok {
		t.Fatal("not a cluster client")
	}
	defer c.Close()
	if got := c.Options().ClusterStateReloadInterval; got != clusterStateReload {
		t.Fatalf("slot map reloaded every %s, want %s", got, clusterStateReload)
	}
}

// replyErr is an error reply of a Redis server, as go-redis gives it (a redis.Error).
type replyErr string

func (e replyErr) Error() string { return string(e) }

// RedisError implements redis.Error.
func (replyErr) RedisError() {}
