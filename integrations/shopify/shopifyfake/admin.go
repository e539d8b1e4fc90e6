package shopifyfake

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vektah/gqlparser/v2/ast"
)

// shop is one shop's in-memory Admin state.
type shop struct {
	domain string

	available float64
	lastLeak  time.Time
	started   bool

	nextID    int
	discounts map[string]*discount
	codes     map[string]*redeemCode // upper-cased code → code (unique per shop)
	bulks     map[string]*bulkCreation
	pending   []*bulkCreation
	jobs      map[string]*job
	webhooks  []WebhookSubscription
	orders    []*Order
}

type discount struct {
	id                     string
	title                  string
	createdAt              time.Time
	startsAt               time.Time
	endsAt                 *time.Time
	usageLimit             *int
	appliesOncePerCustomer bool
	percentage             *float64
	amount                 string
}

type redeemCode struct {
	id         string
	code       string
	discountID string
}

type userError struct {
	field   []string
	code    string
	message string
}

func (e userError) object() map[string]any {
	var field any
	if e.field != nil {
		f := make([]any, len(e.field))
		for i, s := range e.field {
			f[i] = s
		}
		field = f
	}
	return map[string]any{"__typename": "DiscountUserError", "field": field, "code": e.code, "message": e.message, "extraInfo": nil}
}

type bulkCode struct {
	code     string
	redeemID string
	errors   []userError
}

type bulkCreation struct {
	id         string
	discountID string
	createdAt  time.Time
	readyAt    time.Time
	done       bool
	codes      []*bulkCode
}

type job struct {
	id      string
	readyAt time.Time
	done    bool
	apply   func()
}

// WebhookSubscription is a subscription made through webhookSubscriptionCreate.
type WebhookSubscription struct {
	ID          string
	Topic       string
	CallbackURL string
	Format      string
}

// Order is an order the orders query can return.
type Order struct {
	// LegacyID is the numeric (REST) ID; zero assigns one.
	LegacyID int64
	Name     string
	// FinancialStatus is displayFinancialStatus, e.g. "PAID" or "PENDING".
	FinancialStatus string
	CancelledAt     *time.Time
	UpdatedAt       time.Time
	// DiscountCodes are the codes the customer entered. Unless DiscountApplications is set, each
	// is also served as a DiscountCodeApplication.
	DiscountCodes []string
	// DiscountApplications are the order's discount applications, in order. When set, the
	// order's discountCodes are the codes of its DiscountCodeApplications followed by the titles
	// of its ManualDiscountApplications (Shopify lists a manual discount's title among the
	// codes), and DiscountCodes is not read.
	DiscountApplications []DiscountApplication
	Email                string
}

// The kinds of discount application an order can carry (the DiscountApplication types).
const (
	DiscountCodeApplication      = "DiscountCodeApplication"
	ManualDiscountApplication    = "ManualDiscountApplication"
	AutomaticDiscountApplication = "AutomaticDiscountApplication"
	ScriptDiscountApplication    = "ScriptDiscountApplication"
)

// DiscountApplication is one discount applied to an order.
type DiscountApplication struct {
	// Kind is the application's type: one of the DiscountApplication constants.
	Kind string
	// Code is a DiscountCodeApplication's code.
	Code string
	// Title is the title of any other kind (a manual discount's title is free text, which can
	// equal a code).
	Title string
}

// discountApplications returns the order's applications as Shopify serves them.
func (o *Order) discountApplications() []DiscountApplication {
	if o.DiscountApplications != nil {
		return o.DiscountApplications
	}
	apps := make([]DiscountApplication, len(o.DiscountCodes))
	for i, c := range o.DiscountCodes {
		apps[i] = DiscountApplication{Kind: DiscountCodeApplication, Code: c}
	}
	return apps
}

// discountCodes returns the order's discountCodes as Shopify serves them.
func (o *Order) discountCodes() []string {
	if o.DiscountApplications == nil {
		return o.DiscountCodes
	}
	var codes, titles []string
	for _, a := range o.DiscountApplications {
		switch a.Kind {
		case DiscountCodeApplication:
			codes = append(codes, a.Code)
		case ManualDiscountApplication:
			titles = append(titles, a.Title)
		}
	}
	return append(codes, titles...)
}

