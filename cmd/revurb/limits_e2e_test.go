package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFDLimit runs revurb with RLIMIT_NOFILE 300, which gives it 236
// WebSocket and 32 HTTP API connections (a reserve of 64), 4 of them per
// client address, and fills both: the API with keep-alive clients from 8
// addresses, the WebSocket port with more clients than fit. The server stays up, keeps every connection it has, refuses
// the rest (4100 after the handshake, or a plain close), and accepts again
// as soon as some close.
func TestFDLimit(t *testing.T) {
	t.Parallel()
	const wsCap, apiCap = 236, 32
	srv := startServer(t, serverConfig{Prefix: []string{"prlimit", "--nofile=300:300", "--"}})
	if want := "at most 236 WebSocket and 32 HTTP API connections (RLIMIT_NOFILE 300, 64 kept for the API, Redis, webhooks and logs); " +
		"at most 4 HTTP API connections per client address"; !strings.Contains(srv.out.String(), want) {
		t.Fatalf("start log does not say %q:\n%s", want, srv.out.String())
	}

	// The API at its cap, with keep-alive connections that stay open.
	apis := make([]*apiConn, apiCap)
	for i := range apis {
		apis[i] = dialAPIFrom(t, srv, "127.0.0."+strconv.Itoa(2+i/4))
		if code := apis[i].up(); code != 200 {
			t.Fatalf("API connection %d: /up %d", i, code)
		}
	}
	// The WebSocket port at its cap.
	held := make([]*wsConn, wsCap)
	for i := range held {
		held[i] = dialWS(t, srv, defaultPath)
		held[i].expectEstablished()
	}
	// Beyond it every client is refused, and none is established.
	refused4100 := 0
	for i := 0; i < 40; i++ {
		if overCapacity(t, srv) {
			refused4100++
		}
	}
	if refused4100 == 0 {
		t.Error("no refused client was told 4100")
	}
	// Everything held is still served.
	for i, w := range held {
		w.sendText(`{"event":"pusher:ping","data":{}}`)
		if m := w.readMessage(); m["event"] != "pusher:pong" {
			t.Fatalf("held connection %d after the refusals: %v", i, m)
		}
	}
	for i, a := range apis {
		if code := a.up(); code != 200 {
			t.Fatalf("API connection %d after the refusals: /up %d", i, code)
		}
	}
	// Room again once some leave.
	for _, w := range held[:50] {
		w.c.Close()
	}
	for i := 0; i < 50; i++ {
		var w *wsConn
		deadline := time.Now().Add(5 * time.Second)
		for {
			if w = tryEstablish(t, srv); w != nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond) // the server may not have seen the closes yet
		}
		if w == nil {
			t.Fatalf("connection %d after 50 left: still refused", i)
		}
	}
	select {
	case <-srv.exited:
		t.Fatalf("revurb exited: %v", srv.err)
	default:
	}
	// The refusals are counted, and the API, at its own cap, still answers.
	code, metrics := apis[0].get("/metrics")
	var refused float64
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, "revurb_connections_refused_total "); ok {
			refused, _ = strconv.ParseFloat(v, 64)
		}
	}
	if code != 200 || refused < 40 {
		t.Errorf("GET /metrics %d: revurb_connections_refused_total %v, want at least the 40 refused", code, refused)
	}
	if strings.Contains(srv.out.String(), "too many open files") {
		t.Errorf("the server ran out of descriptors:\n%s", srv.out.String())
	}
}

