package auth

import "context"

// Email is one message to one person. Text is always set; HTML is an
// optional alternative part.
type Email struct {
	To      string
	Subject string
	Text    string
	HTML    string
}

// Mailer delivers emails. The outbox worker calls it after the transaction
// that queued the email committed, and retries on error, so Send must be
// safe to repeat. smtpmail implements it over SMTP; a log mailer prints
// messages for development.
type Mailer interface {
	Send(ctx context.Context, e Email) error
}
