//go:build ha

package rediscluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/coupongate/coupongate/integrations/woocommerce"
	"github.com/coupongate/coupongate/integrations/woocommerce/woofake"
	"github.com/coupongate/coupongate/internal/apptest"
)

// The many-process test's sizes.
const (
	manyImport      = 1_000_000 // codes of the import a worker is killed in the middle of
	manyAllocCodes  = 30_000    // codes of the list the allocations draw from
	manyAllocations = 12_000    // allocations, one recipient each, through every gateway
	manyValidations = 12_000    // storefront validations of allocated codes
	manyOrders      = 3_000     // WooCommerce paid orders, one code each, each delivery sent twice
	manyClients     = 24        // clients of each kind at once
)

// process is one gateway or worker started from its binary.
type process struct {
	name string
	url  string // a gateway's base URL
	cmd  *exec.Cmd
	done chan struct{}
	dead atomic.Bool // killed by the test
}

// farm is three gateways and two workers on one PostgreSQL database and one Redis Cluster.
type farm struct {
	t        *testing.T
	bin      string
	env      []string
	gateways []*process
	workers  []*process
	next     atomic.Int64 // round robin over the gateways
	unheard  atomic.Int64 // requests a gateway took and never answered (killed), sent again
}

// buildBinaries builds the gateway, the worker and couponctl into a temporary directory.
func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-pgo=off", "-o", dir+"/",
		"github.com/coupongate/coupongate/cmd/gateway", "github.com/coupongate/coupongate/cmd/worker",
		"github.com/coupongate/coupongate/cmd/couponctl")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the binaries: %v\n%s", err, out)
	}
	return dir
}

// start starts one process of the farm; extra are its own environment variables.
func (f *farm) start(name string, extra ...string) *process {
	f.t.Helper()
	cmd := exec.Command(filepath.Join(f.bin, strings.SplitN(name, "-", 2)[0]))
	cmd.Env = append(append(os.Environ(), f.env...), extra...)
	logFile, err := os.Create(filepath.Join(f.t.TempDir(), name+".log"))
	if err != nil {
		f.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	f.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
		if f.t.Failed() {
			if b, err := os.ReadFile(logFile.Name()); err == nil && len(b) > 0 {
				f.t.Logf("%s's log, last lines:\n%s", name, tail(b, 20))
			}
		}
	})
	return p
}

