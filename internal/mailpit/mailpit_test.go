package mailpit_test

import (
	"context"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/onramp-dev/onramp/internal/mailpit"
)

// The helper is tested with the standard library's SMTP client, so that a
// bug in smtpmail cannot hide one here.
func TestStartSendReadClear(t *testing.T) {
	mp := mailpit.Start(t)
	ctx := t.Context()

	raw := "From: Sender <sender@example.com>\r\n" +
		"To: ada@example.com\r\n" +
		"Subject: hello\r\n" +
		"Message-ID: <abc@example.com>\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" +
		"body line\r\n"
	if err := smtp.SendMail(mp.SMTPAddr(), nil, "sender@example.com", []string{"ada@example.com", "bada@example.com"}, []byte(raw)); err != nil {
		t.Fatal(err)
	}

	m := mp.WaitFor(t, "ada@example.com", 5*time.Second)
	if m.Subject != "hello" || m.MessageID != "abc@example.com" || m.From.Address != "sender@example.com" {
		t.Errorf("got subject %q, message-id %q, from %q", m.Subject, m.MessageID, m.From.Address)
	}
	if strings.TrimSpace(m.Text) != "body line" {
		t.Errorf("text = %q", m.Text)
	}
	if got := m.Header("Message-Id"); got != "<abc@example.com>" {
		t.Errorf("Message-Id header = %q; headers %v", got, m.Headers)
	}

	// "ada@example.com" must not match a message only to "bada@example.com".
	if err := smtp.SendMail(mp.SMTPAddr(), nil, "sender@example.com", []string{"bada@example.com"}, []byte(strings.Replace(raw, "To: ada@", "To: bada@", 1))); err != nil {
		t.Fatal(err)
	}
	mp.WaitFor(t, "bada@example.com", 5*time.Second)
	msgs, err := mp.Messages(ctx, "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Errorf("Messages(ada) = %d messages, want 1", len(msgs))
	}

	if err := mp.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	msgs, err = mp.Messages(ctx, "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 0 {
		t.Errorf("after Clear: %d messages", len(msgs))
	}
}

func TestSetChaosNeedsOption(t *testing.T) {
	mp := mailpit.Start(t)
	if err := mp.SetChaos(context.Background(), mailpit.Chaos{}); err == nil {
		t.Fatal("SetChaos on a server without Options.Chaos: no error")
	}
}
