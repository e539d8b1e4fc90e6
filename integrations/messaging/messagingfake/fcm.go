package messagingfake

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/coupongate/coupongate/integrations/messaging"
)

// FCMProjectID is the Firebase project of the FCM fake's service account.
const FCMProjectID = "coupongate-test"

// FCMClientEmail is the client_email of the FCM fake's service account.
const FCMClientEmail = "coupongate-push@coupongate-test.iam.gserviceaccount.com"

// fcmMaxPayload is FCM's limit on a message's data and notification (4096 bytes).
const fcmMaxPayload = 4096

// Push is a message the FCM fake accepted.
type Push struct {
	Name  string // projects/…/messages/…
	Token string
	Topic string
	Title string
	Body  string
	Data  map[string]string
}

// FCM is a running fake of Google's token endpoint and FCM's HTTP v1 API, with a service
// account of its own. Close it when done (NewFCM does).
type FCM struct {
	srv    *httptest.Server
	key    *rsa.PrivateKey
	keyID  string
	saJSON []byte

	mu           sync.Mutex
	lifetime     time.Duration
	tokens       map[string]time.Time // access token → expiry
	minted       int
	revoked      bool
	unregistered map[string]bool
	mismatched   map[string]bool
	messages     []Push
	failures     []failure
	seq          int
}

// NewFCM starts an FCM fake with a fresh RSA key and closes it when the test ends.
func NewFCM(t testingT) *FCM {
	t.Helper()
	f, err := StartFCM()
	if err != nil {
		t.Fatalf("messagingfake: %v", err)
	}
	t.Cleanup(f.Close)
	return f
}

// StartFCM starts an FCM fake outside a test.
func StartFCM() (*FCM, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("fcm: generate key: %w", err)
	}
	var id [20]byte
	_, _ = rand.Read(id[:])
	f := &FCM{key: key, keyID: hex.EncodeToString(id[:]), lifetime: time.Hour,
		tokens: make(map[string]time.Time), unregistered: make(map[string]bool), mismatched: make(map[string]bool)}
	mux := http.NewServeMux()
	mux.HandleFunc("/token", f.serveToken)
	mux.HandleFunc("/v1/projects/", f.serveSend)
	f.srv = httptest.NewServer(mux)

	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		f.srv.Close()
		return nil, err
	}
	f.saJSON, _ = json.MarshalIndent(map[string]string{
		"type":                        "service_account",
		"project_id":                  FCMProjectID,
		"private_key_id":              f.keyID,
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":                FCMClientEmail,
		"client_id":                   "100000000000000000001",
		"auth_uri":                    "https://accounts.google.com/o/oauth2/auth",
		"token_uri":                   f.srv.URL + "/token",
		"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
		"client_x509_cert_url":        "https://www.googleapis.com/robot/v1/metadata/x509/coupongate-push%40coupongate-test.iam.gserviceaccount.com",
		"universe_domain":             "googleapis.com",
	}, "", "  ")
	return f, nil
}

// Close stops the server.
func (f *FCM) Close() { f.srv.Close() }

// URL is the API root to use as FCMSettings.BaseURL (the token endpoint is URL()+"/token").
func (f *FCM) URL() string { return f.srv.URL }

// ServiceAccountJSON is a service-account key file for project FCMProjectID whose token_uri
// is the fake's /token.
func (f *FCM) ServiceAccountJSON() []byte { return append([]byte(nil), f.saJSON...) }

// Settings returns messaging settings for the fake.
func (f *FCM) Settings() messaging.FCMSettings {
	return messaging.FCMSettings{BaseURL: f.URL(), ServiceAccount: f.ServiceAccountJSON(), HTTP: f.srv.Client()}
}

// Tokens is how many access tokens /token minted.
func (f *FCM) Tokens() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.minted
}

// SetTokenLifetime sets the expires_in of the tokens minted from now on (default an hour);
// they stop working when it has passed.
func (f *FCM) SetTokenLifetime(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lifetime = d
}

// ExpireTokens makes every access token minted so far invalid (401 UNAUTHENTICATED).
func (f *FCM) ExpireTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens = make(map[string]time.Time)
}

// RevokeServiceAccount makes /token refuse the service account (400 invalid_grant), as when
// its key is deleted or the account disabled, and expires its tokens.
func (f *FCM) RevokeServiceAccount() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked = true
	f.tokens = make(map[string]time.Time)
}

// Unregister makes a device token UNREGISTERED (404), as when the app was uninstalled.
func (f *FCM) Unregister(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unregistered[token] = true
}

// MismatchSender makes a device token belong to another project (403 SENDER_ID_MISMATCH).
func (f *FCM) MismatchSender(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mismatched[token] = true
}

