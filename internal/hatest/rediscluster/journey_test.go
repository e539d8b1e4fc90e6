//go:build ha

package rediscluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/messaging/messagingfake"
	"github.com/coupongate/coupongate/integrations/shopify/shopifyfake"
	"github.com/coupongate/coupongate/integrations/woocommerce"
	"github.com/coupongate/coupongate/integrations/woocommerce/woofake"
	"github.com/coupongate/coupongate/internal/apptest"
)

// The journeys' sizes.
const (
	importCodes   = 200_000 // codes of the big import, run beside the rest
	allocCodes    = 20_000  // codes of the list the allocations and the messages draw from
	allocations   = 6_000   // allocations, one recipient each
	allocClients  = 32      // clients allocating at once
	shopifyOrders = 1_500   // Shopify orders/paid deliveries, one code each, each sent twice
	wooOrders     = 1_500   // WooCommerce order.updated deliveries, as many
	hookClients   = 8       // clients sending each platform's deliveries
	emails        = 1_500   // recipients of the bulk email
)

// shopifySecret signs the Shopify deliveries; the stack's app has it.
const shopifySecret = "ha-shopify-app-secret"

// stack is Coupongate (gateway and worker in the test's process, internal/apptest) on a Redis
// Cluster and the package's PostgreSQL, with a merchant that installed a Shopify shop and
// connected a fake WooCommerce store, and an SMTP sink for its email channel.
type stack struct {
	*apptest.Harness
	m        apptest.Merchant
	merchant uuid.UUID
	shop     string
	woo      *woofake.Fake
	wooConn  string
	wooHook  woofake.Webhook
	sink     *messagingfake.SMTPSink
	client   *http.Client
}

// startStack starts Coupongate on the cluster. pick, when set, is asked about each merchant
// installed (their ids are random) and the first it accepts is used; it sees the merchant's id.
func startStack(t *testing.T, c *Cluster, pick func(uuid.UUID) bool) *stack {
	t.Helper()
	h := apptest.Start(t, env, apptest.Options{Worker: true, Configure: func(cfg *config.Config) {
		cfg.RedisClusterAddrs = c.Addrs()
		// The plain queue names: the failover test picks the master that holds the merchant's
		// webhook queue by its key, asynq:{webhooks-N}:pending.
		cfg.QueuePrefix = ""
		cfg.ShopifyAPIKey = "ha-client-id"
		cfg.ShopifyAPISecret = shopifySecret
		cfg.ShopifyAdminURL = "http://127.0.0.1:1/{shop}"
		cfg.WorkerConcurrency = 8
		cfg.DBMaxConns = 40
		cfg.ReconcileInterval = time.Hour
	}})
	s := &stack{Harness: h, client: &http.Client{Timeout: 60 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 2 * allocClients, MaxConnsPerHost: 4 * allocClients}}}
	t.Cleanup(s.client.CloseIdleConnections)
	ctx := context.Background()
	for try := 0; ; try++ {
		if try == 60 {
			t.Fatal("no merchant out of 60 suited the test")
		}
		shop := fmt.Sprintf("ha-%d.myshopify.com", time.Now().UnixNano())
		var keys core.MerchantKeys
		route, created, err := h.App.DB.InstallShop(ctx, "shopify", shop, core.Credentials{AccessToken: "shpat_ha"},
			"write_discounts,read_orders,read_discounts", func() (core.StoredMerchant, error) {
				m, k, err := core.NewStoredMerchant("HA "+shop, time.Now())
				keys = k
				return m, err
			})
		if err != nil || !created {
			t.Fatalf("install %s: created %v, %v", shop, created, err)
		}
		if pick != nil && !pick(route.MerchantID) {
			continue
		}
		s.m = apptest.Merchant{ID: route.MerchantID.String(), APIKey: keys.APIKey, StorefrontKey: keys.StorefrontKey}
		s.merchant, s.shop = route.MerchantID, shop
		break
	}

	// The WooCommerce store, connected with keys (its webhooks are created and pinged at once).
	fake, err := woofake.Start(woofake.Config{TLS: false})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	s.woo = fake
	r := s.Admin(t, s.m, http.MethodPost, "/api/v1/connections/woocommerce", map[string]any{"site_url": fake.URL(),
		"consumer_key": woofake.DefaultConsumerKey, "consumer_secret": woofake.DefaultConsumerSecret})
	if r.Status != http.StatusCreated {
		t.Fatalf("connect the store: %d %s", r.Status, r.Body)
	}
	s.wooConn = r.Map(t)["id"].(string)
	for _, wh := range fake.Webhooks() {
		if wh.Topic == "order.updated" && wh.Status == "active" && strings.HasSuffix(wh.DeliveryURL, "/webhooks/woocommerce/"+s.wooConn) {
			s.wooHook = wh
		}
	}
	if s.wooHook.ID == 0 {
		t.Fatalf("no active order.updated webhook for the connection: %+v", fake.Webhooks())
	}

	// The email channel, on the sink.
	sink, err := messagingfake.StartSMTPSink(messagingfake.SinkConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sink.Close)
	s.sink = sink
	host, port := sink.Addr()
	if r := s.Admin(t, s.m, http.MethodPut, "/api/v1/channels/email", map[string]any{"host": host, "port": port,
		"username": "", "password": "", "from": "HA <codes@ha.example>", "security": "none"}); r.Status != http.StatusOK {
		t.Fatalf("email channel: %d %s", r.Status, r.Body)
	}
	return s
}

