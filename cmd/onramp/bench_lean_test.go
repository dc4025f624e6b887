package main

import (
	"bufio"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestLeanReadResponse keeps the lean client's parser honest about the
// framings a server may choose: a length, chunks, and a closing answer.
func TestLeanReadResponse(t *testing.T) {
	wire := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 15\r\n\r\n{\"active\":true}" +
		"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\n{\"err\r\n3\r\nor\"\r\n0\r\n\r\n" +
		"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
	c := &leanConn{u: &url.URL{Scheme: "http", Host: "x"}, r: bufio.NewReader(strings.NewReader(wire)), conn: nopConn{}}
	for _, want := range []struct {
		status int
		body   string
	}{{200, `{"active":true}`}, {401, `{"error"`}, {200, `{}`}} {
		status, body, err := c.readResponse()
		if err != nil || status != want.status || string(body) != want.body {
			t.Fatalf("readResponse = %d %q %v, want %d %q", status, body, err, want.status, want.body)
		}
	}
	if c.conn != nil {
		t.Error("a Connection: close answer left the connection open")
	}
	c = &leanConn{r: bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")), conn: nopConn{}}
	if _, _, err := c.readResponse(); err == nil {
		t.Error("a truncated body was accepted")
	}
}

// nopConn stands in for the connection the parser sets deadlines on.
type nopConn struct{ net.Conn }

func (nopConn) SetReadDeadline(time.Time) error { return nil }
func (nopConn) Close() error                    { return nil }
