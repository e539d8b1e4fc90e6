// Package pgfailover holds the PostgreSQL failover tests, run by `make test-ha` (build tag ha):
// a pg_auto_failover formation of a monitor, a primary and a synchronous standby started on local
// ports, the gateway and the worker on a DATABASE_URL naming both nodes, and the primary failed
// over, killed or restarted under load. The package has no code of its own beyond its tests.
package pgfailover
