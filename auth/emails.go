package auth

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
	"sync"

	"github.com/onramp-dev/onramp/web"
)

// The emails of the sign-in flows. Plain text first (it is what every
// client shows and what scanners read); the code stands alone on its line
// so that phones offer to copy it. Nothing from traits appears in them.
// Their texts are in the hosted pages' message files (the "emails" of
// web/auth/locales/<lang>.json), in the language the flow's pages chose.

// EmailLanguages are the languages the emails are written in; the first
// is the one used for any other.
var EmailLanguages = []string{"en", "de"}

// emailTexts reads each language's "emails" messages once.
var emailTexts = sync.OnceValue(func() map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, lang := range EmailLanguages {
		b, err := fs.ReadFile(web.Assets, "auth/locales/"+lang+".json")
		if err != nil {
			panic(fmt.Sprintf("auth: email texts: %v", err))
		}
		var f struct {
			Emails map[string]string `json:"emails"`
		}
		if err := json.Unmarshal(b, &f); err != nil {
			panic(fmt.Sprintf("auth: email texts of %s: %v", lang, err))
		}
		out[lang] = f.Emails
	}
	return out
})

// emailLanguage is lang if emails are written in it, else "" (English).
func emailLanguage(lang string) string {
	for _, l := range EmailLanguages {
		if strings.EqualFold(l, lang) {
			return l
		}
	}
	return ""
}

// localEmail builds the email `name` (its name_subject and name_text
// messages) in lang, English when lang has no such message, with the
// {placeholders} of vars filled in.
func localEmail(lang, name, to string, vars map[string]string) Email {
	texts := emailTexts()
	msg := func(key string) string {
		s, ok := texts[emailLanguage(lang)][key]
		if !ok || s == "" {
			s = texts[EmailLanguages[0]][key]
		}
		for k, v := range vars {
			s = strings.ReplaceAll(s, "{"+k+"}", v)
		}
		return s
	}
	return Email{To: to, Subject: msg(name + "_subject"), Text: msg(name + "_text")}
}

func recoveryEmail(s *Accounts, lang, to, code, link string) Email {
	return localEmail(lang, "recovery", to, map[string]string{"product": s.cfg.ProductName, "code": code, "link": link})
}

func verifyEmail(s *Accounts, lang, to, code, link string) Email {
	return localEmail(lang, "verify", to, map[string]string{"product": s.cfg.ProductName, "code": code, "link": link})
}

func signInEmail(s *Accounts, lang, to, code, link string) Email {
	return localEmail(lang, "sign_in", to, map[string]string{"product": s.cfg.ProductName, "code": code, "link": link})
}

func (s *Accounts) noAccountEmail(lang, to string) Email {
	return localEmail(lang, "no_account", to, map[string]string{"product": s.cfg.ProductName, "sign_up_url": s.cfg.PublicURL + "/auth/sign-up"})
}

// linkEmail confirms an address a provider named but did not prove,
// before the provider's user is linked to the account of that address.
func linkEmail(s *Accounts, provider, lang, to, code, link string) Email {
	return localEmail(lang, "link", to, map[string]string{"product": s.cfg.ProductName, "provider": provider, "code": code, "link": link})
}