// codesOf makes n codes with prefix.
func codesOf(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%07d", prefix, i)
	}
	return out
}

// startImport uploads codes as text into list and returns the import's id.
func (s *stack) startImport(t *testing.T, list string, codes []string) string {
	t.Helper()
	r := s.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists/" + list + "/imports",
		Body: strings.NewReader(strings.Join(codes, "\n") + "\n"), ContentType: "text/plain", APIKey: s.m.APIKey})
	if r.Status != http.StatusAccepted {
		t.Fatalf("import into %s: %d %s", list, r.Status, r.Body)
	}
	return r.Map(t)["id"].(string)
}

// waitImport waits until the import succeeded and checks that it imported exactly n codes and the
// list counts n.
func (s *stack) waitImport(t testing.TB, list, id string, n int, timeout time.Duration) {
	t.Helper()
	var imp struct {
		Status   string `json:"status"`
		Imported int64  `json:"imported"`
		Rows     int64  `json:"rows"`
	}
	apptest.Eventually(t, timeout, "import "+id+" to finish", func() bool {
		r := s.Admin(t, s.m, http.MethodGet, "/api/v1/lists/"+list+"/imports/"+id, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("import %s: %d %s", id, r.Status, r.Body)
		}
		r.JSON(t, &imp)
		if imp.Status == "failed" {
			t.Fatalf("import %s failed: %s", id, r.Body)
		}
		return imp.Status == "succeeded"
	})
	if imp.Imported != int64(n) || imp.Rows != int64(n) {
		t.Fatalf("import %s: %d rows, %d imported; want %d each", id, imp.Rows, imp.Imported, n)
	}
	if c := s.counts(t, list); c.Total != int64(n) {
		t.Fatalf("list %s counts %d codes after importing %d", list, c.Total, n)
	}
}

// counts are a list's counts as the API shows them.
func (s *stack) counts(t testing.TB, list string) core.Counts {
	t.Helper()
	var l struct {
		Counts core.Counts `json:"counts"`
	}
	r := s.Admin(t, s.m, http.MethodGet, "/api/v1/lists/"+list, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("list %s: %d %s", list, r.Status, r.Body)
	}
	r.JSON(t, &l)
	return l.Counts
}

// answer is one HTTP exchange of the load: when it was sent and answered, and its status.
type answer struct {
	kind       string
	sent, done time.Time
	status     int
}

// ledger keeps every answer of the load. A 503 must be dependency_unavailable with Retry-After;
// any other answer but a 2xx fails the test.
type ledger struct {
	mu      sync.Mutex
	answers []answer
	ok      map[string]*atomic.Int64
}

func newLedger() *ledger {
	l := &ledger{ok: map[string]*atomic.Int64{}}
	for _, k := range []string{"allocation", "shopify", "woocommerce"} {
		l.ok[k] = &atomic.Int64{}
	}
	return l
}