// overCapacity dials one client beyond the cap and reports whether it was
// told 4100 (pusher:error then close); false if it was closed without a
// word. Being established fails the test.
func overCapacity(t *testing.T, srv *server) bool {
	t.Helper()
	c := dialTCP(t, srv)
	defer c.Close()
	key := newKey()
	if _, err := io.WriteString(c, handshake(srv.wsAddr(), defaultPath, key)); err != nil {
		return false // closed before it could ask
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	w := &wsConn{t: t, c: c, br: bufio.NewReader(c)}
	status, err := w.br.ReadString('\n')
	if err != nil {
		if errors.Is(err, io.EOF) || strings.Contains(err.Error(), "reset") {
			return false
		}
		t.Fatalf("over the cap: %v", err)
	}
	if !strings.Contains(status, "101") {
		t.Fatalf("over the cap: %q", status)
	}
	for line, _ := w.br.ReadString('\n'); line != "\r\n" && line != ""; line, _ = w.br.ReadString('\n') {
	}
	w.expectErrorThenClose(4100)
	return true
}

// tryEstablish dials and returns the client if it is established, nil if
// it was refused.
func tryEstablish(t *testing.T, srv *server) *wsConn {
	t.Helper()
	c := dialTCP(t, srv)
	key := newKey()
	if _, err := io.WriteString(c, handshake(srv.wsAddr(), defaultPath, key)); err != nil {
		return nil
	}
	w := &wsConn{t: t, c: c, br: bufio.NewReader(c)}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if status, err := w.br.ReadString('\n'); err != nil || !strings.Contains(status, "101") {
		c.Close()
		return nil
	}
	for line, _ := w.br.ReadString('\n'); line != "\r\n" && line != ""; line, _ = w.br.ReadString('\n') {
	}
	f, err := w.readFrame()
	if err != nil || !strings.Contains(string(f.payload), "connection_established") {
		c.Close()
		return nil
	}
	return w
}

// apiConn is one keep-alive connection to the HTTP API.
type apiConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

// dialAPIFrom dials the API from the loopback address local, as another
// client machine would (all of 127.0.0.0/8 is local on Linux).
func dialAPIFrom(t *testing.T, srv *server, local string) *apiConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", srv.apiAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &apiConn{t: t, c: c, br: bufio.NewReader(c)}
}

// up sends GET /up on the connection and returns the status.
func (a *apiConn) up() int {
	a.t.Helper()
	code, _ := a.get("/up")
	return code
}

// get sends GET path on the connection and returns the status and body.
func (a *apiConn) get(path string) (int, string) {
	a.t.Helper()
	_ = a.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(a.c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		a.t.Fatal(err)
	}
	res, err := http.ReadResponse(a.br, nil)
	if err != nil {
		a.t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res.StatusCode, string(body)
}

// TestAPIRequestLimits: with the default limits, a URL over
// max_request_url (8 KiB) is answered 414 and a header block over
// max_request_headers (4 KiB) 431, whether or not the request fits in
// the server's read buffer (the two limits together), each with a JSON
// error body the client reads whole before the connection closes, with
// no reset.
func TestAPIRequestLimits(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverConfig{})
	request := func(url, header int) string {
		return "GET /up?" + strings.Repeat("u", url) + " HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("h", header) + "\r\n\r\n"
	}
	tests := []struct {
		name    string
		request string
		status  int
	}{
		{name: "url_at_limit", request: request(8<<10-4, 10), status: 200},
		{name: "url_over_limit", request: request(9<<10, 10), status: 414},
		{name: "url_far_over_limit", request: request(64<<10, 10), status: 414},
		{name: "headers_at_limit", request: request(10, 4<<10-64), status: 200},
		{name: "headers_over_limit", request: request(10, 5<<10), status: 431},
		{name: "headers_far_over_limit", request: request(10, 64<<10), status: 431},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := dialAPIFrom(t, srv, "127.0.0.1")
			_ = a.c.SetDeadline(time.Now().Add(5 * time.Second))
			go func() { _, _ = io.WriteString(a.c, tc.request) }()
			res, err := http.ReadResponse(a.br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || res.StatusCode != tc.status {
				t.Fatalf("%d %s %v, want %d", res.StatusCode, body, err, tc.status)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if tc.status == 200 {
				return
			}
			var got map[string]any
			if err := json.Unmarshal(body, &got); err != nil || len(got) != 1 || got["error"] == "" {
				t.Errorf("body %s, want {\"error\": ...}", body)
			}
			if _, err := a.br.ReadByte(); err != io.EOF {
				t.Errorf("after the answer: %v, want the connection closed (EOF)", err)
			}
		})
	}
}
