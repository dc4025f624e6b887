package smtpmail_test

import (
	"strings"
	"testing"

	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/internal/mailpit"
	"github.com/onramp-dev/onramp/smtpmail"
)

var tlsEmail = auth.Email{To: "ada@example.com", Subject: "over TLS", Text: "t"}

// sendFails asserts a temporary failure whose message contains want.
func sendFails(t *testing.T, m *smtpmail.Mailer, want string) {
	t.Helper()
	err := m.Send(t.Context(), tlsEmail)
	if err == nil {
		t.Fatalf("Send: no error, want one containing %q", want)
	}
	if smtpmail.IsPermanent(err) {
		t.Errorf("Send: %v reported permanent", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("Send: %v; want it to contain %q", err, want)
	}
}

// Mailpit's Received header does not say whether TLS was used, so these
// tests prove it through certificate verification: a client that does not
// trust the server's certificate fails only if it actually started TLS.
func TestSendSTARTTLS(t *testing.T) {
	mp := mailpit.StartWith(t, mailpit.Options{TLS: mailpit.STARTTLS})

	t.Run("opportunistic upgrades and verifies", func(t *testing.T) {
		sendFails(t, newMailer(t, smtpmail.Config{URL: mp.SMTPURL()}), "certificate")
		m := newMailer(t, smtpmail.Config{URL: mp.SMTPURL(), TLSConfig: mp.TLSConfig()})
		if err := m.Send(t.Context(), tlsEmail); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("none stays in clear text", func(t *testing.T) {
		m := newMailer(t, smtpmail.Config{URL: mp.SMTPURL() + "?tls=none"})
		if err := m.Send(t.Context(), tlsEmail); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("required", func(t *testing.T) {
		m := newMailer(t, smtpmail.Config{URL: mp.SMTPURL() + "?tls=required", TLSConfig: mp.TLSConfig()})
		if err := m.Send(t.Context(), tlsEmail); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSendTLSRequiredRefusesClearText(t *testing.T) {
	mp := mailpit.Start(t) // offers no STARTTLS
	sendFails(t, newMailer(t, smtpmail.Config{URL: mp.SMTPURL() + "?tls=required"}), "STARTTLS")
	msgs, err := mp.Messages(t.Context(), tlsEmail.To)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 0 {
		t.Errorf("%d messages delivered in clear text despite tls=required", len(msgs))
	}
}

func TestSendAuthOverRequiredSTARTTLS(t *testing.T) {
	mp := mailpit.StartWith(t, mailpit.Options{
		TLS:   mailpit.RequireSTARTTLS,
		Users: map[string]string{"onramp": "s3cret"},
	})
	host := strings.TrimPrefix(mp.SMTPURL(), "smtp://")

	m := newMailer(t, smtpmail.Config{URL: "smtp://onramp:s3cret@" + host + "?tls=required", TLSConfig: mp.TLSConfig()})
	if err := m.Send(t.Context(), tlsEmail); err != nil {
		t.Fatal(err)
	}
	mp.WaitFor(t, tlsEmail.To, wait)

	// A wrong password is a configuration problem: temporary, code kept.
	bad := newMailer(t, smtpmail.Config{URL: "smtp://onramp:wrong@" + host + "?tls=required", TLSConfig: mp.TLSConfig()})
	err := bad.Send(t.Context(), tlsEmail)
	if err == nil || smtpmail.IsPermanent(err) || smtpmail.Code(err) != 535 {
		t.Fatalf("wrong password: %v (code %d); want temporary 535", err, smtpmail.Code(err))
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("error reveals the password: %v", err)
	}

	// Without credentials the server refuses MAIL FROM with 530: also
	// configuration, also temporary.
	anon := newMailer(t, smtpmail.Config{URL: "smtp://" + host + "?tls=required", TLSConfig: mp.TLSConfig()})
	err = anon.Send(t.Context(), tlsEmail)
	if err == nil || smtpmail.IsPermanent(err) || smtpmail.Code(err) != 530 {
		t.Fatalf("no credentials: %v (code %d); want temporary 530", err, smtpmail.Code(err))
	}
}

func TestSendImplicitTLS(t *testing.T) {
	mp := mailpit.StartWith(t, mailpit.Options{TLS: mailpit.ImplicitTLS})
	if !strings.HasPrefix(mp.SMTPURL(), "smtps://") {
		t.Fatalf("SMTPURL = %q", mp.SMTPURL())
	}
	host := strings.TrimPrefix(mp.SMTPURL(), "smtps://")

	sendFails(t, newMailer(t, smtpmail.Config{URL: mp.SMTPURL()}), "certificate")

	m := newMailer(t, smtpmail.Config{URL: "smtps://any:thing@" + host, TLSConfig: mp.TLSConfig()})
	if err := m.Send(t.Context(), tlsEmail); err != nil {
		t.Fatal(err)
	}
	if got := mp.WaitFor(t, tlsEmail.To, wait); got.Subject != tlsEmail.Subject {
		t.Errorf("Subject = %q", got.Subject)
	}
}
