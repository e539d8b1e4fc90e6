package messagingfake

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coupongate/coupongate/integrations/messaging"
)

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		t.Fatalf("answer %d is not JSON: %s", resp.StatusCode, raw)
	}
	return a
}

func TestTwilioFakeRules(t *testing.T) {
	t.Parallel()
	f := NewTwilio(t, TwilioConfig{})
	good := url.Values{"To": {"+15005550010"}, "From": {DefaultTwilioFrom}, "Body": {"hi"}}
	with := func(k, v string) url.Values {
		out := url.Values{}
		for kk, vv := range good {
			out[kk] = vv
		}
		if v == "" {
			out.Del(k)
		} else {
			out.Set(k, v)
		}
		return out
	}
	tests := []struct {
		name     string
		sid      string
		user     string
		token    string
		form     url.Values
		wantHTTP int
		wantCode float64
	}{
		{"accepted", DefaultTwilioAccountSID, DefaultTwilioAccountSID, DefaultTwilioAuthToken, good, 201, 0},
		{"no auth", DefaultTwilioAccountSID, "", "", good, 401, 20003},
		{"wrong token", DefaultTwilioAccountSID, DefaultTwilioAccountSID, "nope", good, 401, 20003},
		{"another account's path", "AC99999999999999999999999999999999", DefaultTwilioAccountSID, DefaultTwilioAuthToken, good, 404, 20404},
		{"no To", DefaultTwilioAccountSID, DefaultTwilioAccountSID, DefaultTwilioAuthToken, with("To", ""), 400, 21604},
		{"no From", DefaultTwilioAccountSID, DefaultTwilioAccountSID, DefaultTwilioAuthToken, with("From", ""), 400, 21603},
		{"no Body", DefaultTwilioAccountSID, DefaultTwilioAccountSID, DefaultTwilioAuthToken, with("Body", ""), 400, 21602},
		{"bad From", DefaultTwilioAccountSID, DefaultTwilioAccountSID, DefaultTwilioAuthToken, with("From", "not/a sender!"), 400, 21212},
		{"bad To", DefaultTwilioAccountSID, DefaultTwilioAccountSID, DefaultTwilioAuthToken, with("To", "+0123"), 400, 21211},
		{"body too long", DefaultTwilioAccountSID, DefaultTwilioAccountSID, DefaultTwilioAuthToken, with("Body", strings.Repeat("x", 1601)), 400, 21617},
		{"bad messaging service", DefaultTwilioAccountSID, DefaultTwilioAccountSID, DefaultTwilioAuthToken, with("MessagingServiceSid", "MG1"), 400, 21701},
	}
	// Not parallel: after the cases, the fake must have counted exactly their requests.
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, f.URL()+"/2010-04-01/Accounts/"+tc.sid+"/Messages.json", strings.NewReader(tc.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.user != "" {
				req.SetBasicAuth(tc.user, tc.token)
			}
			a := do(t, req)
			if a.status != tc.wantHTTP {
				t.Fatalf("HTTP %d %v, want %d", a.status, a.body, tc.wantHTTP)
			}
			if tc.wantCode == 0 {
				if sid, _ := a.body["sid"].(string); !strings.HasPrefix(sid, "SM") || a.body["status"] != "queued" || a.body["to"] != "+15005550010" {
					t.Fatalf("body %v", a.body)
				}
				return
			}
			if a.body["code"] != tc.wantCode || a.body["status"] != float64(tc.wantHTTP) || a.body["message"] == "" ||
				!strings.HasPrefix(a.body["more_info"].(string), "https://www.twilio.com/docs/errors/") {
				t.Fatalf("error body %v", a.body)
			}
		})
	}
	if len(f.Messages()) != 1 || f.Requests() != len(tests) {
		t.Fatalf("%d messages over %d requests", len(f.Messages()), f.Requests())
	}
}

func TestTwilioFakeFailNextComesFirst(t *testing.T) {
	t.Parallel()
	f := NewTwilio(t, TwilioConfig{})
	f.FailNext(1, 429, "4")
	f.FailNext(1, 503, "")
	for _, want := range []struct {
		status int
		code   float64
		ra     string
	}{{429, 20429, "4"}, {503, 20503, ""}, {401, 20003, ""}} {
		req, _ := http.NewRequest(http.MethodPost, f.URL()+"/2010-04-01/Accounts/x/Messages.json", nil)
		a := do(t, req)
		if a.status != want.status || a.body["code"] != want.code || a.header.Get("Retry-After") != want.ra {
			t.Fatalf("got %d %v %q, want %d %v", a.status, a.body, a.header.Get("Retry-After"), want.status, want.code)
		}
	}
}

