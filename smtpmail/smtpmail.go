// Package smtpmail delivers auth.Email over SMTP with wneessen/go-mail.
//
// Every Send dials its own connection and closes it. Onramp's mail is
// transactional (codes, links, confirmations) and low in volume, so the few
// milliseconds of a fresh connection cost nothing, while a kept-open one
// would have to outlive servers' idle timeouts, be health-checked, and
// serialise concurrent Sends behind one mutex; a half-dead pooled connection
// is also the classic way to lose or duplicate a message in the middle of
// DATA.
package smtpmail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/onramp-dev/onramp/auth"
)

// DefaultTimeout bounds one Send when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// Config configures a Mailer.
type Config struct {
	// URL is smtp://[user:pass@]host[:port][?tls=none|required] or
	// smtps://[user:pass@]host[:port]; see ParseURL.
	URL string
	// From is the sender, e.g. "Onramp <no-reply@example.com>". Its domain
	// also names the Message-IDs.
	From string
	// Log receives what a caller cannot see in Send's result. Nil discards.
	Log *slog.Logger
	// Timeout bounds a whole Send: connect, TLS, AUTH and DATA. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// TLSConfig, when set, verifies the server, e.g. against a private CA.
	// Nil uses the system roots. ServerName defaults to the URL's host.
	TLSConfig *tls.Config
}

// Mailer sends auth emails over SMTP. It is safe for concurrent use.
type Mailer struct {
	server    Settings
	from      *netmail.Address
	idDomain  string
	log       *slog.Logger
	timeout   time.Duration
	tlsConfig *tls.Config
}

var _ auth.Mailer = (*Mailer)(nil)

// New validates cfg; it does not connect, so a server that is down at start
// only shows in Send's errors, which the outbox retries.
func New(cfg Config) (*Mailer, error) {
	server, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("smtpmail: %w", err)
	}
	if strings.TrimSpace(cfg.From) == "" {
		return nil, errors.New("smtpmail: From is empty; want an address such as no-reply@example.com")
	}
	from, err := netmail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("smtpmail: From %q: %w", cfg.From, err)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("smtpmail: Timeout %v is negative", cfg.Timeout)
	}
	m := &Mailer{
		server:   server,
		from:     from,
		idDomain: from.Address[strings.LastIndexByte(from.Address, '@')+1:],
		log:      cfg.Log,
		timeout:  cfg.Timeout,
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.timeout == 0 {
		m.timeout = DefaultTimeout
	}
	if cfg.TLSConfig != nil {
		m.tlsConfig = cfg.TLSConfig.Clone()
	} else {
		m.tlsConfig = &tls.Config{}
	}
	if m.tlsConfig.ServerName == "" {
		m.tlsConfig.ServerName = server.Host
	}
	if m.tlsConfig.MinVersion == 0 {
		m.tlsConfig.MinVersion = tls.VersionTLS12
	}
	return m, nil
}

// Server is the parsed URL, password hidden by its String method.
func (m *Mailer) Server() Settings { return m.server }

// Send delivers e. Errors are temporary unless IsPermanent says otherwise.
//
// If the connection breaks after the server received the whole message but
// before it acknowledged it, SMTP cannot tell whether the message was
// accepted; Send reports a temporary error and a retry may deliver it twice.
// Auth emails tolerate that; losing them would be worse.
func (m *Mailer) Send(ctx context.Context, e auth.Email) error {
	msg, to, err := m.message(e)
	if err != nil {
		return &sendError{permanent: true, err: fmt.Errorf("smtpmail: %w", err)}
	}

	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	a := &attempt{ctx: ctx, implicit: m.server.TLS == TLSImplicit, tlsConfig: m.tlsConfig}
	defer a.close()

	client, err := gomail.NewClient(m.server.Host, m.options(a)...)
	if err != nil {
		return fmt.Errorf("smtpmail: client: %w", err)
	}
	conn, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return m.fail(ctx, "connect", to, err)
	}
	sendErr := client.SendWithSMTPClient(conn, msg)
	quitErr := client.CloseWithSMTPClient(conn)
	if msg.IsDelivered() {
		if quitErr != nil {
			// The server accepted the message; a retry would duplicate it.
			m.log.WarnContext(ctx, "smtpmail: message accepted but QUIT failed",
				"server", m.server.Addr(), "message_id", msg.GetMessageID(), "err", quitErr)
		}
		m.log.DebugContext(ctx, "smtpmail: sent",
			"server", m.server.Addr(), "message_id", msg.GetMessageID())
		return nil
	}
	if sendErr == nil {
		sendErr = errors.New("message not delivered")
	}
	return m.fail(ctx, "send", to, sendErr)
}

