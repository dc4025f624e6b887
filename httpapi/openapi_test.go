package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/onramp-dev/onramp/httpapi"
)

// The OpenAPI document (openapi.json) is the contract of Onramp's HTTP API.
// These tests keep it honest: valid 3.1 JSON, every $ref resolves, and it
// lists exactly the routes the server registers, so a route added without
// documentation fails here.

type openAPIDoc struct {
	raw     map[string]any
	OpenAPI string
	// Paths maps path → lower-case method → operation object.
	Paths map[string]map[string]map[string]any
	// Fallbacks are the catch-all routes (x-onramp-fallback-routes) that
	// answer unknown paths; they are registered but are not operations.
	Fallbacks map[string]string
}

var oaMethods = map[string]bool{"get": true, "put": true, "post": true, "delete": true, "options": true, "head": true, "patch": true, "trace": true}

func loadOpenAPI(t *testing.T) (*openAPIDoc, []byte) {
	t.Helper()
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	// Path items may hold non-operation keys (parameters, summary); only
	// the HTTP methods are kept.
	var loose struct {
		OpenAPI   string                    `json:"openapi"`
		Paths     map[string]map[string]any `json:"paths"`
		Fallbacks map[string]string         `json:"x-onramp-fallback-routes"`
	}
	if err := json.Unmarshal(b, &loose); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	doc := &openAPIDoc{raw: raw, OpenAPI: loose.OpenAPI, Fallbacks: loose.Fallbacks, Paths: map[string]map[string]map[string]any{}}
	for p, item := range loose.Paths {
		doc.Paths[p] = map[string]map[string]any{}
		for k, v := range item {
			if !oaMethods[k] {
				continue
			}
			o, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("paths[%q][%q] is not an object", p, k)
			}
			doc.Paths[p][k] = o
		}
	}
	return doc, b
}

