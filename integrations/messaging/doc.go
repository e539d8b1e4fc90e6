// Package messaging is Coupongate's adapters to the outside world for delivering messages to
// people: e-mail over SMTP, SMS through Twilio's REST API, and push notifications through
// Firebase Cloud Messaging (HTTP v1).
//
//   - Mailer sends Email over SMTP (with github.com/wneessen/go-mail), keeping a few connections
//     open across sends so a large batch does not pay a TCP, TLS and AUTH handshake per message.
//     SMTPSettings says where and how (STARTTLS, implicit TLS, or plain on loopback).
//   - SendSMS posts one message to Twilio's Messages resource.
//   - PushSender sends one notification to a device token through FCM, minting and caching the
//     service account's OAuth2 access token itself (a signed RS256 JWT exchanged at token_uri).
//
// Every failure is a *SendError that says whether trying again can help: Permanent errors (an
// invalid number, a rejected address, an unregistered device, refused credentials) will fail the
// same way again; the others (timeouts, 5xx, 429, SMTP 4xx) may succeed later, not before
// RetryAfter when it is not zero. Code "auth" marks refused credentials: permanent for the
// message, but a settings problem to fix rather than a bad recipient.
//
// None of the three services deduplicates: a send that failed transiently after the provider
// received it (a lost answer, a timeout) may have been delivered, and sending it again may
// deliver it twice. Idempotence is the caller's job: record what was sent before retrying, and
// for e-mail reuse the same Email.MessageID so a resend is recognisable.
//
// No secret (SMTP password, Twilio auth token, service-account private key, access token) is
// put in an error message; the settings types print with their secrets redacted.
package messaging
