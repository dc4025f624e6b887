package identity

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/onramp-dev/onramp"
)

// AttachParams is what someone proved about themselves when they created
// an account: an email (proven by a code or link), the anonymous id of
// the browser that proved it, and traits they submitted.
type AttachParams struct {
	Email       string
	AnonymousID string
	// Subject is the account's new user id, minted by the auth part.
	Subject string
	Traits  json.RawMessage
}

// Attached says which person an account was attached to.
type Attached struct {
	// PersonID is the root person the account belongs to.
	PersonID string
	// Recognized is true when the email already belonged to a person: the
	// account joins their traits and timeline instead of starting anew.
	Recognized bool
	// SubjectWritten is false when the person already carried another
	// user id (sent through a write key, so unverified): the account keeps
	// its own subject, the old user id stays, and a conflict records it
	// for staff.
	SubjectWritten bool
}

// Attach finds or creates the person of a proven email inside the
// caller's transaction st and gives it the account's subject as a verified
// user id. It applies the resolution rules of ingest: the person who owns
// the email is the one (no second person is created), and the browser's
// anonymous-only history joins them. The email and subject become
// verified identifiers.
func (s *Service) Attach(ctx context.Context, st Store, p AttachParams) (*Attached, error) {
	email, ok := Normalize(Email, p.Email)
	if !ok {
		return nil, onramp.Errorf(onramp.EINVALID, "%q is not an email address.", p.Email)
	}
	emailKey := Key{Email, email}
	keys := []Key{emailKey}
	owner, err := rootOwning(ctx, st, emailKey)
	if err != nil {
		return nil, err
	}
	if a, ok := Normalize(AnonymousID, p.AnonymousID); ok {
		anonKey := Key{AnonymousID, a}
		browser, err := rootOwning(ctx, st, anonKey)
		if err != nil {
			return nil, err
		}
		// The browser's history joins only when it is anonymous or already
		// this person's. A browser whose person is known by a user id, an
		// email or a phone belongs to someone: it stays theirs, or anyone
		// who learnt its tracking id could sign up into their profile.
		join := browser == nil || owner != nil && browser.ID == owner.ID
		if !join && browser.UserID == "" {
			known, err := knownBy(ctx, st, browser.ID, emailKey)
			if err != nil {
				return nil, err
			}
			join = !known
		}
		if join {
			keys = append(keys, anonKey)
		}
	}
	out := &Attached{Recognized: owner != nil, SubjectWritten: true}
	subjectKey := Key{UserID, p.Subject}
	if owner != nil && owner.UserID != "" && owner.UserID != p.Subject {
		// The person was identified before, through a public write key
		// that anyone can use. That user id is not adopted as the subject
		// (it may be forged) and not replaced either: staff decide.
		out.SubjectWritten = false
		if err := st.InsertConflicts(ctx, []*Conflict{{
			ID: onramp.NewID("cfl"), PersonIDs: []string{owner.ID}, Keys: []Key{subjectKey, {UserID, owner.UserID}},
			CreatedAt: s.clock.Now(), Reason: "account over unverified user id",
		}}); err != nil {
			return nil, fmt.Errorf("identity: attach: %w", err)
		}
	} else {
		keys = append([]Key{subjectKey}, keys...)
	}
	r := Resolver{Clock: s.clock}
	ids, err := r.Resolve(ctx, st, []Observation{{Keys: keys, Traits: p.Traits, At: s.clock.Now()}})
	if err != nil {
		return nil, fmt.Errorf("identity: attach: %w", err)
	}
	ps, err := st.PersonsByID(ctx, ids[:1])
	if err != nil || len(ps) == 0 {
		return nil, fmt.Errorf("identity: attach: person %s: %v", ids[0], err)
	}
	out.PersonID = ps[0].RootID
	verified := []Key{emailKey}
	if out.SubjectWritten {
		verified = append(verified, subjectKey)
	}
	if err := st.SetVerified(ctx, verified); err != nil {
		return nil, fmt.Errorf("identity: attach: %w", err)
	}
	members, err := st.PersonsWithRoot(ctx, out.PersonID)
	if err != nil {
		return nil, fmt.Errorf("identity: attach: %w", err)
	}
	s.changed(members...)
	return out, nil
}

// rootOwning returns the root person of the owner of k, or nil.
func rootOwning(ctx context.Context, st Store, k Key) (*Person, error) {
	found, err := st.FindIdentifiers(ctx, []Key{k})
	if err != nil {
		return nil, fmt.Errorf("identity: attach: %w", err)
	}
	if len(found) == 0 {
		return nil, nil
	}
	ps, err := st.PersonsByID(ctx, []string{found[0].PersonID})
	if err != nil || len(ps) == 0 {
		return nil, fmt.Errorf("identity: attach: owner of %s: %v", k, err)
	}
	roots, err := st.PersonsByID(ctx, []string{ps[0].RootID})
	if err != nil || len(roots) == 0 {
		return nil, fmt.Errorf("identity: attach: root of %s: %v", k, err)
	}
	return roots[0], nil
}

// knownBy reports whether the tree rooted at rootID carries an email or a
// phone other than except: whether it is someone rather than a browser.
func knownBy(ctx context.Context, st Store, rootID string, except Key) (bool, error) {
	members, err := st.PersonsWithRoot(ctx, rootID)
	if err != nil {
		return false, fmt.Errorf("identity: attach: %w", err)
	}
	ids, err := st.IdentifiersOf(ctx, members)
	if err != nil {
		return false, fmt.Errorf("identity: attach: %w", err)
	}
	for _, id := range ids {
		if (id.Type == Email || id.Type == Phone) && id.Key != except {
			return true, nil
		}
	}
	return false, nil
}

// SetTraits merges traits (a JSON object) into the traits of the root
// person of personID inside the caller's transaction st, as an identify
// call would, and tells the caches. It is how a person edits their own
// profile: the account page writes through here, never around identity.
func (s *Service) SetTraits(ctx context.Context, st Store, personID string, traits json.RawMessage) error {
	ps, err := st.PersonsByID(ctx, []string{personID})
	if err != nil || len(ps) == 0 {
		return fmt.Errorf("identity: set traits: person %s: %w", personID, notFoundOr(err))
	}
	roots, err := st.PersonsByID(ctx, []string{ps[0].RootID})
	if err != nil || len(roots) == 0 {
		return fmt.Errorf("identity: set traits: root of %s: %w", personID, notFoundOr(err))
	}
	root := roots[0]
	merged, _, err := MergeTraits(root.Traits, traits, false)
	if err != nil {
		return onramp.Errorf(onramp.EINVALID, "traits must be a JSON object")
	}
	root.Traits, root.UpdatedAt = merged, s.clock.Now()
	if err := st.UpdatePersons(ctx, []*Person{root}); err != nil {
		return fmt.Errorf("identity: set traits: %w", err)
	}
	members, err := st.PersonsWithRoot(ctx, root.ID)
	if err != nil {
		return fmt.Errorf("identity: set traits: %w", err)
	}
	s.changed(members...)
	return nil
}

func notFoundOr(err error) error {
	if err != nil {
		return err
	}
	return onramp.Errorf(onramp.ENOTFOUND, "No such person.")
}