// FailNext makes the next n messages:send requests answer status before anything else
// (authentication included), with the given Retry-After ("" for none) and FCM's error body:
// 429 RESOURCE_EXHAUSTED / QUOTA_EXCEEDED, 500 INTERNAL, 503 UNAVAILABLE, 401
// UNAUTHENTICATED (no FcmError, as for an expired token).
func (f *FCM) FailNext(n, status int, retryAfter string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.failures = append(f.failures, failure{status: status, retryAfter: retryAfter})
	}
}

// Messages returns the messages accepted, in order.
func (f *FCM) Messages() []Push {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Push, len(f.messages))
	copy(out, f.messages)
	return out
}

// oauthError writes the token endpoint's error body.
func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSONHeader(w, status, "")
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func (f *FCM) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "Method not allowed")
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "Could not parse the request body")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+gt)
		return
	}
	f.mu.Lock()
	revoked := f.revoked
	f.mu.Unlock()
	if revoked {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "Invalid grant: account not found")
		return
	}
	if problem := f.checkAssertion(r.PostForm.Get("assertion"), time.Now()); problem != "" {
		oauthError(w, http.StatusBadRequest, "invalid_grant", problem)
		return
	}
	var b [24]byte
	_, _ = rand.Read(b[:])
	tok := "ya29.fake-" + base64.RawURLEncoding.EncodeToString(b[:])
	f.mu.Lock()
	life := f.lifetime
	f.tokens[tok] = time.Now().Add(life)
	f.minted++
	f.mu.Unlock()
	secs := int(life / time.Second)
	if secs < 1 {
		secs = 1
	}
	writeJSONHeader(w, http.StatusOK, "")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "expires_in": secs, "token_type": "Bearer"})
}

// checkAssertion verifies a JWT bearer assertion as Google does and returns what is wrong
// with it ("" when nothing is).
func (f *FCM) checkAssertion(assertion string, now time.Time) string {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return "Invalid JWT: not a signed JWT"
	}
	dec := base64.RawURLEncoding
	hb, err1 := dec.DecodeString(parts[0])
	cb, err2 := dec.DecodeString(parts[1])
	sig, err3 := dec.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return "Invalid JWT: not base64url"
	}
	var header struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if json.Unmarshal(hb, &header) != nil || header.Alg != "RS256" {
		return "Invalid JWT: alg must be RS256"
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if (header.Kid != "" && header.Kid != f.keyID) || rsa.VerifyPKCS1v15(&f.key.PublicKey, crypto.SHA256, sum[:], sig) != nil {
		return "Invalid JWT Signature."
	}
	var claims struct {
		Iss   string `json:"iss"`
		Scope string `json:"scope"`
		Aud   string `json:"aud"`
		Iat   int64  `json:"iat"`
		Exp   int64  `json:"exp"`
	}
	if json.Unmarshal(cb, &claims) != nil {
		return "Invalid JWT: claims are not JSON"
	}
	switch {
	case claims.Iss != FCMClientEmail:
		return "Invalid email or User ID"
	case claims.Aud != f.srv.URL+"/token":
		return "Invalid JWT: Failed audience check."
	case !hasScope(claims.Scope, messaging.FCMScope):
		return "Invalid OAuth scope or ID token audience provided."
	case claims.Iat == 0 || claims.Exp == 0 || claims.Exp-claims.Iat > 3600 || claims.Exp <= claims.Iat ||
		claims.Iat > now.Add(time.Minute).Unix() || claims.Exp <= now.Unix():
		return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
	}
	return ""
}

func hasScope(scopes, want string) bool {
	for _, s := range strings.Fields(scopes) {
		if s == want {
			return true
		}
	}
	return false
}

// googleError writes a google.rpc.Status body, with an FcmError detail when fcmCode is set.
func googleError(w http.ResponseWriter, code int, status, message, fcmCode, retryAfter string) {
	e := map[string]any{"code": code, "message": message, "status": status}
	if fcmCode != "" {
		e["details"] = []map[string]string{{
			"@type":     "type.googleapis.com/google.firebase.fcm.v1.FcmError",
			"errorCode": fcmCode,
		}}
	}
	writeJSONHeader(w, code, retryAfter)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": e})
}

var (
	sendPathRE = regexp.MustCompile(`^/v1/projects/([^/]+)/messages:send$`)
	fcmTokenRE = regexp.MustCompile(`^[A-Za-z0-9_:.\-]+$`)
	topicRE    = regexp.MustCompile(`^(/topics/)?[A-Za-z0-9\-_.~%]{1,900}$`)
)

const msgUnauthenticated = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."

