package woocommerce_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/coupongate/coupongate/integrations/woocommerce"
)

// hmacB64 is the signature computed independently: base64 of HMAC-SHA256(body) keyed with key as is.
func hmacB64(body []byte, key string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestSignWebhook(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":963,"status":"processing"}`)
	if got, want := woocommerce.SignWebhook(body, "s3cret"), hmacB64(body, "s3cret"); got != want {
		t.Fatalf("SignWebhook = %s, want %s", got, want)
	}
	// Fixed vectors: the HMAC-SHA256 of the pangram in base64, computed with Python's hmac module.
	fox := []byte("The quick brown fox jumps over the lazy dog")
	for secret, want := range map[string]string{
		"key":     "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg=",
		"a&amp;b": "sPfFeu5a3cctHRQGfM7PtCdmRcrtCrQm2Bn8RojZsKw=", // keyed with "a&b"
	} {
		if got := woocommerce.SignWebhook(fox, secret); got != want {
			t.Errorf("SignWebhook(fox, %q) = %s, want %s", secret, got, want)
		}
	}
}

// TestSignWebhookSecretEntities checks the key WooCommerce signs with: the secret after
// wp_specialchars_decode(secret, ENT_QUOTES), which decodes &amp; &lt; &gt; &quot; &#039; (and
// the zero-padded or hex spellings of these five characters) in a single pass, and nothing else.
func TestSignWebhookSecretEntities(t *testing.T) {
	t.Parallel()
	tests := []struct{ secret, key string }{
		{"plain", "plain"},
		{"", ""},
		{"a&b", "a&b"},
		{"a&amp;b", "a&b"},
		{"&lt;&gt;&quot;&#039;", `<>"'`},
		{"&#39;", "'"},
		{"&#0039;", "'"},
		{"&#x27;", "'"},
		{"&#X27;", "'"},
		{"&#x0027;", "'"},
		{"&#34;&#034;&#x22;&#X022;", `""""`},
		{"&#60;&#060;&#62;&#00062;", "<<>>"},
		{"&#38;&#038;&#x26;&#X0026;", "&&&&"},
		{"&amp;lt;", "&lt;"},        // one pass: decoded text is not decoded again
		{"&amp;amp;", "&amp;"},      // idem
		{"&#0&#038;39;", "&#0&39;"}, // idem, after the zero-padding step
		{"&AMP;&Lt;", "&AMP;&Lt;"},  // named entities are case-sensitive
		{"&apos;&nbsp;&copy;", "&apos;&nbsp;&copy;"},
		{"&#65;&#x41;&#x3C;&#x3c;", "&#65;&#x41;&#x3C;&#x3c;"}, // only the five characters
		{"&quot&amp", "&quot&amp"},                             // no semicolon, no entity
		{"&&amp;;", "&&;"},
		{"p@ss&amp;w0rd&lt;(!)&#039;-~", "p@ss&w0rd<(!)'-~"},
	}
	body := []byte(`{"id":1}`)
	for _, tt := range tests {
		got := woocommerce.SignWebhook(body, tt.secret)
		if want := hmacB64(body, tt.key); got != want {
			t.Errorf("SignWebhook with secret %q does not sign with the key %q", tt.secret, tt.key)
		}
		if tt.secret != "" && !woocommerce.VerifyWebhook(body, hmacB64(body, tt.key), tt.secret) {
			t.Errorf("VerifyWebhook with secret %q refuses the signature WooCommerce makes with key %q", tt.secret, tt.key)
		}
	}
}

func TestVerifyWebhook(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":963,"status":"processing","coupon_lines":[{"code":"30$off"}]}`)
	good := hmacB64(body, "s3cret")
	sum, _ := base64.StdEncoding.DecodeString(good)
	lastByte := append([]byte{}, sum...)
	lastByte[31] ^= 1
	// The 43rd character of a 32-byte digest carries 4 bits and 2 zero padding bits; setting one of
	// those gives another spelling of the same digest, which a strict decoder refuses.
	noncanonical := good[:42] + string(b64Next(good[42])) + "="
	tests := []struct {
		name      string
		body      []byte
		signature string
		secret    string
		want      bool
	}{
		{"valid", body, good, "s3cret", true},
		{"valid with surrounding space", body, "  " + good + "\t", "s3cret", true},
		{"empty body signed", nil, hmacB64(nil, "s3cret"), "s3cret", true},
		{"secret stored with an entity", body, hmacB64(body, "a&b"), "a&amp;b", true},
		{"empty secret", body, hmacB64(body, ""), "", false},
		{"empty signature", body, "", "s3cret", false},
		{"blank signature", body, "   ", "s3cret", false},
		{"wrong secret", body, good, "other", false},
		{"secret differs in case", body, good, "S3cret", false},
		{"not base64", body, "not base64!", "s3cret", false},
		{"hex digest instead of base64", body, strings.Repeat("ab", 32), "s3cret", false},
		{"unpadded base64", body, strings.TrimRight(good, "="), "s3cret", false},
		{"url-safe alphabet", body, base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xff}, 16)), "s3cret", false},
		{"too short", body, base64.StdEncoding.EncodeToString(sum[:16]), "s3cret", false},
		{"too long", body, base64.StdEncoding.EncodeToString(append(append([]byte{}, sum...), 0)), "s3cret", false},
		{"newline inside", body, good[:10] + "\n" + good[10:], "s3cret", false},
		{"last digest byte changed", body, base64.StdEncoding.EncodeToString(lastByte), "s3cret", false},
		{"non-canonical base64 spelling", body, noncanonical, "s3cret", false},
		{"sha1 digest", body, base64.StdEncoding.EncodeToString(sum[:20]), "s3cret", false},
		{"tampered body", bytes.Replace(body, []byte("30$off"), []byte("31$off"), 1), good, "s3cret", false},
		{"body with trailing newline", append(append([]byte{}, body...), '\n'), good, "s3cret", false},
		{"signature of another body", body, hmacB64([]byte("{}"), "s3cret"), "s3cret", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := woocommerce.VerifyWebhook(tt.body, tt.signature, tt.secret); got != tt.want {
				t.Fatalf("VerifyWebhook = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestVerifyWebhookFixtures signs and verifies the real order bodies byte for byte.
func TestVerifyWebhookFixtures(t *testing.T) {
	t.Parallel()
	for name, body := range orderFixtures(t) {
		sig := woocommerce.SignWebhook(body, "s3cret")
		if !woocommerce.VerifyWebhook(body, sig, "s3cret") {
			t.Errorf("%s: own signature refused", name)
		}
		tampered := append([]byte{}, body...)
		tampered[len(tampered)/2] ^= 1
		if woocommerce.VerifyWebhook(tampered, sig, "s3cret") {
			t.Errorf("%s: tampered body accepted", name)
		}
	}
}

func TestPingWebhookID(t *testing.T) {
	t.Parallel()
	const form = "application/x-www-form-urlencoded"
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	tests := []struct {
		name   string
		header http.Header
		body   string
		id     string
		ok     bool
	}{
		{"no content type", hdr(), "webhook_id=12", "12", true},
		{"nil header", nil, "webhook_id=12", "12", true},
		{"form", hdr("Content-Type", form), "webhook_id=12", "12", true},
		{"form with charset (WordPress Requests, fsockopen)", hdr("Content-Type", form+"; charset=UTF-8"), "webhook_id=4021", "4021", true},
		{"media type in another case", hdr("content-type", "Application/X-WWW-Form-URLEncoded;Charset=utf-8"), "webhook_id=7", "7", true},
		{"with WooCommerce's user agent", hdr("User-Agent", "WooCommerce/9.0.0 Hookshot (WordPress/6.5)", "Content-Type", form), "webhook_id=7", "7", true},
		{"leading zeros", hdr(), "webhook_id=007", "7", true},
		{"largest id", hdr(), "webhook_id=18446744073709551615", "18446744073709551615", true},
		{"signature header", hdr(woocommerce.HeaderSignature, "abc="), "webhook_id=12", "", false},
		{"empty signature header", hdr(woocommerce.HeaderSignature, ""), "webhook_id=12", "", false},
		{"signature header in another case", hdr("x-wc-webhook-signature", "abc="), "webhook_id=12", "", false},
		{"json content type", hdr("Content-Type", "application/json"), "webhook_id=12", "", false},
		{"multipart", hdr("Content-Type", "multipart/form-data; boundary=x"), "webhook_id=12", "", false},
		{"malformed content type", hdr("Content-Type", "application/x-www-form-urlencoded; ="), "webhook_id=12", "", false},
		{"two content types", hdr("Content-Type", form, "Content-Type", form), "webhook_id=12", "", false},
		{"empty body", hdr(), "", "", false},
		{"no digits", hdr(), "webhook_id=", "", false},
		{"zero", hdr(), "webhook_id=0", "", false},
		{"negative", hdr(), "webhook_id=-1", "", false},
		{"plus sign", hdr(), "webhook_id=+1", "", false},
		{"letters", hdr(), "webhook_id=12a", "", false},
		{"overflow", hdr(), "webhook_id=18446744073709551616", "", false},
		{"too many digits", hdr(), "webhook_id=000000000000000000001", "", false},
		{"another field", hdr(), "webhook_id=12&x=1", "", false},
		{"field before", hdr(), "x=1&webhook_id=12", "", false},
		{"trailing newline", hdr(), "webhook_id=12\n", "", false},
		{"leading space", hdr(), " webhook_id=12", "", false},
		{"escaped digits", hdr(), "webhook_id=%31%32", "", false},
		{"key in another case", hdr(), "Webhook_ID=12", "", false},
		{"json body", hdr("Content-Type", "application/json"), `{"webhook_id":12}`, "", false},
		{"a signed order delivery", hdr("Content-Type", "application/json", woocommerce.HeaderSignature, "x", woocommerce.HeaderTopic, "order.updated"), `{"id":1}`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, ok := woocommerce.PingWebhookID(tt.header, []byte(tt.body))
			if id != tt.id || ok != tt.ok {
				t.Fatalf("PingWebhookID = %q, %v; want %q, %v", id, ok, tt.id, tt.ok)
			}
		})
	}
}

// FuzzVerifyWebhook checks that VerifyWebhook never panics, that a signature SignWebhook made
// always verifies, that flipping any byte of the body or of the signature makes it fail, and that
// a secret whose "&" are all written "&amp;" signs with the secret itself as the key.
func FuzzVerifyWebhook(f *testing.F) {
	f.Add([]byte(`{"id":1}`), "", "s3cret", uint(0), byte(1))
	f.Add([]byte{}, "AAAA", "", uint(3), byte(0x80))
	f.Add([]byte(`{"id":963}`), "x", "a&amp;b&#039;", uint(5), byte(0x20))
	f.Fuzz(func(t *testing.T, body []byte, signature, secret string, pos uint, mask byte) {
		_ = woocommerce.VerifyWebhook(body, signature, secret) // any input: no panic
		if woocommerce.VerifyWebhook(body, signature, "") {
			t.Fatal("verified with an empty secret")
		}
		if secret == "" {
			secret = "s3cret"
		}
		if mask == 0 {
			mask = 1
		}
		sig := woocommerce.SignWebhook(body, secret)
		if !woocommerce.VerifyWebhook(body, sig, secret) {
			t.Fatalf("own signature %q refused", sig)
		}
		if escaped := strings.ReplaceAll(secret, "&", "&amp;"); woocommerce.SignWebhook(body, escaped) != hmacB64(body, secret) {
			t.Fatalf("secret %q does not sign with the key %q", escaped, secret)
		}
		if len(body) > 0 {
			b := append([]byte{}, body...)
			b[pos%uint(len(b))] ^= mask
			if woocommerce.VerifyWebhook(b, sig, secret) {
				t.Fatalf("accepted a body with byte %d flipped", pos%uint(len(b)))
			}
		}
		s := []byte(sig)
		s[pos%uint(len(s))] ^= mask
		if woocommerce.VerifyWebhook(body, string(s), secret) {
			t.Fatalf("accepted signature %q with byte %d flipped", s, pos%uint(len(s)))
		}
	})
}

// FuzzPingWebhookID checks that PingWebhookID never panics, that a signed request is never a
// ping, and that what it accepts is exactly "webhook_id=" and digits naming the id it returns.
func FuzzPingWebhookID(f *testing.F) {
	f.Add("application/x-www-form-urlencoded; charset=UTF-8", false, []byte("webhook_id=12"))
	f.Add("", true, []byte("webhook_id=12"))
	f.Add("application/json", false, []byte(`{"id":1}`))
	f.Fuzz(func(t *testing.T, contentType string, signed bool, body []byte) {
		h := http.Header{}
		if contentType != "" {
			h.Set("Content-Type", contentType)
		}
		if signed {
			h.Set(woocommerce.HeaderSignature, woocommerce.SignWebhook(body, "s3cret"))
		}
		id, ok := woocommerce.PingWebhookID(h, body)
		if !ok {
			if id != "" {
				t.Fatalf("not a ping, yet id %q", id)
			}
			return
		}
		if signed {
			t.Fatal("a signed request taken for a ping")
		}
		digits, found := strings.CutPrefix(string(body), "webhook_id=")
		n, err := strconv.ParseUint(digits, 10, 64)
		if !found || err != nil || n == 0 || strings.Trim(digits, "0123456789") != "" || strconv.FormatUint(n, 10) != id {
			t.Fatalf("body %q taken for the ping of webhook %q", body, id)
		}
		if again, ok := woocommerce.PingWebhookID(nil, []byte("webhook_id="+id)); !ok || again != id {
			t.Fatalf("canonical ping of %q = %q, %v", id, again, ok)
		}
	})
}

// b64Next returns the base64 character whose value is c's with the lowest bit flipped: the same
// high bits, so a lenient decoder reads the same bytes when c is the last character.
func b64Next(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	return alphabet[strings.IndexByte(alphabet, c)^1]
}
