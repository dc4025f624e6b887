package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/onramp-dev/onramp/auth"
)

// Config is every setting Onramp honours, validated once. Precedence:
// flags > ONRAMP_* environment > the optional config file > defaults.
type Config struct {
	DataDir     string `json:"data_dir"`
	Addr        string `json:"addr"`
	PublicURL   string `json:"public_url"`
	DatabaseURL string `json:"database_url"`
	NATSURL     string `json:"nats_url"`
	SMTPURL     string `json:"smtp_url"`
	// SMTPFrom is the sender of auth emails; default no-reply at the
	// public URL's host.
	SMTPFrom   string `json:"smtp_from"`
	LogLevel   string `json:"log_level"`
	LogFormat  string `json:"log_format"`
	TrustProxy bool   `json:"trust_proxy"`
	// SQLiteSync is SQLite's synchronous pragma: FULL (default) or NORMAL.
	SQLiteSync string `json:"sqlite_synchronous"`
	// SQLiteDedupeWindow is how many recent message ids SQLite dedupes
	// retried events against, as settings give it; validate parses it into
	// sqliteDedupeWindow (0: the engine's default).
	SQLiteDedupeWindow numberSetting `json:"sqlite_dedupe_window"`
	sqliteDedupeWindow int
	// Argon2 cost of password hashes, as settings give them (empty: the
	// OWASP defaults); validate parses them into Argon2.
	Argon2MemoryKiB numberSetting     `json:"argon2_memory_kib"`
	Argon2Time      numberSetting     `json:"argon2_time"`
	Argon2Threads   numberSetting     `json:"argon2_threads"`
	Argon2          auth.Argon2Params `json:"-"`
	// KeyEncryptionKey (32 bytes, base64 or hex) seals the private halves
	// of the OpenID Connect signing keys in the database. Environment or
	// config file only: a flag would show it in the process list.
	KeyEncryptionKey string `json:"key_encryption_key"`
	// keyEncryptionKey is KeyEncryptionKey decoded by validate.
	keyEncryptionKey []byte
	// configuredPublicURL is PublicURL as the operator set it ("" when it
	// was derived from the address): only a configured one may override
	// what requests say about where Onramp is reached.
	configuredPublicURL string
}

func defaultConfig() Config {
	return Config{DataDir: "./onramp-data", Addr: "127.0.0.1:8080", LogLevel: "info", LogFormat: "text", SQLiteSync: "FULL"}
}

// configFlags registers the shared settings on fs. Every command calls it,
// so every command honours the same settings.
type configFlags struct {
	fs         *flag.FlagSet
	configFile *string
	set        map[string]*string
	trustProxy *bool
}

var settingNames = []struct{ flag, env, help string }{
	{"data-dir", "ONRAMP_DATA_DIR", "folder for the SQLite database and other data (default ./onramp-data)"},
	{"addr", "ONRAMP_ADDR", "address to listen on (default 127.0.0.1:8080)"},
	{"public-url", "ONRAMP_PUBLIC_URL", "URL people reach Onramp at (default http://<addr>)"},
	{"database-url", "ONRAMP_DATABASE_URL", "postgres://… to use PostgreSQL (default: SQLite in the data folder)"},
	{"nats-url", "ONRAMP_NATS_URL", "nats://… for the scale-out bus (optional)"},
	{"smtp-url", "ONRAMP_SMTP_URL", "smtp://host:port for email (optional; without it emails go to the log, for development)"},
	{"smtp-from", "ONRAMP_SMTP_FROM", "sender of emails (default Onramp <no-reply@public-url-host>)"},
	{"argon2-memory-kib", "ONRAMP_ARGON2_MEMORY_KIB", "argon2id memory per password hash in KiB (default 19456)"},
	{"argon2-time", "ONRAMP_ARGON2_TIME", "argon2id passes per password hash (default 2)"},
	{"argon2-threads", "ONRAMP_ARGON2_THREADS", "argon2id lanes per password hash (default 1)"},
	{"log-level", "ONRAMP_LOG_LEVEL", "debug, info, warn or error (default info)"},
	{"log-format", "ONRAMP_LOG_FORMAT", "text or json (default text)"},
	{"sqlite-synchronous", "ONRAMP_SQLITE_SYNCHRONOUS", "FULL (survives power loss, default) or NORMAL (survives process crashes)"},
	{"sqlite-dedupe-window", "ONRAMP_SQLITE_DEDUPE_WINDOW", "how many of the most recent events a retried message id is recognised among on SQLite (default 1000000, about 55 MB when full)"},
}

func addConfigFlags(fs *flag.FlagSet) *configFlags {
	cf := &configFlags{fs: fs, set: map[string]*string{}}
	cf.configFile = fs.String("config", os.Getenv("ONRAMP_CONFIG"), "optional JSON config file (keys: data_dir, addr, public_url, database_url, …) [ONRAMP_CONFIG]")
	for _, s := range settingNames {
		cf.set[s.flag] = fs.String(s.flag, "", s.help+" ["+s.env+"]")
	}
	cf.trustProxy = fs.Bool("trust-proxy", false, "trust X-Forwarded-For/-Proto from a proxy in front [ONRAMP_TRUST_PROXY=1]")
	return cf
}