func (f *FCM) serveSend(w http.ResponseWriter, r *http.Request) {
	m := sendPathRE.FindStringSubmatch(r.URL.Path)
	if m == nil {
		googleError(w, http.StatusNotFound, "NOT_FOUND", "The requested URL was not found on this server.", "", "")
		return
	}
	f.mu.Lock()
	var fail *failure
	if len(f.failures) > 0 {
		fl := f.failures[0]
		f.failures = f.failures[1:]
		fail = &fl
	}
	f.mu.Unlock()
	if fail != nil {
		switch fail.status {
		case http.StatusTooManyRequests:
			googleError(w, fail.status, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Send requests' of service 'fcm.googleapis.com'.", "QUOTA_EXCEEDED", fail.retryAfter)
		case http.StatusInternalServerError:
			googleError(w, fail.status, "INTERNAL", "Internal error encountered.", "INTERNAL", fail.retryAfter)
		case http.StatusServiceUnavailable:
			googleError(w, fail.status, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE", fail.retryAfter)
		case http.StatusUnauthorized:
			googleError(w, fail.status, "UNAUTHENTICATED", msgUnauthenticated, "", fail.retryAfter)
		default:
			googleError(w, fail.status, "UNKNOWN", http.StatusText(fail.status), "", fail.retryAfter)
		}
		return
	}
	if r.Method != http.MethodPost {
		googleError(w, http.StatusMethodNotAllowed, "INVALID_ARGUMENT", "Method not allowed", "", "")
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	exp, known := f.tokens[tok]
	f.mu.Unlock()
	if !ok || !known || !time.Now().Before(exp) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
		googleError(w, http.StatusUnauthorized, "UNAUTHENTICATED", msgUnauthenticated, "", "")
		return
	}
	if m[1] != FCMProjectID {
		googleError(w, http.StatusForbidden, "PERMISSION_DENIED",
			fmt.Sprintf("Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/%s' (or it may not exist).", m[1]), "", "")
		return
	}

	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Could not read the request body.", "", "")
		return
	}
	var req struct {
		ValidateOnly bool `json:"validate_only"`
		Message      *struct {
			Name         string            `json:"name"`
			Token        string            `json:"token"`
			Topic        string            `json:"topic"`
			Condition    string            `json:"condition"`
			Data         map[string]string `json:"data"`
			Notification *struct {
				Title string `json:"title"`
				Body  string `json:"body"`
				Image string `json:"image"`
			} `json:"notification"`
			Android    json.RawMessage `json:"android"`
			Webpush    json.RawMessage `json:"webpush"`
			Apns       json.RawMessage `json:"apns"`
			FcmOptions json.RawMessage `json:"fcm_options"`
		} `json:"message"`
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(&req); err != nil {
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received. "+err.Error(), "", "")
		return
	}
	msg := req.Message
	if msg == nil {
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Request contains an invalid argument.", "INVALID_ARGUMENT", "")
		return
	}
	targets := 0
	for _, t := range []string{msg.Token, msg.Topic, msg.Condition} {
		if t != "" {
			targets++
		}
	}
	if targets == 0 {
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Recipient of the message is not set.", "INVALID_ARGUMENT", "")
		return
	}
	if targets > 1 {
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid value at 'message' (oneof), oneof field 'target' is already set. Cannot set 'token'", "", "")
		return
	}
	size := 0
	for k, v := range msg.Data {
		lk := strings.ToLower(k)
		if lk == "from" || lk == "notification" || lk == "message_type" || strings.HasPrefix(lk, "google") || strings.HasPrefix(lk, "gcm") {
			googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid data payload key: "+k, "INVALID_ARGUMENT", "")
			return
		}
		size += len(k) + len(v)
	}
	if msg.Notification != nil {
		size += len(msg.Notification.Title) + len(msg.Notification.Body)
	}
	if size > fcmMaxPayload {
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Message is too big", "INVALID_ARGUMENT", "")
		return
	}
	if msg.Token != "" && !fcmTokenRE.MatchString(msg.Token) {
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token", "INVALID_ARGUMENT", "")
		return
	}
	if msg.Topic != "" && !topicRE.MatchString(msg.Topic) {
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid topic name", "INVALID_ARGUMENT", "")
		return
	}
	f.mu.Lock()
	unregistered, mismatched := f.unregistered[msg.Token], f.mismatched[msg.Token]
	f.mu.Unlock()
	if msg.Token != "" && unregistered {
		googleError(w, http.StatusNotFound, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED", "")
		return
	}
	if msg.Token != "" && mismatched {
		googleError(w, http.StatusForbidden, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH", "")
		return
	}

	name := fmt.Sprintf("projects/%s/messages/fake_message_id", FCMProjectID)
	if !req.ValidateOnly {
		p := Push{Token: msg.Token, Topic: msg.Topic, Data: msg.Data}
		if msg.Notification != nil {
			p.Title, p.Body = msg.Notification.Title, msg.Notification.Body
		}
		var b [8]byte
		_, _ = rand.Read(b[:])
		f.mu.Lock()
		f.seq++
		p.Name = fmt.Sprintf("projects/%s/messages/0:%d%%%s", FCMProjectID, 1700000000000000+f.seq, hex.EncodeToString(b[:]))
		f.messages = append(f.messages, p)
		f.mu.Unlock()
		name = p.Name
	}
	writeJSONHeader(w, http.StatusOK, "")
	_ = json.NewEncoder(w).Encode(map[string]string{"name": name})
}
