// Package messagingfake holds in-process fakes of the services package messaging talks to,
// for tests and benchmarks. Each listens on 127.0.0.1 only and closes when the test ends.
//
//   - SMTPSink is an SMTP server (github.com/emersion/go-smtp) that keeps what it receives:
//     plain, STARTTLS or implicit TLS with a self-signed certificate (TLSConfig trusts it),
//     optional AUTH PLAIN, recipients rejected with a chosen code, FailNext for 4xx answers to
//     DATA, and DropConnections to cut clients off as an idle timeout would. It stores each
//     message raw and parses it only when Messages is called, so a benchmark can push a lot
//     through it.
//   - Twilio serves the Messages resource of Twilio's REST API with its rules and error bodies:
//     HTTP Basic auth (20003), E.164 recipients (21211), unsubscribed (21610) and landline
//     (21614) numbers, FailNext for 429/5xx.
//   - FCM serves Google's OAuth2 token endpoint for a service account it generates (verifying
//     the RS256 JWT assertion) and FCM's HTTP v1 messages:send with google.rpc.Status error
//     bodies and FcmError details (UNREGISTERED, SENDER_ID_MISMATCH, INVALID_ARGUMENT,
//     QUOTA_EXCEEDED, UNAVAILABLE), FailNext, and a count of minted tokens.
//
// Each fake has Settings, which returns the matching messaging settings pointed at it.
package messagingfake

import (
	"net/http"
	"strconv"
)

// testingT is the part of *testing.T (and *testing.B) the constructors use.
type testingT interface {
	Helper()
	Fatalf(string, ...any)
	Cleanup(func())
}

// failure is one answer queued by FailNext.
type failure struct {
	status     int
	retryAfter string
}

func writeJSONHeader(w http.ResponseWriter, status int, retryAfter string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.WriteHeader(status)
}

func itoa(n int) string { return strconv.Itoa(n) }
