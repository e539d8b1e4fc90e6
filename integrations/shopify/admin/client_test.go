package admin_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Khan/genqlient/graphql"
	"github.com/coupongate/coupongate/integrations/shopify/admin"
	"github.com/coupongate/coupongate/integrations/shopify/shopifyfake"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

const (
	shopDomain = "blue-bottle.myshopify.com"
	apiVersion = "2025-01"
)

// clock is a hand-driven clock for the fake: bulk jobs finish and the bucket
// restores only when a test moves it.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func setup(t *testing.T, cfg shopifyfake.Config) (*shopifyfake.Fake, *admin.Client, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	cfg.Now = clk.Now
	f := shopifyfake.New(t, cfg)
	c := admin.NewClient(f.ShopURL(shopDomain), apiVersion, f.IssueToken(shopDomain), f.Client())
	return f, c, clk
}

func ptr[T any](v T) *T { return &v }

func createDiscount(t *testing.T, c *admin.Client, code string) string {
	t.Helper()
	resp, err := admin.DiscountCodeBasicCreate(context.Background(), c, "Spring", code,
		time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), nil, ptr(1), true,
		&admin.DiscountCustomerGetsValueInput{Percentage: ptr(0.1)})
	if err != nil {
		t.Fatalf("create discount: %v", err)
	}
	p := resp.GetDiscountCodeBasicCreate()
	if len(p.UserErrors) > 0 || p.CodeDiscountNode == nil {
		t.Fatalf("create discount: user errors %+v", p.UserErrors[0])
	}
	return p.CodeDiscountNode.Id
}

func TestDiscountCodeBasicCreate(t *testing.T) {
	t.Parallel()
	f, c, _ := setup(t, shopifyfake.Config{})
	starts := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ends := starts.Add(30 * 24 * time.Hour)
	createDiscount(t, c, "TAKEN-1")
	tests := []struct {
		name      string
		code      string
		endsAt    *time.Time
		value     admin.DiscountCustomerGetsValueInput
		wantError admin.DiscountErrorCode // "" means created
	}{
		{"percentage", "SPRING-P", &ends, admin.DiscountCustomerGetsValueInput{Percentage: ptr(0.25)}, ""},
		{"fixed amount", "SPRING-A", nil, admin.DiscountCustomerGetsValueInput{DiscountAmount: &admin.DiscountAmountInput{Amount: "10.00"}}, ""},
		{"code taken", "taken-1", nil, admin.DiscountCustomerGetsValueInput{Percentage: ptr(0.1)}, "TAKEN"},
		{"percentage out of range", "SPRING-X", nil, admin.DiscountCustomerGetsValueInput{Percentage: ptr(1.5)}, "VALUE_OUTSIDE_RANGE"},
		{"no value", "SPRING-Y", nil, admin.DiscountCustomerGetsValueInput{}, "INVALID"},
		{"ends before start", "SPRING-Z", ptr(starts.Add(-time.Hour)), admin.DiscountCustomerGetsValueInput{Percentage: ptr(0.1)}, "INVALID"},
	}
	// Not parallel: the cases share one fake; "code taken" needs TAKEN-1 made above, and they draw on one throttle bucket.
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := admin.DiscountCodeBasicCreate(context.Background(), c, "Spring "+tc.name, tc.code, starts, tc.endsAt, ptr(1), true, &tc.value)
			if err != nil {
				t.Fatalf("transport error: %v", err)
			}
			p := resp.GetDiscountCodeBasicCreate()
			if tc.wantError == "" {
				if len(p.UserErrors) > 0 || p.CodeDiscountNode == nil {
					t.Fatalf("want created, got %+v", p.UserErrors)
				}
				d, ok := f.Discount(shopDomain, p.CodeDiscountNode.Id)
				if !ok || d.UsageLimit == nil || *d.UsageLimit != 1 || !d.AppliesOncePerCustomer {
					t.Fatalf("fake holds %+v, %v", d, ok)
				}
				if tc.value.DiscountAmount != nil && d.Amount != "10.00" {
					t.Fatalf("amount %q, want 10.00", d.Amount)
				}
				if tc.endsAt != nil && (d.EndsAt == nil || !d.EndsAt.Equal(*tc.endsAt)) {
					t.Fatalf("endsAt %v, want %v", d.EndsAt, tc.endsAt)
				}
				if got := f.RedeemCodes(shopDomain, d.ID); len(got) != 1 || got[0] != tc.code {
					t.Fatalf("codes %v, want [%s]", got, tc.code)
				}
				return
			}
			if p.CodeDiscountNode != nil || len(p.UserErrors) == 0 || p.UserErrors[0].Code != tc.wantError {
				t.Fatalf("want user error %s, got node %v errors %+v", tc.wantError, p.CodeDiscountNode, p.UserErrors)
			}
		})
	}
}

