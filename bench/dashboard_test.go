package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/browsertest"
	"github.com/coupongate/coupongate/store"
)

// dashboardCodes is how many codes BenchmarkDashboard10M's list holds (BENCH_DASHBOARD_CODES,
// default 10,000,000; a smaller number checks the benchmark itself quickly).
func dashboardCodes() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_DASHBOARD_CODES")); err == nil && n >= 10_000 {
		return n
	}
	return 10 * million
}

// dashboardRequests is how many times each page is loaded (BENCH_DASHBOARD_REQUESTS, default 200).
func dashboardRequests() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_DASHBOARD_REQUESTS")); err == nil && n > 0 {
		return n
	}
	return 200
}

// dashClient loads dashboard pages as a signed-in browser would, without following redirects
// (a page that sends the bench elsewhere is a failure).
var dashClient = &http.Client{
	Transport:     client.Transport,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// serverTiming reads the gateway's Server-Timing: page;dur=<ms>.
var serverTiming = regexp.MustCompile(`(?:^|,\s*)page;dur=([0-9.]+)`)

// dashPage is one page the benchmark loads: path(i) is the address of the i-th load.
type dashPage struct {
	name string
	path func(i int) string
}

// pageTimes are one page's measured loads.
type pageTimes struct {
	server, client []time.Duration // sorted
}

func pct(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	return lat[min(len(lat)-1, int(float64(len(lat))*p))]
}

// loadPage loads a page n times, one after the other (a person clicking), after 10 loads that are
// not counted, and records the server's time (Server-Timing) and the bench's (to the last byte).
func loadPage(tb testing.TB, base, cookie string, p dashPage, n int) pageTimes {
	var t pageTimes
	for i := -10; i < n; i++ {
		idx := i
		if i < 0 {
			idx = n + 10 + i // the uncounted loads ask for other rows than the counted ones
		}
		path := p.path(idx)
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Cookie", "cg_session="+cookie)
		start := time.Now()
		resp, err := dashClient.Do(req)
		if err != nil {
			tb.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if err != nil || resp.StatusCode != 200 {
			tb.Fatalf("%s: GET %s: %d %v %.300s", p.name, path, resp.StatusCode, err, body)
		}
		m := serverTiming.FindStringSubmatch(resp.Header.Get("Server-Timing"))
		if m == nil {
			tb.Fatalf("%s: no Server-Timing in %v", p.name, resp.Header)
		}
		if i < 0 {
			continue
		}
		ms, _ := strconv.ParseFloat(m[1], 64)
		t.server = append(t.server, time.Duration(ms*float64(time.Millisecond)))
		t.client = append(t.client, took)
	}
	sort.Slice(t.server, func(i, j int) bool { return t.server[i] < t.server[j] })
	sort.Slice(t.client, func(i, j int) bool { return t.client[i] < t.client[j] })
	return t
}

// seqCursor is the dashboard's "Load more" cursor after the code at seq: base64url of {"s": seq},
// as store/cursor.go writes a code search's keyset position.
func seqCursor(seq int64) string {
	b, _ := json.Marshal(map[string]int64{"s": seq})
	return base64.RawURLEncoding.EncodeToString(b)
}

// BenchmarkDashboard10M: the server time of each dashboard page on a list of 10,000,000 codes
// (imported through the API), signed in as the owner: p50 and p99 over 200 loads each, beside a
// raw indexed lookup of one code over pgx in the same run (goal: p99 ≤ 50 ms); the JavaScript and
// CSS the pages ship; and the Largest Contentful Paint of the lists page in headless Chromium.
func BenchmarkDashboard10M(b *testing.B) {
	if os.Getenv("BENCH_10M") == "0" {
		b.Skip("BENCH_10M=0")
	}
	n := dashboardCodes()
	ctx := context.Background()
	p := pool(b, 4)
	defer p.Close()
	resetCodes(b, p)
	salt := uint64(time.Now().UnixNano())
	path := writeCSV(b, n, salt)
	defer os.Remove(path)
	s := startStack(b)
	defer s.stop(b)
	keys := merchant(b)

	// The list: n codes through the real import (upload → worker → succeeded), and a few smaller
	// lists beside it, one of them low on stock.
	list := createList(b, s, keys.APIKey)
	seedTook, imp := upload(b, s, keys.APIKey, list, path)
	if imp["imported"].(float64) != float64(n) {
		b.Fatalf("imported %v codes, want %d", imp["imported"], n)
	}
	importID := imp["id"].(string)
	for i, name := range []string{"Summer sale", "Staff discount", "Low on stock"} {
		var l map[string]any
		body := map[string]any{"name": name, "low_stock_threshold": 100}
		if st := call(b, "POST", s.url+"/api/v1/lists", keys.APIKey, body, &l); st != 201 {
			b.Fatalf("create list: %d %v", st, l)
		}
		small := writeCSV(b, 50*(i+1), salt+uint64(i)+1)
		upload(b, s, keys.APIKey, l["id"].(string), small)
		os.Remove(small)
	}

	// Hand-outs and uses (timelines): 1,000 codes to r<i>@example.com, a third of them used by
	// hand with an order; ada@example.com gets five codes under five campaigns.
	allocURL := s.url + "/api/v1/lists/" + list + "/allocations"
	auth := "Bearer " + keys.APIKey
	const handed = 1000
	delivered := make([]string, handed)
	load(b, handed, 8, 0, func(i int) error {
		st, out, err := post(allocURL, "Authorization", auth, []byte(`{"recipient":{"email":"r`+strconv.Itoa(i)+`@example.com"},"campaign":"bench"}`))
		if err != nil || st != 201 {
			return fmt.Errorf("allocation %d: %d %s %v", i, st, out, err)
		}
		var a struct{ Code string }
		if err := json.Unmarshal(out, &a); err != nil {
			return err
		}
		delivered[i] = a.Code
		return nil
	})
	var redeemed []string
	for i := 0; i < handed; i += 3 {
		redeemed = append(redeemed, delivered[i])
	}
	load(b, len(redeemed), 8, 0, func(i int) error {
		st, out, err := post(s.url+"/api/v1/lists/"+list+"/codes/"+url.PathEscape(redeemed[i])+"/redeem", "Authorization", auth,
			[]byte(`{"order_id":"#`+strconv.Itoa(1000+i)+`","note":"at the till"}`))
		if err != nil || st != 200 {
			return fmt.Errorf("redeem %d: %d %s %v", i, st, out, err)
		}
		return nil
	})
	for i := range 5 {
		st, out, err := post(allocURL, "Authorization", auth, []byte(`{"recipient":{"email":"ada@example.com"},"campaign":"spring-`+strconv.Itoa(i)+`"}`))
		if err != nil || st != 201 {
			b.Fatalf("allocation to ada: %d %s %v", st, out, err)
		}
	}
	// The statistics autovacuum would have gathered by the time anyone opens the list.
	if _, err := p.Exec(ctx, `VACUUM ANALYZE codes`); err != nil {
		b.Fatal(err)
	}
	if _, err := p.Exec(ctx, `VACUUM ANALYZE allocations`); err != nil {
		b.Fatal(err)
	}

	// The owner, signed in: invited and accepted through core, as the invite link does.
	merchantID, cookie := dashboardOwner(b, list)

	id := "/app/lists/" + list
	rng := rand.New(rand.NewPCG(salt, 1))
	randomCode := func() string { return mixCode(uint64(rng.IntN(n)), salt) }
	settings := "/app/settings"
	if st := dashGet(b, s.url+settings, cookie); st != 200 {
		settings = "/app/settings/team" // (before the settings page existed)
	}
	pages := []dashPage{
		{"lists page (`/app`)", func(int) string { return "/app" }},
		{"list page", func(int) string { return id }},
		{"codes, first page", func(int) string { return id + "/codes" }},
		{"codes, prefix search (4 characters)", func(int) string { return id + "/codes?q=" + randomCode()[:4] }},
		{"codes, recipient search", func(i int) string {
			return id + "/codes?q=" + url.QueryEscape("r"+strconv.Itoa(i%handed)+"@example.com")
		}},
		{"codes, state filter (redeemed)", func(int) string { return id + "/codes?state=redeemed" }},
		{"codes, Load more deep in the list", func(int) string {
			return id + "/codes?after=" + seqCursor(int64(n-n/10+rng.IntN(n/10-100)))
		}},
		{"code page (with a timeline every other load)", func(i int) string {
			if i%2 == 0 {
				return id + "/codes/" + url.PathEscape(redeemed[i%len(redeemed)])
			}
			return id + "/codes/" + url.PathEscape(randomCode())
		}},
		{"customers, a customer's codes", func(i int) string {
			if i%2 == 0 {
				return "/app/customers?q=ada%40example.com"
			}
			return "/app/customers?q=" + url.QueryEscape("r"+strconv.Itoa(i%handed)+"@example.com")
		}},
		{"import history", func(int) string { return id + "/import" }},
		{"import report", func(int) string { return id + "/imports/" + importID }},
		{"export page", func(int) string { return id + "/export" }},
		{"settings (`" + settings + "`)", func(int) string { return settings }},
	}
	for _, more := range []string{"/app/shops", "/app/messages"} { // (pages that came later)
		if dashGet(b, s.url+more, cookie) == 200 {
			pages = append(pages, dashPage{"`" + more + "`", func(int) string { return more }})
		}
	}

	// The physical limit: one code read by the unique index, over pgx, one after the other.
	rawLookup := func() pageTimes {
		var t pageTimes
		for i := -10; i < dashboardRequests(); i++ {
			code := randomCode()
			start := time.Now()
			var state string
			if err := p.QueryRow(ctx, `SELECT state FROM codes WHERE merchant_id = $1 AND lookup = $2 AND list_id = $3`,
				merchantID, code, list).Scan(&state); err != nil {
				b.Fatalf("raw lookup of %s: %v", code, err)
			}
			if i >= 0 {
				t.server = append(t.server, time.Since(start))
			}
		}
		sort.Slice(t.server, func(i, j int) bool { return t.server[i] < t.server[j] })
		return t
	}
	raw := rawLookup()
	rawText := fmt.Sprintf("p50 %s, p99 %s", ms(pct(raw.server, .5)), ms(pct(raw.server, .99)))
	label := fmt.Sprintf("%s codes", groupDigits(n))
	for _, pg := range pages {
		t := loadPage(b, s.url, cookie, pg, dashboardRequests())
		p99 := pct(t.server, .99)
		verdict := "✓"
		if p99 > 50*time.Millisecond {
			verdict = "✗"
		}
		report(row{fmt.Sprintf("dashboard, %s: %s (server time)", label, pg.name),
			fmt.Sprintf("p50 %s, p99 %s", ms(pct(t.server, .5)), ms(p99)),
			rawText + " (raw indexed lookup)",
			fmt.Sprintf("p99 ≤ 50 ms %s", verdict),
			fmt.Sprintf("%d loads; at the client (loopback, to the last byte) p50 %s, p99 %s", len(t.server), ms(pct(t.client, .5)), ms(pct(t.client, .99)))})
	}
	raw2 := rawLookup()
	report(row{"dashboard: raw indexed lookup of one code, after the pages", fmt.Sprintf("p50 %s, p99 %s", ms(pct(raw2.server, .5)), ms(pct(raw2.server, .99))), "", "",
		fmt.Sprintf("seeded by a %s-code import through the API in %.1f s", groupDigits(n), seedTook.Seconds())})

	shipped(b, s.url, cookie)
	largestContentfulPaint(b, s.url, cookie)
}

// dashboardOwner invites an owner for the list's merchant and accepts the invite through core (as
// the invite link's form does), returning the merchant and the session cookie's value.
func dashboardOwner(tb testing.TB, list string) (uuid.UUID, string) {
	ctx := context.Background()
	db, err := store.Open(ctx, env.DatabaseURL, 2, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var merchantID uuid.UUID
	if err := db.Pool().QueryRow(ctx, `SELECT merchant_id FROM code_lists WHERE id = $1`, list).Scan(&merchantID); err != nil {
		tb.Fatal(err)
	}
	users := core.NewUsers(db, nil, core.DefaultPasswordParams, slog.New(slog.NewTextHandler(io.Discard, nil)))
	_, token, err := users.Invite(ctx, merchantID, core.InviteInput{Email: "owner-" + uuid.NewString()[:8] + "@example.com", Role: core.RoleOwner})
	if err != nil {
		tb.Fatal(err)
	}
	const password = "bench password, long enough"
	signed, err := users.AcceptInvite(ctx, token, password, password)
	if err != nil {
		tb.Fatal(err)
	}
	return merchantID, signed.Token
}

// dashGet loads one page and returns its status.
func dashGet(tb testing.TB, u, cookie string) int {
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Cookie", "cg_session="+cookie)
	resp, err := dashClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// shipped reports the JavaScript and CSS the pages load: what every page loads (the lists page's
// stylesheet and script), what the scan page loads besides (the QR reader it fetches on demand,
// data-reader) once it exists, and everything in web/static. Each as served (raw) and as it
// travels to a browser that accepts gzip (the gateway's answer to Accept-Encoding: gzip).
func shipped(tb testing.TB, base, cookie string) {
	assets := regexp.MustCompile(`(?:href|src|data-reader)="(/app/static/[^"?]+)[^"]*"`)
	pageAssets := func(path string) ([]string, bool) {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Cookie", "cg_session="+cookie)
		resp, err := dashClient.Do(req)
		if err != nil {
			tb.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var out []string
		for _, m := range assets.FindAllStringSubmatch(string(page), -1) {
			out = append(out, m[1])
		}
		return out, resp.StatusCode == 200
	}
	// fetch answers a file's size as served and on the wire.
	fetch := func(path string) (raw, wire int) {
		for _, enc := range []string{"identity", "gzip"} {
			req, _ := http.NewRequest("GET", base+path, nil)
			req.Header.Set("Accept-Encoding", enc) // set by hand: the transport hands the body over as it came
			resp, err := dashClient.Do(req)
			if err != nil {
				tb.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				tb.Fatalf("GET %s: %d", path, resp.StatusCode)
			}
			if enc == "identity" {
				raw = len(body)
			} else {
				wire = len(body)
			}
		}
		return raw, wire
	}
	kb := func(n int) string { return fmt.Sprintf("%.1f", float64(n)/1024) }
	measure := func(figure string, paths []string, note string) {
		var raw, wire int
		var names []string
		for _, p := range paths {
			r, w := fetch(p)
			raw, wire = raw+r, wire+w
			names = append(names, fmt.Sprintf("%s %s KB", strings.TrimPrefix(p, "/app/static/"), kb(r)))
		}
		verdict := "✓"
		if wire > 100*1024 {
			verdict = "✗"
		}
		report(row{figure, fmt.Sprintf("%s on the wire (%s as served)", kb(wire), kb(raw)), "", "≤ 100 KB " + verdict,
			strings.Join(names, ", ") + note})
	}
	every, _ := pageAssets("/app")
	if len(every) == 0 {
		tb.Fatal("the lists page loads no script or stylesheet")
	}
	measure("dashboard: JavaScript + CSS every page loads (KB)", every, "")
	if scan, ok := pageAssets("/app/scan"); ok && len(scan) > len(every) {
		measure("dashboard: JavaScript + CSS of the scan page, with its QR reader (KB)", scan, "")
	}
	var raw, zipped int
	var names []string
	err := filepath.WalkDir("../web/static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var z bytes.Buffer
		w, _ := gzip.NewWriterLevel(&z, gzip.DefaultCompression)
		_, _ = w.Write(body)
		_ = w.Close()
		raw, zipped = raw+len(body), zipped+z.Len()
		names = append(names, fmt.Sprintf("%s %s KB", strings.TrimPrefix(path, "../web/static/"), kb(len(body))))
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	report(row{"dashboard: all of web/static (KB)", fmt.Sprintf("%s raw, %s gzipped", kb(raw), kb(zipped)), "", "",
		strings.Join(names, ", ") + " (gzip at the default level, computed here)"})
}

// largestContentfulPaint loads the lists page five times in headless Chromium, signed in, with the
// browser's cache off, and reports the median Largest Contentful Paint.
func largestContentfulPaint(tb testing.TB, base, cookie string) {
	br := browsertest.New(tb)
	if _, err := chromedp.Call(br.Context(), network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true}); err != nil {
		tb.Fatal(err)
	}
	httpOnly := true
	if _, err := chromedp.Call(br.Context(), network.SetCookie, network.SetCookieParams{Name: "cg_session", Value: cookie,
		URL: base + "/app", Path: "/app", HTTPOnly: &httpOnly}); err != nil {
		tb.Fatal(err)
	}
	var lcp []float64
	for range 5 {
		br.Navigate(base + "/app")
		v := browsertest.Eval[float64](br, `new Promise(resolve => {
			new PerformanceObserver(list => { const e = list.getEntries(); resolve(e[e.length - 1].startTime) })
				.observe({type: "largest-contentful-paint", buffered: true});
			setTimeout(() => resolve(-1), 5000);
		})`)
		if v < 0 {
			tb.Fatal("no largest-contentful-paint entry within 5 s")
		}
		lcp = append(lcp, v)
	}
	m := median(lcp)
	verdict := "✓"
	if m > 1000 {
		verdict = "✗"
	}
	report(row{"dashboard: Largest Contentful Paint of the lists page, headless Chromium (ms)", fmt.Sprintf("%.0f (median of 5)", m), "", "≤ 1,000 ms " + verdict,
		"loads: " + fmtList(lcp, " ms") + "; cache off, signed in, loopback"})
}

// groupDigits writes n with thousands separators.
func groupDigits(n int) string {
	s := strconv.Itoa(n)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
