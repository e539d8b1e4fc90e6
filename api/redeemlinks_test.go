package api_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/messaging/messagingfake"
	"github.com/coupongate/coupongate/internal/apptest"
)

// redeemLink creates a redeem link through the API and returns its answer.
func redeemLink(t testing.TB, h *apptest.Harness, m apptest.Merchant, listID string, body map[string]any) map[string]any {
	t.Helper()
	r := h.Admin(t, m, http.MethodPost, "/api/v1/lists/"+listID+"/redeem-links", body)
	if r.Status != http.StatusCreated {
		t.Fatalf("create redeem link: %d %s", r.Status, r.Body)
	}
	return r.Map(t)
}

// visitor is a browser on the public redeem page: it keeps its cookies.
type visitor struct {
	t      testing.TB
	client *http.Client
	base   string
}

func newVisitor(t testing.TB, h *apptest.Harness) *visitor {
	jar, _ := cookiejar.New(nil)
	return &visitor{t: t, base: h.URL, client: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	Status int
	Header http.Header
	Body   string
}

func (v *visitor) do(req *http.Request) page {
	resp, err := v.client.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		v.t.Fatal(err)
	}
	return page{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

func (v *visitor) get(path string) page {
	req, _ := http.NewRequest(http.MethodGet, v.base+path, nil)
	return v.do(req)
}

var csrfInput = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// ask opens the page and sends the form with the email (and extra fields).
func (v *visitor) ask(path, email string, extra url.Values) page {
	form := v.get(path)
	m := csrfInput.FindStringSubmatch(form.Body)
	if m == nil {
		v.t.Fatalf("GET %s: no form: %d %s", path, form.Status, form.Body)
	}
	return v.post(path, m[1], email, extra)
}

func (v *visitor) post(path, csrf, email string, extra url.Values) page {
	vals := url.Values{"csrf_token": {csrf}, "email": {email}}
	for k, vs := range extra {
		vals[k] = vs
	}
	req, _ := http.NewRequest(http.MethodPost, v.base+path, strings.NewReader(vals.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return v.do(req)
}

var codeOnPage = regexp.MustCompile(`id="redeem-code">([^<]*)<`)

// codeOf is the code a page shows ("" for none).
func codeOf(p page) string {
	if m := codeOnPage.FindStringSubmatch(p.Body); m != nil {
		return m[1]
	}
	return ""
}

func slugPath(link map[string]any) string { return "/r/" + link["slug"].(string) }

func TestRedeemLinksAreManagedThroughTheAPI(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Links Shop")
	other := h.NewMerchant(t, "Other Shop")
	list := h.CreateList(t, m, map[string]any{"name": "Spring"})
	seedCodes(t, h, m, list, "SPRING", 3)

	link := redeemLink(t, h, m, list, map[string]any{"name": "Flyer", "starts_at": "2020-01-01T00:00:00Z",
		"page": map[string]any{"title": "Spring gift", "text": "Ask for your code", "exhausted_text": "All gone"}})
	id, slug := link["id"].(string), link["slug"].(string)
	if len(slug) != 22 || link["url"] != h.URL+"/r/"+slug || link["identify_by"] != "email" || link["redirect"] != "none" ||
		link["handed_out"] != float64(0) || link["list_id"] != list || link["starts_at"] != "2020-01-01T00:00:00Z" {
		t.Fatalf("created link: %v", link)
	}
	if again := redeemLink(t, h, m, list, map[string]any{"name": "Poster"}); again["slug"] == slug {
		t.Fatal("two links share a slug")
	}

	for name, tt := range map[string]struct {
		body  map[string]any
		field string
	}{
		"no name":             {map[string]any{}, "name"},
		"identify by phone":   {map[string]any{"name": "x", "identify_by": "phone"}, "identify_by"},
		"url without address": {map[string]any{"name": "x", "redirect": "url"}, "redirect_url"},
		"javascript address":  {map[string]any{"name": "x", "redirect": "url", "redirect_url": "javascript:alert(1)"}, "redirect_url"},
		"ends before start":   {map[string]any{"name": "x", "starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}, "ends_at"},
	} {
		r := h.Admin(t, m, http.MethodPost, "/api/v1/lists/"+list+"/redeem-links", tt.body)
		if r.Status != http.StatusUnprocessableEntity || !strings.Contains(string(r.Body), tt.field) {
			t.Errorf("%s: %d %s, want 422 naming %s", name, r.Status, r.Body, tt.field)
		}
	}

	// A hand-out counts on the link.
	if code := codeOf(newVisitor(t, h).ask("/r/"+slug, "ann@example.com", nil)); code == "" {
		t.Fatal("no code handed out")
	}
	r := h.Admin(t, m, http.MethodPatch, "/api/v1/redeem-links/"+id, map[string]any{"page": map[string]any{"title": "New title"},
		"redirect": "url", "redirect_url": "https://shop.example.com/"})
	got := r.Map(t)
	page := got["page"].(map[string]any)
	if r.Status != http.StatusOK || page["title"] != "New title" || page["exhausted_text"] != "All gone" || page["text"] != "Ask for your code" ||
		got["handed_out"] != float64(1) || got["redirect_url"] != "https://shop.example.com/" {
		t.Fatalf("patched link: %d %s", r.Status, r.Body)
	}
	var listed struct {
		Items []map[string]any `json:"items"`
	}
	h.Admin(t, m, http.MethodGet, "/api/v1/lists/"+list+"/redeem-links", nil).JSON(t, &listed)
	if len(listed.Items) != 2 || listed.Items[0]["id"] != id || listed.Items[0]["handed_out"] != float64(1) {
		t.Fatalf("listed links: %v", listed.Items)
	}
	if r := h.Admin(t, other, http.MethodGet, "/api/v1/redeem-links/"+id, nil); r.Status != http.StatusNotFound || r.ErrorCode() != "redeem_link_not_found" {
		t.Fatalf("another merchant's link: %d %s", r.Status, r.Body)
	}
	if r := h.Admin(t, m, http.MethodDelete, "/api/v1/redeem-links/"+id, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if r := h.Admin(t, m, http.MethodGet, "/api/v1/redeem-links/"+id, nil); r.Status != http.StatusNotFound {
		t.Fatalf("deleted link: %d %s", r.Status, r.Body)
	}
	if p := newVisitor(t, h).get("/r/" + slug); p.Status != http.StatusNotFound {
		t.Fatalf("deleted link's page: %d", p.Status)
	}
}

func TestRedeemPageHandsOneCodePerEmail(t *testing.T) {
	t.Parallel()
	receiver, bodies := hookReceiver(t)
	h := apptest.Start(t, env, apptest.Options{Worker: true, Configure: func(c *config.Config) { c.WebhooksAllowPrivate = true }})
	m := h.NewMerchant(t, "Page Shop")
	// valid_for: the code expires 30 days after it was handed out, the same time on every answer.
	list := h.CreateList(t, m, map[string]any{"name": "Page", "reassign_window": 0, "expires_at": "2031-01-01T00:00:00Z", "valid_for": 30 * 86400})
	seedCodes(t, h, m, list, "PAGE", 5)
	if r := h.Admin(t, m, http.MethodPost, "/api/v1/webhook-endpoints", map[string]any{"url": receiver + "/hook",
		"events": []string{"code.delivered"}}); r.Status != http.StatusCreated {
		t.Fatalf("endpoint: %d %s", r.Status, r.Body)
	}
	link := redeemLink(t, h, m, list, map[string]any{"name": "Hostile <svg/onload=alert(1)>",
		"page": map[string]any{"title": "<script>alert(1)</script>", "success_text": "Enjoy!"}})
	path := slugPath(link)

	v := newVisitor(t, h)
	form := v.get(path)
	if form.Status != http.StatusOK || !strings.Contains(form.Body, `name="email"`) ||
		!strings.Contains(form.Body, "&lt;script&gt;alert(1)&lt;/script&gt;") || strings.Contains(form.Body, "<script>alert") {
		t.Fatalf("form page: %d %s", form.Status, form.Body)
	}
	if csp := form.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "img-src 'self' data:") {
		t.Fatalf("CSP %q", csp)
	}
	first := v.ask(path, "ann@example.com", nil)
	code := codeOf(first)
	if first.Status != http.StatusOK || code == "" || !strings.Contains(first.Body, "Enjoy!") || !strings.Contains(first.Body, `class="redeem-qr" src="`+path+`/qr/`) ||
		!strings.Contains(first.Body, "Valid until "+`<time datetime="`+time.Now().UTC().Add(30*24*time.Hour).Format("2006-01-02")) ||
		!strings.Contains(first.Body, "data-copy-target") {
		t.Fatalf("first ask: %d %s", first.Status, first.Body)
	}
	// The QR image is the code's, and only codes the page handed out are drawn.
	qrPath := regexp.MustCompile(`class="redeem-qr" src="([^"]+)"`).FindStringSubmatch(first.Body)[1]
	if qr := v.get(qrPath); qr.Status != http.StatusOK || qr.Header.Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(qr.Body, "<svg") {
		t.Fatalf("QR image: %d %s", qr.Status, qr.Header)
	}
	_, mac, _ := strings.Cut(qrPath[strings.LastIndex(qrPath, "/")+1:], ".")
	if qr := v.get(path + "/qr/" + base64.RawURLEncoding.EncodeToString([]byte("OTHER-CODE")) + "." + mac); qr.Status != http.StatusNotFound {
		t.Fatalf("QR of a code the page did not hand out: %d", qr.Status)
	}
	// The same address again, in another browser and in other case: the same code, and the very
	// same page (nothing tells that the address had asked before).
	again := newVisitor(t, h).ask(path, "ann@example.com", nil)
	if again.Status != first.Status || again.Body != first.Body {
		t.Fatalf("second ask differs from the first:\n%s\n---\n%s", first.Body, again.Body)
	}
	if c := codeOf(newVisitor(t, h).ask(path, "ANN@example.com", nil)); c != code {
		t.Fatalf("the address in capitals got %q, want %q", c, code)
	}
	if c := codeOf(v.ask(path, "bob@example.com", nil)); c == "" || c == code {
		t.Fatalf("another address got %q (ann has %q)", c, code)
	}
	// A wrong address is said beside the box; a form without its token, and a filled honeypot,
	// hand out nothing.
	if p := v.ask(path, "not an address", nil); p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, `id="error-email"`) || codeOf(p) != "" {
		t.Fatalf("wrong address: %d %s", p.Status, p.Body)
	}
	if p := newVisitor(t, h).post(path, "forged", "carl@example.com", nil); p.Status != http.StatusForbidden || codeOf(p) != "" {
		t.Fatalf("no CSRF token: %d %s", p.Status, p.Body)
	}
	if p := v.ask(path, "bot@example.com", url.Values{"website": {"http://spam.example"}}); p.Status != http.StatusOK || codeOf(p) != "" {
		t.Fatalf("honeypot: %d %s", p.Status, p.Body)
	}
	if c := counts(t, h, m, list); c["delivered"] != 2 {
		t.Fatalf("delivered %v, want 2 (ann and bob)", c["delivered"])
	}

	// The hand-out is on the code's timeline as any allocation, channel redeem_link, and a
	// code.delivered webhook says so.
	var detail struct {
		Timeline []map[string]any `json:"timeline"`
	}
	h.Admin(t, m, http.MethodGet, codePath(list, code), nil).JSON(t, &detail)
	delivered := 0
	for _, e := range detail.Timeline {
		if e["type"] == "delivered" && e["channel"] == core.ChannelRedeemLink && e["actor"] == "redeem_link:"+link["id"].(string) {
			delivered++
		}
	}
	if delivered != 1 {
		t.Fatalf("timeline: %v, want one delivery through the link", detail.Timeline)
	}
	apptest.Eventually(t, 30*time.Second, "the code.delivered webhook of ann's code", func() bool {
		for _, b := range bodies() {
			if strings.Contains(b, `"code.delivered"`) && strings.Contains(b, `"`+code+`"`) && strings.Contains(b, `"redeem_link"`) &&
				strings.Contains(b, "ann@example.com") {
				return true
			}
		}
		return false
	})
}

// hookReceiver records the bodies of webhook deliveries.
func hookReceiver(t *testing.T) (string, func() []string) {
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), bodies...)
	}
}

func TestRedeemPageOneEmailAskingFiftyTimesAtOnceGetsOneCode(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Configure: func(c *config.Config) { c.RedeemHandOutsPerClient = 1000 }})
	m := h.NewMerchant(t, "Race Shop")
	list := h.CreateList(t, m, map[string]any{"name": "Race", "reassign_window": 0})
	seedCodes(t, h, m, list, "RACE", 100)
	path := slugPath(redeemLink(t, h, m, list, map[string]any{"name": "Race"}))

	v := newVisitor(t, h)
	csrf := csrfInput.FindStringSubmatch(v.get(path).Body)[1]
	codes := make([]string, 50)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := &visitor{t: apptest.InGoroutine(t), client: v.client, base: v.base}
			codes[i] = codeOf(g.post(path, csrf, "same@example.com", nil))
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c == "" || c != codes[0] {
			t.Fatalf("ask %d got %q, ask 0 got %q", i, c, codes[0])
		}
	}
	if c := counts(t, h, m, list); c["delivered"] != 1 {
		t.Fatalf("delivered %v, want 1", c["delivered"])
	}
}

