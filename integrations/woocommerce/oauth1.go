package woocommerce

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// OAuth 1.0a "one-legged" signing, which WooCommerce's REST API requires of stores served over
// plain HTTP (WC_REST_Authentication::perform_oauth_authentication). There is no token: the
// request carries oauth_consumer_key, oauth_nonce, oauth_signature_method, oauth_timestamp and
// oauth_signature as query parameters, and the signature is the HMAC of the RFC 5849 signature
// base string keyed with "consumer_secret&". The body is not signed.
//
// WooCommerce builds the base string as RFC 5849 §3.4.1 does for the parameters it sees: the
// upper-case method, the percent-encoded base URL (scheme, host and path, no query), and the
// percent-encoded, sorted "name=value" pairs of every query parameter except oauth_signature,
// joined with "&" (so each value ends up encoded twice). Its signing key is the raw consumer secret
// followed by "&" (RFC 5849 would percent-encode the secret first; WooCommerce secrets are
// "cs_" and hex, where the two agree).

// OAuth1SignatureMethod is the method SignOAuth1 uses. VerifyOAuth1 also accepts "HMAC-SHA1", as
// WooCommerce does.
const OAuth1SignatureMethod = "HMAC-SHA256"

// OAuth1Window is how far a request's oauth_timestamp may be from the server's clock, either way
// (WooCommerce's 15-minute window).
const OAuth1Window = 15 * time.Minute

// OAuth1Error is a failed OAuth 1.0a check. Code and Message are what WooCommerce answers (with
// HTTP 401) for the same failure.
type OAuth1Error struct {
	Code    string
	Message string
}

func (e *OAuth1Error) Error() string { return "woocommerce oauth1: " + e.Message }

// ErrNoOAuth1 is returned by VerifyOAuth1 when the request carries none of the OAuth parameters:
// it is not trying OAuth at all (WooCommerce then treats it as unauthenticated).
var ErrNoOAuth1 = errors.New("woocommerce oauth1: no OAuth parameters")

// oauthParamNames are the parameters WooCommerce requires, in its order.
var oauthParamNames = []string{"oauth_consumer_key", "oauth_timestamp", "oauth_nonce", "oauth_signature", "oauth_signature_method"}

// SignOAuth1 returns a copy of query with the OAuth parameters added (oauth_consumer_key,
// oauth_nonce, oauth_signature_method HMAC-SHA256, oauth_timestamp from now, oauth_signature) for
// a request of method to rawURL. Only the scheme, host, port and path of rawURL count: pass every
// query parameter in query. An empty nonce means a random one.
func SignOAuth1(method, rawURL string, query url.Values, consumerKey, consumerSecret string, now time.Time, nonce string) (url.Values, error) {
	if nonce == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("woocommerce oauth1: nonce: %w", err)
		}
		nonce = hex.EncodeToString(b)
	}
	out := make(url.Values, len(query)+5)
	for k, vs := range query {
		out[k] = append([]string(nil), vs...)
	}
	out.Set("oauth_consumer_key", consumerKey)
	out.Set("oauth_nonce", nonce)
	out.Set("oauth_signature_method", OAuth1SignatureMethod)
	out.Set("oauth_timestamp", strconv.FormatInt(now.Unix(), 10))
	out.Del("oauth_signature")
	base, err := OAuth1BaseString(method, rawURL, out)
	if err != nil {
		return nil, err
	}
	out.Set("oauth_signature", oauthHMAC(sha256.New, base, consumerSecret))
	return out, nil
}