// send makes req (built anew by mk for each try) until it is answered 2xx and returns the body.
// A 503 dependency_unavailable with Retry-After is tried again (sooner than Retry-After asks, to
// keep the test short); anything else fails the test.
func (l *ledger) send(t testing.TB, c *http.Client, kind string, mk func() *http.Request) []byte {
	for try := 0; ; try++ {
		sent := time.Now()
		resp, err := c.Do(mk())
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: read the answer: %v", kind, err)
		}
		done := time.Now()
		l.mu.Lock()
		l.answers = append(l.answers, answer{kind: kind, sent: sent, done: done, status: resp.StatusCode})
		l.mu.Unlock()
		switch {
		case resp.StatusCode/100 == 2:
			l.ok[kind].Add(1)
			return body
		case resp.StatusCode == http.StatusServiceUnavailable:
			var e struct {
				Error struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			_ = json.Unmarshal(body, &e)
			if e.Error.Code != "dependency_unavailable" || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("%s: 503 without dependency_unavailable and Retry-After: %q %s", kind, resp.Header.Get("Retry-After"), body)
			}
			if try == 600 {
				t.Fatalf("%s: still 503 after 600 tries", kind)
			}
			time.Sleep(100 * time.Millisecond)
		default:
			t.Fatalf("%s: %d %s (only 2xx, or 503 dependency_unavailable, may answer)", kind, resp.StatusCode, body)
		}
	}
}

// statuses counts the answers by status.
func (l *ledger) statuses() map[int]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int]int{}
	for _, a := range l.answers {
		out[a.status]++
	}
	return out
}

// run runs f(i) for i in [0, n) on clients goroutines.
func run(t *testing.T, n, clients int, f func(tb testing.TB, i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tb := apptest.InGoroutine(t)
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(tb, i)
			}
		}()
	}
	wg.Wait()
}

// journeys is what runJourneys did, for the checks and the failover's figures.
type journeys struct {
	allocList, hookList string
	ledger              *ledger
	allocated           []string // code of each allocation's recipient
	shopifyCodes        []string
	wooCodes            []string
}

