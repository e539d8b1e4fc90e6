package shopify_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coupongate/coupongate/integrations/shopify"
)

const (
	testAPIKey    = "3c1f0a9e5c5a4b1b8f0f2d3e4a5b6c7d"
	testAPISecret = "shpss_0123456789abcdef"
)

var tokenNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// rawToken builds a JWT from header and payload JSON, signed with HMAC-SHA256 under secret.
func rawToken(header, payload string, secret string) string {
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(signed))
	return signed + "." + enc.EncodeToString(m.Sum(nil))
}

// claims returns Shopify-shaped claims for some-shop, valid at tokenNow, with edit applied.
func claims(edit func(c map[string]any)) string {
	c := map[string]any{
		"iss":  "https://some-shop.myshopify.com/admin",
		"dest": "https://some-shop.myshopify.com",
		"aud":  testAPIKey,
		"sub":  "42",
		"exp":  tokenNow.Add(50 * time.Second).Unix(),
		"nbf":  tokenNow.Add(-10 * time.Second).Unix(),
		"iat":  tokenNow.Add(-10 * time.Second).Unix(),
		"jti":  "f8912129-1af6-4cad-9ca3-76b0f7621087",
		"sid":  "aaea182f2732d44c23057c0fea584021a4485b2bd25d3eb7fd349313ad24c685",
	}
	if edit != nil {
		edit(c)
	}
	b, _ := json.Marshal(c)
	return string(b)
}

const hs256 = `{"alg":"HS256","typ":"JWT"}`

func TestVerifySessionToken(t *testing.T) {
	t.Parallel()
	tok := rawToken(hs256, claims(nil), testAPISecret)
	c, err := shopify.VerifySessionToken(tok, testAPIKey, testAPISecret, tokenNow)
	if err != nil {
		t.Fatal(err)
	}
	want := shopify.SessionClaims{
		Shop: "some-shop.myshopify.com", Issuer: "https://some-shop.myshopify.com/admin", Dest: "https://some-shop.myshopify.com",
		Audience: testAPIKey, Sub: "42", Sid: "aaea182f2732d44c23057c0fea584021a4485b2bd25d3eb7fd349313ad24c685",
		Jti: "f8912129-1af6-4cad-9ca3-76b0f7621087",
		Exp: time.Unix(tokenNow.Add(50*time.Second).Unix(), 0), Nbf: time.Unix(tokenNow.Add(-10*time.Second).Unix(), 0),
		Iat: time.Unix(tokenNow.Add(-10*time.Second).Unix(), 0),
	}
	if c != want {
		t.Fatalf("claims = %+v\nwant %+v", c, want)
	}

	// SignSessionToken issues what VerifySessionToken accepts.
	again, err := shopify.VerifySessionToken(shopify.SignSessionToken(want, testAPISecret), testAPIKey, testAPISecret, tokenNow)
	if err != nil || again != want {
		t.Fatalf("SignSessionToken round trip = %+v, %v", again, err)
	}
	short := shopify.SessionClaims{Shop: "b.myshopify.com", Audience: testAPIKey, Sub: "1", Exp: tokenNow.Add(time.Minute)}
	if c, err := shopify.VerifySessionToken(shopify.SignSessionToken(short, testAPISecret), testAPIKey, testAPISecret, tokenNow); err != nil ||
		c.Shop != "b.myshopify.com" || c.Issuer != "https://b.myshopify.com/admin" || !c.Nbf.IsZero() {
		t.Fatalf("SignSessionToken with defaults = %+v, %v", c, err)
	}
}

func TestVerifySessionTokenAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header string
		edit   func(c map[string]any)
		now    time.Time
	}{
		{name: "aud as an array", edit: func(c map[string]any) { c["aud"] = []string{"other", testAPIKey} }},
		{name: "expired within the skew", now: tokenNow.Add(59 * time.Second)},
		{name: "nbf within the skew", edit: func(c map[string]any) { c["nbf"] = tokenNow.Add(10 * time.Second).Unix() }},
		{name: "no nbf and no iat", edit: func(c map[string]any) { delete(c, "nbf"); delete(c, "iat") }},
		{name: "fractional times", edit: func(c map[string]any) { c["exp"] = float64(tokenNow.Unix()) + 30.5 }},
		{name: "numeric sub", edit: func(c map[string]any) { c["sub"] = 42 }},
		{name: "header without typ", header: `{"alg":"HS256"}`},
		{name: "upper-case shop in dest and iss", edit: func(c map[string]any) {
			c["dest"] = "https://Some-Shop.myshopify.com"
			c["iss"] = "https://Some-Shop.myshopify.com/admin"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			header := tt.header
			if header == "" {
				header = hs256
			}
			now := tt.now
			if now.IsZero() {
				now = tokenNow
			}
			c, err := shopify.VerifySessionToken(rawToken(header, claims(tt.edit), testAPISecret), testAPIKey, testAPISecret, now)
			if err != nil {
				t.Fatal(err)
			}
			if c.Shop != "some-shop.myshopify.com" {
				t.Fatalf("shop = %q", c.Shop)
			}
		})
	}
}

