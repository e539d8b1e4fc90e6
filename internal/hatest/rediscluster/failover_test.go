//go:build ha

package rediscluster

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/worker"
)

// TestJourneysThroughFailover: the journeys of TestJourneysOnCluster, with one master killed
// (SIGKILL) while allocations and webhook deliveries are in flight, so that its replica takes
// over. The master chosen holds the merchant's webhook queue and webhook mark and the allocation
// list's cursor. Afterwards nothing acknowledged is lost: every 2xx allocation is in PostgreSQL
// with its code and no code went twice, every acknowledged delivery is applied once (each code
// used once), every recipient of the bulk email got one message, the import is exact; every
// answer during the failover was a 2xx or a 503 dependency_unavailable with Retry-After. The test
// logs how long after the kill the first requests succeeded again, when the app's own Redis
// client could write to the failed master's slots again, and when a delivery received after the
// kill was applied.
func TestJourneysThroughFailover(t *testing.T) {
	c := StartCluster(t, 3, 1)
	var victim, heir *Node
	s := startStack(t, c, func(m uuid.UUID) bool {
		queue, replica := c.MasterOf("asynq:{" + worker.WebhookQueue(m) + "}:pending")
		mark, _ := c.MasterOf("cg:webhooks:{" + m.String() + "}")
		victim, heir = queue, replica
		return queue == mark
	})
	cursorKey := func(list string) string { return "cg:cursor:{" + list + "}" }
	var (
		mu        sync.Mutex
		killAt    time.Time
		servedAt  time.Time
		redisBack time.Time
		probeErr  error
		allocList string
	)
	probeDone := make(chan struct{})
	midway := func() {
		mu.Lock()
		killAt = time.Now()
		mu.Unlock()
		c.Kill(victim)
		// The app's own cluster client writes to the cursor's slot until it can again.
		go func() {
			defer close(probeDone)
			for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				err := s.App.Redis.IncrBy(ctx, cursorKey(allocList), 0).Err()
				cancel()
				mu.Lock()
				probeErr = err
				if err == nil {
					redisBack = time.Now()
					mu.Unlock()
					return
				}
				mu.Unlock()
			}
		}()
		at := c.WaitServed(time.Minute)
		mu.Lock()
		servedAt = at
		mu.Unlock()
	}
	j := runJourneys(t, s, func(list string) bool {
		m, _ := c.MasterOf(cursorKey(list))
		allocList = list
		return m == victim
	}, midway)
	<-probeDone

	if role := heir.Role(); role != "master" {
		t.Fatalf("the killed master's replica on %d is %q, want master", heir.Port, role)
	}
	if redisBack.IsZero() {
		t.Fatalf("the app's Redis client could not write to the failed master's slots within 2 minutes: %v", probeErr)
	}
	// The client reloads its slot map when a command finds no node (app.ClusterOpt); go-redis
	// alone would wait for its periodic reload, up to a minute.
	if lag := redisBack.Sub(servedAt); lag > 5*time.Second {
		t.Errorf("the app's Redis client wrote to the failed slots %s after the cluster served them again, want at most 5 s", lag.Round(time.Millisecond))
	}

	// The figures: from the kill to the first 2xx of a request sent after it, per kind; the
	// longest time without any 2xx; the answers in flight at the kill and during the failover.
	answers := j.ledger.answers
	firstOK := map[string]time.Duration{}
	var okDone []time.Time
	inFlight, during, unavailable := 0, 0, map[string]int{}
	var slowest time.Duration
	for _, a := range answers {
		if a.status/100 == 2 {
			okDone = append(okDone, a.done)
			if !a.sent.Before(killAt) {
				if d, ok := firstOK[a.kind]; !ok || a.done.Sub(killAt) < d {
					firstOK[a.kind] = a.done.Sub(killAt)
				}
			}
		}
		if a.status == http.StatusServiceUnavailable {
			unavailable[a.kind]++
		}
		if a.sent.Before(killAt) && a.done.After(killAt) {
			inFlight++
		}
		if !a.done.Before(killAt) && !a.sent.After(servedAt) {
			during++
			slowest = max(slowest, a.done.Sub(a.sent))
		}
	}
	slices.SortFunc(okDone, func(a, b time.Time) int { return a.Compare(b) })
	var gap time.Duration
	for i := 1; i < len(okDone); i++ {
		if okDone[i].After(killAt) {
			from := okDone[i-1]
			if from.Before(killAt) {
				from = killAt
			}
			gap = max(gap, okDone[i].Sub(from))
		}
	}
	for _, kind := range []string{"allocation", "shopify", "woocommerce"} {
		if _, ok := firstOK[kind]; !ok {
			t.Fatalf("no %s sent after the kill succeeded", kind)
		}
	}
	var appliedAfter time.Duration
	var firstApplied *time.Time
	if err := s.App.DB.Pool().QueryRow(context.Background(), `SELECT min(processed_at) FROM webhook_deliveries
		WHERE merchant_id = $1 AND received_at > $2`, s.merchant, killAt).Scan(&firstApplied); err != nil || firstApplied == nil {
		t.Fatalf("no delivery received after the kill was applied: %v", err)
	}
	appliedAfter = firstApplied.Sub(killAt)
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	t.Logf("master on %d killed (it held the merchant's webhook queue %s, its webhook mark and the allocation list's cursor); its replica on %d took over",
		victim.Port, worker.WebhookQueue(s.merchant), heir.Port)
	t.Logf("recovery: the cluster served every slot again after %s (cluster_state:ok on every node, the replica promoted); the app's Redis client wrote to the failed slots again after %s",
		ms(servedAt.Sub(killAt)), ms(redisBack.Sub(killAt)))
	t.Logf("recovery: first 2xx of a request sent after the kill: allocation %s, Shopify delivery %s, WooCommerce delivery %s; longest time without any 2xx after the kill %s",
		ms(firstOK["allocation"]), ms(firstOK["shopify"]), ms(firstOK["woocommerce"]), ms(gap))
	t.Logf("recovery: the first delivery received after the kill was applied %s after it", ms(appliedAfter))
	t.Logf("during the failover: %d requests in flight at the kill, %d answered between the kill and the slots served again (slowest %s); 503 dependency_unavailable: %v; answers by status: %v",
		inFlight, during, ms(slowest), unavailable, j.ledger.statuses())
	t.Logf("checked: %d codes imported beside the load; %d allocations by %d clients, every one acknowledged in PostgreSQL with its own code; %d Shopify and %d WooCommerce paid orders (each delivery twice), every code used once; %d emails, one per recipient",
		importCodes, allocations, allocClients, shopifyOrders, wooOrders, emails)
}
