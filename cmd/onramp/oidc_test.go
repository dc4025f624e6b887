package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// TestLogoutClientReachesLocalhostNames: a back-channel logout URI on
// app.localhost (which registration accepts as loopback) is reached at the
// loopback address, not looked up in DNS.
func TestLogoutClientReachesLocalhostNames(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Host
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	resp, err := newLogoutClient().Post("http://app.localhost:"+port+"/backchannel-logout", "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatalf("POST to app.localhost: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if host := <-got; resp.StatusCode != http.StatusNoContent || host != "app.localhost:"+port {
		t.Errorf("status %d, Host %q", resp.StatusCode, host)
	}
}

func TestLoopbackDial(t *testing.T) {
	for _, tc := range []struct {
		addr string
		down []string // addresses that refuse
		want []string // what is dialled, in order
	}{
		{addr: "app.localhost:8080", want: []string{"127.0.0.1:8080"}},
		{addr: "LOCALHOST.:80", want: []string{"127.0.0.1:80"}},
		{addr: "a.b.localhost:1", down: []string{"127.0.0.1:1"}, want: []string{"127.0.0.1:1", "[::1]:1"}},
		{addr: "example.com:443", want: []string{"example.com:443"}},
		{addr: "localhost.example.com:443", want: []string{"localhost.example.com:443"}},
		{addr: "notlocalhost:80", want: []string{"notlocalhost:80"}},
		{addr: "127.0.0.1:80", want: []string{"127.0.0.1:80"}},
	} {
		var dialled []string
		dial := loopbackDial(func(_ context.Context, _, addr string) (net.Conn, error) {
			dialled = append(dialled, addr)
			if slices.Contains(tc.down, addr) {
				return nil, errors.New("refused")
			}
			c1, c2 := net.Pipe()
			c2.Close()
			return c1, nil
		})
		conn, err := dial(context.Background(), "tcp", tc.addr)
		if err != nil {
			t.Errorf("%s: %v", tc.addr, err)
			continue
		}
		conn.Close()
		if !slices.Equal(dialled, tc.want) {
			t.Errorf("%s dialled %v, want %v", tc.addr, dialled, tc.want)
		}
	}
}
