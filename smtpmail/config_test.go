package smtpmail

import (
	"strings"
	"testing"
)

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"bad URL", Config{URL: "http://x", From: "a@example.com"}, "scheme"},
		{"no From", Config{URL: "smtp://127.0.0.1:1025"}, "From is empty"},
		{"bad From", Config{URL: "smtp://127.0.0.1:1025", From: "not an address"}, "From"},
		{"negative timeout", Config{URL: "smtp://127.0.0.1:1025", From: "a@example.com", Timeout: -1}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New: error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	m, err := New(Config{URL: "smtp://127.0.0.1:1025", From: "Onramp <no-reply@example.com>"})
	if err != nil {
		t.Fatal(err)
	}
	if m.timeout != DefaultTimeout || m.idDomain != "example.com" {
		t.Errorf("defaults: timeout %v, id domain %q", m.timeout, m.idDomain)
	}
}
