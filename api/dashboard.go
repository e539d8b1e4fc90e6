package api

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/shopify"
	"github.com/coupongate/coupongate/web"
)

// The dashboard (/app) is served by the gateway itself, calling core directly. Who is signed in:
//
//   - Inside the Shopify admin, every request carries a Shopify ID token: the document load in
//     the id_token query parameter (a load without one goes to the bounce page
//     /auth/session-token, which gets a fresh token from App Bridge and reloads), every later
//     request as Authorization: Bearer (app.js adds it). No cookie is used there. The person acts
//     as an owner.
//   - Outside it, people sign in with email and password (/app/sign-in) and get a server-side
//     session in the cg_session cookie; every state-changing request carries the session's CSRF
//     token.
//
// Page handlers live in api/dashboard_<area>.go and register on the groups registerDashboard
// makes: h.page renders, h.requireOwner guards, fail(c, err) shows the error page.

// Names of the dashboard's headers, cookies and form fields.
const (
	// fragmentHeader asks for only the page's <main> content (app.js's navigation).
	fragmentHeader = "X-Coupongate-Fragment"
	// titleHeader carries a fragment's page title, URL-escaped.
	titleHeader = "X-Coupongate-Title"
	// retryHeader tells App Bridge to retry with a fresh ID token.
	retryHeader        = "X-Shopify-Retry-Invalid-Session-Request"
	sessionCookie      = "cg_session"
	csrfCookie         = "cg_csrf"
	csrfField          = "csrf_token"
	csrfHeader         = "X-CSRF-Token"
	dashboardCookieDir = "/app"
	dashKey            = "coupongate.dashboard"
	bouncePath         = "/auth/session-token"
)

// Errors of the dashboard's middleware.
var (
	errCSRF = &core.Error{Kind: core.KindForbidden, Code: "csrf_failed",
		Message: "This form is out of date or did not come from this dashboard, so nothing was changed. Go back, reload the page and try again."}
	errCrossSite = &core.Error{Kind: core.KindForbidden, Code: "cross_site_request",
		Message: "Another website tried to send this form; nothing was changed."}
	errEmbeddedShop = &core.Error{Kind: core.KindMalformed, Code: "invalid_shop",
		Message: "This page opens inside the Shopify admin: open Coupongate from your admin's Apps."}
	errEmbeddedToken = &core.Error{Kind: core.KindUnauthorized, Code: "invalid_session_token",
		Message: "Shopify's session token for this page is not valid. Open Coupongate from your Shopify admin again."}
)

// dashContext is what the dashboard's middleware learned about a request.
type dashContext struct {
	// Embedded is true inside the Shopify admin; Shop is then the verified (or, before the token
	// is checked, the validated) shop, Host the admin's host parameter.
	Embedded bool
	Shop     string
	Host     string
	// Signed in: Merchant, Role and Actor always; User and Session for a cookie session.
	SignedIn bool
	Merchant core.Merchant
	Role     core.Role
	Actor    string
	User     *core.User
	Session  *core.Session
	// CSRF is the token the page's forms carry: the session's, or the double-submit cookie's on
	// the sign-in and invite pages.
	CSRF string
	// APIKey and AppBridgeURL load App Bridge on embedded pages.
	APIKey       string
	AppBridgeURL string
}

// dash returns the request's dashboard context (never nil under /app).
func dash(c *gin.Context) *dashContext {
	if v, ok := c.Get(dashKey); ok {
		if d, ok := v.(*dashContext); ok {
			return d
		}
	}
	d := &dashContext{}
	d.Shop, d.Embedded = embeddedShopOf(c.Request.URL.Query())
	return d
}

