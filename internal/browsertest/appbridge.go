package browsertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// AppBridge stands in for Shopify's App Bridge script, which the tests cannot fetch from Shopify's
// CDN (and which, loaded outside the admin's frame, would send the page to the admin's login). It
// is served on an origin of its own; give URL to the gateway as APP_BRIDGE_URL.
//
// The script defines window.shopify.idToken(), which returns a fresh ID token as Shopify issues
// it (HS256 under the app's secret, aud the API key, dest the shop of the page's shop parameter,
// one minute), signed in the page with WebCrypto; and it wraps fetch so that requests to the page's
// own origin carry Authorization: Bearer <ID token>, as App Bridge does. Setting
// window.__appBridgeSpoil = n in the page makes the next n tokens carry a wrong signature.
type AppBridge struct {
	// URL is the script's address.
	URL   string
	loads atomic.Int64
}

// NewAppBridge serves the stand-in for the app with apiKey and secret until the test ends;
// defaultShop is the shop of pages whose address names none.
func NewAppBridge(t testing.TB, apiKey, secret, defaultShop string) *AppBridge {
	t.Helper()
	cfg, err := json.Marshal(map[string]string{"apiKey": apiKey, "secret": secret, "shop": defaultShop})
	if err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(appBridgeScript, cfg)
	a := &AppBridge{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/app-bridge.js" {
			http.NotFound(w, r)
			return
		}
		a.loads.Add(1)
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(script))
	}))
	t.Cleanup(srv.Close)
	a.URL = srv.URL + "/app-bridge.js"
	return a
}

// Loads is how many times a page loaded the script: once per document, never for a navigation
// that only fetches.
func (a *AppBridge) Loads() int { return int(a.loads.Load()) }

const appBridgeScript = `// App Bridge stand-in for tests (see internal/browsertest).
(function () {
  "use strict";
  var cfg = %s;
  var enc = new TextEncoder();
  function b64(bytes) {
    var s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function shop() {
    return new URLSearchParams(location.search).get("shop") || cfg.shop;
  }
  function idToken() {
    var now = Math.floor(Date.now() / 1000);
    var secret = cfg.secret;
    if (window.__appBridgeSpoil > 0) {
      window.__appBridgeSpoil--;
      secret = "not-the-app-secret";
    }
    var s = shop();
    var header = b64(enc.encode(JSON.stringify({ alg: "HS256", typ: "JWT" })));
    var payload = b64(enc.encode(JSON.stringify({
      iss: "https://" + s + "/admin", dest: "https://" + s, aud: cfg.apiKey, sub: "7001",
      exp: now + 60, nbf: now - 1, iat: now, jti: String(Math.random()).slice(2), sid: "stand-in"
    })));
    return crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"])
      .then(function (key) { return crypto.subtle.sign("HMAC", key, enc.encode(header + "." + payload)); })
      .then(function (sig) {
        window.__appBridgeTokens = (window.__appBridgeTokens || 0) + 1;
        return header + "." + payload + "." + b64(new Uint8Array(sig));
      });
  }
  var plainFetch = window.fetch.bind(window);
  window.fetch = function (input, init) {
    init = Object.assign({}, init || {});
    var url = new URL(typeof input === "string" ? input : input.url, location.href);
    var headers = new Headers(init.headers || (typeof input === "string" ? undefined : input.headers));
    if (url.origin !== location.origin || headers.has("Authorization")) return plainFetch(input, init);
    return idToken().then(function (t) {
      headers.set("Authorization", "Bearer " + t);
      init.headers = headers;
      return plainFetch(input, init);
    });
  };
  window.shopify = { config: { apiKey: cfg.apiKey, shop: shop() }, idToken: idToken };
})();
`