func TestVerifySessionTokenFailures(t *testing.T) {
	t.Parallel()
	good := rawToken(hs256, claims(nil), testAPISecret)
	parts := strings.Split(good, ".")
	enc := base64.RawURLEncoding
	tests := []struct {
		name  string
		token string
		now   time.Time
		want  error
	}{
		{"empty", "", tokenNow, shopify.ErrInvalidToken},
		{"two parts", parts[0] + "." + parts[1], tokenNow, shopify.ErrInvalidToken},
		{"four parts", good + ".x", tokenNow, shopify.ErrInvalidToken},
		{"too long", good + strings.Repeat("A", 9000), tokenNow, shopify.ErrInvalidToken},
		{"header not base64", "!!." + parts[1] + "." + parts[2], tokenNow, shopify.ErrInvalidToken},
		{"header not JSON", enc.EncodeToString([]byte("HS256")) + "." + parts[1] + "." + parts[2], tokenNow, shopify.ErrInvalidToken},
		{"alg none, no signature", enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".", tokenNow, shopify.ErrInvalidToken},
		{"alg none, valid HMAC", rawToken(`{"alg":"none","typ":"JWT"}`, claims(nil), testAPISecret), tokenNow, shopify.ErrInvalidToken},
		{"alg None", rawToken(`{"alg":"None"}`, claims(nil), testAPISecret), tokenNow, shopify.ErrInvalidToken},
		{"alg hs256 lower case", rawToken(`{"alg":"hs256"}`, claims(nil), testAPISecret), tokenNow, shopify.ErrInvalidToken},
		{"alg HS512", rawToken(`{"alg":"HS512"}`, claims(nil), testAPISecret), tokenNow, shopify.ErrInvalidToken},
		{"alg RS256 (key confusion)", rawToken(`{"alg":"RS256","typ":"JWT"}`, claims(nil), testAPISecret), tokenNow, shopify.ErrInvalidToken},
		{"alg missing", rawToken(`{"typ":"JWT"}`, claims(nil), testAPISecret), tokenNow, shopify.ErrInvalidToken},
		{"alg not a string", rawToken(`{"alg":["HS256"]}`, claims(nil), testAPISecret), tokenNow, shopify.ErrInvalidToken},
		{"typ not JWT", rawToken(`{"alg":"HS256","typ":"at+jwt"}`, claims(nil), testAPISecret), tokenNow, shopify.ErrInvalidToken},
		{"crit header", rawToken(`{"alg":"HS256","crit":["exp"]}`, claims(nil), testAPISecret), tokenNow, shopify.ErrInvalidToken},
		{"wrong secret", rawToken(hs256, claims(nil), "another-secret"), tokenNow, shopify.ErrSignature},
		{"signed with the API key", rawToken(hs256, claims(nil), testAPIKey), tokenNow, shopify.ErrSignature},
		{"empty signature", parts[0] + "." + parts[1] + ".", tokenNow, shopify.ErrSignature},
		{"signature not base64url", parts[0] + "." + parts[1] + ".+/+/", tokenNow, shopify.ErrSignature},
		{"signature padded", good + "=", tokenNow, shopify.ErrSignature},
		{"signature truncated", good[:len(good)-2], tokenNow, shopify.ErrSignature},
		{"signature with non-zero padding bits", good[:len(good)-1] + string(b64urlNext(good[len(good)-1])), tokenNow, shopify.ErrSignature},
		{"tampered payload", parts[0] + "." + enc.EncodeToString([]byte(claims(func(c map[string]any) {
			c["dest"] = "https://other-shop.myshopify.com"
			c["iss"] = "https://other-shop.myshopify.com/admin"
		}))) + "." + parts[2], tokenNow, shopify.ErrSignature},
		{"tampered header", enc.EncodeToString([]byte(`{"alg":"HS256", "typ":"JWT"}`)) + "." + parts[1] + "." + parts[2], tokenNow, shopify.ErrSignature},
		{"payload not JSON", rawToken(hs256, "not json", testAPISecret), tokenNow, shopify.ErrInvalidToken},
		{"payload an array", rawToken(hs256, "[]", testAPISecret), tokenNow, shopify.ErrInvalidToken},
		{"expired", good, tokenNow.Add(60 * time.Second), shopify.ErrExpired},
		{"long expired", good, tokenNow.Add(time.Hour), shopify.ErrExpired},
		{"not yet valid", good, tokenNow.Add(-21 * time.Second), shopify.ErrExpired},
		{"nbf beyond the skew", rawToken(hs256, claims(func(c map[string]any) { c["nbf"] = tokenNow.Add(11 * time.Second).Unix() }), testAPISecret), tokenNow, shopify.ErrExpired},
		{"no exp", rawToken(hs256, claims(func(c map[string]any) { delete(c, "exp") }), testAPISecret), tokenNow, shopify.ErrInvalidToken},
		{"exp null", rawToken(hs256, claims(func(c map[string]any) { c["exp"] = nil }), testAPISecret), tokenNow, shopify.ErrInvalidToken},
		{"exp as a string", rawToken(hs256, claims(func(c map[string]any) { c["exp"] = "2030-01-01" }), testAPISecret), tokenNow, shopify.ErrInvalidToken},
		{"exp negative", rawToken(hs256, claims(func(c map[string]any) { c["exp"] = -1 }), testAPISecret), tokenNow, shopify.ErrInvalidToken},
		{"exp huge", rawToken(hs256, claims(func(c map[string]any) { c["exp"] = 1e300 }), testAPISecret), tokenNow, shopify.ErrInvalidToken},
		{"wrong aud", rawToken(hs256, claims(func(c map[string]any) { c["aud"] = "another-app" }), testAPISecret), tokenNow, shopify.ErrInvalidToken},
		{"aud array without the key", rawToken(hs256, claims(func(c map[string]any) { c["aud"] = []string{"a", "b"} }), testAPISecret), tokenNow, shopify.ErrInvalidToken},
		{"no aud", rawToken(hs256, claims(func(c map[string]any) { delete(c, "aud") }), testAPISecret), tokenNow, shopify.ErrInvalidToken},
		{"aud a number", rawToken(hs256, claims(func(c map[string]any) { c["aud"] = 3 }), testAPISecret), tokenNow, shopify.ErrInvalidToken},
		{"dest over http", rawToken(hs256, claims(func(c map[string]any) {
			c["dest"] = "http://some-shop.myshopify.com"
			c["iss"] = "http://some-shop.myshopify.com/admin"
		}), testAPISecret), tokenNow, shopify.ErrInvalidShop},
		{"dest another domain", rawToken(hs256, claims(func(c map[string]any) {
			c["dest"] = "https://evil.com"
			c["iss"] = "https://evil.com/admin"
		}), testAPISecret), tokenNow, shopify.ErrInvalidShop},
		{"dest with a path", rawToken(hs256, claims(func(c map[string]any) {
			c["dest"] = "https://some-shop.myshopify.com/x"
			c["iss"] = "https://some-shop.myshopify.com/x/admin"
		}), testAPISecret), tokenNow, shopify.ErrInvalidShop},
		{"dest with a port", rawToken(hs256, claims(func(c map[string]any) {
			c["dest"] = "https://some-shop.myshopify.com:8443"
			c["iss"] = "https://some-shop.myshopify.com:8443/admin"
		}), testAPISecret), tokenNow, shopify.ErrInvalidShop},
		{"no dest", rawToken(hs256, claims(func(c map[string]any) { delete(c, "dest") }), testAPISecret), tokenNow, shopify.ErrInvalidShop},
		{"iss of another shop", rawToken(hs256, claims(func(c map[string]any) { c["iss"] = "https://other-shop.myshopify.com/admin" }), testAPISecret), tokenNow, shopify.ErrInvalidToken},
		{"iss without /admin", rawToken(hs256, claims(func(c map[string]any) { c["iss"] = "https://some-shop.myshopify.com" }), testAPISecret), tokenNow, shopify.ErrInvalidToken},
		{"iss with a trailing slash", rawToken(hs256, claims(func(c map[string]any) { c["iss"] = "https://some-shop.myshopify.com/admin/" }), testAPISecret), tokenNow, shopify.ErrInvalidToken},
		{"no iss", rawToken(hs256, claims(func(c map[string]any) { delete(c, "iss") }), testAPISecret), tokenNow, shopify.ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := shopify.VerifySessionToken(tt.token, testAPIKey, testAPISecret, tt.now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifySessionToken = %+v, %v; want %v", c, err, tt.want)
			}
			if c != (shopify.SessionClaims{}) {
				t.Fatalf("claims returned with an error: %+v", c)
			}
			t.Log(err)
		})
	}
	for _, key := range [][2]string{{"", testAPISecret}, {testAPIKey, ""}} {
		if _, err := shopify.VerifySessionToken(good, key[0], key[1], tokenNow); !errors.Is(err, shopify.ErrNoSecret) {
			t.Errorf("key %q secret %q: %v", key[0], key[1], err)
		}
	}
}

