package main

import (
	"context"
	"net/http"
	"time"

	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/httpapi"
	"github.com/onramp-dev/onramp/oidcop"
)

// oidcAccounts gives the provider what it needs from accounts.
type oidcAccounts struct{ *auth.Accounts }

// EndSession ends the session an id_token_hint named; its back-channel
// logouts go out through the outbox.
func (o oidcAccounts) EndSession(ctx context.Context, e oidcop.EndSession) error {
	return o.EndSessionByID(ctx, e.SessionID, auth.RequestInfo{})
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
func (a *app) openProvider(ctx context.Context, sessionOf func(*http.Request) string) (*oidcop.Provider, *oidcop.Login, auth.LogoutSender, error) {
	key, err := a.accounts.SharedKey(ctx, "op_crypto")
	if err != nil {
		return nil, nil, nil, err
	}
	p, err := oidcop.New(oidcop.Config{
		OAuth: a.oauth, Properties: a.properties, Accounts: oidcAccounts{a.accounts}, Log: a.log,
		CryptoKey: key, CryptoKeyID: "op1", SessionOf: sessionOf, Ping: a.eng.ping,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	login := &oidcop.Login{P: p, Accounts: a.accounts, Log: a.log, Clock: a.clock}
	// Relying parties' logout endpoints get a short deadline: a slow one
	// must not hold the outbox worker (the job is retried).
	sender := logoutSender{p: p, hc: &http.Client{Timeout: 10 * time.Second}}
	return p, login, sender, nil
}

var (
	_ httpapi.Login        = (*oidcop.Login)(nil)
	_ httpapi.LoginResumer = (*oidcop.Login)(nil)
	_ httpapi.Consenter    = (*oidcop.Login)(nil)
	_ httpapi.LoginOrigins = (*oidcop.Login)(nil)
)
