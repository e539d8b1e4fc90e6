package app

import (
	"github.com/coupongate/coupongate/integrations/shopify"
	"github.com/coupongate/coupongate/store"
)

// The store satisfies the ports the Shopify package declares without importing it (store and core
// import no integration; internal/archtest enforces it), so the checks that it does live here,
// where both are wired together.
var (
	_ shopify.WebhookIntakeStore  = (*store.DB)(nil)
	_ shopify.WebhookProcessStore = (*store.DB)(nil)
	_ shopify.ComplianceStore     = (*store.DB)(nil)
	_ shopify.CredentialStore     = (*store.DB)(nil)
)
