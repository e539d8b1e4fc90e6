package shopify

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/Khan/genqlient/graphql"
	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/shopify/admin"
)

// Reconciliation settings.
const (
	// ReconcileOverlap is how far before the last sync a reconciliation looks again, so an order
	// updated while the previous page was read is not missed (core counts it once anyway).
	ReconcileOverlap = 5 * time.Minute
	// ReconcileFirstLookback is how far back the first reconciliation of a shop looks.
	ReconcileFirstLookback = 24 * time.Hour
	// reconcilePage is the orders fetched per call.
	reconcilePage = 50
	// orderDiscountsFirst is the discount applications read with each order (orders.graphql);
	// Shopify takes at most 5 discount codes on an order, and the rest are read with
	// OrderDiscountApplications.
	orderDiscountsFirst = 5
	// ordersCost is what one orders page requests: 2 + 50 nodes of a few objects and a
	// connection of orderDiscountsFirst applications each.
	ordersCost = 2 + reconcilePage*(3+2+orderDiscountsFirst)
	// discountsPage and discountsCost are the discount applications per OrderDiscountApplications
	// call and what it requests.
	discountsPage = 50
	discountsCost = 1 + 2 + discountsPage
)

// ReconcileStore is what reconciliation needs from the database.
type ReconcileStore interface {
	GetConnection(ctx context.Context, merchantID, id uuid.UUID) (core.Connection, error)
	// ActiveConnections pages through the platform's active connections across merchants.
	ActiveConnections(ctx context.Context, platform string, afterMerchant, afterID uuid.UUID, limit int) ([]core.Connection, error)
	SetSyncedAt(ctx context.Context, merchantID, connectionID uuid.UUID, at time.Time) error
	// MarkConnectionError moves an active connection to state error with the reason.
	MarkConnectionError(ctx context.Context, merchantID, connectionID uuid.UUID, reason string) error
	CredentialStore
	ManualDiscountStore
}

// ReconcileQueue queues one connection's reconciliation.
type ReconcileQueue interface {
	EnqueueReconcile(ctx context.Context, merchantID, connectionID uuid.UUID) error
}

// Reconciler asks each shop for the orders updated since its last sync and feeds them through
// the same core order path as webhooks, so a webhook Shopify gave up on (8 tries in 4 hours)
// still counts, and counts once.
type Reconciler struct {
	app    App
	store  ReconcileStore
	queue  ReconcileQueue
	orders OrderApplier
	manual *core.ManualDiscounts
	tokens *Tokens
	log    *slog.Logger
	now    func() time.Time
}

// NewReconciler returns the reconciler.
func NewReconciler(app App, store ReconcileStore, queue ReconcileQueue, orders OrderApplier, log *slog.Logger) *Reconciler {
	return &Reconciler{app: app, store: store, queue: queue, orders: orders, manual: core.NewManualDiscounts(store, store),
		tokens: NewTokens(app, store), log: log, now: time.Now}
}

// ReconcileAll queues the reconciliation of every active Shopify connection.
func (r *Reconciler) ReconcileAll(ctx context.Context) error {
	return core.ForEachActiveConnection(ctx, r.store, Platform, func(c core.Connection) error {
		return r.queue.EnqueueReconcile(ctx, c.MerchantID, c.ID)
	})
}

