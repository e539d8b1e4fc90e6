package messaging

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coupongate/coupongate/core"
)

// DefaultFCMBaseURL is Firebase Cloud Messaging's API root.
const DefaultFCMBaseURL = "https://fcm.googleapis.com"

// FCMScope is the OAuth2 scope a service account's token needs to send messages.
const FCMScope = "https://www.googleapis.com/auth/firebase.messaging"

// DefaultPushQuotaWait is the wait of an FCM 429 (QUOTA_EXCEEDED) without Retry-After: Firebase
// asks for a minimum initial delay of one minute.
const DefaultPushQuotaWait = time.Minute

// jwtBearerGrant is the OAuth2 grant type of a signed JWT assertion (RFC 7523).
const jwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// tokenEarly is how long before its expiry a cached access token is replaced.
const tokenEarly = time.Minute

// FCMSettings says how to send push notifications through FCM. It prints with the service
// account redacted.
type FCMSettings struct {
	// BaseURL is the API root; "" means DefaultFCMBaseURL.
	BaseURL string
	// ServiceAccount is the Google service-account key file (JSON) of a service account allowed
	// to send messages for the Firebase project (role Firebase Cloud Messaging API Admin).
	ServiceAccount []byte
	// HTTP is the client for the token endpoint and FCM; nil means one with a 30 s timeout. The
	// token endpoint is the service account's token_uri, which the merchant supplies: the gateway
	// passes netguard's client, which refuses non-public addresses at connect time
	// (CodeAddressRefused).
	HTTP *http.Client
}

// String prints the settings without the service account key.
func (s FCMSettings) String() string {
	sa := ""
	if len(s.ServiceAccount) > 0 {
		sa = "[redacted]"
	}
	return fmt.Sprintf("FCMSettings{BaseURL:%s ServiceAccount:%s}", s.BaseURL, sa)
}

// GoString is String, so %#v does not print the key either.
func (s FCMSettings) GoString() string { return s.String() }

// ServiceAccount is a parsed Google service-account key. It prints without its private key.
type ServiceAccount struct {
	Type         string // "service_account"
	ProjectID    string
	PrivateKeyID string
	ClientEmail  string
	TokenURI     string // where access tokens are minted (https://oauth2.googleapis.com/token)
	key          *rsa.PrivateKey
}

// String prints the account without its private key.
func (sa ServiceAccount) String() string {
	return fmt.Sprintf("ServiceAccount{Type:%s ProjectID:%s PrivateKeyID:%s ClientEmail:%s TokenURI:%s PrivateKey:[redacted]}",
		sa.Type, sa.ProjectID, sa.PrivateKeyID, sa.ClientEmail, sa.TokenURI)
}

// GoString is String, so %#v does not print the key either.
func (sa ServiceAccount) GoString() string { return sa.String() }

