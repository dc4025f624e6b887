package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/events"
)

// fakeSeed makes FakeEvents deterministic: benchmarks on different days
// and engines store the same bytes.
const fakeSeed = 20260314

var (
	fakePaths = []string{"/", "/pricing", "/blog/product-led-growth", "/blog/onboarding-that-converts", "/docs/getting-started",
		"/events/webinar-2026", "/customers", "/signup", "/community", "/changelog"}
	fakeTitles = []string{"Acme — Home", "Pricing — Acme", "Product-led growth, explained", "Onboarding that converts",
		"Getting started — Acme Docs", "Webinar: scaling PLG", "Customers — Acme", "Start your trial", "Community", "Changelog"}
	fakeReferrers = []string{"", "https://www.google.com/", "https://news.ycombinator.com/", "https://www.linkedin.com/", "https://t.co/"}
	fakeAgents    = []string{
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
	}
	fakeTracks = []string{"Signed Up", "Trial Started", "Product Viewed", "Order Completed", "Webinar Registered", "Button Clicked"}
	fakeZones  = []string{"Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC"}
)

type fakePage struct {
	Path     string `json:"path"`
	Referrer string `json:"referrer"`
	Search   string `json:"search"`
	Title    string `json:"title"`
	URL      string `json:"url"`
}

