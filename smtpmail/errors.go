package smtpmail

import (
	"errors"
	"net/textproto"

	gomail "github.com/wneessen/go-mail"
)

// ErrInvalidEmail is wrapped by Send when the email itself can never be
// sent (a malformed recipient, an empty body). Such errors are permanent and
// are found before any connection is made.
var ErrInvalidEmail = errors.New("invalid email")

// sendError carries the verdict on retrying alongside the cause.
type sendError struct {
	permanent bool
	code      int // SMTP reply code, 0 when the server did not answer one
	err       error
}

func (e *sendError) Error() string { return e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

// IsPermanent reports whether err from Send means that sending the same
// email again can never succeed, so the caller should stop retrying: the
// email was invalid, or the server rejected the recipient or the content
// with a 5xx reply. Everything else (4xx replies, refused or dropped
// connections, timeouts, TLS and authentication failures) is temporary.
func IsPermanent(err error) bool {
	var se *sendError
	return errors.As(err, &se) && se.permanent
}

// Code returns the SMTP reply code behind err from Send, or 0 when the
// failure was not a server reply (network, TLS, invalid email).
func Code(err error) int {
	var se *sendError
	if errors.As(err, &se) {
		return se.code
	}
	return 0
}

// classify decides whether a failure from go-mail is permanent.
//
// Only 5xx replies about this message (to RCPT TO, DATA, or the end of
// DATA) are permanent. A 5xx at the greeting, EHLO, STARTTLS, AUTH or MAIL
// FROM is about our configuration (credentials, sender domain, TLS policy)
// and hits every email alike: reporting it as permanent would make the
// outbox drop every queued email while an operator fixes the setting, and
// retrying costs nothing but a log line.
func classify(err error) *sendError {
	var se *gomail.SendError
	if errors.As(err, &se) {
		code := se.ErrorCode()
		permanent := false
		switch se.Reason {
		case gomail.ErrSMTPRcptTo:
			// RFC 5321 §4.5.3.1.10: a 552 (storage exceeded) to RCPT TO is
			// to be treated as the temporary 452.
			permanent = code/100 == 5 && code != 552
		case gomail.ErrSMTPData, gomail.ErrSMTPDataClose:
			permanent = code/100 == 5
		}
		return &sendError{permanent: permanent, code: code, err: err}
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return &sendError{code: te.Code, err: err}
	}
	return &sendError{err: err}
}
