package smtpmail

import (
	"errors"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		url     string
		want    Settings
		wantErr string // substring; "" means success
	}{
		{url: "smtp://127.0.0.1:1025", want: Settings{Host: "127.0.0.1", Port: 1025, TLS: TLSOpportunistic}},
		{url: "smtp://mail.example.com", want: Settings{Host: "mail.example.com", Port: 587, TLS: TLSOpportunistic}},
		{url: "smtp://mail.example.com/", want: Settings{Host: "mail.example.com", Port: 587, TLS: TLSOpportunistic}},
		{url: "SMTP://Mail.Example.com:25", want: Settings{Host: "Mail.Example.com", Port: 25, TLS: TLSOpportunistic}},
		{url: "smtps://mail.example.com", want: Settings{Host: "mail.example.com", Port: 465, TLS: TLSImplicit}},
		{url: "smtps://mail.example.com:2465?tls=required", want: Settings{Host: "mail.example.com", Port: 2465, TLS: TLSImplicit}},
		{url: "smtp://u:p@mail.example.com:587?tls=required", want: Settings{Host: "mail.example.com", Port: 587, Username: "u", Password: "p", TLS: TLSRequired}},
		{url: "smtp://mail.example.com?tls=REQUIRED", want: Settings{Host: "mail.example.com", Port: 587, TLS: TLSRequired}},
		{url: "smtp://mail.example.com?tls=opportunistic", want: Settings{Host: "mail.example.com", Port: 587, TLS: TLSOpportunistic}},
		{url: "smtp://127.0.0.1:1025?tls=none", want: Settings{Host: "127.0.0.1", Port: 1025, TLS: TLSNone}},
		{url: "smtp://[::1]:1025", want: Settings{Host: "::1", Port: 1025, TLS: TLSOpportunistic}},
		// Escaped characters in credentials, as providers' API keys have.
		{url: "smtp://apikey:S3cr%2Ft%40%3A@smtp.example.com:587", want: Settings{Host: "smtp.example.com", Port: 587, Username: "apikey", Password: "S3cr/t@:", TLS: TLSOpportunistic}},
		{url: "smtp://user%40example.com:pw@smtp.example.com", want: Settings{Host: "smtp.example.com", Port: 587, Username: "user@example.com", Password: "pw", TLS: TLSOpportunistic}},
		// Clear-text passwords are fine to a relay on this machine.
		{url: "smtp://u:p@localhost:25?tls=none", want: Settings{Host: "localhost", Port: 25, Username: "u", Password: "p", TLS: TLSNone}},
		{url: "smtp://u:p@127.0.0.1:25?tls=none", want: Settings{Host: "127.0.0.1", Port: 25, Username: "u", Password: "p", TLS: TLSNone}},

		{url: "", wantErr: "empty"},
		{url: "   ", wantErr: "empty"},
		{url: "127.0.0.1:1025", wantErr: "no scheme; want smtp://host:port"},
		{url: "mail.example.com", wantErr: "no scheme"},
		{url: "http://mail.example.com", wantErr: `scheme "http"`},
		{url: "smtp:mail.example.com", wantErr: "no scheme"},
		{url: "://mail.example.com", wantErr: "missing protocol scheme"},
		{url: "smtp://", wantErr: "no host"},
		{url: "smtp://:25", wantErr: "no host"},
		{url: "smtp://mail.example.com:", wantErr: "empty port"},
		{url: "smtp://mail.example.com:0", wantErr: "port"},
		{url: "smtp://mail.example.com:65536", wantErr: "port"},
		{url: "smtp://mail.example.com:smtp", wantErr: "port"},
		{url: "smtp://mail.example.com/relay", wantErr: "path"},
		{url: "smtp://mail.example.com#x", wantErr: "fragment"},
		{url: "smtp://user@mail.example.com", wantErr: "without a password"},
		{url: "smtp://:pw@mail.example.com", wantErr: "without a user name"},
		{url: "smtp://mail.example.com?tls=maybe", wantErr: "want none, required or opportunistic"},
		{url: "smtp://mail.example.com?tsl=none", wantErr: `unknown parameter "tsl"`},
		{url: "smtp://mail.example.com?tls=none&tls=required", wantErr: "2 times"},
		{url: "smtps://mail.example.com?tls=none", wantErr: "contradicts"},
		{url: "smtp://u:p@mail.example.com?tls=none", wantErr: "clear text"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := ParseURL(tt.url)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseURL(%q) = %+v, want error containing %q", tt.url, got, tt.wantErr)
				}
				if !errors.Is(err, ErrInvalidURL) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseURL(%q) error = %q, want ErrInvalidURL containing %q", tt.url, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", tt.url, err)
			}
			if got != tt.want {
				t.Fatalf("ParseURL(%q) = %+v, want %+v", tt.url, got, tt.want)
			}
		})
	}
}

// Errors end up in logs, so they must never carry the password, not even
// when url.Parse itself fails (it quotes its whole input).
func TestParseURLErrorsHidePassword(t *testing.T) {
	for _, raw := range []string{
		"smtp://user:hunter2@mail.example.com:bad",
		"smtp://user:hunter2@mail example.com",
		"smtp://user:hunter2@mail.example.com\x7f",
		"smtp://user:hunter2@mail.example.com?tls=none",
		"smtp://user:hunter2@mail.example.com?x=1",
	} {
		_, err := ParseURL(raw)
		if err == nil {
			t.Fatalf("ParseURL(%q): no error", raw)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseURL error reveals the password: %v", err)
		}
	}
}

func TestSettingsStringHidesPassword(t *testing.T) {
	s, err := ParseURL("smtp://user:hunter2@mail.example.com:2525?tls=required")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.String(), "smtp://user:xxxxx@mail.example.com:2525?tls=required"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	s, err = ParseURL("smtps://[::1]")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.String(), "smtps://[::1]:465"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
