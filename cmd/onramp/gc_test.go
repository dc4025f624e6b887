package main

import "testing"

func TestSoftMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"max\n", 0, false},
		{"1073741824\n", 858993456, true},
		{"", 0, false},
		{"0", 0, false},
		{"-5", 0, false},
	} {
		got, ok := softMemoryLimit(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("softMemoryLimit(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
