package seen

import (
	"slices"
	"testing"
)

func TestSetRemembersAndForgets(t *testing.T) {
	s := New(2)
	a, b, c, d := Key("per_1", "prp_a"), Key("per_2", "prp_a"), Key("per_3", "prp_a"), Key("per_4", "prp_a")
	if got := s.Missing([]uint64{a, b}); !slices.Equal(got, []int{0, 1}) {
		t.Fatalf("empty set: Missing = %v, want both", got)
	}
	s.Add([]uint64{a, b})
	if got := s.Missing([]uint64{c, a, b}); !slices.Equal(got, []int{0}) {
		t.Fatalf("Missing = %v, want [0]", got)
	}
	// A third key starts a new generation; the previous one is still asked.
	s.Add([]uint64{c})
	if got := s.Missing([]uint64{a, b, c}); len(got) != 0 {
		t.Fatalf("after one rotation Missing = %v, want none", got)
	}
	// The next rotation drops the oldest generation (a and b); a is added
	// again, the last limit keys stay.
	s.Add([]uint64{d})
	s.Add([]uint64{a})
	if got := s.Missing([]uint64{b, c, d, a}); !slices.Equal(got, []int{0}) {
		t.Fatalf("after rotations Missing = %v, want [0]", got)
	}
	if n := s.Len(); n > 4 {
		t.Fatalf("Len = %d, want at most twice the limit", n)
	}
	s.Clear()
	if got := s.Missing([]uint64{a, d}); len(got) != 2 {
		t.Fatalf("after Clear Missing = %v, want both", got)
	}
}

func TestKeySeparatesParts(t *testing.T) {
	if Key("ab", "c") == Key("a", "bc") {
		t.Fatal(`Key("ab", "c") == Key("a", "bc")`)
	}
	if k := Key("a", "b"); Key("a", "b") != k {
		t.Fatal("Key is not deterministic")
	}
}
