package shopify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/Khan/genqlient/graphql"
	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/shopify/admin"
)

// WebhookTopics are the topics a connected shop is subscribed to at install. The compliance
// topics are not among them: Shopify only takes those from the app's configuration
// (shopify.app.toml).
var WebhookTopics = []admin.WebhookSubscriptionTopic{
	admin.WebhookSubscriptionTopicOrdersCreate,
	admin.WebhookSubscriptionTopicOrdersPaid,
	admin.WebhookSubscriptionTopicOrdersUpdated,
	admin.WebhookSubscriptionTopicOrdersCancelled,
	admin.WebhookSubscriptionTopicRefundsCreate,
	admin.WebhookSubscriptionTopicAppUninstalled,
}

// ErrScopesMissing answers an install whose granted scopes do not cover what the app needs (the
// merchant can edit the authorize URL).
var ErrScopesMissing = &core.Error{Kind: core.KindConflict, Code: "scopes_missing",
	Message: "Shopify granted fewer access scopes than Coupongate needs; install the app again and approve every scope"}

// InstallStore is what installing needs from the database.
type InstallStore interface {
	// InstallShop connects shop with the given credentials: its known merchant and connection,
	// or a new merchant (from newMerchant) and connection; created tells which.
	InstallShop(ctx context.Context, platform, shop string, creds core.Credentials, scopes string,
		newMerchant func() (core.StoredMerchant, error)) (route ShopRoute, created bool, err error)
	// SetRemoteWebhooks records the ids of the subscriptions made for the connection.
	SetRemoteWebhooks(ctx context.Context, merchantID, connectionID uuid.UUID, ids []string) error
	// RemoteWebhooks returns them.
	RemoteWebhooks(ctx context.Context, merchantID, connectionID uuid.UUID) ([]string, error)
	// ForgetCredentials erases the connection's credentials and webhook ids.
	ForgetCredentials(ctx context.Context, merchantID, connectionID uuid.UUID) error
	GetConnection(ctx context.Context, merchantID, id uuid.UUID) (core.Connection, error)
	CredentialStore
}

// Installer connects shops: after OAuth or token exchange it stores the token pair, creates the
// merchant and connection on first install, and subscribes the shop's webhooks. It also
// disconnects them.
type Installer struct {
	app         App
	store       InstallStore
	tokens      *Tokens
	callbackURL string
	log         *slog.Logger
}

// NewInstaller returns the installer; appURL is the public base URL webhooks are sent to.
func NewInstaller(app App, store InstallStore, appURL string, log *slog.Logger) *Installer {
	return &Installer{app: app, store: store, tokens: NewTokens(app, store),
		callbackURL: strings.TrimRight(appURL, "/") + "/webhooks/shopify", log: log}
}

// App returns the app's settings.
func (i *Installer) App() App { return i.app }