// Reconcile fetches the shop's orders updated since the last sync (less an overlap), applies
// each through core, and moves the sync mark to the newest order seen.
func (r *Reconciler) Reconcile(ctx context.Context, merchantID, connectionID uuid.UUID) error {
	conn, err := r.store.GetConnection(ctx, merchantID, connectionID)
	if errors.Is(err, core.ErrConnectionNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if conn.State != core.ConnectionActive {
		return nil
	}
	startedAt := r.now().UTC()
	since := startedAt.Add(-ReconcileFirstLookback)
	if conn.SyncedAt != nil {
		since = conn.SyncedAt.Add(-ReconcileOverlap)
	}
	caller := newShopCaller(r.app, r.tokens, merchantID, connectionID, conn.Shop)
	query := "updated_at:>'" + since.Format(time.RFC3339) + "'"
	var after *string
	applied, seen := 0, 0
	for {
		var resp *admin.OrdersResponse
		err := caller.call(ctx, ordersCost, func(c graphql.Client) error {
			var err error
			resp, err = admin.Orders(ctx, c, reconcilePage, after, &query)
			return err
		})
		if errors.Is(err, ErrNoCredentials) || errors.Is(err, ErrGrantRefused) {
			r.log.WarnContext(ctx, "reconciliation stopped: no access to the shop", "shop", conn.Shop, "err", err)
			return r.store.MarkConnectionError(ctx, merchantID, connectionID, "Shopify refused the app's access token; install the app again")
		}
		if err != nil {
			return err
		}
		if resp.Orders == nil {
			break
		}
		for _, o := range resp.Orders.Nodes {
			if o == nil {
				continue
			}
			seen++
			n, err := r.apply(ctx, caller, merchantID, conn.Shop, o)
			if err != nil {
				return err
			}
			applied += n
		}
		if resp.Orders.PageInfo == nil || !resp.Orders.PageInfo.HasNextPage || resp.Orders.PageInfo.EndCursor == "" {
			break
		}
		cursor := resp.Orders.PageInfo.EndCursor
		after = &cursor
	}
	// Orders updated after the query started are read next time (the overlap covers clocks).
	if err := r.store.SetSyncedAt(ctx, merchantID, connectionID, startedAt); err != nil {
		return err
	}
	r.log.InfoContext(ctx, "shopify orders reconciled", "shop", conn.Shop, "since", since, "orders", seen, "events", applied)
	return nil
}

// apply turns one GraphQL order into core order events, as its webhook would have: the codes of
// its discount code applications are applied, and the titles of its manual discounts recorded
// (never redeemed).
func (r *Reconciler) apply(ctx context.Context, caller *shopCaller, merchantID uuid.UUID, shop string, o *admin.OrdersOrdersOrderConnectionNodesOrder) (int, error) {
	if o.DiscountApplications == nil {
		return 0, nil
	}
	page := o.DiscountApplications.DiscountApplicationPage
	codes, manual, err := r.orderDiscounts(ctx, caller, o.Id, page)
	if err != nil {
		return 0, err
	}
	if len(codes) == 0 && len(manual) == 0 {
		return 0, nil
	}
	orderID := o.LegacyResourceId
	if orderID == "" {
		orderID = o.Id[strings.LastIndex(o.Id, "/")+1:]
	}
	var customer core.Recipient
	if o.Customer != nil {
		customer.Email = o.Customer.Email
	}
	w := OrderWebhook{Topic: "reconcile", OrderID: orderID, Codes: codes, ManualDiscountTitles: manual, Customer: customer,
		Statuses: OrderStatuses(strings.ToLower(string(o.DisplayFinancialStatus)), o.CancelledAt != nil)}
	n := 0
	if len(w.Codes) > 0 {
		for _, ev := range w.Events(shop) {
			ev.Actor = Platform + ":reconcile"
			if _, err := r.orders.ApplyOrder(ctx, merchantID, ev); err != nil {
				var ce *core.Error
				if errors.As(err, &ce) && ce.Kind == core.KindInvalid {
					r.log.WarnContext(ctx, "reconciled order refused", "shop", shop, "order_id", orderID, "err", err)
					continue
				}
				return n, err
			}
			n++
		}
	}
	if err := recordManualDiscounts(ctx, r.manual, r.log, merchantID, shop, w); err != nil {
		return n, err
	}
	return n, nil
}

// orderDiscounts reads an order's discount applications from the first page the orders query
// gave and, when there are more, the following pages: the codes of its discount code
// applications, and the titles of its manual discounts that are not one of those codes.
func (r *Reconciler) orderDiscounts(ctx context.Context, caller *shopCaller, orderGID string, page admin.DiscountApplicationPage) (codes, manual []string, err error) {
	var titles []string
	for {
		for _, a := range page.Nodes {
			switch a := a.(type) {
			case *admin.DiscountApplicationPageNodesDiscountCodeApplication:
				if c := strings.TrimSpace(a.Code); c != "" && !slices.Contains(codes, c) {
					codes = append(codes, c)
				}
			case *admin.DiscountApplicationPageNodesManualDiscountApplication:
				titles = append(titles, a.Title)
			}
		}
		if page.PageInfo == nil || !page.PageInfo.HasNextPage || page.PageInfo.EndCursor == "" {
			break
		}
		after := page.PageInfo.EndCursor
		var resp *admin.OrderDiscountApplicationsResponse
		err := caller.call(ctx, discountsCost, func(c graphql.Client) error {
			var err error
			resp, err = admin.OrderDiscountApplications(ctx, c, orderGID, discountsPage, &after)
			return err
		})
		if err != nil {
			return nil, nil, err
		}
		if resp.Order == nil || resp.Order.DiscountApplications == nil {
			break
		}
		page = resp.Order.DiscountApplications.DiscountApplicationPage
	}
	for _, t := range titles {
		t = strings.TrimSpace(t)
		if t == "" || slices.Contains(manual, t) || slices.ContainsFunc(codes, func(c string) bool { return strings.EqualFold(c, t) }) {
			continue // empty, seen, or the code of a discount code application
		}
		manual = append(manual, t)
	}
	return codes, manual, nil
}