func (m *Mailer) fail(ctx context.Context, step, to string, err error) error {
	se := classify(err)
	// go-mail reports an expired deadline as a bare i/o timeout; name the
	// reason so that callers can tell shutdown from a slow server. The
	// connection's deadline is the context's, and the poller can fire it a
	// moment before the context's timer sets ctx.Err, hence the clock.
	ctxErr := ctx.Err()
	if d, ok := ctx.Deadline(); ctxErr == nil && ok && !time.Now().Before(d) {
		ctxErr = context.DeadlineExceeded
	}
	if ctxErr != nil {
		err = fmt.Errorf("%w (%w)", err, ctxErr)
	}
	se.err = fmt.Errorf("smtpmail: email to %s via %s: %s: %w", to, m.server.Addr(), step, err)
	return se
}

func (m *Mailer) options(a *attempt) []gomail.Option {
	opts := []gomail.Option{
		gomail.WithPort(m.server.Port),
		gomail.WithTimeout(m.timeout),
		gomail.WithDialContextFunc(a.dial),
		gomail.WithTLSConfig(m.tlsConfig),
		// The connection was dialled for this message a moment ago: a
		// NOOP to test it, or an RSET before QUIT, would only add round
		// trips.
		gomail.WithoutNoop(),
		gomail.WithoutRset(),
	}
	switch m.server.TLS {
	case TLSOpportunistic:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case TLSRequired:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSNone, TLSImplicit:
		// Implicit TLS is done by attempt.dial; STARTTLS on top of it
		// would be an error.
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if m.server.Username != "" {
		// SCRAM never reveals the password; PLAIN and LOGIN are what most
		// providers offer and go-mail refuses them unless the session is
		// encrypted or the server is on loopback.
		opts = append(opts,
			gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthPlain, gomail.SMTPAuthLogin),
			gomail.WithUsername(m.server.Username),
			gomail.WithPassword(m.server.Password),
		)
	}
	return opts
}

// message builds the MIME message, or says why e can never be sent.
func (m *Mailer) message(e auth.Email) (*gomail.Msg, string, error) {
	to, err := parseRecipient(e.To)
	if err != nil {
		return nil, "", err
	}
	if err := checkContent(e); err != nil {
		return nil, "", err
	}
	// No User-Agent/X-Mailer: naming the library and its version tells
	// recipients nothing and tells attackers what to look for.
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(m.from)
	msg.ToMailAddress(to)
	msg.Subject(e.Subject)
	// The right side names the sender's domain rather than this machine's
	// hostname (go-mail's default), which in containers is a random string
	// that spam filters dislike.
	msg.SetMessageIDWithValue(strings.ToLower(rand.Text()) + "@" + m.idDomain)
	msg.SetDate()
	// RFC 3834: out-of-office responders must not answer a code email.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, e.Text)
	if e.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, e.HTML)
	}
	return msg, to.Address, nil
}

func parseRecipient(s string) (*netmail.Address, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: no recipient", ErrInvalidEmail)
	}
	to, err := netmail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%w: recipient %q: %v", ErrInvalidEmail, s, err)
	}
	return to, nil
}

func checkContent(e auth.Email) error {
	if strings.ContainsAny(e.Subject, "\r\n") {
		// A line break in a subject is a template bug; go-mail would encode
		// it safely, but the recipient would see a mangled subject.
		return fmt.Errorf("%w: subject contains a line break", ErrInvalidEmail)
	}
	if strings.TrimSpace(e.Text) == "" {
		return fmt.Errorf("%w: empty text body", ErrInvalidEmail)
	}
	return nil
}
