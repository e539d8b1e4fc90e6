package app

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/coupongate/coupongate/config"
)

func TestRedisOptions(t *testing.T) {
	t.Parallel()
	single, err := RedisOptions(config.Config{RedisURL: "redis://127.0.0.1:6379/3"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := single.MakeRedisClient().(*redis.Client); !ok {
		t.Fatalf("REDIS_URL gives %T, want a single-node client", single.MakeRedisClient())
	}
	cluster, err := RedisOptions(config.Config{RedisURL: "redis://ignored:1/0", RedisClusterAddrs: []string{"10.0.0.1:7000", "10.0.0.2:7000"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cluster.MakeRedisClient().(*redis.ClusterClient); !ok {
		t.Fatalf("REDIS_CLUSTER_ADDRS gives %T, want a cluster client", cluster.MakeRedisClient())
	}
	if _, err := RedisOptions(config.Config{RedisURL: "http://x"}); err == nil {
		t.Fatal("a non-redis URL was accepted")
	}
}
