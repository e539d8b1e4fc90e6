package messaging_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coupongate/coupongate/integrations/messaging"
	"github.com/coupongate/coupongate/integrations/messaging/messagingfake"
)

// editJSON returns the service-account JSON with fields replaced (nil deletes one).
func editJSON(t *testing.T, sa []byte, changes map[string]any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(sa, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range changes {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pemOf(t *testing.T, typ string, der []byte) string {
	t.Helper()
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func TestParseServiceAccount(t *testing.T) {
	t.Parallel()
	fcm := messagingfake.NewFCM(t)
	good := fcm.ServiceAccountJSON()

	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	small, _ := x509.MarshalPKCS8PrivateKey(rsa1024)

	tests := []struct {
		name string
		json []byte
		want string // "" = valid
	}{
		{"fake's key file", good, ""},
		{"PKCS #1 key", editJSON(t, good, map[string]any{"private_key": pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa2048))}), ""},
		{"https token_uri", editJSON(t, good, map[string]any{"token_uri": "https://oauth2.googleapis.com/token"}), ""},
		{"not JSON", []byte(`{"type": "service_account", "private_key": "-----BEGIN`), "not JSON"},
		{"JSON of the wrong shape", []byte(`["service_account"]`), "not a service-account key file"},
		{"authorized_user file", editJSON(t, good, map[string]any{"type": "authorized_user"}), "not service_account"},
		{"no project", editJSON(t, good, map[string]any{"project_id": nil}), "project_id"},
		{"no key id", editJSON(t, good, map[string]any{"private_key_id": ""}), "private_key_id"},
		{"no client_email", editJSON(t, good, map[string]any{"client_email": nil}), "client_email"},
		{"http token_uri to a remote host", editJSON(t, good, map[string]any{"token_uri": "http://oauth2.googleapis.com/token"}), "token_uri"},
		{"relative token_uri", editJSON(t, good, map[string]any{"token_uri": "/token"}), "token_uri"},
		{"no key", editJSON(t, good, map[string]any{"private_key": nil}), "private_key is missing"},
		{"key not PEM", editJSON(t, good, map[string]any{"private_key": "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"}), "not PEM"},
		{"EC key", editJSON(t, good, map[string]any{"private_key": pemOf(t, "PRIVATE KEY", ecDER)}), "not an RSA key"},
		{"1024-bit key", editJSON(t, good, map[string]any{"private_key": pemOf(t, "PRIVATE KEY", small)}), "1024 bits"},
		{"certificate instead of key", editJSON(t, good, map[string]any{"private_key": pemOf(t, "CERTIFICATE", []byte{1, 2, 3})}), "not a private key"},
		{"garbled PKCS #8", editJSON(t, good, map[string]any{"private_key": pemOf(t, "PRIVATE KEY", []byte("garbage-key-bytes"))}), "not a valid PKCS #8 key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sa, err := messaging.ParseServiceAccount(tc.json)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("ParseServiceAccount: %v", err)
				}
				if sa.ProjectID != messagingfake.FCMProjectID || sa.ClientEmail == "" || sa.PrivateKeyID == "" {
					t.Fatalf("parsed %v", sa)
				}
				if s := fmt.Sprintf("%v %+v %#v", sa, sa, sa); strings.Contains(s, "BEGIN") || strings.Contains(s, "PRIVATE KEY-") {
					t.Fatalf("ServiceAccount prints its key: %s", s)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseServiceAccount = %v, want it to mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "MII") || strings.Contains(err.Error(), "BEGIN") || strings.Contains(err.Error(), "garbage-key") {
				t.Fatalf("error quotes the key: %v", err)
			}
		})
	}
}

