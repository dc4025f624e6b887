package identity

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxIdentifierLen bounds every identifier value; longer values are not
// identifiers but garbage or attacks.
const MaxIdentifierLen = 256

// blockedValues never identify anyone: SDK bugs and placeholder strings send
// them for millions of different people. Compared after lower-casing.
var blockedValues = map[string]bool{
	"":                                     true,
	"null":                                 true,
	"nil":                                  true,
	"none":                                 true,
	"undefined":                            true,
	"anonymous":                            true,
	"anon":                                 true,
	"unknown":                              true,
	"n/a":                                  true,
	"na":                                   true,
	"nan":                                  true,
	"true":                                 true,
	"false":                                true,
	"[object object]":                      true,
	"00000000-0000-0000-0000-000000000000": true,
	"-1":                                   true,
	"test":                                 true,
}

// Blocked reports whether v is a value that must never match a person.
func Blocked(v string) bool {
	l := strings.ToLower(strings.TrimSpace(v))
	if blockedValues[l] {
		return true
	}
	// Only zeros and dashes ("0", "000", "0-0-0"): default values of ids.
	for _, r := range l {
		if r != '0' && r != '-' {
			return false
		}
	}
	return true
}

// Normalize returns the canonical form of an identifier value and whether it
// is usable at all. Emails are trimmed and lower-cased; phones keep a leading
// "+" and their digits; other ids are trimmed only (ids are case-sensitive in
// the systems that mint them).
func Normalize(typ, v string) (string, bool) {
	if !utf8.ValidString(v) || len(v) > MaxIdentifierLen {
		return "", false
	}
	v = strings.TrimSpace(v)
	if Blocked(v) {
		return "", false
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return "", false
		}
	}
	var ok bool
	switch typ {
	case Email:
		v, ok = normalizeEmail(v)
	case Phone:
		v, ok = normalizePhone(v)
	default:
		ok = true
	}
	// Lower-casing can make a string longer (Ⱥ is 2 bytes, ⱥ is 3), so the
	// limit applies to the result too, or a stored identifier could never
	// be looked up again.
	if !ok || len(v) > MaxIdentifierLen {
		return "", false
	}
	return v, true
}

func normalizeEmail(v string) (string, bool) {
	v = strings.ToLower(v)
	at := strings.LastIndexByte(v, '@')
	if at <= 0 || at == len(v)-1 {
		return "", false
	}
	local, domain := v[:at], v[at+1:]
	if strings.ContainsAny(local, " \t<>()[]\\,;:\"") || strings.ContainsAny(domain, " \t<>()[]\\,;:\"@") {
		return "", false
	}
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return "", false
	}
	return local + "@" + domain, true
}

func normalizePhone(v string) (string, bool) {
	var b strings.Builder
	for i, r := range v {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')' || r == '/':
		default:
			return "", false
		}
	}
	p := b.String()
	digits := strings.TrimPrefix(p, "+")
	if len(digits) < 7 || len(digits) > 15 {
		return "", false
	}
	if Blocked(digits) {
		return "", false
	}
	return p, true
}

// ValidType reports whether t can name an identifier type: the known ones
// or an external id type of lower-case letters, digits and underscores.
func ValidType(t string) bool {
	if t == "" || len(t) > 64 {
		return false
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// priority orders identifier types: an event belongs to the owner of its
// highest-priority identifier. User ids are the strongest claim, anonymous
// ids (one browser) the weakest.
func priority(t string) int {
	switch t {
	case UserID:
		return 0
	case Email:
		return 1
	case Phone:
		return 2
	case AnonymousID:
		return 4
	default:
		return 3
	}
}
