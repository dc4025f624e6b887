package main

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/httpapi"
	"github.com/onramp-dev/onramp/oidcop"
)

// oidcAccounts gives the provider what it needs from accounts.
type oidcAccounts struct{ *auth.Accounts }

// EndSession ends the session an id_token_hint named; its back-channel
// logouts go out through the outbox. The audit entry carries the logout
// request's IP and user agent.
func (o oidcAccounts) EndSession(ctx context.Context, e oidcop.EndSession) error {
	return o.EndSessionByID(ctx, e.SessionID, e.Info)
}

// logoutSender delivers back-channel logouts for the outbox worker.
type logoutSender struct {
	p  *oidcop.Provider
	hc *http.Client
}

func (l logoutSender) SendLogout(ctx context.Context, b auth.BackchannelLogout) error {
	return l.p.SendBackchannelLogout(ctx, l.hc, oidcop.BackchannelLogout{ClientID: b.ClientID, Subject: b.Subject, SessionID: b.SessionID})
}

// openProvider builds the OpenID Connect provider and the bridge the
// hosted pages finish sign-ins through. sessionOf is read at request time
// (the HTTP server is made after the provider).
func (a *app) openProvider(ctx context.Context, sessionOf func(*http.Request) string, requestInfo func(*http.Request) auth.RequestInfo) (*oidcop.Provider, *oidcop.Login, auth.LogoutSender, error) {
	key, err := a.accounts.SharedKey(ctx, "op_crypto")
	if err != nil {
		return nil, nil, nil, err
	}
	p, err := oidcop.New(oidcop.Config{
		OAuth: a.oauth, Properties: a.properties, Accounts: oidcAccounts{a.accounts}, Log: a.log,
		CryptoKey: key, CryptoKeyID: "op1", SessionOf: sessionOf, RequestInfo: requestInfo, Ping: a.eng.ping,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	login := &oidcop.Login{P: p, Accounts: a.accounts, Log: a.log, Clock: a.clock}
	sender := logoutSender{p: p, hc: newLogoutClient()}
	return p, login, sender, nil
}

// newLogoutClient is the HTTP client that POSTs back-channel logout
// tokens to relying parties. Their logout endpoints get a short deadline:
// a slow one must not hold the outbox worker (the job is retried).
//
// Clients may register http URIs on localhost and *.localhost because
// those names are loopback (auth.ValidateRedirectURI), and browsers
// resolve them so. Go's resolver, like glibc's, sends *.localhost to DNS,
// where it fails (the logout never arrives) or, worse, names another
// machine that would get the token. So these names are dialled at the
// loopback addresses without asking anyone (RFC 6761 §6.3), and never
// through a proxy.
func newLogoutClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = loopbackDial((&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext)
	t.Proxy = func(r *http.Request) (*url.URL, error) {
		if isLocalhostName(r.URL.Hostname()) {
			return nil, nil
		}
		return http.ProxyFromEnvironment(r)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: t}
}

type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// loopbackDial wraps dial: localhost names go to 127.0.0.1, then [::1]
// (a development server may listen on either); other addresses go to
// dial unchanged.
func loopbackDial(dial dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || !isLocalhostName(host) {
			return dial(ctx, network, addr)
		}
		conn, err := dial(ctx, network, net.JoinHostPort("127.0.0.1", port))
		if err == nil {
			return conn, nil
		}
		if conn, err6 := dial(ctx, network, net.JoinHostPort("::1", port)); err6 == nil {
			return conn, nil
		}
		return nil, err
	}
}

// isLocalhostName reports whether host is localhost or a name under it.
func isLocalhostName(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}

var (
	_ httpapi.Login        = (*oidcop.Login)(nil)
	_ httpapi.LoginResumer = (*oidcop.Login)(nil)
	_ httpapi.Consenter    = (*oidcop.Login)(nil)
	_ httpapi.LoginOrigins = (*oidcop.Login)(nil)
	// The headless API starts flows through the provider's checks.
	_ httpapi.AuthRequester = (*oidcop.Login)(nil)
)