// VerifyOAuth1 checks the OAuth 1.0a parameters of a request as WooCommerce does: all five
// present (an *OAuth1Error with code woocommerce_rest_authentication_missing_parameter
// otherwise, or ErrNoOAuth1 when none is), the signature method HMAC-SHA256 or HMAC-SHA1, the
// signature that of the base string of method, rawURL (scheme, host, port and path; its query is
// not used) and query, keyed with secret, and oauth_timestamp within OAuth1Window of now. The
// caller looks the consumer key up to find secret, and keeps track of used nonces.
func VerifyOAuth1(method, rawURL string, query url.Values, secret string, now time.Time) error {
	var missing []string
	for _, name := range oauthParamNames {
		if query.Get(name) == "" {
			missing = append(missing, name)
		}
	}
	switch {
	case len(missing) == len(oauthParamNames):
		return ErrNoOAuth1
	case len(missing) == 1:
		return &OAuth1Error{Code: "woocommerce_rest_authentication_missing_parameter", Message: "Missing OAuth parameter " + missing[0]}
	case len(missing) > 1:
		return &OAuth1Error{Code: "woocommerce_rest_authentication_missing_parameter", Message: "Missing OAuth parameters " + strings.Join(missing, ", ")}
	}
	params := make(url.Values, len(query))
	for k, vs := range query {
		if k != "oauth_signature" {
			params[k] = vs
		}
	}
	base, err := OAuth1BaseString(method, rawURL, params)
	if err != nil {
		return &OAuth1Error{Code: "woocommerce_rest_authentication_error", Message: "Invalid signature - " + err.Error()}
	}
	var h func() hash.Hash
	switch query.Get("oauth_signature_method") {
	case "HMAC-SHA256":
		h = sha256.New
	case "HMAC-SHA1":
		h = sha1.New
	default:
		return &OAuth1Error{Code: "woocommerce_rest_authentication_error", Message: "Invalid signature - signature method is invalid."}
	}
	// WooCommerce reads the signature as rawurldecode(str_replace(' ', '+', value)): a "+" that
	// arrived unencoded (and so became a space) still counts as "+".
	got := strings.ReplaceAll(query.Get("oauth_signature"), " ", "+")
	if dec, err := url.PathUnescape(got); err == nil {
		got = dec
	}
	if !hmac.Equal([]byte(got), []byte(oauthHMAC(h, base, secret))) {
		return &OAuth1Error{Code: "woocommerce_rest_authentication_error", Message: "Invalid signature - provided signature does not match."}
	}
	ts, err := strconv.ParseInt(query.Get("oauth_timestamp"), 10, 64)
	if err != nil {
		ts = 0 // PHP's (int) cast of junk
	}
	window := int64(OAuth1Window / time.Second)
	if n := now.Unix(); ts < n-window || ts > n+window {
		return &OAuth1Error{Code: "woocommerce_rest_authentication_error", Message: "Invalid timestamp."}
	}
	return nil
}

// OAuth1BaseString is the RFC 5849 signature base string of a request: METHOD & encoded base URL
// & encoded normalised parameters. params must not include oauth_signature; rawURL's query is
// not used.
func OAuth1BaseString(method, rawURL string, params url.Values) (string, error) {
	base, err := oauthBaseURL(rawURL)
	if err != nil {
		return "", err
	}
	type pair struct{ k, v string }
	pairs := make([]pair, 0, len(params))
	for k, vs := range params {
		ek := oauthEncode(k)
		for _, v := range vs {
			pairs = append(pairs, pair{ek, oauthEncode(v)})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	var norm strings.Builder
	for i, p := range pairs {
		if i > 0 {
			norm.WriteByte('&')
		}
		norm.WriteString(p.k)
		norm.WriteByte('=')
		norm.WriteString(p.v)
	}
	return strings.ToUpper(method) + "&" + oauthEncode(base) + "&" + oauthEncode(norm.String()), nil
}

// oauthBaseURL is the base string URI of RFC 5849 §3.4.1.2: lower-case scheme and host, the port
// only when it is not the scheme's default, the path as sent ("/" when empty), no query.
func oauthBaseURL(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("bad URL: %w", err)
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	if (scheme != "http" && scheme != "https") || host == "" {
		return "", fmt.Errorf("bad URL %q: need an absolute http(s) URL", u.Redacted())
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if p := u.Port(); p != "" && !(scheme == "http" && p == "80") && !(scheme == "https" && p == "443") {
		host += ":" + p
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, nil
}

// oauthEncode percent-encodes s as RFC 3986 (and PHP's rawurlencode) do: every byte but
// A-Z a-z 0-9 - . _ ~ becomes %XX with upper-case hex.
func oauthEncode(s string) string {
	const hexdigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexdigits[c>>4])
		b.WriteByte(hexdigits[c&15])
	}
	return b.String()
}

func oauthHMAC(h func() hash.Hash, base, secret string) string {
	m := hmac.New(h, []byte(secret+"&"))
	m.Write([]byte(base))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