// ParseServiceAccount reads a service-account key file and checks it: type "service_account",
// a project_id, a private_key_id, a private_key that is a PEM RSA key (PKCS #8 or #1) of at
// least 2048 bits, a client_email, and a token_uri over https (http only to a loopback host).
// Its errors never quote the key.
func ParseServiceAccount(b []byte) (ServiceAccount, error) {
	var raw struct {
		Type         string `json:"type"`
		ProjectID    string `json:"project_id"`
		PrivateKeyID string `json:"private_key_id"`
		PrivateKey   string `json:"private_key"`
		ClientEmail  string `json:"client_email"`
		TokenURI     string `json:"token_uri"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return ServiceAccount{}, fmt.Errorf("messaging: service account: not JSON (syntax error at byte %d)", syn.Offset)
		}
		return ServiceAccount{}, errors.New("messaging: service account: not a service-account key file")
	}
	sa := ServiceAccount{Type: raw.Type, ProjectID: raw.ProjectID, PrivateKeyID: raw.PrivateKeyID,
		ClientEmail: raw.ClientEmail, TokenURI: raw.TokenURI}
	var problems []string
	if raw.Type != "service_account" {
		problems = append(problems, fmt.Sprintf("type is %q, not service_account", raw.Type))
	}
	if raw.ProjectID == "" || strings.ContainsAny(raw.ProjectID, "/?#% ") {
		problems = append(problems, "project_id is missing or malformed")
	}
	if raw.PrivateKeyID == "" {
		problems = append(problems, "private_key_id is missing")
	}
	if !strings.Contains(raw.ClientEmail, "@") {
		problems = append(problems, "client_email is missing or not an address")
	}
	if err := checkEndpoint(raw.TokenURI); err != nil {
		problems = append(problems, "token_uri "+err.Error())
	}
	if raw.PrivateKey == "" {
		problems = append(problems, "private_key is missing")
	} else if key, err := parseRSAKey(raw.PrivateKey); err != nil {
		problems = append(problems, "private_key "+err.Error())
	} else {
		sa.key = key
	}
	if len(problems) > 0 {
		return ServiceAccount{}, fmt.Errorf("messaging: service account: %s", strings.Join(problems, "; "))
	}
	return sa, nil
}

// parseRSAKey reads a PEM RSA private key; its errors say what is wrong, not what is there.
func parseRSAKey(p string) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(p))
	if block == nil {
		return nil, errors.New("is not PEM")
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("is not a valid PKCS #8 key")
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, errors.New("is not an RSA key")
		}
		key = rk
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("is not a valid PKCS #1 key")
		}
		key = k
	default:
		return nil, fmt.Errorf("is a PEM %q block, not a private key", block.Type)
	}
	if key.N.BitLen() < 2048 {
		return nil, fmt.Errorf("is %d bits; RS256 needs at least 2048", key.N.BitLen())
	}
	return key, nil
}

// checkEndpoint accepts an absolute https URL, or http to a loopback host (tests).
func checkEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		if ip := net.ParseIP(h); h == "localhost" || ip != nil && ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("%q is not https", raw)
	}
	return fmt.Errorf("%q is not an http(s) URL", raw)
}

// Assertion returns the signed JWT (RS256) that asks token_uri for an access token with
// scope, valid from now for an hour: iss client_email, aud token_uri, kid private_key_id.
func (sa ServiceAccount) Assertion(scope string, now time.Time) (string, error) {
	if sa.key == nil {
		return "", errors.New("messaging: service account has no private key (use ParseServiceAccount)")
	}
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": sa.PrivateKeyID})
	claims, _ := json.Marshal(map[string]any{
		"iss":   sa.ClientEmail,
		"scope": scope,
		"aud":   sa.TokenURI,
		"iat":   now.Unix(),
		"exp":   now.Add(time.Hour).Unix(),
	})
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, sa.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", errors.New("messaging: service account: signing the assertion failed")
	}
	return input + "." + enc.EncodeToString(sig), nil
}

// PushSender sends FCM notifications for one service account's project. It mints the access
// token itself and caches it until a minute before it expires. It is safe for concurrent use.
type PushSender struct {
	sa   ServiceAccount
	base string
	http *http.Client

	refresh chan struct{} // held by the one goroutine minting a token

	mu      sync.Mutex
	token   string
	expires time.Time

	// Clock is when the sender caches a token until and checks it against (SetClock in tests).
	core.Clock
}

// NewPushSender parses the settings' service account and returns a sender. It does not call
// out: the first Send mints the token.
func NewPushSender(s FCMSettings) (*PushSender, error) {
	sa, err := ParseServiceAccount(s.ServiceAccount)
	if err != nil {
		return nil, err
	}
	base := strings.TrimRight(s.BaseURL, "/")
	if base == "" {
		base = DefaultFCMBaseURL
	}
	if err := checkEndpoint(base); err != nil {
		return nil, fmt.Errorf("messaging: FCM base URL %s", err)
	}
	return &PushSender{sa: sa, base: base, http: noRedirects(s.HTTP), refresh: make(chan struct{}, 1)}, nil
}

// ServiceAccount returns the parsed service account (without a way to read its key).
func (p *PushSender) ServiceAccount() ServiceAccount { return p.sa }

// accessToken returns the cached token, or mints one; one goroutine mints while the others
// wait for it.
func (p *PushSender) accessToken(ctx context.Context) (string, error) {
	if tok := p.cached(); tok != "" {
		return tok, nil
	}
	select {
	case p.refresh <- struct{}{}:
	case <-ctx.Done():
		return "", ctxSendError(ChannelPush, ctx.Err(), "waiting for an access token")
	}
	defer func() { <-p.refresh }()
	if tok := p.cached(); tok != "" {
		return tok, nil
	}
	tok, ttl, err := p.mint(ctx)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	p.token, p.expires = tok, p.Now().Add(ttl)
	p.mu.Unlock()
	return tok, nil
}

func (p *PushSender) cached() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.token != "" && p.Now().Before(p.expires) {
		return p.token
	}
	return ""
}

// forget drops tok from the cache (unless another goroutine already replaced it).
func (p *PushSender) forget(tok string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.token == tok {
		p.token = ""
	}
}

// mint exchanges a signed assertion for an access token and returns how long to cache it.
func (p *PushSender) mint(ctx context.Context) (string, time.Duration, error) {
	assertion, err := p.sa.Assertion(FCMScope, time.Now())
	if err != nil {
		return "", 0, &SendError{Channel: ChannelPush, Permanent: true, Code: CodeSettings, Reason: err.Error()}
	}
	form := url.Values{"grant_type": {jwtBearerGrant}, "assertion": {assertion}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.sa.TokenURI, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, &SendError{Channel: ChannelPush, Permanent: true, Code: CodeSettings, Reason: "token_uri: " + err.Error()}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := p.http.Do(req)
	if err != nil {
		return "", 0, transportError(ctx, ChannelPush, "minting an access token", err, assertion)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return "", 0, transportError(ctx, ChannelPush, "minting an access token", err, assertion)
	}
	var body struct {
		AccessToken      string          `json:"access_token"`
		ExpiresIn        json.RawMessage `json:"expires_in"`
		TokenType        string          `json:"token_type"`
		Error            string          `json:"error"`
		ErrorDescription string          `json:"error_description"`
	}
	_ = json.Unmarshal(raw, &body)
	if resp.StatusCode != http.StatusOK {
		se := &SendError{Channel: ChannelPush, Code: strconv.Itoa(resp.StatusCode)}
		reason := fmt.Sprintf("minting an access token: HTTP %d", resp.StatusCode)
		if body.Error != "" {
			reason += " " + body.Error
		}
		if body.ErrorDescription != "" {
			reason += ": " + body.ErrorDescription
		}
		se.Reason = redact(reason, assertion)
		switch {
		case resp.StatusCode == http.StatusTooManyRequests:
			se.Wait = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
			if se.Wait <= 0 {
				se.Wait = time.Second
			}
		case resp.StatusCode >= 500:
			se.Wait = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		default:
			// invalid_grant, invalid_client, unauthorized_client…: the key is revoked,
			// disabled or wrong, or the clock is off.
			se.Permanent, se.Code = true, CodeAuth
			se.Reason = "service account refused (check the key file and the clock): " + se.Reason
		}
		return "", 0, se
	}
	if body.AccessToken == "" {
		return "", 0, &SendError{Channel: ChannelPush, Code: CodeNetwork, Reason: "minting an access token: answer without access_token"}
	}
	if body.TokenType != "" && !strings.EqualFold(body.TokenType, "Bearer") {
		return "", 0, &SendError{Channel: ChannelPush, Permanent: true, Code: CodeAuth,
			Reason: fmt.Sprintf("minting an access token: token_type %q is not Bearer", body.TokenType)}
	}
	secs, _ := strconv.ParseFloat(strings.Trim(string(body.ExpiresIn), `"`), 64)
	if secs <= 0 {
		secs = 3600
	}
	ttl := time.Duration(secs * float64(time.Second))
	if ttl > 2*tokenEarly {
		ttl -= tokenEarly
	} else {
		ttl /= 2
	}
	return body.AccessToken, ttl, nil
}

// fcmMessage is the body of messages:send.
type fcmMessage struct {
	Message struct {
		Token        string            `json:"token"`
		Notification *fcmNotification  `json:"notification,omitempty"`
		Data         map[string]string `json:"data,omitempty"`
	} `json:"message"`
}

type fcmNotification struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
}

