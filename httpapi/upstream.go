package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// Sign-in through upstream identity providers: the buttons' POST, the
// provider's redirect back, connections on the account page, and the
// staff API that configures providers. The rules are auth's
// (upstream.go); these move values in and redirects out.

func (s *Server) upstreamRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /auth/upstream/{name}/start", s.guardPost(s.upstreamStartPost))
	m.HandleFunc("GET /auth/upstream/{name}/callback", s.upstreamCallback)
	m.HandleFunc("POST /account/connections/unlink", s.guardPost(s.unlinkPost))
	m.HandleFunc("GET /api/auth/providers", s.withToken(auth.ManageAuthSettings, s.listProviders))
	m.HandleFunc("POST /api/auth/providers", s.withToken(auth.ManageAuthSettings, s.addProvider))
	m.HandleFunc("DELETE /api/auth/providers/{name}", s.withToken(auth.ManageAuthSettings, s.removeProvider))
}

// providerButton is one "Continue with …" button.
type providerButton struct {
	Name, DisplayName string
}

// upstreamButtons lists the configured providers for the sign-in and
// sign-up pages, and the origins their authorization endpoints are at
// (the page's CSP form-action must allow the redirect to them). A failure
// to read them costs the buttons, not the page.
func (s *Server) upstreamButtons(ctx context.Context) ([]providerButton, []string) {
	if s.Accounts == nil {
		return nil, nil
	}
	ps, err := s.Accounts.UpstreamProviders(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "list sign-in providers", "err", err, "request_id", requestID(ctx))
		return nil, nil
	}
	var buttons []providerButton
	var origins []string
	for _, p := range ps {
		buttons = append(buttons, providerButton{Name: p.Name, DisplayName: p.DisplayName})
		// An OpenID Connect provider's authorization endpoint is on its
		// issuer's origin for every known provider; GitHub's on its web
		// base.
		base := p.Issuer
		if p.Preset == auth.PresetGitHub {
			base = p.WebBase
		}
		origins = append(origins, base)
	}
	return buttons, origins
}