// TestPushCodes creates a discount, bulk-adds 250 codes in batches of 100,
// follows every bulk creation until done, reads per-code duplicates, and
// deletes codes.
func TestPushCodes(t *testing.T) {
	t.Parallel()
	f, c, clk := setup(t, shopifyfake.Config{BulkDelay: time.Second, RestoreRate: 10000})
	ctx := context.Background()
	id := createDiscount(t, c, "PUSH-0000")

	codes := make([]string, 250)
	for i := range codes {
		codes[i] = fmt.Sprintf("PUSH-%04d", i) // PUSH-0000 is the discount's own code
	}
	codes[120] = "push-0005" // same code as batch one's, other case: taken
	codes[249] = "PUSH-0248" // duplicate within the last batch

	type result struct{ imported, failed int }
	var results []result
	errorsByCode := map[string]admin.DiscountErrorCode{}
	redeemIDs := map[string]string{}
	for start := 0; start < len(codes); start += 100 {
		batch := codes[start:min(start+100, len(codes))]
		in := make([]*admin.DiscountRedeemCodeInput, len(batch))
		for i, code := range batch {
			in[i] = &admin.DiscountRedeemCodeInput{Code: code}
		}
		add, err := admin.DiscountRedeemCodeBulkAdd(ctx, c, id, in)
		if err != nil {
			t.Fatalf("bulk add: %v", err)
		}
		if p := add.GetDiscountRedeemCodeBulkAdd(); len(p.UserErrors) > 0 || p.BulkCreation == nil {
			t.Fatalf("bulk add user errors: %+v", p.UserErrors)
		}
		bulkID := add.DiscountRedeemCodeBulkAdd.BulkCreation.Id
		polls := 0
		for {
			clk.Add(100 * time.Millisecond) // the bucket restores 1000 points
			got, err := admin.DiscountRedeemCodeBulkCreation(ctx, c, bulkID, 100, nil)
			if err != nil {
				t.Fatalf("bulk creation: %v", err)
			}
			b := got.GetDiscountRedeemCodeBulkCreation()
			polls++
			if !b.Done {
				if polls > 3 {
					t.Fatalf("bulk creation not done after %d polls", polls)
				}
				clk.Add(time.Second)
				continue
			}
			if b.CodesCount != len(batch) || len(b.Codes.Nodes) != len(batch) {
				t.Fatalf("codesCount %d nodes %d, want %d", b.CodesCount, len(b.Codes.Nodes), len(batch))
			}
			for _, n := range b.Codes.Nodes {
				if len(n.Errors) > 0 {
					errorsByCode[n.Code] = *ptr(n.Errors[0].Code)
				} else if n.DiscountRedeemCode != nil {
					redeemIDs[n.Code] = n.DiscountRedeemCode.Id
				}
			}
			results = append(results, result{b.ImportedCount, b.FailedCount})
			break
		}
		if polls < 2 {
			t.Fatalf("bulk creation was done at once; it should finish asynchronously")
		}
	}

	wantResults := []result{{99, 1}, {99, 1}, {49, 1}}
	if fmt.Sprint(results) != fmt.Sprint(wantResults) {
		t.Fatalf("per batch (imported, failed) = %v, want %v", results, wantResults)
	}
	for _, code := range []string{"PUSH-0000", "push-0005", "PUSH-0248"} {
		if errorsByCode[code] != "TAKEN" {
			t.Errorf("code %s: error %q, want TAKEN (all errors %v)", code, errorsByCode[code], errorsByCode)
		}
	}
	if n := len(f.RedeemCodes(shopDomain, id)); n != 1+247 {
		t.Fatalf("fake holds %d codes, want 248", n)
	}

	// Past the 2025-01 maximum of 100 codes per call.
	tooMany := make([]*admin.DiscountRedeemCodeInput, 101)
	for i := range tooMany {
		tooMany[i] = &admin.DiscountRedeemCodeInput{Code: fmt.Sprintf("MORE-%d", i)}
	}
	add, err := admin.DiscountRedeemCodeBulkAdd(ctx, c, id, tooMany)
	if err != nil {
		t.Fatal(err)
	}
	if p := add.DiscountRedeemCodeBulkAdd; p.BulkCreation != nil || len(p.UserErrors) != 1 || p.UserErrors[0].Code != "TOO_MANY_ARGUMENTS" {
		t.Fatalf("101 codes: want TOO_MANY_ARGUMENTS, got %+v", p)
	}

	// Delete two codes by ID and one by search.
	tests := []struct {
		name   string
		ids    []string
		search *string
		gone   []string
	}{
		{"by ids", []string{redeemIDs["PUSH-0001"], redeemIDs["PUSH-0002"]}, nil, []string{"PUSH-0001", "PUSH-0002"}},
		{"by search", nil, ptr("code:PUSH-0003"), []string{"PUSH-0003"}},
	}
	// Not parallel: each deletion counts the codes the one before left.
	for _, tc := range tests {
		t.Run("delete "+tc.name, func(t *testing.T) {
			before := len(f.RedeemCodes(shopDomain, id))
			del, err := admin.DiscountCodeRedeemCodeBulkDelete(ctx, c, id, tc.ids, tc.search)
			if err != nil {
				t.Fatal(err)
			}
			p := del.DiscountCodeRedeemCodeBulkDelete
			if len(p.UserErrors) > 0 || p.Job == nil || p.Job.Id == "" || p.Job.Done {
				t.Fatalf("want a pending job, got %+v", p)
			}
			if n := len(f.RedeemCodes(shopDomain, id)); n != before {
				t.Fatalf("deleted before the job ran: %d codes, want %d", n, before)
			}
			clk.Add(time.Second)
			left := strings.Join(f.RedeemCodes(shopDomain, id), ",")
			for _, code := range tc.gone {
				if strings.Contains(left, code+",") || strings.HasSuffix(left, code) {
					t.Fatalf("%s still there", code)
				}
			}
			if n := len(f.RedeemCodes(shopDomain, id)); n != before-len(tc.gone) {
				t.Fatalf("%d codes left, want %d", n, before-len(tc.gone))
			}
		})
	}
}

