package core

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies an error by what the caller did wrong (or what went wrong for it); the API maps
// each kind to one HTTP status.
type Kind int

// The kinds of error core returns.
const (
	KindInternal     Kind = iota // a bug or an unexpected failure: 500
	KindMalformed                // the request cannot be read: 400
	KindUnauthorized             // no or wrong credentials: 401
	KindNotFound                 // no such object for this merchant: 404
	KindConflict                 // the object's state forbids it: 409
	KindTooLarge                 // the body is over the limit: 413
	KindInvalid                  // field values are wrong: 422
	KindRateLimited              // too many attempts: 429
	KindUnavailable              // a dependency is down: 503
	KindForbidden                // signed in, but not allowed to do this: 403
)

// FieldError names one invalid field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is a domain error with a stable snake_case code that clients can rely on.
type Error struct {
	Kind       Kind
	Code       string
	Message    string
	Details    []FieldError
	RetryAfter time.Duration // for KindRateLimited
}

func (e *Error) Error() string {
	if len(e.Details) == 0 {
		return e.Code + ": " + e.Message
	}
	return fmt.Sprintf("%s: %s (%v)", e.Code, e.Message, e.Details)
}

// Is reports whether target is an *Error with the same code, so errors.Is(err, ErrListNotFound)
// works on wrapped and re-created errors alike.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// newError builds an *Error.
func newError(kind Kind, code, message string) *Error {
	return &Error{Kind: kind, Code: code, Message: message}
}

// Invalid returns a 422-kind error for one field.
func Invalid(field, message string) *Error {
	return &Error{Kind: KindInvalid, Code: "invalid_field", Message: field + ": " + message,
		Details: []FieldError{{Field: field, Message: message}}}
}

// Malformed returns a 400-kind error.
func Malformed(message string) *Error { return newError(KindMalformed, "malformed_request", message) }

// Sentinel errors. Compare with errors.Is.
var (
	ErrUnauthorized     = newError(KindUnauthorized, "unauthorized", "a valid API key is required")
	ErrStorefrontKey    = newError(KindUnauthorized, "unauthorized", "a valid X-Storefront-Key is required")
	ErrListNotFound     = newError(KindNotFound, "list_not_found", "no such code list")
	ErrCodeNotFound     = newError(KindNotFound, "code_not_found", "no such code in this list")
	ErrImportNotFound   = newError(KindNotFound, "import_not_found", "no such import")
	ErrBatchNotFound    = newError(KindNotFound, "batch_not_found", "no such batch")
	ErrListConnected    = newError(KindConflict, "list_connected", "the list is connected to a shop or a message template and still has codes; disconnect it or remove its codes first")
	ErrCodeInUse        = newError(KindConflict, "code_in_use", "the code was delivered or used and cannot be removed")
	ErrBatchNotReady    = newError(KindConflict, "batch_not_ready", "the batch is still being generated")
	ErrListExhausted    = newError(KindConflict, "list_exhausted", "the list has no code left to hand out")
	ErrListExpired      = newError(KindConflict, "list_expired", "the list has expired")
	ErrListNotStarted   = newError(KindConflict, "list_not_started", "the list has not started yet")
	ErrListArchived     = newError(KindConflict, "list_archived", "the list is archived")
	ErrAlreadyUsed      = newError(KindConflict, "already_used", "the code has no use left")
	ErrNotIssued        = newError(KindConflict, "not_issued", "the list requires a code to be delivered before it is used")
	ErrCodeRemoved      = newError(KindConflict, "code_removed", "the code was removed from the list")
	ErrReservationGone  = newError(KindNotFound, "reservation_not_found", "no such reservation")
	ErrUploadTooLarge   = newError(KindTooLarge, "upload_too_large", "the upload is larger than the configured limit")
	ErrBodyTooLarge     = newError(KindTooLarge, "body_too_large", "the request body is larger than the configured limit")
	ErrUnsupportedMedia = newError(KindMalformed, "unsupported_media_type", "send multipart/form-data with a file field, text/csv or text/plain")
	// ErrUnavailable matches (errors.Is) every error Unavailable makes, whatever dependency it names.
	ErrUnavailable = newError(KindUnavailable, "dependency_unavailable", "a dependency is not answering")
)

// RateLimited returns a 429-kind error that tells the caller when to come back.
func RateLimited(after time.Duration) *Error {
	return &Error{Kind: KindRateLimited, Code: "rate_limited", Message: "too many failed attempts; slow down", RetryAfter: after}
}

// Unavailable returns a 503-kind error naming the dependency that is down.
func Unavailable(dependency string, cause error) error {
	return fmt.Errorf("%w: %w", &Error{Kind: KindUnavailable, Code: "dependency_unavailable", Message: dependency + " is not answering"}, cause)
}