// registerDashboard adds the dashboard's routes: the public ones (static files, bounce, sign-in,
// invite) and two groups of signed-in pages. Pages on the owner group answer 403 to staff; staff
// pages are the few that staff may use (finding codes and customers, marking codes used).
func (h *handlers) registerDashboard(r *gin.Engine) {
	r.GET("/app/static/*file", h.dashStatic)
	r.HEAD("/app/static/*file", h.dashStatic)
	r.GET(bouncePath, h.dashHeaders, h.bouncePage)

	public := r.Group("/app", h.dashHeaders)
	public.GET("/sign-in", h.signInPage)
	public.POST("/sign-in", h.checkFormCSRF, h.signIn)
	public.GET("/invite/:token", h.invitePage)
	public.POST("/invite/:token", h.checkFormCSRF, h.acceptInvite)

	staff := r.Group("/app", h.dashHeaders, h.dashAuth)
	owner := r.Group("/app", h.dashHeaders, h.dashAuth, h.requireOwner)
	staff.GET("", h.home)
	staff.POST("/sign-out", h.signOut)
	h.dashboardLists(owner)
	h.dashboardTeam(owner)
	h.dashboardSettings(owner)
	h.dashboardList(owner)
	h.dashboardCodes(owner, staff)
	h.dashboardShops(owner)
	h.dashboardMessages(owner)
	h.dashboardScan(owner, staff)
	h.dashboardRedeemLinks(owner)
	// Page helpers: register each area here, on owner (most pages) or staff.
}

// ---- Headers and who is signed in -------------------------------------------------------------

// dashHeaders starts every dashboard request: it sets the security headers of an HTML answer,
// refuses state-changing requests sent by other sites, records the request's context, and times
// the answer (Server-Timing, see timePage).
func (h *handlers) dashHeaders(c *gin.Context) {
	timePage(c)
	d := &dashContext{APIKey: h.Config.ShopifyAPIKey, AppBridgeURL: h.Config.AppBridgeURL}
	q := c.Request.URL.Query()
	d.Shop, d.Embedded = embeddedShopOf(q)
	if d.Embedded {
		d.Host = q.Get("host")
	}
	c.Set(dashKey, d)
	setPageHeaders(c, d)
	if unsafeMethod(c.Request.Method) && c.GetHeader("Sec-Fetch-Site") == "cross-site" {
		fail(c, errCrossSite)
		return
	}
	c.Next()
}

// embeddedShopOf reads an embedded load's shop: embedded=1 and a valid shop domain.
func embeddedShopOf(q url.Values) (string, bool) {
	if q.Get("embedded") != "1" {
		return "", false
	}
	shop, ok := shopify.CanonicalShop(q.Get("shop"))
	return shop, ok
}

// setPageHeaders sets the headers every HTML answer carries. Inside the admin only the shop's
// admin may frame the page; elsewhere nobody may.
func setPageHeaders(c *gin.Context, d *dashContext) {
	c.Header("Content-Security-Policy", contentSecurityPolicy(d))
	c.Header("Referrer-Policy", "same-origin")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Cache-Control", "no-store")
}

func contentSecurityPolicy(d *dashContext) string {
	frame, script, connect := "'none'", "'self'", "'self'"
	if d.Embedded && d.Shop != "" {
		frame = "https://" + d.Shop + " https://admin.shopify.com"
		if o := originOf(d.AppBridgeURL); o != "" {
			script += " " + o
			connect += " " + o
		}
		// App Bridge reports web vitals and errors to Shopify's own hosts.
		connect += " https://*.shopify.com https://*.shopifysvc.com"
	}
	return "frame-ancestors " + frame + "; default-src 'self'; script-src " + script +
		"; style-src 'self'; img-src 'self' data:; connect-src " + connect + "; form-action 'self'; base-uri 'none'"
}

func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// dashAuth finds who is signed in: a Shopify ID token (bearer, or the id_token of an embedded
// document load) or a cookie session. A document load inside the admin without a token goes to
// the bounce page; an invalid bearer token answers 401 with the retry header; a missing or ended
// cookie session goes to the sign-in page. Cookie sessions must carry their CSRF token on every
// state-changing request.
func (h *handlers) dashAuth(c *gin.Context) {
	d := dash(c)
	if bearer, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer "); ok {
		claims, err := h.verifyIDToken(strings.TrimSpace(bearer), "")
		if err != nil {
			h.Log.DebugContext(c.Request.Context(), "dashboard: bearer id token refused", "err", err)
			c.Header(retryHeader, "1")
			fail(c, errEmbeddedToken)
			return
		}
		if h.signInShop(c, d, claims) {
			c.Next()
		}
		return
	}
	if c.Request.URL.Query().Get("embedded") == "1" {
		h.embeddedDocument(c, d)
		return
	}
	h.cookieAuth(c, d)
}

