package smtpmail

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"
)

// longAgo is a deadline in the past: setting it makes pending and future
// reads and writes fail at once.
var longAgo = time.Unix(1, 0)

// attempt is one connection to the server for one Send. go-mail only
// consults the context while dialling and then relies on per-command
// deadlines, so the connection is wrapped to make the Send context's
// cancellation and deadline reach every read and write.
type attempt struct {
	ctx       context.Context // the Send's context; lives until close
	implicit  bool            // TLS from the first byte (smtps)
	tlsConfig *tls.Config

	conn *ctxConn // set by dial; nil until it succeeds
}

// dial is go-mail's DialContextFunc. dialCtx ends when go-mail's dial step
// does, so the connection is bound to a.ctx instead.
func (a *attempt) dial(dialCtx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	raw, err := d.DialContext(dialCtx, network, addr)
	if err != nil {
		return nil, err
	}
	c := &ctxConn{Conn: raw, ctx: a.ctx}
	c.stop = context.AfterFunc(a.ctx, c.expire)
	a.conn = c
	if !a.implicit {
		return c, nil
	}
	// The TLS layer sits above ctxConn so that its deadlines are clamped
	// too, and it stays a *tls.Conn so that go-mail's SMTP client knows the
	// session is encrypted (which permits PLAIN/LOGIN authentication).
	tc := tls.Client(c, a.tlsConfig)
	if err := tc.HandshakeContext(dialCtx); err != nil {
		return nil, err
	}
	return tc, nil
}

// close releases the connection whatever state go-mail left it in: go-mail
// does not close a connection whose greeting, EHLO or AUTH failed, nor one
// whose QUIT failed.
func (a *attempt) close() {
	if a.conn != nil {
		a.conn.stop()
		_ = a.conn.Close()
	}
}

// ctxConn clamps every deadline to its context's deadline and expires the
// connection when the context ends.
type ctxConn struct {
	net.Conn
	ctx  context.Context
	stop func() bool

	// mu orders expire against SetDeadline: without it go-mail could read
	// ctx.Err() as nil, lose the CPU to expire, and then overwrite the past
	// deadline with a future one.
	mu sync.Mutex
}

func (c *ctxConn) clamp(t time.Time) time.Time {
	if c.ctx.Err() != nil {
		return longAgo
	}
	if d, ok := c.ctx.Deadline(); ok && (t.IsZero() || d.Before(t)) {
		return d
	}
	return t
}

func (c *ctxConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.SetDeadline(c.clamp(t))
}

func (c *ctxConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.SetReadDeadline(c.clamp(t))
}

func (c *ctxConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.SetWriteDeadline(c.clamp(t))
}

func (c *ctxConn) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.Conn.SetDeadline(longAgo)
}
