package httpapi

import (
	_ "embed"
	"net/http"
)

// openAPIDoc describes the JSON API, the Profile API and the collection API.
// Tests check that every route the server registers is in it.
//
//go:embed openapi.json
var openAPIDoc []byte

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write(openAPIDoc)
}