// embeddedDocument authenticates a document load inside the admin by its id_token, or sends it to
// the bounce page for a fresh one.
func (h *handlers) embeddedDocument(c *gin.Context, d *dashContext) {
	if !d.Embedded {
		fail(c, errEmbeddedShop)
		return
	}
	q := c.Request.URL.Query()
	token := q.Get("id_token")
	q.Del("id_token")
	bounce := bouncePath + "?" + url.Values{"shop": {d.Shop}, "host": {d.Host},
		"shopify-reload": {c.Request.URL.Path + "?" + q.Encode()}}.Encode()
	if token == "" {
		if c.Request.Method != http.MethodGet {
			c.Header(retryHeader, "1")
			fail(c, errEmbeddedToken)
			return
		}
		redirect(c, bounce)
		c.Abort()
		return
	}
	claims, err := h.verifyIDToken(token, d.Shop)
	if err != nil {
		h.Log.DebugContext(c.Request.Context(), "dashboard: id_token refused", "err", err)
		// An expired token is renewed by the bounce page; any other fault would only bounce again.
		if errors.Is(err, shopify.ErrExpired) && c.Request.Method == http.MethodGet {
			redirect(c, bounce)
			c.Abort()
			return
		}
		fail(c, errEmbeddedToken)
		return
	}
	if h.signInShop(c, d, claims) {
		c.Next()
	}
}

// errTokenShop refuses an ID token of another shop than the page's.
var errTokenShop = errors.New("the id token is for another shop")

// verifyIDToken checks a Shopify ID token with the app's key and secret (and, when wantShop is
// set, that it is for that shop).
func (h *handlers) verifyIDToken(token, wantShop string) (shopify.SessionClaims, error) {
	claims, err := shopify.VerifySessionToken(token, h.Config.ShopifyAPIKey, h.Config.ShopifyAPISecret, time.Now())
	if err != nil {
		return shopify.SessionClaims{}, err
	}
	if wantShop != "" && claims.Shop != wantShop {
		return shopify.SessionClaims{}, errTokenShop
	}
	return claims, nil
}

// signInShop signs the request in as the merchant of the token's shop, acting as an owner; a shop
// that is not connected gets the error page (false).
func (h *handlers) signInShop(c *gin.Context, d *dashContext, claims shopify.SessionClaims) bool {
	conn, connected, err := h.shopConnection(c.Request.Context(), claims.Shop)
	if err != nil {
		fail(c, err)
		return false
	}
	if !connected {
		fail(c, errShopNotConnected)
		return false
	}
	m, err := h.Merchants.Get(c.Request.Context(), conn.MerchantID)
	if err != nil {
		fail(c, err)
		return false
	}
	d.Embedded, d.Shop = true, claims.Shop
	if d.Host == "" {
		d.Host = c.Query("host")
	}
	d.SignedIn, d.Merchant, d.Role = true, m, core.RoleOwner
	d.Actor = "shopify:" + claims.Shop + "/user/" + claims.Sub
	setPageHeaders(c, d)
	c.Set(merchantKey, m)
	c.Set(actorKey, d.Actor)
	return true
}

