package messaging

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coupongate/coupongate/internal/netguard"
)

// DefaultTwilioBaseURL is Twilio's REST API.
const DefaultTwilioBaseURL = "https://api.twilio.com"

// DefaultSMSRateLimitWait is the wait of a Twilio 429 that has no Retry-After.
const DefaultSMSRateLimitWait = time.Second

// maxAnswerBytes caps how much of a provider's answer is read.
const maxAnswerBytes = 1 << 20

// TwilioSettings says how to send SMS through Twilio's Programmable Messaging API. It prints
// with the auth token redacted.
type TwilioSettings struct {
	// BaseURL is the API root; "" means DefaultTwilioBaseURL.
	BaseURL    string
	AccountSID string // AC…
	AuthToken  string
	// From is the sender: a phone number in E.164 (+15005550006), an alphanumeric sender ID,
	// or a Messaging Service SID (MG…), which is sent as MessagingServiceSid instead.
	From string
	// HTTP is the client; nil means one with a 30 s timeout.
	HTTP *http.Client
}

// String prints the settings without the auth token.
func (s TwilioSettings) String() string {
	tok := ""
	if s.AuthToken != "" {
		tok = "[redacted]"
	}
	return fmt.Sprintf("TwilioSettings{BaseURL:%s AccountSID:%s AuthToken:%s From:%s}", s.BaseURL, s.AccountSID, tok, s.From)
}

// GoString is String, so %#v does not print the token either.
func (s TwilioSettings) GoString() string { return s.String() }

