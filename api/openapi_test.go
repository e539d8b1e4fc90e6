package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/coupongate/coupongate/api"
	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/messaging/messagingfake"
	"github.com/coupongate/coupongate/integrations/outbound"
	"github.com/coupongate/coupongate/integrations/shopify/shopifyfake"
	"github.com/coupongate/coupongate/integrations/woocommerce"
	"github.com/coupongate/coupongate/integrations/woocommerce/woofake"
	"github.com/coupongate/coupongate/internal/apptest"
)

// The OpenAPI conformance test: api/openapi.yaml must be a valid OpenAPI 3.0 document, every
// route of the router must be in it and every operation in it must exist, and every response the
// gateway gives in a scenario that calls every endpoint (successes and errors) must be one the
// description allows: a documented status, content type and body. Response objects are checked as
// closed (no field beyond the documented ones), times as RFC 3339 UTC and uuids as uuids, so that
// the description cannot drift from the handlers unnoticed.

// oaLoad loads and validates the embedded description.
func oaLoad(t testing.TB) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatalf("api/openapi.yaml does not load: %v", err)
	}
	if err := doc.Validate(loader.Context, openapi3.EnableExamplesValidation(), openapi3.EnableSchemaDefaultsValidation(),
		openapi3.EnableSchemaPatternValidation(), openapi3.EnableSchemaFormatValidation()); err != nil {
		t.Fatalf("api/openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	if doc.OpenAPI != "3.0.3" {
		t.Fatalf("openapi version %q, want 3.0.3", doc.OpenAPI)
	}
	return doc
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	t.Parallel()
	doc := oaLoad(t)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.OperationID == "" || op.Summary == "" {
				t.Errorf("%s %s: needs an operationId and a summary", method, path)
			}
			if !strings.HasPrefix(path, "/api/v1/") && !strings.HasPrefix(path, "/storefront/v1/") {
				continue
			}
			if _, ok := op.Responses.Map()["500"]; !ok {
				t.Errorf("%s %s: does not document 500", method, path)
			}
			if _, ok := op.Responses.Map()["401"]; !ok {
				t.Errorf("%s %s: an authenticated operation must document 401", method, path)
			}
			for status, resp := range op.Responses.Map() {
				if status >= "400" && resp.Value.Content.Get("application/json") == nil {
					t.Errorf("%s %s: %s is not an error body", method, path, status)
				}
			}
		}
	}
}

// oaStrictFormats checks what the contract promises about formats: times are RFC 3339 in UTC,
// uuids are uuids.
var oaStrictFormats = []openapi3.SchemaValidationOption{
	openapi3.WithStringFormatValidator("date-time", openapi3.NewCallbackValidator(func(s string) error {
		if !strings.HasSuffix(s, "Z") {
			return fmt.Errorf("%q is not in UTC", s)
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return fmt.Errorf("%q is not RFC 3339", s)
		}
		return nil
	})),
	openapi3.WithStringFormatValidator("uuid", openapi3.NewCallbackValidator(func(s string) error {
		if _, err := uuid.Parse(s); err != nil || len(s) != 36 {
			return fmt.Errorf("%q is not a uuid", s)
		}
		return nil
	})),
}

// oaCloseObjects marks every object schema with properties and no additionalProperties of its own
// as closed, for this test only: a response field the description does not name then fails. The
// published description stays open, since clients must tolerate new fields.
func oaCloseObjects(doc *openapi3.T) {
	seen := map[*openapi3.Schema]bool{}
	var walk func(ref *openapi3.SchemaRef)
	walk = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		if len(s.Properties) > 0 && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
			closed := false
			s.AdditionalProperties.Has = &closed
		}
		for _, p := range s.Properties {
			walk(p)
		}
		walk(s.Items)
		walk(s.AdditionalProperties.Schema)
		for _, list := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
			for _, sub := range list {
				walk(sub)
			}
		}
	}
	for _, s := range doc.Components.Schemas {
		walk(s)
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, resp := range op.Responses.Map() {
				for _, mt := range resp.Value.Content {
					walk(mt.Schema)
				}
			}
		}
	}
}

// oaExchange is one recorded HTTP exchange.
type oaExchange struct {
	method     string
	url        *url.URL
	header     http.Header
	status     int
	respHeader http.Header
	body       []byte
}

func (e oaExchange) String() string {
	return fmt.Sprintf("%s %s → %d %s", e.method, e.url.RequestURI(), e.status, e.respHeader.Get("Content-Type"))
}

var oaPNGMagic = []byte("\x89PNG\r\n\x1a\n")

// oaChecker checks exchanges against the description and remembers which operations and
// statuses it saw.
type oaChecker struct {
	doc     *openapi3.T
	router  routers.Router
	opts    *openapi3filter.Options
	covered map[string]map[string]bool // "METHOD /path" → statuses seen
}

func newOAChecker(t *testing.T) *oaChecker {
	t.Helper()
	doc := oaLoad(t)
	oaCloseObjects(doc)
	doc.Servers = nil // match the test server's address, whatever it is
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	// Images are checked by type and magic bytes; their bodies are strings to the schema.
	openapi3filter.RegisterBodyDecoder("image/png", openapi3filter.FileBodyDecoder)
	openapi3filter.RegisterBodyDecoder("image/svg+xml", openapi3filter.FileBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, SchemaValidationOptions: oaStrictFormats}
	return &oaChecker{doc: doc, router: router, opts: opts, covered: map[string]map[string]bool{}}
}

// check answers what is wrong with the exchange, or nil.
func (c *oaChecker) check(ex oaExchange) error {
	req := &http.Request{Method: ex.method, URL: ex.url, Header: ex.header}
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("the description has no operation for %s %s: %v", ex.method, ex.url.Path, err)
	}
	key := ex.method + " " + route.Path
	if c.covered[key] == nil {
		c.covered[key] = map[string]bool{}
	}
	c.covered[key][fmt.Sprint(ex.status)] = true

	if ex.status >= 500 && ex.status != http.StatusServiceUnavailable {
		return fmt.Errorf("server error: %s", ex.body)
	}
	if ex.respHeader.Get("X-Request-Id") == "" {
		return fmt.Errorf("no X-Request-Id header")
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: c.opts},
		Status:                 ex.status,
		Header:                 ex.respHeader,
		Options:                c.opts,
	}
	in.SetBodyBytes(ex.body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return err
	}
	resp := route.Operation.Responses.Status(ex.status)
	if len(resp.Value.Content) == 0 && len(ex.body) > 0 {
		return fmt.Errorf("the description says %d has no body, but it has %q", ex.status, ex.body)
	}
	ct := ex.respHeader.Get("Content-Type")
	if strings.HasPrefix(ct, "image/png") && !bytes.HasPrefix(ex.body, oaPNGMagic) {
		return fmt.Errorf("an image/png body that is not a PNG")
	}
	if strings.HasPrefix(ct, "text/csv") && !strings.Contains(ex.respHeader.Get("Content-Disposition"), ".csv") {
		return fmt.Errorf("a CSV download without a .csv file name")
	}
	return nil
}

// oaGinParam matches a gin path parameter; oaGinPath turns a gin route pattern into an OpenAPI path template.
var oaGinParam = regexp.MustCompile(`[:*]([A-Za-z_][A-Za-z0-9_]*)`)

func oaGinPath(p string) string { return oaGinParam.ReplaceAllString(p, "{$1}") }

