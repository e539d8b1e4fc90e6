package outbound_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/outbound"
	"github.com/coupongate/coupongate/internal/netguard"
)

// The Standard Webhooks specification's own example.
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specBody      = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignMatchesTheSpecification(t *testing.T) {
	t.Parallel()
	got, err := outbound.Sign(specSecret, specID, specTimestamp, []byte(specBody))
	if err != nil || got != specSignature {
		t.Fatalf("Sign = %q, %v; want %q", got, err, specSignature)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	at := time.Unix(specTimestamp, 0)
	for _, tc := range []struct {
		name       string
		id, ts     string
		signatures string
		body       string
		now        time.Time
		want       bool
	}{
		{"the spec's example", specID, "1614265330", specSignature, specBody, at, true},
		{"among several signatures", specID, "1614265330", "v1,bm90LXRoaXM= " + specSignature, specBody, at, true},
		{"another body", specID, "1614265330", specSignature, `{"test": 1}`, at, false},
		{"another id", "msg_other", "1614265330", specSignature, specBody, at, false},
		{"another timestamp", specID, "1614265331", specSignature, specBody, at, false},
		{"too old", specID, "1614265330", specSignature, specBody, at.Add(10 * time.Minute), false},
		{"from the future", specID, "1614265330", specSignature, specBody, at.Add(-10 * time.Minute), false},
		{"no signature", specID, "1614265330", "", specBody, at, false},
		{"a timestamp that is not one", specID, "soon", specSignature, specBody, at, false},
	} {
		if got := outbound.Verify(specSecret, tc.id, tc.ts, tc.signatures, []byte(tc.body), tc.now, 5*time.Minute); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func FuzzVerify(f *testing.F) {
	f.Add(specID, int64(specTimestamp), []byte(specBody), specSignature)
	f.Add("msg_1", int64(0), []byte{}, "v1,")
	f.Add("", int64(-1), []byte("\x00\xff"), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v2,x")
	f.Fuzz(func(t *testing.T, id string, ts int64, body []byte, signatures string) {
		now := time.Unix(ts, 0)
		_ = outbound.Verify(specSecret, id, "x", signatures, body, now, time.Minute) // never panics
		sig, err := outbound.Sign(specSecret, id, ts, body)
		if err != nil {
			t.Fatal(err)
		}
		stamp := time.Unix(ts, 0).Unix()
		if !outbound.Verify(specSecret, id, itoa(stamp), sig, body, now, time.Minute) {
			t.Fatalf("a signature made by Sign does not verify: id %q ts %d", id, ts)
		}
		if outbound.Verify(specSecret, id+"x", itoa(stamp), sig, body, now, time.Minute) {
			t.Fatal("a signature verifies for another id")
		}
	})
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	var b []byte
	for n != 0 {
		d := n % 10
		if d < 0 {
			d = -d
		}
		b = append([]byte{byte('0' + d)}, b...)
		n /= 10
	}
	if neg {
		b = append([]byte{'-'}, b...)
	}
	return string(b)
}

func TestGuardRefusesPrivateAddresses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	guard := outbound.Guard{}
	for _, u := range []string{"http://127.0.0.1:8080/hook", "https://10.0.0.7/hook", "http://[::1]/", "http://169.254.169.254/latest",
		"http://localhost:9000/", "https://192.168.1.20/x", "http://[::ffff:127.0.0.1]/", "http://100.64.0.1/", "http://[fd00::1]/"} {
		if err := guard.CheckURL(ctx, u); !errors.Is(err, core.ErrPrivateEndpoint) {
			t.Errorf("%s: %v, want refused", u, err)
		}
	}
	if err := guard.CheckURL(ctx, "https://93.184.215.14/hook"); err != nil {
		t.Errorf("a public address was refused: %v", err)
	}
	if err := (outbound.Guard{AllowPrivate: true}).CheckURL(ctx, "http://127.0.0.1/"); err != nil {
		t.Errorf("allowed private address refused: %v", err)
	}
	// The dialer refuses too, whatever the name resolved to when it was checked.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer srv.Close()
	if _, err := guard.Client(5 * time.Second).Get(strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)); !errors.Is(err, netguard.ErrForbidden) {
		t.Fatalf("the guarded client reached a loopback address by name, or failed otherwise: %v", err)
	}
	resp, err := (outbound.Guard{AllowPrivate: true}).Client(5 * time.Second).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}