// DiscountInfo describes a code discount the fake holds.
type DiscountInfo struct {
	ID                     string
	Title                  string
	StartsAt               time.Time
	EndsAt                 *time.Time
	UsageLimit             *int
	AppliesOncePerCustomer bool
	Percentage             *float64
	Amount                 string
}

func (f *Fake) shopLocked(domain string) *shop {
	s := f.shops[domain]
	if s == nil {
		s = &shop{
			domain:    domain,
			discounts: make(map[string]*discount),
			codes:     make(map[string]*redeemCode),
			bulks:     make(map[string]*bulkCreation),
			jobs:      make(map[string]*job),
		}
		f.shops[domain] = s
	}
	return s
}

// bucketLocked leaks the bucket up to now and returns the points available.
func (s *shop) bucketLocked(now time.Time, cfg Config) float64 {
	if !s.started {
		s.started, s.available, s.lastLeak = true, cfg.BucketSize, now
	}
	if d := now.Sub(s.lastLeak); d > 0 {
		s.available = min(cfg.BucketSize, s.available+d.Seconds()*cfg.RestoreRate)
		s.lastLeak = now
	}
	return s.available
}

func (s *shop) newID(kind string) string {
	s.nextID++
	return fmt.Sprintf("gid://shopify/%s/%d", kind, s.nextID)
}

// settleLocked finishes the bulk creations and jobs whose time has come, in
// the order they were started.
func (s *shop) settleLocked(now time.Time) {
	rest := s.pending[:0]
	for _, b := range s.pending {
		if now.Before(b.readyAt) {
			rest = append(rest, b)
			continue
		}
		seen := make(map[string]bool)
		for _, c := range b.codes {
			key := strings.ToUpper(c.code)
			switch {
			case strings.TrimSpace(c.code) == "":
				c.errors = append(c.errors, userError{[]string{"code"}, "BLANK", "Code can't be blank"})
			case len(c.code) > 255:
				c.errors = append(c.errors, userError{[]string{"code"}, "TOO_LONG", "Code is too long (maximum is 255 characters)"})
			case seen[key] || s.codes[key] != nil:
				c.errors = append(c.errors, userError{[]string{"code"}, "TAKEN", "Code must be unique. Please try a different code."})
			default:
				rc := &redeemCode{id: s.newID("DiscountRedeemCode"), code: c.code, discountID: b.discountID}
				s.codes[key] = rc
				c.redeemID = rc.id
			}
			seen[key] = true
		}
		b.done = true
	}
	s.pending = rest
	for _, j := range s.jobs {
		if !j.done && !now.Before(j.readyAt) {
			j.apply()
			j.done = true
		}
	}
}

func (f *Fake) rootLocked(s *shop, op ast.Operation, now time.Time) map[string]any {
	if op == ast.Mutation {
		return map[string]any{
			"discountCodeBasicCreate":          resolver(func(a map[string]any) (any, error) { return f.discountCodeBasicCreate(s, a, now), nil }),
			"discountRedeemCodeBulkAdd":        resolver(func(a map[string]any) (any, error) { return f.discountRedeemCodeBulkAdd(s, a, now), nil }),
			"discountCodeRedeemCodeBulkDelete": resolver(func(a map[string]any) (any, error) { return f.redeemCodeBulkDelete(s, a, now), nil }),
			"webhookSubscriptionCreate":        resolver(func(a map[string]any) (any, error) { return f.webhookSubscriptionCreate(s, a), nil }),
			"webhookSubscriptionDelete":        resolver(func(a map[string]any) (any, error) { return f.webhookSubscriptionDelete(s, a), nil }),
		}
	}
	return map[string]any{
		"discountRedeemCodeBulkCreation": resolver(func(a map[string]any) (any, error) {
			b := s.bulks[str(a["id"])]
			if b == nil {
				return nil, nil
			}
			return bulkObject(s, b), nil
		}),
		"job": resolver(func(a map[string]any) (any, error) {
			j := s.jobs[str(a["id"])]
			if j == nil {
				return nil, nil
			}
			return map[string]any{"__typename": "Job", "id": j.id, "done": j.done}, nil
		}),
		"codeDiscountNodeByCode": resolver(func(a map[string]any) (any, error) {
			rc := s.codes[strings.ToUpper(str(a["code"]))]
			if rc == nil {
				return nil, nil
			}
			return discountNode(s.discounts[rc.discountID]), nil
		}),
		"orders":               resolver(func(a map[string]any) (any, error) { return ordersConnection(s, a) }),
		"webhookSubscriptions": resolver(func(a map[string]any) (any, error) { return webhookSubscriptionsConnection(s, a) }),
		"order": resolver(func(a map[string]any) (any, error) {
			for _, o := range s.orders {
				if fmt.Sprintf("gid://shopify/Order/%d", o.LegacyID) == str(a["id"]) {
					return orderObject(o), nil
				}
			}
			return nil, nil
		}),
	}
}