// Install connects shop with a fresh grant and subscribes its webhooks. The subscriptions are
// made with the new token; one that exists already counts as made.
func (i *Installer) Install(ctx context.Context, shop string, g Grant) (ShopRoute, bool, error) {
	if missing := i.app.MissingScopes(g.Scope); len(missing) > 0 {
		e := *ErrScopesMissing
		e.Details = []core.FieldError{{Field: "scope", Message: "missing " + strings.Join(missing, ", ")}}
		return ShopRoute{}, false, &e
	}
	route, created, err := i.store.InstallShop(ctx, Platform, shop, g.Credentials, g.Scope, func() (core.StoredMerchant, error) {
		m, _, err := core.NewStoredMerchant(shop, time.Now())
		return m, err
	})
	if err != nil {
		return ShopRoute{}, false, err
	}
	ids, err := i.subscribe(ctx, shop, g.Credentials.AccessToken)
	if err != nil {
		return route, created, err
	}
	// Keep the ids recorded before too: a subscription to an earlier callback address is not
	// "taken" by this one, and disconnecting must still remove it.
	known, err := i.store.RemoteWebhooks(ctx, route.MerchantID, route.ConnectionID)
	if err != nil {
		return route, created, err
	}
	for _, id := range known {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if err := i.store.SetRemoteWebhooks(ctx, route.MerchantID, route.ConnectionID, ids); err != nil {
		return route, created, err
	}
	i.log.InfoContext(ctx, "shopify shop installed", "shop", shop, "merchant_id", route.MerchantID,
		"connection_id", route.ConnectionID, "new_merchant", created, "webhooks", len(ids))
	return route, created, nil
}

// subscribe subscribes the shop to WebhookTopics and returns the subscriptions' ids: those it
// made, and for a topic Shopify answers "already been taken" (an earlier install subscribed it to
// the same address), the id of that subscription.
func (i *Installer) subscribe(ctx context.Context, shop, token string) ([]string, error) {
	client := admin.NewClient(i.app.ShopURL(shop), i.app.APIVersion, token, i.app.HTTP)
	var ids []string
	for _, topic := range WebhookTopics {
		var resp *admin.WebhookSubscriptionCreateResponse
		err := retryThrottled(ctx, func() error {
			var err error
			resp, err = admin.WebhookSubscriptionCreate(ctx, client, topic, i.callbackURL)
			return err
		})
		if err != nil {
			return ids, fmt.Errorf("subscribe %s: %w", topic, err)
		}
		p := resp.GetWebhookSubscriptionCreate()
		if p == nil {
			return ids, fmt.Errorf("subscribe %s: empty answer", topic)
		}
		if p.WebhookSubscription != nil {
			ids = append(ids, p.WebhookSubscription.Id)
			continue
		}
		taken := false
		var msgs []string
		for _, e := range p.UserErrors {
			if e == nil {
				continue
			}
			msgs = append(msgs, e.Message)
			taken = taken || strings.Contains(strings.ToLower(e.Message), "already been taken")
		}
		if !taken {
			return ids, fmt.Errorf("subscribe %s: %s", topic, strings.Join(msgs, "; "))
		}
		existing, err := i.subscriptions(ctx, client, topic)
		if err != nil {
			return ids, fmt.Errorf("subscribe %s: find the existing subscription: %w", topic, err)
		}
		if len(existing) == 0 {
			return ids, fmt.Errorf("subscribe %s: Shopify calls the address taken but lists no subscription to it", topic)
		}
		for _, id := range existing {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	return ids, nil
}

// subscriptionsPage is the subscriptions read per webhookSubscriptions call.
const subscriptionsPage = 25

// subscriptions returns the ids of the shop's subscriptions of topic to the app's callback.
func (i *Installer) subscriptions(ctx context.Context, client graphql.Client, topic admin.WebhookSubscriptionTopic) ([]string, error) {
	var ids []string
	var after *string
	for {
		var resp *admin.WebhookSubscriptionsResponse
		err := retryThrottled(ctx, func() error {
			var err error
			resp, err = admin.WebhookSubscriptions(ctx, client, subscriptionsPage, after, []admin.WebhookSubscriptionTopic{topic}, i.callbackURL)
			return err
		})
		if err != nil {
			return ids, err
		}
		if resp.WebhookSubscriptions == nil {
			return ids, nil
		}
		for _, n := range resp.WebhookSubscriptions.Nodes {
			if n != nil && n.Id != "" && n.Topic == topic {
				ids = append(ids, n.Id)
			}
		}
		p := resp.WebhookSubscriptions.PageInfo
		if p == nil || !p.HasNextPage || p.EndCursor == "" {
			return ids, nil
		}
		cursor := p.EndCursor
		after = &cursor
	}
}

// retryThrottled runs call, waiting as Shopify asks and trying again while it answers THROTTLED
// (at most maxThrottleWaits times).
func retryThrottled(ctx context.Context, call func() error) error {
	for waits := 0; ; waits++ {
		err := call()
		var te *admin.ThrottledError
		if !errors.As(err, &te) || waits == maxThrottleWaits {
			return err
		}
		if err := sleepCtx(ctx, te.Wait); err != nil {
			return err
		}
	}
}

// Disconnect removes the webhook subscriptions made for a disconnected connection and forgets
// its credentials. Running it twice is harmless: the second run finds nothing to remove.
func (i *Installer) Disconnect(ctx context.Context, merchantID, connectionID uuid.UUID) error {
	conn, err := i.store.GetConnection(ctx, merchantID, connectionID)
	if errors.Is(err, core.ErrConnectionNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if conn.State == core.ConnectionActive {
		return nil // reinstalled since: keep it
	}
	ids, err := i.store.RemoteWebhooks(ctx, merchantID, connectionID)
	if err != nil {
		return err
	}
	if len(ids) > 0 && conn.State == core.ConnectionDisconnected {
		token, err := i.tokens.Access(ctx, merchantID, connectionID, conn.Shop, "")
		switch {
		case errors.Is(err, ErrNoCredentials), errors.Is(err, ErrGrantRefused):
			// Nothing to call the shop with: the app was uninstalled or the grant revoked, and
			// Shopify removed the subscriptions itself.
		case err != nil:
			return err
		default:
			client := admin.NewClient(i.app.ShopURL(conn.Shop), i.app.APIVersion, token, i.app.HTTP)
			for _, id := range ids {
				if _, err := admin.WebhookSubscriptionDelete(ctx, client, id); err != nil {
					if errors.Is(err, admin.ErrUnauthorized) {
						break
					}
					return fmt.Errorf("delete webhook subscription %s: %w", id, err)
				}
			}
		}
	}
	return i.store.ForgetCredentials(ctx, merchantID, connectionID)
}
