package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"golang.org/x/oauth2"

	"github.com/onramp-dev/onramp/auth"
)

// githubClient signs in with GitHub: OAuth 2.0 (with PKCE) for a token,
// then the REST API for who it belongs to. There is no ID token, so no
// nonce; the state and the PKCE verifier bind the answer to the request.
type githubClient struct {
	p  *auth.UpstreamProvider
	hc *http.Client
}

func (c *githubClient) config(redirectURI string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: c.p.ClientID, ClientSecret: c.p.ClientSecret, RedirectURL: redirectURI, Scopes: c.p.Scopes,
		Endpoint: oauth2.Endpoint{
			AuthURL:   c.p.WebBase + "/login/oauth/authorize",
			TokenURL:  c.p.WebBase + "/login/oauth/access_token",
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
}

func (c *githubClient) AuthCodeURL(r auth.UpstreamAuthRequest) string {
	return c.config(r.RedirectURI).AuthCodeURL(r.State, oauth2.S256ChallengeOption(r.Verifier))
}

// githubUser is the part of GET /user Onramp reads. id is the stable
// account id; login can be changed by its owner, so it is never the
// subject.
type githubUser struct {
	ID    int64  `json:"id"`
	Login string `json:"login"`
	Name  string `json:"name"`
}

// githubEmail is one entry of GET /user/emails.
type githubEmail struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

func (c *githubClient) Exchange(ctx context.Context, x auth.UpstreamExchange) (*auth.UpstreamIdentity, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.hc)
	tok, err := c.config(x.RedirectURI).Exchange(ctx, x.Code, oauth2.VerifierOption(x.Verifier))
	if err != nil {
		return nil, exchangeError(c.p, err)
	}
	var u githubUser
	if err := c.get(ctx, tok, "/user", &u); err != nil {
		return nil, err
	}
	if u.ID <= 0 {
		return nil, refused(c.p, "GET /user", fmt.Errorf("no account id in the answer"))
	}
	who := &auth.UpstreamIdentity{Subject: strconv.FormatInt(u.ID, 10), Name: u.Name}
	if who.Name == "" {
		who.Name = u.Login
	}
	// The public email of /user may be any address the user typed; the
	// primary address of /user/emails carries GitHub's verified flag.
	var emails []githubEmail
	if err := c.get(ctx, tok, "/user/emails", &emails); err != nil {
		return nil, err
	}
	for _, e := range emails {
		if e.Primary {
			who.Email, who.EmailVerified = e.Email, e.Verified
		}
	}
	return who, nil
}

// get calls GitHub's REST API with the user's token.
func (c *githubClient) get(ctx context.Context, tok *oauth2.Token, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.p.APIBase+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := c.hc.Do(req)
	if err != nil {
		return unavailable(c.p, "GET "+path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return unavailable(c.p, "GET "+path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var ghErr struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &ghErr)
		err := fmt.Errorf("status %d: %s", resp.StatusCode, ghErr.Message)
		if resp.StatusCode >= 500 {
			return unavailable(c.p, "GET "+path, err)
		}
		// 401 Bad credentials; 404 for /user/emails without the
		// user:email scope; 403 rate limits.
		return refused(c.p, "GET "+path, err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return refused(c.p, "GET "+path, err)
	}
	return nil
}
