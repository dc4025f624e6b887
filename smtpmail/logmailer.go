package smtpmail

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/onramp-dev/onramp/auth"
)

// LogMailer "sends" an email by logging it, text body included, so that a
// developer running `onramp serve` without SMTP can read sign-in codes and
// links from the terminal. That same property makes it unfit for
// production: codes in logs are credentials in logs. Only wire it when no
// SMTP URL is configured in a development setup.
type LogMailer struct {
	log *slog.Logger
}

var _ auth.Mailer = (*LogMailer)(nil)

// NewLogMailer returns a LogMailer writing to log at info level, and says
// once, at warn level, that emails are not being sent.
func NewLogMailer(log *slog.Logger) *LogMailer {
	if log == nil {
		// A LogMailer that logs nowhere would lose the codes it exists to
		// show.
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	log.Warn("smtpmail: no SMTP server configured; emails are written to this log instead of sent (development only); set ONRAMP_SMTP_URL to send them")
	return &LogMailer{log: log}
}

// Send logs e. It rejects what Mailer.Send would reject, so that a bad
// address is caught in development rather than first in production.
func (m *LogMailer) Send(ctx context.Context, e auth.Email) error {
	to, err := parseRecipient(e.To)
	if err == nil {
		err = checkContent(e)
	}
	if err != nil {
		return &sendError{permanent: true, err: fmt.Errorf("smtpmail: %w", err)}
	}
	m.log.InfoContext(ctx, "smtpmail: email (not sent)",
		"to", to.String(),
		"subject", e.Subject,
		"text", e.Text,
		"html_bytes", len(e.HTML),
	)
	return nil
}
