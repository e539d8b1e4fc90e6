package messagingfake

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coupongate/coupongate/integrations/messaging"
)

// Default credentials and sender of the Twilio fake.
const (
	DefaultTwilioAccountSID = "AC00000000000000000000000000000001"
	DefaultTwilioAuthToken  = "twilio-test-auth-token-0123456789"
	DefaultTwilioFrom       = "+15005550006"
)

// TwilioConfig sets the Twilio fake's behaviour; zero fields take the defaults given.
type TwilioConfig struct {
	// AccountSID and AuthToken are the credentials the fake accepts (defaults
	// DefaultTwilioAccountSID and DefaultTwilioAuthToken).
	AccountSID string
	AuthToken  string
	// Unsubscribed numbers replied STOP: sending to them answers 400 code 21610.
	Unsubscribed []string
	// Landlines are numbers that cannot take SMS: 400 code 21614.
	Landlines []string
}

// SMS is a message the fake accepted.
type SMS struct {
	SID                 string
	To                  string
	From                string // "" when sent through a Messaging Service
	MessagingServiceSID string
	Body                string
}

// Twilio is a running fake of Twilio's Messages API. Close it when done (NewTwilio does).
type Twilio struct {
	cfg TwilioConfig
	srv *httptest.Server

	mu           sync.Mutex
	messages     []SMS
	failures     []failure
	unsubscribed map[string]bool
	landlines    map[string]bool
	requests     int
}

// NewTwilio starts a Twilio fake and closes it when the test ends.
func NewTwilio(t testingT, cfg TwilioConfig) *Twilio {
	t.Helper()
	f := StartTwilio(cfg)
	t.Cleanup(f.Close)
	return f
}

// StartTwilio starts a Twilio fake outside a test.
func StartTwilio(cfg TwilioConfig) *Twilio {
	if cfg.AccountSID == "" {
		cfg.AccountSID = DefaultTwilioAccountSID
	}
	if cfg.AuthToken == "" {
		cfg.AuthToken = DefaultTwilioAuthToken
	}
	f := &Twilio{cfg: cfg, unsubscribed: make(map[string]bool), landlines: make(map[string]bool)}
	for _, n := range cfg.Unsubscribed {
		f.unsubscribed[n] = true
	}
	for _, n := range cfg.Landlines {
		f.landlines[n] = true
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serveHTTP))
	return f
}

// Close stops the server.
func (f *Twilio) Close() { f.srv.Close() }

// URL is the API root to use as TwilioSettings.BaseURL.
func (f *Twilio) URL() string { return f.srv.URL }

// Settings returns messaging settings for the fake; from "" means DefaultTwilioFrom.
func (f *Twilio) Settings(from string) messaging.TwilioSettings {
	if from == "" {
		from = DefaultTwilioFrom
	}
	return messaging.TwilioSettings{BaseURL: f.URL(), AccountSID: f.cfg.AccountSID, AuthToken: f.cfg.AuthToken,
		From: from, HTTP: f.srv.Client()}
}

// Unsubscribe marks numbers as having replied STOP (21610 from now on).
func (f *Twilio) Unsubscribe(numbers ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range numbers {
		f.unsubscribed[n] = true
	}
}

// FailNext makes the next n requests answer status (429 or a 5xx) before anything else, with
// the given Retry-After header ("" for none) and Twilio's error body (code 20429, 20500,
// 20503, else 20000+status).
func (f *Twilio) FailNext(n, status int, retryAfter string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.failures = append(f.failures, failure{status: status, retryAfter: retryAfter})
	}
}

// Messages returns the messages accepted, in order.
func (f *Twilio) Messages() []SMS {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]SMS(nil), f.messages...)
}

// Requests is how many requests reached the fake.
func (f *Twilio) Requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

var (
	e164RE       = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)
	alphaRE      = regexp.MustCompile(`^[A-Za-z0-9 ]{1,11}$`)
	shortCodeRE  = regexp.MustCompile(`^[0-9]{5,6}$`)
	twilioPathRE = regexp.MustCompile(`^/2010-04-01/Accounts/([^/]+)/Messages\.json$`)
)

// twilioError writes Twilio's error body.
func twilioError(w http.ResponseWriter, status, code int, message, retryAfter string) {
	writeJSONHeader(w, status, retryAfter)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"code":      code,
		"message":   message,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code),
		"status":    status,
	})
}