// googleError is a google.rpc.Status error body.
type googleError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type      string `json:"@type"`
			ErrorCode string `json:"errorCode"`
		} `json:"details"`
	} `json:"error"`
}

// fcmErrorCode is the errorCode of the FcmError detail, or "".
func (g *googleError) fcmErrorCode() string {
	for _, d := range g.Error.Details {
		if strings.HasSuffix(d.Type, "google.firebase.fcm.v1.FcmError") && d.ErrorCode != "" {
			return d.ErrorCode
		}
	}
	return ""
}

// Send sends a notification (title and body; both empty makes it data-only) with data to the
// device registration token, and returns the message name FCM gave it
// ("projects/…/messages/…").
//
// Errors are *SendError: UNREGISTERED, INVALID_ARGUMENT, SENDER_ID_MISMATCH and the other 4xx
// are permanent (Code the FCM errorCode, else the google.rpc status); QUOTA_EXCEEDED (429),
// UNAVAILABLE, INTERNAL and other 5xx are transient with Retry-After (429 without one waits
// DefaultPushQuotaWait). A 401 drops the cached access token and tries once more with a new
// one; a second 401, or a service account the token endpoint refuses, is permanent CodeAuth.
// FCM does not deduplicate: a transient failure after FCM received the message may still
// deliver it.
func (p *PushSender) Send(ctx context.Context, token, title, body string, data map[string]string) (string, error) {
	if strings.TrimSpace(token) == "" {
		return "", &SendError{Channel: ChannelPush, Permanent: true, Code: CodeInvalid, Reason: "no device token"}
	}
	var msg fcmMessage
	msg.Message.Token = token
	if title != "" || body != "" {
		msg.Message.Notification = &fcmNotification{Title: title, Body: body}
	}
	if len(data) > 0 {
		msg.Message.Data = data
	}
	payload, err := json.Marshal(msg)
	if err != nil {
		return "", &SendError{Channel: ChannelPush, Permanent: true, Code: CodeInvalid, Reason: "encoding the message: " + err.Error()}
	}
	endpoint := p.base + "/v1/projects/" + url.PathEscape(p.sa.ProjectID) + "/messages:send"

	for attempt := 0; ; attempt++ {
		at, err := p.accessToken(ctx)
		if err != nil {
			return "", err
		}
		name, status, se := p.post(ctx, endpoint, at, payload)
		if se == nil {
			return name, nil
		}
		if status == http.StatusUnauthorized && se.Code != "THIRD_PARTY_AUTH_ERROR" {
			p.forget(at)
			if attempt == 0 {
				continue
			}
			se.Permanent, se.Code, se.Wait = true, CodeAuth, 0
			se.Reason = "access token refused twice (check the service account's role on the project): " + se.Reason
		}
		return "", se
	}
}