func TestOpenAPIConformance(t *testing.T) {
	// not parallel: it sets apptest.Recorder, which every harness's requests go through, and checks every request recorded
	checker := newOAChecker(t)

	var mu sync.Mutex
	var exchanges []oaExchange
	apptest.Recorder = func(req *http.Request, resp *http.Response, body []byte) {
		u := *req.URL
		mu.Lock()
		defer mu.Unlock()
		exchanges = append(exchanges, oaExchange{method: req.Method, url: &u, header: req.Header.Clone(),
			status: resp.StatusCode, respHeader: resp.Header.Clone(), body: slices.Clone(body)})
	}
	t.Cleanup(func() { apptest.Recorder = nil })

	fake := shopifyfake.New(t, shopifyfake.Config{ClientID: testShopifyKey, ClientSecret: testShopifySecret})
	sink := messagingfake.NewSMTPSink(t, messagingfake.SinkConfig{})
	twilio := messagingfake.NewTwilio(t, messagingfake.TwilioConfig{})
	fcm := messagingfake.NewFCM(t)
	h := apptest.Start(t, env, apptest.Options{Worker: true, Configure: func(c *config.Config) {
		c.MaxJSONBytes = oaMaxJSON
		c.MaxUploadBytes = oaMaxUpload
		c.ValidationFailuresPerMinute = 6
		shopifyConfig(c, fake)
		c.TwilioAPIURL = twilio.URL()
		c.FCMAPIURL = fcm.URL()
		c.WebhooksAllowPrivate = true
	}})

	// Every route of the router is described, and every described operation is a route.
	engine, ok := h.Server.Config.Handler.(*gin.Engine)
	if !ok {
		t.Fatalf("the test server's handler is a %T, not the gin engine: cannot list the routes", h.Server.Config.Handler)
	}
	routes := map[string]bool{}
	for _, r := range engine.Routes() {
		if r.Path == "/app" || strings.HasPrefix(r.Path, "/app/") || strings.HasPrefix(r.Path, "/auth/") {
			continue // the dashboard's HTML pages are not part of the API
		}
		key := r.Method + " " + oaGinPath(r.Path)
		routes[key] = true
		if item := checker.doc.Paths.Value(oaGinPath(r.Path)); item == nil || item.GetOperation(r.Method) == nil {
			t.Errorf("route %s is not in api/openapi.yaml", key)
		}
	}
	for path, item := range checker.doc.Paths.Map() {
		for method := range item.Operations() {
			if !routes[method+" "+path] {
				t.Errorf("api/openapi.yaml describes %s %s, which the router does not have", method, path)
			}
		}
	}

	// Whatever happens below, every response recorded is checked; the coverage only when the
	// whole scenario ran.
	completed := false
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		oaCheckAll(t, checker, exchanges, completed)
	}()

	// Every authenticated operation refuses a call without a key.
	for path, item := range checker.doc.Paths.Map() {
		if !strings.HasPrefix(path, "/api/v1/") && !strings.HasPrefix(path, "/storefront/v1/") {
			continue
		}
		concrete := strings.NewReplacer("{list_id}", uuid.NewString(), "{import_id}", uuid.NewString(),
			"{reservation_id}", uuid.NewString(), "{number}", "1", "{code}", "CODE-1",
			"{connection_id}", uuid.NewString(), "{export_id}", uuid.NewString(), "{channel}", "email",
			"{template_id}", uuid.NewString(), "{delivery_id}", uuid.NewString(), "{job_id}", uuid.NewString(),
			"{endpoint_id}", uuid.NewString(), "{kind}", "admin").Replace(path)
		for method := range item.Operations() {
			oaExpect(t, h, apptest.Request{Method: method, Path: concrete}, http.StatusUnauthorized)
		}
	}

	oaScenario(t, h)
	oaShopifyScenario(t, h, fake)
	oaWooCommerceScenario(t, h)
	oaMessagingScenario(t, h, sink, twilio, fcm)
	oaRedeemPINScenario(t, h)

	// Redis down: /healthz answers 503, and so does what must queue work for the worker.
	down := apptest.Start(t, env, apptest.Options{Configure: func(c *config.Config) { c.RedisURL = "redis://127.0.0.1:1/0" }})
	oaExpect(t, down, apptest.Request{Method: http.MethodGet, Path: "/healthz"}, http.StatusServiceUnavailable)
	dm := down.NewMerchant(t, "OpenAPI Down Shop")
	dl := down.CreateList(t, dm, map[string]any{"name": "Down"})
	oaExpect(t, down, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists/" + dl + "/batches", JSON: map[string]any{"count": 1}, APIKey: dm.APIKey}, http.StatusServiceUnavailable)
	oaExpect(t, down, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists/" + dl + "/imports", Body: strings.NewReader("A\n"), ContentType: "text/plain", APIKey: dm.APIKey}, http.StatusServiceUnavailable)
	// Without an app secret no webhook is accepted.
	oaExpect(t, down, shopifyWebhook(testShopifySecret, "orders/paid", "openapi-shop.myshopify.com", "", []byte(`{}`)), http.StatusUnauthorized)
	// Without the Shopify settings the install pages answer 503.
	for _, path := range []string{"/shopify/install", "/shopify/callback", "/shopify/app"} {
		q := signedQuery(testShopifySecret, map[string]string{"shop": "openapi-shop.myshopify.com"})
		if r := browserGet(t, down.URL+path+"?"+q); r.Status != http.StatusServiceUnavailable {
			t.Fatalf("%s without Shopify settings: %d %s", path, r.Status, r.Body)
		}
	}
	completed = true
}

// oaCheckAll checks every recorded exchange against the description and, when the scenario
// completed, that it called every described operation.
func oaCheckAll(t *testing.T, checker *oaChecker, exchanges []oaExchange, completed bool) {
	if len(exchanges) == 0 {
		t.Error("no exchange was recorded: is apptest.Recorder called?")
		return
	}
	failures := 0
	for _, ex := range exchanges {
		if err := checker.check(ex); err != nil {
			failures++
			if failures <= 40 {
				body := ex.body
				if len(body) > 400 || strings.HasPrefix(ex.respHeader.Get("Content-Type"), "image/png") {
					body = append(slices.Clone(body[:min(len(body), 400)]), "…"...)
				}
				t.Errorf("response not described by api/openapi.yaml: %s\n  %v\n  body: %s", ex, err, body)
			}
		}
	}
	if failures > 40 {
		t.Errorf("… and %d more responses not described", failures-40)
	}
	if !completed {
		return
	}

	// Every described operation was exercised; documented statuses never seen are listed for
	// information (500 cannot be provoked, and a batch may finish before its download is tried).
	var unseen []string
	for path, item := range checker.doc.Paths.Map() {
		for method, op := range item.Operations() {
			seen := checker.covered[method+" "+path]
			if len(seen) == 0 {
				t.Errorf("%s %s is described but the scenario never called it", method, path)
				continue
			}
			for status := range op.Responses.Map() {
				if !seen[status] && status != "500" {
					unseen = append(unseen, method+" "+path+" "+status)
				}
			}
		}
	}
	sort.Strings(unseen)
	t.Logf("%d exchanges checked; documented statuses not exercised: %v", len(exchanges), unseen)
}

// The limits the scenario runs under, small so that 413 is cheap to provoke.
const oaMaxJSON, oaMaxUpload = 8 << 10, 16 << 10

// oaExpect sends req and fails unless the answer has the wanted status.
func oaExpect(t testing.TB, h *apptest.Harness, req apptest.Request, want int) apptest.Response {
	t.Helper()
	r := h.Do(t, req)
	if r.Status != want {
		t.Fatalf("%s %s: %d, want %d: %s", req.Method, req.Path, r.Status, want, r.Body)
	}
	return r
}

// oaMultipart builds a multipart/form-data body with a file field.
func oaMultipart(t testing.TB, filename, content string) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if err := w.WriteField("note", "ignored"); err != nil {
		t.Fatal(err)
	}
	fw, err := w.CreateFormFile("file", filename)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(fw, content); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, w.FormDataContentType()
}