// runJourneys runs, all at once on s: an import of importCodes codes into a new list;
// allocations (allocClients clients) from a list of allocCodes; Shopify and WooCommerce paid
// orders, each delivery sent twice, on the codes of a third list; and a bulk email to emails
// recipients from the allocations' list. midway, when set, is called once while allocations and
// deliveries are in flight (a quarter of each acknowledged). Everything is checked after.
//
// allocListSuits, when set, is asked about each new list for the allocations (ids are random)
// until it accepts one; the others stay empty.
func runJourneys(t *testing.T, s *stack, allocListSuits func(list string) bool, midway func()) journeys {
	j := journeys{ledger: newLedger(), allocated: make([]string, allocations)}
	for try := 0; ; try++ {
		if try == 60 {
			t.Fatal("no list out of 60 suited the test")
		}
		j.allocList = s.CreateList(t, s.m, map[string]any{"name": fmt.Sprintf("HA allocations %d", try)})
		if allocListSuits == nil || allocListSuits(j.allocList) {
			break
		}
	}
	j.hookList = s.CreateList(t, s.m, map[string]any{"name": "HA orders"})
	bigList := s.CreateList(t, s.m, map[string]any{"name": "HA import"})
	hookCodes := codesOf("HAORD", shopifyOrders+wooOrders)
	j.shopifyCodes, j.wooCodes = hookCodes[:shopifyOrders], hookCodes[shopifyOrders:]
	s.waitImport(t, j.allocList, s.startImport(t, j.allocList, codesOf("HAALLOC", allocCodes)), allocCodes, 5*time.Minute)
	s.waitImport(t, j.hookList, s.startImport(t, j.hookList, hookCodes), len(hookCodes), 5*time.Minute)

	var tmpl struct{ ID string }
	if r := s.Admin(t, s.m, http.MethodPost, "/api/v1/lists/"+j.allocList+"/templates", map[string]any{"channel": "email",
		"subject": "Your code", "text": "Hi <firstname>, your code is <couponcode>"}); r.Status != http.StatusCreated {
		t.Fatalf("template: %d %s", r.Status, r.Body)
	} else {
		r.JSON(t, &tmpl)
	}

	var wg sync.WaitGroup
	stopWatch := make(chan struct{})
	if midway != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stopWatch:
					t.Errorf("the load ended before the failover was started")
					return
				case <-time.After(5 * time.Millisecond):
				}
				hooks := j.ledger.ok["shopify"].Load() + j.ledger.ok["woocommerce"].Load()
				if j.ledger.ok["allocation"].Load() >= allocations/4 && hooks >= 2*(shopifyOrders+wooOrders)/4 {
					midway()
					return
				}
			}
		}()
	}
	var load sync.WaitGroup
	start := func(f func()) {
		load.Add(1)
		go func() {
			defer load.Done()
			f()
		}()
	}

	// The big import, beside everything else.
	bigImport := s.startImport(t, bigList, codesOf("HABIG", importCodes))
	start(func() { s.waitImport(apptest.InGoroutine(t), bigList, bigImport, importCodes, 10*time.Minute) })

	// Allocations: one recipient each.
	start(func() {
		url := s.URL + "/api/v1/lists/" + j.allocList + "/allocations"
		run(t, allocations, allocClients, func(tb testing.TB, i int) {
			body, _ := json.Marshal(map[string]any{"recipient": map[string]any{"email": fmt.Sprintf("a%05d@alloc.example", i)}, "campaign": "ha"})
			out := j.ledger.send(tb, s.client, "allocation", func() *http.Request {
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+s.m.APIKey)
				req.Header.Set("Content-Type", "application/json")
				return req
			})
			var a struct {
				Code string `json:"code"`
			}
			if err := json.Unmarshal(out, &a); err != nil || a.Code == "" {
				tb.Fatalf("allocation %d: %s", i, out)
			}
			j.allocated[i] = a.Code
		})
	})

	// Shopify orders/paid, each delivery twice (Shopify's retry): accepted, then duplicate.
	start(func() {
		url := s.URL + "/webhooks/shopify"
		run(t, shopifyOrders, hookClients, func(tb testing.TB, i int) {
			body, _ := json.Marshal(map[string]any{"id": 9_000_000 + i, "name": fmt.Sprintf("#%d", i), "email": fmt.Sprintf("s%05d@orders.example", i),
				"financial_status": "paid", "discount_codes": []any{map[string]any{"code": j.shopifyCodes[i], "amount": "10.00", "type": "percentage"}},
				// Shopify names a code used at checkout among the order's discount applications too.
				"discount_applications": []any{map[string]any{"type": "discount_code", "code": j.shopifyCodes[i], "value": "10.0", "value_type": "percentage"}}})
			for _, want := range []string{"accepted", "duplicate"} {
				out := j.ledger.send(tb, s.client, "shopify", func() *http.Request {
					req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
					h := req.Header
					h.Set("Content-Type", "application/json")
					h.Set("X-Shopify-Topic", "orders/paid")
					h.Set("X-Shopify-Hmac-Sha256", shopifyfake.SignWebhook(shopifySecret, body))
					h.Set("X-Shopify-Shop-Domain", s.shop)
					h.Set("X-Shopify-Webhook-Id", fmt.Sprintf("ha-wh-%d", i))
					h.Set("X-Shopify-Event-Id", fmt.Sprintf("ha-ev-%d", i))
					h.Set("X-Shopify-Triggered-At", time.Now().UTC().Format(time.RFC3339Nano))
					h.Set("X-Shopify-API-Version", "2025-01")
					return req
				})
				if !bytes.Contains(out, []byte(`"`+want+`"`)) {
					tb.Fatalf("shopify delivery %d: %s, want %s", i, out, want)
				}
			}
		})
	})

	// WooCommerce order.updated (processing: paid), each delivery twice: accepted, then duplicate.
	start(func() {
		url := s.URL + "/webhooks/woocommerce/" + s.wooConn
		webhookID := strconv.FormatInt(s.wooHook.ID, 10)
		run(t, wooOrders, hookClients, func(tb testing.TB, i int) {
			body, _ := json.Marshal(map[string]any{"id": 8_000_000 + i, "status": "processing", "currency": "USD", "total": "90.00",
				"billing":      map[string]any{"email": fmt.Sprintf("w%05d@orders.example", i)},
				"coupon_lines": []any{map[string]any{"id": i + 1, "code": j.wooCodes[i], "discount": "10.00"}}})
			for _, want := range []string{"accepted", "duplicate"} {
				out := j.ledger.send(tb, s.client, "woocommerce", func() *http.Request {
					req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
					h := req.Header
					h.Set("Content-Type", "application/json")
					h.Set("User-Agent", woofake.UserAgent)
					h.Set(woocommerce.HeaderSource, s.woo.URL()+"/")
					h.Set(woocommerce.HeaderTopic, "order.updated")
					h.Set(woocommerce.HeaderResource, "order")
					h.Set(woocommerce.HeaderEvent, "updated")
					h.Set(woocommerce.HeaderSignature, woocommerce.SignWebhook(body, s.wooHook.Secret))
					h.Set(woocommerce.HeaderWebhookID, webhookID)
					h.Set(woocommerce.HeaderDeliveryID, fmt.Sprintf("%032x", i))
					return req
				})
				if !bytes.Contains(out, []byte(`"`+want+`"`)) {
					tb.Fatalf("woocommerce delivery %d: %s, want %s", i, out, want)
				}
			}
		})
	})

	// A bulk email from a CSV of recipients, drawn from the allocations' list.
	var jobID string
	start(func() {
		tb := apptest.InGoroutine(t)
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		for _, f := range [][2]string{{"channel", "email"}, {"template_id", tmpl.ID}, {"campaign", "ha-mail"}} {
			_ = mw.WriteField(f[0], f[1])
		}
		fw, _ := mw.CreateFormFile("file", "recipients.csv")
		io.WriteString(fw, "email,first_name\n")
		for i := range emails {
			fmt.Fprintf(fw, "m%05d@mail.example,Guest%05d\n", i, i)
		}
		_ = mw.Close()
		r := s.Do(tb, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists/" + j.allocList + "/deliveries/bulk",
			Body: bytes.NewReader(body.Bytes()), ContentType: mw.FormDataContentType(), APIKey: s.m.APIKey})
		if r.Status != http.StatusAccepted {
			tb.Fatalf("bulk delivery: %d %s", r.Status, r.Body)
		}
		jobID = r.Map(tb)["id"].(string)
	})

	load.Wait()
	close(stopWatch)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	s.checkAllocations(t, j)
	s.checkEmails(t, j, jobID)
	s.checkWebhooks(t, j)
	// Both draws from the allocations' list are in its counts, exactly.
	if c := s.counts(t, j.allocList); c.Total != allocCodes || c.Delivered != allocations+emails || c.Available != allocCodes-allocations-emails {
		t.Fatalf("allocations' list counts %+v; want %d in all, %d delivered, %d available", c, allocCodes, allocations+emails, allocCodes-allocations-emails)
	}
	return j
}

