// Package fakegithub is a stand-in for GitHub's OAuth endpoints and the
// parts of its REST API that sign-in uses, for tests on a machine that
// cannot reach GitHub. It answers with GitHub's shapes, and its errors:
//
//   - GET  /login/oauth/authorize: the user "approves" (SignInAs) and is
//     sent to the redirect_uri with code and state, or denies
//     (error=access_denied); an unknown client_id is a 404 page.
//   - POST /login/oauth/access_token: form-encoded by default, JSON with
//     Accept: application/json. Errors come with status 200, as GitHub
//     sends them: incorrect_client_credentials, redirect_uri_mismatch,
//     bad_verification_code (also for a failed PKCE check). Codes live 10
//     minutes and work once.
//   - GET /user and GET /user/emails with "Authorization: Bearer" (or
//     "token") and the X-OAuth-Scopes header; 401 "Requires
//     authentication" / "Bad credentials"; /user/emails answers 404 to a
//     token without the user or user:email scope.
//
// Web and API are served from one origin: point both bases at it.
package fakegithub

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Email is one of a user's addresses.
type Email struct {
	Email      string  `json:"email"`
	Primary    bool    `json:"primary"`
	Verified   bool    `json:"verified"`
	Visibility *string `json:"visibility"`
}

// User is a GitHub account.
type User struct {
	ID     int64
	Login  string
	Name   string
	Emails []Email
}

// Fake is one OAuth app (ClientID, ClientSecret, CallbackURL) and its users.
type Fake struct {
	ClientID, ClientSecret string
	// CallbackURL, when set, is the app's registered callback: a
	// redirect_uri must be it or below it, as GitHub requires.
	CallbackURL string
	Now         func() time.Time

	mu       sync.Mutex
	users    map[string]*User
	approver string
	codes    map[string]*grant
	tokens   map[string]*grant
	// Calls counts the requests per path, for tests.
	calls map[string]int
}

type grant struct {
	user        *User
	redirectURI string
	challenge   string
	scopes      []string
	expires     time.Time
}

// New returns a fake with one OAuth app.
func New(clientID, clientSecret string) *Fake {
	return &Fake{ClientID: clientID, ClientSecret: clientSecret, users: map[string]*User{}, codes: map[string]*grant{}, tokens: map[string]*grant{}, calls: map[string]int{}}
}

// AddUser adds an account.
func (f *Fake) AddUser(u User) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[u.Login] = &u
}

// SignInAs makes login the user who is signed in at GitHub and approves
// the next authorization requests; "" makes them deny.
func (f *Fake) SignInAs(login string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.approver = login
}

// Calls is how many requests reached path.
func (f *Fake) Calls(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[path]
}

func (f *Fake) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func random(prefix string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls[r.URL.Path]++
	f.mu.Unlock()
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/login/oauth/authorize":
		f.authorize(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/login/oauth/access_token":
		f.accessToken(w, r)
	case r.Method == http.MethodGet && r.URL.Path == "/user":
		f.user(w, r)
	case r.Method == http.MethodGet && r.URL.Path == "/user/emails":
		f.emails(w, r)
	default:
		apiError(w, http.StatusNotFound, "Not Found", "https://docs.github.com/rest")
	}
}