func TestRedeemPageThousandEmailsRaceForTheLastTenCodes(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Configure: func(c *config.Config) { c.RedeemHandOutsPerClient = 10000 }})
	m := h.NewMerchant(t, "Last Shop")
	list := h.CreateList(t, m, map[string]any{"name": "Last"})
	seedCodes(t, h, m, list, "LAST", 10)
	link := redeemLink(t, h, m, list, map[string]any{"name": "Last",
		"page": map[string]any{"exhausted_text": "Sorry, every code is gone."}})
	path := slugPath(link)

	v := newVisitor(t, h)
	csrf := csrfInput.FindStringSubmatch(v.get(path).Body)[1]
	const asks = 1000
	results := make([]page, asks)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			g := &visitor{t: apptest.InGoroutine(t), client: v.client, base: v.base}
			results[i] = g.post(path, csrf, fmt.Sprintf("racer-%d@example.com", i), nil)
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	exhausted := 0
	for i, p := range results {
		switch c := codeOf(p); {
		case p.Status != http.StatusOK:
			t.Fatalf("ask %d: %d %s", i, p.Status, p.Body)
		case c != "":
			if seen[c] {
				t.Fatalf("code %s handed out twice", c)
			}
			seen[c] = true
		case strings.Contains(p.Body, "Sorry, every code is gone."):
			exhausted++
		default:
			t.Fatalf("ask %d: neither a code nor the exhausted text: %s", i, p.Body)
		}
	}
	if len(seen) != 10 || exhausted != asks-10 {
		t.Fatalf("%d codes and %d exhausted pages, want 10 and %d", len(seen), exhausted, asks-10)
	}
	if got := h.Admin(t, m, http.MethodGet, "/api/v1/redeem-links/"+link["id"].(string), nil).Map(t)["handed_out"]; got != float64(10) {
		t.Fatalf("handed_out %v, want 10", got)
	}
}

