package auth_test

import (
	"context"
	"testing"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// TestStaffCacheForgetsChanges: staff rows and accounts are cached beside
// sessions, but a role change on this node is seen at once, a new staff
// member is not refused from a cached "not staff", and erasing the person
// forgets them.
func TestStaffCacheForgetsChanges(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	owner := r.signUp("owner@example.com", goodPassword, "")
	ann := r.signUp("ann@example.com", goodPassword, "")
	ownerActor := auth.AuditEntry{ActorType: auth.ActorStaff, ActorID: owner.Account.PersonID}
	if err := r.acc.SetStaff(ctx, auth.SetStaffParams{PersonID: owner.Account.PersonID, Role: auth.RoleOwner, Actor: ownerActor}, auth.RoleOwner); err != nil {
		t.Fatal(err)
	}

	if _, err := r.acc.StaffOf(ctx, ann.Account.PersonID); onramp.ErrorCode(err) != onramp.ENOTFOUND {
		t.Fatalf("StaffOf(ann) before = %v, want ENOTFOUND", err)
	}
	if err := r.acc.SetStaff(ctx, auth.SetStaffParams{PersonID: ann.Account.PersonID, Role: auth.RoleAdmin, Actor: ownerActor}, auth.RoleOwner); err != nil {
		t.Fatal(err)
	}
	if st, err := r.acc.StaffOf(ctx, ann.Account.PersonID); err != nil || st.Role != auth.RoleAdmin {
		t.Fatalf("StaffOf(ann) after SetStaff = %+v, %v; want admin at once", st, err)
	}
	if err := r.acc.SetStaff(ctx, auth.SetStaffParams{PersonID: ann.Account.PersonID, Role: auth.RoleSupport, Actor: ownerActor}, auth.RoleOwner); err != nil {
		t.Fatal(err)
	}
	if st, err := r.acc.StaffOf(ctx, ann.Account.PersonID); err != nil || st.Role != auth.RoleSupport {
		t.Fatalf("StaffOf(ann) after a role change = %+v, %v; want support at once", st, err)
	}
	if acc, err := r.acc.AccountOfPerson(ctx, ann.Account.PersonID); err != nil || acc.Subject != ann.Account.Subject {
		t.Fatalf("AccountOfPerson = %+v, %v", acc, err)
	}

	if _, err := r.ids.Delete(ctx, ann.Account.PersonID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.acc.StaffOf(ctx, ann.Account.PersonID); onramp.ErrorCode(err) != onramp.ENOTFOUND {
		t.Errorf("StaffOf after erase = %v, want ENOTFOUND", err)
	}
	if _, err := r.acc.AccountOfPerson(ctx, ann.Account.PersonID); onramp.ErrorCode(err) != onramp.ENOTFOUND {
		t.Errorf("AccountOfPerson after erase = %v, want ENOTFOUND", err)
	}
}
