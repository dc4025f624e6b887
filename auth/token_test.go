package auth_test

import (
	"testing"

	"github.com/onramp-dev/onramp/auth"
)

// TestRolePermissions is the least-privilege table: each role may do
// exactly what it needs.
func TestRolePermissions(t *testing.T) {
	perms := []auth.Permission{auth.ReadPeople, auth.WritePeople, auth.ReadProperties, auth.ManageProperties, auth.ManageTokens, auth.ReadAudit, auth.ManageAuthSettings, auth.ManageStaff, auth.RevokeSessions, auth.ExportPeople}
	want := map[string][]bool{
		//                 read people, write people, read props, manage props, tokens, audit, auth settings, staff, sessions, export
		auth.RoleOwner:     {true, true, true, true, true, true, true, true, true, true},
		auth.RoleAdmin:     {true, true, true, true, true, true, true, true, true, true},
		auth.RoleDeveloper: {true, true, true, true, false, false, false, false, false, true},
		auth.RoleMarketer:  {true, true, true, false, false, false, false, false, false, true},
		auth.RoleSupport:   {true, false, true, false, false, false, false, false, true, false},
		"":                 {false, false, false, false, false, false, false, false, false, false},
		"root":             {false, false, false, false, false, false, false, false, false, false},
	}
	for role, row := range want {
		for i, p := range perms {
			if got := auth.Allows(role, p); got != row[i] {
				t.Errorf("Allows(%q, %s) = %v, want %v", role, p, got, row[i])
			}
		}
	}
}