// cookieAuth signs the request in by its session cookie and checks CSRF on state-changing
// requests.
func (h *handlers) cookieAuth(c *gin.Context, d *dashContext) {
	cookie, err := c.Request.Cookie(sessionCookie)
	if err != nil || cookie.Value == "" {
		h.toSignIn(c)
		return
	}
	s, err := h.Users.Session(c.Request.Context(), cookie.Value)
	if errors.Is(err, core.ErrSessionExpired) {
		h.clearCookie(c, sessionCookie)
		h.toSignIn(c)
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	m, err := h.Merchants.Get(c.Request.Context(), s.User.MerchantID)
	if err != nil {
		fail(c, err)
		return
	}
	d.SignedIn, d.Merchant, d.Role, d.Actor = true, m, s.User.Role, s.User.Email
	d.User, d.Session, d.CSRF = &s.User, &s.Session, s.Session.CSRFToken
	c.Set(merchantKey, m)
	c.Set(actorKey, d.Actor)
	if unsafeMethod(c.Request.Method) && !sameToken(submittedCSRF(c), s.Session.CSRFToken) {
		fail(c, errCSRF)
		return
	}
	c.Next()
}

// submittedCSRF is the CSRF token a request carries: the X-CSRF-Token header, else the form's
// csrf_token field. A multipart upload is not read here (its handler streams it): it carries the
// token in the header or in the csrf_token query parameter of the form's action.
func submittedCSRF(c *gin.Context) string {
	if v := c.GetHeader(csrfHeader); v != "" {
		return v
	}
	if strings.HasPrefix(c.ContentType(), "multipart/") {
		return c.Query(csrfField)
	}
	return c.PostForm(csrfField)
}

func sameToken(got, want string) bool {
	return got != "" && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// toSignIn sends a person who is not signed in to the sign-in page, which brings them back.
func (h *handlers) toSignIn(c *gin.Context) {
	target := "/app/sign-in"
	if c.Request.Method == http.MethodGet && c.Request.URL.Path != "/app" {
		target += "?" + url.Values{"next": {c.Request.URL.RequestURI()}}.Encode()
	}
	c.Header("Location", target)
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusSeeOther)
	c.Abort()
}

// requireOwner lets only owners through; staff get the 403 page.
func (h *handlers) requireOwner(c *gin.Context) {
	if dash(c).Role != core.RoleOwner {
		fail(c, core.ErrOwnersOnly)
		return
	}
	c.Next()
}

// home is /app: owners see their lists, staff go to "Find a code".
func (h *handlers) home(c *gin.Context) {
	if dash(c).Role != core.RoleOwner {
		h.seeOther(c, "/app/codes")
		return
	}
	h.listsPage(c)
}

// homeOf is where a person lands after signing in.
func homeOf(role core.Role) string {
	if role == core.RoleOwner {
		return "/app"
	}
	return "/app/codes"
}

// seeOther answers 303 to path (after a form post, or to send someone elsewhere). Inside the
// admin the fetch that asked follows it with its bearer token.
func (h *handlers) seeOther(c *gin.Context, path string) {
	c.Header("Location", path)
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusSeeOther)
	c.Abort()
}

// ---- Rendering ----------------------------------------------------------------------------------

// page renders the page template name (a file in web/templates) with data as .Data: the whole
// document, or only its "main" block when the request carries X-Coupongate-Fragment: 1 (the
// page's title then rides in X-Coupongate-Title). A template failure becomes the error page.
func (h *handlers) page(c *gin.Context, status int, name string, data any) {
	d := dash(c)
	v := viewOf(c, d, data)
	var b bytes.Buffer
	var err error
	if c.GetHeader(fragmentHeader) == "1" {
		var title string
		if title, err = web.Title(name, v); err == nil {
			c.Header(titleHeader, url.PathEscape(title))
			err = web.RenderMain(&b, name, v)
		}
	} else {
		err = web.Render(&b, name, v)
	}
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Vary", "Authorization, "+fragmentHeader)
	c.Data(status, "text/html; charset=utf-8", b.Bytes())
}

// viewOf is the frame's part of a page's view.
func viewOf(c *gin.Context, d *dashContext, data any) web.View {
	v := web.View{Section: sectionOf(c.Request.URL.Path), CSRF: d.CSRF, Embedded: d.Embedded,
		APIKey: d.APIKey, AppBridgeURL: d.AppBridgeURL, Data: data}
	if d.SignedIn {
		v.Viewer = &web.Viewer{Owner: d.Role == core.RoleOwner, MerchantName: d.Merchant.Name, Email: d.Actor}
		if d.User != nil {
			v.Viewer.Email = d.User.Email
		}
	}
	if v.Embedded && v.AppBridgeURL == "" {
		v.Embedded = false // no App Bridge to load (an error before the middleware ran)
	}
	return v
}

