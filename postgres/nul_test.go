package postgres

import (
	"encoding/json"
	"testing"
)

func TestStripNUL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"a": "b"}`, `{"a": "b"}`},
		{`{"a": "\u0000"}`, `{"a": "\ufffd"}`},
		{`{"a\u0000": "x\u0000y\u0000"}`, `{"a\ufffd": "x\ufffdy\ufffd"}`},
		{`{"a": "\\u0000"}`, `{"a": "\\u0000"}`},         // a backslash, then text
		{`{"a": "\\\u0000"}`, `{"a": "\\\ufffd"}`},       // a backslash, then NUL
		{`{"a": "\u00001"}`, `{"a": "\ufffd1"}`},         // NUL then "1"
		{`{"a": "\u0001\u000"}`, `{"a": "\u0001\u000"}`}, // not NUL; cut short
		{`{"a": "\"\u0000\""}`, `{"a": "\"\ufffd\""}`},   // quotes around
		{`["\u0000", 1, {"\u0000": null}]`, `["\ufffd", 1, {"\ufffd": null}]`},
	} {
		got := string(stripNUL([]byte(tc.in)))
		if got != tc.want {
			t.Errorf("stripNUL(%s) = %s, want %s", tc.in, got, tc.want)
		}
		if json.Valid([]byte(tc.in)) && !json.Valid([]byte(got)) {
			t.Errorf("stripNUL(%s) made invalid JSON %s", tc.in, got)
		}
	}
}

func FuzzStripNUL(f *testing.F) {
	for _, s := range []string{`{"a": "\u0000"}`, `"\\u0000"`, `"\\\u0000"`, `{}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := stripNUL([]byte(s))
		if !json.Valid([]byte(s)) {
			return
		}
		var before, after any
		if json.Unmarshal([]byte(s), &before) != nil {
			return
		}
		if err := json.Unmarshal(got, &after); err != nil {
			t.Fatalf("stripNUL(%q) = %q: %v", s, got, err)
		}
		if b, _ := json.Marshal(after); json.Valid(b) && containsNUL(after) {
			t.Fatalf("stripNUL(%q) = %q still holds NUL", s, got)
		}
	})
}

func containsNUL(v any) bool {
	switch v := v.(type) {
	case string:
		for _, r := range v {
			if r == 0 {
				return true
			}
		}
	case []any:
		for _, x := range v {
			if containsNUL(x) {
				return true
			}
		}
	case map[string]any:
		for k, x := range v {
			if containsNUL(k) || containsNUL(x) {
				return true
			}
		}
	}
	return false
}
