package events

import "github.com/onramp-dev/onramp/internal/seen"

// PersonProperty is a row of the console's property filter: the person
// has events from the property.
type PersonProperty struct{ PersonID, PropertyID string }

// KnownPersonProperties is how many pairs an engine remembers as stored
// (NewKnownPersonProperties): 200,000 to 400,000 keys, 8 to 16 MB at most.
const KnownPersonProperties = 200_000

// NewKnownPersonProperties returns an empty memory of stored pairs for an
// engine to keep beside its database.
func NewKnownPersonProperties() *seen.Set { return seen.New(KnownPersonProperties) }

// NewPersonProperties returns the distinct pairs of evs that known does
// not hold (all of them if known is nil), with their keys: the engine adds
// the keys to known once the transaction that wrote the pairs committed.
// Nearly every pair of an ingest group is stored already; each skipped one
// spares the engine a probe of its index.
func NewPersonProperties(evs []*Event, known *seen.Set) ([]PersonProperty, []uint64) {
	dup := make(map[PersonProperty]bool, len(evs))
	var pairs []PersonProperty
	for _, e := range evs {
		p := PersonProperty{e.PersonID, e.PropertyID}
		if !dup[p] {
			dup[p] = true
			pairs = append(pairs, p)
		}
	}
	if known == nil {
		return pairs, nil
	}
	keys := make([]uint64, len(pairs))
	for i, p := range pairs {
		keys[i] = seen.Key(p.PersonID, p.PropertyID)
	}
	missing := known.Missing(keys)
	newPairs, newKeys := make([]PersonProperty, len(missing)), make([]uint64, len(missing))
	for j, i := range missing {
		newPairs[j], newKeys[j] = pairs[i], keys[i]
	}
	return newPairs, newKeys
}
