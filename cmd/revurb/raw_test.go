package main

// Raw WebSocket tests: bytes written by hand (RFC 6455 framing, client masks
// built here), so edge cases no real client produces can be sent on purpose.

import (
	"bufio"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// WebSocket opcodes, RFC 6455 §5.2.
const (
	opCont   = 0x0
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

const defaultPath = "/app/app-key?protocol=7&client=js&version=8.4.0&flash=false"

// wsConn is a hand-driven client connection.
type wsConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

type frame struct {
	fin     bool
	op      byte
	payload []byte
}

// appendFrame appends one client frame to dst. Client frames are masked
// (RFC 6455 §5.3) unless mask is false.
func appendFrame(dst []byte, fin bool, op byte, payload []byte, mask bool) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	var b1 byte
	if mask {
		b1 = 0x80
	}
	n := len(payload)
	switch {
	case n < 126:
		dst = append(dst, b0, b1|byte(n))
	case n <= 0xFFFF:
		dst = append(dst, b0, b1|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, b0, b1|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	if !mask {
		return append(dst, payload...)
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	dst = append(dst, key[:]...)
	for i, c := range payload {
		dst = append(dst, c^key[i%4])
	}
	return dst
}

// handshake is the upgrade request for path.
func handshake(addr, path, key string) string {
	return "GET " + path + " HTTP/1.1\r\n" +
		"Host: " + addr + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n" +
		"Origin: http://localhost\r\n\r\n"
}

func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// acceptFor is Sec-WebSocket-Accept for key, RFC 6455 §4.2.2.
func acceptFor(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

func dialTCP(t *testing.T, srv *server) net.Conn {
	t.Helper()
	var c net.Conn
	var err error
	if srv.clientTLS != nil {
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", srv.wsAddr(), srv.clientTLS)
	} else {
		c, err = net.DialTimeout("tcp", srv.wsAddr(), 2*time.Second)
	}
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialWS opens a connection to path and completes the upgrade.
func dialWS(t *testing.T, srv *server, path string) *wsConn {
	t.Helper()
	c := dialTCP(t, srv)
	key := newKey()
	if _, err := io.WriteString(c, handshake(srv.wsAddr(), path, key)); err != nil {
		t.Fatalf("write handshake: %v", err)
	}
	w := &wsConn{t: t, c: c, br: bufio.NewReader(c)}
	w.expectUpgrade(key)
	return w
}

// expectUpgrade reads the handshake response and checks it is a valid 101.
func (w *wsConn) expectUpgrade(key string) {
	w.t.Helper()
	res := w.readResponse()
	if res.StatusCode != http.StatusSwitchingProtocols {
		w.t.Fatalf("upgrade status = %d, want 101", res.StatusCode)
	}
	if got := res.Header.Get("Upgrade"); !strings.EqualFold(got, "websocket") {
		w.t.Errorf("Upgrade header = %q, want websocket", got)
	}
	if got := res.Header.Get("Connection"); !strings.EqualFold(got, "upgrade") {
		w.t.Errorf("Connection header = %q, want Upgrade", got)
	}
	if got, want := res.Header.Get("Sec-WebSocket-Accept"), acceptFor(key); got != want {
		w.t.Errorf("Sec-WebSocket-Accept = %q, want %q", got, want)
	}
}

func (w *wsConn) readResponse() *http.Response {
	w.t.Helper()
	_ = w.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(w.br, nil)
	if err != nil {
		w.t.Fatalf("read handshake response: %v", err)
	}
	return res
}

func (w *wsConn) write(b []byte) {
	w.t.Helper()
	_ = w.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := w.c.Write(b); err != nil {
		w.t.Fatalf("write: %v", err)
	}
}

func (w *wsConn) send(op byte, payload string) {
	w.t.Helper()
	w.write(appendFrame(nil, true, op, []byte(payload), true))
}

func (w *wsConn) sendText(s string) { w.t.Helper(); w.send(opText, s) }

// readFrame reads one server frame; server frames must not be masked
// (RFC 6455 §5.1).
func (w *wsConn) readFrame() (frame, error) {
	_ = w.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var h [2]byte
	if _, err := io.ReadFull(w.br, h[:]); err != nil {
		return frame{}, err
	}
	f := frame{fin: h[0]&0x80 != 0, op: h[0] & 0x0F}
	if h[0]&0x70 != 0 {
		return f, fmt.Errorf("server frame has RSV bits set: %#x", h[0])
	}
	if h[1]&0x80 != 0 {
		return f, errors.New("server frame is masked")
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(w.br, b[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(w.br, b[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 1<<20 {
		return f, fmt.Errorf("server frame of %d bytes", n)
	}
	f.payload = make([]byte, n)
	_, err := io.ReadFull(w.br, f.payload)
	return f, err
}

func (w *wsConn) mustFrame() frame {
	w.t.Helper()
	f, err := w.readFrame()
	if err != nil {
		w.t.Fatalf("read frame: %v", err)
	}
	return f
}

// message is a decoded server text frame.
type message map[string]any

func (w *wsConn) readMessage() message {
	w.t.Helper()
	f := w.mustFrame()
	if f.op != opText || !f.fin {
		w.t.Fatalf("got frame op=%#x fin=%v payload %q, want one final text frame", f.op, f.fin, f.payload)
	}
	var m message
	if err := json.Unmarshal(f.payload, &m); err != nil {
		w.t.Fatalf("server text frame %q is not a JSON object: %v", f.payload, err)
	}
	return m
}

// expectEstablished reads pusher:connection_established and returns its
// socket_id.
func (w *wsConn) expectEstablished() string {
	w.t.Helper()
	m := w.readMessage()
	if m["event"] != "pusher:connection_established" {
		w.t.Fatalf("first message = %v, want pusher:connection_established", m)
	}
	data, ok := m["data"].(string)
	if !ok {
		w.t.Fatalf("connection_established data is %T, want a JSON string: %v", m["data"], m)
	}
	var d map[string]any
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		w.t.Fatalf("connection_established data %q: %v", data, err)
	}
	id, _ := d["socket_id"].(string)
	if !socketIDRe.MatchString(id) {
		w.t.Errorf("socket_id = %#v, want %s", d["socket_id"], socketIDRe)
	}
	if d["activity_timeout"] != float64(120) {
		w.t.Errorf("activity_timeout = %#v, want 120", d["activity_timeout"])
	}
	if len(m) != 2 || len(d) != 2 {
		w.t.Errorf("connection_established = %v, want exactly event+data holding socket_id+activity_timeout", m)
	}
	return id
}

// wantMessage reads one message and compares it with the JSON want exactly.
func (w *wsConn) wantMessage(what, want string) {
	w.t.Helper()
	wantJSON(w.t, what, map[string]any(w.readMessage()), want)
}

const pongJSON = `{"event":"pusher:pong","data":"{}"}`

// expectAlive pings at the Pusher level and wants the pong next.
func (w *wsConn) expectAlive() {
	w.t.Helper()
	w.sendText(`{"event":"pusher:ping","data":{}}`)
	w.wantMessage("reply to pusher:ping (connection still up)", pongJSON)
}

// errorCode is the code of a pusher:error, whose data may be an object or a
// JSON string; nil when absent or null.
func errorCode(t *testing.T, m message) any {
	t.Helper()
	data := m["data"]
	if s, ok := data.(string); ok {
		var d any
		if err := json.Unmarshal([]byte(s), &d); err != nil {
			t.Errorf("pusher:error data string %q is not JSON: %v", s, err)
			return nil
		}
		data = d
	}
	d, ok := data.(map[string]any)
	if !ok {
		t.Errorf("pusher:error data = %#v, want an object with code and message", m["data"])
		return nil
	}
	if msg, _ := d["message"].(string); msg == "" {
		t.Errorf("pusher:error %v has no message", m)
	}
	return d["code"]
}

// expectError reads a pusher:error and returns its code.
func (w *wsConn) expectError() any {
	w.t.Helper()
	m := w.readMessage()
	if m["event"] != "pusher:error" {
		w.t.Fatalf("got %v, want pusher:error", m)
	}
	return errorCode(w.t, m)
}

// expectClose reads frames until a close frame and wants code; then it
// answers the close and wants the server to end the TCP connection.
func (w *wsConn) expectClose(code int) {
	w.t.Helper()
	f := w.mustFrame()
	if f.op != opClose {
		w.t.Fatalf("got frame op=%#x payload %q, want close %d", f.op, f.payload, code)
	}
	if len(f.payload) < 2 {
		w.t.Fatalf("close frame without a status code, want %d", code)
	}
	if got := int(binary.BigEndian.Uint16(f.payload)); got != code {
		w.t.Errorf("close code = %d (reason %q), want %d", got, f.payload[2:], code)
	}
	_, _ = w.c.Write(appendFrame(nil, true, opClose, f.payload[:2], true))
	w.expectEOF()
}

// expectEOF wants the server to close the TCP connection with nothing more.
func (w *wsConn) expectEOF() {
	w.t.Helper()
	_ = w.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	b, err := io.ReadAll(w.br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		w.t.Errorf("server kept the TCP connection open 3 s after the close handshake")
	}
	if len(b) > 0 {
		w.t.Errorf("server sent %q after its close frame", b)
	}
}

func (w *wsConn) expectErrorThenClose(code int) {
	w.t.Helper()
	if got := w.expectError(); got != float64(code) {
		w.t.Errorf("pusher:error code = %v, want %d", got, code)
	}
	w.expectClose(code)
}

// signedPost sends a signed Pusher HTTP API request (PROTOCOL.md, HTTP API).
func signedPost(t *testing.T, srv *server, path, body string) (int, string) {
	t.Helper()
	res, b := signedPostResponse(t, srv, path, body)
	return res.StatusCode, b
}

// signedPostResponse is signedPost, returning the whole response.
func signedPostResponse(t *testing.T, srv *server, path, body string) (*http.Response, string) {
	t.Helper()
	return signedRequest(t, srv, "POST", path, "", body)
}

// signedGet sends a signed GET with the extra query parameters query
// ("a=1&b=2", or "").
func signedGet(t *testing.T, srv *server, path, query string) (int, string) {
	t.Helper()
	res, b := signedRequest(t, srv, "GET", path, query, "")
	return res.StatusCode, b
}

// signedRequest signs a request as the Pusher SDKs do (signedURL) and
// sends it.
func signedRequest(t *testing.T, srv *server, method, path, query, body string) (*http.Response, string) {
	t.Helper()
	url := signedURL(srv, srv.appKey, srv.secret, method, path, query, body)
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := srv.httpClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// signedURL is the URL of a request signed as the Pusher SDKs sign it for
// app key and secret: the query's parameters (query is "a=1&b=2", or "")
// sorted by name, body_md5 for a body.
func signedURL(srv *server, key, secret, method, path, query, body string) string {
	params := []string{
		"auth_key=" + key,
		"auth_timestamp=" + strconv.FormatInt(time.Now().Unix(), 10),
		"auth_version=1.0",
	}
	if body != "" {
		sum := md5.Sum([]byte(body))
		params = append(params, "body_md5="+hex.EncodeToString(sum[:]))
	}
	if query != "" {
		params = append(params, strings.Split(query, "&")...)
	}
	sort.Strings(params)
	q := strings.Join(params, "&")
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(method + "\n" + path + "\n" + q))
	return srv.apiScheme() + "://" + srv.apiAddr() + path + "?" + q + "&auth_signature=" + hex.EncodeToString(mac.Sum(nil))
}

// TestRaw drives the WebSocket endpoint with hand-made bytes, over ws://
// and over wss:// (where the bytes travel in records of the client's
// making: one per write, a byte long in the 1-byte cases).
func TestRaw(t *testing.T) {
	t.Parallel()
	for _, scheme := range []string{"ws", "wss"} {
		t.Run(scheme, func(t *testing.T) {
			t.Parallel()
			rawCases(t, startScheme(t, scheme))
		})
	}
}

// rawCases are TestRaw's cases against srv.
func rawCases(t *testing.T, srv *server) {

	// established dials the default app and consumes connection_established.
	established := func(t *testing.T) *wsConn {
		t.Helper()
		w := dialWS(t, srv, defaultPath)
		w.expectEstablished()
		return w
	}

	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{name: "connection established first", run: func(t *testing.T) {
			established(t)
		}},
		{name: "pusher ping gets pong", run: func(t *testing.T) {
			w := established(t)
			w.sendText(`{"event":"pusher:ping","data":{}}`)
			w.wantMessage("pong", pongJSON)
			w.sendText(`{"event":"pusher:ping"}`)
			w.wantMessage("pong to a ping without data", pongJSON)
		}},
		{name: "subscribe public channel", run: func(t *testing.T) {
			w := established(t)
			want := `{"event":"pusher_internal:subscription_succeeded","channel":"my-channel","data":"{}"}`
			w.sendText(`{"event":"pusher:subscribe","data":{"channel":"my-channel"}}`)
			w.wantMessage("subscribe", want)
			w.sendText(`{"event":"pusher:subscribe","data":{"channel":"my-channel"}}`)
			w.wantMessage("second subscribe to the same channel", want)
		}},
		{name: "valid channel name edge cases", run: func(t *testing.T) {
			w := established(t)
			for _, name := range []string{"a", "A-Za-z0-9_-=@,.;", strings.Repeat("c", 164)} {
				w.sendText(`{"event":"pusher:subscribe","data":{"channel":"` + name + `"}}`)
				w.wantMessage("subscribe "+name, `{"event":"pusher_internal:subscription_succeeded","channel":"`+name+`","data":"{}"}`)
			}
		}},
		{name: "unsubscribe has no reply", run: func(t *testing.T) {
			w := established(t)
			w.sendText(`{"event":"pusher:subscribe","data":{"channel":"my-channel"}}`)
			w.readMessage()
			w.sendText(`{"event":"pusher:unsubscribe","data":{"channel":"my-channel"}}`)
			w.expectAlive()
		}},
		{name: "invalid channel names refused", run: func(t *testing.T) {
			w := established(t)
			for _, name := range []string{"bad channel!", strings.Repeat("a", 300), "", "#server-to-user-1", "caf\u00e9"} {
				b, _ := json.Marshal(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": name}})
				w.sendText(string(b))
				m := w.readMessage()
				if ev := m["event"]; ev != "pusher:subscription_error" && ev != "pusher:error" {
					t.Errorf("subscribe %q: got %v, want pusher:subscription_error or pusher:error", name, m)
				}
				w.expectAlive()
			}
		}},
		{name: "api trigger reaches raw client", run: func(t *testing.T) {
			w := established(t)
			w.sendText(`{"event":"pusher:subscribe","data":{"channel":"raw-channel"}}`)
			w.readMessage()
			status, body := signedPost(t, srv, "/apps/app-id/events",
				`{"name":"my-event","channel":"raw-channel","data":"{\"message\":\"hello\"}"}`)
			if status != 200 || strings.TrimSpace(body) != "{}" {
				t.Errorf("signed trigger = %d %q, want 200 {}", status, body)
			}
			w.wantMessage("triggered event", `{"event":"my-event","channel":"raw-channel","data":"{\"message\":\"hello\"}"}`)
		}},
		{name: "missing protocol accepted as 7", run: func(t *testing.T) {
			w := dialWS(t, srv, "/app/app-key")
			w.expectEstablished()
		}},
		{name: "protocol 3 refused with 4007", run: func(t *testing.T) {
			w := dialWS(t, srv, "/app/app-key?protocol=3&client=js&version=8.4.0&flash=false")
			w.expectErrorThenClose(4007)
		}},
		{name: "protocol 8 refused with 4007", run: func(t *testing.T) {
			w := dialWS(t, srv, "/app/app-key?protocol=8&client=js&version=8.4.0&flash=false")
			w.expectErrorThenClose(4007)
		}},
		{name: "unknown key refused with 4001", run: func(t *testing.T) {
			w := dialWS(t, srv, "/app/wrong-key?protocol=7&client=js&version=8.4.0&flash=false")
			w.expectErrorThenClose(4001)
		}},
		{name: "other path is 404", run: func(t *testing.T) {
			c := dialTCP(t, srv)
			if _, err := io.WriteString(c, handshake(srv.wsAddr(), "/foo", newKey())); err != nil {
				t.Fatal(err)
			}
			w := &wsConn{t: t, c: c, br: bufio.NewReader(c)}
			if res := w.readResponse(); res.StatusCode != http.StatusNotFound {
				t.Errorf("GET /foo status = %d, want 404", res.StatusCode)
			}
		}},
		{name: "bad json keeps connection", run: func(t *testing.T) {
			w := established(t)
			w.sendText(`{not json`)
			w.expectError()
			w.expectAlive()
		}},
		{name: "malformed pusher messages keep connection", run: func(t *testing.T) {
			w := established(t)
			for _, msg := range []string{
				`[]`,
				`"pusher:ping"`,
				`{"data":{}}`,
				`{"event":42}`,
				`{"event":"pusher:subscribe"}`,
				`{"event":"pusher:subscribe","data":{"channel":7}}`,
				`{"event":"pusher:bogus","data":{}}`,
			} {
				w.sendText(msg)
				m := w.readMessage()
				if ev := m["event"]; ev != "pusher:error" && ev != "pusher:subscription_error" {
					t.Errorf("after %s: got %v, want pusher:error", msg, m)
				}
				w.expectAlive()
			}
		}},
		{name: "websocket ping frame gets pong frame", run: func(t *testing.T) {
			w := established(t)
			w.send(opPing, "hello")
			f := w.mustFrame()
			if f.op != opPong || !f.fin || string(f.payload) != "hello" {
				t.Errorf("got op=%#x fin=%v payload %q, want pong frame \"hello\"", f.op, f.fin, f.payload)
			}
			w.expectAlive()
		}},
		{name: "binary frame gets pusher error", run: func(t *testing.T) {
			w := established(t)
			w.send(opBinary, `{"event":"pusher:ping","data":{}}`)
			w.expectError()
			w.expectAlive()
		}},
		{name: "fragmented message with ping between fragments", run: func(t *testing.T) {
			w := established(t)
			msg := []byte(`{"event":"pusher:ping","data":{}}`)
			var b []byte
			b = appendFrame(b, false, opText, msg[:10], true)
			b = appendFrame(b, true, opPing, []byte("mid"), true)
			b = appendFrame(b, false, opCont, msg[10:20], true)
			b = appendFrame(b, true, opCont, msg[20:], true)
			w.write(b)
			f := w.mustFrame()
			if f.op != opPong || string(f.payload) != "mid" {
				t.Errorf("got op=%#x payload %q, want pong \"mid\" first", f.op, f.payload)
			}
			w.wantMessage("pong to the reassembled message", pongJSON)
		}},
		{name: "unmasked frame closes 1002", run: func(t *testing.T) {
			w := established(t)
			w.write(appendFrame(nil, true, opText, []byte(`{"event":"pusher:ping","data":{}}`), false))
			w.expectClose(1002)
		}},
		{name: "invalid utf-8 closes 1007", run: func(t *testing.T) {
			w := established(t)
			w.send(opText, "{\"event\":\"pusher:ping\",\"data\":\"\xff\xfe\"}")
			w.expectClose(1007)
		}},
		{name: "message of exactly 64 KiB accepted", run: func(t *testing.T) {
			w := established(t)
			w.sendText(pingOfSize(64 << 10))
			w.wantMessage("pong to a 64 KiB ping", pongJSON)
		}},
		{name: "frame over 64 KiB closes 1009", run: func(t *testing.T) {
			w := established(t)
			b := appendFrame(nil, true, opText, []byte(pingOfSize(64<<10+1)), true)
			writeIgnoringErrors(w.c, b)
			w.expectClose(1009)
		}},
		{name: "fragmented message over 64 KiB closes 1009", run: func(t *testing.T) {
			w := established(t)
			msg := []byte(pingOfSize(64<<10 + 1))
			var b []byte
			b = appendFrame(b, false, opText, msg[:40<<10], true)
			b = appendFrame(b, true, opCont, msg[40<<10:], true)
			writeIgnoringErrors(w.c, b)
			w.expectClose(1009)
		}},
		{name: "handshake in 1-byte writes", run: func(t *testing.T) {
			c := dialTCP(t, srv)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetNoDelay(true)
			} // a tls.Conn sends each write as a record at once
			key := newKey()
			req := handshake(srv.wsAddr(), defaultPath, key)
			for i := 0; i < len(req); i++ {
				if _, err := c.Write([]byte{req[i]}); err != nil {
					t.Fatalf("write byte %d: %v", i, err)
				}
				time.Sleep(time.Millisecond)
			}
			w := &wsConn{t: t, c: c, br: bufio.NewReader(c)}
			w.expectUpgrade(key)
			w.expectEstablished()
			// A frame in 1-byte writes too.
			ping := appendFrame(nil, true, opText, []byte(`{"event":"pusher:ping","data":{}}`), true)
			for i := range ping {
				w.write(ping[i : i+1])
				time.Sleep(time.Millisecond)
			}
			w.wantMessage("pong to a ping sent byte by byte", pongJSON)
		}},
		{name: "frame pipelined with handshake", run: func(t *testing.T) {
			c := dialTCP(t, srv)
			key := newKey()
			b := []byte(handshake(srv.wsAddr(), defaultPath, key))
			b = appendFrame(b, true, opText, []byte(`{"event":"pusher:ping","data":{}}`), true)
			if _, err := c.Write(b); err != nil {
				t.Fatal(err)
			}
			w := &wsConn{t: t, c: c, br: bufio.NewReader(c)}
			w.expectUpgrade(key)
			w.expectEstablished()
			w.wantMessage("pong to the pipelined ping", pongJSON)
		}},
		{name: "close handshake", run: func(t *testing.T) {
			w := established(t)
			w.send(opClose, string(binary.BigEndian.AppendUint16(nil, 1000)))
			f := w.mustFrame()
			if f.op != opClose || len(f.payload) < 2 || binary.BigEndian.Uint16(f.payload) != 1000 {
				t.Errorf("got op=%#x payload %q, want close 1000 echoed", f.op, f.payload)
			}
			w.expectEOF()
		}},
		{name: "socket ids unique", run: func(t *testing.T) {
			var ids []string
			for i := 0; i < 20; i++ {
				w := dialWS(t, srv, defaultPath)
				id := w.expectEstablished()
				if slices.Contains(ids, id) {
					t.Errorf("socket_id %s handed out twice", id)
				}
				ids = append(ids, id)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t)
		})
	}
}

// pingOfSize is a pusher:ping message of exactly n bytes (n ≥ 64).
func pingOfSize(n int) string {
	const head, tail = `{"event":"pusher:ping","data":{"pad":"`, `"}}`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}

// writeIgnoringErrors writes b in the background: a server enforcing a size
// limit may close before reading it all, and that must not fail the write side.
func writeIgnoringErrors(c net.Conn, b []byte) {
	go func() {
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write(b)
	}()
}

// TestRawOriginHosts: allowed origins match the Origin's host, not its
// text, so a path, query, fragment or userinfo that ends like an allowed
// host does not pass (4009).
func TestRawOriginHosts(t *testing.T) {
	t.Parallel()
	app := newRawApp("hosts-key")
	srv := startWithApps(t, app.config(map[string]any{"allowed_origins": []string{"*.example.org", "https://exact.org"}}))
	tests := []struct {
		origin string
		ok     bool
	}{
		{origin: "https://app.example.org", ok: true},
		{origin: "HTTPS://App.Example.Org:443", ok: true},
		{origin: "https://exact.org.", ok: true},
		{origin: "https://evil.com/.example.org"},
		{origin: "https://evil.com?.example.org"},
		{origin: "https://evil.com#.example.org"},
		{origin: "https://evil.com@app.example.org"},
		{origin: "https://exact.org/"},
		{origin: "null"},
	}
	for _, tt := range tests {
		t.Run(tt.origin, func(t *testing.T) {
			t.Parallel()
			w := dialOrigin(t, srv, app.path(), tt.origin)
			if tt.ok {
				w.expectEstablished()
				w.expectAlive()
			} else {
				w.expectErrorThenClose(4009)
			}
		})
	}
}
