package smtpmail_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/internal/mailpit"
	"github.com/onramp-dev/onramp/smtpmail"
)

const wait = 10 * time.Second

// lf undoes MIME's CRLF line endings and the final line break.
func lf(s string) string {
	return strings.TrimRight(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
}

func newMailer(t *testing.T, cfg smtpmail.Config) *smtpmail.Mailer {
	t.Helper()
	if cfg.From == "" {
		cfg.From = "Onramp <no-reply@onramp.test>"
	}
	m, err := smtpmail.New(cfg)
	if err != nil {
		t.Fatalf("smtpmail.New: %v", err)
	}
	return m
}

// Every header and part is checked as Mailpit parsed it from the wire.
func TestSendTextOnly(t *testing.T) {
	mp := mailpit.Start(t)
	m := newMailer(t, smtpmail.Config{URL: mp.SMTPURL()})

	before := time.Now().Add(-time.Second)
	err := m.Send(t.Context(), auth.Email{
		To:      "ada@example.com",
		Subject: "Your sign-in code",
		Text:    "Your code is 493021.\nIt expires in 10 minutes.",
	})
	if err != nil {
		t.Fatal(err)
	}

	got := mp.WaitFor(t, "ada@example.com", wait)
	if got.Subject != "Your sign-in code" {
		t.Errorf("Subject = %q", got.Subject)
	}
	if got.From.Address != "no-reply@onramp.test" || got.From.Name != "Onramp" {
		t.Errorf("From = %+v", got.From)
	}
	if len(got.To) != 1 || got.To[0].Address != "ada@example.com" {
		t.Errorf("To = %+v", got.To)
	}
	if lf(got.Text) != "Your code is 493021.\nIt expires in 10 minutes." {
		t.Errorf("Text = %q", got.Text)
	}
	if got.HTML != "" {
		t.Errorf("HTML = %q, want none", got.HTML)
	}
	if ct := got.Header("Content-Type"); !strings.HasPrefix(ct, "text/plain") || !strings.Contains(strings.ToLower(ct), "utf-8") {
		t.Errorf("Content-Type = %q", ct)
	}
	if !strings.HasSuffix(got.MessageID, "@onramp.test") || len(got.MessageID) < len("@onramp.test")+20 {
		t.Errorf("Message-ID = %q, want a random id at the From domain", got.MessageID)
	}
	date, err := netmail.ParseDate(got.Header("Date"))
	if err != nil {
		t.Errorf("Date header %q: %v", got.Header("Date"), err)
	} else if date.Before(before) || date.After(time.Now().Add(time.Second)) {
		t.Errorf("Date = %v, want about now", date)
	}
	if got.Header("Auto-Submitted") != "auto-generated" {
		t.Errorf("Auto-Submitted = %q", got.Header("Auto-Submitted"))
	}
	for _, h := range []string{"User-Agent", "X-Mailer"} {
		if v := got.Header(h); v != "" {
			t.Errorf("%s = %q, want none", h, v)
		}
	}
}

func TestSendTextAndHTML(t *testing.T) {
	mp := mailpit.Start(t)
	m := newMailer(t, smtpmail.Config{URL: mp.SMTPURL()})

	html := `<p>Your code is <b>493021</b>.</p><p><a href="https://onramp.test/verify?c=493021&amp;x=1">Verify</a></p>`
	err := m.Send(t.Context(), auth.Email{
		To:      "Grace Hopper <grace@example.com>",
		Subject: "Verify your email",
		Text:    "Your code is 493021.",
		HTML:    html,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := mp.WaitFor(t, "grace@example.com", wait)
	if ct := got.Header("Content-Type"); !strings.HasPrefix(ct, "multipart/alternative") {
		t.Errorf("Content-Type = %q, want multipart/alternative", ct)
	}
	if strings.TrimSpace(got.Text) != "Your code is 493021." {
		t.Errorf("Text = %q", got.Text)
	}
	if strings.TrimSpace(got.HTML) != html {
		t.Errorf("HTML = %q, want %q", got.HTML, html)
	}
	if len(got.To) != 1 || got.To[0].Name != "Grace Hopper" {
		t.Errorf("To = %+v, want the display name kept", got.To)
	}
}

func TestSendUTF8(t *testing.T) {
	mp := mailpit.Start(t)
	m := newMailer(t, smtpmail.Config{URL: mp.SMTPURL(), From: "Équipe Onramp <no-reply@onramp.test>"})

	subject := "Ваш код: 493021 — ¡gracias! ✓ 日本語"
	text := "Grüße, Zoë. Код действует 10 минут. 🚀\nA line that is long enough to need soft line breaks in quoted-printable encoding, which wraps at seventy-six characters."
	if err := m.Send(t.Context(), auth.Email{To: "zoe@example.com", Subject: subject, Text: text, HTML: "<p>Grüße 🚀</p>"}); err != nil {
		t.Fatal(err)
	}
	got := mp.WaitFor(t, "zoe@example.com", wait)
	if got.Subject != subject {
		t.Errorf("Subject = %q, want %q", got.Subject, subject)
	}
	if lf(got.Text) != text {
		t.Errorf("Text = %q, want %q", got.Text, text)
	}
	if got.From.Name != "Équipe Onramp" {
		t.Errorf("From name = %q", got.From.Name)
	}
	if strings.TrimSpace(got.HTML) != "<p>Grüße 🚀</p>" {
		t.Errorf("HTML = %q", got.HTML)
	}
	// The raw header must be RFC 2047 encoded, not 8-bit.
	raw := got.Header("Subject")
	for _, r := range raw {
		if r > 127 {
			t.Errorf("raw Subject header is not ASCII: %q", raw)
			break
		}
	}
}

// countingListener accepts and counts connections without speaking SMTP.
func countingListener(t *testing.T) (url string, accepted *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	accepted = new(atomic.Int64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	return "smtp://" + l.Addr().String(), accepted
}

// Invalid emails fail permanently without a connection: the listener here
// would count any.
func TestSendRejectsInvalidEmailBeforeDialling(t *testing.T) {
	url, accepted := countingListener(t)
	m := newMailer(t, smtpmail.Config{URL: url})
	for _, e := range []auth.Email{
		{To: "", Subject: "s", Text: "t"},
		{To: "not an address", Subject: "s", Text: "t"},
		{To: "ada@", Subject: "s", Text: "t"},
		{To: "@example.com", Subject: "s", Text: "t"},
		{To: "ada@example.com, bob@example.com", Subject: "s", Text: "t"},
		{To: "ada@example.com\r\nBcc: eve@example.com", Subject: "s", Text: "t"},
		{To: "ada@example.com", Subject: "two\r\nBcc: eve@example.com", Text: "t"},
		{To: "ada@example.com", Subject: "s", Text: "  "},
	} {
		err := m.Send(t.Context(), e)
		if err == nil {
			t.Errorf("Send(%q, %q, %q): no error", e.To, e.Subject, e.Text)
			continue
		}
		if !errors.Is(err, smtpmail.ErrInvalidEmail) || !smtpmail.IsPermanent(err) {
			t.Errorf("Send(%q): %v; want a permanent ErrInvalidEmail", e.To, err)
		}
	}
	time.Sleep(50 * time.Millisecond) // let a wrongly dialled connection be counted
	if n := accepted.Load(); n != 0 {
		t.Errorf("%d connections made for invalid emails", n)
	}
}

func TestSendServerDownIsTemporary(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now

	m := newMailer(t, smtpmail.Config{URL: "smtp://" + addr})
	err = m.Send(t.Context(), auth.Email{To: "ada@example.com", Subject: "s", Text: "t"})
	if err == nil {
		t.Fatal("Send to a closed port: no error")
	}
	if smtpmail.IsPermanent(err) {
		t.Errorf("connection refused reported permanent: %v", err)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error does not name the server: %v", err)
	}
}

func TestSendChaos(t *testing.T) {
	mp := mailpit.StartWith(t, mailpit.Options{Chaos: true})
	m := newMailer(t, smtpmail.Config{URL: "smtp://u:p@" + mp.SMTPAddr()})
	email := auth.Email{To: "ada@example.com", Subject: "s", Text: "t"}

	tests := []struct {
		name      string
		chaos     mailpit.Chaos
		permanent bool
	}{
		{"recipient 451", mailpit.Chaos{Recipient: mailpit.Trigger{ErrorCode: 451, Probability: 100}}, false},
		{"recipient 550", mailpit.Chaos{Recipient: mailpit.Trigger{ErrorCode: 550, Probability: 100}}, true},
		{"recipient 554", mailpit.Chaos{Recipient: mailpit.Trigger{ErrorCode: 554, Probability: 100}}, true},
		// RFC 5321 §4.5.3.1.10: 552 to RCPT is to be treated as 452.
		{"recipient 552", mailpit.Chaos{Recipient: mailpit.Trigger{ErrorCode: 552, Probability: 100}}, false},
		{"sender 451", mailpit.Chaos{Sender: mailpit.Trigger{ErrorCode: 451, Probability: 100}}, false},
		// MAIL FROM and AUTH failures are about our configuration, not this
		// email: temporary, so the outbox keeps it until someone fixes it.
		{"sender 550", mailpit.Chaos{Sender: mailpit.Trigger{ErrorCode: 550, Probability: 100}}, false},
		{"auth 535", mailpit.Chaos{Authentication: mailpit.Trigger{ErrorCode: 535, Probability: 100}}, false},
		{"auth 454", mailpit.Chaos{Authentication: mailpit.Trigger{ErrorCode: 454, Probability: 100}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := mp.SetChaos(t.Context(), tt.chaos); err != nil {
				t.Fatal(err)
			}
			err := m.Send(t.Context(), email)
			if err == nil {
				t.Fatal("no error")
			}
			wantCode := tt.chaos.Recipient.ErrorCode + tt.chaos.Sender.ErrorCode + tt.chaos.Authentication.ErrorCode
			if got := smtpmail.Code(err); got != wantCode {
				t.Errorf("Code = %d, want %d (%v)", got, wantCode, err)
			}
			if got := smtpmail.IsPermanent(err); got != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v (%v)", got, tt.permanent, err)
			}
		})
	}

	// Once the server recovers, the same Mailer delivers.
	if err := mp.SetChaos(t.Context(), mailpit.Chaos{}); err != nil {
		t.Fatal(err)
	}
	if err := m.Send(t.Context(), email); err != nil {
		t.Fatalf("after chaos: %v", err)
	}
	mp.WaitFor(t, "ada@example.com", wait)
}

// A real 5xx from the server's own policy, not chaos.
func TestSendRejectedRecipientIsPermanent(t *testing.T) {
	mp := mailpit.StartWith(t, mailpit.Options{AllowedRecipients: `@example\.com$`})
	m := newMailer(t, smtpmail.Config{URL: mp.SMTPURL()})

	err := m.Send(t.Context(), auth.Email{To: "mallory@elsewhere.test", Subject: "s", Text: "t"})
	if !smtpmail.IsPermanent(err) || smtpmail.Code(err) != 550 {
		t.Fatalf("Send to a rejected recipient: %v (permanent %v, code %d); want permanent 550", err, smtpmail.IsPermanent(err), smtpmail.Code(err))
	}
	if err := m.Send(t.Context(), auth.Email{To: "ada@example.com", Subject: "s", Text: "t"}); err != nil {
		t.Fatal(err)
	}
	mp.WaitFor(t, "ada@example.com", wait)
}

func TestSendConcurrent(t *testing.T) {
	mp := mailpit.Start(t)
	m := newMailer(t, smtpmail.Config{URL: mp.SMTPURL()})
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- m.Send(t.Context(), auth.Email{To: fmt.Sprintf("p%d@example.com", i), Subject: fmt.Sprint(i), Text: "t"})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for i := range n {
		if got := mp.WaitFor(t, fmt.Sprintf("p%d@example.com", i), wait); got.Subject != fmt.Sprint(i) {
			t.Errorf("p%d got subject %q", i, got.Subject)
		}
	}
}

func TestSendHonoursContext(t *testing.T) {
	// A server that greets, answers EHLO, then never answers again.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprint(c, "220 stall ESMTP\r\n")
				buf := make([]byte, 512)
				n, _ := c.Read(buf)
				if strings.HasPrefix(strings.ToUpper(string(buf[:n])), "EHLO") {
					fmt.Fprint(c, "250-stall\r\n250 8BITMIME\r\n")
				}
				_, _ = c.Read(buf)
				time.Sleep(time.Minute)
			}()
		}
	}()
	url := "smtp://" + l.Addr().String() + "?tls=none"
	email := auth.Email{To: "ada@example.com", Subject: "s", Text: "t"}

	t.Run("cancel", func(t *testing.T) {
		m := newMailer(t, smtpmail.Config{URL: url, Timeout: time.Minute})
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(200*time.Millisecond, cancel)
		start := time.Now()
		err := m.Send(ctx, email)
		if !errors.Is(err, context.Canceled) || smtpmail.IsPermanent(err) {
			t.Fatalf("Send: %v; want a temporary error wrapping context.Canceled", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Send took %v after cancel", d)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		m := newMailer(t, smtpmail.Config{URL: url, Timeout: 300 * time.Millisecond})
		start := time.Now()
		err := m.Send(t.Context(), email)
		if !errors.Is(err, context.DeadlineExceeded) || smtpmail.IsPermanent(err) {
			t.Fatalf("Send: %v; want a temporary error wrapping context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Send took %v with a 300ms Timeout", d)
		}
	})
}