// oaScenario calls every endpoint, with successes and the errors a merchant meets.
func oaScenario(t *testing.T, h *apptest.Harness) {
	m := h.NewMerchant(t, "OpenAPI Shop")
	admin := func(method, path string, body any, want int) apptest.Response {
		t.Helper()
		return oaExpect(t, h, apptest.Request{Method: method, Path: path, JSON: body, APIKey: m.APIKey}, want)
	}
	upload := func(path, contentType string, body io.Reader, want int) apptest.Response {
		t.Helper()
		return oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: path, Body: body, ContentType: contentType, APIKey: m.APIKey}, want)
	}
	storefront := func(merchant apptest.Merchant, body any, want int) map[string]any {
		t.Helper()
		return oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: "/storefront/v1/validate", JSON: body, Storefront: merchant.StorefrontKey}, want).Map(t)
	}
	field := func(r apptest.Response, name string) string {
		t.Helper()
		v, _ := r.Map(t)[name].(string)
		return v
	}
	nobody := uuid.NewString()

	// Operations.
	oaExpect(t, h, apptest.Request{Method: http.MethodGet, Path: "/healthz"}, http.StatusOK)
	if r := oaExpect(t, h, apptest.Request{Method: http.MethodGet, Path: "/openapi.yaml"}, http.StatusOK); !bytes.Equal(r.Body, api.OpenAPI) {
		t.Fatal("/openapi.yaml does not serve api/openapi.yaml")
	}

	// Authentication.
	oaExpect(t, h, apptest.Request{Method: http.MethodGet, Path: "/api/v1/lists"}, http.StatusUnauthorized)
	oaExpect(t, h, apptest.Request{Method: http.MethodGet, Path: "/api/v1/lists", APIKey: "cg_admin_wrong"}, http.StatusUnauthorized)
	oaExpect(t, h, apptest.Request{Method: http.MethodGet, Path: "/api/v1/lists", APIKey: m.StorefrontKey}, http.StatusUnauthorized)
	oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: "/storefront/v1/validate", JSON: map[string]any{"code": "X"}}, http.StatusUnauthorized)
	oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: "/storefront/v1/validate", JSON: map[string]any{"code": "X"}, Storefront: m.APIKey}, http.StatusUnauthorized)
	oaExpect(t, h, apptest.Request{Method: http.MethodDelete, Path: "/storefront/v1/reservations/" + nobody}, http.StatusUnauthorized)

	// Lists.
	spring := field(admin(http.MethodPost, "/api/v1/lists", map[string]any{
		"name": "Spring", "description": "the OpenAPI scenario", "expires_at": "2040-01-01T00:00:00Z",
		"low_stock_threshold": 2, "reassign_window": 3600,
	}, http.StatusCreated), "id")
	fixed := field(admin(http.MethodPost, "/api/v1/lists", map[string]any{
		"name": "Flyer", "kind": "fixed", "fixed_code": "FLYER10", "max_assignments": 5, "starts_at": "2020-01-01T00:00:00Z",
	}, http.StatusCreated), "id")
	empty := field(admin(http.MethodPost, "/api/v1/lists", map[string]any{"name": "Empty", "case_insensitive": true}, http.StatusCreated), "id")
	admin(http.MethodPost, "/api/v1/lists", map[string]any{"description": "no name"}, http.StatusUnprocessableEntity)
	admin(http.MethodPost, "/api/v1/lists", map[string]any{"name": "x", "require_issued": true, "uses_per_code": 3}, http.StatusUnprocessableEntity)
	admin(http.MethodPost, "/api/v1/lists", map[string]any{"name": "x", "expires_at": "tomorrow"}, http.StatusBadRequest)
	oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists", Body: strings.NewReader("{"), ContentType: "application/json", APIKey: m.APIKey}, http.StatusBadRequest)
	oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists", Body: strings.NewReader(""), ContentType: "application/json", APIKey: m.APIKey}, http.StatusBadRequest)
	admin(http.MethodPost, "/api/v1/lists", map[string]any{"name": "big", "description": strings.Repeat("x", oaMaxJSON)}, http.StatusRequestEntityTooLarge)

	var page struct {
		Items      []map[string]any `json:"items"`
		NextCursor string           `json:"next_cursor"`
	}
	admin(http.MethodGet, "/api/v1/lists?limit=2", nil, http.StatusOK).JSON(t, &page)
	if len(page.Items) != 2 || page.NextCursor == "" {
		t.Fatalf("first page of lists: %+v", page)
	}
	admin(http.MethodGet, "/api/v1/lists?limit=2&cursor="+url.QueryEscape(page.NextCursor), nil, http.StatusOK).JSON(t, &page)
	if len(page.Items) != 1 || page.NextCursor != "" {
		t.Fatalf("last page of lists: %+v", page)
	}
	admin(http.MethodGet, "/api/v1/lists", nil, http.StatusOK)
	admin(http.MethodGet, "/api/v1/lists?limit=0", nil, http.StatusUnprocessableEntity)
	admin(http.MethodGet, "/api/v1/lists?limit=501", nil, http.StatusUnprocessableEntity)
	admin(http.MethodGet, "/api/v1/lists?cursor=bm90LWEtY3Vyc29y", nil, http.StatusBadRequest)
	admin(http.MethodGet, "/api/v1/lists/"+spring, nil, http.StatusOK)
	admin(http.MethodGet, "/api/v1/lists/"+fixed, nil, http.StatusOK)
	admin(http.MethodGet, "/api/v1/lists/"+nobody, nil, http.StatusNotFound)
	admin(http.MethodGet, "/api/v1/lists/not-a-uuid", nil, http.StatusNotFound)
	admin(http.MethodPatch, "/api/v1/lists/"+spring, map[string]any{"description": "changed", "starts_at": nil, "low_stock_threshold": 1}, http.StatusOK)
	admin(http.MethodPatch, "/api/v1/lists/"+spring, map[string]any{"kind": "fixed"}, http.StatusUnprocessableEntity)
	admin(http.MethodPatch, "/api/v1/lists/"+spring, map[string]any{"uses_per_code": 0}, http.StatusUnprocessableEntity)
	admin(http.MethodPatch, "/api/v1/lists/"+nobody, map[string]any{"name": "x"}, http.StatusNotFound)
	oaExpect(t, h, apptest.Request{Method: http.MethodPatch, Path: "/api/v1/lists/" + spring, Body: strings.NewReader("[1,"), ContentType: "application/json", APIKey: m.APIKey}, http.StatusBadRequest)
	admin(http.MethodPatch, "/api/v1/lists/"+spring, map[string]any{"description": strings.Repeat("x", oaMaxJSON)}, http.StatusRequestEntityTooLarge)

	// Imports: multipart CSV, text/plain, text/csv, a file without a Code column, and refusals.
	imports := "/api/v1/lists/" + spring + "/imports"
	waitImport := func(id, want string) map[string]any {
		t.Helper()
		var rep map[string]any
		apptest.Eventually(t, 60*time.Second, "import "+id, func() bool {
			rep = admin(http.MethodGet, imports+"/"+id, nil, http.StatusOK).Map(t)
			return rep["status"] == "succeeded" || rep["status"] == "failed"
		})
		if rep["status"] != want {
			t.Fatalf("import %s ended %v, want %s: %v", id, rep["status"], want, rep)
		}
		return rep
	}
	body, ct := oaMultipart(t, "spring.csv", "Code,Note,Available_Till\nSPRING-0001,a,2039-06-01\nSPRING-0002,b,\nSPRING-0003,c,\n"+
		"SPRING-0004,d,2039-06-01T12:00:00Z\nSPRING-0001,again,\nBAD CODE,space,\nSPRING-0099,bad date,soon\n")
	rep := waitImport(field(upload(imports, ct, body, http.StatusAccepted), "id"), "succeeded")
	if rep["imported"] != 4.0 || rep["duplicates_in_file"] != 1.0 || rep["invalid"] != 2.0 || len(rep["errors"].([]any)) != 3 {
		t.Fatalf("multipart import report: %v", rep)
	}
	rep = waitImport(field(upload(imports, "text/plain; charset=utf-8", strings.NewReader("SPRING-0005\n\nSPRING-0006\nSPRING-0001\n"), http.StatusAccepted), "id"), "succeeded")
	if rep["imported"] != 2.0 || rep["duplicates_in_list"] != 1.0 {
		t.Fatalf("text import report: %v", rep)
	}
	waitImport(field(upload(imports, "text/csv", strings.NewReader("code\nSPRING-0007\nSPRING-0008\nSPRING-0009\n"), http.StatusAccepted), "id"), "succeeded")
	body, ct = oaMultipart(t, "codes.txt", "SPRING-0010\nSPRING-0011\n")
	waitImport(field(upload(imports, ct, body, http.StatusAccepted), "id"), "succeeded")
	if rep = waitImport(field(upload(imports, "text/csv", strings.NewReader("Name,Voucher\na,B\n"), http.StatusAccepted), "id"), "failed"); rep["error"] == "" {
		t.Fatalf("failed import without an error: %v", rep)
	}
	var imps struct {
		Items      []map[string]any `json:"items"`
		NextCursor string           `json:"next_cursor"`
	}
	admin(http.MethodGet, imports+"?limit=3", nil, http.StatusOK).JSON(t, &imps)
	if imps.NextCursor == "" {
		t.Fatalf("imports page: %+v", imps)
	}
	admin(http.MethodGet, imports+"?limit=3&cursor="+url.QueryEscape(imps.NextCursor), nil, http.StatusOK)
	admin(http.MethodGet, imports+"?limit=x", nil, http.StatusUnprocessableEntity)
	admin(http.MethodGet, imports+"?cursor=%21", nil, http.StatusBadRequest)
	admin(http.MethodGet, "/api/v1/lists/"+nobody+"/imports", nil, http.StatusNotFound)
	admin(http.MethodGet, imports+"/"+nobody, nil, http.StatusNotFound)
	upload(imports, "application/json", strings.NewReader(`{"codes":["A"]}`), http.StatusBadRequest)
	body, ct = oaMultipart(t, "x.csv", "Code\nA\n")
	upload(imports, strings.Replace(ct, "boundary=", "boundary=other", 1), body, http.StatusBadRequest)
	upload("/api/v1/lists/"+fixed+"/imports", "text/plain", strings.NewReader("A\n"), http.StatusConflict)
	upload("/api/v1/lists/"+nobody+"/imports", "text/plain", strings.NewReader("A\n"), http.StatusNotFound)
	upload(imports, "text/plain", strings.NewReader(strings.Repeat("ABCDEFGHIJ\n", 2*oaMaxUpload/10)), http.StatusRequestEntityTooLarge)

	// Batches.
	batches := "/api/v1/lists/" + spring + "/batches"
	admin(http.MethodPost, batches, map[string]any{"count": 25, "prefix": "GEN", "length": 6}, http.StatusAccepted)
	admin(http.MethodPost, batches, map[string]any{"count": 5}, http.StatusAccepted)
	var bp struct {
		Items      []map[string]any `json:"items"`
		NextCursor string           `json:"next_cursor"`
	}
	apptest.Eventually(t, 60*time.Second, "the batches to finish", func() bool {
		admin(http.MethodGet, batches, nil, http.StatusOK).JSON(t, &bp)
		for _, b := range bp.Items {
			if b["status"] != "succeeded" && b["status"] != "failed" {
				return false
			}
		}
		return len(bp.Items) == 2
	})
	admin(http.MethodGet, batches+"?limit=1", nil, http.StatusOK).JSON(t, &bp)
	if bp.NextCursor == "" {
		t.Fatalf("batches page: %+v", bp)
	}
	admin(http.MethodGet, batches+"?limit=1&cursor="+url.QueryEscape(bp.NextCursor), nil, http.StatusOK)
	admin(http.MethodGet, batches+"?limit=600", nil, http.StatusUnprocessableEntity)
	admin(http.MethodGet, batches+"?cursor=zzz", nil, http.StatusBadRequest)
	admin(http.MethodGet, "/api/v1/lists/"+nobody+"/batches", nil, http.StatusNotFound)
	if lines := apptest.Lines(admin(http.MethodGet, batches+"/1/codes.csv", nil, http.StatusOK).Body); len(lines) != 26 || lines[0] != "code" {
		t.Fatalf("batch CSV: %d lines", len(lines))
	}
	admin(http.MethodGet, batches+"/9/codes.csv", nil, http.StatusNotFound)
	admin(http.MethodGet, "/api/v1/lists/"+nobody+"/batches/1/codes.csv", nil, http.StatusNotFound)
	admin(http.MethodPost, batches, map[string]any{"count": 0}, http.StatusUnprocessableEntity)
	admin(http.MethodPost, batches, map[string]any{"prefix": "NOCOUNT"}, http.StatusUnprocessableEntity)
	admin(http.MethodPost, batches, map[string]any{"count": 1000, "length": 1, "charset": "AB"}, http.StatusUnprocessableEntity)
	admin(http.MethodPost, batches, map[string]any{"count": "many"}, http.StatusUnprocessableEntity)
	oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: batches, Body: strings.NewReader("count=1"), ContentType: "application/json", APIKey: m.APIKey}, http.StatusBadRequest)
	admin(http.MethodPost, batches, map[string]any{"count": 1, "prefix": strings.Repeat("P", oaMaxJSON)}, http.StatusRequestEntityTooLarge)
	admin(http.MethodPost, "/api/v1/lists/"+fixed+"/batches", map[string]any{"count": 1}, http.StatusConflict)
	admin(http.MethodPost, "/api/v1/lists/"+nobody+"/batches", map[string]any{"count": 1}, http.StatusNotFound)
	// A batch still generating cannot be downloaded yet (when the worker is quicker, it can).
	admin(http.MethodPost, batches, map[string]any{"count": 3000, "prefix": "LATE"}, http.StatusAccepted)
	if r := h.Admin(t, m, http.MethodGet, batches+"/3/codes.csv", nil); r.Status != http.StatusConflict && r.Status != http.StatusOK {
		t.Fatalf("download of a fresh batch: %d %s", r.Status, r.Body)
	}
	apptest.Eventually(t, 60*time.Second, "batch 3 to finish", func() bool {
		admin(http.MethodGet, batches, nil, http.StatusOK).JSON(t, &bp)
		return len(bp.Items) == 3 && (bp.Items[2]["status"] == "succeeded" || bp.Items[2]["status"] == "failed")
	})

	// Codes.
	codes := "/api/v1/lists/" + spring + "/codes"
	var cp struct {
		Items      []map[string]any `json:"items"`
		NextCursor string           `json:"next_cursor"`
	}
	admin(http.MethodGet, codes+"?limit=3", nil, http.StatusOK).JSON(t, &cp)
	if len(cp.Items) != 3 || cp.NextCursor == "" {
		t.Fatalf("codes page: %+v", cp)
	}
	admin(http.MethodGet, codes+"?limit=3&cursor="+url.QueryEscape(cp.NextCursor), nil, http.StatusOK)
	admin(http.MethodGet, codes+"?q=SPRING-000&state=available", nil, http.StatusOK)
	admin(http.MethodGet, codes+"?state=bogus", nil, http.StatusUnprocessableEntity)
	admin(http.MethodGet, codes+"?limit=-1", nil, http.StatusUnprocessableEntity)
	admin(http.MethodGet, codes+"?cursor=AAAA", nil, http.StatusBadRequest)
	admin(http.MethodGet, "/api/v1/lists/"+nobody+"/codes", nil, http.StatusNotFound)
	admin(http.MethodGet, codes+"/SPRING-0002", nil, http.StatusOK)
	admin(http.MethodGet, "/api/v1/lists/"+fixed+"/codes/FLYER10", nil, http.StatusOK)
	admin(http.MethodGet, codes+"/NOPE", nil, http.StatusNotFound)
	admin(http.MethodGet, "/api/v1/lists/"+nobody+"/codes/SPRING-0002", nil, http.StatusNotFound)

	// Allocation: new, reused, and the refusals.
	allocations := "/api/v1/lists/" + spring + "/allocations"
	ann := map[string]any{"email": "ann@example.com"}
	first := admin(http.MethodPost, allocations, map[string]any{"recipient": ann, "campaign": "launch"}, http.StatusCreated).Map(t)
	again := admin(http.MethodPost, allocations, map[string]any{"recipient": ann, "campaign": "launch"}, http.StatusOK).Map(t)
	if again["code"] != first["code"] || again["reused"] != true || first["reused"] != false {
		t.Fatalf("allocation again: %v then %v", first, again)
	}
	annCode := first["code"].(string)
	bobCode := field(admin(http.MethodPost, allocations, map[string]any{"recipient": map[string]any{"external_id": "bob-1", "phone": "+15550100"},
		"channel": "sms"}, http.StatusCreated), "code")
	carlCode := field(admin(http.MethodPost, allocations, map[string]any{"recipient": map[string]any{"email": "carl@example.com"}}, http.StatusCreated), "code")
	admin(http.MethodPost, "/api/v1/lists/"+fixed+"/allocations", map[string]any{"recipient": ann}, http.StatusCreated)
	admin(http.MethodPost, allocations, map[string]any{"campaign": "no one"}, http.StatusUnprocessableEntity)
	admin(http.MethodPost, allocations, map[string]any{"recipient": "ann"}, http.StatusUnprocessableEntity)
	oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: allocations, Body: strings.NewReader("{"), ContentType: "application/json", APIKey: m.APIKey}, http.StatusBadRequest)
	admin(http.MethodPost, allocations, map[string]any{"recipient": ann, "campaign": strings.Repeat("c", oaMaxJSON)}, http.StatusRequestEntityTooLarge)
	admin(http.MethodPost, "/api/v1/lists/"+empty+"/allocations", map[string]any{"recipient": ann}, http.StatusConflict)
	admin(http.MethodPost, "/api/v1/lists/"+nobody+"/allocations", map[string]any{"recipient": ann}, http.StatusNotFound)

	// Storefront validation with a hold, and its release.
	held := storefront(m, map[string]any{"code": annCode, "customer": ann, "reserve": true}, http.StatusOK)
	reservation, _ := held["reservation"].(map[string]any)
	if held["valid"] != true || reservation == nil {
		t.Fatalf("validation with reserve: %v", held)
	}
	if v := storefront(m, map[string]any{"code": annCode, "customer": map[string]any{"email": "bob@example.com"}}, http.StatusOK); v["reason"] != "reserved" {
		t.Fatalf("validation during someone else's hold: %v", v)
	}
	releases := "/storefront/v1/reservations/"
	oaExpect(t, h, apptest.Request{Method: http.MethodDelete, Path: releases + reservation["id"].(string), Storefront: m.StorefrontKey}, http.StatusNoContent)
	oaExpect(t, h, apptest.Request{Method: http.MethodDelete, Path: releases + nobody, Storefront: m.StorefrontKey}, http.StatusNotFound)
	oaExpect(t, h, apptest.Request{Method: http.MethodDelete, Path: releases + "not-a-uuid", Storefront: m.StorefrontKey}, http.StatusNotFound)
	if v := storefront(m, map[string]any{"code": "FLYER10"}, http.StatusOK); v["valid"] != true {
		t.Fatalf("fixed code validation: %v", v)
	}
	if v := storefront(m, map[string]any{"code": "NO-SUCH-CODE"}, http.StatusOK); v["reason"] != "not_found" || v["list"] != nil {
		t.Fatalf("unknown code validation: %v", v)
	}
	storefront(m, map[string]any{"customer": ann}, http.StatusUnprocessableEntity)
	oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: "/storefront/v1/validate", Body: strings.NewReader("nope"), ContentType: "application/json", Storefront: m.StorefrontKey}, http.StatusBadRequest)
	storefront(m, map[string]any{"code": strings.Repeat("C", oaMaxJSON)}, http.StatusRequestEntityTooLarge)

	// Order events: only paid counts, once.
	orders := "/api/v1/orders"
	order := func(id, status string, codes ...string) map[string]any {
		t.Helper()
		return admin(http.MethodPost, orders, map[string]any{"platform": "custom", "shop": "shop.example.com", "order_id": id,
			"status": status, "codes": codes, "customer": ann}, http.StatusOK).Map(t)
	}
	outcome := func(res map[string]any, i int) string {
		return res["results"].([]any)[i].(map[string]any)["outcome"].(string)
	}
	if res := order("1001", "pending", annCode); outcome(res, 0) != "recorded" {
		t.Fatalf("pending: %v", res)
	}
	if res := order("1001", "paid", annCode, "NOT-A-CODE"); outcome(res, 0) != "redeemed" || outcome(res, 1) != "not_found" {
		t.Fatalf("paid: %v", res)
	}
	if res := order("1001", "paid", annCode); outcome(res, 0) != "already_counted" {
		t.Fatalf("paid again: %v", res)
	}
	if res := order("1002", "paid", annCode); outcome(res, 0) != "over_use" {
		t.Fatalf("another order: %v", res)
	}
	order("1001", "refunded", annCode)
	order("1001", "refunded", annCode)
	admin(http.MethodPost, orders, map[string]any{"platform": "custom", "order_id": "1003", "status": "shipped"}, http.StatusUnprocessableEntity)
	admin(http.MethodPost, orders, map[string]any{"order_id": "1003", "status": "paid"}, http.StatusUnprocessableEntity)
	oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: orders, Body: strings.NewReader(`{"platform":`), ContentType: "application/json", APIKey: m.APIKey}, http.StatusBadRequest)
	admin(http.MethodPost, orders, map[string]any{"platform": "custom", "order_id": "1004", "status": "paid", "codes": []string{strings.Repeat("C", oaMaxJSON)}}, http.StatusRequestEntityTooLarge)

	// Manual redemption.
	redeem := func(code string) string { return codes + "/" + url.PathEscape(code) + "/redeem" }
	admin(http.MethodPost, redeem(bobCode), map[string]any{"order_id": "till-7", "note": "scanned"}, http.StatusOK)
	admin(http.MethodPost, redeem(bobCode), map[string]any{"order_id": "till-7"}, http.StatusOK)
	admin(http.MethodPost, redeem(bobCode), map[string]any{"order_id": "till-8"}, http.StatusConflict)
	oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: redeem("SPRING-0010"), APIKey: m.APIKey}, http.StatusOK)
	admin(http.MethodPost, redeem("NOPE"), map[string]any{}, http.StatusNotFound)
	admin(http.MethodPost, redeem(carlCode), map[string]any{"note": strings.Repeat("n", 1001)}, http.StatusUnprocessableEntity)
	oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: redeem(carlCode), Body: strings.NewReader("{"), ContentType: "application/json", APIKey: m.APIKey}, http.StatusBadRequest)
	admin(http.MethodPost, redeem(carlCode), map[string]any{"note": strings.Repeat("n", oaMaxJSON)}, http.StatusRequestEntityTooLarge)
	issued := field(admin(http.MethodPost, "/api/v1/lists", map[string]any{"name": "Issued only", "require_issued": true}, http.StatusCreated), "id")
	if _, err := h.App.DB.AddCodes(context.Background(), oaList(t, h, m, issued), []string{"ISSUED-1"}); err != nil {
		t.Fatal(err)
	}
	admin(http.MethodPost, "/api/v1/lists/"+issued+"/codes/ISSUED-1/redeem", map[string]any{}, http.StatusConflict)

	// The recipient view.
	if r := admin(http.MethodGet, "/api/v1/recipients/codes?email=ann@example.com", nil, http.StatusOK).Map(t); len(r["items"].([]any)) != 2 {
		t.Fatalf("ann's codes: %v", r)
	}
	admin(http.MethodGet, "/api/v1/recipients/codes?external_id=bob-1&phone=%2B15550100", nil, http.StatusOK)
	admin(http.MethodGet, "/api/v1/recipients/codes?email=nobody@example.com", nil, http.StatusOK)
	admin(http.MethodGet, "/api/v1/recipients/codes", nil, http.StatusUnprocessableEntity)

	// QR codes.
	admin(http.MethodGet, codes+"/"+annCode+"/qr.png", nil, http.StatusOK)
	admin(http.MethodGet, codes+"/"+annCode+"/qr.png?size=128", nil, http.StatusOK)
	admin(http.MethodGet, codes+"/"+annCode+"/qr.png?size=10", nil, http.StatusUnprocessableEntity)
	admin(http.MethodGet, codes+"/NOPE/qr.png", nil, http.StatusNotFound)
	admin(http.MethodGet, codes+"/"+annCode+"/qr.svg", nil, http.StatusOK)
	admin(http.MethodGet, "/api/v1/lists/"+nobody+"/codes/"+annCode+"/qr.svg", nil, http.StatusNotFound)

	// Exports.
	export := "/api/v1/lists/" + spring + "/export"
	for _, state := range []string{"", "?state=all", "?state=delivered", "?state=undelivered", "?state=redeemed"} {
		admin(http.MethodGet, export+state, nil, http.StatusOK)
	}
	admin(http.MethodGet, "/api/v1/lists/"+empty+"/export", nil, http.StatusOK)
	admin(http.MethodGet, export+"?state=bogus", nil, http.StatusUnprocessableEntity)
	admin(http.MethodGet, "/api/v1/lists/"+nobody+"/export", nil, http.StatusNotFound)

	// Removal: one code, then every never-delivered code; delivered and used codes stay.
	admin(http.MethodDelete, codes+"/SPRING-0011", nil, http.StatusNoContent)
	admin(http.MethodDelete, codes+"/SPRING-0011", nil, http.StatusNoContent)
	admin(http.MethodDelete, codes+"/"+carlCode, nil, http.StatusConflict)
	admin(http.MethodDelete, codes+"/NOPE", nil, http.StatusNotFound)
	admin(http.MethodDelete, "/api/v1/lists/"+fixed+"/codes/FLYER10", nil, http.StatusConflict)
	admin(http.MethodDelete, codes, nil, http.StatusUnprocessableEntity)
	admin(http.MethodDelete, codes+"?state=delivered", nil, http.StatusUnprocessableEntity)
	if r := admin(http.MethodDelete, codes+"?state=available", nil, http.StatusOK).Map(t); r["removed"].(float64) < 1 {
		t.Fatalf("bulk removal: %v", r)
	}
	admin(http.MethodDelete, "/api/v1/lists/"+fixed+"/codes?state=available", nil, http.StatusConflict)
	admin(http.MethodDelete, "/api/v1/lists/"+nobody+"/codes?state=available", nil, http.StatusNotFound)
	admin(http.MethodGet, codes+"/SPRING-0011", nil, http.StatusOK)
	admin(http.MethodGet, codes+"/"+annCode, nil, http.StatusOK)
	admin(http.MethodGet, codes+"?state=removed&limit=2", nil, http.StatusOK)
	admin(http.MethodGet, codes+"?recipient=ann@example.com", nil, http.StatusOK)
	admin(http.MethodGet, codes+"/SPRING-0011/qr.png", nil, http.StatusNotFound)
	admin(http.MethodGet, "/api/v1/lists/"+spring, nil, http.StatusOK)
	if v := storefront(m, map[string]any{"code": "SPRING-0011"}, http.StatusOK); v["reason"] != "not_found" {
		t.Fatalf("removed code validation: %v", v)
	}

	// List states: expired, archived; then deletion.
	admin(http.MethodPatch, "/api/v1/lists/"+fixed, map[string]any{"archived": true}, http.StatusOK)
	admin(http.MethodPost, "/api/v1/lists/"+fixed+"/allocations", map[string]any{"recipient": ann}, http.StatusConflict)
	if v := storefront(m, map[string]any{"code": "FLYER10"}, http.StatusOK); v["reason"] != "archived" {
		t.Fatalf("archived list validation: %v", v)
	}
	admin(http.MethodPatch, "/api/v1/lists/"+empty, map[string]any{"starts_at": "2020-01-01T00:00:00Z", "expires_at": "2021-01-01T00:00:00Z"}, http.StatusOK)
	if _, err := h.App.DB.Pool().Exec(context.Background(), `INSERT INTO list_connections (merchant_id, list_id, connection_id) VALUES ($1, $2, gen_random_uuid())`, m.ID, fixed); err != nil {
		t.Fatal(err)
	}
	admin(http.MethodDelete, "/api/v1/lists/"+fixed, nil, http.StatusConflict)
	admin(http.MethodDelete, "/api/v1/lists/"+empty, nil, http.StatusNoContent)
	admin(http.MethodDelete, "/api/v1/lists/"+empty, nil, http.StatusNotFound)
	admin(http.MethodGet, "/api/v1/lists?limit=500", nil, http.StatusOK)

	// Another merchant sees none of it.
	other := h.NewMerchant(t, "OpenAPI Other Shop")
	oaExpect(t, h, apptest.Request{Method: http.MethodGet, Path: "/api/v1/lists/" + spring, APIKey: other.APIKey}, http.StatusNotFound)
	oaExpect(t, h, apptest.Request{Method: http.MethodGet, Path: codes + "/" + annCode, APIKey: other.APIKey}, http.StatusNotFound)

	// Keys: the other merchant's admin key rotates itself with a grace period, then the storefront key.
	rotate := func(kind string, req apptest.Request, want int) apptest.Response {
		t.Helper()
		req.Method, req.Path = http.MethodPost, "/api/v1/keys/"+kind+"/rotate"
		return oaExpect(t, h, req, want)
	}
	newAdmin := field(rotate("admin", apptest.Request{JSON: map[string]any{"grace_seconds": 60}, APIKey: other.APIKey}, http.StatusCreated), "key")
	rotate("storefront", apptest.Request{APIKey: newAdmin}, http.StatusCreated)
	rotate("webhook", apptest.Request{JSON: map[string]any{"grace_seconds": 0}, APIKey: newAdmin}, http.StatusNotFound)
	rotate("admin", apptest.Request{JSON: map[string]any{"grace_seconds": 2592001}, APIKey: newAdmin}, http.StatusUnprocessableEntity)
	rotate("admin", apptest.Request{Body: strings.NewReader("{"), ContentType: "application/json", APIKey: newAdmin}, http.StatusBadRequest)
	rotate("admin", apptest.Request{JSON: map[string]any{"grace_seconds": 0, "x": strings.Repeat("x", oaMaxJSON)}, APIKey: newAdmin}, http.StatusRequestEntityTooLarge)

	// Shopify webhooks: accepted, a duplicate, a shop not ours, a bad signature, a bad shop, too large.
	const oaShop = "openapi-shop.myshopify.com"
	connectShop(t, h, m.ID, oaShop)
	paid := shopifyOrderFor(t, "order-paid-no-code.json", oaShop)
	event := uuid.NewString()
	oaExpect(t, h, shopifyWebhook(testShopifySecret, "orders/paid", oaShop, event, paid), http.StatusOK)
	oaExpect(t, h, shopifyWebhook(testShopifySecret, "orders/paid", oaShop, event, paid), http.StatusOK)
	oaExpect(t, h, shopifyWebhook(testShopifySecret, "orders/paid", "nobody-here.myshopify.com", "", shopifyOrderFor(t, "order-paid-no-code.json", "nobody-here.myshopify.com")), http.StatusOK)
	oaExpect(t, h, shopifyWebhook(testShopifySecret, "orders/paid", "nobody-here.myshopify.com", "", paid), http.StatusUnauthorized)
	oaExpect(t, h, shopifyWebhook("wrong-secret", "orders/paid", oaShop, "", paid), http.StatusUnauthorized)
	oaExpect(t, h, shopifyWebhook(testShopifySecret, "orders/paid", "not a shop", "", paid), http.StatusBadRequest)
	oaExpect(t, h, shopifyWebhook(testShopifySecret, "orders/paid", oaShop, "", bytes.Repeat([]byte(" "), 2<<20+1)), http.StatusRequestEntityTooLarge)

	// Failed validations are slowed down: 429 with Retry-After.
	brute := h.NewMerchant(t, "OpenAPI Brute Shop")
	for i := range 6 {
		storefront(brute, map[string]any{"code": fmt.Sprint("GUESS-", i)}, http.StatusOK)
	}
	storefront(brute, map[string]any{"code": "GUESS-6"}, http.StatusTooManyRequests)
}

