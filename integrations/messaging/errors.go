package messaging

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Channels of a SendError.
const (
	ChannelEmail = "email"
	ChannelSMS   = "sms"
	ChannelPush  = "push"
)

// Codes that SendError uses besides the providers' own.
const (
	// CodeAuth marks credentials the provider refused (SMTP 535, Twilio 20003, an FCM service
	// account whose token is refused). The message cannot be sent until the settings are fixed.
	CodeAuth = "auth"
	// CodeSettings marks settings that are incomplete or malformed (Validate failed).
	CodeSettings = "settings"
	// CodeTLS marks a TLS failure that will not heal by itself: an untrusted or mismatched
	// certificate, or a server that does not offer the STARTTLS the settings require.
	CodeTLS = "tls"
	// CodeInvalid marks a message the adapter refused before sending it (no recipient, a
	// malformed address or header).
	CodeInvalid = "invalid_message"
	// CodeNetwork marks a connection that failed or broke, or a request that got no answer.
	CodeNetwork = "network"
	// CodeTimeout marks a request that did not finish in time (or whose context ended).
	CodeTimeout = "timeout"
	// CodeAddressRefused marks a connection the gateway refused to make because the host
	// resolves to a loopback, private or other non-public address (see netguard). It is
	// permanent: the settings must name a public host.
	CodeAddressRefused = "address_refused"
)

// SendError is a message that could not be sent.
//
// Permanent errors will fail the same way if the message is sent again unchanged: drop the
// message (or fix the settings when Code is CodeAuth, CodeSettings or CodeTLS). Other errors
// are transient: try again, not before RetryAfter when it is not zero, else with your own
// backoff.
type SendError struct {
	// Channel is ChannelEmail, ChannelSMS or ChannelPush.
	Channel string
	// Permanent reports that sending again cannot succeed.
	Permanent bool
	// Code identifies the failure: an SMTP enhanced status ("5.1.1") or reply code ("550"),
	// a Twilio error code ("21211"), an FCM error code ("UNREGISTERED"), or one of the Code…
	// constants of this package.
	Code string
	// Reason is a human-readable account of the failure, from the provider's answer when it
	// gave one. It never holds a secret.
	Reason string
	// Wait is how long to wait before trying again (from Retry-After); zero when the provider
	// did not say.
	Wait time.Duration
	// Err is the underlying error (a context error, a network error), or nil.
	Err error
}

// Error says the channel, whether the failure is permanent, the code, the reason and the wait.
func (e *SendError) Error() string {
	var b strings.Builder
	b.WriteString("messaging: ")
	b.WriteString(e.Channel)
	if e.Permanent {
		b.WriteString(": permanent failure")
	} else {
		b.WriteString(": transient failure")
	}
	if e.Code != "" {
		b.WriteString(" (" + e.Code + ")")
	}
	if e.Reason != "" {
		b.WriteString(": " + e.Reason)
	}
	if e.Wait > 0 {
		fmt.Fprintf(&b, "; retry in %s", e.Wait)
	}
	return b.String()
}

// RetryAfter returns how long to wait before trying again; zero means "use your own backoff"
// (and, for a permanent error, that there is no point).
func (e *SendError) RetryAfter() time.Duration { return e.Wait }

// Unwrap returns the underlying error, so errors.Is(err, context.DeadlineExceeded) works.
func (e *SendError) Unwrap() error { return e.Err }

// IsPermanent reports whether err is a *SendError that will not heal by retrying.
func IsPermanent(err error) bool {
	var se *SendError
	return errors.As(err, &se) && se.Permanent
}

// IsAuth reports whether err is a *SendError for credentials the provider refused.
func IsAuth(err error) bool {
	var se *SendError
	return errors.As(err, &se) && se.Code == CodeAuth
}

// ErrorCode returns the Code of a *SendError in err's chain, or "".
func ErrorCode(err error) string {
	var se *SendError
	if errors.As(err, &se) {
		return se.Code
	}
	return ""
}

// parseRetryAfter reads a Retry-After value in (possibly fractional) seconds or as an HTTP
// date; it returns zero when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 || math.IsNaN(secs) || math.IsInf(secs, 0) || secs > 86400 {
			return 0
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// redact replaces every non-empty secret in s.
func redact(s string, secrets ...string) string {
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}

// clip shortens s to at most n bytes (on a rune boundary).
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