// signJWT signs header and claims with key (RS256).
func signJWT(t *testing.T, key *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + enc.EncodeToString(sig)
}

func TestFCMFakeTokenEndpoint(t *testing.T) {
	t.Parallel()
	f := NewFCM(t)
	sa, err := messaging.ParseServiceAccount(f.ServiceAccountJSON())
	if err != nil {
		t.Fatal(err)
	}
	if sa.TokenURI != f.URL()+"/token" || sa.ProjectID != FCMProjectID {
		t.Fatalf("service account %v", sa)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	header := map[string]any{"alg": "RS256", "typ": "JWT", "kid": f.keyID}
	claims := func(change map[string]any) map[string]any {
		c := map[string]any{"iss": FCMClientEmail, "scope": messaging.FCMScope, "aud": sa.TokenURI, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		for k, v := range change {
			c[k] = v
		}
		return c
	}
	good, err := sa.Assertion(messaging.FCMScope, now)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		grant     string
		assertion string
		wantErr   string
		wantDesc  string
	}{
		{"messaging's assertion", "", good, "", ""},
		{"hand-made assertion with two scopes", "", signJWT(t, f.key, header, claims(map[string]any{"scope": "openid " + messaging.FCMScope})), "", ""},
		{"wrong grant type", "client_credentials", good, "unsupported_grant_type", "Invalid grant_type"},
		{"not a JWT", "", "abc.def", "invalid_grant", "not a signed JWT"},
		{"signed by another key", "", signJWT(t, other, header, claims(nil)), "invalid_grant", "Invalid JWT Signature."},
		{"another key id", "", signJWT(t, f.key, map[string]any{"alg": "RS256", "kid": "other"}, claims(nil)), "invalid_grant", "Invalid JWT Signature."},
		{"HS256", "", signJWT(t, f.key, map[string]any{"alg": "HS256"}, claims(nil)), "invalid_grant", "RS256"},
		{"another issuer", "", signJWT(t, f.key, header, claims(map[string]any{"iss": "x@y.iam.gserviceaccount.com"})), "invalid_grant", "Invalid email"},
		{"another audience", "", signJWT(t, f.key, header, claims(map[string]any{"aud": "https://oauth2.googleapis.com/token"})), "invalid_grant", "audience"},
		{"no FCM scope", "", signJWT(t, f.key, header, claims(map[string]any{"scope": "https://www.googleapis.com/auth/cloud-platform.read-only"})), "invalid_grant", "scope"},
		{"expired", "", signJWT(t, f.key, header, claims(map[string]any{"iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix()})), "invalid_grant", "short-lived"},
		{"too long-lived", "", signJWT(t, f.key, header, claims(map[string]any{"exp": now.Add(2 * time.Hour).Unix()})), "invalid_grant", "short-lived"},
		{"issued in the future", "", signJWT(t, f.key, header, claims(map[string]any{"iat": now.Add(10 * time.Minute).Unix(), "exp": now.Add(70 * time.Minute).Unix()})), "invalid_grant", "short-lived"},
	}
	// Not parallel: after the cases, the fake must have minted exactly two tokens.
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			grant := tc.grant
			if grant == "" {
				grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
			}
			form := url.Values{"grant_type": {grant}, "assertion": {tc.assertion}}
			req, _ := http.NewRequest(http.MethodPost, sa.TokenURI, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			a := do(t, req)
			if tc.wantErr == "" {
				if a.status != 200 || !strings.HasPrefix(a.body["access_token"].(string), "ya29.") || a.body["expires_in"] != float64(3600) || a.body["token_type"] != "Bearer" {
					t.Fatalf("got %d %v", a.status, a.body)
				}
				return
			}
			if a.status != 400 || a.body["error"] != tc.wantErr || !strings.Contains(a.body["error_description"].(string), tc.wantDesc) {
				t.Fatalf("got %d %v, want %s (%s)", a.status, a.body, tc.wantErr, tc.wantDesc)
			}
		})
	}
	if f.Tokens() != 2 {
		t.Fatalf("%d tokens minted, want 2", f.Tokens())
	}
}

func TestFCMFakeSendRules(t *testing.T) {
	t.Parallel()
	f := NewFCM(t)
	sa, _ := messaging.ParseServiceAccount(f.ServiceAccountJSON())
	assertion, _ := sa.Assertion(messaging.FCMScope, time.Now())
	req, _ := http.NewRequest(http.MethodPost, sa.TokenURI, strings.NewReader(url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	token := do(t, req).body["access_token"].(string)
	f.Unregister("gone")

	tests := []struct {
		name     string
		project  string
		bearer   string
		body     string
		status   int
		rpc      string
		fcmError string
	}{
		{"token message", FCMProjectID, token, `{"message":{"token":"dev-1","notification":{"title":"T","body":"B"},"data":{"k":"v"}}}`, 200, "", ""},
		{"topic message", FCMProjectID, token, `{"message":{"topic":"deals","data":{"k":"v"}}}`, 200, "", ""},
		{"validate only", FCMProjectID, token, `{"validate_only":true,"message":{"token":"dev-2"}}`, 200, "", ""},
		{"no bearer", FCMProjectID, "", `{"message":{"token":"dev-1"}}`, 401, "UNAUTHENTICATED", ""},
		{"unknown bearer", FCMProjectID, "ya29.forged", `{"message":{"token":"dev-1"}}`, 401, "UNAUTHENTICATED", ""},
		{"another project", "other-project", token, `{"message":{"token":"dev-1"}}`, 403, "PERMISSION_DENIED", ""},
		{"unknown field", FCMProjectID, token, `{"message":{"token":"dev-1","priority":"high"}}`, 400, "INVALID_ARGUMENT", ""},
		{"data value not a string", FCMProjectID, token, `{"message":{"token":"dev-1","data":{"n":1}}}`, 400, "INVALID_ARGUMENT", ""},
		{"no message", FCMProjectID, token, `{}`, 400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"},
		{"no target", FCMProjectID, token, `{"message":{"data":{"k":"v"}}}`, 400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"},
		{"two targets", FCMProjectID, token, `{"message":{"token":"dev-1","topic":"deals"}}`, 400, "INVALID_ARGUMENT", ""},
		{"reserved data key", FCMProjectID, token, `{"message":{"token":"dev-1","data":{"google.x":"v"}}}`, 400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"},
		{"unregistered", FCMProjectID, token, `{"message":{"token":"gone"}}`, 404, "NOT_FOUND", "UNREGISTERED"},
	}
	// Not parallel: after the cases, the fake must hold the two accepted messages in order.
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, f.URL()+"/v1/projects/"+tc.project+"/messages:send", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			if tc.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+tc.bearer)
			}
			a := do(t, req)
			if a.status != tc.status {
				t.Fatalf("HTTP %d %v, want %d", a.status, a.body, tc.status)
			}
			if tc.status == 200 {
				if name, _ := a.body["name"].(string); !strings.HasPrefix(name, "projects/"+FCMProjectID+"/messages/") {
					t.Fatalf("body %v", a.body)
				}
				return
			}
			e, _ := a.body["error"].(map[string]any)
			if e == nil || e["status"] != tc.rpc || e["code"] != float64(tc.status) || e["message"] == "" {
				t.Fatalf("error body %v", a.body)
			}
			got := ""
			if details, ok := e["details"].([]any); ok && len(details) > 0 {
				d := details[0].(map[string]any)
				if d["@type"] != "type.googleapis.com/google.firebase.fcm.v1.FcmError" {
					t.Fatalf("detail %v", d)
				}
				got, _ = d["errorCode"].(string)
			}
			if got != tc.fcmError {
				t.Fatalf("FcmError %q, want %q", got, tc.fcmError)
			}
		})
	}
	msgs := f.Messages()
	if len(msgs) != 2 || msgs[0].Token != "dev-1" || msgs[0].Title != "T" || msgs[0].Data["k"] != "v" || msgs[1].Topic != "deals" {
		t.Fatalf("messages %+v", msgs)
	}
}
