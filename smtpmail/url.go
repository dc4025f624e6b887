package smtpmail

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// TLSMode says how the connection to the SMTP server is encrypted.
type TLSMode int

const (
	// TLSOpportunistic upgrades with STARTTLS when the server offers it and
	// sends in clear text when it does not: the default of smtp://, because
	// local relays and test servers often have no certificate. A server
	// that offers STARTTLS must present a certificate that verifies; there
	// is no silent fall back to clear text (use tls=none for a relay with a
	// self-signed certificate, or Config.TLSConfig to trust its CA).
	TLSOpportunistic TLSMode = iota
	// TLSRequired demands STARTTLS and fails when the server does not offer
	// it (smtp://…?tls=required).
	TLSRequired
	// TLSNone never encrypts (smtp://…?tls=none).
	TLSNone
	// TLSImplicit speaks TLS from the first byte (smtps://, RFC 8314).
	TLSImplicit
)

func (m TLSMode) String() string {
	switch m {
	case TLSOpportunistic:
		return "opportunistic"
	case TLSRequired:
		return "required"
	case TLSNone:
		return "none"
	case TLSImplicit:
		return "implicit"
	}
	return "TLSMode(" + strconv.Itoa(int(m)) + ")"
}

// Default ports when the URL names none. smtp:// means message submission
// (RFC 6409, port 587) rather than relay on port 25, because Onramp hands its
// mail to a provider or relay as a client, never delivers it to MX hosts.
const (
	DefaultSubmissionPort  = 587
	DefaultImplicitTLSPort = 465
)

// Settings is what an SMTP URL says.
type Settings struct {
	Host     string
	Port     int
	Username string
	Password string
	TLS      TLSMode
}

// Addr is host:port for dialling.
func (s Settings) Addr() string {
	return net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
}

// String is the URL with the password replaced, safe to log.
func (s Settings) String() string {
	u := url.URL{Scheme: "smtp", Host: s.Addr()}
	if s.TLS == TLSImplicit {
		u.Scheme = "smtps"
	}
	if s.Username != "" {
		u.User = url.UserPassword(s.Username, "xxxxx")
	}
	switch s.TLS {
	case TLSRequired:
		u.RawQuery = "tls=required"
	case TLSNone:
		u.RawQuery = "tls=none"
	}
	return u.String()
}

// ErrInvalidURL is wrapped by every ParseURL error.
var ErrInvalidURL = errors.New("invalid SMTP URL")

// ParseURL reads smtp://[user:pass@]host[:port][?tls=none|required|opportunistic]
// or smtps://[user:pass@]host[:port]. Errors never repeat the URL itself,
// because it may hold a password and errors end up in logs.
func ParseURL(raw string) (Settings, error) {
	bad := func(format string, args ...any) (Settings, error) {
		return Settings{}, fmt.Errorf("%w: %s", ErrInvalidURL, fmt.Sprintf(format, args...))
	}
	if strings.TrimSpace(raw) == "" {
		return bad("empty; want smtp://host:port or smtps://host:port")
	}
	if !strings.Contains(raw, "://") {
		// Checked first because host:port alone, the likeliest mistake,
		// would otherwise get url.Parse's puzzling answer about colons.
		return bad("no scheme; want smtp://host:port or smtps://host:port")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole input, password included; keep only
		// the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return bad("%v", err)
	}
	var s Settings
	switch u.Scheme {
	case "smtp":
		s.TLS, s.Port = TLSOpportunistic, DefaultSubmissionPort
	case "smtps":
		s.TLS, s.Port = TLSImplicit, DefaultImplicitTLSPort
	default:
		return bad("scheme %q; want smtp or smtps", u.Scheme)
	}
	if u.Path != "" && u.Path != "/" {
		return bad("unexpected path %q", u.Path)
	}
	if u.Fragment != "" {
		return bad("unexpected fragment")
	}

	s.Host = u.Hostname()
	if s.Host == "" {
		return bad("no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return bad("port %q is not a number from 1 to 65535", p)
		}
		s.Port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return bad("empty port")
	}

	if u.User != nil {
		s.Username = u.User.Username()
		s.Password, _ = u.User.Password()
		if s.Username == "" {
			return bad("password without a user name")
		}
		if s.Password == "" {
			return bad("user name without a password")
		}
	}

	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return bad("query: %v", err)
	}
	for key, vals := range q {
		if key != "tls" {
			// A typo such as ?tsl=none must not silently leave TLS on or off.
			return bad("unknown parameter %q; the only one is tls", key)
		}
		if len(vals) != 1 {
			return bad("tls given %d times", len(vals))
		}
	}
	if q.Has("tls") {
		v := strings.ToLower(q.Get("tls"))
		switch {
		case s.TLS == TLSImplicit && v == "required":
			// smtps is always encrypted; saying so again is harmless.
		case s.TLS == TLSImplicit:
			return bad("smtps:// is always TLS; tls=%s contradicts it", v)
		case v == "none":
			s.TLS = TLSNone
		case v == "required":
			s.TLS = TLSRequired
		case v == "opportunistic":
			s.TLS = TLSOpportunistic
		default:
			return bad("tls=%q; want none, required or opportunistic", v)
		}
	}

	if s.Username != "" && s.TLS == TLSNone && !isLoopback(s.Host) {
		return bad("tls=none would send the password in clear text to %s; use TLS or a loopback relay", s.Host)
	}
	return s, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