func TestPushSend(t *testing.T) {
	t.Parallel()
	fcm := messagingfake.NewFCM(t)
	p, err := messaging.NewPushSender(fcm.Settings())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, token, title, body string
		data                     map[string]string
	}{
		{"notification with data", "dev-token-1", "Your code", "SAVE10 is yours", map[string]string{"code": "SAVE10", "list": "7"}},
		{"notification only", "dev-token-2", "Hello", "World", nil},
		{"data only", "dev:token_3-x.y", "", "", map[string]string{"code": "SAVE20"}},
	}
	// Not parallel: each case reads the fake's last message, and after them one token must have served all three.
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name, err := p.Send(context.Background(), tc.token, tc.title, tc.body, tc.data)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if !strings.HasPrefix(name, "projects/"+messagingfake.FCMProjectID+"/messages/") {
				t.Fatalf("name %q", name)
			}
			msgs := fcm.Messages()
			got := msgs[len(msgs)-1]
			if got.Name != name || got.Token != tc.token || got.Title != tc.title || got.Body != tc.body || len(got.Data) != len(tc.data) {
				t.Fatalf("fake got %+v", got)
			}
			for k, v := range tc.data {
				if got.Data[k] != v {
					t.Fatalf("data %q = %q, want %q", k, got.Data[k], v)
				}
			}
		})
	}
	if fcm.Tokens() != 1 {
		t.Fatalf("%d access tokens minted for 3 sends, want 1 (cached)", fcm.Tokens())
	}
}

func TestPushTokenCachedAcrossConcurrentSends(t *testing.T) {
	t.Parallel()
	fcm := messagingfake.NewFCM(t)
	p, err := messaging.NewPushSender(fcm.Settings())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := p.Send(context.Background(), fmt.Sprintf("dev-%d", i), "t", "b", nil)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(fcm.Messages()) != 40 || fcm.Tokens() != 1 {
		t.Fatalf("%d messages with %d tokens minted, want 40 with 1", len(fcm.Messages()), fcm.Tokens())
	}
}

func TestPushRefreshesTheToken(t *testing.T) {
	t.Parallel()
	t.Run("after the token was revoked (401)", func(t *testing.T) {
		t.Parallel()
		fcm := messagingfake.NewFCM(t)
		p, _ := messaging.NewPushSender(fcm.Settings())
		if _, err := p.Send(context.Background(), "dev-1", "a", "b", nil); err != nil {
			t.Fatal(err)
		}
		fcm.ExpireTokens()
		if _, err := p.Send(context.Background(), "dev-1", "a", "b", nil); err != nil {
			t.Fatalf("Send after the token expired: %v", err)
		}
		if fcm.Tokens() != 2 || len(fcm.Messages()) != 2 {
			t.Fatalf("%d tokens, %d messages; want 2 and 2", fcm.Tokens(), len(fcm.Messages()))
		}
	})
	t.Run("after one 401", func(t *testing.T) {
		t.Parallel()
		fcm := messagingfake.NewFCM(t)
		p, _ := messaging.NewPushSender(fcm.Settings())
		fcm.FailNext(1, http.StatusUnauthorized, "")
		if _, err := p.Send(context.Background(), "dev-1", "a", "b", nil); err != nil {
			t.Fatalf("Send: %v", err)
		}
		if fcm.Tokens() != 2 {
			t.Fatalf("%d tokens minted, want 2", fcm.Tokens())
		}
	})
	t.Run("two 401s in a row are permanent", func(t *testing.T) {
		t.Parallel()
		fcm := messagingfake.NewFCM(t)
		p, _ := messaging.NewPushSender(fcm.Settings())
		fcm.FailNext(2, http.StatusUnauthorized, "")
		_, err := p.Send(context.Background(), "dev-1", "a", "b", nil)
		if se := sendErr(t, err); !se.Permanent || se.Code != messaging.CodeAuth || !messaging.IsAuth(err) {
			t.Fatalf("got %v", err)
		}
		if fcm.Tokens() != 2 {
			t.Fatalf("%d tokens minted, want 2", fcm.Tokens())
		}
		if _, err := p.Send(context.Background(), "dev-1", "a", "b", nil); err != nil {
			t.Fatalf("Send once the 401s passed: %v", err)
		}
	})
	t.Run("when the cached token nears its expiry", func(t *testing.T) {
		t.Parallel()
		fcm := messagingfake.NewFCM(t)
		fcm.SetTokenLifetime(2 * time.Second) // cached for half of it
		p, _ := messaging.NewPushSender(fcm.Settings())
		start := time.Now()
		p.SetClock(func() time.Time { return start })
		for range 3 {
			if _, err := p.Send(context.Background(), "dev-1", "a", "b", nil); err != nil {
				t.Fatal(err)
			}
		}
		if fcm.Tokens() != 1 {
			t.Fatalf("%d tokens minted, want 1", fcm.Tokens())
		}
		p.SetClock(func() time.Time { return start.Add(900 * time.Millisecond) }) // within the cached half
		if _, err := p.Send(context.Background(), "dev-1", "a", "b", nil); err != nil {
			t.Fatal(err)
		}
		if fcm.Tokens() != 1 {
			t.Fatalf("%d tokens minted before the cache expired, want 1", fcm.Tokens())
		}
		p.SetClock(func() time.Time { return start.Add(1100 * time.Millisecond) })
		if _, err := p.Send(context.Background(), "dev-1", "a", "b", nil); err != nil {
			t.Fatal(err)
		}
		if fcm.Tokens() != 2 {
			t.Fatalf("%d tokens minted after the cache expired, want 2", fcm.Tokens())
		}
	})
}

func TestPushErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		prepare   func(*messagingfake.FCM)
		settings  func(*testing.T, messaging.FCMSettings) messaging.FCMSettings
		token     string
		data      map[string]string
		permanent bool
		code      string
		wait      time.Duration
	}{
		{name: "unregistered", prepare: func(f *messagingfake.FCM) { f.Unregister("old-device") }, token: "old-device",
			permanent: true, code: "UNREGISTERED"},
		{name: "sender mismatch", prepare: func(f *messagingfake.FCM) { f.MismatchSender("other-app") }, token: "other-app",
			permanent: true, code: "SENDER_ID_MISMATCH"},
		{name: "malformed token", token: "not a token!", permanent: true, code: "INVALID_ARGUMENT"},
		{name: "reserved data key", token: "dev-1", data: map[string]string{"from": "x"}, permanent: true, code: "INVALID_ARGUMENT"},
		{name: "payload too big", token: "dev-1", data: map[string]string{"blob": strings.Repeat("x", 5000)}, permanent: true, code: "INVALID_ARGUMENT"},
		{name: "empty token", token: " ", permanent: true, code: messaging.CodeInvalid},
		{name: "quota exceeded with Retry-After", prepare: func(f *messagingfake.FCM) { f.FailNext(1, 429, "30") }, token: "dev-1",
			code: "QUOTA_EXCEEDED", wait: 30 * time.Second},
		{name: "quota exceeded without Retry-After", prepare: func(f *messagingfake.FCM) { f.FailNext(1, 429, "") }, token: "dev-1",
			code: "QUOTA_EXCEEDED", wait: messaging.DefaultPushQuotaWait},
		{name: "unavailable", prepare: func(f *messagingfake.FCM) { f.FailNext(1, 503, "5") }, token: "dev-1",
			code: "UNAVAILABLE", wait: 5 * time.Second},
		{name: "internal", prepare: func(f *messagingfake.FCM) { f.FailNext(1, 500, "") }, token: "dev-1", code: "INTERNAL"},
		{name: "service account revoked", prepare: func(f *messagingfake.FCM) { f.RevokeServiceAccount() }, token: "dev-1",
			permanent: true, code: messaging.CodeAuth},
		{name: "assertion for another account", token: "dev-1", permanent: true, code: messaging.CodeAuth,
			settings: func(t *testing.T, s messaging.FCMSettings) messaging.FCMSettings {
				s.ServiceAccount = editJSON(t, s.ServiceAccount, map[string]any{"client_email": "intruder@evil.iam.gserviceaccount.com"})
				return s
			}},
		{name: "wrong project", token: "dev-1", permanent: true, code: messaging.CodeAuth,
			settings: func(t *testing.T, s messaging.FCMSettings) messaging.FCMSettings {
				s.ServiceAccount = editJSON(t, s.ServiceAccount, map[string]any{"project_id": "someone-else"})
				return s
			}},
		{name: "FCM unreachable", token: "dev-1", code: messaging.CodeNetwork,
			settings: func(t *testing.T, s messaging.FCMSettings) messaging.FCMSettings {
				srv := httptest.NewServer(http.NotFoundHandler())
				s.BaseURL = srv.URL
				srv.Close()
				return s
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fcm := messagingfake.NewFCM(t)
			s := fcm.Settings()
			if tc.settings != nil {
				s = tc.settings(t, s)
			}
			if tc.prepare != nil {
				tc.prepare(fcm)
			}
			p, err := messaging.NewPushSender(s)
			if err != nil {
				t.Fatal(err)
			}
			name, err := p.Send(context.Background(), tc.token, "Your code", "SAVE10", tc.data)
			if name != "" {
				t.Fatalf("name %q with an error", name)
			}
			se := sendErr(t, err)
			if se.Permanent != tc.permanent || se.Code != tc.code || se.Wait != tc.wait || se.Channel != messaging.ChannelPush {
				t.Fatalf("got %+v (%v), want permanent=%v code=%q wait=%s", se, err, tc.permanent, tc.code, tc.wait)
			}
			noSecret(t, err, "ya29.", "PRIVATE KEY", "eyJ")
		})
	}
}