func (f *Fake) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != f.ClientID {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	redirect := q.Get("redirect_uri")
	if redirect == "" {
		redirect = f.CallbackURL
	}
	if f.CallbackURL != "" && !strings.HasPrefix(redirect, f.CallbackURL) {
		// GitHub shows this on its own page; it never redirects to an
		// unregistered URI.
		http.Error(w, "The redirect_uri is not associated with this application.", http.StatusBadRequest)
		return
	}
	if m := q.Get("code_challenge_method"); q.Get("code_challenge") != "" && m != "S256" {
		http.Error(w, "code_challenge_method must be S256", http.StatusBadRequest)
		return
	}
	back, err := url.Parse(redirect)
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	out := back.Query()
	f.mu.Lock()
	user := f.users[f.approver]
	if user == nil {
		f.mu.Unlock()
		out.Set("error", "access_denied")
		out.Set("error_description", "The user has denied your application access.")
		out.Set("error_uri", "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied")
	} else {
		code := random("", 10)
		f.codes[code] = &grant{user: user, redirectURI: redirect, challenge: q.Get("code_challenge"), scopes: strings.Fields(strings.ReplaceAll(q.Get("scope"), ",", " ")), expires: f.now().Add(10 * time.Minute)}
		f.mu.Unlock()
		out.Set("code", code)
	}
	if s := q.Get("state"); s != "" {
		out.Set("state", s)
	}
	back.RawQuery = out.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (f *Fake) accessToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		id, secret = u, p
	}
	tokenError := func(code, desc, uri string) {
		oauthAnswer(w, r, map[string]string{"error": code, "error_description": desc, "error_uri": uri})
	}
	if id != f.ClientID || secret != f.ClientSecret {
		tokenError("incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.",
			"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#incorrect-client-credentials")
		return
	}
	f.mu.Lock()
	g := f.codes[r.PostForm.Get("code")]
	delete(f.codes, r.PostForm.Get("code"))
	f.mu.Unlock()
	badCode := func() {
		tokenError("bad_verification_code", "The code passed is incorrect or expired.",
			"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code")
	}
	if g == nil || !f.now().Before(g.expires) {
		badCode()
		return
	}
	if ru := r.PostForm.Get("redirect_uri"); ru != "" && ru != g.redirectURI {
		tokenError("redirect_uri_mismatch", "The redirect_uri MUST match the registered callback URL for this application.",
			"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#redirect-uri-mismatch2")
		return
	}
	if g.challenge != "" {
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			badCode()
			return
		}
	}
	tok := random("gho_", 18)
	f.mu.Lock()
	f.tokens[tok] = g
	f.mu.Unlock()
	oauthAnswer(w, r, map[string]string{"access_token": tok, "token_type": "bearer", "scope": strings.Join(g.scopes, ",")})
}

// oauthAnswer writes a token endpoint answer in the format the Accept
// header asks for; GitHub's default is form encoding, always status 200.
func oauthAnswer(w http.ResponseWriter, r *http.Request, v map[string]string) {
	switch accept := r.Header.Get("Accept"); {
	case strings.Contains(accept, "application/json"):
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(v)
	default:
		vals := url.Values{}
		for k, x := range v {
			vals.Set(k, x)
		}
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		_, _ = w.Write([]byte(vals.Encode()))
	}
}

func apiError(w http.ResponseWriter, status int, message, doc string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": message, "documentation_url": doc, "status": strconv.Itoa(status)})
}

// token authenticates an API call and sets GitHub's scope headers.
func (f *Fake) token(w http.ResponseWriter, r *http.Request) *grant {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		tok, ok = strings.CutPrefix(h, "token ")
	}
	if !ok || tok == "" {
		apiError(w, http.StatusUnauthorized, "Requires authentication", "https://docs.github.com/rest")
		return nil
	}
	f.mu.Lock()
	g := f.tokens[tok]
	f.mu.Unlock()
	if g == nil {
		apiError(w, http.StatusUnauthorized, "Bad credentials", "https://docs.github.com/rest")
		return nil
	}
	w.Header().Set("X-OAuth-Scopes", strings.Join(g.scopes, ", "))
	w.Header().Set("X-GitHub-Media-Type", "github.v3; format=json")
	w.Header().Set("X-RateLimit-Limit", "5000")
	w.Header().Set("X-RateLimit-Remaining", "4999")
	return g
}

func (f *Fake) user(w http.ResponseWriter, r *http.Request) {
	g := f.token(w, r)
	if g == nil {
		return
	}
	u := g.user
	var public any
	for _, e := range u.Emails {
		if e.Visibility != nil && *e.Visibility == "public" {
			public = e.Email
		}
	}
	var name any
	if u.Name != "" {
		name = u.Name
	}
	writeJSON(w, map[string]any{
		"login": u.Login, "id": u.ID, "node_id": "U_" + strconv.FormatInt(u.ID, 36), "avatar_url": "https://avatars.githubusercontent.com/u/" + strconv.FormatInt(u.ID, 10) + "?v=4",
		"url": "https://api.github.com/users/" + u.Login, "html_url": "https://github.com/" + u.Login, "type": "User", "site_admin": false,
		"name": name, "company": nil, "blog": "", "location": nil, "email": public, "hireable": nil, "bio": nil,
		"public_repos": 2, "followers": 0, "following": 0, "created_at": "2011-01-25T18:44:36Z", "updated_at": "2025-01-01T00:00:00Z",
	})
}

func (f *Fake) emails(w http.ResponseWriter, r *http.Request) {
	g := f.token(w, r)
	if g == nil {
		return
	}
	if !slices.Contains(g.scopes, "user:email") && !slices.Contains(g.scopes, "user") {
		apiError(w, http.StatusNotFound, "Not Found", "https://docs.github.com/rest/users/emails#list-email-addresses-for-the-authenticated-user")
		return
	}
	out := g.user.Emails
	if out == nil {
		out = []Email{}
	}
	writeJSON(w, out)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}