func TestThrottled(t *testing.T) {
	t.Parallel()
	// Mutations cost 10: a 25-point bucket holds two, then waits.
	f, c, clk := setup(t, shopifyfake.Config{BucketSize: 25, RestoreRate: 2})
	ctx := context.Background()
	id := createDiscount(t, c, "T-0")
	add := func(code string) error {
		_, err := admin.DiscountRedeemCodeBulkAdd(ctx, c, id, []*admin.DiscountRedeemCodeInput{{Code: code}})
		return err
	}
	if err := add("T-1"); err != nil {
		t.Fatalf("second mutation: %v", err)
	}
	st, ok := c.ThrottleStatus()
	if !ok || st.CurrentlyAvailable != 5 || st.MaximumAvailable != 25 || st.RestoreRate != 2 {
		t.Fatalf("throttle status %+v %v, want 5 of 25 at 2/s", st, ok)
	}
	err := add("T-2")
	var te *admin.ThrottledError
	if !errors.As(err, &te) {
		t.Fatalf("want ThrottledError, got %v", err)
	}
	// (10 requested - 5 available) / 2 per second.
	if te.RetryAfter() != 2500*time.Millisecond || te.Cost.RequestedQueryCost != 10 || te.Cost.ActualQueryCost != nil {
		t.Fatalf("wait %s cost %+v, want 2.5s for 10 requested", te.RetryAfter(), te.Cost)
	}
	var ra admin.RetryAfterError
	if !errors.As(err, &ra) {
		t.Fatal("ThrottledError does not implement RetryAfterError")
	}
	clk.Add(te.RetryAfter() / 2)
	if err := add("T-2"); !errors.As(err, &te) {
		t.Fatalf("half the wait later: want still throttled, got %v", err)
	}
	clk.Add(te.RetryAfter())
	if err := add("T-2"); err != nil {
		t.Fatalf("after the wait: %v", err)
	}
	clk.Add(time.Minute)
	if got := f.RedeemCodes(shopDomain, id); len(got) != 3 {
		t.Fatalf("codes %v, want T-0, T-1, T-2", got)
	}
}

func TestHTTPFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		retryAfter string
		check      func(t *testing.T, err error)
	}{
		{"429 with Retry-After", 429, "2.0", func(t *testing.T, err error) {
			var e *admin.RateLimitedError
			if !errors.As(err, &e) || e.RetryAfter() != 2*time.Second {
				t.Fatalf("want RateLimitedError of 2s, got %v", err)
			}
		}},
		{"429 without Retry-After", 429, "", func(t *testing.T, err error) {
			var e *admin.RateLimitedError
			if !errors.As(err, &e) || e.RetryAfter() != time.Second {
				t.Fatalf("want RateLimitedError of 1s, got %v", err)
			}
		}},
		{"503", 503, "", func(t *testing.T, err error) {
			var e *admin.ServerError
			if !errors.As(err, &e) || e.StatusCode != 503 || e.RetryAfter() != 0 {
				t.Fatalf("want retryable ServerError 503, got %v", err)
			}
		}},
		{"500 with Retry-After", 500, "3", func(t *testing.T, err error) {
			var e admin.RetryAfterError
			if !errors.As(err, &e) || e.RetryAfter() != 3*time.Second {
				t.Fatalf("want RetryAfterError of 3s, got %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, c, _ := setup(t, shopifyfake.Config{})
			id := createDiscount(t, c, "F-0")
			f.FailNext(1, tc.status, tc.retryAfter)
			_, err := admin.DiscountRedeemCodeBulkCreation(context.Background(), c, id, 100, nil)
			tc.check(t, err)
			// Only the next request failed.
			if _, err := admin.DiscountRedeemCodeBulkCreation(context.Background(), c, "gid://shopify/DiscountRedeemCodeBulkCreation/0", 100, nil); err != nil {
				t.Fatalf("after the failure: %v", err)
			}
		})
	}
	t.Run("401 for a revoked token", func(t *testing.T) {
		t.Parallel()
		f := shopifyfake.New(t, shopifyfake.Config{})
		token := f.IssueToken(shopDomain)
		c := admin.NewClient(f.ShopURL(shopDomain), apiVersion, token, f.Client())
		f.RevokeToken(token)
		_, err := admin.DiscountRedeemCodeBulkCreation(context.Background(), c, "gid://shopify/DiscountRedeemCodeBulkCreation/1", 100, nil)
		if !errors.Is(err, admin.ErrUnauthorized) || strings.Contains(err.Error(), token) {
			t.Fatalf("want ErrUnauthorized without the token, got %v", err)
		}
	})
}

// TestSchemaRejects sends operations the schema does not allow: the fake
// answers GraphQL errors and runs nothing.
func TestSchemaRejects(t *testing.T) {
	t.Parallel()
	f, c, _ := setup(t, shopifyfake.Config{})
	id := createDiscount(t, c, "S-0")
	tests := []struct {
		name, query string
		vars        map[string]any
		want        string
	}{
		{"misspelled field", `mutation M($id: ID!) { discountRedeemCodeBulkAdd(discountId: $id, codes: [{code: "S-1"}]) { bulkCreation { idd } } }`,
			map[string]any{"id": id}, "idd"},
		{"unknown mutation", `mutation { discountRedeemCodeBulkAddd(discountId: "x", codes: []) { userErrors { message } } }`, nil, "discountRedeemCodeBulkAddd"},
		{"wrong argument type", `query { discountRedeemCodeBulkCreation(id: 5) { done } }`, nil, ""},
		{"missing required variable", `mutation M($id: ID!) { discountRedeemCodeBulkAdd(discountId: $id, codes: [{code: "S-1"}]) { bulkCreation { id } } }`, nil, "id"},
		{"syntax error", `mutation { discountRedeemCodeBulkAdd( }`, nil, ""},
	}
	// Not parallel: after the cases, the fake must show that none of them ran.
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var data map[string]any
			resp := &graphql.Response{Data: &data}
			err := c.MakeRequest(context.Background(), &graphql.Request{Query: tc.query, Variables: tc.vars, OpName: "M"}, resp)
			var list gqlerror.List
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("want GraphQL errors, got %v", err)
			}
			if !strings.Contains(list.Error(), tc.want) {
				t.Fatalf("errors %q do not mention %q", list.Error(), tc.want)
			}
			if data != nil {
				t.Fatalf("data %v, want none", data)
			}
		})
	}
	if got := f.RedeemCodes(shopDomain, id); len(got) != 1 {
		t.Fatalf("a rejected operation ran: codes %v", got)
	}
}

