package mailpit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// Address is a mailbox as mailpit parsed it.
type Address struct {
	Name    string
	Address string
}

// Message is one email as mailpit received it.
type Message struct {
	ID        string // mailpit's own id
	MessageID string // the Message-ID header, without angle brackets
	From      Address
	To        []Address
	Subject   string // decoded
	Date      time.Time
	Text      string // the text/plain part
	HTML      string // the text/html part, "" if none
	// Headers as received, canonical names, e.g. Headers["Content-Type"].
	Headers map[string][]string
}

// Header returns the first value of a header, "" if absent.
func (m Message) Header(name string) string {
	if v := m.Headers[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Messages returns the messages addressed to `to`, oldest first.
func (s *Server) Messages(ctx context.Context, to string) ([]Message, error) {
	q := url.Values{
		"query": {fmt.Sprintf("to:%q", to)},
		"limit": {"500"},
	}
	var found struct {
		Messages []struct {
			ID string
			To []Address
		} `json:"messages"`
	}
	if err := s.getJSON(ctx, "/api/v1/search?"+q.Encode(), &found); err != nil {
		return nil, err
	}
	var out []Message
	// Mailpit lists newest first.
	for _, sum := range slices.Backward(found.Messages) {
		// The search matches substrings (to:"a@x" also finds "ba@x").
		if !slices.ContainsFunc(sum.To, func(a Address) bool { return strings.EqualFold(a.Address, to) }) {
			continue
		}
		m, err := s.Message(ctx, sum.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// Message fetches one message by mailpit's id, with its headers.
func (s *Server) Message(ctx context.Context, id string) (Message, error) {
	var m Message
	if err := s.getJSON(ctx, "/api/v1/message/"+url.PathEscape(id), &m); err != nil {
		return Message{}, err
	}
	if err := s.getJSON(ctx, "/api/v1/message/"+url.PathEscape(id)+"/headers", &m.Headers); err != nil {
		return Message{}, err
	}
	return m, nil
}

// WaitFor polls until a message to `to` arrived and returns the newest one;
// it fails t after timeout, naming what the mailbox held.
func (s *Server) WaitFor(t testing.TB, to string, timeout time.Duration) Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		msgs, err := s.Messages(ctx, to)
		if err == nil && len(msgs) > 0 {
			return msgs[len(msgs)-1]
		}
		select {
		case <-ctx.Done():
			if err != nil {
				t.Fatalf("mailpit: no message to %s within %v: %v", to, timeout, err)
			}
			t.Fatalf("mailpit: no message to %s within %v; mailbox: %s", to, timeout, s.summary())
			return Message{}
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// summary lists the recipients and subjects held, for failure messages.
func (s *Server) summary() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var all struct {
		Messages []struct {
			To      []Address
			Subject string
		} `json:"messages"`
	}
	if err := s.getJSON(ctx, "/api/v1/messages?limit=50", &all); err != nil {
		return err.Error()
	}
	if len(all.Messages) == 0 {
		return "empty"
	}
	var b strings.Builder
	for _, m := range all.Messages {
		fmt.Fprintf(&b, "\n  %v %q", m.To, m.Subject)
	}
	return b.String()
}

// Clear deletes every message.
func (s *Server) Clear(ctx context.Context) error {
	return s.do(ctx, http.MethodDelete, "/api/v1/messages", nil, nil)
}

// Trigger makes a step of the SMTP dialogue fail with ErrorCode (400–599)
// in Probability percent (0–100) of attempts.
type Trigger struct {
	ErrorCode   int
	Probability int
}

// Chaos sets triggers for mailpit's chaos feature; a zero Trigger is off.
type Chaos struct {
	Sender         Trigger // MAIL FROM
	Recipient      Trigger // RCPT TO
	Authentication Trigger // AUTH
}

// SetChaos replaces the chaos triggers; the server must have been started
// with Options.Chaos. SetChaos(ctx, Chaos{}) turns every trigger off.
func (s *Server) SetChaos(ctx context.Context, c Chaos) error {
	if !s.opts.Chaos {
		return fmt.Errorf("mailpit: SetChaos needs StartWith(t, Options{Chaos: true})")
	}
	body, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return s.do(ctx, http.MethodPut, "/api/v1/chaos", body, nil)
}

func (s *Server) getJSON(ctx context.Context, path string, into any) error {
	return s.do(ctx, http.MethodGet, path, nil, into)
}

func (s *Server) do(ctx context.Context, method, path string, body []byte, into any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.apiURL+path, rd)
	if err != nil {
		return fmt.Errorf("mailpit: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("mailpit: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("mailpit: %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("mailpit: %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if into == nil {
		return nil
	}
	if err := json.Unmarshal(data, into); err != nil {
		return fmt.Errorf("mailpit: %s %s: decode: %w", method, path, err)
	}
	return nil
}
