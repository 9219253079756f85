package callout

import (
	"errors"
	"fmt"
)

// Kind classifies an error so that every transport can map it to one answer
// (an HTTP status, an HL7 acknowledgement code) in a single place.
type Kind string

// The kinds of error the service reports.
const (
	KindInvalid       Kind = "invalid"       // the request is malformed: wrong shape or types
	KindUnprocessable Kind = "unprocessable" // well formed, but breaks a rule of the domain
	KindNotFound      Kind = "not_found"
	KindConflict      Kind = "conflict"
	KindUnauthorized  Kind = "unauthorized"
	KindForbidden     Kind = "forbidden"
	KindTooLarge      Kind = "too_large"
	KindThrottled     Kind = "too_many_requests" // wait before trying again
	KindInternal      Kind = "internal"
)

// Error is an error a user can act on: its Message is safe to show, and its
// Kind says what went wrong. Internal errors keep their cause for the log only.
type Error struct {
	Kind    Kind
	Message string
	Err     error // the underlying cause, never shown to users
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of kind k with a formatted user-facing message.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// ErrorKind returns the kind of err, or KindInternal when err carries none.
func ErrorKind(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// ErrorMessage returns the user-facing message of err; errors without a kind
// get a generic message so that internals never leak to a client.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Kind != KindInternal {
		return e.Message
	}
	return "internal error"
}

// ErrorMessageOrErr returns the user-facing message of an error with a kind,
// and the whole error text otherwise: for a command-line user, who is also
// the operator, the detail is the useful part.
func ErrorMessageOrErr(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Kind != KindInternal {
		return e.Message
	}
	return err.Error()
}