func TestRedeemPageShowsTheMerchantsTexts(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Texts Shop")
	full := h.CreateList(t, m, map[string]any{"name": "Full"})
	seedCodes(t, h, m, full, "FULL", 1)
	empty := h.CreateList(t, m, map[string]any{"name": "Empty"})
	ended := h.CreateList(t, m, map[string]any{"name": "Ended", "starts_at": "2020-01-01T00:00:00Z", "expires_at": "2020-02-01T00:00:00Z"})
	texts := map[string]any{"exhausted_text": "No more codes, sorry.", "expired_text": "The offer ended."}
	day := time.Now().UTC().Add(24 * time.Hour).Format(time.RFC3339)
	for name, tt := range map[string]struct {
		list string
		body map[string]any
		get  string // what the page shows before asking
		ask  string // and after
	}{
		"link ended":     {full, map[string]any{"name": "x", "ends_at": "2021-01-01T00:00:00Z", "page": texts}, "The offer ended.", "The offer ended."},
		"link not begun": {full, map[string]any{"name": "x", "starts_at": day, "page": texts}, "has not started yet", "has not started yet"},
		"list ran out":   {empty, map[string]any{"name": "x", "page": texts}, `name="email"`, "No more codes, sorry."},
		"list expired":   {ended, map[string]any{"name": "x", "page": texts}, `name="email"`, "The offer ended."},
		"default texts":  {empty, map[string]any{"name": "x"}, `name="email"`, "All codes have been handed out."},
	} {
		t.Run(name, func(t *testing.T) {
			path := slugPath(redeemLink(t, h, m, tt.list, tt.body))
			v := newVisitor(t, h)
			if p := v.get(path); p.Status != http.StatusOK || !strings.Contains(p.Body, tt.get) {
				t.Fatalf("GET: %d %s", p.Status, p.Body)
			}
			if !strings.Contains(tt.get, "email") {
				return // no form to send
			}
			if p := v.ask(path, "dan@example.com", nil); p.Status != http.StatusOK || !strings.Contains(p.Body, tt.ask) || codeOf(p) != "" {
				t.Fatalf("ask: %d %s", p.Status, p.Body)
			}
		})
	}
	if p := newVisitor(t, h).get("/r/AAAAAAAAAAAAAAAAAAAAAA"); p.Status != http.StatusNotFound || !strings.Contains(p.Body, "does not exist") {
		t.Fatalf("unknown slug: %d %s", p.Status, p.Body)
	}
}

