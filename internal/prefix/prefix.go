// Package prefix turns a prefix match into a range of strings, which both
// engines answer from an ordinary index in byte order (SQLite's BINARY,
// Postgres's "C" collation) and which, unlike LIKE, has no metacharacters
// to escape.
package prefix

import "unicode/utf8"

// End returns the string that bounds the strings starting with p from
// above: a UTF-8 string s starts with p exactly when p <= s < end, in byte
// order. It reports false when no string bounds them (p is empty or made
// only of U+10FFFF): then s starts with p exactly when s >= p.
//
// The last rune of p is incremented as a rune, not a byte, so that the
// bound of valid UTF-8 is valid UTF-8 too: Postgres refuses anything else
// as a text parameter. UTF-8's byte order is code point order, which is
// why the bound is exact.
func End(p string) (string, bool) {
	for p != "" {
		r, size := utf8.DecodeLastRuneInString(p)
		head := p[:len(p)-size]
		switch {
		case r == utf8.RuneError && size == 1:
			// Not UTF-8: step the byte itself (SQLite compares bytes; a
			// Postgres text parameter could not hold p in the first place).
			if b := p[len(p)-1]; b < 0xff {
				return head + string([]byte{b + 1}), true
			}
		case r == 0xd7ff:
			return head + "\ue000", true // skip the surrogates
		case r < utf8.MaxRune:
			return head + string(r+1), true
		}
		p = head
	}
	return "", false
}
