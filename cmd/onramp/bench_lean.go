package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// The read benchmarks (introspect, userinfo, session) answer in a tenth of
// a millisecond, so the load generator's own cost decides what they can
// measure on a machine it shares with the server: Go's net/http client
// spends about as much CPU per request as the server. The lean client is
// built as wrk and h2load are: a fixed set of persistent HTTP/1.1
// keep-alive connections, every request serialised once before the clock
// starts, and answers read by a small parser that needs only the status
// line, Content-Length (or chunks) and Connection.

// readRequest is one request of a read benchmark, in a form both clients
// can send.
type readRequest struct {
	method string
	path   string
	header [][2]string // in order, beside Host, User-Agent and Content-Length
	body   string
	// want, when set, must also be in this request's answer.
	want []byte
}

// readBench is what a read benchmark sends and how it knows an answer is
// right: every answer must be 200 and contain want and its request's want
// (so a fast wrong answer cannot count); every sampleEvery-th is also
// decoded and checked whole by check, which gets the request's index.
type readBench struct {
	what     string
	requests []readRequest
	want     []byte
	check    func(i int, body []byte) error
}

// sampleEvery spaces the answers decoded whole by check.
const sampleEvery = 64

// httpRequest builds r for the net/http client.
func (rr *readRequest) httpRequest(b *authBenchRun) *http.Request {
	var body io.Reader
	if rr.body != "" {
		body = strings.NewReader(rr.body)
	}
	req, _ := http.NewRequestWithContext(b.ctx, rr.method, b.url+rr.path, body)
	for _, h := range rr.header {
		req.Header.Set(h[0], h[1])
	}
	return req
}