func TestPersonalRedeemLinkHandsOutItsRecipientsCodeOnly(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Personal Shop")
	list := h.CreateList(t, m, map[string]any{"name": "Personal", "reassign_window": 0})
	seedCodes(t, h, m, list, "MINE", 5)
	link := redeemLink(t, h, m, list, map[string]any{"name": "Mailing"})
	second := redeemLink(t, h, m, list, map[string]any{"name": "Other mailing"})
	ctx := context.Background()
	l, err := h.App.RedeemLinks.Get(ctx, uuid.MustParse(m.ID), uuid.MustParse(link["id"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	annURL, ok := h.App.RedeemLinks.PersonalURL(l, core.Recipient{Email: "ann@example.com"})
	if !ok || !strings.HasPrefix(annURL, h.URL+"/r/"+l.Slug+"/") {
		t.Fatalf("personal URL %q", annURL)
	}
	annPath := strings.TrimPrefix(annURL, h.URL)
	v := newVisitor(t, h)
	p := v.get(annPath)
	code := codeOf(p)
	if p.Status != http.StatusOK || code == "" || strings.Contains(p.Body, `name="email"`) {
		t.Fatalf("personal link: %d %s", p.Status, p.Body)
	}
	if again := codeOf(newVisitor(t, h).get(annPath)); again != code {
		t.Fatalf("the personal link again gave %q, want %q", again, code)
	}
	// Ann's code is ann's: the page with her address typed gives the same code.
	if typed := codeOf(newVisitor(t, h).ask(slugPath(link), "ann@example.com", nil)); typed != code {
		t.Fatalf("ann typing her address got %q, want %q", typed, code)
	}

	// The token cannot be turned to another address, nor used on another link.
	token := annPath[strings.LastIndex(annPath, "/")+1:]
	_, mac, _ := strings.Cut(token, ".")
	bobURL, _ := h.App.RedeemLinks.PersonalURL(l, core.Recipient{Email: "bob@example.com"})
	bobWho, _, _ := strings.Cut(bobURL[strings.LastIndex(bobURL, "/")+1:], ".")
	for name, path := range map[string]string{
		"ann's signature on bob's address": "/r/" + l.Slug + "/" + bobWho + "." + mac,
		"ann's token on another link":      slugPath(second) + "/" + token,
		"no signature":                     "/r/" + l.Slug + "/" + bobWho,
		"a cut signature":                  "/r/" + l.Slug + "/" + token[:len(token)-2],
	} {
		if p := newVisitor(t, h).get(path); p.Status != http.StatusNotFound || codeOf(p) != "" {
			t.Errorf("%s: %d %s", name, p.Status, p.Body)
		}
	}
	if c := counts(t, h, m, list); c["delivered"] != 1 {
		t.Fatalf("delivered %v, want 1 (ann's)", c["delivered"])
	}
}

func TestRedeemPageLimitsHandOuts(t *testing.T) {
	t.Parallel()
	for name, tt := range map[string]struct {
		perClient, perLink int
	}{
		"per client address": {3, 1000},
		"per link":           {1000, 3},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := apptest.Start(t, env, apptest.Options{Configure: func(c *config.Config) {
				c.RedeemHandOutsPerClient, c.RedeemHandOutsPerLink = tt.perClient, tt.perLink
			}})
			m := h.NewMerchant(t, "Limit Shop")
			list := h.CreateList(t, m, map[string]any{"name": "Limit"})
			seedCodes(t, h, m, list, "LIM", 20)
			path := slugPath(redeemLink(t, h, m, list, map[string]any{"name": "Limit"}))
			v := newVisitor(t, h)
			for i := range 3 {
				if p := v.ask(path, fmt.Sprintf("n%d@example.com", i), nil); codeOf(p) == "" {
					t.Fatalf("ask %d: %d %s", i, p.Status, p.Body)
				}
			}
			p := v.ask(path, "n3@example.com", nil)
			if p.Status != http.StatusTooManyRequests || p.Header.Get("Retry-After") == "" || codeOf(p) != "" ||
				!strings.Contains(p.Body, "try again later") {
				t.Fatalf("past the limit: %d %v %s", p.Status, p.Header, p.Body)
			}
			if c := counts(t, h, m, list); c["delivered"] != 3 {
				t.Fatalf("delivered %v, want 3", c["delivered"])
			}
		})
	}
}

// TestRedeemLinkPlaceholderSendsAPersonalLink: an email with <redeemlink> carries the recipient's
// personal link, which shows that recipient's code without asking, the same on every visit. Its
// send is rendered by its own harness's worker, with its APP_URL: each harness has queues of its
// own (apptest's QUEUE_PREFIX), so a parallel test's worker never takes it.
func TestRedeemLinkPlaceholderSendsAPersonalLink(t *testing.T) {
	t.Parallel()
	s := startMessagingStack(t, messagingfake.SinkConfig{})
	m := s.NewMerchant(t, "Mailing Shop")
	s.configure(t, m)
	list := s.CreateList(t, m, map[string]any{"name": "Mailing"})
	importByHand(t, s.Harness, m, list, "test", "MAIL-1", "MAIL-2", "MAIL-3")
	link := redeemLink(t, s.Harness, m, list, map[string]any{"name": "Mailing link"})
	tpl := s.template(t, m, list, map[string]any{"channel": "email", "subject": "A gift", "text": "Get your code: <redeemlink>"})
	d := s.deliver(t, m, list, map[string]any{"recipient": map[string]any{"email": "eve@example.com"}, "campaign": "mailing",
		"channel": "email", "template_id": tpl}, http.StatusAccepted)
	s.waitDelivery(t, m, list, d.ID, "sent")
	msgs := s.sink.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d emails, want 1", len(msgs))
	}
	found := regexp.MustCompile(regexp.QuoteMeta(s.URL+"/r/"+link["slug"].(string)+"/") + `[A-Za-z0-9_.-]+`).FindString(msgs[0].Text)
	if found == "" {
		t.Fatalf("no personal link in the email: %q", msgs[0].Text)
	}
	v := newVisitor(t, s.Harness)
	p := v.get(strings.TrimPrefix(found, s.URL))
	code := codeOf(p)
	if p.Status != http.StatusOK || code == "" || strings.Contains(p.Body, `name="email"`) {
		t.Fatalf("personal link: %d %s", p.Status, p.Body)
	}
	if again := codeOf(v.get(strings.TrimPrefix(found, s.URL))); again != code {
		t.Fatalf("the link again gave %q, want %q", again, code)
	}
	if typed := codeOf(newVisitor(t, s.Harness).ask(slugPath(link), "eve@example.com", nil)); typed != code {
		t.Fatalf("eve typing her address got %q, want %q", typed, code)
	}
}

// TestRedeemPageWithoutEmailGivesOneCodePerBrowser: a link that asks nothing hands each browser
// one code, the same on every ask.
func TestRedeemPageWithoutEmailGivesOneCodePerBrowser(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Browser Shop")
	list := h.CreateList(t, m, map[string]any{"name": "Browsers", "reassign_window": 0})
	seedCodes(t, h, m, list, "WEB", 5)
	path := slugPath(redeemLink(t, h, m, list, map[string]any{"name": "Door", "identify_by": "none"}))
	v := newVisitor(t, h)
	if p := v.get(path); strings.Contains(p.Body, `name="email"`) || !strings.Contains(p.Body, "Get my code") {
		t.Fatalf("the form of a link that asks nothing: %s", p.Body)
	}
	first := codeOf(v.ask(path, "", nil))
	if first == "" || codeOf(v.ask(path, "", nil)) != first {
		t.Fatalf("one browser asking twice got %q and another", first)
	}
	if other := codeOf(newVisitor(t, h).ask(path, "", nil)); other == "" || other == first {
		t.Fatalf("another browser got %q (the first has %q)", other, first)
	}
}
