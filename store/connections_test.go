package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/shopify"
	"github.com/coupongate/coupongate/integrations/shopify/shopifyfake"
	"github.com/coupongate/coupongate/store"
)

const testAppSecret = "test-app-secret-0123456789"

func sealed(t testing.TB) *store.DB {
	t.Helper()
	db := open(t)
	s, err := store.NewSealer(testAppSecret)
	if err != nil {
		t.Fatal(err)
	}
	db.UseSealer(s)
	return db
}

func TestSealerRefusesWhatItDidNotSeal(t *testing.T) {
	t.Parallel()
	s, err := store.NewSealer(testAppSecret)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := store.NewSealer(testAppSecret + "-rotated")
	plain := []byte(`{"access_token":"shpat_secret"}`)
	box := s.Seal(plain, []byte("row-1"))
	if bytes.Contains(box, []byte("shpat_secret")) {
		t.Fatal("the sealed value holds the plain text")
	}
	if again := s.Seal(plain, []byte("row-1")); bytes.Equal(again, box) {
		t.Fatal("sealing twice gave the same bytes: the nonce is not random")
	}
	got, err := s.Open(box, []byte("row-1"))
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open: %q, %v", got, err)
	}
	tampered := bytes.Clone(box)
	tampered[len(tampered)-1] ^= 1
	for _, tc := range []struct {
		name string
		s    *store.Sealer
		box  []byte
		ad   string
	}{
		{"another row", s, box, "row-2"},
		{"another APP_SECRET", other, box, "row-1"},
		{"a flipped bit", s, tampered, "row-1"},
		{"too short", s, box[:10], "row-1"},
		{"empty", s, nil, "row-1"},
	} {
		if _, err := tc.s.Open(tc.box, []byte(tc.ad)); !errors.Is(err, store.ErrUnseal) {
			t.Errorf("%s: opened (err %v)", tc.name, err)
		}
	}
	if _, err := store.NewSealer("short"); err == nil {
		t.Error("a short APP_SECRET was accepted")
	}
}