// oaShopifyScenario installs shops through every Shopify page, with the refusals a merchant or an
// attacker meets, and calls the admin API with a session token. The pages redirect, so they are
// fetched with browserGet, which records them like apptest does.
func oaShopifyScenario(t *testing.T, h *apptest.Harness, fake *shopifyfake.Fake) {
	page := func(path string, params map[string]string, want int) apptest.Response {
		t.Helper()
		r := browserGet(t, h.URL+path+"?"+signedQuery(testShopifySecret, params))
		if r.Status != want {
			t.Fatalf("GET %s: %d, want %d: %s", path, r.Status, want, r.Body)
		}
		return r
	}

	// OAuth install: refusals, then the whole flow.
	shop := testShop("openapi-oauth")
	page("/shopify/install", map[string]string{"shop": "openapi.example.com"}, http.StatusBadRequest)
	if r := browserGet(t, h.URL+"/shopify/install?shop="+shop+"&timestamp=1&hmac=00"); r.Status != http.StatusUnauthorized {
		t.Fatalf("unsigned install: %d %s", r.Status, r.Body)
	}
	cookie, q := oauthStart(t, h, shop, "")
	for _, bad := range []struct {
		q       url.Values
		cookies []*http.Cookie
		want    int
	}{
		{q, nil, http.StatusUnauthorized},
		{resign(q, map[string]string{"shop": "openapi.example.com"}), []*http.Cookie{cookie}, http.StatusBadRequest},
		{resign(q, map[string]string{"code": "not-a-code"}), []*http.Cookie{cookie}, http.StatusBadRequest},
	} {
		if r := callback(t, h, bad.q, bad.cookies...); r.Status != bad.want {
			t.Fatalf("callback: %d, want %d: %s", r.Status, bad.want, r.Body)
		}
	}
	if r := callback(t, h, q, cookie); r.Status != http.StatusFound {
		t.Fatalf("callback: %d %s", r.Status, r.Body)
	}
	narrow := testShop("openapi-scopes")
	cookie, q = oauthStart(t, h, narrow, "read_orders")
	if r := callback(t, h, q, cookie); r.Status != http.StatusConflict {
		t.Fatalf("callback with fewer scopes: %d %s", r.Status, r.Body)
	}

	// Embedded install by token exchange, and the app page.
	embedded := testShop("openapi-embedded")
	page("/shopify/install", map[string]string{"shop": embedded, "embedded": "1", "id_token": fake.SessionToken(shop, time.Minute)}, http.StatusUnauthorized)
	page("/shopify/install", map[string]string{"shop": embedded, "embedded": "1", "id_token": fake.SessionToken(embedded, time.Minute)}, http.StatusFound)
	page("/shopify/app", map[string]string{"shop": embedded}, http.StatusFound)
	page("/shopify/app", map[string]string{"shop": shop, "embedded": "1", "id_token": fake.SessionToken(shop, time.Minute)}, http.StatusFound)
	page("/shopify/app", map[string]string{"shop": narrow}, http.StatusNotFound)
	page("/shopify/app", map[string]string{"shop": "openapi.example.com"}, http.StatusBadRequest)
	page("/shopify/app", map[string]string{"shop": embedded, "timestamp": "1"}, http.StatusUnauthorized)

	// The admin API with a session token.
	oaExpect(t, h, apptest.Request{Method: http.MethodGet, Path: "/api/v1/lists", APIKey: fake.SessionToken(embedded, time.Minute)}, http.StatusOK)
	oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists", JSON: map[string]any{"name": "Embedded"}, APIKey: fake.SessionToken(embedded, time.Minute)}, http.StatusCreated)
	oaExpect(t, h, apptest.Request{Method: http.MethodGet, Path: "/api/v1/lists", APIKey: fake.SessionToken(embedded, -time.Minute)}, http.StatusUnauthorized)
	oaExpect(t, h, apptest.Request{Method: http.MethodGet, Path: "/api/v1/lists", APIKey: fake.SessionToken(narrow, time.Minute)}, http.StatusUnauthorized)

	// Connections and pushes, as the embedded app calls them.
	as := func(method, path string, body any, want int) apptest.Response {
		t.Helper()
		return oaExpect(t, h, apptest.Request{Method: method, Path: path, JSON: body, APIKey: fake.SessionToken(embedded, time.Minute)}, want)
	}
	var conns struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	as(http.MethodGet, "/api/v1/connections", nil, http.StatusOK).JSON(t, &conns)
	if len(conns.Items) != 1 {
		t.Fatalf("the embedded shop's merchant has %d connections", len(conns.Items))
	}
	conn := conns.Items[0].ID
	as(http.MethodGet, "/api/v1/connections?limit=0", nil, http.StatusUnprocessableEntity)
	as(http.MethodGet, "/api/v1/connections?cursor=nonsense", nil, http.StatusBadRequest)
	var list struct {
		ID string `json:"id"`
	}
	as(http.MethodPost, "/api/v1/lists", map[string]any{"name": "Pushed"}, http.StatusCreated).JSON(t, &list)
	discount := map[string]any{"title": "Ten", "value_type": "percentage", "value": 10}
	push := func(body map[string]any, want int) apptest.Response {
		t.Helper()
		return as(http.MethodPost, "/api/v1/lists/"+list.ID+"/connections", body, want)
	}
	push(map[string]any{"connection_id": conn, "discount": discount}, http.StatusAccepted)
	push(map[string]any{"connection_id": conn, "discount": discount}, http.StatusOK)
	push(map[string]any{"connection_id": conn, "discount": map[string]any{"title": "Ten", "value_type": "bogo", "value": 10}}, http.StatusUnprocessableEntity)
	push(map[string]any{"connection_id": conn, "discount": map[string]any{"title": "Ten", "value_type": "percentage", "value": 120}}, http.StatusUnprocessableEntity)
	push(map[string]any{"connection_id": uuid.NewString(), "discount": discount}, http.StatusNotFound)
	oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists/" + list.ID + "/connections", Body: strings.NewReader("{"),
		ContentType: "application/json", APIKey: fake.SessionToken(embedded, time.Minute)}, http.StatusBadRequest)
	oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists/" + list.ID + "/connections",
		Body:        strings.NewReader(`{"connection_id":"` + conn + `","discount":{"title":"` + strings.Repeat("x", oaMaxJSON) + `"}}`),
		ContentType: "application/json", APIKey: fake.SessionToken(embedded, time.Minute)}, http.StatusRequestEntityTooLarge)
	as(http.MethodGet, "/api/v1/lists/"+list.ID+"/connections", nil, http.StatusOK)
	as(http.MethodGet, "/api/v1/lists/"+uuid.NewString()+"/connections", nil, http.StatusNotFound)
	as(http.MethodPost, "/api/v1/connections/"+conn+"/reconcile", nil, http.StatusAccepted)
	as(http.MethodPost, "/api/v1/connections/"+uuid.NewString()+"/reconcile", nil, http.StatusNotFound)
	as(http.MethodDelete, "/api/v1/connections/"+uuid.NewString(), nil, http.StatusNotFound)

	// A customer data request of the shop, and the export it produced.
	request := `{"shop_domain": "` + embedded + `", "customer": {"id": 1, "email": "nobody@example.com"}, "orders_requested": [], "data_request": {"id": 7}}`
	oaExpect(t, h, shopifyWebhook(testShopifySecret, "customers/data_request", embedded, uuid.NewString(), []byte(request)), http.StatusOK)
	var exports struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	apptest.Eventually(t, 10*time.Second, "the data request's export", func() bool {
		as(http.MethodGet, "/api/v1/compliance-exports", nil, http.StatusOK).JSON(t, &exports)
		return len(exports.Items) == 1
	})
	as(http.MethodGet, "/api/v1/compliance-exports/"+exports.Items[0].ID, nil, http.StatusOK)
	as(http.MethodGet, "/api/v1/compliance-exports/"+uuid.NewString(), nil, http.StatusNotFound)
	as(http.MethodGet, "/api/v1/compliance-exports?limit=501", nil, http.StatusUnprocessableEntity)
	as(http.MethodGet, "/api/v1/compliance-exports?cursor=nonsense", nil, http.StatusBadRequest)

	// Once the shop is disconnected, its session token no longer opens the admin API.
	var owner string
	if err := h.App.DB.Pool().QueryRow(context.Background(), `SELECT merchant_id FROM connections WHERE id = $1`, conn).Scan(&owner); err != nil {
		t.Fatal(err)
	}
	as(http.MethodDelete, "/api/v1/connections/"+conn, nil, http.StatusOK)
	oaExpect(t, h, apptest.Request{Method: http.MethodGet, Path: "/api/v1/connections", APIKey: fake.SessionToken(embedded, time.Minute)}, http.StatusUnauthorized)
	other := h.NewMerchant(t, "OpenAPI connections")
	otherConn := connectShop(t, h, other.ID, testShop("openapi-routed"))
	otherList := h.CreateList(t, other, map[string]any{"name": "Inactive"})
	if _, err := h.App.DB.Pool().Exec(context.Background(), `UPDATE connections SET state = 'error', error = 'the shop stopped answering' WHERE id = $1`, otherConn); err != nil {
		t.Fatal(err)
	}
	oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: "/api/v1/connections/" + otherConn.String() + "/reconcile", APIKey: other.APIKey}, http.StatusConflict)
	oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists/" + otherList + "/connections",
		JSON: map[string]any{"connection_id": otherConn.String(), "discount": discount}, APIKey: other.APIKey}, http.StatusConflict)
	oaExpect(t, h, apptest.Request{Method: http.MethodGet, Path: "/api/v1/connections", APIKey: other.APIKey}, http.StatusOK)
}

