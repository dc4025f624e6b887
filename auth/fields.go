package auth

import "errors"

// FieldError is a client-safe error about one field of a form. Hosted
// pages point at the field (aria-describedby, a link from the error
// summary); the headless API can name it. It unwraps to the error it
// carries, so onramp.ErrorCode and ErrorMessage see through it.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Form fields the rules name in errors.
const (
	FieldEmail    = "email"
	FieldPassword = "password"
	FieldCode     = "code"
	// The account page's password and profile forms.
	FieldCurrentPassword = "current_password"
	FieldNewPassword     = "new_password"
	FieldName            = "name"
)

// ErrorField names the form field err is about, or "" when it is about
// the whole form (a wrong email-or-password is deliberately not pinned to
// either field).
func ErrorField(err error) string {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}

func inField(field string, err error) error {
	if err == nil {
		return nil
	}
	return &FieldError{Field: field, Err: err}
}