func discountNode(d *discount) map[string]any {
	if d == nil {
		return nil
	}
	return map[string]any{"__typename": "DiscountCodeNode", "id": d.id, "codeDiscount": map[string]any{
		"__typename": "DiscountCodeBasic", "title": d.title, "createdAt": d.createdAt.UTC().Format(time.RFC3339),
	}}
}

func userErrors(errs []userError) []any {
	out := make([]any, len(errs))
	for i, e := range errs {
		out[i] = e.object()
	}
	return out
}

func (f *Fake) discountCodeBasicCreate(s *shop, args map[string]any, now time.Time) map[string]any {
	in, _ := args["basicCodeDiscount"].(map[string]any)
	var errs []userError
	field := func(name ...string) []string { return append([]string{"basicCodeDiscount"}, name...) }
	d := &discount{title: str(in["title"]), createdAt: now, appliesOncePerCustomer: in["appliesOncePerCustomer"] == true}
	code := str(in["code"])
	if strings.TrimSpace(d.title) == "" {
		errs = append(errs, userError{field("title"), "BLANK", "Title can't be blank"})
	}
	switch {
	case strings.TrimSpace(code) == "":
		errs = append(errs, userError{field("code"), "BLANK", "Code can't be blank"})
	case len(code) > 255:
		errs = append(errs, userError{field("code"), "TOO_LONG", "Code is too long (maximum is 255 characters)"})
	case s.codes[strings.ToUpper(code)] != nil:
		errs = append(errs, userError{field("code"), "TAKEN", "Code must be unique. Please try a different code."})
	}
	if t, err := time.Parse(time.RFC3339, str(in["startsAt"])); err != nil {
		errs = append(errs, userError{field("startsAt"), "BLANK", "Starts at can't be blank"})
	} else {
		d.startsAt = t
	}
	if v := str(in["endsAt"]); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil || !t.After(d.startsAt) {
			errs = append(errs, userError{field("endsAt"), "INVALID", "Ends at needs to be after starts_at"})
		} else {
			d.endsAt = &t
		}
	}
	if v, ok := toInt(in["usageLimit"]); ok {
		if v < 1 {
			errs = append(errs, userError{field("usageLimit"), "GREATER_THAN", "Usage limit must be greater than 0"})
		}
		d.usageLimit = &v
	}
	if sel, _ := in["customerSelection"].(map[string]any); sel == nil || (sel["all"] != true && sel["customers"] == nil && sel["customerSegments"] == nil) {
		errs = append(errs, userError{field("customerSelection"), "BLANK", "Customer selection can't be blank"})
	}
	gets, _ := in["customerGets"].(map[string]any)
	value, _ := gets["value"].(map[string]any)
	items, _ := gets["items"].(map[string]any)
	set := 0
	for _, k := range []string{"percentage", "discountAmount", "discountOnQuantity"} {
		if value[k] != nil {
			set++
		}
	}
	if set != 1 {
		errs = append(errs, userError{field("customerGets", "value"), "INVALID", "Value must have exactly one of percentage, discountAmount or discountOnQuantity"})
	}
	if p, ok := toFloat(value["percentage"]); ok {
		if p <= 0 || p > 1 {
			errs = append(errs, userError{field("customerGets", "value", "percentage"), "VALUE_OUTSIDE_RANGE", "Value must be between 0.0 and 1.0"})
		}
		d.percentage = &p
	}
	if amt, _ := value["discountAmount"].(map[string]any); amt != nil {
		d.amount = str(amt["amount"])
		if v, err := strconv.ParseFloat(d.amount, 64); err != nil || v <= 0 {
			errs = append(errs, userError{field("customerGets", "value", "discountAmount", "amount"), "GREATER_THAN", "Value must be greater than 0"})
		}
	}
	if items == nil || (items["all"] != true && items["products"] == nil && items["collections"] == nil) {
		errs = append(errs, userError{field("customerGets", "items"), "BLANK", "Items can't be blank"})
	}
	if len(errs) > 0 {
		return map[string]any{"codeDiscountNode": nil, "userErrors": userErrors(errs)}
	}
	d.id = s.newID("DiscountCodeNode")
	s.discounts[d.id] = d
	s.codes[strings.ToUpper(code)] = &redeemCode{id: s.newID("DiscountRedeemCode"), code: code, discountID: d.id}
	return map[string]any{"codeDiscountNode": discountNode(d), "userErrors": []any{}}
}

