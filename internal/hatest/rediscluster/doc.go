// Package rediscluster holds the tests that run Coupongate on a Redis Cluster of its own: three
// masters with a replica each, started by the test on free local ports (redis-server
// --cluster-enabled yes, joined with redis-cli --cluster create). They run the import, allocation,
// webhook and message journeys on it, and again with a master killed mid-run so that its replica
// takes over. Their files carry the build tag ha: `make test-ha` runs them, `make test` does not.
package rediscluster