// tail is the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// startGateway starts a gateway on a port of its own and waits until it is healthy.
func (f *farm) startGateway(name string) *process {
	port := freePorts(f.t, 1)[0]
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	p := f.start(name, "HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port), "APP_URL="+url)
	p.url = url
	apptest.Eventually(f.t, 60*time.Second, name+" to be healthy", func() bool {
		select {
		case <-p.done:
			f.t.Fatalf("%s exited", name)
		default:
		}
		resp, err := http.Get(url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// kill stops p with SIGKILL, as a machine that dies does.
func (f *farm) kill(p *process) {
	p.dead.Store(true)
	_ = p.cmd.Process.Kill()
	<-p.done
}

// errGatewayGone is a request whose gateway did not answer: it was not acknowledged.
var errGatewayGone = errors.New("the gateway did not answer")

// do sends a request built by mk to the next living gateway, and again to another while a
// gateway does not answer (killed) or answers 503 dependency_unavailable with Retry-After. Any
// other answer is returned; a 5xx other than that fails the test.
func (f *farm) do(tb testing.TB, c *http.Client, mk func(base string) *http.Request) (int, []byte) {
	for try := 0; try < 600; try++ {
		g := f.gateways[int(f.next.Add(1))%len(f.gateways)]
		if g.dead.Load() {
			continue
		}
		resp, err := c.Do(mk(g.url))
		if err != nil {
			f.unheard.Add(1)
			continue // not acknowledged: the gateway is going or gone
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			continue
		}
		if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" &&
			bytes.Contains(body, []byte(`"dependency_unavailable"`)) {
			time.Sleep(50 * time.Millisecond) // a retrying client; the test asserts nothing about the wait
			continue
		}
		if resp.StatusCode >= 500 {
			tb.Fatalf("%s answered %d: %s", g.name, resp.StatusCode, body)
		}
		return resp.StatusCode, body
	}
	tb.Fatal(errGatewayGone)
	return 0, nil
}

// TestManyProcesses: three gateways and two workers, as processes, on one database and one Redis
// Cluster. Imports, allocations, validations and WooCommerce webhooks go through all gateways at
// once; one worker is killed with SIGKILL in the middle of a 1,000,000-code import and one gateway
// in the middle of the load. Afterwards the counts are exact: the import holds every code once,
// every acknowledged allocation is in PostgreSQL with the code its answer gave and no code went
// to two recipients, every acknowledged paid order counted its code exactly once.
func TestManyProcesses(t *testing.T) {
	c := StartCluster(t, 3, 1)
	f := &farm{t: t, bin: buildBinaries(t), env: []string{
		"DATABASE_URL=" + env.DatabaseURL, "REDIS_CLUSTER_ADDRS=" + strings.Join(c.Addrs(), ","),
		"LOG_LEVEL=warn", "APP_SECRET=" + strings.Repeat("m", 40), "DB_MAX_CONNS=12", "WORKER_CONCURRENCY=4",
		"METRICS_ADDR=off", "ALLOW_PRIVATE_NETWORKS=true", "VALIDATION_FAILURES_PER_MINUTE=100000000",
	}}
	// worker-1 alone takes the imports up to the big one; worker-2 starts just before it is killed.
	f.workers = []*process{f.start("worker-1")}
	for i := range 3 {
		f.gateways = append(f.gateways, f.startGateway(fmt.Sprintf("gateway-%d", i+1)))
	}
	db, err := pgxpool.New(context.Background(), env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)

	// A merchant, made as an operator does.
	ctl := exec.Command(filepath.Join(f.bin, "couponctl"), "merchant", "create", "--name", "Many processes", "--json")
	ctl.Env = append(os.Environ(), f.env...)
	out, err := ctl.Output()
	if err != nil {
		t.Fatalf("couponctl merchant create: %v", err)
	}
	var keys struct {
		MerchantID    string `json:"merchant_id"`
		APIKey        string `json:"api_key"`
		StorefrontKey string `json:"storefront_key"`
	}
	if err := json.Unmarshal(out, &keys); err != nil {
		t.Fatalf("couponctl's JSON: %v: %s", err, out)
	}
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4 * manyClients}}
	t.Cleanup(client.CloseIdleConnections)
	admin := func(tb testing.TB, method, path string, body any, contentType string) (int, []byte) {
		var raw []byte
		switch b := body.(type) {
		case nil:
		case []byte:
			raw = b
		default:
			raw, _ = json.Marshal(b)
			contentType = "application/json"
		}
		return f.do(tb, client, func(base string) *http.Request {
			req, _ := http.NewRequest(method, base+path, bytes.NewReader(raw))
			req.Header.Set("Authorization", "Bearer "+keys.APIKey)
			if contentType != "" {
				req.Header.Set("Content-Type", contentType)
			}
			return req
		})
	}
	newList := func(name string) string {
		st, body := admin(t, http.MethodPost, "/api/v1/lists", map[string]any{"name": name}, "")
		if st != http.StatusCreated {
			t.Fatalf("create list: %d %s", st, body)
		}
		var l struct{ ID string }
		_ = json.Unmarshal(body, &l)
		return l.ID
	}
	importCodes := func(list string, codes []string) string {
		st, body := admin(t, http.MethodPost, "/api/v1/lists/"+list+"/imports", []byte(strings.Join(codes, "\n")+"\n"), "text/plain")
		if st != http.StatusAccepted {
			t.Fatalf("import into %s: %d %s", list, st, body)
		}
		var imp struct{ ID string }
		_ = json.Unmarshal(body, &imp)
		return imp.ID
	}
	importStatus := func(tb testing.TB, list, id string) (status string, imported int64) {
		st, body := admin(tb, http.MethodGet, "/api/v1/lists/"+list+"/imports/"+id, nil, "")
		if st != http.StatusOK {
			tb.Fatalf("import %s: %d %s", id, st, body)
		}
		var imp struct {
			Status   string `json:"status"`
			Imported int64  `json:"imported"`
		}
		_ = json.Unmarshal(body, &imp)
		if imp.Status == "failed" {
			tb.Fatalf("import %s failed: %s", id, body)
		}
		return imp.Status, imp.Imported
	}
	waitImport := func(tb testing.TB, list, id string) {
		apptest.Eventually(tb, 10*time.Minute, "import "+id+" to succeed", func() bool {
			st, _ := importStatus(tb, list, id)
			return st == "succeeded"
		})
	}

	// The lists, and a WooCommerce store whose paid orders name the order list's codes.
	allocList, orderList, bigList := newList("Allocations"), newList("Orders"), newList("Import")
	orderCodes := codesOf("MPORD", manyOrders)
	waitImport(t, allocList, importCodes(allocList, codesOf("MPALLOC", manyAllocCodes)))
	waitImport(t, orderList, importCodes(orderList, orderCodes))
	fake, err := woofake.Start(woofake.Config{TLS: false})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	st, body := admin(t, http.MethodPost, "/api/v1/connections/woocommerce", map[string]any{"site_url": fake.URL(),
		"consumer_key": woofake.DefaultConsumerKey, "consumer_secret": woofake.DefaultConsumerSecret}, "")
	if st != http.StatusCreated {
		t.Fatalf("connect the store: %d %s", st, body)
	}
	var conn struct{ ID string }
	_ = json.Unmarshal(body, &conn)
	var hook woofake.Webhook
	for _, wh := range fake.Webhooks() {
		if wh.Topic == "order.updated" && wh.Status == "active" && strings.HasSuffix(wh.DeliveryURL, "/webhooks/woocommerce/"+conn.ID) {
			hook = wh
		}
	}
	if hook.ID == 0 {
		t.Fatalf("no active order.updated webhook for the connection: %+v", fake.Webhooks())
	}

	// The 1,000,000-code import, taken by worker-1; once it is under way, worker-2 starts and
	// worker-1 is killed.
	bigImport := importCodes(bigList, codesOf("MPBIG", manyImport))
	var killedWorkerAt int64
	apptest.Eventually(t, 5*time.Minute, "the big import to be under way", func() bool {
		var status string
		status, killedWorkerAt = importStatus(t, bigList, bigImport)
		if status == "succeeded" {
			t.Fatal("the import finished before a worker could be killed in its middle")
		}
		return killedWorkerAt > 0
	})
	f.workers = append(f.workers, f.start("worker-2"))
	f.kill(f.workers[0])
	t.Logf("worker-1 killed with SIGKILL %d codes into the import", killedWorkerAt)

	// The load, through all gateways; gateway-3 is killed a third of the way into the allocations.
	allocated := make([]string, manyAllocations)
	var acknowledgedOrders atomic.Int64
	var gatewayKilled sync.Once
	var load sync.WaitGroup
	allocate := func(tb testing.TB, i int) {
		if i == manyAllocations/3 {
			gatewayKilled.Do(func() { f.kill(f.gateways[2]) })
		}
		body, _ := json.Marshal(map[string]any{"recipient": map[string]any{"email": fmt.Sprintf("r%05d@many.example", i)}, "campaign": "many"})
		st, out := f.do(tb, client, func(base string) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/lists/"+allocList+"/allocations", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+keys.APIKey)
			req.Header.Set("Content-Type", "application/json")
			return req
		})
		var a struct {
			Code string `json:"code"`
		}
		if st != http.StatusCreated && st != http.StatusOK || json.Unmarshal(out, &a) != nil || a.Code == "" {
			tb.Fatalf("allocation %d: %d %s", i, st, out)
		}
		allocated[i] = a.Code
	}
	validate := func(tb testing.TB, i int) {
		// Codes of the order list: issued or not, the answer is a verdict, never an error.
		body := []byte(`{"code":"` + orderCodes[i%len(orderCodes)] + `"}`)
		st, out := f.do(tb, client, func(base string) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, base+"/storefront/v1/validate", bytes.NewReader(body))
			req.Header.Set("X-Storefront-Key", keys.StorefrontKey)
			req.Header.Set("Content-Type", "application/json")
			return req
		})
		if st != http.StatusOK || !bytes.Contains(out, []byte(`"valid"`)) {
			tb.Fatalf("validation %d: %d %s", i, st, out)
		}
	}
	webhookID := strconv.FormatInt(hook.ID, 10)
	order := func(tb testing.TB, i int) {
		body, _ := json.Marshal(map[string]any{"id": 7_000_000 + i, "status": "processing", "currency": "USD", "total": "90.00",
			"billing":      map[string]any{"email": fmt.Sprintf("o%05d@many.example", i)},
			"coupon_lines": []any{map[string]any{"id": i + 1, "code": orderCodes[i], "discount": "10.00"}}})
		for range 2 { // WooCommerce retries: the same delivery twice
			st, out := f.do(tb, client, func(base string) *http.Request {
				req, _ := http.NewRequest(http.MethodPost, base+"/webhooks/woocommerce/"+conn.ID, bytes.NewReader(body))
				h := req.Header
				h.Set("Content-Type", "application/json")
				h.Set("User-Agent", woofake.UserAgent)
				h.Set(woocommerce.HeaderSource, fake.URL()+"/")
				h.Set(woocommerce.HeaderTopic, "order.updated")
				h.Set(woocommerce.HeaderResource, "order")
				h.Set(woocommerce.HeaderEvent, "updated")
				h.Set(woocommerce.HeaderSignature, woocommerce.SignWebhook(body, hook.Secret))
				h.Set(woocommerce.HeaderWebhookID, webhookID)
				h.Set(woocommerce.HeaderDeliveryID, fmt.Sprintf("%032x", i))
				return req
			})
			if st/100 != 2 {
				tb.Fatalf("order %d: %d %s", i, st, out)
			}
		}
		acknowledgedOrders.Add(1)
	}
	for _, l := range []struct {
		n, clients int
		f          func(testing.TB, int)
	}{{manyAllocations, manyClients, allocate}, {manyValidations, manyClients / 2, validate}, {manyOrders, manyClients / 2, order}} {
		load.Add(1)
		go func() {
			defer load.Done()
			run(t, l.n, l.clients, l.f)
		}()
	}
	load.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// The import, finished by the worker left: every code once.
	waitImport(t, bigList, bigImport)
	ctx := context.Background()
	var total, distinct int64
	if err := db.QueryRow(ctx, `SELECT count(*), count(DISTINCT code) FROM codes WHERE merchant_id = $1 AND list_id = $2`,
		keys.MerchantID, bigList).Scan(&total, &distinct); err != nil {
		t.Fatal(err)
	}
	if total != manyImport || distinct != manyImport {
		t.Fatalf("the import holds %d codes, %d distinct; want %d each", total, distinct, manyImport)
	}

	// Allocations: each acknowledged one is stored with its code; no code went to two recipients.
	byCode := map[string]int{}
	for i, code := range allocated {
		if prev, ok := byCode[code]; ok {
			t.Fatalf("code %s was answered to allocations %d and %d", code, prev, i)
		}
		byCode[code] = i
	}
	rows, err := db.Query(ctx, `SELECT a.recipient_email, c.code FROM allocations a
		JOIN codes c ON c.merchant_id = a.merchant_id AND c.list_id = a.list_id AND c.seq = a.seq
		WHERE a.merchant_id = $1 AND a.list_id = $2`, keys.MerchantID, allocList)
	if err != nil {
		t.Fatal(err)
	}
	holder := map[string]string{}
	stored := 0
	for rows.Next() {
		var email, code string
		if err := rows.Scan(&email, &code); err != nil {
			t.Fatal(err)
		}
		if prev, ok := holder[code]; ok && prev != email {
			t.Fatalf("code %s went to %s and %s", code, prev, email)
		}
		holder[code] = email
		stored++
	}
	rows.Close()
	for code, i := range byCode {
		if holder[code] != fmt.Sprintf("r%05d@many.example", i) {
			t.Fatalf("allocation %d was answered %s, which PostgreSQL holds for %q", i, code, holder[code])
		}
	}
	// A request the killed gateway took but never answered may have allocated a code too: it is
	// its recipient's (asked again, the recipient got the same one within the reassign window).
	t.Logf("%d allocations acknowledged, %d stored", len(allocated), stored)

	// Orders: every delivery applied, each acknowledged order's code used exactly once.
	apptest.Eventually(t, 5*time.Minute, "every webhook delivery to be applied", func() bool {
		var received int64
		if err := db.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE merchant_id = $1 AND status = 'received'`,
			keys.MerchantID).Scan(&received); err != nil {
			t.Fatal(err)
		}
		return received == 0
	})
	var used, uses int64
	if err := db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE uses > 0), coalesce(sum(uses), 0) FROM codes WHERE merchant_id = $1 AND list_id = $2`,
		keys.MerchantID, orderList).Scan(&used, &uses); err != nil {
		t.Fatal(err)
	}
	if used != acknowledgedOrders.Load() || uses != used {
		t.Fatalf("%d order codes used, %d uses; want %d acknowledged orders, each once", used, uses, acknowledgedOrders.Load())
	}
	t.Logf("import %d codes, worker killed at %d; %d allocations, %d validations, %d orders each sent twice; gateway-3 killed at allocation %d, %d requests it never answered sent again",
		manyImport, killedWorkerAt, manyAllocations, manyValidations, manyOrders, manyAllocations/3, f.unheard.Load())
}