func (f *Fake) discountRedeemCodeBulkAdd(s *shop, args map[string]any, now time.Time) map[string]any {
	id := str(args["discountId"])
	codes, _ := args["codes"].([]any)
	fail := func(e userError) map[string]any {
		return map[string]any{"bulkCreation": nil, "userErrors": userErrors([]userError{e})}
	}
	if s.discounts[id] == nil {
		return fail(userError{[]string{"discountId"}, "INVALID", "Code discount does not exist."})
	}
	if len(codes) == 0 {
		return fail(userError{[]string{"codes"}, "BLANK", "Codes can't be blank"})
	}
	if len(codes) > f.cfg.MaxCodesPerBulkAdd {
		return fail(userError{[]string{"codes"}, "TOO_MANY_ARGUMENTS",
			fmt.Sprintf("Codes exceeds the maximum of %d codes per request", f.cfg.MaxCodesPerBulkAdd)})
	}
	b := &bulkCreation{id: s.newID("DiscountRedeemCodeBulkCreation"), discountID: id, createdAt: now, readyAt: now.Add(f.cfg.BulkDelay)}
	for _, c := range codes {
		m, _ := c.(map[string]any)
		b.codes = append(b.codes, &bulkCode{code: str(m["code"])})
	}
	s.bulks[b.id] = b
	s.pending = append(s.pending, b)
	s.settleLocked(now)
	return map[string]any{"bulkCreation": bulkObject(s, b), "userErrors": []any{}}
}

func bulkObject(s *shop, b *bulkCreation) map[string]any {
	imported, failed := 0, 0
	nodes := make([]any, len(b.codes))
	for i, c := range b.codes {
		var rc any
		if c.redeemID != "" {
			imported++
			rc = map[string]any{"__typename": "DiscountRedeemCode", "id": c.redeemID, "code": c.code, "asyncUsageCount": 0}
		}
		if len(c.errors) > 0 {
			failed++
		}
		nodes[i] = map[string]any{"__typename": "DiscountRedeemCodeBulkCreationCode", "code": c.code, "discountRedeemCode": rc, "errors": userErrors(c.errors)}
	}
	return map[string]any{
		"__typename":    "DiscountRedeemCodeBulkCreation",
		"id":            b.id,
		"done":          b.done,
		"codesCount":    len(b.codes),
		"importedCount": imported,
		"failedCount":   failed,
		"createdAt":     b.createdAt.UTC().Format(time.RFC3339),
		"discountCode":  discountNode(s.discounts[b.discountID]),
		"codes":         resolver(func(a map[string]any) (any, error) { return connection(nodes, a) }),
	}
}

func (f *Fake) redeemCodeBulkDelete(s *shop, args map[string]any, now time.Time) map[string]any {
	id := str(args["discountId"])
	fail := func(e userError) map[string]any {
		return map[string]any{"job": nil, "userErrors": userErrors([]userError{e})}
	}
	if s.discounts[id] == nil {
		return fail(userError{[]string{"discountId"}, "INVALID", "Code discount does not exist."})
	}
	ids, _ := args["ids"].([]any)
	search := str(args["search"])
	given := 0
	for _, ok := range []bool{ids != nil, search != "", args["savedSearchId"] != nil} {
		if ok {
			given++
		}
	}
	if given != 1 {
		return fail(userError{nil, "MISSING_ARGUMENT", "Exactly one of ids, search or savedSearchId is required."})
	}
	if len(ids) > 250 {
		return fail(userError{[]string{"ids"}, "TOO_MANY_ARGUMENTS", "Ids exceeds the maximum of 250."})
	}
	want := make(map[string]bool)
	for _, v := range ids {
		want[str(v)] = true
	}
	codes := searchCodes(search)
	j := &job{id: "gid://shopify/Job/" + randomHex(16), readyAt: now.Add(f.cfg.BulkDelay)}
	j.apply = func() {
		for key, rc := range s.codes {
			if rc.discountID != id {
				continue
			}
			if want[rc.id] || codes[strings.ToUpper(rc.code)] {
				delete(s.codes, key)
			}
		}
	}
	s.jobs[j.id] = j
	s.settleLocked(now)
	return map[string]any{"job": map[string]any{"__typename": "Job", "id": j.id, "done": j.done}, "userErrors": []any{}}
}