func TestOrders(t *testing.T) {
	t.Parallel()
	f, c, _ := setup(t, shopifyfake.Config{})
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	cancelled := base.Add(5 * time.Hour)
	for i := range 5 {
		o := shopifyfake.Order{LegacyID: int64(100 + i), Name: fmt.Sprintf("#%d", 1001+i), FinancialStatus: "PAID",
			UpdatedAt: base.Add(time.Duration(i) * time.Hour), DiscountCodes: []string{fmt.Sprintf("C-%d", i)}, Email: "ann@example.com"}
		if i == 4 {
			o.CancelledAt, o.FinancialStatus = &cancelled, "REFUNDED"
		}
		f.AddOrder(shopDomain, o)
	}
	query := "updated_at:>'" + base.Add(30*time.Minute).Format(time.RFC3339) + "'"
	var names []string
	var after *string
	pages := 0
	for {
		resp, err := admin.Orders(context.Background(), c, 3, after, &query)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, o := range resp.Orders.Nodes {
			names = append(names, o.Name)
			if o.Customer == nil || o.Customer.Email != "ann@example.com" || o.LegacyResourceId == "" || o.DiscountApplications == nil ||
				len(o.DiscountApplications.Nodes) != 1 {
				t.Fatalf("order %+v", o)
			}
			if a, ok := o.DiscountApplications.Nodes[0].(*admin.DiscountApplicationPageNodesDiscountCodeApplication); !ok || !strings.HasPrefix(a.Code, "C-") {
				t.Fatalf("order %s: discount application %#v", o.Name, o.DiscountApplications.Nodes[0])
			}
			if o.Name == "#1005" && (o.CancelledAt == nil || o.DisplayFinancialStatus != admin.OrderDisplayFinancialStatusRefunded) {
				t.Fatalf("cancelled order %+v", o)
			}
		}
		if !resp.Orders.PageInfo.HasNextPage {
			break
		}
		after = &resp.Orders.PageInfo.EndCursor
	}
	if got := strings.Join(names, " "); got != "#1002 #1003 #1004 #1005" || pages != 2 {
		t.Fatalf("orders %q in %d pages, want #1002..#1005 in 2", got, pages)
	}
}