// TestPushClassifiesFCMAnswers checks answers the fake does not make.
func TestPushClassifiesFCMAnswers(t *testing.T) {
	t.Parallel()
	fcm := messagingfake.NewFCM(t)
	tests := []struct {
		name      string
		status    int
		body      string
		permanent bool
		code      string
	}{
		{"third-party auth error", 401, `{"error":{"code":401,"message":"Auth error from APNS or Web Push Service","status":"UNAUTHENTICATED","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"THIRD_PARTY_AUTH_ERROR"}]}}`, true, "THIRD_PARTY_AUTH_ERROR"},
		{"permission denied", 403, `{"error":{"code":403,"message":"Permission 'cloudmessaging.messages.create' denied","status":"PERMISSION_DENIED"}}`, true, messaging.CodeAuth},
		{"not found without detail", 404, `{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND"}}`, true, "NOT_FOUND"},
		{"400 without body", 400, ``, true, "400"},
		{"502 from a proxy", 502, `<html>bad gateway</html>`, false, "502"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			s := fcm.Settings()
			s.BaseURL = srv.URL
			p, err := messaging.NewPushSender(s)
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Send(context.Background(), "dev-1", "a", "b", nil)
			se := sendErr(t, err)
			if se.Permanent != tc.permanent || se.Code != tc.code {
				t.Fatalf("got %+v, want permanent=%v code=%q", se, tc.permanent, tc.code)
			}
		})
	}
	// 200 with an unreadable answer: FCM took the message, so it is sent (a retry would send it
	// twice), without its name.
	for _, body := range []string{`{}`, `{"name": "projects/`} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(body)) }))
		s := fcm.Settings()
		s.BaseURL = srv.URL
		p, err := messaging.NewPushSender(s)
		if err != nil {
			t.Fatal(err)
		}
		name, err := p.Send(context.Background(), "dev-1", "a", "b", nil)
		srv.Close()
		if err != nil || name != "" {
			t.Fatalf("200 %q: name %q, err %v; want sent without a name", body, name, err)
		}
	}
}

func TestPushContextCanceled(t *testing.T) {
	t.Parallel()
	fcm := messagingfake.NewFCM(t)
	p, _ := messaging.NewPushSender(fcm.Settings())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.Send(ctx, "dev-1", "a", "b", nil)
	if se := sendErr(t, err); se.Permanent || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if len(fcm.Messages()) != 0 {
		t.Fatal("a message went out")
	}
}

func TestNewPushSenderRefusesBadSettings(t *testing.T) {
	t.Parallel()
	fcm := messagingfake.NewFCM(t)
	tests := []struct {
		name string
		s    messaging.FCMSettings
		want string
	}{
		{"no service account", messaging.FCMSettings{}, "service account"},
		{"plain http base URL", messaging.FCMSettings{BaseURL: "http://fcm.example.com", ServiceAccount: fcm.ServiceAccountJSON()}, "not https"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := messaging.NewPushSender(tc.s); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewPushSender = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