// FuzzVerifySessionToken checks that VerifySessionToken never panics, never accepts a token whose
// signature is not the HMAC of its own first two parts under the secret, that whatever it accepts
// satisfies every documented rule, and that a token it signed stops verifying when any byte of it
// is flipped.
func FuzzVerifySessionToken(f *testing.F) {
	f.Add(rawToken(hs256, claims(nil), testAPISecret), []byte(claims(nil)), uint(0), byte(1))
	f.Add("e30.e30.", []byte(`{"alg":"none"}`), uint(7), byte(0x20))
	f.Fuzz(func(t *testing.T, token string, payload []byte, pos uint, mask byte) {
		check := func(token string) error {
			c, err := shopify.VerifySessionToken(token, testAPIKey, testAPISecret, tokenNow)
			if err != nil {
				return err
			}
			parts := strings.Split(token, ".")
			if len(parts) != 3 {
				t.Fatalf("accepted %q", token)
			}
			m := hmac.New(sha256.New, []byte(testAPISecret))
			m.Write([]byte(parts[0] + "." + parts[1]))
			if parts[2] != base64.RawURLEncoding.EncodeToString(m.Sum(nil)) {
				t.Fatalf("accepted a token the secret did not sign: %q", token)
			}
			if h, _ := base64.RawURLEncoding.DecodeString(parts[0]); !strings.Contains(string(h), "HS256") {
				t.Fatalf("accepted header %q", h)
			}
			if c.Audience != testAPIKey || !shopify.ValidShopDomain(c.Shop) || c.Issuer != c.Dest+"/admin" ||
				!tokenNow.Before(c.Exp.Add(shopify.SessionTokenSkew)) || tokenNow.Add(shopify.SessionTokenSkew).Before(c.Nbf) {
				t.Fatalf("accepted claims that break a rule: %+v", c)
			}
			return nil
		}
		_ = check(token)

		// A token signed here from the fuzzed payload: it may be accepted or not, but once a byte
		// is flipped it never is.
		signed := rawToken(hs256, string(payload), testAPISecret)
		_ = check(signed)
		if mask == 0 {
			mask = 1
		}
		b := []byte(signed)
		b[pos%uint(len(b))] ^= mask
		if check(string(b)) == nil {
			t.Fatalf("accepted a signed token with byte %d flipped: %q", pos%uint(len(b)), b)
		}
	})
}

// b64urlNext is b64Next for the base64url alphabet.
func b64urlNext(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	return alphabet[strings.IndexByte(alphabet, c)^1]
}