// sectionOf is the navigation entry a path belongs to.
func sectionOf(path string) string {
	rest, ok := strings.CutPrefix(path, "/app/")
	if !ok {
		return "lists"
	}
	section, _, _ := strings.Cut(rest, "/")
	switch section {
	case "customers", "shops", "messages", "settings", "codes", "scan":
		return section
	}
	return "lists"
}

// isDashboardPath reports whether errors on path become the HTML error page.
func isDashboardPath(path string) bool {
	return path == "/app" || strings.HasPrefix(path, "/app/") || path == "/auth" || strings.HasPrefix(path, "/auth/")
}

// errorPageData is what error.html shows.
type errorPageData struct {
	Status    int
	Heading   string
	Message   string
	Details   []core.FieldError
	SignIn    bool
	RequestID string
}

// headingOf is the error page's heading for a status.
func headingOf(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "This request could not be read"
	case http.StatusUnauthorized:
		return "You are not signed in"
	case http.StatusForbidden:
		return "You cannot open this page"
	case http.StatusNotFound:
		return "This page does not exist"
	case http.StatusConflict:
		return "This cannot be done now"
	case http.StatusRequestEntityTooLarge:
		return "This is too large"
	case http.StatusUnprocessableEntity:
		return "Some values are not right"
	case http.StatusTooManyRequests:
		return "Too many attempts"
	case http.StatusServiceUnavailable:
		return "Coupongate is not available right now"
	}
	return "Something went wrong"
}

// renderErrorPage writes the dashboard's error page for ce with status; renderErrors calls it
// for every error under /app and /auth. A fragment request gets the page's main block.
func renderErrorPage(c *gin.Context, status int, ce *core.Error) {
	d := dash(c)
	if _, ok := c.Get(dashKey); !ok {
		setPageHeaders(c, d) // no dashboard route matched: still an HTML answer
	}
	msg := ce.Message
	if ce.Kind == core.KindNotFound && ce.Code == "route_not_found" {
		msg = "The address may be mistyped, or the page was moved."
	}
	data := errorPageData{Status: status, Heading: headingOf(status), Message: web.Sentence(msg),
		Details: ce.Details, RequestID: RequestIDFrom(c.Request.Context()),
		// Inside the admin (a bearer request too) there is no sign-in page to go to.
		SignIn: status == http.StatusUnauthorized && !d.Embedded && c.GetHeader("Authorization") == ""}
	v := viewOf(c, d, data)
	var b bytes.Buffer
	var err error
	if c.GetHeader(fragmentHeader) == "1" {
		c.Header(titleHeader, url.PathEscape(data.Heading))
		err = web.RenderMain(&b, "error.html", v)
	} else {
		err = web.Render(&b, "error.html", v)
	}
	if err != nil {
		c.Data(status, "text/plain; charset=utf-8", []byte(data.Heading+": "+data.Message+"\n"))
		return
	}
	c.Data(status, "text/html; charset=utf-8", b.Bytes())
}

// ---- Static files -------------------------------------------------------------------------------