// load resolves the settings after fs.Parse.
func (cf *configFlags) load() (Config, error) {
	cfg := defaultConfig()
	if *cf.configFile != "" {
		b, err := os.ReadFile(*cf.configFile)
		if err != nil {
			return cfg, fmt.Errorf("config file: %w", err)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return cfg, fmt.Errorf("config file %s: %w", *cf.configFile, err)
		}
	}
	explicit := map[string]bool{}
	cf.fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	targets := map[string]*string{
		"data-dir": &cfg.DataDir, "addr": &cfg.Addr, "public-url": &cfg.PublicURL, "database-url": &cfg.DatabaseURL,
		"nats-url": &cfg.NATSURL, "smtp-url": &cfg.SMTPURL, "smtp-from": &cfg.SMTPFrom, "log-level": &cfg.LogLevel, "log-format": &cfg.LogFormat,
		"sqlite-synchronous": &cfg.SQLiteSync, "sqlite-dedupe-window": (*string)(&cfg.SQLiteDedupeWindow),
		"argon2-memory-kib": (*string)(&cfg.Argon2MemoryKiB), "argon2-time": (*string)(&cfg.Argon2Time), "argon2-threads": (*string)(&cfg.Argon2Threads),
	}
	for _, s := range settingNames {
		if v, ok := os.LookupEnv(s.env); ok && v != "" {
			*targets[s.flag] = v
		}
		if explicit[s.flag] {
			*targets[s.flag] = *cf.set[s.flag]
		}
	}
	if v := os.Getenv("ONRAMP_KEY_ENCRYPTION_KEY"); v != "" {
		cfg.KeyEncryptionKey = v
	}
	if v := os.Getenv("ONRAMP_TRUST_PROXY"); v == "1" || v == "true" {
		cfg.TrustProxy = true
	}
	if explicit["trust-proxy"] {
		cfg.TrustProxy = *cf.trustProxy
	}
	return cfg, cfg.validate()
}

func (c *Config) validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("data-dir must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("addr %q must be host:port: %w", c.Addr, err)
	}
	c.configuredPublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.PublicURL == "" {
		host := c.Addr
		if h, p, _ := net.SplitHostPort(c.Addr); h == "" || h == "0.0.0.0" || h == "::" {
			host = net.JoinHostPort("127.0.0.1", p)
		}
		c.PublicURL = "http://" + host
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") && !strings.HasPrefix(c.DatabaseURL, "sqlite:") {
		return fmt.Errorf("database-url must start with postgres:// (or sqlite:PATH)")
	}
	switch strings.ToUpper(c.SQLiteSync) {
	case "FULL", "NORMAL":
		c.SQLiteSync = strings.ToUpper(c.SQLiteSync)
	default:
		return fmt.Errorf("sqlite-synchronous must be FULL or NORMAL")
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("log-format must be text or json")
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	if c.SMTPFrom == "" {
		host := c.PublicURL
		if u, err := url.Parse(c.PublicURL); err == nil && u.Hostname() != "" {
			host = u.Hostname()
		}
		c.SMTPFrom = "Onramp <no-reply@" + host + ">"
	}
	// Zero fields take auth's defaults; NewArgon2id checks the ranges.
	for _, f := range []struct {
		name, v string
		bits    int
		set     func(uint64)
	}{
		{"argon2-memory-kib", string(c.Argon2MemoryKiB), 32, func(n uint64) { c.Argon2.MemoryKiB = uint32(n) }},
		{"argon2-time", string(c.Argon2Time), 32, func(n uint64) { c.Argon2.Time = uint32(n) }},
		{"argon2-threads", string(c.Argon2Threads), 8, func(n uint64) { c.Argon2.Threads = uint8(n) }},
		// Past 2^27 ids (134 million, about 7 GB of memory) the setting is
		// a typo, not a plan.
		{"sqlite-dedupe-window", string(c.SQLiteDedupeWindow), 27, func(n uint64) { c.sqliteDedupeWindow = int(n) }},
	} {
		if f.v == "" {
			continue
		}
		n, err := strconv.ParseUint(f.v, 10, f.bits)
		if errors.Is(err, strconv.ErrRange) {
			return fmt.Errorf("%s must be at most %d, not %s", f.name, uint64(1)<<f.bits-1, f.v)
		}
		if err != nil || n == 0 {
			return fmt.Errorf("%s must be a positive whole number, not %q", f.name, f.v)
		}
		f.set(n)
	}
	if c.KeyEncryptionKey != "" {
		k, err := decodeKey(c.KeyEncryptionKey)
		if err != nil {
			return fmt.Errorf("key encryption key (ONRAMP_KEY_ENCRYPTION_KEY): %w", err)
		}
		c.keyEncryptionKey = k
	}
	return nil
}

// decodeKey reads a 32-byte key written as hex or base64 (standard or
// URL alphabet, padded or not), e.g. from `openssl rand -base64 32`.
func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, fmt.Errorf("must be 32 bytes as hex (64 characters) or base64 (44 characters), such as the output of openssl rand -base64 32")
}

// sqlitePath is the database file when no Postgres URL is set.
func (c *Config) sqlitePath() string {
	if p, ok := strings.CutPrefix(c.DatabaseURL, "sqlite:"); ok {
		return p
	}
	return filepath.Join(c.DataDir, "onramp.db")
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("log-level must be debug, info, warn or error")
	}
	return l, nil
}

func (c *Config) logger(w *os.File) *slog.Logger {
	lvl, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// numberSetting is a whole-number setting: a string from a flag or the
// environment, a JSON number or string in the config file. validate parses
// it.
type numberSetting string

func (n *numberSetting) UnmarshalJSON(b []byte) error {
	var num json.Number
	if err := json.Unmarshal(b, &num); err == nil {
		*n = numberSetting(num)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a whole number, got %s", b)
	}
	*n = numberSetting(s)
	return nil
}