// TestInstallShopUnderARace installs one new shop from many processes at once: one merchant, one
// connection, one route, and the credentials stored sealed.
func TestInstallShopUnderARace(t *testing.T) {
	t.Parallel()
	db := sealed(t)
	ctx := context.Background()
	shop := "race-" + uuid.NewString()[:8] + ".myshopify.com"
	var wg sync.WaitGroup
	routes := make([]shopify.ShopRoute, 8)
	created := make([]bool, 8)
	for i := range routes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r, c, err := db.InstallShop(ctx, shopify.Platform, shop, core.Credentials{AccessToken: "shpat_race"}, "read_orders",
				func() (core.StoredMerchant, error) {
					m, _, err := core.NewStoredMerchant(shop, time.Now())
					return m, err
				})
			if err != nil {
				t.Error(err)
			}
			routes[i], created[i] = r, c
		}(i)
	}
	wg.Wait()
	makers := 0
	for i, r := range routes {
		if r != routes[0] {
			t.Fatalf("install %d got %+v, install 0 got %+v", i, r, routes[0])
		}
		if created[i] {
			makers++
		}
	}
	if makers != 1 {
		t.Fatalf("%d installs created a merchant, want 1", makers)
	}
	var merchants int
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM merchants WHERE name = $1`, shop).Scan(&merchants); err != nil || merchants != 1 {
		t.Fatalf("%d merchants for the shop (%v)", merchants, err)
	}
	creds, _, err := db.Credentials(ctx, routes[0].MerchantID, routes[0].ConnectionID)
	if err != nil || creds.AccessToken != "shpat_race" {
		t.Fatalf("credentials: %v %v", creds, err)
	}
	var raw []byte
	if err := db.Pool().QueryRow(ctx, `SELECT credentials FROM connections WHERE id = $1`, routes[0].ConnectionID).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("shpat_race")) {
		t.Fatal("the token is stored in clear")
	}
	// The sealed value is bound to its row: copied to another connection it does not open.
	other, _, err := db.InstallShop(ctx, shopify.Platform, "other-"+shop, core.Credentials{AccessToken: "x"}, "", func() (core.StoredMerchant, error) {
		m, _, err := core.NewStoredMerchant("other", time.Now())
		return m, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool().Exec(ctx, `UPDATE connections SET credentials = $1 WHERE id = $2`, raw, other.ConnectionID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Credentials(ctx, other.MerchantID, other.ConnectionID); !errors.Is(err, store.ErrUnseal) {
		t.Fatalf("credentials copied to another row opened (err %v)", err)
	}
}

// TestTokensRefreshOnceUnderARace refreshes an expiring token from many processes at once
// against the fake Shopify, whose refresh tokens rotate: every process ends with the same new
// access token, one pair is stored, and the fake accepts it.
func TestTokensRefreshOnceUnderARace(t *testing.T) {
	t.Parallel()
	db := sealed(t)
	ctx := context.Background()
	fake := shopifyfake.New(t, shopifyfake.Config{})
	app := shopify.App{APIKey: fake.Config().ClientID, APISecret: fake.Config().ClientSecret, Scopes: []string{"write_discounts"},
		APIVersion: "2025-01", AdminURL: fake.URL() + "/{shop}"}
	shop := "refresh-" + uuid.NewString()[:8] + ".myshopify.com"
	grant, err := app.ExchangeSessionToken(ctx, shop, fake.SessionToken(shop, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if grant.Credentials.RefreshToken == "" {
		t.Fatalf("token exchange gave no expiring pair: %+v", grant)
	}
	route, _, err := db.InstallShop(ctx, shopify.Platform, shop, grant.Credentials, grant.Scope, func() (core.StoredMerchant, error) {
		m, _, err := core.NewStoredMerchant(shop, time.Now())
		return m, err
	})
	if err != nil {
		t.Fatal(err)
	}
	tokens := shopify.NewTokens(app, db)

	// Fresh: handed out as is.
	tok, err := tokens.Access(ctx, route.MerchantID, route.ConnectionID, shop, "")
	if err != nil || tok != grant.Credentials.AccessToken {
		t.Fatalf("fresh token: %q, %v", tok, err)
	}
	// The shop said 401 to it: every process asks for a refresh at once.
	fake.ExpireToken(tok)
	var wg sync.WaitGroup
	got := make([]string, 6)
	for i := range got {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var err error
			if got[i], err = tokens.Access(ctx, route.MerchantID, route.ConnectionID, shop, tok); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	stored, _, err := db.Credentials(ctx, route.MerchantID, route.ConnectionID)
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range got {
		if g != stored.AccessToken || g == tok {
			t.Fatalf("process %d got %q; stored %q (old %q)", i, g, stored.AccessToken, tok)
		}
	}
	if stored.RefreshToken == grant.Credentials.RefreshToken || stored.ExpiresAt == nil {
		t.Fatalf("the new pair was not stored whole: %+v", stored)
	}

	// Close to expiry: refreshed before use.
	soon := time.Now().Add(time.Minute)
	stored.ExpiresAt = &soon
	_, version, _ := db.Credentials(ctx, route.MerchantID, route.ConnectionID)
	if ok, err := db.SaveCredentials(ctx, route.MerchantID, route.ConnectionID, stored, version); !ok || err != nil {
		t.Fatalf("save: %v %v", ok, err)
	}
	if ok, _ := db.SaveCredentials(ctx, route.MerchantID, route.ConnectionID, stored, version); ok {
		t.Fatal("a save at a stale version was accepted")
	}
	next, err := tokens.Access(ctx, route.MerchantID, route.ConnectionID, shop, "")
	if err != nil || next == stored.AccessToken {
		t.Fatalf("a token expiring within %s was not refreshed: %q, %v", shopify.RefreshBefore, next, err)
	}

	// An active connection keeps its credentials; once disconnected they are forgotten: no token.
	if err := db.ForgetCredentials(ctx, route.MerchantID, route.ConnectionID); err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.Access(ctx, route.MerchantID, route.ConnectionID, shop, ""); err != nil {
		t.Fatalf("an active connection lost its token: %v", err)
	}
	if _, err := db.DisconnectConnection(ctx, route.MerchantID, route.ConnectionID); err != nil {
		t.Fatal(err)
	}
	if err := db.ForgetCredentials(ctx, route.MerchantID, route.ConnectionID); err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.Access(ctx, route.MerchantID, route.ConnectionID, shop, ""); !errors.Is(err, shopify.ErrNoCredentials) {
		t.Fatalf("after forgetting: %v", err)
	}
}

// TestPushLockIsExclusive: two runs of one push never interleave, another push is not held up,
// and the lock is free again once released.
func TestPushLockIsExclusive(t *testing.T) {
	t.Parallel()
	db := open(t)
	ctx := context.Background()
	ref := core.PushRef{MerchantID: uuid.New(), ListID: uuid.New(), ConnectionID: uuid.New()}
	release, ok, err := db.LockPush(ctx, ref)
	if err != nil || !ok {
		t.Fatalf("first lock: %v %v", ok, err)
	}
	if _, ok, err := db.LockPush(ctx, ref); err != nil || ok {
		t.Fatalf("a second run took the lock (%v, %v)", ok, err)
	}
	other := ref
	other.ConnectionID = uuid.New()
	releaseOther, ok, err := db.LockPush(ctx, other)
	if err != nil || !ok {
		t.Fatalf("another push is held up: %v %v", ok, err)
	}
	releaseOther()
	release()
	again, ok, err := db.LockPush(ctx, ref)
	if err != nil || !ok {
		t.Fatalf("after release: %v %v", ok, err)
	}
	again()
}

// TestListConnectionsPages walks a merchant's connections two at a time, oldest first, and sees
// none of another merchant's.
func TestListConnectionsPages(t *testing.T) {
	t.Parallel()
	db := sealed(t)
	ctx := context.Background()
	m, _, err := core.NewStoredMerchant("pages", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateMerchant(ctx, m); err != nil {
		t.Fatal(err)
	}
	var want []uuid.UUID
	for i := range 5 {
		id := uuid.New()
		if _, err := db.Pool().Exec(ctx, `INSERT INTO connections (merchant_id, id, platform, shop, created_at) VALUES ($1, $2, 'shopify', $3, now() + $4 * interval '1 second')`,
			m.ID, id, uuid.NewString()[:8]+".myshopify.com", i); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	if _, err := db.Pool().Exec(ctx, `INSERT INTO connections (merchant_id, id, platform, shop) VALUES ($1, $2, 'shopify', 'someone-else.myshopify.com')`,
		uuid.New(), uuid.New()); err != nil {
		t.Fatal(err)
	}
	var got []uuid.UUID
	page := core.Page{Limit: 2}
	for pages := 0; ; pages++ {
		items, next, err := db.ListConnections(ctx, m.ID, page)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range items {
			got = append(got, c.ID)
		}
		if next == "" {
			break
		}
		if pages > 5 {
			t.Fatal("the pages do not end")
		}
		page.Cursor = next
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("paged %v, want %v", got, want)
	}
}