// Validate checks that the settings are complete: an account SID (AC…), an auth token, a
// sender, and an absolute http(s) base URL when one is given.
func (s TwilioSettings) Validate() error {
	var problems []string
	if !strings.HasPrefix(s.AccountSID, "AC") || len(s.AccountSID) < 10 || strings.ContainsAny(s.AccountSID, "/?#% ") {
		problems = append(problems, "account SID must be an AC… SID")
	}
	if s.AuthToken == "" {
		problems = append(problems, "auth token is required")
	}
	if strings.TrimSpace(s.From) == "" {
		problems = append(problems, "from is required")
	}
	if s.BaseURL != "" {
		if u, err := url.Parse(s.BaseURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			problems = append(problems, fmt.Sprintf("base URL %q is not an absolute http(s) URL", s.BaseURL))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("messaging: Twilio settings: %s", strings.Join(problems, "; "))
	}
	return nil
}

// twilioError is Twilio's error body.
type twilioError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// SendSMS sends body to the phone number to (E.164) and returns the message SID (SM…) Twilio
// queued it as.
//
// Errors are *SendError: permanent for a 4xx other than 429 (21211 invalid To, 21610
// unsubscribed recipient, 21614 not a mobile number, 21408 region not enabled…, with Code the
// Twilio code; 20003 refused credentials as CodeAuth), transient for 429 (RetryAfter from
// Retry-After, else DefaultSMSRateLimitWait), 5xx and network failures.
//
// Twilio takes no idempotency key for Messages: a transient failure after Twilio received the
// request (a timeout, a lost answer) may still have sent the SMS, and sending again may send it
// twice. Avoiding that is the caller's job (record the attempt; look the message up by the
// recipient and time in Twilio's console or Messages list before resending if it matters).
func SendSMS(ctx context.Context, s TwilioSettings, to, body string) (string, error) {
	if err := s.Validate(); err != nil {
		return "", &SendError{Channel: ChannelSMS, Permanent: true, Code: CodeSettings, Reason: err.Error()}
	}
	if strings.TrimSpace(to) == "" {
		return "", &SendError{Channel: ChannelSMS, Permanent: true, Code: CodeInvalid, Reason: "no recipient number"}
	}
	if body == "" {
		return "", &SendError{Channel: ChannelSMS, Permanent: true, Code: CodeInvalid, Reason: "empty message body"}
	}
	// The token as it travels: alone, and in the Basic credentials.
	secrets := []string{s.AuthToken, base64.StdEncoding.EncodeToString([]byte(s.AccountSID + ":" + s.AuthToken))}
	base := strings.TrimRight(s.BaseURL, "/")
	if base == "" {
		base = DefaultTwilioBaseURL
	}
	endpoint := base + "/2010-04-01/Accounts/" + url.PathEscape(s.AccountSID) + "/Messages.json"

	form := url.Values{}
	form.Set("To", to)
	form.Set("Body", body)
	if strings.HasPrefix(s.From, "MG") {
		form.Set("MessagingServiceSid", s.From)
	} else {
		form.Set("From", s.From)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", &SendError{Channel: ChannelSMS, Permanent: true, Code: CodeSettings, Reason: redact(err.Error(), secrets...)}
	}
	req.SetBasicAuth(s.AccountSID, s.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)

	resp, err := noRedirects(s.HTTP).Do(req)
	if err != nil {
		return "", transportError(ctx, ChannelSMS, "POST Messages", err, secrets...)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return "", transportError(ctx, ChannelSMS, "reading Twilio's answer", err, secrets...)
	}

	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated {
		var ok struct {
			SID          string `json:"sid"`
			Status       string `json:"status"`
			ErrorCode    *int   `json:"error_code"`
			ErrorMessage string `json:"error_message"`
		}
		if err := json.Unmarshal(raw, &ok); err != nil || ok.SID == "" {
			// Twilio took the message but its answer is unreadable: it is sent (trying again
			// would send it twice), without the provider's id.
			return "", nil
		}
		return ok.SID, nil
	}
	return "", twilioStatusError(resp, raw, secrets)
}

// twilioStatusError classifies a non-2xx answer.
func twilioStatusError(resp *http.Response, raw []byte, secrets []string) *SendError {
	var te twilioError
	_ = json.Unmarshal(raw, &te)
	status := resp.StatusCode
	se := &SendError{Channel: ChannelSMS, Code: strconv.Itoa(status)}
	if te.Code != 0 {
		se.Code = strconv.Itoa(te.Code)
	}
	reason := fmt.Sprintf("HTTP %d", status)
	if te.Message != "" {
		reason += ": " + te.Message
	} else if len(raw) > 0 && status < 500 {
		reason += ": " + clip(strings.TrimSpace(string(raw)), 200)
	}
	if te.MoreInfo != "" {
		reason += " (" + te.MoreInfo + ")"
	}
	se.Reason = redact(reason, secrets...)
	switch {
	case status == http.StatusTooManyRequests:
		se.Wait = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		if se.Wait <= 0 {
			se.Wait = DefaultSMSRateLimitWait
		}
	case status >= 500:
		se.Wait = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	case status == http.StatusUnauthorized || te.Code == 20003:
		se.Permanent, se.Code = true, CodeAuth
		se.Reason = "credentials refused (check the account SID and auth token): " + se.Reason
	default:
		se.Permanent = true
	}
	return se
}

// userAgent is sent with every HTTP request.
const userAgent = "Coupongate-Messaging/1.0"

// noRedirects copies c (or makes a client with a 30 s timeout) and makes it not follow
// redirects: an API that redirects answers the 3xx, which is then an error.
func noRedirects(c *http.Client) *http.Client {
	var cc http.Client
	if c != nil {
		cc = *c
	} else {
		cc.Timeout = 30 * time.Second
	}
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cc
}

// transportError is the transient error of a request that got no (complete) answer, or the
// permanent CodeAddressRefused of one the address guard refused to connect.
func transportError(ctx context.Context, channel, stage string, err error, secrets ...string) *SendError {
	if ctx.Err() != nil {
		return ctxSendError(channel, ctx.Err(), stage)
	}
	var refused *netguard.ForbiddenError
	if errors.As(err, &refused) {
		return &SendError{Channel: channel, Permanent: true, Code: CodeAddressRefused, Err: err, Reason: stage + ": refused: " + refused.Error()}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &SendError{Channel: channel, Code: networkCode(err), Err: err, Reason: stage + ": " + redact(err.Error(), secrets...)}
}
