package httpapi

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/live"
)

// liveWriteTimeout bounds one write to a stream's client: a client that
// stops reading is let go instead of holding its handler forever.
const liveWriteTimeout = 30 * time.Second

// maxLiveWrite is how many waiting items one write (and flush) carries.
const maxLiveWrite = 256

// liveStream serves GET /api/live: committed events and rejections as
// Server-Sent Events, for the console's debugger and person pages.
func (s *Server) liveStream(w http.ResponseWriter, r *http.Request) {
	if s.Live == nil {
		s.writeError(w, r, onramp.Errorf(onramp.EUNAVAILABLE, "The live feed is not running on this server."))
		return
	}
	q := r.URL.Query()
	f := live.Filter{PersonID: q.Get("person")}
	if p := q.Get("property"); p != "" {
		prop, err := s.Properties.Get(r.Context(), p)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		f.PropertyID = prop.ID
	}
	// EventSource sends back the last id it saw when it reconnects; a
	// value we did not make is ignored rather than refused, since the
	// browser, not the page, sends it.
	if v, err := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64); err == nil && v > 0 {
		f.AfterSeq = v
	}
	st, err := s.Live.Subscribe(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer s.Live.Unsubscribe(st)
	s.metrics.liveStreams.Inc()
	defer s.metrics.liveStreams.Dec()

	rc := http.NewResponseController(w)
	// The server's read timeout would otherwise end the stream (net/http
	// cancels the request when its background read times out), and its
	// write timeout would cut it after a few minutes.
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// Tell nginx-style proxies not to buffer the stream.
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	var buf bytes.Buffer
	// retry: how long EventSource waits before reconnecting.
	buf.WriteString("retry: 2000\n: connected\n\n")
	send := func() bool {
		_ = rc.SetWriteDeadline(time.Now().Add(liveWriteTimeout))
		_, err := w.Write(buf.Bytes())
		buf.Reset()
		return err == nil && rc.Flush() == nil
	}
	if !send() {
		return
	}
	every := s.LiveHeartbeat
	if every <= 0 {
		every = 15 * time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			// A token revoked or a staff member removed while the stream
			// is open stops receiving within one heartbeat.
			if _, err := s.authorize(r, auth.ReadPeople); err != nil {
				return
			}
			buf.WriteString(": keep-alive\n\n")
		case it, ok := <-st.C:
			if !ok {
				if errors.Is(st.Err(), live.ErrOverflow) {
					s.metrics.liveOverflows.Inc()
					buf.WriteString("event: overflow\ndata: {\"detail\":\"This stream fell behind and was closed; reconnect.\"}\n\n")
					send()
				}
				// Closed by the hub (shutdown): end the response so the
				// server can stop; EventSource reconnects.
				return
			}
			writeItem(&buf, it)
			// Send what else is waiting in the same write.
		more:
			for n := 1; n < maxLiveWrite; n++ {
				select {
				case it, ok := <-st.C:
					if !ok {
						break more // the next loop reads the close
					}
					writeItem(&buf, it)
				default:
					break more
				}
			}
		}
		if !send() {
			return
		}
	}
}

// writeItem appends one SSE message. Data is compact JSON, one data:
// line; should it ever hold a newline, each line gets its own data: line,
// which EventSource joins back.
func writeItem(buf *bytes.Buffer, it live.Item) {
	buf.WriteString("event: ")
	buf.WriteString(it.Kind)
	buf.WriteByte('\n')
	if it.ID != "" {
		buf.WriteString("id: ")
		buf.WriteString(it.ID)
		buf.WriteByte('\n')
	}
	for line := range bytes.Lines(bytes.TrimRight(it.Data, "\n")) {
		buf.WriteString("data: ")
		buf.Write(bytes.TrimRight(line, "\r\n"))
		buf.WriteByte('\n')
	}
	buf.WriteByte('\n')
}