// searchCodes reads "code:A OR code:B" style searches into upper-cased codes.
func searchCodes(search string) map[string]bool {
	out := make(map[string]bool)
	for _, term := range strings.Fields(search) {
		if v, ok := strings.CutPrefix(term, "code:"); ok {
			out[strings.ToUpper(strings.Trim(v, `'"`))] = true
		}
	}
	return out
}

func (f *Fake) webhookSubscriptionCreate(s *shop, args map[string]any) map[string]any {
	topic := str(args["topic"])
	in, _ := args["webhookSubscription"].(map[string]any)
	cb := str(in["callbackUrl"])
	format := str(in["format"])
	if format == "" {
		format = "JSON"
	}
	fail := func(msg string) map[string]any {
		return map[string]any{"webhookSubscription": nil, "userErrors": []any{map[string]any{
			"__typename": "UserError", "field": []any{"webhookSubscription", "callbackUrl"}, "message": msg}}}
	}
	u, err := url.Parse(cb)
	if err != nil || u.Host == "" {
		return fail("Address is invalid")
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		return fail("Address protocol " + u.Scheme + ":// is not supported")
	}
	for _, w := range s.webhooks {
		if w.Topic == topic && w.CallbackURL == cb {
			return fail("Address for this topic has already been taken")
		}
	}
	w := WebhookSubscription{ID: s.newID("WebhookSubscription"), Topic: topic, CallbackURL: cb, Format: format}
	s.webhooks = append(s.webhooks, w)
	return map[string]any{"webhookSubscription": webhookSubscriptionObject(w), "userErrors": []any{}}
}

func webhookSubscriptionObject(w WebhookSubscription) map[string]any {
	return map[string]any{
		"__typename": "WebhookSubscription", "id": w.ID, "topic": w.Topic, "format": w.Format, "callbackUrl": w.CallbackURL,
		"endpoint": map[string]any{"__typename": "WebhookHttpEndpoint", "callbackUrl": w.CallbackURL},
	}
}

// webhookSubscriptionsConnection pages the shop's subscriptions, in creation order, filtered by
// topics, callbackUrl and format when given.
func webhookSubscriptionsConnection(s *shop, args map[string]any) (any, error) {
	var topics map[string]bool
	if list, ok := args["topics"].([]any); ok {
		topics = map[string]bool{}
		for _, t := range list {
			topics[str(t)] = true
		}
	}
	var nodes []any
	for _, w := range s.webhooks {
		switch {
		case topics != nil && !topics[w.Topic],
			args["callbackUrl"] != nil && str(args["callbackUrl"]) != w.CallbackURL,
			args["format"] != nil && str(args["format"]) != w.Format:
			continue
		}
		nodes = append(nodes, webhookSubscriptionObject(w))
	}
	if args["reverse"] == true {
		slices.Reverse(nodes)
	}
	return connection(nodes, args)
}

