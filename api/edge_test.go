package api_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/internal/apptest"
)

// errorShape is the contract's error body.
type errorShape struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Details []struct {
			Field   string `json:"field"`
			Message string `json:"message"`
		} `json:"details"`
	} `json:"error"`
}

// TestUnstorableTextIsRefusedAtTheEdge sends a NUL character (\u0000 in JSON, %00 in a path or
// query) or bytes that are not UTF-8 to every entry point that hands text to PostgreSQL: each
// answers 422 naming the field (JSON path or query parameter) or 404 for a path that names
// nothing, in the error shape, and never 500. The routes outside the two APIs, which check
// their input themselves, are held to the same: a 4xx in the error shape.
func TestUnstorableTextIsRefusedAtTheEdge(t *testing.T) {
	h := apptest.Start(t, env, apptest.Options{Configure: func(c *config.Config) {
		c.ShopifyAPIKey, c.ShopifyAPISecret = testShopifyKey, testShopifySecret
	}})
	m := h.NewMerchant(t, "Edge Shop")
	list := h.CreateList(t, m, map[string]any{"name": "Edge"})
	seedCodes(t, h, m, list, "EDGE", 2)
	tpl := h.Admin(t, m, "POST", "/api/v1/lists/"+list+"/templates", map[string]any{"channel": "sms", "text": "Your code: {couponcode}"})
	if tpl.Status != http.StatusCreated {
		t.Fatalf("create template: %d %s", tpl.Status, tpl.Body)
	}
	templateID := tpl.Map(t)["id"].(string)
	lists := "/api/v1/lists/" + list

	tests := []struct {
		name         string
		method, path string
		body         string // JSON text, so that it can carry \u0000 as sent
		storefront   bool
		status       int
		field        string // the field invalid_field names, if that is the answer
		code         string // else the error code
	}{
		{"list name", "POST", "/api/v1/lists", `{"name":"Spring\u0000"}`, false, 422, "name", ""},
		{"fixed code", "POST", "/api/v1/lists", `{"name":"F","kind":"fixed","fixed_code":"SAVE\u000010"}`, false, 422, "fixed_code", ""},
		{"list patch", "PATCH", lists, `{"description":"\u0000"}`, false, 422, "description", ""},
		{"batch prefix", "POST", lists + "/batches", `{"count":1,"prefix":"P\u0000"}`, false, 422, "prefix", ""},
		{"allocation recipient", "POST", lists + "/allocations", `{"recipient":{"email":"ann\u0000@example.com"}}`, false, 422, "recipient.email", ""},
		{"allocation campaign", "POST", lists + "/allocations", `{"recipient":{"email":"ann@example.com"},"campaign":"\u0000"}`, false, 422, "campaign", ""},
		{"order codes", "POST", "/api/v1/orders", `{"platform":"custom","shop":"s","order_id":"o1","status":"paid","codes":["A","B","EDGE-1\u0000"]}`, false, 422, "codes[2]", ""},
		{"order customer", "POST", "/api/v1/orders", `{"platform":"custom","shop":"s","order_id":"o2","status":"paid","customer":{"external_id":"\u0000"}}`, false, 422, "customer.external_id", ""},
		{"order id", "POST", "/api/v1/orders", `{"platform":"custom","shop":"s","order_id":"o\u0000","status":"paid","codes":["EDGE-1"]}`, false, 422, "order_id", ""},
		{"manual redeem", "POST", lists + "/codes/EDGE-1/redeem", `{"order_id":"o\u0000"}`, false, 422, "order_id", ""},
		{"email channel", "PUT", "/api/v1/channels/email", `{"host":"smtp\u0000.example.com","port":587,"from":"shop@example.com"}`, false, 422, "host", ""},
		{"sms channel", "PUT", "/api/v1/channels/sms", `{"provider":"twilio","account_sid":"AC\u0000","auth_token":"t","from":"+15550100"}`, false, 422, "account_sid", ""},
		{"push service account", "PUT", "/api/v1/channels/push", `{"provider":"fcm","service_account":{"project_id":"p\u0000","keys":["k"]}}`, false, 422, "service_account.project_id", ""},
		{"push service account key", "PUT", "/api/v1/channels/push", `{"provider":"fcm","service_account":{"project_id":"p","x\u0000":1}}`, false, 422, "service_account", ""},
		{"template", "POST", lists + "/templates", `{"channel":"email","subject":"Hi\u0000","text":"{couponcode}"}`, false, 422, "subject", ""},
		{"delivery recipient", "POST", lists + "/deliveries", `{"recipient":{"phone":"+1555\u00000100"},"channel":"sms","template_id":"` + templateID + `"}`, false, 422, "recipient.phone", ""},
		{"webhook endpoint", "POST", "/api/v1/webhook-endpoints", `{"url":"https://hooks.example.com/\u0000","events":["code.delivered"]}`, false, 422, "url", ""},
		{"alert emails", "PUT", "/api/v1/settings/alerts", `{"emails":["ops@example.com","x\u0000@example.com"]}`, false, 422, "emails[1]", ""},
		{"woocommerce connect", "POST", "/api/v1/connections/woocommerce", `{"site_url":"https://shop.example.com\u0000","consumer_key":"ck_1","consumer_secret":"cs_1"}`, false, 422, "site_url", ""},
		{"push list", "POST", lists + "/connections", `{"connection_id":"\u0000","discount":{"title":"T","value_type":"percentage","value":10}}`, false, 422, "connection_id", ""},
		{"validate", "POST", "/storefront/v1/validate", `{"code":"EDGE-1\u0000"}`, true, 422, "code", ""},
		{"validate and reserve", "POST", "/storefront/v1/validate", `{"code":"EDGE-1\u0000","reserve":true}`, true, 422, "code", ""},
		{"validate customer", "POST", "/storefront/v1/validate", `{"code":"EDGE-1","reserve":true,"customer":{"email":"\u0000"}}`, true, 422, "customer.email", ""},

		{"code in path", "GET", lists + "/codes/EDGE%00", "", false, 404, "", "code_not_found"},
		{"code in path, not UTF-8", "GET", lists + "/codes/EDGE%E0%A4", "", false, 404, "", "code_not_found"},
		{"remove code", "DELETE", lists + "/codes/%00", "", false, 404, "", "code_not_found"},
		{"redeem code in path", "POST", lists + "/codes/EDGE%00/redeem", "", false, 404, "", "code_not_found"},
		{"qr code", "GET", lists + "/codes/EDGE%00/qr.svg", "", false, 404, "", "code_not_found"},
		{"channel in path", "GET", "/api/v1/channels/email%00", "", false, 404, "", "route_not_found"},
		{"reservation in path", "DELETE", "/storefront/v1/reservations/%00", "", true, 404, "", "reservation_not_found"},
		{"code search", "GET", lists + "/codes?q=EDGE%00", "", false, 422, "q", ""},
		{"code search, not UTF-8", "GET", lists + "/codes?q=%FF", "", false, 422, "q", ""},
		{"code search by recipient", "GET", lists + "/codes?recipient=%00", "", false, 422, "recipient", ""},
		{"recipient email", "GET", "/api/v1/recipients/codes?email=ann%00@example.com", "", false, 422, "email", ""},
		{"recipient external id", "GET", "/api/v1/recipients/codes?external_id=%00", "", false, 422, "external_id", ""},
		{"cursor", "GET", "/api/v1/lists?cursor=%00", "", false, 422, "cursor", ""},

		// The routes outside /api/v1 and /storefront/v1 check their input themselves.
		{"woocommerce authorization", "GET", "/woocommerce/connect?site_url=https://shop.example.com%00", "", false, 422, "", "invalid_site_url"},
		{"woocommerce callback", "POST", "/woocommerce/callback", `{"key_id":1,"user_id":"\u0000","consumer_key":"ck_\u0000","consumer_secret":"cs_1","key_permissions":"read_write"}`, false, 401, "", "invalid_state"},
		{"shopify install", "GET", "/shopify/install?shop=edge%00.myshopify.com", "", false, 400, "", "invalid_shop"},
		{"shopify callback", "GET", "/shopify/callback?shop=edge%00.myshopify.com&code=%00&state=%00&hmac=00", "", false, 400, "", "invalid_shop"},
		{"shopify app page", "GET", "/shopify/app?shop=edge%00.myshopify.com&host=%00&hmac=00", "", false, 400, "", "invalid_shop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := apptest.Request{Method: tt.method, Path: tt.path, APIKey: m.APIKey}
			if tt.storefront {
				req = apptest.Request{Method: tt.method, Path: tt.path, Storefront: m.StorefrontKey}
			}
			if tt.body != "" {
				req.Body, req.ContentType = strings.NewReader(tt.body), "application/json"
			}
			r := h.Do(t, req)
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
			}
			var e errorShape
			r.JSON(t, &e)
			switch {
			case tt.field != "":
				// Refused for the NUL, not for another rule the value happens to break.
				if e.Error.Code != "invalid_field" || len(e.Error.Details) == 0 || e.Error.Details[0].Field != tt.field ||
					!strings.Contains(e.Error.Details[0].Message, "NUL") {
					t.Errorf("want invalid_field naming %s for its NUL: %s", tt.field, r.Body)
				}
			case e.Error.Code != tt.code:
				t.Errorf("code %q, want %q: %s", e.Error.Code, tt.code, r.Body)
			}
		})
	}
}