type fakeContext struct {
	IP      string `json:"ip"`
	Library struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"library"`
	Locale    string   `json:"locale"`
	Page      fakePage `json:"page"`
	UserAgent string   `json:"userAgent"`
	Timezone  string   `json:"timezone"`
	Campaign  *struct {
		Name   string `json:"name"`
		Source string `json:"source"`
		Medium string `json:"medium"`
	} `json:"campaign,omitempty"`
}

type fakeProduct struct {
	ProductID string  `json:"product_id"`
	SKU       string  `json:"sku"`
	Category  string  `json:"category"`
	Name      string  `json:"name"`
	Brand     string  `json:"brand"`
	Price     float64 `json:"price"`
	Quantity  int     `json:"quantity"`
	Currency  string  `json:"currency"`
	Coupon    string  `json:"coupon,omitempty"`
	Plan      string  `json:"plan"`
}

// FakeEvents returns n Segment-like events (page views, track calls,
// identify calls, each with about 600 bytes of properties, traits and
// context) of the given number of people, as ingest would store them. The
// same arguments always give the same events. Person ids are
// FakePersonID(propertyID, i): another property gets other people, so
// repeated measurements on one database do not pile onto the same rows.
func FakeEvents(n, people int, propertyID string) []*events.Event {
	if people <= 0 {
		people = 1
	}
	rng := rand.New(rand.NewPCG(fakeSeed, uint64(people)))
	uuid := func() string {
		return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xfff, 0x8000|rng.Uint32()&0x3fff, rng.Uint64()&0xffffffffffff)
	}
	anon := make([]string, people)
	for i := range anon {
		anon[i] = uuid()
	}
	start := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	out := make([]*events.Event, n)
	for i := range out {
		p := rng.IntN(people)
		page := rng.IntN(len(fakePaths))
		ctx := fakeContext{
			IP:        fmt.Sprintf("203.0.%d.%d", rng.IntN(256), rng.IntN(256)),
			Locale:    "en-US",
			UserAgent: fakeAgents[p%len(fakeAgents)],
			Timezone:  fakeZones[p%len(fakeZones)],
			Page: fakePage{Path: fakePaths[page], Referrer: fakeReferrers[rng.IntN(len(fakeReferrers))], Title: fakeTitles[page],
				URL: "https://www.acme.example" + fakePaths[page]},
		}
		ctx.Library.Name, ctx.Library.Version = "analytics.js", "next-1.70.0"
		if rng.IntN(4) == 0 {
			ctx.Campaign = &struct {
				Name   string `json:"name"`
				Source string `json:"source"`
				Medium string `json:"medium"`
			}{"spring-launch", "newsletter", "email"}
			ctx.Page.Search = "?utm_source=newsletter&utm_medium=email&utm_campaign=spring-launch"
		}
		ts := start.Add(time.Duration(i)*37*time.Millisecond + time.Duration(rng.IntN(1000))*time.Microsecond)
		e := &events.Event{
			PropertyID: propertyID, MessageID: "ajs-next-" + uuid(), PersonID: FakePersonID(propertyID, p),
			AnonymousID: anon[p], Timestamp: ts, OriginalTimestamp: ts.Add(-120 * time.Millisecond), SentAt: ts.Add(-80 * time.Millisecond),
			ReceivedAt: ts, IP: ctx.IP,
		}
		if p%3 == 0 {
			e.UserID = fmt.Sprintf("user-%07d", p)
		}
		switch r := rng.IntN(10); {
		case r < 6:
			e.Type, e.Name = events.TypePage, ctx.Page.Title
			e.Properties = mustJSON(ctx.Page)
		case r < 9:
			e.Type, e.Event = events.TypeTrack, fakeTracks[rng.IntN(len(fakeTracks))]
			prod := fakeProduct{ProductID: fmt.Sprintf("prod_%05d", rng.IntN(50000)), SKU: fmt.Sprintf("ACM-%04d", rng.IntN(10000)),
				Category: "Subscriptions", Name: "Acme Growth Plan", Brand: "Acme", Price: float64(rng.IntN(50000)) / 100,
				Quantity: 1 + rng.IntN(3), Currency: "EUR", Plan: []string{"starter", "growth", "enterprise"}[rng.IntN(3)]}
			if rng.IntN(5) == 0 {
				prod.Coupon = "SPRING20"
			}
			e.Properties = mustJSON(prod)
		default:
			e.Type = events.TypeIdentify
			e.Traits = mustJSON(map[string]any{
				"email": fmt.Sprintf("person%d@example.com", p), "name": fmt.Sprintf("Person %d", p), "company": "Example Corp",
				"title": "Head of Growth", "plan": "trial", "createdAt": start.Format(time.RFC3339),
			})
		}
		e.Context = mustJSON(ctx)
		out[i] = e
	}
	return out
}

// FakePersonID is the id FakeEvents gives person i of propertyID's events.
func FakePersonID(propertyID string, i int) string {
	return fmt.Sprintf("per_fake_%s_%d", strings.TrimPrefix(propertyID, "prp_"), i)
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("storetest: %v", err))
	}
	return b
}

// Raw insert shape: what ingest does at full load, HTTP batches of 100
// grouped several to a transaction.
const (
	rawBatch      = 100
	rawBatchesPer = 10
)

// RawInsertRate measures how many events per second engine stores when
// events come in batches of 100, ten batches per transaction, with nothing
// else in the transaction: the ceiling that HTTP ingest is compared to. It
// writes n fake events under a fresh property id and deletes them (and
// their fake persons' data) afterwards, untimed.
func RawInsertRate(ctx context.Context, engine Engine, n int) (eventsPerSec float64, err error) {
	if n <= 0 {
		return 0, fmt.Errorf("storetest: raw insert: n must be positive")
	}
	people := max(n/20, 1)
	propertyID := onramp.NewID("prp")
	evs := FakeEvents(n, people, propertyID)
	defer func() {
		ids := make([]string, people)
		for i := range ids {
			ids[i] = FakePersonID(propertyID, i)
		}
		cctx := context.WithoutCancel(ctx)
		cerr := engine.InTx(cctx, func(s Store) error { return s.DeletePersons(cctx, ids) })
		if err == nil && cerr != nil {
			err = fmt.Errorf("storetest: raw insert: clean up: %w", cerr)
		}
	}()
	start := time.Now()
	for len(evs) > 0 {
		group := evs[:min(rawBatch*rawBatchesPer, len(evs))]
		evs = evs[len(group):]
		err := engine.InTx(ctx, func(s Store) error {
			for len(group) > 0 {
				b := group[:min(rawBatch, len(group))]
				group = group[len(b):]
				if err := s.InsertEvents(ctx, b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("storetest: raw insert: %w", err)
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
