package smtpmail_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/smtpmail"
)

func TestLogMailer(t *testing.T) {
	var buf bytes.Buffer
	m := smtpmail.NewLogMailer(slog.New(slog.NewTextHandler(&buf, nil)))
	if !strings.Contains(buf.String(), "level=WARN") || !strings.Contains(buf.String(), "ONRAMP_SMTP_URL") {
		t.Errorf("no warning that emails are not sent: %s", buf.String())
	}
	buf.Reset()

	err := m.Send(t.Context(), auth.Email{
		To:      "ada@example.com",
		Subject: "Your sign-in code",
		Text:    "Your code is 493021.",
		HTML:    "<p>493021</p>",
	})
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	// The developer reads the code from the log: the text body is what
	// matters.
	for _, want := range []string{"level=INFO", "ada@example.com", "Your sign-in code", "Your code is 493021."} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q: %s", want, out)
		}
	}

	err = m.Send(t.Context(), auth.Email{To: "not an address", Subject: "s", Text: "t"})
	if !smtpmail.IsPermanent(err) {
		t.Errorf("invalid address: %v; want the permanent error Mailer gives", err)
	}
}
