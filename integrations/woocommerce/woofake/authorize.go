package woofake

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Authorization is one request to /wc-auth/v1/authorize and what came of it.
type Authorization struct {
	AppName     string
	Scope       string
	UserID      string
	ReturnURL   string
	CallbackURL string
	// KeyID is the key created and kept (0 when refused, denied, or when the callback failed and
	// the key was deleted again).
	KeyID int64
	// CallbackStatus is the callback's answer (0: not posted, or no answer).
	CallbackStatus int
	// Error is the message of the 401 "Access denied" page ("" when it redirected).
	Error string
	// Redirect is where the merchant was sent ("" on error).
	Redirect string
}

// Authorizations lists the authorization requests, oldest first.
func (f *Fake) Authorizations() []Authorization {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Authorization(nil), f.authorizations...)
}

// DenyAuthorizations makes the merchant click "Deny" (true) or "Approve" (false, the default) on
// the next authorization screens: a denial redirects to return_url with success=0 and creates no
// key.
func (f *Fake) DenyAuthorizations(deny bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deny = deny
}

// formattedURL is WC_Auth::get_formatted_url: https:// is assumed when there is no scheme.
func formattedURL(u string) string {
	if !strings.Contains(u, "://") {
		return "https://" + u
	}
	return u
}

// phpEmpty is PHP's empty() for a request string.
func phpEmpty(s string) bool { return s == "" || s == "0" }

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// addQueryArgs is add_query_arg: the arguments go before any fragment.
func addQueryArgs(base string, args [][2]string) string {
	frag := ""
	if i := strings.IndexByte(base, '#'); i >= 0 {
		base, frag = base[:i], base[i:]
	}
	var b strings.Builder
	b.WriteString(base)
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	for _, a := range args {
		b.WriteString(sep + a[0] + "=" + url.QueryEscape(a[1]))
		sep = "&"
	}
	return b.String() + frag
}

// serveAuthorize is WC_Auth::handle_auth_requests for a merchant who is logged in and approves
// (or denies, see DenyAuthorizations) at once. It validates as WC_Auth::make_validation does, with
// one allowance: WooCommerce requires callback_url to be https://, and the fake also takes an
// http:// callback_url on a loopback host (localhost, 127.0.0.0/8, ::1) so a test's plain
// httptest server can receive the keys. On approval it creates a key with the requested
// permissions, POSTs {key_id, user_id, consumer_key, consumer_secret, key_permissions} to
// callback_url (Content-Type application/json;charset=UTF-8, 60 s timeout) and, unless the answer
// is exactly 200, deletes the key and answers 401 "Access denied"; otherwise it redirects (302) to
// return_url?success=1&user_id=….
func (f *Fake) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm() // $_REQUEST: query and form body
	get := func(name string) string { return strings.TrimSpace(r.Form.Get(name)) }
	a := Authorization{AppName: get("app_name"), Scope: get("scope"), UserID: get("user_id"),
		ReturnURL: get("return_url"), CallbackURL: get("callback_url")}

	fail := func(msg string) {
		a.Error = msg
		f.mu.Lock()
		f.authorizations = append(f.authorizations, a)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, "<!DOCTYPE html>\n<html lang=\"en-US\"><head><meta charset=\"utf-8\"><title>Access denied</title></head>"+
			"<body id=\"error-page\"><div class=\"wp-die-message\">Error: %s.</div></body></html>\n", html.EscapeString(msg))
	}

	for _, name := range []string{"app_name", "user_id", "return_url", "callback_url", "scope"} {
		if phpEmpty(get(name)) {
			fail("Missing parameter " + name)
			return
		}
	}
	switch a.Scope {
	case "read", "write", "read_write":
	default:
		fail("Invalid scope " + a.Scope)
		return
	}
	for _, raw := range []string{a.ReturnURL, a.CallbackURL} {
		u, err := url.Parse(formattedURL(raw))
		if err != nil || u.Scheme == "" || u.Host == "" || strings.ContainsAny(raw, " \t\r\n") {
			fail("The " + formattedURL(raw) + " is not a valid URL")
			return
		}
	}
	callback := formattedURL(a.CallbackURL)
	cbURL, _ := url.Parse(callback)
	if !strings.HasPrefix(strings.ToLower(callback), "https://") &&
		!(strings.EqualFold(cbURL.Scheme, "http") && isLoopbackHost(cbURL.Hostname())) {
		fail("The callback_url needs to be over SSL")
		return
	}
	returnURL := formattedURL(a.ReturnURL)

	f.mu.Lock()
	deny := f.deny
	f.mu.Unlock()
	if deny {
		a.Redirect = addQueryArgs(returnURL, [][2]string{{"success", "0"}, {"user_id", a.UserID}})
		f.mu.Lock()
		f.authorizations = append(f.authorizations, a)
		f.mu.Unlock()
		http.Redirect(w, r, a.Redirect, http.StatusFound)
		return
	}

	// WC_Auth::create_keys: ck_/cs_ and wc_rand_hash (40 hex characters).
	f.mu.Lock()
	now := f.cfg.Now().UTC()
	k := f.addKeyLocked("ck_"+randomHex(20), "cs_"+randomHex(20), a.Scope,
		fmt.Sprintf("%s - API (%s)", a.AppName, now.Format(time.DateTime)))
	f.mu.Unlock()

	body, err := phpJSON(struct {
		KeyID          int64  `json:"key_id"`
		UserID         string `json:"user_id"`
		ConsumerKey    string `json:"consumer_key"`
		ConsumerSecret string `json:"consumer_secret"`
		KeyPermissions string `json:"key_permissions"`
	}{k.id, a.UserID, k.key, k.secret, k.permissions})
	if err == nil {
		var req *http.Request
		req, err = http.NewRequest(http.MethodPost, callback, bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json;charset=UTF-8")
			req.Header.Set("User-Agent", "WordPress/"+WPVersion+"; "+f.URL())
			var resp *http.Response
			resp, err = f.outbound(60*time.Second, true).Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
				resp.Body.Close()
				a.CallbackStatus = resp.StatusCode
			}
		}
	}
	if err != nil || a.CallbackStatus != http.StatusOK {
		f.mu.Lock()
		if cur := f.keys[k.key]; cur == k {
			delete(f.keys, k.key)
		}
		f.mu.Unlock()
		if err != nil {
			fail(err.Error())
		} else {
			fail("An error occurred in the request and at the time were unable to send the consumer data")
		}
		return
	}
	a.KeyID = k.id
	a.Redirect = addQueryArgs(returnURL, [][2]string{{"success", "1"}, {"user_id", a.UserID}})
	f.mu.Lock()
	f.authorizations = append(f.authorizations, a)
	f.mu.Unlock()
	http.Redirect(w, r, a.Redirect, http.StatusFound)
}
