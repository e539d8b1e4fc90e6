package woofake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/coupongate/coupongate/integrations/woocommerce"
)

// ---- pagination ----

// paging reads page, per_page and offset as WooCommerce's collection parameters do.
func (f *Fake) paging(c *call) (page, perPage, offset int, err *restError) {
	page, perPage, offset = 1, 10, -1
	bad := map[string]string{}
	if s, ok := c.str("page"); ok {
		n, e := strconv.Atoi(strings.TrimSpace(s))
		if e != nil {
			bad["page"] = "page is not of type integer."
		} else if n < 1 {
			bad["page"] = "page must be greater than or equal to 1"
		} else {
			page = n
		}
	}
	if s, ok := c.str("per_page"); ok {
		n, e := strconv.Atoi(strings.TrimSpace(s))
		if e != nil {
			bad["per_page"] = "per_page is not of type integer."
		} else if n < 1 || n > f.cfg.PerPageMax {
			bad["per_page"] = fmt.Sprintf("per_page must be between 1 (inclusive) and %d (inclusive)", f.cfg.PerPageMax)
		} else {
			perPage = n
		}
	}
	if s, ok := c.str("offset"); ok {
		if n, e := strconv.Atoi(strings.TrimSpace(s)); e == nil && n >= 0 {
			offset = n
		}
	}
	if len(bad) > 0 {
		return 0, 0, 0, invalidParams(bad)
	}
	return page, perPage, offset, nil
}

// writePage answers one page of items (already all of the matching ones, in order) with
// X-WP-Total, X-WP-TotalPages and Link (rel prev/next), as WC_REST_CRUD_Controller::get_items.
func writePage[T any](f *Fake, w http.ResponseWriter, c *call, resource string, all []T, page, perPage, offset int) {
	total := len(all)
	start := (page - 1) * perPage
	if offset >= 0 {
		start = offset
	}
	items := []T{}
	if start < total {
		items = all[start:min(start+perPage, total)]
	}
	maxPages := int(math.Ceil(float64(total) / float64(perPage)))
	h := w.Header()
	h.Set("X-WP-Total", strconv.Itoa(total))
	h.Set("X-WP-TotalPages", strconv.Itoa(maxPages))
	link := func(p int) string {
		q := url.Values{}
		for k, vs := range c.query {
			q[k] = vs
		}
		q.Set("page", strconv.Itoa(p))
		return f.URL() + "/wp-json/wc/v3/" + resource + "?" + q.Encode()
	}
	if page > 1 {
		prev := min(page-1, maxPages)
		h.Add("Link", `<`+link(prev)+`>; rel="prev"`)
	}
	if maxPages > page {
		h.Add("Link", `<`+link(page+1)+`>; rel="next"`)
	}
	writeJSON(w, http.StatusOK, items)
}

func (f *Fake) links(resource string, id int64) map[string]any {
	base := f.URL() + "/wp-json/wc/v3/" + resource
	return map[string]any{
		"self":       []map[string]string{{"href": base + "/" + strconv.FormatInt(id, 10)}},
		"collection": []map[string]string{{"href": base}},
	}
}

// orderParam reads order (asc/desc, default desc) and orderby among allowed (default "date").
func orderParams(c *call, allowed ...string) (orderby string, asc bool, err *restError) {
	orderby, asc = "date", false
	bad := map[string]string{}
	if s, ok := c.str("order"); ok {
		switch s {
		case "asc":
			asc = true
		case "desc":
		default:
			bad["order"] = "order is not one of asc and desc."
		}
	}
	if s, ok := c.str("orderby"); ok {
		found := false
		for _, a := range allowed {
			found = found || a == s
		}
		if !found {
			bad["orderby"] = "orderby is not one of " + listPHP(allowed) + "."
		} else {
			orderby = s
		}
	}
	if len(bad) > 0 {
		return "", false, invalidParams(bad)
	}
	return orderby, asc, nil
}

// listPHP joins like wp_sprintf_l: "a, b, and c".
func listPHP(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	case 2:
		return xs[0] + " and " + xs[1]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + ", and " + xs[len(xs)-1]
}