// TestOrderDiscountApplications reads an order's discount applications as Shopify serves them: a
// manual discount is a ManualDiscountApplication with a title (its text also among
// discountCodes), and applications beyond the first page are read with OrderDiscountApplications.
func TestOrderDiscountApplications(t *testing.T) {
	t.Parallel()
	f, c, _ := setup(t, shopifyfake.Config{})
	ctx := context.Background()
	apps := []shopifyfake.DiscountApplication{
		{Kind: shopifyfake.ManualDiscountApplication, Title: "FAKE30"},
		{Kind: shopifyfake.AutomaticDiscountApplication, Title: "Spring sale"},
	}
	for i := range 6 {
		apps = append(apps, shopifyfake.DiscountApplication{Kind: shopifyfake.DiscountCodeApplication, Code: fmt.Sprintf("CODE-%d", i)})
	}
	gid := f.AddOrder(shopDomain, shopifyfake.Order{LegacyID: 42, FinancialStatus: "PAID", DiscountApplications: apps})

	describe := func(nodes []admin.DiscountApplicationPageNodesDiscountApplication) []string {
		var out []string
		for _, n := range nodes {
			switch a := n.(type) {
			case *admin.DiscountApplicationPageNodesDiscountCodeApplication:
				out = append(out, "code:"+a.Code)
			case *admin.DiscountApplicationPageNodesManualDiscountApplication:
				out = append(out, "manual:"+a.Title)
			default:
				out = append(out, n.GetTypename())
			}
		}
		return out
	}
	resp, err := admin.Orders(ctx, c, 10, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Orders.Nodes) != 1 {
		t.Fatalf("orders %+v", resp.Orders.Nodes)
	}
	page := resp.Orders.Nodes[0].DiscountApplications.DiscountApplicationPage
	got := describe(page.Nodes)
	if want := []string{"manual:FAKE30", "AutomaticDiscountApplication", "code:CODE-0", "code:CODE-1", "code:CODE-2"}; !slices.Equal(got, want) ||
		!page.PageInfo.HasNextPage {
		t.Fatalf("first page %q (more: %v), want %q and more", got, page.PageInfo.HasNextPage, want)
	}
	more, err := admin.OrderDiscountApplications(ctx, c, gid, 50, &page.PageInfo.EndCursor)
	if err != nil {
		t.Fatal(err)
	}
	rest := more.Order.DiscountApplications.DiscountApplicationPage
	if got, want := describe(rest.Nodes), []string{"code:CODE-3", "code:CODE-4", "code:CODE-5"}; !slices.Equal(got, want) || rest.PageInfo.HasNextPage {
		t.Fatalf("next page %q (more: %v), want %q", got, rest.PageInfo.HasNextPage, want)
	}
	if none, err := admin.OrderDiscountApplications(ctx, c, "gid://shopify/Order/999", 50, nil); err != nil || none.Order != nil {
		t.Fatalf("an unknown order: %+v, %v", none, err)
	}
}

func TestWebhookSubscriptionCreate(t *testing.T) {
	t.Parallel()
	f, c, _ := setup(t, shopifyfake.Config{})
	tests := []struct {
		name, url string
		wantError string
	}{
		{"https", "https://gate.example.com/webhooks/shopify", ""},
		{"loopback http for tests", "http://127.0.0.1:9999/webhooks/shopify", ""},
		{"duplicate", "https://gate.example.com/webhooks/shopify", "already been taken"},
		{"plain http", "http://gate.example.com/webhooks/shopify", "not supported"},
	}
	// Not parallel: "duplicate" needs the first case's subscription, and the fake is checked after them.
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := admin.WebhookSubscriptionCreate(context.Background(), c, admin.WebhookSubscriptionTopicOrdersPaid, tc.url)
			if err != nil {
				t.Fatal(err)
			}
			p := resp.WebhookSubscriptionCreate
			if tc.wantError == "" {
				if len(p.UserErrors) > 0 || p.WebhookSubscription == nil || p.WebhookSubscription.Id == "" {
					t.Fatalf("want created, got %+v", p.UserErrors)
				}
				return
			}
			if len(p.UserErrors) == 0 || !strings.Contains(p.UserErrors[0].Message, tc.wantError) {
				t.Fatalf("want %q, got %+v", tc.wantError, p.UserErrors)
			}
		})
	}
	if subs := f.WebhookSubscriptions(shopDomain); len(subs) != 2 || subs[0].Topic != "ORDERS_PAID" || subs[0].Format != "JSON" {
		t.Fatalf("subscriptions %+v", subs)
	}
}