// TestTrailingDataAfterJSONIsMalformed: a JSON body is one JSON value, then at most whitespace.
func TestTrailingDataAfterJSONIsMalformed(t *testing.T) {
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Trailing Shop")
	tests := []struct {
		name   string
		body   string
		status int
	}{
		{"garbage after", `{"name":"A"} garbage`, http.StatusBadRequest},
		{"second object", `{"name":"B"}{}`, http.StatusBadRequest},
		{"second value after a newline", "{\"name\":\"C\"}\n1", http.StatusBadRequest},
		{"whitespace after", "{\"name\":\"D\"} \r\n\t\n", http.StatusCreated},
	}
	t.Run("bodies", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				r := h.Do(t, apptest.Request{Method: "POST", Path: "/api/v1/lists", APIKey: m.APIKey,
					Body: strings.NewReader(tt.body), ContentType: "application/json"})
				if r.Status != tt.status {
					t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
				}
				if tt.status == http.StatusBadRequest && r.ErrorCode() != "malformed_request" {
					t.Errorf("want malformed_request: %s", r.Body)
				}
			})
		}
	})
	var page struct {
		Items []struct {
			Name string `json:"name"`
		} `json:"items"`
	}
	h.Admin(t, m, "GET", "/api/v1/lists", nil).JSON(t, &page)
	if len(page.Items) != 1 || page.Items[0].Name != "D" {
		t.Errorf("lists %+v, want only D: a refused body must create nothing", page.Items)
	}
}

