package auth

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth/breached"
)

// Password length limits, in characters after normalisation. The upper one
// keeps hashing input bounded while allowing any passphrase a person types.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 256
)

// NormalizePassword returns password in Unicode NFKC, the form that is
// checked and hashed: the same password typed on another keyboard or OS
// (composed vs decomposed accents, full-width digits) then verifies.
func NormalizePassword(password string) string { return norm.NFKC.String(password) }

// CheckPassword applies the rules for a new password of the account with
// email (which may be empty). It returns an onramp.EINVALID error that tells
// the person what to change.
func CheckPassword(password, email string) error {
	if !utf8.ValidString(password) {
		return onramp.Errorf(onramp.EINVALID, "Your password contains bytes that are not valid text. Please type it again.")
	}
	pw := NormalizePassword(password)
	switch n := utf8.RuneCountInString(pw); {
	case n < MinPasswordLen:
		return onramp.Errorf(onramp.EINVALID, "Your password is too short: use at least %d characters.", MinPasswordLen)
	case n > MaxPasswordLen:
		return onramp.Errorf(onramp.EINVALID, "Your password is too long: use at most %d characters.", MaxPasswordLen)
	}
	lower := strings.ToLower(pw)
	if breached.Contains(lower) {
		return onramp.Errorf(onramp.EINVALID, "This password is one of the most common or leaked passwords, so attackers try it first. Please choose another.")
	}
	// A short local part ("bob", "jo") occurs in too many honest passwords
	// to refuse them; from 4 characters on it is the first thing to guess.
	if at := strings.LastIndexByte(email, '@'); at > 0 {
		local := strings.ToLower(NormalizePassword(email[:at]))
		if utf8.RuneCountInString(local) >= 4 && strings.Contains(lower, local) {
			return onramp.Errorf(onramp.EINVALID, "Your password must not contain the name part of your email address (before the @).")
		}
	}
	return nil
}
