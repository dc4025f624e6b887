package auth

import "fmt"

// The emails of the sign-in flows. Plain text first (it is what every
// client shows and what scanners read); the code stands alone on its line
// so that phones offer to copy it. Nothing from traits appears in them.

func verifyEmail(s *Accounts, to, code, link string) Email {
	return Email{
		To:      to,
		Subject: fmt.Sprintf("%s is your %s verification code", code, s.cfg.ProductName),
		Text: fmt.Sprintf("Confirm your email address to finish creating your %s account.\n\nYour code:\n\n%s\n\nOr open this link:\n%s\n\n"+
			"The code and link work for 10 minutes. If you did not ask for this, ignore this email.\n", s.cfg.ProductName, code, link),
	}
}

func signInEmail(s *Accounts, to, code, link string) Email {
	return Email{
		To:      to,
		Subject: fmt.Sprintf("%s is your %s sign-in code", code, s.cfg.ProductName),
		Text: fmt.Sprintf("Use this code to sign in to your %s account. (If you were trying to sign up: you already have an account, and this code signs you in.)\n\n"+
			"Your code:\n\n%s\n\nOr open this link:\n%s\n\nThe code and link work for 10 minutes. If you did not ask for this, ignore this email.\n", s.cfg.ProductName, code, link),
	}
}

func recoveryEmail(s *Accounts, to, code, link string) Email {
	return Email{
		To:      to,
		Subject: fmt.Sprintf("%s is your %s password reset code", code, s.cfg.ProductName),
		Text: fmt.Sprintf("Someone asked to reset the password of your %s account. Use this code to choose a new one:\n\n%s\n\nOr open this link:\n%s\n\n"+
			"The code and link work for 10 minutes. Resetting the password signs you out everywhere. If you did not ask for this, ignore this email: your password stays as it is.\n", s.cfg.ProductName, code, link),
	}
}

func (s *Accounts) noAccountEmail(to string) Email {
	return Email{
		To:      to,
		Subject: fmt.Sprintf("Sign-in attempt at %s", s.cfg.ProductName),
		Text: fmt.Sprintf("Someone asked to sign in to %s with this email address, but it has no account yet.\n\n"+
			"To create one, go to %s/auth/sign-up\n\nIf it was not you, ignore this email.\n", s.cfg.ProductName, s.cfg.PublicURL),
	}
}

// linkEmail confirms an address a provider named but did not prove,
// before the provider's user is linked to the account of that address.
func linkEmail(s *Accounts, provider, to, code, link string) Email {
	return Email{
		To:      to,
		Subject: fmt.Sprintf("%s is your %s confirmation code", code, s.cfg.ProductName),
		Text: fmt.Sprintf("Someone is signing in to %s with %s and this email address. To confirm it is yours and connect the two, use this code:\n\n%s\n\n"+
			"Or open this link:\n%s\n\nThe code and link work for 10 minutes. If this was not you, ignore this email: nothing is connected without the code.\n", s.cfg.ProductName, provider, code, link),
	}
}