// TestWrongMethodIs405WithAllow: a method a path does not take answers 405 method_not_allowed in
// the error shape, with Allow listing the methods the path takes.
func TestWrongMethodIs405WithAllow(t *testing.T) {
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Method Shop")
	const list = "/api/v1/lists/0b7e5f0e-0000-4000-8000-000000000001"
	tests := []struct {
		method, path string
		allow        []string
	}{
		{"PUT", "/api/v1/lists", []string{"GET", "POST"}},
		{"POST", list, []string{"DELETE", "GET", "PATCH"}},
		{"PUT", list + "/codes/SAVE%2F10", []string{"DELETE", "GET"}},
		{"GET", list + "/codes/SAVE-10/redeem", []string{"POST"}},
		{"DELETE", "/healthz", []string{"GET"}},
		{"GET", "/storefront/v1/validate", []string{"POST"}},
		{"GET", "/webhooks/shopify", []string{"POST"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			r := h.Do(t, apptest.Request{Method: tt.method, Path: tt.path, APIKey: m.APIKey})
			if r.Status != http.StatusMethodNotAllowed || r.ErrorCode() != "method_not_allowed" {
				t.Fatalf("%d %s, want 405 method_not_allowed", r.Status, r.Body)
			}
			allow := strings.Split(r.Header.Get("Allow"), ", ")
			slices.Sort(allow)
			if !slices.Equal(allow, tt.allow) {
				t.Errorf("Allow %q, want %v", r.Header.Get("Allow"), tt.allow)
			}
		})
	}
}

// TestBadEscapeAnswersTheErrorShape: a path with a bad %-escape, which Go's HTTP server refuses
// before any handler runs, is still answered 400 malformed_request in the error shape, as JSON.
// The request line goes over a bare connection: an HTTP client would not send it.
func TestBadEscapeAnswersTheErrorShape(t *testing.T) {
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Escape Shop")
	for _, path := range []string{
		"/api/v1/lists/%zz",
		"/api/v1/lists/0b7e5f0e-0000-4000-8000-000000000001/codes/%E0%A4%A",
		"/storefront/v1/reservations/%",
	} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			conn, err := net.Dial("tcp", h.Server.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer %s\r\n\r\n", path, m.APIKey)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			r := apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
			if r.Status != http.StatusBadRequest || r.ErrorCode() != "malformed_request" {
				t.Fatalf("%d %s, want 400 malformed_request", r.Status, body)
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want JSON", ct)
			}
		})
	}
	// A good request on a fresh connection is served as ever.
	if r := h.Admin(t, m, "GET", "/api/v1/lists", nil); r.Status != http.StatusOK {
		t.Errorf("GET /api/v1/lists: %d %s", r.Status, r.Body)
	}
}
