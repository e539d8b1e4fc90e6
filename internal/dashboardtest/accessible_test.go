package dashboardtest

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/browsertest"
)

// TestPagesAccessible: axe-core (vendored for the tests) finds no serious or critical violation on
// any page of the dashboard, opened in Chromium with real data: the sign-in and invite pages, every
// owner's page (lists, a list with its codes, an import report, a batch, a code with a timeline, a
// customer, the team, settings, messages, shops with a push, the forms with and without field
// errors, the confirmations), the embedded frame, the error pages, and what staff see (their
// pages, the scanner, and the 403 page). Each violation is printed with its rule, the element and
// the rule's help page.
func TestPagesAccessible(t *testing.T) {
	t.Parallel()
	s := newSite(t, options{})
	ctx := context.Background()
	app := s.h.App

	// A list low on stock with an import whose report names rejected rows, a delivered and a
	// redeemed code (timelines) for a customer; a list with a generated batch; a fixed code.
	spring, err := app.Lists.Create(ctx, s.merchant, core.ListInput{Name: "Spring welcome",
		Description: "Codes for the spring newsletter", LowStockThreshold: 100})
	if err != nil {
		t.Fatal(err)
	}
	imp, err := app.Imports.Start(ctx, s.merchant, spring.ID, core.FormatCSV, "spring.csv",
		strings.NewReader("Code\nSPRING-0001\nSPRING-0002\nSPRING-0001\nnot a code\nSPRING-0003\nSPRING-0004\n"), 1<<20, "owner@example.com")
	if err != nil {
		t.Fatal(err)
	}
	s.runImport(t, spring.ID, imp.ID)
	for _, email := range []string{"alice@example.com", "bob@example.com"} {
		if _, err := app.Allocator.Allocate(ctx, s.merchant, spring.ID, core.AllocationRequest{
			Recipient: core.Recipient{Email: email}, Campaign: "spring", Actor: "api_key:shop"}); err != nil {
			t.Fatal(err)
		}
	}
	alice, err := app.Recipient.Codes(ctx, s.merchant, core.Recipient{Email: "alice@example.com"})
	if err != nil || len(alice) == 0 {
		t.Fatalf("alice's codes: %v %v", alice, err)
	}
	redeemed := alice[0].Code.Code
	if _, err := app.Redeemer.Redeem(ctx, s.merchant, spring.ID, redeemed, core.ManualRedemption{
		OrderID: "#1001", Note: "Paid at the till", Actor: "owner@example.com"}); err != nil {
		t.Fatal(err)
	}
	summer, err := app.Lists.Create(ctx, s.merchant, core.ListInput{Name: "Summer sale"})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := app.Batches.Create(ctx, s.merchant, summer.ID, core.BatchSpec{Count: 60, Prefix: "SUMMER", Length: 8}, "owner@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Generator.Run(ctx, s.merchant, summer.ID, batch.Number); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Lists.Create(ctx, s.merchant, core.ListInput{Name: "Staff discount", Kind: core.KindFixed,
		FixedCode: "STAFF10", MaxAssignments: 100}); err != nil {
		t.Fatal(err)
	}
	// The site's Shopify shop with a push waiting for the worker; an outgoing webhook endpoint.
	var connID uuid.UUID
	if err := app.DB.Pool().QueryRow(ctx, `SELECT id FROM connections WHERE merchant_id = $1 AND shop = $2`, s.merchant, s.shop).Scan(&connID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := app.Connections.StartPush(ctx, s.merchant, summer.ID, core.PushInput{ConnectionID: connID,
		Discount: core.Discount{Title: "Summer 10%", ValueType: core.ValuePercentage, Value: 10}}); err != nil {
		t.Fatal(err)
	}
	endpoint, err := app.Endpoints.Create(ctx, s.merchant, "https://hooks.shop.example/coupongate", []string{core.EventTypeExhausted})
	if err != nil {
		t.Fatal(err)
	}
	owner := s.member(t, "owner", core.RoleOwner)
	staff := s.member(t, "staff", core.RoleStaff)
	_, invite := s.invite(t, "new", core.RoleStaff)

	b := browsertest.New(t)
	checked := 0
	check := func(what string) {
		t.Helper()
		checked++
		for _, v := range b.Axe() {
			if v.Serious() {
				t.Errorf("%s (%s): %s", what, b.Location(), v)
			}
		}
	}
	open := func(what, path, text string) {
		t.Helper()
		b.Navigate(s.h.URL + path)
		b.WaitText("main", text)
		check(what)
	}
	list := func(l core.List, rest string) string { return "/app/lists/" + l.ID.String() + rest }

	// Before signing in.
	open("the sign-in page", "/app/sign-in", "Sign in")
	b.Fill("#email", owner)
	b.Fill("#password", "not the password at all")
	b.ClickText("Sign in")
	b.WaitText(".banner-critical", "not right")
	check("a refused sign-in")
	open("the invite page", "/app/invite/"+invite[strings.LastIndex(invite, "/")+1:], "Set your password")
	open("a used invite link", "/app/invite/"+s.merchant.String()+".used", "This invite link does not work")

	// The owner's pages.
	signIn(b, s.h.URL, owner, password)
	b.WaitText("main h1", "Lists")
	check("the lists page")
	open("Create list", "/app/lists/new", "Create list")
	b.ClickText("Create list")
	b.WaitText(".field-error-message", ".")
	check("Create list with field errors")
	open("a list", list(spring, ""), "Spring welcome")
	open("a fixed list", "/app", "Staff discount")
	b.ClickText("Staff discount")
	b.WaitText("main h1", "Staff discount")
	check("a fixed list")
	open("Edit list", list(spring, "/edit"), "Spring welcome")
	open("a list's codes", list(spring, "/codes"), "SPRING-0002")
	open("a prefix search", list(spring, "/codes?q=SPRING-"), "SPRING-0002")
	open("a customer's codes in a list", list(spring, "/codes?q=alice%40example.com"), redeemed)
	open("a state filter", list(spring, "/codes?state=redeemed"), redeemed)
	open("a code with its timeline", list(spring, "/codes/"+url.PathEscape(redeemed)), "Paid at the till")
	open("an unused code", list(spring, "/codes/SPRING-0004"), "SPRING-0004")
	open("Remove a code", list(spring, "/codes/SPRING-0004/remove"), "SPRING-0004")
	open("Import", list(spring, "/import"), "Upload a file")
	open("an import report", list(spring, "/imports/"+imp.ID.String()), "Duplicate")
	open("Generate with a batch", list(summer, "/generate"), "Download with info")
	open("Export", list(spring, "/export"), "Remove unused codes")
	open("Remove unused codes", list(spring, "/remove-unused"), "Spring welcome")
	open("Delete list", list(spring, "/delete"), "Spring welcome")
	link, err := app.RedeemLinks.Create(ctx, s.merchant, spring.ID, core.RedeemLinkInput{Name: "Spring flyer"})
	if err != nil {
		t.Fatal(err)
	}
	open("Redeem links", list(spring, "/redeem-links"), "Spring flyer")
	open("a redeem link's edit form", list(spring, "/redeem-links/"+link.ID.String()), "Edit Spring flyer")
	open("Find a code", "/app/codes", "Find a code")
	open("a code found", "/app/codes?q=SPRING-0002", "SPRING-0002")
	open("Customers", "/app/customers", "Customers")
	open("a customer", "/app/customers?q=alice%40example.com", redeemed)
	open("Team", "/app/settings/team", staff)
	var staffID uuid.UUID
	if err := app.DB.Pool().QueryRow(ctx, `SELECT id FROM dashboard_users WHERE merchant_id = $1 AND email = $2`, s.merchant, staff).Scan(&staffID); err != nil {
		t.Fatal(err)
	}
	open("a team member's scanner", "/app/settings/team/"+staffID.String()+"/scanner", staff)
	open("Settings: alerts", "/app/settings", "Alert addresses")
	open("Settings: outgoing webhooks", "/app/settings/webhooks", "hooks.shop.example")
	open("an endpoint", "/app/settings/webhooks/"+endpoint.ID.String(), "No attempts yet")
	open("Settings: API keys", "/app/settings/keys", "Storefront key")
	open("Messages", "/app/messages", "Spring welcome")
	for _, ch := range []string{"email", "sms", "push"} {
		open("the "+ch+" settings", "/app/messages/channels/"+ch, "settings")
	}
	open("a list's messages", "/app/messages/lists/"+spring.ID.String(), "Spring welcome")
	open("a new template", "/app/messages/lists/"+spring.ID.String()+"/templates/new?channel=email", "New Email template")
	open("a list's deliveries", "/app/messages/lists/"+spring.ID.String()+"/deliveries", "Deliveries of Spring welcome")
	open("a list's bulk sends", "/app/messages/lists/"+spring.ID.String()+"/bulk", "Bulk sends of Spring welcome")
	open("Shops", "/app/shops", s.shop)
	// "Connection" is on the shop's page whatever its state: a worker of another test of the package
	// may have reconciled this made-up connection into Error (the push form then is not shown).
	open("a shop", "/app/shops/"+connID.String(), "Connection")
	open("a push", "/app/shops/"+connID.String()+"/pushes/"+summer.ID.String(), "Summer sale")
	open("Disconnect", "/app/shops/"+connID.String()+"/disconnect", s.shop)
	open("a page that does not exist", "/app/nowhere", "This page does not exist")
	open("a list that does not exist", "/app/lists/"+uuid.NewString(), "This page does not exist")

	// Inside the Shopify admin (no top bar, App Bridge's stand-in loaded). A worker of another test
	// of the package may have reconciled this made-up connection (its token opens no real shop) into
	// error, and only an active shop opens the embedded pages.
	if _, err := app.DB.Pool().Exec(ctx, `UPDATE connections SET state = 'active', error = '' WHERE merchant_id = $1 AND id = $2`,
		s.merchant, connID); err != nil {
		t.Fatal(err)
	}
	b.Navigate(s.h.URL + "/app?embedded=1&shop=" + s.shop + "&host=YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvam91cm5leQ")
	b.WaitText("#list-rows", "Spring welcome")
	check("the lists page inside the admin")

	// Staff.
	b.Navigate(s.h.URL + "/app")
	b.WaitText("main h1", "Lists")
	b.ClickText("Sign out")
	b.WaitText("main h1", "Sign in")
	signIn(b, s.h.URL, staff, password)
	b.WaitText("main h1", "Find a code")
	check("Find a code for staff")
	open("Scan", "/app/scan", "Scan")
	open("a code scanned", "/app/scan?code=SPRING-0002", "SPRING-0002")
	open("a used code scanned", "/app/scan?code="+url.QueryEscape(redeemed), redeemed)
	open("the scanner PIN", "/app/scan/pin", "Your scanner PIN")
	open("a code for staff", list(spring, "/codes/"+url.PathEscape(redeemed)), "Paid at the till")
	open("an owner's page for staff", "/app/settings/team", "You cannot open this page")

	if checked < 30 {
		t.Fatalf("only %d pages checked", checked)
	}
}
