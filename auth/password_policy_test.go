package auth_test

import (
	"strings"
	"testing"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

func TestCheckPassword(t *testing.T) {
	tests := []struct {
		name, password, email string
		refusal               string // a phrase of the message; "" = accepted
	}{
		{"passphrase", "correct horse battery staple", "alice@example.com", ""},
		{"8 characters", "Zq7!mK2p", "", ""},
		{"8 runes in more bytes", "ŻółćĘąśŃ", "", ""},
		{"256 characters", strings.Repeat("abcdefgh", 32), "", ""},
		{"short local part may appear", "bob-likes-onramp", "bob@example.com", ""},
		{"no email", "alice-in-onramp-land", "", ""},
		{"email without @", "alice-in-onramp-land", "alice", ""},
		{"domain may appear", "example-onramp-2024", "alice@example.com", ""},

		{"empty", "", "", "too short"},
		{"7 characters", "Zq7!mK2", "", "too short"},
		{"composes to 7", "Zq7!mKe\u0301", "", "too short"}, // e + accent = one character after NFKC
		{"257 characters", strings.Repeat("abcdefgh", 32) + "x", "", "too long"},
		{"breached", "password", "", "common or leaked"},
		{"breached, other case", "PassWord1", "", "common or leaked"},
		{"breached, full-width", "ｐａｓｓｗｏｒｄ", "", "common or leaked"},
		{"breached, digits", "12345678", "", "common or leaked"},
		{"contains local part", "alice-in-wonderland", "alice@example.com", "email address"},
		{"local part, other case", "I am ALICE.SMITH!", "Alice.Smith@example.com", "email address"},
		{"local part with +tag", "xx-alice+news-xx", "alice+news@example.com", "email address"},
		{"invalid UTF-8", "abc\xffdefgh", "", "not valid text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := auth.CheckPassword(tt.password, tt.email)
			if tt.refusal == "" {
				if err != nil {
					t.Fatalf("CheckPassword refused: %v", err)
				}
				return
			}
			if onramp.ErrorCode(err) != onramp.EINVALID {
				t.Fatalf("CheckPassword = %v, want an %s error", err, onramp.EINVALID)
			}
			if msg := onramp.ErrorMessage(err); !strings.Contains(msg, tt.refusal) {
				t.Errorf("message %q does not say %q", msg, tt.refusal)
			}
		})
	}
}

// TestCheckPasswordMessagesDiffer: each rule has its own message, so the
// person knows which one to fix.
func TestCheckPasswordMessagesDiffer(t *testing.T) {
	seen := map[string]string{}
	for rule, pw := range map[string]string{
		"short": "abc", "long": strings.Repeat("x", 300), "breached": "iloveyou",
		"email": "carol-1234-xyz", "utf8": "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8",
	} {
		msg := onramp.ErrorMessage(auth.CheckPassword(pw, "carol@example.com"))
		if other, dup := seen[msg]; dup {
			t.Errorf("rules %s and %s share the message %q", rule, other, msg)
		}
		seen[msg] = rule
	}
}

func TestNormalizePassword(t *testing.T) {
	for in, want := range map[string]string{
		"cafe\u0301":   "caf\u00e9",
		"ｐａｓｓ１２３４":     "pass1234",
		"\u212b":       "\u00c5",
		"plain ascii!": "plain ascii!",
		"ﬁne":          "fine", // ligature
	} {
		if got := auth.NormalizePassword(in); got != want {
			t.Errorf("NormalizePassword(%q) = %q, want %q", in, got, want)
		}
	}
}