func openAPITestServer(t *testing.T) *httpapi.Server {
	t.Helper()
	// Nil services: these tests only route requests, they never reach a
	// handler's service calls.
	return httpapi.New(httpapi.Config{Registry: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler)})
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	if !regexp.MustCompile(`^3\.1\.\d+$`).MatchString(doc.OpenAPI) {
		t.Fatalf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	info, _ := doc.raw["info"].(map[string]any)
	if info["title"] == nil || info["version"] == nil {
		t.Error("info needs title and version")
	}
	if len(doc.Paths) == 0 {
		t.Fatal("no paths")
	}

	// Every $ref is local and resolves.
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			if r, ok := v["$ref"].(string); ok {
				if _, err := oaResolve(doc.raw, r); err != "" {
					t.Errorf("%s: $ref %q: %s", at, r, err)
				}
			}
			for k, c := range v {
				walk(c, at+"/"+k)
			}
		case []any:
			for _, c := range v {
				walk(c, at+"/[]")
			}
		}
	}
	walk(doc.raw, "#")

	components, _ := doc.raw["components"].(map[string]any)
	schemas, _ := components["schemas"].(map[string]any)
	for _, name := range []string{"Property", "CreatedProperty", "Person", "Identifier", "Profile", "Merge", "Conflict", "Event", "Rejection", "Token", "NewToken", "Problem", "CollectResponse", "TimelinePage", "Message", "BatchRequest"} {
		if schemas[name] == nil {
			t.Errorf("components.schemas.%s is missing", name)
		}
	}
	problem, _ := schemas["Problem"].(map[string]any)
	props, _ := problem["properties"].(map[string]any)
	for _, f := range []string{"type", "title", "status", "detail", "request_id", "rejected", "field", "oauth_error"} {
		if props[f] == nil {
			t.Errorf("Problem schema lacks %q", f)
		}
	}
	secSchemes, _ := components["securitySchemes"].(map[string]any)
	for _, s := range []string{"bearerAuth", "secretKeyBasic", "writeKeyBasic", "flowAuth"} {
		if secSchemes[s] == nil {
			t.Errorf("components.securitySchemes.%s is missing", s)
		}
	}

	// "authenticated" marks operations any caller with credentials may use.
	permissions := map[string]bool{"people:read": true, "people:write": true, "properties:read": true, "properties:manage": true, "tokens:manage": true, "audit:read": true, "auth:settings": true, "staff:manage": true, "sessions:revoke": true, "people:export": true, "authenticated": true}
	opIDs := map[string]string{}
	tmpl := regexp.MustCompile(`\{([^}]+)\}`)
	for path, item := range doc.Paths {
		if !strings.HasPrefix(path, "/") {
			t.Errorf("path %q must start with /", path)
		}
		for method, o := range item {
			where := strings.ToUpper(method) + " " + path
			id, _ := o["operationId"].(string)
			if id == "" {
				t.Errorf("%s: no operationId", where)
			} else if prev, dup := opIDs[id]; dup {
				t.Errorf("%s: operationId %q also used by %s", where, id, prev)
			} else {
				opIDs[id] = where
			}
			responses, _ := o["responses"].(map[string]any)
			if len(responses) == 0 {
				t.Errorf("%s: no responses", where)
			}
			// Path template variables are declared as path parameters.
			declared := map[string]bool{}
			params, _ := o["parameters"].([]any)
			for _, p := range params {
				pm, _ := p.(map[string]any)
				if r, ok := pm["$ref"].(string); ok {
					v, _ := oaResolve(doc.raw, r)
					pm, _ = v.(map[string]any)
				}
				if pm["in"] == "path" {
					declared[pm["name"].(string)] = true
				}
			}
			for _, m := range tmpl.FindAllStringSubmatch(path, -1) {
				if !declared[m[1]] {
					t.Errorf("%s: path parameter {%s} is not declared", where, m[1])
				}
			}
			// Error responses are problem documents.
			for code, r := range responses {
				if code < "400" {
					continue
				}
				rm, _ := r.(map[string]any)
				if ref, ok := rm["$ref"].(string); ok {
					v, _ := oaResolve(doc.raw, ref)
					rm, _ = v.(map[string]any)
				}
				content, _ := rm["content"].(map[string]any)
				if oaHostedPage(path) && !oaAnswersJSON(o) {
					// The hosted pages answer browsers: errors are pages
					// (the JSON endpoints passkey.js calls answer problems).
					if content["text/html"] == nil {
						t.Errorf("%s: response %s of a hosted page is not text/html", where, code)
					}
					continue
				}
				if content["application/problem+json"] == nil {
					t.Errorf("%s: response %s is not application/problem+json", where, code)
				}
			}
			// The JSON API: bearer token, a named permission, 401 and 403.
			// The headless sign-in API is the exception: its new flows and
			// CORS preflights take no credentials ("public"), its steps the
			// flow secret ("flow").
			if strings.HasPrefix(path, "/api/") && path != "/api/openapi.json" {
				perm, _ := o["x-onramp-permission"].(string)
				wantSecurity, wantCodes := `"bearerAuth"`, []string{"401", "403"}
				switch {
				case perm == "public" && strings.HasPrefix(path, "/api/auth/flows"):
					wantSecurity, wantCodes = "", nil
					if oaJSON(o["security"]) != "[]" {
						t.Errorf("%s: a public operation must have security []", where)
					}
				case perm == "flow" && strings.HasPrefix(path, "/api/auth/flows/"):
					wantSecurity = `"flowAuth"`
				case !permissions[perm]:
					t.Errorf("%s: x-onramp-permission %q is not a known permission", where, perm)
				}
				if wantSecurity != "" && !strings.Contains(oaJSON(o["security"]), wantSecurity) {
					t.Errorf("%s: security must be %s", where, wantSecurity)
				}
				for _, code := range wantCodes {
					if responses[code] == nil {
						t.Errorf("%s: no %s response", where, code)
					}
				}
			}
		}
	}
}

// TestOpenAPICoversEveryRoute fails when the server registers a route the
// document does not describe (or describes one the server lacks).
func TestOpenAPICoversEveryRoute(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	srv := openAPITestServer(t)
	patterns, err := httpapi.RoutePatterns(srv)
	if err != nil {
		t.Fatal(err)
	}
	// The reflection that lists patterns must really see them.
	for _, want := range []string{"GET /healthz", "POST /v1/batch", "GET /api/people/{id}"} {
		if !oaContains(patterns, want) {
			t.Fatalf("RoutePatterns found %d patterns without %q: %v", len(patterns), want, patterns)
		}
	}
	registered := map[string]bool{}
	for _, p := range patterns {
		registered[p] = true
		method, path := oaSplitPattern(t, p)
		// The mux must route a request on the pattern's own path to it.
		if method != "" && !strings.HasSuffix(path, "/") {
			if got := httpapi.MatchedPattern(srv, httptest.NewRequest(method, oaSamplePath(path), nil)); got != p {
				t.Errorf("a %s request to %s routes to %q, not %q", method, oaSamplePath(path), got, p)
			}
		}
		switch {
		case method == "":
			if _, ok := doc.Fallbacks[path]; !ok {
				t.Errorf("route %q (any method) is neither documented nor listed in x-onramp-fallback-routes", p)
			}
		case strings.HasSuffix(path, "/"):
			// A subtree route (such as the CORS preflight OPTIONS /v1/): at
			// least one documented operation must be served by it.
			found := false
			for docPath, item := range doc.Paths {
				if _, ok := item[strings.ToLower(method)]; ok && strings.HasPrefix(docPath, path) &&
					httpapi.MatchedPattern(srv, httptest.NewRequest(method, oaSamplePath(docPath), nil)) == p {
					found = true
				}
			}
			if !found {
				t.Errorf("route %q: no documented %s operation under %s", p, method, path)
			}
		default:
			item, ok := doc.Paths[oaDocPath(path)]
			if !ok {
				t.Errorf("route %q: path %s is not in openapi.json", p, oaDocPath(path))
				continue
			}
			if _, ok := item[strings.ToLower(method)]; !ok {
				t.Errorf("route %q: openapi.json has %s but no %s operation on it", p, oaDocPath(path), strings.ToLower(method))
			}
		}
	}
	for path := range doc.Fallbacks {
		if !registered[path] {
			t.Errorf("x-onramp-fallback-routes lists %q, which the server does not register", path)
		}
	}
}