func (f *Fake) webhookSubscriptionDelete(s *shop, args map[string]any) map[string]any {
	id := str(args["id"])
	for i, w := range s.webhooks {
		if w.ID == id {
			s.webhooks = append(s.webhooks[:i], s.webhooks[i+1:]...)
			return map[string]any{"deletedWebhookSubscriptionId": id, "userErrors": []any{}}
		}
	}
	return map[string]any{"deletedWebhookSubscriptionId": nil, "userErrors": []any{map[string]any{
		"__typename": "UserError", "field": []any{"id"}, "message": "Webhook subscription does not exist"}}}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func ordersConnection(s *shop, args map[string]any) (any, error) {
	list := append([]*Order(nil), s.orders...)
	filter, err := parseOrderQuery(str(args["query"]))
	if err != nil {
		return nil, err
	}
	sort.SliceStable(list, func(i, j int) bool {
		if args["sortKey"] == "UPDATED_AT" {
			return list[i].UpdatedAt.Before(list[j].UpdatedAt)
		}
		return list[i].LegacyID < list[j].LegacyID
	})
	if args["reverse"] == true {
		for i, j := 0, len(list)-1; i < j; i, j = i+1, j-1 {
			list[i], list[j] = list[j], list[i]
		}
	}
	var nodes []any
	for _, o := range list {
		if filter(o) {
			nodes = append(nodes, orderObject(o))
		}
	}
	return connection(nodes, args)
}

func orderObject(o *Order) map[string]any {
	discountCodes := o.discountCodes()
	codes := make([]any, len(discountCodes))
	for i, c := range discountCodes {
		codes[i] = c
	}
	var cancelled, customer, first any
	if o.CancelledAt != nil {
		cancelled = o.CancelledAt.UTC().Format(time.RFC3339)
	}
	if o.Email != "" {
		customer = map[string]any{"__typename": "Customer", "email": o.Email}
	}
	if len(discountCodes) > 0 {
		first = discountCodes[0]
	}
	var status any
	if o.FinancialStatus != "" {
		status = o.FinancialStatus
	}
	return map[string]any{
		"__typename":             "Order",
		"id":                     fmt.Sprintf("gid://shopify/Order/%d", o.LegacyID),
		"legacyResourceId":       strconv.FormatInt(o.LegacyID, 10),
		"name":                   o.Name,
		"displayFinancialStatus": status,
		"cancelledAt":            cancelled,
		"updatedAt":              o.UpdatedAt.UTC().Format(time.RFC3339),
		"discountCodes":          codes,
		"discountCode":           first,
		"discountApplications": resolver(func(a map[string]any) (any, error) {
			apps := o.discountApplications()
			nodes := make([]any, len(apps))
			for i, app := range apps {
				nodes[i] = discountApplicationObject(i, app)
			}
			return connection(nodes, a)
		}),
		"email":    o.Email,
		"customer": customer,
	}
}

// discountApplicationObject is one DiscountApplication of an order; index is its position.
func discountApplicationObject(index int, a DiscountApplication) map[string]any {
	obj := map[string]any{
		"__typename": a.Kind, "index": index, "allocationMethod": "ACROSS", "targetSelection": "ALL", "targetType": "LINE_ITEM",
		"value": map[string]any{"__typename": "PricingPercentageValue", "percentage": 10.0},
	}
	switch a.Kind {
	case DiscountCodeApplication:
		obj["code"] = a.Code
	case ManualDiscountApplication:
		obj["title"], obj["description"] = a.Title, a.Title
	default:
		obj["title"] = a.Title
	}
	return obj
}

// parseOrderQuery understands updated_at comparisons ("updated_at:>'…'",
// >=, <, <=, or an exact time) and ignores other terms.
func parseOrderQuery(q string) (func(*Order) bool, error) {
	var preds []func(*Order) bool
	for _, term := range strings.Fields(q) {
		v, ok := strings.CutPrefix(term, "updated_at:")
		if !ok {
			continue
		}
		op := ""
		for _, p := range []string{">=", "<=", ">", "<"} {
			if strings.HasPrefix(v, p) {
				op, v = p, v[len(p):]
				break
			}
		}
		t, err := time.Parse(time.RFC3339, strings.Trim(v, `'"`))
		if err != nil {
			return nil, fmt.Errorf("invalid updated_at in query: %q", v)
		}
		preds = append(preds, func(o *Order) bool {
			switch op {
			case ">":
				return o.UpdatedAt.After(t)
			case ">=":
				return !o.UpdatedAt.Before(t)
			case "<":
				return o.UpdatedAt.Before(t)
			case "<=":
				return !o.UpdatedAt.After(t)
			}
			return o.UpdatedAt.Equal(t)
		})
	}
	return func(o *Order) bool {
		for _, p := range preds {
			if !p(o) {
				return false
			}
		}
		return true
	}, nil
}

// connection pages nodes with first/after (or last/before) and opaque
// cursors, as Relay connections do.
func connection(nodes []any, args map[string]any) (any, error) {
	first, hasFirst := toInt(args["first"])
	last, hasLast := toInt(args["last"])
	if !hasFirst && !hasLast {
		return nil, fmt.Errorf("you must provide one of first or last")
	}
	if (hasFirst && (first < 0 || first > 250)) || (hasLast && (last < 0 || last > 250)) {
		return nil, fmt.Errorf("the maximum page size is 250")
	}
	start, end := 0, len(nodes)
	if a := str(args["after"]); a != "" {
		i, err := decodeCursor(a)
		if err != nil {
			return nil, err
		}
		start = min(i+1, len(nodes))
	}
	if b := str(args["before"]); b != "" {
		i, err := decodeCursor(b)
		if err != nil {
			return nil, err
		}
		end = max(min(i, end), start)
	}
	if hasFirst && end-start > first {
		end = start + first
	}
	if hasLast && end-start > last {
		start = end - last
	}
	page := nodes[start:end]
	edges := make([]any, len(page))
	for i, n := range page {
		edges[i] = map[string]any{"cursor": encodeCursor(start + i), "node": n}
	}
	info := map[string]any{
		"hasNextPage":     end < len(nodes),
		"hasPreviousPage": start > 0,
		"startCursor":     nil,
		"endCursor":       nil,
	}
	if len(page) > 0 {
		info["startCursor"] = encodeCursor(start)
		info["endCursor"] = encodeCursor(end - 1)
	}
	return map[string]any{"nodes": page, "edges": edges, "pageInfo": info}, nil
}

func encodeCursor(i int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("cursor:" + strconv.Itoa(i)))
}