// oaList reads a list through core, for seeding codes.
func oaList(t testing.TB, h *apptest.Harness, m apptest.Merchant, id string) core.List {
	t.Helper()
	l, err := h.App.Lists.Get(context.Background(), uuid.MustParse(m.ID), uuid.MustParse(id))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// oaWooCommerceScenario connects a fake WooCommerce store both ways and sends it deliveries.
func oaWooCommerceScenario(t *testing.T, h *apptest.Harness) {
	store := woofake.New(t, woofake.Config{TLS: true})
	h.UseWooCommerceClient(store.Client())
	m := h.NewMerchant(t, "OpenAPI WooCommerce")
	keys := map[string]any{"site_url": store.URL(), "consumer_key": woofake.DefaultConsumerKey, "consumer_secret": woofake.DefaultConsumerSecret}
	connect := func(body any, want int) apptest.Response {
		t.Helper()
		return oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: "/api/v1/connections/woocommerce", JSON: body, APIKey: m.APIKey}, want)
	}
	var conn struct {
		ID string `json:"id"`
	}
	connect(keys, http.StatusCreated).JSON(t, &conn)
	connect(keys, http.StatusOK)
	connect(map[string]any{"site_url": store.URL(), "consumer_key": "ck_x", "consumer_secret": "cs_x"}, http.StatusUnprocessableEntity)
	connect(map[string]any{"site_url": store.URL()}, http.StatusUnprocessableEntity)
	oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: "/api/v1/connections/woocommerce", Body: strings.NewReader("{"),
		ContentType: "application/json", APIKey: m.APIKey}, http.StatusBadRequest)
	oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: "/api/v1/connections/woocommerce",
		Body: strings.NewReader(`{"site_url":"` + strings.Repeat("x", oaMaxJSON) + `"}`), ContentType: "application/json", APIKey: m.APIKey},
		http.StatusRequestEntityTooLarge)

	// Deliveries: a ping, a signed order, a forged one, one for no connection, one too large.
	path := "/webhooks/woocommerce/" + conn.ID
	ping := apptest.Request{Method: http.MethodPost, Path: path, Body: strings.NewReader("webhook_id=7"), ContentType: "application/x-www-form-urlencoded"}
	oaExpect(t, h, ping, http.StatusOK)
	body := []byte(`{"id": 77, "status": "processing", "coupon_lines": [{"code": "nothing-here"}]}`)
	signed := func(path string, body []byte, secret string) apptest.Request {
		hd := http.Header{}
		hd.Set(woocommerce.HeaderTopic, "order.updated")
		hd.Set(woocommerce.HeaderSignature, woocommerce.SignWebhook(body, secret))
		return apptest.Request{Method: http.MethodPost, Path: path, Body: bytes.NewReader(body), ContentType: "application/json", Header: hd}
	}
	secret := store.Webhooks()[0].Secret
	oaExpect(t, h, signed(path, body, secret), http.StatusOK)
	oaExpect(t, h, signed(path, body, "forged"), http.StatusUnauthorized)
	oaExpect(t, h, signed("/webhooks/woocommerce/"+uuid.NewString(), body, secret), http.StatusNotFound)
	big := bytes.Repeat([]byte("x"), woocommerce.MaxWebhookBytes+1)
	oaExpect(t, h, signed(path, big, secret), http.StatusRequestEntityTooLarge)

	// The app authorization: the redirect, then the callback WooCommerce makes.
	r := oaExpect(t, h, apptest.Request{Method: http.MethodGet, Path: "/woocommerce/connect?site_url=" + url.QueryEscape(store.URL()), APIKey: m.APIKey}, http.StatusFound)
	oaExpect(t, h, apptest.Request{Method: http.MethodGet, Path: "/woocommerce/connect?site_url=nowhere", APIKey: m.APIKey}, http.StatusUnprocessableEntity)
	oaExpect(t, h, apptest.Request{Method: http.MethodGet, Path: "/woocommerce/connect?site_url=" + url.QueryEscape(store.URL())}, http.StatusUnauthorized)
	location, err := url.Parse(r.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	callback := func(body any, want int) {
		t.Helper()
		oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: "/woocommerce/callback", JSON: body}, want)
	}
	granted := map[string]any{"key_id": 5, "user_id": location.Query().Get("user_id"), "consumer_key": woofake.DefaultConsumerKey,
		"consumer_secret": woofake.DefaultConsumerSecret, "key_permissions": "read_write"}
	callback(granted, http.StatusOK)
	forged := maps.Clone(granted)
	forged["user_id"] = "1"
	callback(forged, http.StatusUnauthorized)
	readOnly := maps.Clone(granted)
	readOnly["key_permissions"] = "read"
	callback(readOnly, http.StatusUnprocessableEntity)
	oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: "/woocommerce/callback", Body: strings.NewReader("{"), ContentType: "application/json"}, http.StatusBadRequest)
}