// checkAllocations: every acknowledged allocation is in PostgreSQL with the code its answer gave,
// once, and no code went to two recipients.
func (s *stack) checkAllocations(t *testing.T, j journeys) {
	t.Helper()
	byCode := map[string]int{}
	for i, code := range j.allocated {
		if code == "" {
			t.Fatalf("allocation %d got no answer", i)
		}
		if prev, ok := byCode[code]; ok {
			t.Fatalf("code %s went to allocations %d and %d", code, prev, i)
		}
		byCode[code] = i
	}
	rows, err := s.App.DB.Pool().Query(context.Background(), `SELECT a.recipient_email, c.code FROM allocations a
		JOIN codes c ON c.merchant_id = a.merchant_id AND c.list_id = a.list_id AND c.seq = a.seq
		WHERE a.merchant_id = $1 AND a.list_id = $2 AND a.channel = 'api'`, s.merchant, j.allocList)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	stored := 0
	for rows.Next() {
		var email, code string
		if err := rows.Scan(&email, &code); err != nil {
			t.Fatal(err)
		}
		stored++
		i, ok := byCode[code]
		if !ok || email != fmt.Sprintf("a%05d@alloc.example", i) {
			t.Fatalf("PostgreSQL holds code %s for %s, which no answer gave it (answers: %v)", code, email, ok)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if stored != allocations {
		t.Fatalf("%d allocations stored, %d acknowledged", stored, allocations)
	}
}

// mailCode is a code of the allocations' list in a message.
var mailCode = regexp.MustCompile(`HAALLOC[0-9]{7}`)

// checkEmails waits for the bulk job to finish and checks the sink: one message per recipient,
// one code each, no code twice and none an allocation's.
func (s *stack) checkEmails(t *testing.T, j journeys, jobID string) {
	t.Helper()
	var job struct {
		Status string `json:"status"`
		Total  int64  `json:"total"`
		Sent   int64  `json:"sent"`
		Failed int64  `json:"failed"`
	}
	apptest.Eventually(t, 5*time.Minute, "the bulk email to be sent", func() bool {
		r := s.Admin(t, s.m, http.MethodGet, "/api/v1/lists/"+j.allocList+"/deliveries/bulk/"+jobID, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("job: %d %s", r.Status, r.Body)
		}
		r.JSON(t, &job)
		if job.Status == "failed" || job.Failed > 0 {
			t.Fatalf("bulk job: %s", r.Body)
		}
		return job.Status == "done" && job.Sent == emails && s.sink.Count() >= emails
	})
	msgs := s.sink.Messages()
	if len(msgs) != emails {
		t.Fatalf("the sink holds %d messages for %d recipients", len(msgs), emails)
	}
	allocated := map[string]bool{}
	for _, c := range j.allocated {
		allocated[c] = true
	}
	to, codes := map[string]bool{}, map[string]bool{}
	for _, m := range msgs {
		found := mailCode.FindAllString(m.Text, -1)
		if len(m.To) != 1 || len(found) != 1 {
			t.Fatalf("message to %v holds codes %v: want one recipient and one code", m.To, found)
		}
		if to[m.To[0]] || codes[found[0]] || allocated[found[0]] {
			t.Fatalf("message to %s with %s: a recipient twice, a code twice, or an allocated code", m.To[0], found[0])
		}
		to[m.To[0]], codes[found[0]] = true, true
	}
	for i := range emails {
		if !to[fmt.Sprintf("m%05d@mail.example", i)] {
			t.Fatalf("recipient %d got no message", i)
		}
	}
}

// checkWebhooks waits until every delivery is applied and checks each order's code used exactly
// once.
func (s *stack) checkWebhooks(t *testing.T, j journeys) {
	t.Helper()
	ctx := context.Background()
	db := s.App.DB.Pool()
	want := int64(len(j.shopifyCodes) + len(j.wooCodes))
	var received, processed, total int64
	// A batch task lost with a failed master is queued again by the next delivery once its mark
	// expires (a minute), or by the sweeper after core.StallAfter.
	apptest.Eventually(t, 5*time.Minute, "every webhook delivery to be applied", func() bool {
		if err := db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'received'), count(*) FILTER (WHERE status = 'processed'), count(*)
			FROM webhook_deliveries WHERE merchant_id = $1`, s.merchant).Scan(&received, &processed, &total); err != nil {
			t.Fatal(err)
		}
		return received == 0 && total > 0
	})
	if total != want || processed != want {
		t.Fatalf("%d deliveries stored, %d processed; want %d each (each sent twice)", total, processed, want)
	}
	var once, uses, rows int64
	if err := db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE uses = 1), coalesce(sum(uses), 0), count(*) FROM codes
		WHERE merchant_id = $1 AND list_id = $2`, s.merchant, j.hookList).Scan(&once, &uses, &rows); err != nil {
		t.Fatal(err)
	}
	if once != want || uses != want || rows != want {
		t.Fatalf("%d of %d codes used exactly once, %d uses; want every one of %d once", once, rows, uses, want)
	}
	if c := s.counts(t, j.hookList); c.Redeemed != want {
		t.Fatalf("orders' list counts %+v, want %d redeemed", c, want)
	}
}

// TestJourneysOnCluster: import, allocations, Shopify and WooCommerce paid orders and a bulk
// email, all at once, on a Redis Cluster of three masters with a replica each; every count exact.
func TestJourneysOnCluster(t *testing.T) {
	c := StartCluster(t, 3, 1)
	s := startStack(t, c, nil)
	j := runJourneys(t, s, nil, nil)
	st := j.ledger.statuses()
	for status := range st {
		if status/100 != 2 {
			t.Fatalf("answers by status %v: with every node up, every answer is a 2xx", st)
		}
	}
	t.Logf("on the cluster: %d codes imported beside the load; %d allocations by %d clients, each its own code; %d Shopify and %d WooCommerce paid orders (each delivery twice), every code used once; %d emails, one per recipient; answers %v",
		importCodes, allocations, allocClients, shopifyOrders, wooOrders, emails, st)
}
