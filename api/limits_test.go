package api

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRequestLimits: a request over a limit gets its status with a JSON
// error body that the client reads whole, on a real socket, whether the
// part over its limit fits in the read buffer or not: a URL over
// MaxURLSize 414, a header block over MaxHeaderSize 431, a body over
// MaxBodySize 413 (the client still sending it), a request not sent
// whole in ReadTimeout 408. Then the connection closes.
func TestRequestLimits(t *testing.T) {
	t.Parallel()
	const maxURL, maxHeaders, maxBody = 256, 512, 1024
	_, addr := serveListen(t, Config{MaxURLSize: maxURL, MaxHeaderSize: maxHeaders, MaxBodySize: maxBody,
		ReadTimeout: 500 * time.Millisecond, ConnsPerAddress: -1})
	get := func(path string, headers int) string {
		return "GET " + path + " HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("h", headers) + "\r\n\r\n"
	}
	post := func(body int) string {
		return "POST /apps/app-id/events HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(body) + "\r\n\r\n" + strings.Repeat("b", body)
	}
	tests := []struct {
		name    string
		request string
		status  int
		stall   bool // the request is left unfinished
	}{
		{name: "url_at_limit", request: get("/up?"+strings.Repeat("u", maxURL-4), 10), status: 200},
		{name: "url_over_limit_in_buffer", request: get("/up?"+strings.Repeat("u", maxURL), 10), status: 414},
		{name: "url_over_buffer", request: get("/up?"+strings.Repeat("u", 4*(maxURL+maxHeaders)), 10), status: 414},
		{name: "url_over_limit_headers_over_buffer", request: get("/up?"+strings.Repeat("u", maxURL+100), maxHeaders+200), status: 414},
		{name: "headers_at_limit", request: get("/up", maxHeaders-40), status: 200},
		{name: "headers_over_limit_in_buffer", request: get("/up", maxHeaders+10), status: 431},
		{name: "headers_over_buffer", request: get("/up", 4*(maxURL+maxHeaders)), status: 431},
		{name: "body_over_limit", request: post(64 * maxBody), status: 413},
		{name: "body_over_limit_by_far", request: post(3 << 20), status: 413},
		{name: "headers_unfinished", request: "GET /up HTTP/1.1\r\nHost: x\r\n", stall: true, status: 408},
		{name: "body_unfinished", request: post(maxBody)[:200], stall: true, status: 408},
		{name: "not_http", request: "HELLO\r\n\r\n", status: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k := dialKeepAlive(t, addr)
			// Write while reading, as a client sending a body does: the
			// answer may come before the request has left.
			var wg sync.WaitGroup
			var werr error
			wg.Go(func() {
				_ = k.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				_, werr = io.Copy(k.c, strings.NewReader(tc.request))
			})
			res, body, err := k.read(5 * time.Second)
			wg.Wait()
			if err != nil {
				t.Fatalf("no answer: %v (write: %v)", err, werr)
			}
			if werr != nil {
				t.Errorf("sending the request: %v", werr)
			}
			if res.StatusCode != tc.status {
				t.Fatalf("status %d %s, want %d", res.StatusCode, body, tc.status)
			}
			if tc.status == 200 {
				return
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" || !res.Close {
				t.Errorf("Content-Type %q, Connection: close %v", ct, res.Close)
			}
			wantErrorBody(t, tc.name, body)
			k.closed(tc.name, 0, 5*time.Second)
		})
	}
}

// TestLingerBounded: a client that goes on sending after its answer,
// more than the server drains, is closed all the same — and its slot
// given back — within the drain's bounds.
func TestLingerBounded(t *testing.T) {
	t.Parallel()
	s, addr := serveListen(t, Config{MaxBodySize: 1024, ConnsPerAddress: -1})
	k := dialKeepAlive(t, addr)
	k.write("POST /apps/app-id/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n")
	res, _, err := k.read(5 * time.Second)
	if err != nil || res.StatusCode != 413 {
		t.Fatalf("%v %v, want 413", res, err)
	}
	// Keep sending; the server stops reading after lingerBytes.
	chunk := bytes.Repeat([]byte("b"), 64<<10)
	var sent int64
	_ = k.c.SetWriteDeadline(time.Now().Add(lingerTime + 5*time.Second))
	for {
		n, err := k.c.Write(chunk)
		sent += int64(n)
		if err != nil {
			break
		}
	}
	if sent > s.lingerBytes+8<<20 { // what the socket buffers may hold besides
		t.Errorf("sent %d bytes before the close, more than the drain's %d", sent, s.lingerBytes)
	}
	waitUntil(t, "the slot given back", func() bool { return s.connStats().open == [connStates]int{} })
}

// TestRefusalLingers: over its address's cap, a client that sends a
// request with a body gets the 503 whole, however the close races its
// sending.
func TestRefusalLingers(t *testing.T) {
	t.Parallel()
	_, addr := serveListen(t, Config{ConnsPerAddress: 1})
	held := dialKeepAlive(t, addr)
	held.write("GET /up HTTP/1.1\r\n")
	for i := range 20 {
		k := dialKeepAlive(t, addr)
		data := strings.Repeat("b", 256<<10)
		var wg sync.WaitGroup
		wg.Go(func() {
			_ = k.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, _ = io.WriteString(k.c, "POST /apps/app-id/events HTTP/1.1\r\nHost: x\r\nContent-Length: "+strconv.Itoa(len(data))+"\r\n\r\n"+data)
		})
		res, body, err := k.read(5 * time.Second)
		wg.Wait()
		if err != nil || res.StatusCode != 503 {
			t.Fatalf("try %d: %v %v, want 503", i, res, err)
		}
		wantErrorBody(t, "refusal", body)
	}
}
