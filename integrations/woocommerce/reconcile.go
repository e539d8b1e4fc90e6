package woocommerce

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// Reconciliation settings. WooCommerce never retries a webhook, so reconciliation is what makes
// a missed delivery count.
const (
	// ReconcileOverlap is how far before the last sync a reconciliation looks again.
	ReconcileOverlap = 5 * time.Minute
	// ReconcileFirstLookback is how far back the first reconciliation of a store looks.
	ReconcileFirstLookback = 24 * time.Hour
	reconcilePerPage       = 100
)

// ReconcileStore is what reconciliation needs from the database.
type ReconcileStore interface {
	GetConnection(ctx context.Context, merchantID, id uuid.UUID) (core.Connection, error)
	ActiveConnections(ctx context.Context, platform string, afterMerchant, afterID uuid.UUID, limit int) ([]core.Connection, error)
	SetSyncedAt(ctx context.Context, merchantID, connectionID uuid.UUID, at time.Time) error
	Credentials(ctx context.Context, merchantID, connectionID uuid.UUID) (core.Credentials, int64, error)
	RemoteWebhooks(ctx context.Context, merchantID, connectionID uuid.UUID) ([]string, error)
	MarkConnectionErrorAt(ctx context.Context, merchantID, connectionID uuid.UUID, version int64, reason string) error
}

// WebhookMaker creates a connection's webhooks (the Connector), for a store that has none.
type WebhookMaker interface {
	FinishConnect(ctx context.Context, merchantID, connectionID uuid.UUID) error
}

// ReconcileQueue queues one connection's reconciliation.
type ReconcileQueue interface {
	EnqueueReconcile(ctx context.Context, merchantID, connectionID uuid.UUID) error
}

// Reconciler pages through each store's orders modified since its last sync and feeds them
// through the same core path as deliveries; it also re-activates a webhook WooCommerce disabled
// after failed deliveries.
type Reconciler struct {
	store  ReconcileStore
	queue  ReconcileQueue
	orders OrderApplier
	log    *slog.Logger
	HTTP   *http.Client
	// Webhooks makes the webhooks of a store that has none (its creation failed, or was never
	// queued); optional.
	Webhooks WebhookMaker
	now      func() time.Time
}

// NewReconciler returns the reconciler.
func NewReconciler(store ReconcileStore, queue ReconcileQueue, orders OrderApplier, log *slog.Logger) *Reconciler {
	return &Reconciler{store: store, queue: queue, orders: orders, log: log, now: time.Now}
}

// ReconcileAll queues the reconciliation of every active WooCommerce connection.
func (r *Reconciler) ReconcileAll(ctx context.Context) error {
	return core.ForEachActiveConnection(ctx, r.store, Platform, func(c core.Connection) error {
		return r.queue.EnqueueReconcile(ctx, c.MerchantID, c.ID)
	})
}

// Reconcile fetches one store's orders modified since the last sync (less an overlap), applies
// each through core, re-activates disabled webhooks, and moves the sync mark.
func (r *Reconciler) Reconcile(ctx context.Context, merchantID, connectionID uuid.UUID) error {
	conn, err := r.store.GetConnection(ctx, merchantID, connectionID)
	if errors.Is(err, core.ErrConnectionNotFound) {
		return nil
	}
	if err != nil || conn.State != core.ConnectionActive {
		return err
	}
	creds, version, err := r.store.Credentials(ctx, merchantID, connectionID)
	if err != nil {
		return err
	}
	api := Store{SiteURL: conn.Shop, ConsumerKey: creds.ConsumerKey, ConsumerSecret: creds.ConsumerSecret, HTTP: r.HTTP}
	startedAt := r.now().UTC()
	since := startedAt.Add(-ReconcileFirstLookback)
	if conn.SyncedAt != nil {
		since = conn.SyncedAt.Add(-ReconcileOverlap)
	}
	// Page on the modification time rather than page numbers: an order modified during the run
	// moves to the end instead of shifting a page and being skipped. Orders seen in this run are
	// not applied twice; a second with more orders than a page falls back to the next page.
	seen := make(map[string]bool)
	applied, page := 0, 1
	for {
		orders, pages, err := api.Orders(ctx, since, page, reconcilePerPage)
		if err != nil {
			return r.refused(ctx, conn, version, err)
		}
		next, fresh := since, 0
		for _, raw := range orders {
			o, err := ParseOrder(raw)
			if err != nil {
				r.log.WarnContext(ctx, "woocommerce order skipped", "site", conn.Shop, "err", err)
				continue
			}
			if o.ModifiedAt != nil && o.ModifiedAt.After(next) {
				next = *o.ModifiedAt
			}
			if seen[o.ID] {
				continue
			}
			seen[o.ID] = true
			fresh++
			n, err := applyOrder(ctx, r.orders, merchantID, conn, o, "reconcile")
			if err != nil {
				return err
			}
			applied += n
		}
		if len(orders) < reconcilePerPage || (fresh == 0 && page >= pages) {
			break
		}
		if fresh > 0 && next.Add(-time.Second).After(since) {
			// modified_after is exclusive: step back a second so orders of the same second as
			// the last one are read again (and skipped as seen).
			since, page = next.Add(-time.Second), 1
		} else {
			page++ // a page of one second's orders, or nothing new: go on by page
		}
	}
	if err := r.reactivateWebhooks(ctx, conn, api); err != nil {
		return r.refused(ctx, conn, version, err)
	}
	if err := r.store.SetSyncedAt(ctx, merchantID, connectionID, startedAt); err != nil {
		return err
	}
	r.log.InfoContext(ctx, "woocommerce orders reconciled", "site", conn.Shop, "orders", len(seen), "events", applied)
	return nil
}

// reactivateWebhooks puts back to active a webhook WooCommerce disabled (or an admin paused).
func (r *Reconciler) reactivateWebhooks(ctx context.Context, conn core.Connection, api Store) error {
	ids, err := r.store.RemoteWebhooks(ctx, conn.MerchantID, conn.ID)
	if err != nil {
		return err
	}
	if len(ids) == 0 && r.Webhooks != nil {
		r.log.WarnContext(ctx, "woocommerce store has no webhooks; creating them", "site", conn.Shop)
		return r.Webhooks.FinishConnect(ctx, conn.MerchantID, conn.ID)
	}
	for _, s := range ids {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			continue
		}
		w, err := api.GetWebhook(ctx, id)
		if IsNotFound(err) {
			r.log.WarnContext(ctx, "a woocommerce webhook was deleted in the store; connect the store again to recreate it",
				"site", conn.Shop, "webhook_id", id)
			continue
		}
		if err != nil {
			return err
		}
		if w.Status == "active" {
			continue
		}
		if _, err := api.SetWebhookStatus(ctx, id, "active"); err != nil {
			return err
		}
		r.log.WarnContext(ctx, "woocommerce webhook re-activated", "site", conn.Shop, "webhook_id", id, "was", w.Status)
	}
	return nil
}

// refused marks the connection when the store refuses the keys or its address is refused (nothing
// works until the merchant connects it again) and returns other errors for the task to retry.
func (r *Reconciler) refused(ctx context.Context, conn core.Connection, version int64, err error) error {
	if reason, ok := AddressRefused(err); ok {
		return r.store.MarkConnectionErrorAt(ctx, conn.MerchantID, conn.ID, version, reason)
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) && (apiErr.Status == http.StatusUnauthorized || apiErr.Status == http.StatusForbidden) {
		return r.store.MarkConnectionErrorAt(ctx, conn.MerchantID, conn.ID, version,
			"the store refused the consumer key ("+apiErr.Code+"); connect the store again")
	}
	return err
}