// wire serialises r as HTTP/1.1 for host.
func (rr *readRequest) wire(host string) []byte {
	var w bytes.Buffer
	fmt.Fprintf(&w, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: onramp-bench\r\n", rr.method, rr.path, host)
	for _, h := range rr.header {
		fmt.Fprintf(&w, "%s: %s\r\n", h[0], h[1])
	}
	if rr.body != "" || rr.method == http.MethodPost {
		fmt.Fprintf(&w, "Content-Length: %d\r\n", len(rr.body))
	}
	w.WriteString("\r\n")
	w.WriteString(rr.body)
	return w.Bytes()
}

// runRead drives rb with the client --client names.
func (b *authBenchRun) runRead(rb *readBench) (*benchResult, error) {
	var sampled atomic.Int64
	verify := func(i int, status int, body []byte) error {
		rr := &rb.requests[i]
		if status != http.StatusOK || !bytes.Contains(body, rb.want) || rr.want != nil && !bytes.Contains(body, rr.want) {
			return fmt.Errorf("%d: %.200s", status, body)
		}
		if sampled.Add(1)%sampleEvery == 1 {
			if err := rb.check(i, body); err != nil {
				return fmt.Errorf("%w: %.200s", err, body)
			}
		}
		return nil
	}
	switch b.client {
	case "nethttp":
		res, err := b.drive(rb.what, func(_, i int) error {
			i %= len(rb.requests)
			rr := &rb.requests[i]
			resp, err := b.hc.Do(rr.httpRequest(b))
			if err != nil {
				return err
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			if err := verify(i, resp.StatusCode, body); err != nil {
				return fmt.Errorf("%s %s: %w", rr.method, rr.path, err)
			}
			return nil
		})
		if res != nil {
			res.Client = "nethttp"
		}
		return res, err
	case "lean":
	default:
		return nil, fmt.Errorf("--client must be lean or nethttp, not %q", b.client)
	}
	u, err := url.Parse(b.url)
	if err != nil {
		return nil, err
	}
	wires := make([][]byte, len(rb.requests))
	for i := range rb.requests {
		wires[i] = rb.requests[i].wire(u.Host)
	}
	conns := make([]*leanConn, b.concurrency)
	for w := range conns {
		if conns[w], err = dialLean(u); err != nil {
			return nil, err
		}
	}
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	depth := b.pipeline
	res, err := b.driveBatch(rb.what, depth, func(w, first, n int, lat []time.Duration) (int, error) {
		c := conns[w]
		if c.conn == nil {
			if err := c.redial(); err != nil {
				return 0, err
			}
		}
		c.out = c.out[:0]
		for k := range n {
			c.out = append(c.out, wires[(first+k)%len(wires)]...)
		}
		t0 := time.Now()
		if _, err := c.conn.Write(c.out); err != nil {
			c.close()
			return 0, err
		}
		for k := range n {
			if c.conn == nil {
				return k, errors.New("the server closed the connection with pipelined requests outstanding")
			}
			status, body, err := c.readResponse()
			if err != nil {
				c.close()
				return k, err
			}
			lat[k] = time.Since(t0)
			if err := verify((first+k)%len(rb.requests), status, body); err != nil {
				rr := &rb.requests[(first+k)%len(rb.requests)]
				// The answers after it are still on the wire: start over.
				c.close()
				return k, fmt.Errorf("%s %s: %w", rr.method, rr.path, err)
			}
		}
		return n, nil
	})
	if res != nil {
		res.Client = "lean"
		res.Pipeline = depth
	}
	return res, err
}

// leanConn is one keep-alive connection of the lean client.
type leanConn struct {
	u    *url.URL
	conn net.Conn
	r    *bufio.Reader
	out  []byte
	body []byte
}

func dialLean(u *url.URL) (*leanConn, error) {
	c := &leanConn{u: u}
	return c, c.redial()
}

func (c *leanConn) redial() error {
	host := c.u.Host
	if c.u.Port() == "" {
		if c.u.Scheme == "https" {
			host += ":443"
		} else {
			host += ":80"
		}
	}
	var conn net.Conn
	var err error
	d := &net.Dialer{Timeout: 5 * time.Second}
	switch c.u.Scheme {
	case "http":
		conn, err = d.Dial("tcp", host)
	case "https":
		conn, err = tls.DialWithDialer(d, "tcp", host, &tls.Config{ServerName: c.u.Hostname(), NextProtos: []string{"http/1.1"}})
	default:
		return fmt.Errorf("--url scheme %q: the lean client speaks http and https", c.u.Scheme)
	}
	if err != nil {
		return err
	}
	c.conn = conn
	if c.r == nil {
		c.r = bufio.NewReaderSize(conn, 16<<10)
	} else {
		c.r.Reset(conn)
	}
	return nil
}

func (c *leanConn) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

var errLeanProtocol = errors.New("lean client: malformed response")

// readResponse reads one answer: the status, and the body into a buffer
// reused by the next call. A "Connection: close" answer closes the
// connection after it; the next request dials again.
func (c *leanConn) readResponse() (int, []byte, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, nil, err
	}
	// HTTP/1.1 200 OK
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, nil, errLeanProtocol
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, errLeanProtocol
	}
	length, chunked, closing := -1, false, false
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, nil, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, nil, errLeanProtocol
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "Content-Length"):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return 0, nil, errLeanProtocol
			}
		case asciiEqualFold(name, "Transfer-Encoding"):
			chunked = asciiEqualFold(value, "chunked")
		case asciiEqualFold(name, "Connection"):
			closing = asciiEqualFold(value, "close")
		}
	}
	c.body = c.body[:0]
	switch {
	case chunked:
		for {
			line, err := c.r.ReadSlice('\n')
			if err != nil {
				return 0, nil, err
			}
			size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
			n, err := strconv.ParseUint(string(size), 16, 31)
			if err != nil {
				return 0, nil, errLeanProtocol
			}
			if err := c.readBody(int(n) + 2); err != nil { // the chunk and its CRLF
				return 0, nil, err
			}
			c.body = c.body[:len(c.body)-2]
			if n == 0 {
				break
			}
		}
	case length >= 0:
		if err := c.readBody(length); err != nil {
			return 0, nil, err
		}
	default:
		// No length: the body runs to the end of the connection.
		b, err := io.ReadAll(c.r)
		if err != nil {
			return 0, nil, err
		}
		c.body, closing = append(c.body, b...), true
	}
	if closing {
		c.close()
	}
	return status, c.body, nil
}

// readBody appends n bytes of the connection to c.body.
func (c *leanConn) readBody(n int) error {
	at := len(c.body)
	if cap(c.body)-at < n {
		grown := make([]byte, at, at+n+512)
		copy(grown, c.body)
		c.body = grown
	}
	c.body = c.body[:at+n]
	_, err := io.ReadFull(c.r, c.body[at:])
	return err
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
