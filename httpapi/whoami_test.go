package httpapi

import (
	"bytes"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/onramp-dev/onramp/auth"
)

// TestSessionWhoAmIBytes: the struct answer of GET /api/auth/session is
// byte for byte the map it replaced (keys sorted), also with nil parts.
func TestSessionWhoAmIBytes(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	ses := &auth.Session{ID: "ses_1", PersonID: "per_1", AAL: 1, AMR: []string{"pwd"}, AuthTime: now, CreatedAt: now, LastSeenAt: now, IdleExpiresAt: now, ExpiresAt: now, IP: "127.0.0.1", UserAgent: "<ua>&"}
	acc := &auth.Account{PersonID: "per_1", PrimaryEmail: "ada@example.com", Subject: "sub_1", CreatedAt: now}
	for _, c := range []struct {
		acc   *auth.Account
		role  string
		perms []auth.Permission
	}{{acc, auth.RoleSupport, auth.PermissionsOf(auth.RoleSupport)}, {nil, "", nil}} {
		old, err := gojson.Marshal(map[string]any{
			"kind": "session", "role": c.role, "permissions": c.perms, "session": ses, "account": c.acc, "csrf_token": "tok<&>",
		})
		if err != nil {
			t.Fatal(err)
		}
		now, err := gojson.Marshal(sessionWhoAmI{Kind: "session", Role: c.role, Permissions: c.perms, Session: ses, Account: c.acc, CSRFToken: "tok<&>"})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(old, now) {
			t.Errorf("who-am-I changed:\n map:    %s\n struct: %s", old, now)
		}
	}
}