// restDate is rest_parse_date: ISO 8601 with an optional fraction and zone; no zone means the
// site's timezone (UTC here).
var restDateRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|z|[+-]\d{2}(:?\d{2})?)?$`)

func restDate(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if !restDateRE.MatchString(s) {
		return time.Time{}, false
	}
	s = strings.Replace(strings.Replace(s, " ", "T", 1), "t", "T", 1)
	for _, layout := range []string{"2006-01-02T15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05.999999999Z07"} {
		if t, err := time.Parse(layout, strings.Replace(s, "z", "Z", 1)); err == nil {
			return t.UTC(), true
		}
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.UTC)
	return t, err == nil
}

// ---- system status ----

func (f *Fake) getSystemStatus(w http.ResponseWriter, c *call) {
	home := f.URL()
	writeJSON(w, http.StatusOK, map[string]any{
		"environment": map[string]any{
			"home_url": home, "site_url": home, "version": WCVersion, "wp_version": WPVersion,
			"wp_multisite": false, "wp_memory_limit": 268435456, "wp_debug_mode": false, "language": "en_US",
			"server_info": "nginx", "php_version": "8.3.0", "default_timezone": "UTC",
		},
		"database":       map[string]any{"wc_database_version": WCVersion},
		"active_plugins": []any{map[string]any{"plugin": "woocommerce/woocommerce.php", "name": "WooCommerce", "version": WCVersion}},
		"theme":          map[string]any{"name": "Storefront"},
		"settings":       map[string]any{"api_enabled": true, "force_ssl": false, "currency": "USD", "currency_symbol": "&#36;"},
		"security":       map[string]any{"secure_connection": f.cfg.TLS, "hide_errors": true},
		"pages":          []any{},
	})
}

// ---- webhooks ----

type webhookRecord struct {
	id              int64
	name            string
	status          string
	topic           string
	deliveryURL     string
	secret          string
	failures        int
	pendingDelivery bool
	created         time.Time
	modified        time.Time
}

type webhookJSON struct {
	ID              int64          `json:"id"`
	Name            string         `json:"name"`
	Status          string         `json:"status"`
	Topic           string         `json:"topic"`
	Resource        string         `json:"resource"`
	Event           string         `json:"event"`
	Hooks           []string       `json:"hooks"`
	DeliveryURL     string         `json:"delivery_url"`
	Secret          *string        `json:"secret,omitempty"`
	DateCreated     string         `json:"date_created"`
	DateCreatedGMT  string         `json:"date_created_gmt"`
	DateModified    string         `json:"date_modified"`
	DateModifiedGMT string         `json:"date_modified_gmt"`
	Links           map[string]any `json:"_links"`
}

// topicHooks are the WordPress actions behind each topic (WC_Webhook::get_topic_hooks).
var topicHooks = map[string][]string{
	"coupon.created":   {"woocommerce_process_shop_coupon_meta", "woocommerce_new_coupon"},
	"coupon.updated":   {"woocommerce_process_shop_coupon_meta", "woocommerce_update_coupon"},
	"coupon.deleted":   {"wp_trash_post"},
	"coupon.restored":  {"untrashed_post"},
	"customer.created": {"user_register", "woocommerce_created_customer", "woocommerce_new_customer"},
	"customer.updated": {"profile_update", "woocommerce_update_customer"},
	"customer.deleted": {"delete_user"},
	"order.created":    {"woocommerce_new_order"},
	"order.updated":    {"woocommerce_update_order", "woocommerce_order_refunded", "woocommerce_delete_order_refund"},
	"order.deleted":    {"wp_trash_post", "woocommerce_trash_order"},
	"order.restored":   {"untrashed_post", "woocommerce_untrash_order"},
	"product.created":  {"woocommerce_process_product_meta", "woocommerce_new_product", "woocommerce_new_product_variation"},
	"product.updated":  {"woocommerce_process_product_meta", "woocommerce_update_product", "woocommerce_update_product_variation"},
	"product.deleted":  {"wp_trash_post"},
	"product.restored": {"untrashed_post"},
}

// validTopic is wc_is_webhook_valid_topic.
func validTopic(topic string) bool {
	switch topic {
	case "action.woocommerce_login_credentials", "action.woocommerce_product_csv_importer_check_import_file_path",
		"action.woocommerce_webhook_should_deliver":
		return false
	}
	if a, ok := strings.CutPrefix(topic, "action."); ok {
		return strings.HasPrefix(a, "woocommerce_") || strings.HasPrefix(a, "wc_")
	}
	resource, event, ok := strings.Cut(topic, ".")
	if !ok {
		return false
	}
	switch resource {
	case "coupon", "customer", "order", "product":
	default:
		return false
	}
	switch event {
	case "created", "updated", "deleted", "restored":
		return true
	}
	return false
}

// validDeliveryURL is wc_is_valid_url: http:// or https:// and a valid URL.
func validDeliveryURL(s string) bool {
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.Host != "" && !strings.ContainsAny(s, " \t\r\n")
}

func (f *Fake) webhookJSONLocked(wh *webhookRecord, edit bool) webhookJSON {
	resource, event, _ := strings.Cut(wh.topic, ".")
	if strings.HasPrefix(wh.topic, "action.") {
		resource, event = "action", strings.TrimPrefix(wh.topic, "action.")
	}
	hooks := topicHooks[wh.topic]
	if resource == "action" {
		hooks = []string{event}
	}
	if hooks == nil {
		hooks = []string{}
	}
	j := webhookJSON{ID: wh.id, Name: wh.name, Status: wh.status, Topic: wh.topic, Resource: resource, Event: event,
		Hooks: hooks, DeliveryURL: wh.deliveryURL, DateCreated: wcDate(wh.created), DateCreatedGMT: wcDate(wh.created),
		DateModified: wcDate(wh.modified), DateModifiedGMT: wcDate(wh.modified), Links: f.links("webhooks", wh.id)}
	if edit {
		s := wh.secret
		j.Secret = &s
	}
	return j
}

var webhookStatuses = []string{"active", "paused", "disabled"}

func validWebhookStatus(s string) bool {
	for _, v := range webhookStatuses {
		if s == v {
			return true
		}
	}
	return false
}

// checkWebhookArgs is the schema validation of name, status and secret.
func checkWebhookArgs(c *call) *restError {
	bad := map[string]string{}
	for _, name := range []string{"name", "status", "topic", "secret"} {
		if v, ok := c.params[name]; ok && v != nil {
			if _, isStr := v.(string); !isStr {
				bad[name] = name + " is not of type string."
			}
		}
	}
	if s, ok := c.params["status"].(string); ok && !validWebhookStatus(s) {
		bad["status"] = "status is not one of " + listPHP(webhookStatuses) + "."
	}
	if len(bad) > 0 {
		return invalidParams(bad)
	}
	return nil
}

func (f *Fake) createWebhook(w http.ResponseWriter, c *call) {
	if err := checkWebhookArgs(c); err != nil {
		writeError(w, err)
		return
	}
	if id, _ := c.str("id"); id != "" && id != "0" {
		writeError(w, errorf(http.StatusBadRequest, "woocommerce_rest_shop_webhook_exists", "Cannot create existing shop_webhook."))
		return
	}
	topic, _ := c.str("topic")
	topic = strings.TrimSpace(topic)
	if topic == "" || !validTopic(strings.ToLower(topic)) {
		writeError(w, errorf(http.StatusBadRequest, "woocommerce_rest_shop_webhook_invalid_topic", "Webhook topic is required and must be valid."))
		return
	}
	deliveryURL, _ := c.str("delivery_url")
	if deliveryURL == "" || !validDeliveryURL(deliveryURL) {
		writeError(w, errorf(http.StatusBadRequest, "woocommerce_rest_shop_webhook_invalid_delivery_url", "Webhook delivery URL must be a valid URL starting with http:// or https://."))
		return
	}
	now := f.cfg.Now().UTC().Truncate(time.Second)
	name, _ := c.str("name")
	if name == "" {
		name = "Webhook created on " + now.Format("Jan 02, 2006 @ 03:04 PM")
	}
	secret, _ := c.str("secret")
	if secret == "" {
		secret = generatePassword(50)
	}
	if !validTopic(topic) {
		topic = "" // WC_Webhook::set_topic checks the topic as given, not lower-cased
	}

	f.mu.Lock()
	wh := &webhookRecord{id: f.nextWebhookID, name: name, status: "active", topic: topic, deliveryURL: deliveryURL,
		secret: secret, pendingDelivery: true, created: now, modified: now}
	f.nextWebhookID++
	f.webhooks[wh.id] = wh
	body := f.webhookJSONLocked(wh, true)
	f.mu.Unlock()

	// WC_REST_Webhooks_V1_Controller::create_item pings before answering and ignores the result.
	f.ping(wh.id, deliveryURL)

	w.Header().Set("Location", f.URL()+"/wp-json/wc/v3/webhooks/"+strconv.FormatInt(wh.id, 10))
	writeJSON(w, http.StatusCreated, body)
}

func (f *Fake) getWebhook(w http.ResponseWriter, c *call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	wh := f.webhooks[pathID(c)]
	if wh == nil {
		// get_item reaches prepare_item_for_response, which answers 400 for an unknown id.
		writeError(w, errorf(http.StatusBadRequest, "woocommerce_rest_shop_webhook_invalid_id", "ID is invalid."))
		return
	}
	ctx, _ := c.str("context")
	writeJSON(w, http.StatusOK, f.webhookJSONLocked(wh, ctx == "edit"))
}

func (f *Fake) listWebhooks(w http.ResponseWriter, c *call) {
	page, perPage, offset, perr := f.paging(c)
	if perr != nil {
		writeError(w, perr)
		return
	}
	_, asc, oerr := orderParams(c, "date", "id", "title")
	if oerr != nil {
		writeError(w, oerr)
		return
	}
	status, ok := c.str("status")
	if !ok {
		status = "all"
	}
	if status != "all" && !validWebhookStatus(status) {
		writeError(w, invalidParams(map[string]string{"status": "status is not one of all, active, paused, and disabled."}))
		return
	}
	ctx, _ := c.str("context")
	f.mu.Lock()
	var all []webhookJSON
	for _, wh := range f.webhooks {
		if status == "all" || wh.status == status {
			all = append(all, f.webhookJSONLocked(wh, ctx == "edit"))
		}
	}
	f.mu.Unlock()
	sort.Slice(all, func(i, j int) bool {
		if asc {
			return all[i].ID < all[j].ID
		}
		return all[i].ID > all[j].ID
	})
	writePage(f, w, c, "webhooks", all, page, perPage, offset)
}

func (f *Fake) updateWebhook(w http.ResponseWriter, c *call) {
	if err := checkWebhookArgs(c); err != nil {
		writeError(w, err)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	wh := f.webhooks[pathID(c)]
	if wh == nil {
		writeError(w, errorf(http.StatusBadRequest, "woocommerce_rest_shop_webhook_invalid_id", "ID is invalid."))
		return
	}
	topic, _ := c.str("topic")
	if topic != "" && !validTopic(strings.ToLower(topic)) {
		writeError(w, errorf(http.StatusBadRequest, "woocommerce_rest_shop_webhook_invalid_topic", "Webhook topic must be valid."))
		return
	}
	deliveryURL, _ := c.str("delivery_url")
	if deliveryURL != "" && !validDeliveryURL(deliveryURL) {
		writeError(w, errorf(http.StatusBadRequest, "woocommerce_rest_shop_webhook_invalid_delivery_url", "Webhook delivery URL must be a valid URL starting with http:// or https://."))
		return
	}
	if topic != "" {
		if validTopic(topic) {
			wh.topic = topic
		} else {
			wh.topic = ""
		}
	}
	if deliveryURL != "" && deliveryURL != wh.deliveryURL {
		wh.deliveryURL = deliveryURL
		wh.pendingDelivery = true
	}
	if secret, _ := c.str("secret"); secret != "" {
		wh.secret = secret
	}
	if status, _ := c.str("status"); status != "" {
		wh.status = status // the failure count stays: only a successful delivery resets it
	}
	if name, _ := c.str("name"); name != "" {
		wh.name = name
	}
	wh.modified = f.cfg.Now().UTC().Truncate(time.Second)
	writeJSON(w, http.StatusOK, f.webhookJSONLocked(wh, true))
}

func (f *Fake) deleteWebhook(w http.ResponseWriter, c *call) {
	if !c.boolParam("force") {
		writeError(w, errorf(http.StatusNotImplemented, "woocommerce_rest_trash_not_supported", "Webhooks do not support trashing."))
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := pathID(c)
	wh := f.webhooks[id]
	if wh == nil {
		writeError(w, errorf(http.StatusNotFound, "woocommerce_rest_shop_webhook_invalid_id", "Invalid ID."))
		return
	}
	body := f.webhookJSONLocked(wh, true)
	delete(f.webhooks, id)
	writeJSON(w, http.StatusOK, body)
}

// ---- coupons ----

type couponRecord struct {
	id                int64
	code              string
	discountType      string
	amount            string
	status            string
	description       string
	usageLimit        int
	usageLimitPerUser int
	usageCount        int
	individualUse     bool
	freeShipping      bool
	dateExpires       *time.Time
	created           time.Time
	modified          time.Time
	usedBy            []string
	meta              []metaRecord
}

// metaRecord is one custom field (a wp_postmeta row): its meta id, key and value.
type metaRecord struct {
	id    int64
	key   string
	value any
}

// metaJSON is a custom field as meta_data lists it.
type metaJSON struct {
	ID    int64  `json:"id"`
	Key   string `json:"key"`
	Value any    `json:"value"`
}

func metaJSONOf(meta []metaRecord) []metaJSON {
	out := make([]metaJSON, 0, len(meta))
	for _, m := range meta {
		out = append(out, metaJSON{ID: m.id, Key: m.key, Value: m.value})
	}
	return out
}

// storedMetaValue is a value as WordPress keeps it in wp_postmeta and reads it back: scalars
// become strings (true "1", false ""), arrays and objects stay as they are.
func storedMetaValue(v any) any {
	switch t := v.(type) {
	case nil:
		return ""
	case bool:
		if t {
			return "1"
		}
		return ""
	case json.Number:
		return t.String()
	case string, []any, map[string]any:
		return t
	}
	return fmt.Sprint(v)
}

// updateMetaLocked is WC_Data::update_meta_data as the REST controllers call it for each
// meta_data item: with an id, the field with that id takes the key and value (an unknown id
// changes nothing); without, the first field with the key takes the value and the others with
// that key go, or a new field is added with a new meta id.
func (f *Fake) updateMetaLocked(meta []metaRecord, key string, value any, id int64) []metaRecord {
	value = storedMetaValue(value)
	if id != 0 {
		for i := range meta {
			if meta[i].id == id {
				meta[i].key, meta[i].value = key, value
			}
		}
		return meta
	}
	out := meta[:0:0]
	set := false
	for _, m := range meta {
		if m.key == key {
			if set {
				continue
			}
			m.value, set = value, true
		}
		out = append(out, m)
	}
	if !set {
		f.nextMetaID++
		out = append(out, metaRecord{id: f.nextMetaID, key: key, value: value})
	}
	return out
}

type couponJSON struct {
	ID                        int64          `json:"id"`
	Code                      string         `json:"code"`
	Amount                    string         `json:"amount"`
	Status                    string         `json:"status"`
	DateCreated               string         `json:"date_created"`
	DateCreatedGMT            string         `json:"date_created_gmt"`
	DateModified              string         `json:"date_modified"`
	DateModifiedGMT           string         `json:"date_modified_gmt"`
	DiscountType              string         `json:"discount_type"`
	Description               string         `json:"description"`
	DateExpires               *string        `json:"date_expires"`
	DateExpiresGMT            *string        `json:"date_expires_gmt"`
	UsageCount                int            `json:"usage_count"`
	IndividualUse             bool           `json:"individual_use"`
	ProductIDs                []int64        `json:"product_ids"`
	ExcludedProductIDs        []int64        `json:"excluded_product_ids"`
	UsageLimit                *int           `json:"usage_limit"`
	UsageLimitPerUser         *int           `json:"usage_limit_per_user"`
	LimitUsageToXItems        *int           `json:"limit_usage_to_x_items"`
	FreeShipping              bool           `json:"free_shipping"`
	ProductCategories         []int64        `json:"product_categories"`
	ExcludedProductCategories []int64        `json:"excluded_product_categories"`
	ExcludeSaleItems          bool           `json:"exclude_sale_items"`
	MinimumAmount             string         `json:"minimum_amount"`
	MaximumAmount             string         `json:"maximum_amount"`
	EmailRestrictions         []string       `json:"email_restrictions"`
	UsedBy                    []string       `json:"used_by"`
	MetaData                  []metaJSON     `json:"meta_data"`
	Links                     map[string]any `json:"_links"`
}

// formatDecimal is wc_format_decimal(v, 2): "10" → "10.00".
func formatDecimal(v string) string {
	n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		n = 0
	}
	return strconv.FormatFloat(n, 'f', 2, 64)
}

func nullableInt(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}

func (f *Fake) couponJSONLocked(cp *couponRecord) couponJSON {
	j := couponJSON{ID: cp.id, Code: cp.code, Amount: formatDecimal(cp.amount), Status: cp.status,
		DateCreated: wcDate(cp.created), DateCreatedGMT: wcDate(cp.created), DateModified: wcDate(cp.modified), DateModifiedGMT: wcDate(cp.modified),
		DiscountType: cp.discountType, Description: cp.description, UsageCount: cp.usageCount, IndividualUse: cp.individualUse,
		ProductIDs: []int64{}, ExcludedProductIDs: []int64{}, UsageLimit: nullableInt(cp.usageLimit), UsageLimitPerUser: nullableInt(cp.usageLimitPerUser),
		FreeShipping: cp.freeShipping, ProductCategories: []int64{}, ExcludedProductCategories: []int64{},
		MinimumAmount: "0.00", MaximumAmount: "0.00", EmailRestrictions: []string{}, UsedBy: append([]string{}, cp.usedBy...),
		MetaData: metaJSONOf(cp.meta), Links: f.links("coupons", cp.id)}
	if cp.dateExpires != nil {
		s := wcDate(*cp.dateExpires)
		j.DateExpires, j.DateExpiresGMT = &s, &s
	}
	return j
}

// couponIDByCodeLocked is wc_get_coupon_id_by_code: a published coupon with the code, compared
// case-insensitively (as MySQL's collation does), other than exclude.
func (f *Fake) couponIDByCodeLocked(code string, exclude int64) int64 {
	code = strings.ToLower(code)
	var found int64
	for _, id := range f.couponsByCode[code] {
		cp := f.coupons[id]
		if cp != nil && id != exclude && cp.status == "publish" && strings.ToLower(cp.code) == code && (found == 0 || id < found) {
			found = id
		}
	}
	return found
}

// indexCouponLocked records a coupon under its code for couponIDByCodeLocked.
func (f *Fake) indexCouponLocked(cp *couponRecord) {
	key := strings.ToLower(cp.code)
	for _, id := range f.couponsByCode[key] {
		if id == cp.id {
			return
		}
	}
	f.couponsByCode[key] = append(f.couponsByCode[key], cp.id)
}

var discountTypes = []string{"percent", "fixed_cart", "fixed_product"}

// checkCouponArgs is the schema validation WordPress runs on the single-coupon routes (batch
// items skip it, as in WordPress).
func checkCouponArgs(c *call, creating bool) *restError {
	if _, ok := c.params["code"]; creating && !ok {
		return &restError{status: http.StatusBadRequest, code: "rest_missing_callback_param",
			message: "Missing parameter(s): code", data: map[string]any{"params": []string{"code"}}}
	}
	bad := map[string]string{}
	for _, name := range []string{"code", "amount", "description", "minimum_amount", "maximum_amount", "status"} {
		if v, ok := c.params[name]; ok && v != nil {
			if _, isStr := v.(string); !isStr {
				bad[name] = name + " is not of type string."
			}
		}
	}
	if v, ok := c.params["discount_type"]; ok {
		s, _ := v.(string)
		valid := false
		for _, d := range discountTypes {
			valid = valid || s == d
		}
		if !valid {
			bad["discount_type"] = "discount_type is not one of " + listPHP(discountTypes) + "."
		}
	}
	for _, name := range []string{"usage_limit", "usage_limit_per_user", "limit_usage_to_x_items"} {
		if v, ok := c.params[name]; ok && v != nil && !isInteger(v) {
			bad[name] = name + " is not of type integer,null."
		}
	}
	for _, name := range []string{"individual_use", "free_shipping", "exclude_sale_items"} {
		if v, ok := c.params[name]; ok && !isBoolean(v) {
			bad[name] = name + " is not of type boolean."
		}
	}
	for _, name := range []string{"date_expires", "date_expires_gmt"} {
		if v, ok := c.params[name]; ok && v != nil {
			s, isStr := v.(string)
			if !isStr {
				bad[name] = name + " is not of type string,null."
			} else if _, ok := restDate(s); s != "" && !ok {
				bad[name] = "Invalid date."
			}
		}
	}
	if len(bad) > 0 {
		return invalidParams(bad)
	}
	return nil
}

// isInteger is rest_is_integer: an integral number or numeric string.
func isInteger(v any) bool {
	var s string
	switch t := v.(type) {
	case json.Number:
		s = t.String()
	case string:
		s = strings.TrimSpace(t)
	default:
		return false
	}
	n, err := strconv.ParseFloat(s, 64)
	return err == nil && n == math.Trunc(n)
}

// isBoolean is rest_is_boolean.
func isBoolean(v any) bool {
	switch t := v.(type) {
	case bool:
		return true
	case json.Number:
		return t.String() == "0" || t.String() == "1"
	case string:
		switch strings.ToLower(t) {
		case "", "0", "1", "false", "true":
			return true
		}
	}
	return false
}

func absint(v any) int {
	var s string
	switch t := v.(type) {
	case json.Number:
		s = t.String()
	case string:
		s = strings.TrimSpace(t)
	case bool:
		if t {
			return 1
		}
		return 0
	default:
		return 0
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return int(math.Abs(math.Trunc(n)))
}

func anyString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case json.Number:
		return t.String()
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// formatCouponCode is wc_format_coupon_code with core's filter: trimmed and lower-cased.
func formatCouponCode(code string) string { return strings.ToLower(strings.TrimSpace(code)) }

// applyCouponLocked is WC_REST_Coupons_V2_Controller::prepare_object_for_database: it sets the
// writable fields present in params on cp (a copy, stored by the caller on success).
func (f *Fake) applyCouponLocked(cp *couponRecord, params map[string]any, creating bool) *restError {
	if creating && strings.TrimSpace(anyString(params["code"])) == "" {
		return errorf(http.StatusBadRequest, "woocommerce_rest_empty_coupon_code", "The coupon code cannot be empty.")
	}
	if v, ok := params["code"]; ok && v != nil {
		code := formatCouponCode(anyString(v))
		if f.couponIDByCodeLocked(code, cp.id) != 0 {
			return errorf(http.StatusBadRequest, "woocommerce_rest_coupon_code_already_exists", "The coupon code already exists")
		}
		cp.code = code
	}
	if v, ok := params["discount_type"]; ok && v != nil {
		d := anyString(v)
		valid := false
		for _, t := range discountTypes {
			valid = valid || d == t
		}
		if !valid {
			return errorf(http.StatusBadRequest, "coupon_invalid_discount_type", "Invalid discount type.")
		}
		cp.discountType = d
	}
	if v, ok := params["amount"]; ok && v != nil {
		a := strings.TrimSpace(anyString(v))
		if _, err := strconv.ParseFloat(a, 64); err != nil {
			a = "0"
		}
		cp.amount = a
	}
	if v, ok := params["description"]; ok && v != nil {
		cp.description = anyString(v)
	}
	if v, ok := params["status"]; ok && v != nil {
		cp.status = anyString(v)
	}
	if v, ok := params["usage_limit"]; ok {
		cp.usageLimit = absint(v)
	}
	if v, ok := params["usage_limit_per_user"]; ok {
		cp.usageLimitPerUser = absint(v)
	}
	if v, ok := params["individual_use"]; ok {
		cp.individualUse = truthy(v)
	}
	if v, ok := params["free_shipping"]; ok {
		cp.freeShipping = truthy(v)
	}
	for _, name := range []string{"date_expires", "date_expires_gmt"} {
		if v, ok := params[name]; ok {
			s := anyString(v)
			if s == "" {
				cp.dateExpires = nil
			} else if t, ok := restDate(s); ok {
				cp.dateExpires = &t
			}
		}
	}
	if items, ok := params["meta_data"].([]any); ok {
		for _, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				continue
			}
			key := anyString(m["key"])
			if key == "" {
				continue
			}
			cp.meta = f.updateMetaLocked(cp.meta, key, m["value"], int64(absint(m["id"])))
		}
	}
	return nil
}

// createCouponLocked creates a coupon from params; it returns the stored coupon.
func (f *Fake) createCouponLocked(params map[string]any) (*couponRecord, *restError) {
	if id := absint(params["id"]); id != 0 {
		return nil, errorf(http.StatusBadRequest, "woocommerce_rest_shop_coupon_exists", "Cannot create existing shop_coupon.")
	}
	now := f.cfg.Now().UTC().Truncate(time.Second)
	cp := &couponRecord{discountType: "fixed_cart", amount: "0", status: "publish", created: now, modified: now}
	if err := f.applyCouponLocked(cp, params, true); err != nil {
		return nil, err
	}
	cp.id = f.nextPostID
	f.nextPostID++
	f.coupons[cp.id] = cp
	f.indexCouponLocked(cp)
	return cp, nil
}

func (f *Fake) updateCouponLocked(id int64, params map[string]any) (*couponRecord, *restError) {
	old := f.coupons[id]
	if old == nil {
		return nil, errorf(http.StatusBadRequest, "woocommerce_rest_shop_coupon_invalid_id", "Invalid ID.")
	}
	cp := *old
	cp.usedBy = append([]string(nil), old.usedBy...)
	cp.meta = append([]metaRecord(nil), old.meta...)
	if err := f.applyCouponLocked(&cp, params, false); err != nil {
		return nil, err
	}
	cp.modified = f.cfg.Now().UTC().Truncate(time.Second)
	f.coupons[id] = &cp
	f.indexCouponLocked(&cp)
	return &cp, nil
}

func (f *Fake) createCoupon(w http.ResponseWriter, c *call) {
	if err := checkCouponArgs(c, true); err != nil {
		writeError(w, err)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	cp, err := f.createCouponLocked(c.params)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Location", f.URL()+"/wp-json/wc/v3/coupons/"+strconv.FormatInt(cp.id, 10))
	writeJSON(w, http.StatusCreated, f.couponJSONLocked(cp))
}

func (f *Fake) getCoupon(w http.ResponseWriter, c *call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cp := f.coupons[pathID(c)]
	if cp == nil {
		writeError(w, errorf(http.StatusNotFound, "woocommerce_rest_shop_coupon_invalid_id", "Invalid ID."))
		return
	}
	writeJSON(w, http.StatusOK, f.couponJSONLocked(cp))
}

func (f *Fake) updateCoupon(w http.ResponseWriter, c *call) {
	if err := checkCouponArgs(c, false); err != nil {
		writeError(w, err)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	cp, err := f.updateCouponLocked(pathID(c), c.params)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, f.couponJSONLocked(cp))
}

// deleteCouponLocked deletes (force) or trashes a coupon, answering what it was.
func (f *Fake) deleteCouponLocked(id int64, force bool) (couponJSON, *restError) {
	cp := f.coupons[id]
	if cp == nil {
		return couponJSON{}, errorf(http.StatusNotFound, "woocommerce_rest_shop_coupon_invalid_id", "Invalid ID.")
	}
	if force {
		j := f.couponJSONLocked(cp)
		delete(f.coupons, id)
		return j, nil
	}
	if cp.status == "trash" {
		return couponJSON{}, errorf(http.StatusGone, "woocommerce_rest_already_trashed", "The shop_coupon has already been deleted.")
	}
	cp.status = "trash"
	cp.modified = f.cfg.Now().UTC().Truncate(time.Second)
	return f.couponJSONLocked(cp), nil
}

func (f *Fake) deleteCoupon(w http.ResponseWriter, c *call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, err := f.deleteCouponLocked(pathID(c), c.boolParam("force"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func itemError(id int64, e *restError) map[string]any {
	return map[string]any{"id": id, "error": map[string]any{"code": e.code, "message": e.message, "data": map[string]any{"status": e.status}}}
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return nil
}

// batchCoupons is WC_REST_Controller::batch_items: the limit over create, update and delete
// together, then each item on its own (no schema validation), errors per item.
func (f *Fake) batchCoupons(w http.ResponseWriter, c *call) {
	creates, updates, deletes := asList(c.params["create"]), asList(c.params["update"]), asList(c.params["delete"])
	if n := len(creates) + len(updates) + len(deletes); n > f.cfg.BatchLimit {
		writeError(w, errorf(http.StatusRequestEntityTooLarge, "woocommerce_rest_request_entity_too_large",
			"Unable to accept more than %d items for this request.", f.cfg.BatchLimit))
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := map[string]any{}
	if len(creates) > 0 {
		out := []any{}
		for _, item := range creates {
			params, _ := item.(map[string]any)
			cp, err := f.createCouponLocked(params)
			if err != nil {
				out = append(out, itemError(0, err))
				continue
			}
			out = append(out, f.couponJSONLocked(cp))
		}
		resp["create"] = out
	}
	if len(updates) > 0 {
		out := []any{}
		for _, item := range updates {
			params, _ := item.(map[string]any)
			id := int64(absint(params["id"]))
			cp, err := f.updateCouponLocked(id, params)
			if err != nil {
				out = append(out, itemError(id, err))
				continue
			}
			out = append(out, f.couponJSONLocked(cp))
		}
		resp["update"] = out
	}
	if len(deletes) > 0 {
		out := []any{}
		seen := map[int64]bool{}
		for _, item := range deletes {
			id := int64(absint(item))
			if seen[id] { // wp_parse_id_list drops repeated ids
				continue
			}
			seen[id] = true
			j, err := f.deleteCouponLocked(id, true)
			if err != nil {
				out = append(out, itemError(id, err))
				continue
			}
			out = append(out, j)
		}
		resp["delete"] = out
	}
	writeJSON(w, http.StatusOK, resp)
}

func (f *Fake) listCoupons(w http.ResponseWriter, c *call) {
	page, perPage, offset, perr := f.paging(c)
	if perr != nil {
		writeError(w, perr)
		return
	}
	orderby, asc, oerr := orderParams(c, "date", "id", "include", "title", "slug", "modified")
	if oerr != nil {
		writeError(w, oerr)
		return
	}
	status, ok := c.str("status")
	if !ok || status == "" {
		status = "any"
	}
	code, hasCode := c.str("code")
	search, _ := c.str("search")
	f.mu.Lock()
	var recs []*couponRecord
	byCode := int64(0)
	if hasCode && code != "" {
		byCode = f.couponIDByCodeLocked(formatCouponCode(code), 0)
	}
	for id, cp := range f.coupons {
		switch {
		case hasCode && code != "" && id != byCode:
		case status == "any" && cp.status == "trash":
		case status != "any" && cp.status != status:
		case search != "" && !strings.Contains(cp.code, strings.ToLower(search)):
		default:
			recs = append(recs, cp)
		}
	}
	sort.Slice(recs, func(i, j int) bool {
		a, b := recs[i], recs[j]
		if a.id == b.id {
			return false
		}
		less := a.id < b.id
		switch orderby {
		case "date":
			if !a.created.Equal(b.created) {
				less = a.created.Before(b.created)
			}
		case "modified":
			if !a.modified.Equal(b.modified) {
				less = a.modified.Before(b.modified)
			}
		case "title", "slug":
			if a.code != b.code {
				less = a.code < b.code
			}
		}
		return less == asc
	})
	all := make([]couponJSON, 0, len(recs))
	for _, cp := range recs {
		all = append(all, f.couponJSONLocked(cp))
	}
	f.mu.Unlock()
	writePage(f, w, c, "coupons", all, page, perPage, offset)
}

// ---- orders ----

type orderRecord struct {
	id       int64
	body     map[string]any
	status   string
	created  time.Time
	modified time.Time
}

// orderStatuses are what the orders route's status parameter accepts.
var orderStatuses = []string{"any", "trash", "auto-draft", "pending", "processing", "on-hold", "completed", "cancelled",
	"refunded", "failed", "checkout-draft"}

func (f *Fake) getOrder(w http.ResponseWriter, c *call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.orders[pathID(c)]
	if o == nil {
		writeError(w, errorf(http.StatusNotFound, "woocommerce_rest_shop_order_invalid_id", "Invalid ID."))
		return
	}
	writeJSON(w, http.StatusOK, o.body)
}

func (f *Fake) listOrders(w http.ResponseWriter, c *call) {
	page, perPage, offset, perr := f.paging(c)
	if perr != nil {
		writeError(w, perr)
		return
	}
	orderby, asc, oerr := orderParams(c, "date", "id", "include", "title", "slug", "modified")
	if oerr != nil {
		writeError(w, oerr)
		return
	}
	bad := map[string]string{}
	dates := map[string]time.Time{}
	for _, name := range []string{"after", "before", "modified_after", "modified_before"} {
		if s, ok := c.str(name); ok {
			if t, ok := restDate(s); ok {
				dates[name] = t.Truncate(time.Second)
			} else {
				bad[name] = "Invalid date."
			}
		}
	}
	statuses := []string{"any"}
	if s, ok := c.str("status"); ok && s != "" {
		statuses = strings.Split(s, ",")
		for _, st := range statuses {
			valid := false
			for _, v := range orderStatuses {
				valid = valid || strings.TrimSpace(st) == v
			}
			if !valid {
				bad["status[0]"] = "status[0] is not one of " + listPHP(orderStatuses) + "."
			}
		}
	}
	if len(bad) > 0 {
		writeError(w, invalidParams(bad))
		return
	}
	want := func(st string) bool {
		for _, s := range statuses {
			s = strings.TrimSpace(s)
			if s == st || (s == "any" && st != "trash") {
				return true
			}
		}
		return false
	}
	f.mu.Lock()
	var recs []*orderRecord
	for _, o := range f.orders {
		if !want(o.status) {
			continue
		}
		if t, ok := dates["after"]; ok && !o.created.After(t) {
			continue
		}
		if t, ok := dates["before"]; ok && !o.created.Before(t) {
			continue
		}
		if t, ok := dates["modified_after"]; ok && !o.modified.After(t) {
			continue
		}
		if t, ok := dates["modified_before"]; ok && !o.modified.Before(t) {
			continue
		}
		recs = append(recs, o)
	}
	sort.Slice(recs, func(i, j int) bool {
		a, b := recs[i], recs[j]
		if a.id == b.id {
			return false
		}
		less := a.id < b.id
		switch orderby {
		case "date":
			if !a.created.Equal(b.created) {
				less = a.created.Before(b.created)
			}
		case "modified":
			if !a.modified.Equal(b.modified) {
				less = a.modified.Before(b.modified)
			}
		}
		return less == asc
	})
	all := make([]map[string]any, 0, len(recs))
	for _, o := range recs {
		all = append(all, o.body)
	}
	f.mu.Unlock()
	writePage(f, w, c, "orders", all, page, perPage, offset)
}

// AddOrder stores an order (a map, a struct, json.RawMessage or []byte of the REST shape) and
// returns its id: the body's "id" when it has one (replacing an order with that id), else a new
// one. The body's status (default "pending"), date_created_gmt and date_modified_gmt (default now)
// are kept; the local date fields are set from them (the site's timezone is UTC). GET /orders
// answers the body as stored.
func (f *Fake) AddOrder(body any) int64 {
	m, err := toMap(body)
	if err != nil {
		panic(fmt.Sprintf("woofake: AddOrder: %v", err))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.Now().UTC().Truncate(time.Second)
	id := int64(absint(m["id"]))
	if id == 0 {
		id = f.nextPostID
		f.nextPostID++
	} else if id >= f.nextPostID {
		f.nextPostID = id + 1
	}
	o := &orderRecord{id: id, body: m, status: anyString(m["status"]), created: now, modified: now}
	if o.status == "" {
		o.status = "pending"
	}
	if t, ok := restDate(anyString(m["date_created_gmt"])); ok {
		o.created = t
	}
	if t, ok := restDate(anyString(m["date_modified_gmt"])); ok {
		o.modified = t
	}
	m["id"] = json.Number(strconv.FormatInt(id, 10))
	m["status"] = o.status
	m["date_created"], m["date_created_gmt"] = wcDate(o.created), wcDate(o.created)
	m["date_modified"], m["date_modified_gmt"] = wcDate(o.modified), wcDate(o.modified)
	f.orders[id] = o
	return id
}

// toMap turns a JSON-ish value into a map, keeping numbers as json.Number.
func toMap(body any) (map[string]any, error) {
	var raw []byte
	switch b := body.(type) {
	case json.RawMessage:
		raw = b
	case []byte:
		raw = b
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// ---- inspection ----

// Coupon is a coupon in the store, as the REST API shows it (Amount formatted like "10.00").
type Coupon struct {
	ID                int64
	Code              string // lower-case
	DiscountType      string
	Amount            string
	Status            string // publish, trash, …
	Description       string
	UsageLimit        int // 0: unlimited
	UsageLimitPerUser int
	UsageCount        int
	IndividualUse     bool
	DateExpires       *time.Time
	UsedBy            []string
	// MetaData are the coupon's custom fields; values are as the REST API shows them (a string,
	// or the JSON text of an array or object).
	MetaData []woocommerce.Meta
}

func metaOf(meta []metaRecord) []woocommerce.Meta {
	var out []woocommerce.Meta
	for _, m := range meta {
		v, ok := m.value.(string)
		if !ok {
			b, _ := json.Marshal(m.value)
			v = string(b)
		}
		out = append(out, woocommerce.Meta{ID: m.id, Key: m.key, Value: v})
	}
	return out
}

// Coupons lists the store's coupons (trashed ones too) by id.
func (f *Fake) Coupons() []Coupon {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Coupon, 0, len(f.coupons))
	for _, cp := range f.coupons {
		c := Coupon{ID: cp.id, Code: cp.code, DiscountType: cp.discountType, Amount: formatDecimal(cp.amount), Status: cp.status,
			Description: cp.description, UsageLimit: cp.usageLimit, UsageLimitPerUser: cp.usageLimitPerUser, UsageCount: cp.usageCount,
			IndividualUse: cp.individualUse, UsedBy: append([]string(nil), cp.usedBy...), MetaData: metaOf(cp.meta)}
		if cp.dateExpires != nil {
			t := *cp.dateExpires
			c.DateExpires = &t
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// AddCoupon stores a coupon as if the merchant had made it (Code is lower-cased; DiscountType
// defaults to fixed_cart, Status to publish; MetaData keys and values are stored, with new meta
// ids) and returns its id. It does not check for duplicates.
func (f *Fake) AddCoupon(c Coupon) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.Now().UTC().Truncate(time.Second)
	cp := &couponRecord{id: f.nextPostID, code: formatCouponCode(c.Code), discountType: c.DiscountType, amount: c.Amount,
		status: c.Status, description: c.Description, usageLimit: c.UsageLimit, usageLimitPerUser: c.UsageLimitPerUser,
		usageCount: c.UsageCount, individualUse: c.IndividualUse, dateExpires: c.DateExpires, created: now, modified: now,
		usedBy: append([]string(nil), c.UsedBy...)}
	if cp.discountType == "" {
		cp.discountType = "fixed_cart"
	}
	if cp.status == "" {
		cp.status = "publish"
	}
	if cp.amount == "" {
		cp.amount = "0"
	}
	for _, m := range c.MetaData {
		f.nextMetaID++
		cp.meta = append(cp.meta, metaRecord{id: f.nextMetaID, key: m.Key, value: m.Value})
	}
	f.nextPostID++
	f.coupons[cp.id] = cp
	f.indexCouponLocked(cp)
	return cp.id
}
