package auth

import (
	"strings"
	"testing"
)

// TestEmailTexts: every email has its subject and text in every email
// language, and building one leaves no placeholder unfilled; an unknown
// language gets English.
func TestEmailTexts(t *testing.T) {
	s := &Accounts{cfg: Config{ProductName: "Acme", PublicURL: "https://id.example.com"}}
	for _, lang := range []string{"en", "de", "fr", ""} {
		for name, e := range map[string]Email{
			"verify":     verifyEmail(s, lang, "a@example.com", "123456", "https://id.example.com/auth/magic/lnk_x"),
			"sign_in":    signInEmail(s, lang, "a@example.com", "123456", "https://id.example.com/auth/magic/lnk_x"),
			"no_account": s.noAccountEmail(lang, "a@example.com"),
			"link":       linkEmail(s, "GitHub", lang, "a@example.com", "123456", "https://id.example.com/auth/magic/lnk_x"),
		} {
			if e.Subject == "" || e.Text == "" || strings.ContainsAny(e.Subject+e.Text, "{}") || !strings.Contains(e.Subject+e.Text, "Acme") {
				t.Errorf("%s email in %q = %+v", name, lang, e)
			}
			if name != "no_account" && (!strings.Contains(e.Text, "\n123456\n") || !strings.Contains(e.Text, "lnk_x")) {
				t.Errorf("%s email in %q lacks its code or link: %q", name, lang, e.Text)
			}
		}
	}
	for key, en := range emailTexts()["en"] {
		if de := emailTexts()["de"][key]; de == "" || de == en {
			t.Errorf("emails.%s has no German text", key)
		}
	}
	if fr := signInEmail(s, "fr", "a@example.com", "1", "l"); fr.Subject != signInEmail(s, "en", "a@example.com", "1", "l").Subject {
		t.Errorf("an unknown language is not English: %q", fr.Subject)
	}
}