// dashStatic serves the embedded CSS and JavaScript. A request for the current version (?v= the
// content hash, as web.StaticURL writes it) may be cached for a year; any other is revalidated by
// its ETag. A browser that accepts gzip gets the file gzipped (compressed once, at start).
func (h *handlers) dashStatic(c *gin.Context) {
	name := strings.TrimPrefix(c.Param("file"), "/")
	body, typ, hash, ok := web.Asset(name)
	if !ok {
		fail(c, &core.Error{Kind: core.KindNotFound, Code: "route_not_found", Message: "no such file"})
		return
	}
	etag := `"` + hash + `"`
	gz, zipped := web.AssetGzip(name)
	zipped = zipped && acceptsGzip(c.GetHeader("Accept-Encoding"))
	c.Header("Vary", "Accept-Encoding")
	if zipped {
		c.Header("ETag", "W/"+etag) // the same file, compressed: a weak validator
	} else {
		c.Header("ETag", etag)
	}
	c.Header("X-Content-Type-Options", "nosniff")
	if c.Query("v") == hash {
		c.Header("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		c.Header("Cache-Control", "no-cache")
	}
	if inm := c.GetHeader("If-None-Match"); inm != "" && (inm == etag || inm == "W/"+etag || inm == "*") {
		c.Status(http.StatusNotModified)
		return
	}
	if zipped {
		c.Header("Content-Encoding", "gzip")
		body = gz
	}
	if c.Request.Method == http.MethodHead {
		c.Header("Content-Type", typ)
		c.Status(http.StatusOK)
		return
	}
	c.Data(http.StatusOK, typ, body)
}

// ---- The bounce page ----------------------------------------------------------------------------

// bouncePage is /auth/session-token: App Bridge gets a fresh ID token and reloads shopify-reload
// with it. The reload target must be a page of the dashboard on this origin.
func (h *handlers) bouncePage(c *gin.Context) {
	if h.Config.ShopifyAPIKey == "" || h.Config.ShopifyAPISecret == "" {
		fail(c, errShopifyNotConfigured)
		return
	}
	shop, ok := shopify.CanonicalShop(c.Query("shop"))
	if !ok {
		fail(c, errEmbeddedShop)
		return
	}
	d := dash(c)
	d.Embedded, d.Shop = true, shop
	setPageHeaders(c, d)
	reload := c.Query("shopify-reload")
	if !isDashboardTarget(reload) {
		reload = "/app?" + url.Values{"embedded": {"1"}, "shop": {shop}, "host": {c.Query("host")}}.Encode()
	}
	var b bytes.Buffer
	err := web.RenderBlock(&b, "bounce.html", "bounce", map[string]string{
		"Reload": reload, "APIKey": h.Config.ShopifyAPIKey, "AppBridgeURL": h.Config.AppBridgeURL})
	if err != nil {
		fail(c, err)
		return
	}
	c.Data(http.StatusOK, "text/html; charset=utf-8", b.Bytes())
}

// isDashboardTarget reports whether target is a path of the dashboard on this origin (never
// another host: "//evil.example" or "/\evil.example" are refused).
func isDashboardTarget(target string) bool {
	if !strings.HasPrefix(target, "/app") || strings.ContainsAny(target, "\\\r\n\t") || strings.HasPrefix(target, "//") {
		return false
	}
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return false
	}
	return u.Path == "/app" || strings.HasPrefix(u.Path, "/app/")
}

// ---- Cookies ------------------------------------------------------------------------------------

func (h *handlers) setCookie(c *gin.Context, name, value string, maxAge time.Duration) {
	http.SetCookie(c.Writer, &http.Cookie{Name: name, Value: value, Path: dashboardCookieDir, MaxAge: int(maxAge / time.Second),
		HttpOnly: true, Secure: h.secureCookies(), SameSite: http.SameSiteLaxMode})
}

func (h *handlers) clearCookie(c *gin.Context, name string) {
	http.SetCookie(c.Writer, &http.Cookie{Name: name, Value: "", Path: dashboardCookieDir, MaxAge: -1,
		HttpOnly: true, Secure: h.secureCookies(), SameSite: http.SameSiteLaxMode})
}

// formCSRF returns the double-submit token of the sign-in and invite forms (which have no session
// yet), setting its cookie when the browser has none.
func (h *handlers) formCSRF(c *gin.Context) string {
	if ck, err := c.Request.Cookie(csrfCookie); err == nil && len(ck.Value) == 43 {
		return ck.Value
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	token := base64.RawURLEncoding.EncodeToString(b)
	h.setCookie(c, csrfCookie, token, 2*time.Hour)
	return token
}

// checkFormCSRF checks the double-submit token of the sign-in and invite forms: the form's
// csrf_token must equal the cg_csrf cookie.
func (h *handlers) checkFormCSRF(c *gin.Context) {
	ck, err := c.Request.Cookie(csrfCookie)
	if err != nil || !sameToken(c.PostForm(csrfField), ck.Value) {
		fail(c, errCSRF)
		return
	}
	dash(c).CSRF = ck.Value
	c.Next()
}
