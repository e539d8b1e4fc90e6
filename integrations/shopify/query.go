package shopify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// QueryTimestampTolerance is how far a signed query's timestamp may be from now, either way (the
// value of Shopify's own library).
const QueryTimestampTolerance = 90 * time.Second

// VerifyQuery checks a query string Shopify signed: the install request (shop, timestamp, hmac),
// the OAuth callback (code, host, shop, state, timestamp, hmac) and embedded-app loads. values are
// the decoded parameters (url.URL.Query()).
//
// It accepts the query only when
//   - hmac is present once and is the hex HMAC-SHA256, keyed with secret, of the message
//     QueryMessage builds from the other parameters (hmac.Equal compares the bytes);
//   - timestamp is present once, a whole number of Unix seconds within QueryTimestampTolerance of
//     now;
//   - shop is present once and is a valid shop domain (ValidShopDomain).
//
// Every parameter must appear once: a repeated key is refused (see QueryMessage). The error wraps
// ErrSignature, ErrExpired, ErrInvalidShop or ErrNoSecret. VerifyQuery does not check state
// against the issued nonce; the OAuth callback does that itself.
func VerifyQuery(values url.Values, secret string, now time.Time) error {
	if secret == "" {
		return fmt.Errorf("%w: VerifyQuery was given an empty client secret", ErrNoSecret)
	}
	got, err := single(values, "hmac")
	if err != nil {
		return err
	}
	if got == "" {
		return fmt.Errorf("%w: the query has no hmac parameter", ErrSignature)
	}
	sum, err := hex.DecodeString(got)
	if err != nil || len(sum) != sha256.Size {
		return fmt.Errorf("%w: the query's hmac is not a hex-encoded SHA-256 digest", ErrSignature)
	}
	msg, err := QueryMessage(values)
	if err != nil {
		return err
	}
	if !hmac.Equal(sum, querySum(msg, secret)) {
		return fmt.Errorf("%w: the query's hmac does not match its parameters (wrong secret or altered query)", ErrSignature)
	}

	ts, err := single(values, "timestamp")
	if err != nil {
		return err
	}
	if ts == "" {
		return fmt.Errorf("%w: the query has no timestamp parameter", ErrExpired)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: the query's timestamp %q is not a whole number of Unix seconds", ErrExpired, ts)
	}
	tol := int64(QueryTimestampTolerance / time.Second)
	if n := now.Unix(); sec < n-tol {
		return fmt.Errorf("%w: the query's timestamp is more than %s old", ErrExpired, QueryTimestampTolerance)
	} else if sec > n+tol {
		return fmt.Errorf("%w: the query's timestamp is more than %s in the future", ErrExpired, QueryTimestampTolerance)
	}

	shop, err := single(values, "shop")
	if err != nil {
		return err
	}
	if !ValidShopDomain(shop) {
		return fmt.Errorf("%w: the query's shop %q is not <name>.myshopify.com", ErrInvalidShop, shop)
	}
	return nil
}

// SignQuery returns the hex HMAC-SHA256 Shopify puts in the hmac parameter of values (hmac and
// signature themselves are left out): what a fake Shopify or a test signs with. It panics on a
// repeated key, which Shopify never signs and VerifyQuery refuses.
func SignQuery(values url.Values, secret string) string {
	msg, err := QueryMessage(values)
	if err != nil {
		panic(err)
	}
	return hex.EncodeToString(querySum(msg, secret))
}

// QueryMessage returns the string Shopify's query hmac signs: every parameter but hmac and
// signature, sorted by key (byte order), each written key=value and joined with '&'.
//
// Keys and values are percent-encoded exactly as Shopify's JavaScript library does
// (URLSearchParams, then '+' written as %20): ASCII letters, digits and "*-._" stay as they are,
// every other byte becomes %XX. This keeps the message unambiguous (a value holding "&x=y" cannot
// pose as another parameter). go-shopify signs the decoded values instead; for every parameter of
// a normal install or callback (shop domains, hex codes and nonces, digits) both give the same
// string, and they differ only for values with other characters, where Shopify's own library is
// followed.
//
// A key that appears more than once is refused (an error wrapping ErrSignature): Shopify never
// sends one on these URLs, and its libraries disagree on what it would sign (the JS library
// joins the values with commas, which "a=1,2" would equally produce; go-shopify takes the first).
// Admin bulk-action links carrying ids[] are therefore not supported.
func QueryMessage(values url.Values) (string, error) {
	keys := make([]string, 0, len(values))
	for k, vs := range values {
		if k == "hmac" || k == "signature" || len(vs) == 0 {
			continue
		}
		if len(vs) > 1 {
			return "", fmt.Errorf("%w: the query parameter %q appears %d times; a signed query has each once", ErrSignature, k, len(vs))
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		formEscape(&b, k)
		b.WriteByte('=')
		formEscape(&b, values[k][0])
	}
	return b.String(), nil
}

// single returns the only value of key, "" when it is absent, and an error when it repeats.
func single(values url.Values, key string) (string, error) {
	vs := values[key]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	}
	return "", fmt.Errorf("%w: the query parameter %q appears %d times; a signed query has each once", ErrSignature, key, len(vs))
}

func querySum(msg, secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// formEscape writes s as the WHATWG application/x-www-form-urlencoded serializer does, except that
// a space is %20 rather than '+' (Shopify's ProcessedQuery.stringify).
func formEscape(b *strings.Builder, s string) {
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '*' || c == '-' || c == '.' || c == '_' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
}