func decodeCursor(c string) (int, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		if v, ok := strings.CutPrefix(string(b), "cursor:"); ok {
			if i, err := strconv.Atoi(v); err == nil {
				return i, nil
			}
		}
	}
	return 0, fmt.Errorf("invalid cursor")
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func toInt(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case int64:
		return int(x), true
	case float64:
		return int(x), true
	}
	return 0, false
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	}
	return 0, false
}

// AddDiscount makes a percentage code discount holding code, as a merchant could in the admin,
// and returns its GID.
func (f *Fake) AddDiscount(shopDomain, title, code string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.shopLocked(shopDomain)
	pct := 0.2
	d := &discount{id: s.newID("DiscountCodeNode"), title: title, createdAt: f.cfg.Now(), startsAt: f.cfg.Now(), percentage: &pct}
	s.discounts[d.id] = d
	s.codes[strings.ToUpper(code)] = &redeemCode{id: s.newID("DiscountRedeemCode"), code: code, discountID: d.id}
	return d.id
}

// AddOrder stores an order for the orders query and returns its GID.
func (f *Fake) AddOrder(shopDomain string, o Order) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.shopLocked(shopDomain)
	if o.LegacyID == 0 {
		o.LegacyID = int64(5000000000 + len(s.orders) + 1)
	}
	if o.Name == "" {
		o.Name = fmt.Sprintf("#%d", 1000+len(s.orders)+1)
	}
	if o.UpdatedAt.IsZero() {
		o.UpdatedAt = f.cfg.Now()
	}
	s.orders = append(s.orders, &o)
	return fmt.Sprintf("gid://shopify/Order/%d", o.LegacyID)
}

// Discount returns the code discount with the given GID.
func (f *Fake) Discount(shopDomain, id string) (DiscountInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.shopLocked(shopDomain).discounts[id]
	if d == nil {
		return DiscountInfo{}, false
	}
	return DiscountInfo{ID: d.id, Title: d.title, StartsAt: d.startsAt, EndsAt: d.endsAt, UsageLimit: d.usageLimit,
		AppliesOncePerCustomer: d.appliesOncePerCustomer, Percentage: d.percentage, Amount: d.amount}, true
}

// RedeemCodes returns, sorted, the codes of a discount once every bulk job
// due by now has finished.
func (f *Fake) RedeemCodes(shopDomain, discountID string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.shopLocked(shopDomain)
	s.settleLocked(f.cfg.Now())
	var out []string
	for _, rc := range s.codes {
		if rc.discountID == discountID {
			out = append(out, rc.code)
		}
	}
	sort.Strings(out)
	return out
}

// WebhookSubscriptions returns the shop's webhook subscriptions.
func (f *Fake) WebhookSubscriptions(shopDomain string) []WebhookSubscription {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]WebhookSubscription(nil), f.shopLocked(shopDomain).webhooks...)
}
