package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/smtpmail"
)

// authPropertyID is the reserved property of events Onramp itself records
// (sign-ups, logins): no created property has this id, since theirs are
// generated.
const authPropertyID = "onramp"

// timelineSink puts auth events on people's timelines through ingest, as
// Segment track calls, so they are deduplicated by message id (the outbox
// may deliver twice) and published on the bus like any other event.
type timelineSink struct {
	events *events.Service
	clock  onramp.Clock
}

// errEventRefused marks a timeline event that ingest rejected: sending it
// again cannot help.
var errEventRefused = errors.New("timeline event refused")

func (t timelineSink) Track(ctx context.Context, ev auth.TimelineEvent) error {
	return t.TrackAll(ctx, []auth.TimelineEvent{ev})[0]
}

// TrackAll ingests the events as one batch per property (in practice one:
// Onramp's own), in order: one commit for all of them, where Track for
// each waited for a commit of its own. Each event gets its own answer.
func (t timelineSink) TrackAll(ctx context.Context, evs []auth.TimelineEvent) []error {
	errs := make([]error, len(evs))
	type group struct {
		at   []int
		msgs []json.RawMessage
	}
	var props []string
	groups := map[string]*group{}
	for i, ev := range evs {
		raw, err := trackMessage(ev)
		if err != nil {
			errs[i] = err
			continue
		}
		prop := ev.PropertyID
		if prop == "" {
			prop = authPropertyID
		}
		g := groups[prop]
		if g == nil {
			g = &group{}
			groups[prop] = g
			props = append(props, prop)
		}
		g.at, g.msgs = append(g.at, i), append(g.msgs, raw)
	}
	for _, prop := range props {
		g := groups[prop]
		res, err := t.events.Ingest(ctx, events.IngestParams{
			Batch: &events.Batch{Messages: g.msgs}, Type: "track", Envelope: events.Envelope{PropertyID: prop, ReceivedAt: t.clock.Now()},
		})
		if err != nil {
			for _, i := range g.at {
				errs[i] = err
			}
			continue
		}
		for _, r := range res.Rejected {
			if r.Index >= 0 && r.Index < len(g.at) {
				errs[g.at[r.Index]] = fmt.Errorf("%w: %s: %s", errEventRefused, r.Code, r.Reason)
				continue
			}
			// Refused as a whole: every event of the call.
			for _, i := range g.at {
				errs[i] = fmt.Errorf("%w: %s: %s", errEventRefused, r.Code, r.Reason)
			}
		}
	}
	return errs
}

// trackMessage is the Segment track call of an auth event.
func trackMessage(ev auth.TimelineEvent) (json.RawMessage, error) {
	msg := map[string]any{
		"type": "track", "event": ev.Event, "userId": ev.Subject, "messageId": ev.MessageID,
		"timestamp": ev.At.Format(time.RFC3339Nano),
	}
	if ev.AnonymousID != "" {
		msg["anonymousId"] = ev.AnonymousID
	}
	if len(ev.Properties) > 0 {
		msg["properties"] = ev.Properties
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errEventRefused, err)
	}
	return body, nil
}

// newOutbox is the worker that carries out what the account rules queued:
// emails over SMTP (or, without an SMTP URL, into the log for
// development) and timeline events.
func (a *app) newOutbox() (*auth.Outbox, error) {
	var mailer auth.Mailer
	if a.cfg.SMTPURL != "" {
		m, err := smtpmail.New(smtpmail.Config{URL: a.cfg.SMTPURL, From: a.cfg.SMTPFrom, Log: a.log})
		if err != nil {
			return nil, err
		}
		mailer = m
	} else {
		mailer = smtpmail.NewLogMailer(a.log)
	}
	return &auth.Outbox{
		Store: a.eng.read,
		InTx: func(ctx context.Context, fn func(auth.TxStore) error) error {
			return a.eng.inTxRetrying(ctx, func(s store) error { return fn(s) })
		},
		Clock: a.clock, Log: a.log, Mailer: mailer, Timeline: timelineSink{events: a.events, clock: a.clock},
		Permanent: func(err error) bool { return smtpmail.IsPermanent(err) || errors.Is(err, errEventRefused) },
	}, nil
}