func (f *Twilio) serveHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests++
	var fail *failure
	if len(f.failures) > 0 {
		fl := f.failures[0]
		f.failures = f.failures[1:]
		fail = &fl
	}
	f.mu.Unlock()
	if fail != nil {
		code, msg := 20000+fail.status, http.StatusText(fail.status)
		switch fail.status {
		case http.StatusTooManyRequests:
			code, msg = 20429, "Too Many Requests"
		case http.StatusInternalServerError:
			code, msg = 20500, "Internal Server Error"
		case http.StatusServiceUnavailable:
			code, msg = 20503, "Service Unavailable"
		}
		twilioError(w, fail.status, code, msg, fail.retryAfter)
		return
	}

	user, pass, ok := r.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(f.cfg.AccountSID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(pass), []byte(f.cfg.AuthToken)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
		twilioError(w, http.StatusUnauthorized, 20003, "Authenticate", "")
		return
	}
	m := twilioPathRE.FindStringSubmatch(r.URL.Path)
	if m == nil || m[1] != f.cfg.AccountSID {
		twilioError(w, http.StatusNotFound, 20404, fmt.Sprintf("The requested resource %s was not found", r.URL.Path), "")
		return
	}
	if r.Method != http.MethodPost {
		twilioError(w, http.StatusMethodNotAllowed, 20004, "Method not allowed", "")
		return
	}
	// Only a form body is read (ParseForm ignores a JSON one, so To is then missing).
	if err := r.ParseForm(); err != nil {
		twilioError(w, http.StatusBadRequest, 20001, "Could not parse the request body", "")
		return
	}
	to, from, mg, body := r.PostForm.Get("To"), r.PostForm.Get("From"), r.PostForm.Get("MessagingServiceSid"), r.PostForm.Get("Body")
	switch {
	case to == "":
		twilioError(w, http.StatusBadRequest, 21604, "A 'To' phone number is required.", "")
		return
	case from == "" && mg == "":
		twilioError(w, http.StatusBadRequest, 21603, "A 'From' phone number is required.", "")
		return
	case body == "" && r.PostForm.Get("MediaUrl") == "":
		twilioError(w, http.StatusBadRequest, 21602, "Message body is required.", "")
		return
	case utf8.RuneCountInString(body) > 1600:
		twilioError(w, http.StatusBadRequest, 21617, "The concatenated message body exceeds the 1600 character limit.", "")
		return
	case mg != "" && (!strings.HasPrefix(mg, "MG") || len(mg) != 34):
		twilioError(w, http.StatusBadRequest, 21701, fmt.Sprintf("The Messaging Service Sid %s is invalid.", mg), "")
		return
	case from != "" && !e164RE.MatchString(from) && !shortCodeRE.MatchString(from) && !alphaRE.MatchString(from):
		twilioError(w, http.StatusBadRequest, 21212, fmt.Sprintf("The 'From' number %s is not a valid phone number, shortcode, or alphanumeric sender ID.", from), "")
		return
	case !e164RE.MatchString(to):
		twilioError(w, http.StatusBadRequest, 21211, fmt.Sprintf("The 'To' number %s is not a valid phone number.", to), "")
		return
	}
	f.mu.Lock()
	unsub, landline := f.unsubscribed[to], f.landlines[to]
	f.mu.Unlock()
	if unsub {
		twilioError(w, http.StatusBadRequest, 21610, "Attempt to send to unsubscribed recipient", "")
		return
	}
	if landline {
		twilioError(w, http.StatusBadRequest, 21614, fmt.Sprintf("'To' number %s is not a valid mobile number", to), "")
		return
	}

	var b [16]byte
	_, _ = rand.Read(b[:])
	sid := "SM" + hex.EncodeToString(b[:])
	msg := SMS{SID: sid, To: to, From: from, MessagingServiceSID: mg, Body: body}
	f.mu.Lock()
	f.messages = append(f.messages, msg)
	f.mu.Unlock()

	now := time.Now().UTC().Format(time.RFC1123Z)
	var fromJSON, mgJSON any
	if from != "" {
		fromJSON = from
	}
	if mg != "" {
		mgJSON = mg
	}
	segments := (utf8.RuneCountInString(body) + 152) / 153
	if utf8.RuneCountInString(body) <= 160 {
		segments = 1
	}
	writeJSONHeader(w, http.StatusCreated, "")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"sid":                   sid,
		"account_sid":           f.cfg.AccountSID,
		"api_version":           "2010-04-01",
		"body":                  body,
		"date_created":          now,
		"date_updated":          now,
		"date_sent":             nil,
		"direction":             "outbound-api",
		"error_code":            nil,
		"error_message":         nil,
		"from":                  fromJSON,
		"messaging_service_sid": mgJSON,
		"num_media":             "0",
		"num_segments":          itoa(segments),
		"price":                 nil,
		"price_unit":            "USD",
		"status":                "queued",
		"to":                    to,
		"uri":                   fmt.Sprintf("/2010-04-01/Accounts/%s/Messages/%s.json", f.cfg.AccountSID, sid),
	})
}
