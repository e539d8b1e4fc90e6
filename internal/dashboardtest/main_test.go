package dashboardtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/apptest"
	"github.com/coupongate/coupongate/internal/browsertest"
	"github.com/coupongate/coupongate/internal/dbtest"
)

var env dbtest.Env

func TestMain(m *testing.M) { dbtest.Main(m, &env) }

// The Shopify app of the journeys.
const (
	shopifyKey    = "dashboard-journey-key"
	shopifySecret = "dashboard-journey-secret"
	password      = "a long enough password"
)

// site is a running Coupongate with one merchant, its connected Shopify shop and an App Bridge
// stand-in.
type site struct {
	h        *apptest.Harness
	bridge   *browsertest.AppBridge
	merchant uuid.UUID
	shop     string
}

// options adjust a site.
type options struct {
	// worker runs the asynq worker too (imports, batches, sends).
	worker bool
}

func newSite(t *testing.T, o options) *site {
	t.Helper()
	shop := "journey-" + uuid.NewString()[:8] + ".myshopify.com"
	bridge := browsertest.NewAppBridge(t, shopifyKey, shopifySecret, shop)
	h := apptest.Start(t, env, apptest.Options{Worker: o.worker, Configure: func(c *config.Config) {
		c.ShopifyAPIKey, c.ShopifyAPISecret = shopifyKey, shopifySecret
		c.AppBridgeURL = bridge.URL
	}})
	m := h.NewMerchant(t, "Journey Shop")
	s := &site{h: h, bridge: bridge, merchant: uuid.MustParse(m.ID), shop: shop}
	s.connectShop(t)
	return s
}

// connectShop records the shop's connection and route, as the Shopify install does.
func (s *site) connectShop(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	conn := uuid.New()
	db := s.h.App.DB.Pool()
	if _, err := db.Exec(ctx, `INSERT INTO connections (merchant_id, id, platform, shop) VALUES ($1, $2, 'shopify', $3)`, s.merchant, conn, s.shop); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO shop_routes (platform, shop, merchant_id, connection_id) VALUES ('shopify', $1, $2, $3)`, s.shop, s.merchant, conn); err != nil {
		t.Fatal(err)
	}
}

// invite makes an invite link for a new address with role, as couponctl user invite does, and
// returns the address and the link.
func (s *site) invite(t *testing.T, name string, role core.Role) (email, link string) {
	t.Helper()
	email = name + "-" + uuid.NewString()[:8] + "@example.com"
	_, token, err := s.h.App.Users.Invite(context.Background(), s.merchant, core.InviteInput{Email: email, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	return email, core.InviteLink(s.h.URL, token)
}

// member is a person who accepted an invite (through core, not the browser).
func (s *site) member(t *testing.T, name string, role core.Role) string {
	t.Helper()
	email, link := s.invite(t, name, role)
	token := link[strings.LastIndex(link, "/")+1:]
	if _, err := s.h.App.Users.AcceptInvite(context.Background(), token, password, password); err != nil {
		t.Fatal(err)
	}
	return email
}

// list creates a list through core.
func (s *site) list(t *testing.T, name string) core.List {
	t.Helper()
	l, err := s.h.App.Lists.Create(context.Background(), s.merchant, core.ListInput{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// acceptInvite opens an invite link in the browser, sets the password and waits for the page the
// person lands on.
func acceptInvite(b *browsertest.Browser, link string) {
	b.Navigate(link)
	b.WaitText("main h1", "Set your password")
	b.Fill("#password", password)
	b.Fill("#password_confirm", password)
	b.ClickText("Set password and sign in")
}

// signIn signs in through the sign-in page.
func signIn(b *browsertest.Browser, baseURL, email, pw string) {
	b.Navigate(baseURL + "/app/sign-in")
	b.WaitText("main h1", "Sign in")
	b.Fill("#email", email)
	b.Fill("#password", pw)
	b.ClickText("Sign in")
}

// lastDocument is the last page load (not a fetch) whose URL contains part.
func lastDocument(t *testing.T, b *browsertest.Browser, part string) browsertest.Exchange {
	t.Helper()
	xs := b.Exchanges()
	for i := len(xs) - 1; i >= 0; i-- {
		if xs[i].Type == "Document" && strings.Contains(xs[i].URL, part) {
			return xs[i]
		}
	}
	t.Fatalf("no page load of %q among %d requests", part, len(xs))
	return browsertest.Exchange{}
}

// screenshot saves the page as name.png in SCREENSHOTS_DIR (make screenshots sets it), or in the
// test's temporary directory.
func screenshot(t *testing.T, b *browsertest.Browser, name string) {
	t.Helper()
	dir := os.Getenv("SCREENSHOTS_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	b.Screenshot(filepath.Join(dir, name+".png"))
}

// runImport runs an import started through core (as an upload does) and returns once its codes
// are in. Starting it queued its task too; when the site's worker runs that first, this run meets
// its saved rows (import_moved) and waits for that run to finish.
func (s *site) runImport(t *testing.T, listID, importID uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	app := s.h.App
	err := app.Importer.Run(ctx, s.merchant, importID)
	var ce *core.Error
	if err != nil && !(errors.As(err, &ce) && ce.Code == core.ErrImportMoved.Code) {
		t.Fatal(err)
	}
	apptest.Eventually(t, 30*time.Second, "the import to succeed", func() bool {
		got, err := app.Imports.Get(ctx, s.merchant, listID, importID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Status == core.ImportSucceeded
	})
}