// oaMessagingScenario sets up message channels (pointed at the local SMTP, Twilio and FCM
// fakes), templates and deliveries, one by one and in bulk, webhook endpoints that hear the
// merchant's events, and alert addresses, with the refusals a merchant meets.
func oaMessagingScenario(t *testing.T, h *apptest.Harness, sink *messagingfake.SMTPSink, tw *messagingfake.Twilio, fcm *messagingfake.FCM) {
	m := h.NewMerchant(t, "OpenAPI Messages")
	admin := func(method, path string, body any, want int) apptest.Response {
		t.Helper()
		return oaExpect(t, h, apptest.Request{Method: method, Path: path, JSON: body, APIKey: m.APIKey}, want)
	}
	raw := func(method, path, contentType string, body io.Reader, want int) apptest.Response {
		t.Helper()
		return oaExpect(t, h, apptest.Request{Method: method, Path: path, Body: body, ContentType: contentType, APIKey: m.APIKey}, want)
	}
	id := func(r apptest.Response) string {
		t.Helper()
		v, _ := r.Map(t)["id"].(string)
		if v == "" {
			t.Fatalf("no id in %s", r.Body)
		}
		return v
	}
	nobody := uuid.NewString()
	tooLarge := map[string]any{"emails": []string{strings.Repeat("x", oaMaxJSON)}}

	// Channels: never configured, not a channel, refusals, then all three.
	admin(http.MethodGet, "/api/v1/channels/email", nil, http.StatusNotFound)
	admin(http.MethodGet, "/api/v1/channels/fax", nil, http.StatusNotFound)
	admin(http.MethodPut, "/api/v1/channels/fax", map[string]any{"host": "x"}, http.StatusNotFound)
	host, port := sink.Addr()
	email := map[string]any{"host": host, "port": port, "username": "", "password": "", "from": "Shop <codes@shop.example>", "security": "none"}
	admin(http.MethodPut, "/api/v1/channels/email", map[string]any{"host": host, "port": 0, "from": "codes@shop.example"}, http.StatusUnprocessableEntity)
	admin(http.MethodPut, "/api/v1/channels/email", map[string]any{"host": host, "from": "codes@shop.example"}, http.StatusUnprocessableEntity)
	raw(http.MethodPut, "/api/v1/channels/email", "application/json", strings.NewReader("{"), http.StatusBadRequest)
	admin(http.MethodPut, "/api/v1/channels/email", map[string]any{"host": host, "port": port, "from": "codes@shop.example", "password": strings.Repeat("x", oaMaxJSON)}, http.StatusRequestEntityTooLarge)
	admin(http.MethodPut, "/api/v1/channels/email", email, http.StatusOK)
	settings := tw.Settings(messagingfake.DefaultTwilioFrom)
	admin(http.MethodPut, "/api/v1/channels/sms", map[string]any{"provider": "twilio", "account_sid": "AC1", "auth_token": "x", "from": "+15005550006"}, http.StatusUnprocessableEntity)
	admin(http.MethodPut, "/api/v1/channels/sms", map[string]any{"provider": "twilio", "account_sid": settings.AccountSID, "auth_token": settings.AuthToken,
		"from": messagingfake.DefaultTwilioFrom}, http.StatusOK)
	admin(http.MethodPut, "/api/v1/channels/push", map[string]any{"provider": "fcm", "service_account": map[string]any{"type": "user"}}, http.StatusUnprocessableEntity)
	admin(http.MethodPut, "/api/v1/channels/push", map[string]any{"provider": "fcm", "service_account": json.RawMessage(fcm.ServiceAccountJSON())}, http.StatusOK)
	for _, ch := range []string{"email", "sms", "push"} {
		r := admin(http.MethodGet, "/api/v1/channels/"+ch, nil, http.StatusOK)
		if strings.Contains(string(r.Body), settings.AuthToken) || strings.Contains(string(r.Body), "PRIVATE KEY") {
			t.Fatalf("GET channel %s shows a secret: %s", ch, r.Body)
		}
	}

	// Templates and previews.
	list := h.CreateList(t, m, map[string]any{"name": "Messages", "expires_at": "2040-03-14T23:30:00Z"})
	importByHand(t, h, m, list, "test", numbered("MSG-", 12)...)
	templates := "/api/v1/lists/" + list + "/templates"
	emailTpl := id(admin(http.MethodPost, templates, map[string]any{"channel": "email", "subject": "Your code {couponcode}",
		"text": "Hi <firstname>, use $code before <expirydate>.", "html": "<p>Hi <firstname>, your code is <b><couponcode></b></p>",
		"locale": "de", "time_zone": "Europe/Berlin"}, http.StatusCreated))
	smsTpl := id(admin(http.MethodPost, templates, map[string]any{"channel": "sms", "text": "{firstname}, your code: {couponcode}"}, http.StatusCreated))
	pushTpl := id(admin(http.MethodPost, templates, map[string]any{"channel": "push", "title": "A gift, <firstname>", "body": "Code <couponcode>"}, http.StatusCreated))
	if r := admin(http.MethodPost, templates, map[string]any{"channel": "sms", "text": "Code: <coupon_cod>"}, http.StatusUnprocessableEntity); !strings.Contains(string(r.Body), "unknown_placeholder") {
		t.Fatalf("unknown placeholder: %s", r.Body)
	}
	admin(http.MethodPost, templates, map[string]any{"channel": "sms", "subject": "no", "text": "x"}, http.StatusUnprocessableEntity)
	admin(http.MethodPost, templates, map[string]any{"channel": "fax", "text": "x"}, http.StatusUnprocessableEntity)
	admin(http.MethodPost, templates, map[string]any{"channel": "push", "body": "x", "locale": "xx-XX"}, http.StatusUnprocessableEntity)
	admin(http.MethodPost, templates, map[string]any{"channel": "sms", "text": strings.Repeat("x", oaMaxJSON)}, http.StatusRequestEntityTooLarge)
	raw(http.MethodPost, templates, "application/json", strings.NewReader("{"), http.StatusBadRequest)
	admin(http.MethodPost, "/api/v1/lists/"+nobody+"/templates", map[string]any{"channel": "sms", "text": "x"}, http.StatusNotFound)
	for _, tpl := range []string{emailTpl, smsTpl, pushTpl} {
		admin(http.MethodPost, "/api/v1/templates/"+tpl+"/preview", nil, http.StatusOK)
	}
	admin(http.MethodPost, "/api/v1/templates/"+nobody+"/preview", nil, http.StatusNotFound)
	admin(http.MethodPost, "/api/v1/templates/not-a-uuid/preview", nil, http.StatusNotFound)

	// Templates listed newest first, changed (PATCH), replaced (PUT) and deleted; a template
	// keeps its channel.
	type oaPage struct {
		Items      []map[string]any `json:"items"`
		NextCursor string           `json:"next_cursor"`
	}
	pageOf := func(path string) oaPage {
		t.Helper()
		var p oaPage
		admin(http.MethodGet, path, nil, http.StatusOK).JSON(t, &p)
		return p
	}
	if p := pageOf(templates + "?limit=2"); len(p.Items) != 2 || p.Items[0]["id"] != pushTpl || p.NextCursor == "" {
		t.Fatalf("first page of templates: %+v", p)
	} else if p = pageOf(templates + "?limit=2&cursor=" + url.QueryEscape(p.NextCursor)); len(p.Items) != 1 || p.Items[0]["id"] != emailTpl || p.NextCursor != "" {
		t.Fatalf("second page of templates: %+v", p)
	}
	admin(http.MethodGet, templates+"?limit=0", nil, http.StatusUnprocessableEntity)
	admin(http.MethodGet, templates+"?cursor=nonsense", nil, http.StatusBadRequest)
	admin(http.MethodGet, "/api/v1/lists/"+nobody+"/templates", nil, http.StatusNotFound)
	smsPath := "/api/v1/templates/" + smsTpl
	if r := admin(http.MethodPatch, smsPath, map[string]any{"text": "{firstname}, your code is {couponcode}"}, http.StatusOK).Map(t); r["text"] != "{firstname}, your code is {couponcode}" || r["channel"] != "sms" {
		t.Fatalf("patched template: %v", r)
	}
	admin(http.MethodPatch, smsPath, map[string]any{"channel": "email"}, http.StatusUnprocessableEntity)
	admin(http.MethodPatch, smsPath, map[string]any{"text": "Code: <coupon_cod>"}, http.StatusUnprocessableEntity)
	admin(http.MethodPatch, "/api/v1/templates/"+nobody, map[string]any{"text": "x"}, http.StatusNotFound)
	raw(http.MethodPatch, smsPath, "application/json", strings.NewReader("{"), http.StatusBadRequest)
	admin(http.MethodPatch, smsPath, map[string]any{"text": strings.Repeat("x", oaMaxJSON)}, http.StatusRequestEntityTooLarge)
	pushPath := "/api/v1/templates/" + pushTpl
	admin(http.MethodPut, pushPath, map[string]any{"channel": "push", "title": "A gift for <firstname>", "body": "Code <couponcode>"}, http.StatusOK)
	admin(http.MethodPut, pushPath, map[string]any{"channel": "sms", "text": "x"}, http.StatusUnprocessableEntity)
	admin(http.MethodPut, "/api/v1/templates/"+nobody, map[string]any{"channel": "sms", "text": "x"}, http.StatusNotFound)
	raw(http.MethodPut, pushPath, "application/json", strings.NewReader("{"), http.StatusBadRequest)
	admin(http.MethodPut, pushPath, map[string]any{"channel": "push", "body": strings.Repeat("x", oaMaxJSON)}, http.StatusRequestEntityTooLarge)
	unused := id(admin(http.MethodPost, templates, map[string]any{"channel": "sms", "text": "<couponcode>"}, http.StatusCreated))
	admin(http.MethodDelete, "/api/v1/templates/"+unused, nil, http.StatusNoContent)
	admin(http.MethodDelete, "/api/v1/templates/"+unused, nil, http.StatusNotFound)

	// Webhook endpoints and alert addresses, set up before the deliveries so that they hear them.
	var mu sync.Mutex
	var secret string
	heard := map[string]bool{}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if !outbound.Verify(secret, r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), body, time.Now(), time.Minute) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var ev struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(body, &ev)
		heard[ev.Type] = true
	}))
	t.Cleanup(receiver.Close)
	endpoints := "/api/v1/webhook-endpoints"
	r := admin(http.MethodPost, endpoints, map[string]any{"url": receiver.URL, "events": []string{"code.delivered", "code.redeemed", "list.low_stock", "import.finished"}}, http.StatusCreated)
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("the new endpoint's answer may be cached: %q", r.Header.Get("Cache-Control"))
	}
	var ep struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	r.JSON(t, &ep)
	mu.Lock()
	secret = ep.Secret
	mu.Unlock()
	spare := id(admin(http.MethodPost, endpoints, map[string]any{"url": receiver.URL + "/spare", "events": []string{"list.expired"}}, http.StatusCreated))
	admin(http.MethodPost, endpoints, map[string]any{"url": receiver.URL, "events": []string{"code.used"}}, http.StatusUnprocessableEntity)
	admin(http.MethodPost, endpoints, map[string]any{"url": "ftp://example.com", "events": []string{"code.delivered"}}, http.StatusUnprocessableEntity)
	admin(http.MethodPost, endpoints, map[string]any{"url": receiver.URL, "events": []string{}}, http.StatusUnprocessableEntity)
	admin(http.MethodPost, endpoints, map[string]any{"url": receiver.URL, "events": []string{strings.Repeat("x", oaMaxJSON)}}, http.StatusRequestEntityTooLarge)
	raw(http.MethodPost, endpoints, "application/json", strings.NewReader("["), http.StatusBadRequest)
	if r := admin(http.MethodGet, endpoints, nil, http.StatusOK); strings.Contains(string(r.Body), ep.Secret) {
		t.Fatal("the listing shows the secret")
	}
	admin(http.MethodDelete, endpoints+"/"+spare, nil, http.StatusNoContent)
	admin(http.MethodDelete, endpoints+"/"+spare, nil, http.StatusNotFound)
	admin(http.MethodDelete, endpoints+"/not-a-uuid", nil, http.StatusNotFound)
	// Re-enabling an active endpoint answers it as it is; a deleted one is not found.
	admin(http.MethodPost, endpoints+"/"+ep.ID+"/enable", nil, http.StatusOK)
	admin(http.MethodPost, endpoints+"/"+spare+"/enable", nil, http.StatusNotFound)

	alerts := "/api/v1/settings/alerts"
	if r := admin(http.MethodGet, alerts, nil, http.StatusOK); !strings.Contains(string(r.Body), `"emails":[]`) {
		t.Fatalf("alert addresses never set: %s", r.Body)
	}
	admin(http.MethodPut, alerts, map[string]any{"emails": []string{"Owner@Shop.example"}}, http.StatusOK)
	admin(http.MethodGet, alerts, nil, http.StatusOK)
	admin(http.MethodPut, alerts, map[string]any{"emails": []string{"not an address"}}, http.StatusUnprocessableEntity)
	admin(http.MethodPut, alerts, tooLarge, http.StatusRequestEntityTooLarge)
	raw(http.MethodPut, alerts, "application/json", strings.NewReader(""), http.StatusBadRequest)

	// Deliveries: by email, SMS and push; asked again; waiting on an empty list; refusals.
	deliveries := "/api/v1/lists/" + list + "/deliveries"
	ada := map[string]any{"recipient": map[string]any{"email": "ada@example.com", "first_name": "Ada"}, "campaign": "spring", "channel": "email", "template_id": emailTpl}
	sent := []string{id(admin(http.MethodPost, deliveries, ada, http.StatusAccepted))}
	sent = append(sent, id(admin(http.MethodPost, deliveries, map[string]any{"recipient": map[string]any{"phone": "+4915112345678"}, "channel": "sms", "template_id": smsTpl}, http.StatusAccepted)))
	sent = append(sent, id(admin(http.MethodPost, deliveries, map[string]any{"recipient": map[string]any{"push_token": "device-1"}, "channel": "push", "template_id": pushTpl}, http.StatusAccepted)))
	for _, d := range sent {
		apptest.Eventually(t, 20*time.Second, "delivery "+d+" sent", func() bool {
			return admin(http.MethodGet, deliveries+"/"+d, nil, http.StatusOK).Map(t)["status"] == "sent"
		})
	}
	if again := id(admin(http.MethodPost, deliveries, ada, http.StatusOK)); again != sent[0] {
		t.Fatalf("asking again made another delivery: %s, %s", again, sent[0])
	}
	for _, bad := range []struct {
		body map[string]any
		want int
	}{
		{map[string]any{"recipient": map[string]any{"phone": "0151 1234"}, "channel": "sms", "template_id": smsTpl}, http.StatusUnprocessableEntity},
		{map[string]any{"recipient": map[string]any{"email": "x@example.com"}, "channel": "email", "template_id": smsTpl}, http.StatusUnprocessableEntity},
		{map[string]any{"recipient": map[string]any{"email": "x@example.com"}, "channel": "email"}, http.StatusUnprocessableEntity},
		{map[string]any{"recipient": map[string]any{"email": "x@example.com"}, "channel": "email", "template_id": nobody}, http.StatusNotFound},
		{map[string]any{"recipient": map[string]any{"email": "x@example.com"}, "channel": "email", "template_id": "nope"}, http.StatusNotFound},
		{map[string]any{"recipient": map[string]any{"email": "x@example.com"}, "channel": "email", "template_id": emailTpl, "campaign": strings.Repeat("x", oaMaxJSON)}, http.StatusRequestEntityTooLarge},
	} {
		admin(http.MethodPost, deliveries, bad.body, bad.want)
	}
	raw(http.MethodPost, deliveries, "application/json", strings.NewReader("{"), http.StatusBadRequest)
	admin(http.MethodPost, "/api/v1/lists/"+nobody+"/deliveries", ada, http.StatusNotFound)
	admin(http.MethodGet, deliveries+"/"+nobody, nil, http.StatusNotFound)
	admin(http.MethodGet, "/api/v1/lists/not-a-uuid/deliveries/"+sent[0], nil, http.StatusNotFound)
	empty := h.CreateList(t, m, map[string]any{"name": "Nothing to send"})
	emptyTpl := id(admin(http.MethodPost, "/api/v1/lists/"+empty+"/templates", map[string]any{"channel": "sms", "text": "<couponcode>"}, http.StatusCreated))
	w := admin(http.MethodPost, "/api/v1/lists/"+empty+"/deliveries", map[string]any{"recipient": map[string]any{"phone": "+4915100000000"}, "channel": "sms", "template_id": emptyTpl}, http.StatusAccepted).Map(t)
	if w["status"] != "waiting" || w["code"] != nil {
		t.Fatalf("a delivery of an empty list: %v", w)
	}
	// A template that a waiting delivery will be sent with stays.
	admin(http.MethodDelete, "/api/v1/templates/"+emptyTpl, nil, http.StatusConflict)
	// The list's deliveries, newest first.
	if p := pageOf(deliveries + "?limit=2"); len(p.Items) != 2 || p.Items[0]["id"] != sent[2] || p.NextCursor == "" {
		t.Fatalf("first page of deliveries: %+v", p)
	} else if p = pageOf(deliveries + "?limit=2&cursor=" + url.QueryEscape(p.NextCursor)); len(p.Items) != 1 || p.Items[0]["id"] != sent[0] {
		t.Fatalf("second page of deliveries: %+v", p)
	}
	admin(http.MethodGet, deliveries+"?limit=501", nil, http.StatusUnprocessableEntity)
	admin(http.MethodGet, deliveries+"?cursor=nonsense", nil, http.StatusBadRequest)
	admin(http.MethodGet, "/api/v1/lists/"+nobody+"/deliveries", nil, http.StatusNotFound)
	ended := h.CreateList(t, m, map[string]any{"name": "Archived"})
	endedTpl := id(admin(http.MethodPost, "/api/v1/lists/"+ended+"/templates", map[string]any{"channel": "sms", "text": "<couponcode>"}, http.StatusCreated))
	admin(http.MethodPatch, "/api/v1/lists/"+ended, map[string]any{"archived": true}, http.StatusOK)
	admin(http.MethodPost, "/api/v1/lists/"+ended+"/deliveries", map[string]any{"recipient": map[string]any{"phone": "+4915100000000"}, "channel": "sms", "template_id": endedTpl}, http.StatusConflict)

	// A merchant without channels is told to configure them.
	bare := h.NewMerchant(t, "OpenAPI No Channels")
	bareList := h.CreateList(t, bare, map[string]any{"name": "Unsent"})
	importByHand(t, h, bare, bareList, "test", "BARE-1")
	r = oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists/" + bareList + "/templates", JSON: map[string]any{"channel": "email", "subject": "s", "text": "<code>"}, APIKey: bare.APIKey}, http.StatusCreated)
	bareTpl := id(r)
	oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists/" + bareList + "/deliveries", APIKey: bare.APIKey,
		JSON: map[string]any{"recipient": map[string]any{"email": "x@example.com"}, "channel": "email", "template_id": bareTpl}}, http.StatusConflict)
	body, ct := multipartFields(t, map[string]string{"channel": "email", "template_id": bareTpl}, "file", "people.csv", "email\nx@example.com\n")
	oaExpect(t, h, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists/" + bareList + "/deliveries/bulk", Body: body, ContentType: ct, APIKey: bare.APIKey}, http.StatusConflict)

	// Bulk deliveries: fields before the file, or in the query; refusals.
	bulk := deliveries + "/bulk"
	body, ct = multipartFields(t, map[string]string{"channel": "email", "template_id": emailTpl, "campaign": "bulk"}, "file", "people.csv",
		"\ufeffEmail;First_Name\nann@example.com;Ann\nbo@example.com;Bo\nnot-an-address;X\n")
	job := id(raw(http.MethodPost, bulk, ct, body, http.StatusAccepted))
	body, ct = multipartFields(t, nil, "file", "people.csv", "phone,first_name\n+4915111111111,Cy\n")
	queried := id(raw(http.MethodPost, bulk+"?channel=sms&template_id="+smsTpl+"&campaign=bulk", ct, body, http.StatusAccepted))
	for _, j := range []string{job, queried} {
		apptest.Eventually(t, 30*time.Second, "bulk job "+j+" done", func() bool {
			rep := admin(http.MethodGet, bulk+"/"+j, nil, http.StatusOK).Map(t)
			return rep["status"] == "done" && rep["progress"] == 1.0
		})
	}
	body, ct = multipartFields(t, nil, "file", "people.csv", "email\nx@example.com\n")
	raw(http.MethodPost, bulk, ct, body, http.StatusUnprocessableEntity)
	body, ct = multipartFields(t, map[string]string{"channel": "email", "template_id": smsTpl}, "file", "people.csv", "email\nx@example.com\n")
	raw(http.MethodPost, bulk, ct, body, http.StatusUnprocessableEntity)
	body, ct = multipartFields(t, map[string]string{"channel": "email", "template_id": nobody}, "file", "people.csv", "email\nx@example.com\n")
	raw(http.MethodPost, bulk, ct, body, http.StatusNotFound)
	body, ct = multipartFields(t, map[string]string{"channel": "email", "template_id": emailTpl}, "file", "people.csv", "email\nx@example.com\n")
	raw(http.MethodPost, "/api/v1/lists/"+nobody+"/deliveries/bulk", ct, body, http.StatusNotFound)
	body, ct = multipartFields(t, map[string]string{"channel": "email", "template_id": emailTpl}, "other", "people.csv", "email\nx@example.com\n")
	raw(http.MethodPost, bulk, ct, body, http.StatusBadRequest)
	raw(http.MethodPost, bulk+"?channel=email&template_id="+emailTpl, "text/csv", strings.NewReader("email\nx@example.com\n"), http.StatusBadRequest)
	body, ct = multipartFields(t, map[string]string{"channel": "email", "template_id": emailTpl}, "file", "people.csv",
		"email\n"+strings.Repeat("someone@example.com\n", 2*oaMaxUpload/20))
	raw(http.MethodPost, bulk, ct, body, http.StatusRequestEntityTooLarge)
	admin(http.MethodGet, bulk+"/"+nobody, nil, http.StatusNotFound)
	// The list's bulk jobs, newest first (the refused uploads too, failed).
	all := pageOf(bulk)
	var order []any
	for _, j := range all.Items {
		if j["id"] == job || j["id"] == queried {
			order = append(order, j["id"], j["status"])
		}
	}
	if !slices.Equal(order, []any{queried, "done", job, "done"}) {
		t.Fatalf("bulk jobs: %+v", all)
	}
	if p := pageOf(bulk + "?limit=1"); len(p.Items) != 1 || p.NextCursor == "" {
		t.Fatalf("first page of bulk jobs: %+v", p)
	} else if p = pageOf(bulk + "?limit=1&cursor=" + url.QueryEscape(p.NextCursor)); len(p.Items) != 1 || p.Items[0]["id"] != all.Items[1]["id"] {
		t.Fatalf("second page of bulk jobs: %+v", p)
	}
	admin(http.MethodGet, bulk+"?limit=0", nil, http.StatusUnprocessableEntity)
	admin(http.MethodGet, bulk+"?cursor=nonsense", nil, http.StatusBadRequest)
	admin(http.MethodGet, "/api/v1/lists/"+nobody+"/deliveries/bulk", nil, http.StatusNotFound)

	// The endpoint heard the codes handed out, signed; every attempt is listed, newest first.
	admin(http.MethodPost, "/api/v1/lists/"+list+"/codes/MSG-0012/redeem", map[string]any{"order_id": "till-1"}, http.StatusOK)
	apptest.Eventually(t, 30*time.Second, "code.delivered and code.redeemed at the endpoint", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return heard["code.delivered"] && heard["code.redeemed"]
	})
	attempts := endpoints + "/" + ep.ID + "/attempts"
	var page struct {
		Items      []map[string]any `json:"items"`
		NextCursor string           `json:"next_cursor"`
	}
	apptest.Eventually(t, 10*time.Second, "two attempts listed", func() bool {
		admin(http.MethodGet, attempts+"?limit=1", nil, http.StatusOK).JSON(t, &page)
		return len(page.Items) == 1 && page.NextCursor != ""
	})
	admin(http.MethodGet, attempts+"?limit=1&cursor="+url.QueryEscape(page.NextCursor), nil, http.StatusOK)
	admin(http.MethodGet, attempts, nil, http.StatusOK)
	admin(http.MethodGet, attempts+"?limit=0", nil, http.StatusUnprocessableEntity)
	admin(http.MethodGet, attempts+"?cursor=nonsense", nil, http.StatusBadRequest)
	admin(http.MethodGet, endpoints+"/"+nobody+"/attempts", nil, http.StatusNotFound)
	// Deleted once nothing is in flight to it: a delete racing an attempt's record can deadlock
	// in PostgreSQL (the two lock the endpoint and its messages in opposite orders).
	apptest.Eventually(t, 30*time.Second, "the endpoint's messages to be delivered", func() bool {
		var pending int
		if err := h.App.DB.Pool().QueryRow(context.Background(), `SELECT count(*) FROM webhook_messages WHERE endpoint_id = $1 AND status = 'pending'`,
			ep.ID).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		return pending == 0
	})
	admin(http.MethodDelete, endpoints+"/"+ep.ID, nil, http.StatusNoContent)
	admin(http.MethodGet, endpoints+"/"+ep.ID+"/attempts", nil, http.StatusNotFound)
}
