package prefix

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEnd(t *testing.T) {
	cases := []struct {
		p, end string
		ok     bool
	}{
		{"", "", false},
		{"staff.", "staff/", true},
		{"a%b_", "a%b`", true},
		{"é", "ê", true},
		{"ÿ", "Ā", true}, // U+00FF's last byte is 0xBF: a byte step would be invalid UTF-8
		{"x\U0010FFFF", "y", true},
		{"\U0010FFFF\U0010FFFF", "", false},
		{"a\ud7ff", "a\ue000", true},
		{"ab\xff", "ac", true},
		{"ab\xfe", "ab\xff", true},
	}
	for _, c := range cases {
		end, ok := End(c.p)
		if end != c.end || ok != c.ok {
			t.Errorf("End(%q) = %q, %v; want %q, %v", c.p, end, ok, c.end, c.ok)
		}
	}
}

// TestEndBounds checks the promise itself on strings around the bound: s
// of valid UTF-8 starts with p exactly when p <= s < End(p).
func TestEndBounds(t *testing.T) {
	prefixes := []string{"staff.", "a", "é", "ÿ", "z\U0010FFFF", "\ud7ff", "日本"}
	tails := []string{"", "a", "\x00", "~", "é", "ÿ", "\U0010FFFF", "\ue000", "日"}
	for _, p := range prefixes {
		end, ok := End(p)
		for _, q := range prefixes {
			for _, tail := range tails {
				for _, s := range []string{q + tail, q[:len(q)-1] + tail, tail} {
					if !utf8.ValidString(s) {
						continue
					}
					in := s >= p && (!ok || s < end)
					if in != strings.HasPrefix(s, p) {
						t.Errorf("p %q, end %q: %q in range = %v, has prefix = %v", p, end, s, in, !in)
					}
				}
			}
		}
	}
}
