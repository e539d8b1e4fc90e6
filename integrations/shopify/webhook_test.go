package shopify_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/coupongate/coupongate/integrations/shopify"
)

func TestVerifyWebhook(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":450789469,"financial_status":"paid"}`)
	m := hmac.New(sha256.New, []byte("s3cret"))
	m.Write(body)
	good := base64.StdEncoding.EncodeToString(m.Sum(nil))
	if got := shopify.SignWebhook(body, "s3cret"); got != good {
		t.Fatalf("SignWebhook = %s, want %s", got, good)
	}
	hexSig := strings.Repeat("ab", 32)
	lastByte := m.Sum(nil)
	lastByte[31] ^= 1
	// The 43rd character of a 32-byte digest carries 4 bits and 2 zero padding bits; setting one of
	// those gives another spelling of the same digest, which a strict decoder refuses.
	noncanonical := good[:42] + string(b64Next(good[42])) + "="
	tests := []struct {
		name    string
		body    []byte
		header  string
		secrets []string
		want    error
	}{
		{"valid", body, good, []string{"s3cret"}, nil},
		{"valid with surrounding space", body, " " + good + " ", []string{"s3cret"}, nil},
		{"new secret during rotation", body, good, []string{"new", "s3cret"}, nil},
		{"old secret during rotation", body, good, []string{"s3cret", "new"}, nil},
		{"empty secrets skipped", body, good, []string{"", "s3cret"}, nil},
		{"empty body signed", nil, shopify.SignWebhook(nil, "s3cret"), []string{"s3cret"}, nil},
		{"missing header", body, "", []string{"s3cret"}, shopify.ErrSignature},
		{"blank header", body, "   ", []string{"s3cret"}, shopify.ErrSignature},
		{"not base64", body, "not base64!", []string{"s3cret"}, shopify.ErrSignature},
		{"hex digest instead of base64", body, hexSig, []string{"s3cret"}, shopify.ErrSignature},
		{"unpadded base64", body, strings.TrimRight(good, "="), []string{"s3cret"}, shopify.ErrSignature},
		{"url-safe alphabet", body, base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xff}, 16)), []string{"s3cret"}, shopify.ErrSignature},
		{"too short", body, base64.StdEncoding.EncodeToString(make([]byte, 16)), []string{"s3cret"}, shopify.ErrSignature},
		{"too long", body, base64.StdEncoding.EncodeToString(make([]byte, 33)), []string{"s3cret"}, shopify.ErrSignature},
		{"newline inside", body, good[:10] + "\n" + good[10:], []string{"s3cret"}, shopify.ErrSignature},
		{"wrong secret", body, good, []string{"other"}, shopify.ErrSignature},
		{"last digest byte changed", body, base64.StdEncoding.EncodeToString(lastByte), []string{"s3cret"}, shopify.ErrSignature},
		{"non-canonical base64 spelling", body, noncanonical, []string{"s3cret"}, shopify.ErrSignature},
		{"tampered body", []byte(`{"id":450789469,"financial_status":"paiD"}`), good, []string{"s3cret"}, shopify.ErrSignature},
		{"body with trailing newline", append(append([]byte{}, body...), '\n'), good, []string{"s3cret"}, shopify.ErrSignature},
		{"signature of another body", body, shopify.SignWebhook([]byte("{}"), "s3cret"), []string{"s3cret"}, shopify.ErrSignature},
		{"no secret", body, good, nil, shopify.ErrNoSecret},
		{"only empty secrets", body, good, []string{"", ""}, shopify.ErrNoSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := shopify.VerifyWebhook(tt.body, tt.header, tt.secrets...)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("VerifyWebhook = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestVerifyWebhookFixtures signs and verifies the real order bodies byte for byte.
func TestVerifyWebhookFixtures(t *testing.T) {
	t.Parallel()
	for name, body := range readFixtures(t) {
		sig := shopify.SignWebhook(body, "s3cret")
		if err := shopify.VerifyWebhook(body, sig, "s3cret"); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		tampered := append([]byte{}, body...)
		tampered[len(tampered)/2] ^= 1
		if err := shopify.VerifyWebhook(tampered, sig, "s3cret"); !errors.Is(err, shopify.ErrSignature) {
			t.Errorf("%s tampered: %v", name, err)
		}
	}
}

// FuzzVerifyWebhook checks that VerifyWebhook never panics, that a signature computed for a body
// always verifies (also as the second secret of a rotation), and that flipping any byte of the
// body or of the signature makes it fail.
func FuzzVerifyWebhook(f *testing.F) {
	f.Add([]byte(`{"id":1}`), "", "s3cret", uint(0), byte(1))
	f.Add([]byte{}, "AAAA", "", uint(3), byte(0x80))
	f.Fuzz(func(t *testing.T, body []byte, header, secret string, pos uint, mask byte) {
		_ = shopify.VerifyWebhook(body, header, "fixed-secret", secret) // any input: no panic
		if secret == "" {
			secret = "s3cret"
		}
		if mask == 0 {
			mask = 1
		}
		sig := shopify.SignWebhook(body, secret)
		if err := shopify.VerifyWebhook(body, sig, "not-"+secret, secret); err != nil {
			t.Fatalf("own signature refused: %v", err)
		}
		if len(body) > 0 {
			b := append([]byte{}, body...)
			b[pos%uint(len(b))] ^= mask
			if err := shopify.VerifyWebhook(b, sig, secret); err == nil {
				t.Fatalf("accepted a body with byte %d flipped", pos%uint(len(b)))
			}
		}
		s := []byte(sig)
		s[pos%uint(len(s))] ^= mask
		if err := shopify.VerifyWebhook(body, string(s), secret); err == nil {
			t.Fatalf("accepted signature %q with byte %d flipped", s, pos%uint(len(s)))
		}
	})
}

// b64Next returns the base64 character whose value is c's with the lowest bit flipped: the same
// high bits, so a lenient decoder reads the same bytes when c is the last character.
func b64Next(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	return alphabet[strings.IndexByte(alphabet, c)^1]
}