func (s *Server) upstreamStartPost(w http.ResponseWriter, r *http.Request) {
	ref, ok := s.postedFlow(w, r)
	if !ok {
		return
	}
	to, err := s.Accounts.UpstreamStart(r.Context(), auth.UpstreamStartParams{
		FlowRef: ref, Provider: r.PathValue("name"), ReturnTo: safeReturnTo(r.PostFormValue("return_to")), Info: s.requestInfo(r),
	})
	if err != nil {
		s.formAgain(w, r, "sign_in", "title_sign_in", auth.FlowSignIn, err)
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// upstreamCallback is where the provider sends the browser back. The flow
// cookie rides along (SameSite=Lax allows it on this top-level GET), which
// is what binds the answer to the browser that started.
func (s *Server) upstreamCallback(w http.ResponseWriter, r *http.Request) {
	ref, _ := flowRef(r)
	q := r.URL.Query()
	step, err := s.Accounts.UpstreamCallback(r.Context(), auth.UpstreamCallbackParams{
		FlowRef: ref, Provider: r.PathValue("name"), State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error"), Info: s.requestInfo(r),
	})
	if err != nil {
		if status := statusOf(onramp.ErrorCode(err)); status >= 500 {
			s.pageError(w, r, err)
			return
		}
		v := s.pages.newView(r, "title_sign_in")
		v.addError(err)
		s.renderMessage(w, r, pageStatus(w, err), "title_sign_in", v.Errors[0].Message, "/auth/sign-in", "link_sign_in_again")
		return
	}
	// The provider's redirect could not carry return_to: the flow did.
	_ = r.ParseForm()
	r.Form.Set("return_to", safeReturnTo(step.ReturnTo))
	if step.Next == auth.StepVerifyEmail {
		to := "/auth/verify"
		if rt := safeReturnTo(step.ReturnTo); rt != "" {
			to += "?" + url.Values{"return_to": {rt}}.Encode()
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	s.afterStep(w, r, ref, step)
}

// connectionView is one upstream link on the account page.
type connectionView struct {
	Provider, Subject, DisplayName, Email string
	Created, CreatedISO                   string
}

func (s *Server) connections(ctx context.Context, personID string) ([]connectionView, error) {
	links, err := s.Accounts.UpstreamLinks(ctx, personID)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	if ps, err := s.Accounts.UpstreamProviders(ctx); err == nil {
		for _, p := range ps {
			names[p.Name] = p.DisplayName
		}
	}
	var out []connectionView
	for _, l := range links {
		name := names[l.Provider]
		if name == "" {
			name = l.Provider
		}
		out = append(out, connectionView{Provider: l.Provider, Subject: l.Subject, DisplayName: name, Email: l.Email,
			Created: l.CreatedAt.Format("2006-01-02 15:04 MST"), CreatedISO: l.CreatedAt.Format(time.RFC3339)})
	}
	return out, nil
}

func (s *Server) unlinkPost(w http.ResponseWriter, r *http.Request) {
	ses, ok := s.signedInSession(w, r)
	if !ok {
		return
	}
	if !s.checkCSRF(w, r, ses.ID, ses.PersonID) {
		return
	}
	info := s.requestInfo(r)
	err := s.Accounts.UnlinkUpstream(r.Context(), auth.UnlinkParams{
		PersonID: ses.PersonID, Provider: r.PostFormValue("provider"), Subject: r.PostFormValue("subject"),
		Actor: auth.AuditEntry{ActorType: auth.ActorPerson, ActorID: ses.PersonID, SessionID: ses.ID, IP: info.IP, UserAgent: info.UserAgent},
	})
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

// providerOut is a provider as the API shows it: with the callback URL to
// register at the provider, never with its secret.
type providerOut struct {
	*auth.UpstreamProvider
	CallbackURL string `json:"callback_url"`
}

func (s *Server) providerOut(p *auth.UpstreamProvider) providerOut {
	return providerOut{UpstreamProvider: p, CallbackURL: p.CallbackURL(s.Accounts.PublicURL())}
}

func (s *Server) listProviders(w http.ResponseWriter, r *http.Request) {
	ps, err := s.Accounts.UpstreamProviders(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]providerOut, 0, len(ps))
	for _, p := range ps {
		out = append(out, s.providerOut(p))
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out})
}

func (s *Server) addProvider(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Preset       string   `json:"preset"`
		Name         string   `json:"name"`
		DisplayName  string   `json:"display_name"`
		Issuer       string   `json:"issuer"`
		Tenant       string   `json:"tenant"`
		ClientID     string   `json:"client_id"`
		ClientSecret string   `json:"client_secret"`
		Scopes       []string `json:"scopes"`
		TrustEmail   *bool    `json:"trust_email"`
		WebBase      string   `json:"web_base"`
		APIBase      string   `json:"api_base"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.Accounts.AddUpstreamProvider(r.Context(), auth.AddUpstreamParams{
		Preset: in.Preset, Name: in.Name, DisplayName: in.DisplayName, Issuer: in.Issuer, Tenant: in.Tenant, ClientID: in.ClientID,
		ClientSecret: in.ClientSecret, Scopes: in.Scopes, TrustEmail: in.TrustEmail, WebBase: in.WebBase, APIBase: in.APIBase, Actor: s.auditActor(r),
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.providerOut(p))
}

func (s *Server) removeProvider(w http.ResponseWriter, r *http.Request) {
	if err := s.Accounts.RemoveUpstreamProvider(r.Context(), r.PathValue("name"), s.auditActor(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// formActionOrigins turns provider base URLs into CSP source expressions.
func formActionOrigins(bases []string) string {
	var b strings.Builder
	for _, o := range bases {
		if u, err := url.Parse(o); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
			b.WriteString(" " + u.Scheme + "://" + u.Host)
		}
	}
	return b.String()
}