// TestWebhookSubscriptions finds subscriptions by topics and callback address, in pages.
func TestWebhookSubscriptions(t *testing.T) {
	t.Parallel()
	_, c, _ := setup(t, shopifyfake.Config{})
	ctx := context.Background()
	const here, there = "https://gate.example.com/webhooks/shopify", "https://other.example.com/webhooks/shopify"
	made := map[string]string{}
	for _, sub := range []struct {
		topic admin.WebhookSubscriptionTopic
		url   string
	}{
		{admin.WebhookSubscriptionTopicOrdersPaid, here},
		{admin.WebhookSubscriptionTopicOrdersCreate, here},
		{admin.WebhookSubscriptionTopicOrdersPaid, there},
		{admin.WebhookSubscriptionTopicAppUninstalled, here},
	} {
		resp, err := admin.WebhookSubscriptionCreate(ctx, c, sub.topic, sub.url)
		if err != nil || resp.WebhookSubscriptionCreate.WebhookSubscription == nil {
			t.Fatalf("create %s %s: %v", sub.topic, sub.url, err)
		}
		made[string(sub.topic)+" "+sub.url] = resp.WebhookSubscriptionCreate.WebhookSubscription.Id
	}
	tests := []struct {
		name   string
		topics []admin.WebhookSubscriptionTopic
		url    string
		want   []string
	}{
		{"one topic here", []admin.WebhookSubscriptionTopic{admin.WebhookSubscriptionTopicOrdersPaid}, here, []string{made["ORDERS_PAID "+here]}},
		{"one topic there", []admin.WebhookSubscriptionTopic{admin.WebhookSubscriptionTopicOrdersPaid}, there, []string{made["ORDERS_PAID "+there]}},
		{"every topic here, in pages", nil, here, []string{made["ORDERS_PAID "+here], made["ORDERS_CREATE "+here], made["APP_UNINSTALLED "+here]}},
		{"none", []admin.WebhookSubscriptionTopic{admin.WebhookSubscriptionTopicRefundsCreate}, here, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			var after *string
			for {
				resp, err := admin.WebhookSubscriptions(ctx, c, 2, after, tc.topics, tc.url)
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range resp.WebhookSubscriptions.Nodes {
					got = append(got, n.Id)
				}
				if !resp.WebhookSubscriptions.PageInfo.HasNextPage {
					break
				}
				after = &resp.WebhookSubscriptions.PageInfo.EndCursor
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNewClientEndpoint(t *testing.T) {
	t.Parallel()
	tests := []struct{ base, want string }{
		{"blue-bottle.myshopify.com", "https://blue-bottle.myshopify.com/admin/api/2025-01/graphql.json"},
		{"https://blue-bottle.myshopify.com/", "https://blue-bottle.myshopify.com/admin/api/2025-01/graphql.json"},
		{"http://127.0.0.1:8080/blue-bottle", "http://127.0.0.1:8080/blue-bottle/admin/api/2025-01/graphql.json"},
	}
	for _, tc := range tests {
		if got := admin.NewClient(tc.base, "2025-01", "tok", nil).Endpoint(); got != tc.want {
			t.Errorf("NewClient(%q).Endpoint() = %q, want %q", tc.base, got, tc.want)
		}
	}
}