// TestOpenAPIPathsAreRouted probes every documented operation against the
// server's mux: it must reach a route of the same method and path, not a
// catch-all.
func TestOpenAPIPathsAreRouted(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	srv := openAPITestServer(t)
	var ops []string
	for path, item := range doc.Paths {
		for method := range item {
			ops = append(ops, strings.ToUpper(method)+" "+path)
		}
	}
	sort.Strings(ops)
	for _, op := range ops {
		method, path, _ := strings.Cut(op, " ")
		req := httptest.NewRequest(method, oaSamplePath(path), nil)
		got := httpapi.MatchedPattern(srv, req)
		if got == "" {
			t.Errorf("%s: no route", op)
			continue
		}
		gm, gp := oaSplitPattern(t, got)
		switch {
		case gm == "" && oaDocPath(gp) == path:
			// A catch-all documented on its own path (GET /).
		case gm == "":
			t.Errorf("%s: only the catch-all %q answers it (a 404): the route is missing", op, got)
		case gm != method && !(gm == "GET" && method == "HEAD"):
			t.Errorf("%s: routed to %q, another method", op, got)
		case strings.HasSuffix(gp, "/") && strings.HasPrefix(path, gp):
			// Served by a subtree route such as OPTIONS /v1/.
		case oaDocPath(gp) != path:
			t.Errorf("%s: routed to %q, another path", op, got)
		}
	}
}

// TestOpenAPIServed checks that GET /api/openapi.json serves this file.
func TestOpenAPIServed(t *testing.T) {
	_, file := loadOpenAPI(t)
	srv := openAPITestServer(t)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /api/openapi.json = %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
	body, _ := io.ReadAll(rec.Body)
	if !bytes.Equal(body, file) {
		t.Error("the served document differs from httpapi/openapi.json (rebuild?)")
	}
}

// oaSplitPattern splits "POST /v1/track" into its method and path.
func oaSplitPattern(t *testing.T, p string) (method, path string) {
	t.Helper()
	if m, rest, ok := strings.Cut(p, " "); ok {
		method, path = m, strings.TrimSpace(rest)
	} else {
		path = p
	}
	if !strings.HasPrefix(path, "/") {
		t.Fatalf("route %q has a host or no leading /; this test does not know how to document it", p)
	}
	return method, path
}

// oaDocPath turns a mux path into an OpenAPI path: {x...} → {x}, no {$}.
func oaDocPath(path string) string {
	path = strings.TrimSuffix(path, "{$}")
	return strings.ReplaceAll(path, "...}", "}")
}

// oaSamplePath fills path templates with a value every route accepts.
func oaSamplePath(path string) string {
	path = strings.TrimSuffix(path, "{$}")
	return regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(path, "sample")
}

// oaResolve resolves a local JSON reference such as
// "#/components/schemas/Person"; it returns an error text when it cannot.
func oaResolve(root any, ref string) (any, string) {
	frag, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, "not a local reference"
	}
	cur := root
	if frag == "" {
		return cur, ""
	}
	for _, tok := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, "does not resolve"
		}
		if cur, ok = m[tok]; !ok {
			return nil, "does not resolve (no " + tok + ")"
		}
	}
	return cur, ""
}

func oaJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func oaContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// oaHostedPage reports whether path is one of the HTML pages for browsers
// (sign-in, account, owner setup) rather than an API.
// oaAnswersJSON reports whether an operation's success is JSON (the
// endpoints passkey.js posts to among the hosted pages).
func oaAnswersJSON(o map[string]any) bool {
	responses, _ := o["responses"].(map[string]any)
	ok, _ := responses["200"].(map[string]any)
	content, _ := ok["content"].(map[string]any)
	return content["application/json"] != nil
}

func oaHostedPage(path string) bool {
	return strings.HasPrefix(path, "/auth/") || path == "/admin" || strings.HasPrefix(path, "/admin/") || path == "/account" || strings.HasPrefix(path, "/account/") || strings.HasPrefix(path, "/setup/")
}
