package shopify_test

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/coupongate/coupongate/integrations/shopify"
)

// Shopify's official test vector (shopify.dev, authorization code grant), and the same query
// without state (hexdocs exshopify).
const (
	vectorSecret     = "hush"
	vectorMessage    = "code=0907a61c0c8d55e99db179b68161bc00&shop=some-shop.myshopify.com&state=0.6784241404160823&timestamp=1337178173"
	vectorHmac       = "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf"
	vectorNoStateMsg = "code=0907a61c0c8d55e99db179b68161bc00&shop=some-shop.myshopify.com&timestamp=1337178173"
	vectorNoState    = "4712bf92ffc2917d15a2f5a273e39f0116667419aa4b6ac0b3baaf26fa3c4d20"
)

var vectorTime = time.Unix(1337178173, 0)

func vectorQuery(t *testing.T) url.Values {
	t.Helper()
	// The order of a real callback URL: hmac first, not sorted.
	v, err := url.ParseQuery("hmac=" + vectorHmac + "&state=0.6784241404160823&timestamp=1337178173&code=0907a61c0c8d55e99db179b68161bc00&shop=some-shop.myshopify.com")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestQueryOfficialVectors(t *testing.T) {
	t.Parallel()
	v := vectorQuery(t)
	msg, err := shopify.QueryMessage(v)
	if err != nil || msg != vectorMessage {
		t.Fatalf("QueryMessage = %q, %v; want %q", msg, err, vectorMessage)
	}
	if got := shopify.SignQuery(v, vectorSecret); got != vectorHmac {
		t.Fatalf("SignQuery = %s, want %s", got, vectorHmac)
	}
	if err := shopify.VerifyQuery(v, vectorSecret, vectorTime); err != nil {
		t.Fatalf("official vector refused: %v", err)
	}
	// signature (the app-proxy parameter) is left out of the message like hmac.
	v.Set("signature", "whatever")
	if err := shopify.VerifyQuery(v, vectorSecret, vectorTime); err != nil {
		t.Fatalf("official vector with a signature parameter refused: %v", err)
	}

	v.Del("signature")
	v.Del("state")
	v.Set("hmac", vectorNoState)
	if msg, _ := shopify.QueryMessage(v); msg != vectorNoStateMsg {
		t.Fatalf("QueryMessage without state = %q", msg)
	}
	if err := shopify.VerifyQuery(v, vectorSecret, vectorTime); err != nil {
		t.Fatalf("vector without state refused: %v", err)
	}
}

func TestVerifyQueryAcceptsUppercaseHexAndToleratedClock(t *testing.T) {
	t.Parallel()
	for _, now := range []time.Time{vectorTime.Add(90 * time.Second), vectorTime.Add(-90 * time.Second), vectorTime.Add(89500 * time.Millisecond)} {
		v := vectorQuery(t)
		if err := shopify.VerifyQuery(v, vectorSecret, now); err != nil {
			t.Errorf("now %s: %v", now.Sub(vectorTime), err)
		}
	}
	v := vectorQuery(t)
	v.Set("hmac", "700E2DADB827FCC8609E9D5CE208B2E9CDAAB9DF07390D2CBCA10D7C328FC4BF")
	if err := shopify.VerifyQuery(v, vectorSecret, vectorTime); err != nil {
		t.Errorf("upper-case hex refused: %v", err)
	}
}

func TestVerifyQueryFailures(t *testing.T) {
	t.Parallel()
	// resign signs the query after edit, so that only the rule under test fails.
	resign := func(v url.Values) { v.Set("hmac", shopify.SignQuery(v, vectorSecret)) }
	tests := []struct {
		name   string
		edit   func(v url.Values)
		secret string
		now    time.Time
		want   error
	}{
		{name: "missing hmac", edit: func(v url.Values) { v.Del("hmac") }, want: shopify.ErrSignature},
		{name: "empty hmac", edit: func(v url.Values) { v.Set("hmac", "") }, want: shopify.ErrSignature},
		{name: "hmac not hex", edit: func(v url.Values) { v.Set("hmac", "zz0e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf") }, want: shopify.ErrSignature},
		{name: "hmac odd length", edit: func(v url.Values) { v.Set("hmac", vectorHmac[1:]) }, want: shopify.ErrSignature},
		{name: "hmac too short", edit: func(v url.Values) { v.Set("hmac", vectorHmac[:62]) }, want: shopify.ErrSignature},
		{name: "hmac base64 instead of hex", edit: func(v url.Values) { v.Set("hmac", "cA4trbgn/MhgnZ1c4giy6c2qud8HOQ0svKENfDKPxL8=") }, want: shopify.ErrSignature},
		{name: "hmac of another query", edit: func(v url.Values) { v.Set("hmac", vectorNoState) }, want: shopify.ErrSignature},
		{name: "hmac repeated", edit: func(v url.Values) { v.Add("hmac", vectorHmac) }, want: shopify.ErrSignature},
		{name: "wrong secret", secret: "hush2", want: shopify.ErrSignature},
		{name: "tampered shop", edit: func(v url.Values) { v.Set("shop", "other-shop.myshopify.com") }, want: shopify.ErrSignature},
		{name: "tampered code", edit: func(v url.Values) { v.Set("code", "0907a61c0c8d55e99db179b68161bc01") }, want: shopify.ErrSignature},
		{name: "tampered timestamp", edit: func(v url.Values) { v.Set("timestamp", "1337178174") }, now: vectorTime, want: shopify.ErrSignature},
		{name: "parameter added", edit: func(v url.Values) { v.Set("embedded", "1") }, want: shopify.ErrSignature},
		{name: "parameter removed", edit: func(v url.Values) { v.Del("state") }, want: shopify.ErrSignature},
		{name: "value split into a parameter", edit: func(v url.Values) {
			v.Del("state")
			v.Set("shop", "some-shop.myshopify.com&state=0.6784241404160823")
		}, want: shopify.ErrSignature},
		{name: "repeated parameter", edit: func(v url.Values) { v.Add("state", "x") }, want: shopify.ErrSignature},
		{name: "stale timestamp", now: vectorTime.Add(91 * time.Second), want: shopify.ErrExpired},
		{name: "future timestamp", now: vectorTime.Add(-91 * time.Second), want: shopify.ErrExpired},
		{name: "timestamp far past", now: vectorTime.Add(24 * time.Hour), want: shopify.ErrExpired},
		{name: "missing timestamp", edit: func(v url.Values) { v.Del("timestamp"); resign(v) }, want: shopify.ErrExpired},
		{name: "timestamp not a number", edit: func(v url.Values) { v.Set("timestamp", "1337178173.5"); resign(v) }, want: shopify.ErrExpired},
		{name: "timestamp overflow", edit: func(v url.Values) { v.Set("timestamp", "-9223372036854775808"); resign(v) }, want: shopify.ErrExpired},
		{name: "missing shop", edit: func(v url.Values) { v.Del("shop"); resign(v) }, want: shopify.ErrInvalidShop},
		{name: "shop not myshopify", edit: func(v url.Values) { v.Set("shop", "evil.com"); resign(v) }, want: shopify.ErrInvalidShop},
		{name: "shop with path", edit: func(v url.Values) { v.Set("shop", "some-shop.myshopify.com/x"); resign(v) }, want: shopify.ErrInvalidShop},
		{name: "shop suffix trick", edit: func(v url.Values) { v.Set("shop", "some-shop.myshopify.com.evil.com"); resign(v) }, want: shopify.ErrInvalidShop},
		{name: "empty secret", secret: "-", want: shopify.ErrNoSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := vectorQuery(t)
			if tt.edit != nil {
				tt.edit(v)
			}
			secret := vectorSecret
			switch tt.secret {
			case "":
			case "-":
				secret = ""
			default:
				secret = tt.secret
			}
			now := tt.now
			if now.IsZero() {
				now = vectorTime
			}
			err := shopify.VerifyQuery(v, secret, now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifyQuery = %v, want %v", err, tt.want)
			}
			t.Log(err)
		})
	}
}

func TestQueryMessageEncoding(t *testing.T) {
	t.Parallel()
	// As Shopify's JS library: URLSearchParams with '+' written as %20; unreserved bytes kept.
	v := url.Values{
		"host":  {"YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvc2hvcA+/"},
		"shop":  {"a.myshopify.com"},
		"note":  {"a b&c=d%~*-._é"},
		"a key": {"1"},
		"hmac":  {"ignored"},
	}
	want := "a%20key=1&host=YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvc2hvcA%2B%2F&note=a%20b%26c%3Dd%25%7E*-._%C3%A9&shop=a.myshopify.com"
	if got, err := shopify.QueryMessage(v); err != nil || got != want {
		t.Fatalf("QueryMessage = %q, %v\nwant %q", got, err, want)
	}
	// A signature made for one parameter set does not carry over to another that joins to the same
	// decoded text.
	a := url.Values{"shop": {"a.myshopify.com"}, "state": {"x"}, "timestamp": {"1"}}
	b := url.Values{"shop": {"a.myshopify.com&state=x"}, "timestamp": {"1"}}
	if shopify.SignQuery(a, "k") == shopify.SignQuery(b, "k") {
		t.Fatal("two parameter sets share a signature")
	}
}