// post sends one messages:send request and classifies its answer.
func (p *PushSender) post(ctx context.Context, endpoint, accessToken string, payload []byte) (string, int, *SendError) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(payload))
	if err != nil {
		return "", 0, &SendError{Channel: ChannelPush, Permanent: true, Code: CodeSettings, Reason: err.Error()}
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := p.http.Do(req)
	if err != nil {
		return "", 0, transportError(ctx, ChannelPush, "POST messages:send", err, accessToken)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return "", resp.StatusCode, transportError(ctx, ChannelPush, "reading FCM's answer", err, accessToken)
	}
	if resp.StatusCode == http.StatusOK {
		var ok struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(raw, &ok); err != nil || ok.Name == "" {
			// FCM took the message but its answer is unreadable: it is sent (trying again would
			// send it twice), without the message name.
			return "", resp.StatusCode, nil
		}
		return ok.Name, resp.StatusCode, nil
	}

	var ge googleError
	_ = json.Unmarshal(raw, &ge)
	status := resp.StatusCode
	fcmCode := ge.fcmErrorCode()
	se := &SendError{Channel: ChannelPush, Code: fcmCode}
	if se.Code == "" {
		se.Code = ge.Error.Status
	}
	if se.Code == "" {
		se.Code = strconv.Itoa(status)
	}
	reason := fmt.Sprintf("HTTP %d", status)
	if ge.Error.Status != "" {
		reason += " " + ge.Error.Status
	}
	if fcmCode != "" && fcmCode != ge.Error.Status {
		reason += " " + fcmCode
	}
	if ge.Error.Message != "" {
		reason += ": " + clip(ge.Error.Message, 300)
	} else if len(raw) > 0 && status < 500 {
		reason += ": " + clip(strings.TrimSpace(string(raw)), 200)
	}
	se.Reason = redact(reason, accessToken)
	switch {
	case status == http.StatusTooManyRequests || fcmCode == "QUOTA_EXCEEDED":
		se.Wait = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		if se.Wait <= 0 {
			se.Wait = DefaultPushQuotaWait
		}
	case status >= 500 || fcmCode == "UNAVAILABLE" || fcmCode == "INTERNAL":
		se.Wait = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	case status == http.StatusUnauthorized:
		// Send retries once with a new token; THIRD_PARTY_AUTH_ERROR (the APNs certificate or
		// web-push key in the Firebase project is wrong) will not heal that way.
		se.Permanent = fcmCode == "THIRD_PARTY_AUTH_ERROR"
	case status == http.StatusForbidden && fcmCode == "":
		// PERMISSION_DENIED: the service account may not send for this project.
		se.Permanent, se.Code = true, CodeAuth
		se.Reason = "permission refused (check the service account's role and the project): " + se.Reason
	default:
		se.Permanent = true
	}
	return "", status, se
}
