package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onramp-dev/onramp/auth"
)

// TestAuthSettings: the argon2 cost and the email sender come from flags
// or ONRAMP_* like every setting, with defaults when unset and a clear
// refusal of nonsense.
func TestAuthSettings(t *testing.T) {
	load := func(args ...string) (Config, error) {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		cf := addConfigFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return cf.load()
	}
	for _, k := range []string{"ONRAMP_ARGON2_MEMORY_KIB", "ONRAMP_ARGON2_TIME", "ONRAMP_ARGON2_THREADS", "ONRAMP_SMTP_FROM", "ONRAMP_PUBLIC_URL", "ONRAMP_CONFIG"} {
		t.Setenv(k, "")
	}
	cfg, err := load("--public-url", "https://onramp.example.com:8443/")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Argon2 != (auth.Argon2Params{}) {
		t.Errorf("unset argon2 settings = %+v, want zero (auth's defaults)", cfg.Argon2)
	}
	if cfg.SMTPFrom != "Onramp <no-reply@onramp.example.com>" {
		t.Errorf("default sender %q", cfg.SMTPFrom)
	}
	t.Setenv("ONRAMP_ARGON2_TIME", "3")
	cfg, err = load("--argon2-memory-kib", "65536", "--argon2-threads", "2", "--smtp-from", "Acme <login@acme.example>")
	if err != nil {
		t.Fatal(err)
	}
	if want := (auth.Argon2Params{MemoryKiB: 65536, Time: 3, Threads: 2}); cfg.Argon2 != want {
		t.Errorf("argon2 = %+v, want %+v", cfg.Argon2, want)
	}
	if cfg.SMTPFrom != "Acme <login@acme.example>" {
		t.Errorf("sender %q", cfg.SMTPFrom)
	}
	for _, bad := range [][]string{{"--argon2-time", "0"}, {"--argon2-memory-kib", "lots"}, {"--argon2-threads", "300"}} {
		if _, err := load(bad...); err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(bad[0], "--")) {
			t.Errorf("%v: %v, want an error naming the setting", bad, err)
		}
	}
}

// TestNumberSettingsInConfigFile: whole-number settings may be JSON numbers
// or strings in the config file, and an out-of-range value says its limit.
func TestNumberSettingsInConfigFile(t *testing.T) {
	for _, k := range []string{"ONRAMP_SQLITE_DEDUPE_WINDOW", "ONRAMP_ARGON2_TIME", "ONRAMP_CONFIG"} {
		t.Setenv(k, "")
	}
	load := func(body string, args ...string) (Config, error) {
		path := filepath.Join(t.TempDir(), "cfg.json")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		cf := addConfigFlags(fs)
		if err := fs.Parse(append([]string{"--config", path}, args...)); err != nil {
			t.Fatal(err)
		}
		return cf.load()
	}
	cfg, err := load(`{"sqlite_dedupe_window": 5000000, "argon2_time": "3"}`)
	if err != nil || cfg.sqliteDedupeWindow != 5_000_000 || cfg.Argon2.Time != 3 {
		t.Fatalf("numbers in the config file: %v, window %d, argon2 time %d", err, cfg.sqliteDedupeWindow, cfg.Argon2.Time)
	}
	if cfg, err = load(`{"sqlite_dedupe_window": 5000000}`, "--sqlite-dedupe-window", "2000"); err != nil || cfg.sqliteDedupeWindow != 2000 {
		t.Fatalf("a flag over the file: %v, window %d", err, cfg.sqliteDedupeWindow)
	}
	if _, err := load(`{"sqlite_dedupe_window": true}`); err == nil || !strings.Contains(err.Error(), "whole number") {
		t.Errorf("a boolean: %v", err)
	}
	if _, err := load(`{"sqlite_dedupe_window": 200000000}`); err == nil || !strings.Contains(err.Error(), "at most 134217727") {
		t.Errorf("out of range: %v", err)
	}
}
