package sqlite

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// removeSorted must leave exactly what filtering out gone leaves, in order.
func TestRemoveSorted(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for round := range 500 {
		n := rng.IntN(50)
		var a []string
		for i := range n {
			a = append(a, fmt.Sprintf("per_%04d", i*3))
		}
		var gone []string
		drop := map[string]bool{}
		for _, p := range a {
			if rng.IntN(3) == 0 {
				gone = append(gone, p)
				drop[p] = true
			}
		}
		rng.Shuffle(len(gone), func(i, j int) { gone[i], gone[j] = gone[j], gone[i] })
		want := slices.DeleteFunc(slices.Clone(a), func(p string) bool { return drop[p] })
		if got := removeSorted(a, gone); !slices.Equal(got, want) {
			t.Fatalf("round %d: removeSorted(%v, %v) = %v, want %v", round, a, gone, got, want)
		}
	}
}
