package codec

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

// rfcKey and rfcAccept are the example of RFC 6455 §1.3.
const (
	rfcKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	rfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

// pusherRequest is the upgrade request pusher-js sends, as a header list that
// cases edit.
var pusherRequest = []string{
	"GET /app/app-key?protocol=7&client=js&version=8.4.0&flash=false HTTP/1.1",
	"Host: localhost:8080",
	"Connection: Upgrade",
	"Pragma: no-cache",
	"Cache-Control: no-cache",
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64)",
	"Upgrade: websocket",
	"Origin: http://localhost:8000",
	"Sec-WebSocket-Version: 13",
	"Accept-Encoding: gzip, deflate, br",
	"Accept-Language: en-US,en;q=0.9",
	"Sec-WebSocket-Key: " + rfcKey,
	"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
}

// request joins lines into a request ending in the blank line.
func request(lines ...string) []byte {
	return []byte(strings.Join(lines, "\r\n") + "\r\n\r\n")
}

// edit returns pusherRequest with the header named name replaced by line, or
// removed when line is "", or line appended when name is "".
func edit(name, line string) []string {
	out := make([]string, 0, len(pusherRequest)+1)
	for i, l := range pusherRequest {
		if i > 0 && name != "" && strings.HasPrefix(strings.ToLower(l), strings.ToLower(name)+":") {
			if line != "" {
				out = append(out, line)
			}
			continue
		}
		out = append(out, l)
	}
	if name == "" {
		out = append(out, line)
	}
	return out
}

// withLine returns pusherRequest with its request line replaced.
func withLine(first string) []string {
	out := append([]string(nil), pusherRequest...)
	out[0] = first
	return out
}

type parseResult struct {
	req Request
	n   int
	err error
}

// parseEveryWay parses b whole with a fresh Handshake, then checks that
// feeding it one byte at a time and split at every offset gives the same
// result, with nothing but ErrNeedMore for incomplete prefixes.
func parseEveryWay(t *testing.T, b []byte) parseResult {
	t.Helper()
	var h Handshake
	req, n, err := h.Parse(b)
	whole := parseResult{req: req, n: n, err: err}

	var byByte Handshake
	for i := 0; i <= len(b); i++ {
		req, n, err := byByte.Parse(b[:i])
		got := parseResult{req: req, n: n, err: err}
		if i < len(b) && err == ErrNeedMore {
			if n != 0 || req != (Request{}) {
				t.Fatalf("byte at a time, %d bytes: ErrNeedMore with n=%d req=%+v", i, n, req)
			}
			continue
		}
		if !reflect.DeepEqual(got, whole) {
			t.Fatalf("byte at a time, %d of %d bytes: got %+v, whole gave %+v", i, len(b), got, whole)
		}
		break
	}

	for i := 0; i < len(b); i++ {
		var h Handshake
		if _, _, err := h.Parse(b[:i]); err != ErrNeedMore {
			req, n, err := h.Parse(b[:i])
			if !reflect.DeepEqual(parseResult{req: req, n: n, err: err}, whole) {
				t.Fatalf("split at %d: prefix gave %v, whole gave %+v", i, err, whole)
			}
			continue
		}
		req, n, err := h.Parse(b)
		if got := (parseResult{req: req, n: n, err: err}); !reflect.DeepEqual(got, whole) {
			t.Fatalf("split at %d: got %+v, whole gave %+v", i, got, whole)
		}
	}
	return whole
}

func TestHandshakeParse(t *testing.T) {
	b := request(pusherRequest...)
	got := parseEveryWay(t, b)
	if got.err != nil {
		t.Fatalf("Parse: %v", got.err)
	}
	want := Request{
		Method:   "GET",
		Path:     "/app/app-key",
		RawQuery: "protocol=7&client=js&version=8.4.0&flash=false",
		Host:     "localhost:8080",
		Origin:   "http://localhost:8000",
		Key:      rfcKey,
		Version:  "13",
	}
	if got.req != want {
		t.Errorf("request:\n got %+v\nwant %+v", got.req, want)
	}
	if got.n != len(b) {
		t.Errorf("n = %d, want %d", got.n, len(b))
	}
}

func TestHandshakeParseAccepts(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		check func(Request) bool
	}{
		{name: "minimal", lines: []string{"GET / HTTP/1.1", "Host: a", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: " + rfcKey, "Sec-WebSocket-Version: 13"}},
		{name: "lower case names and tokens", lines: []string{"GET / HTTP/1.1", "host: a", "upgrade: WEBSOCKET", "connection: UPGRADE", "sec-websocket-key: " + rfcKey, "sec-websocket-version: 13"}},
		{name: "connection list", lines: edit("Connection", "Connection: keep-alive, Upgrade")},
		{name: "connection list without spaces", lines: edit("Connection", "Connection: keep-alive,upgrade,close")},
		{name: "connection over two lines", lines: append(edit("Connection", "Connection: keep-alive"), "Connection: Upgrade")},
		{name: "upgrade list", lines: edit("Upgrade", "Upgrade: h2c, WebSocket")},
		{name: "tabs and spaces around values", lines: edit("Upgrade", "Upgrade:\t websocket \t")},
		{name: "no space after colon", lines: edit("Upgrade", "Upgrade:websocket")},
		{name: "content length zero", lines: edit("", "Content-Length: 0")},
		{name: "empty header value", lines: edit("", "X-Empty:")},
		{name: "obs-text in value", lines: edit("", "X-Latin: caf\xe9")},
		{
			name:  "no origin",
			lines: edit("Origin", ""),
			check: func(r Request) bool { return r.Origin == "" },
		},
		{
			name:  "no query",
			lines: withLine("GET /app/k HTTP/1.1"),
			check: func(r Request) bool { return r.Path == "/app/k" && r.RawQuery == "" },
		},
		{
			name:  "empty query",
			lines: withLine("GET /app/k? HTTP/1.1"),
			check: func(r Request) bool { return r.Path == "/app/k" && r.RawQuery == "" },
		},
		{
			name:  "second question mark stays in query",
			lines: withLine("GET /p?a=1?b HTTP/1.1"),
			check: func(r Request) bool { return r.Path == "/p" && r.RawQuery == "a=1?b" },
		},
		{
			name:  "path not decoded",
			lines: withLine("GET /app/a%2Fb HTTP/1.1"),
			check: func(r Request) bool { return r.Path == "/app/a%2Fb" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := request(tt.lines...)
			got := parseEveryWay(t, b)
			if got.err != nil {
				t.Fatalf("Parse: %v", got.err)
			}
			if got.n != len(b) {
				t.Errorf("n = %d, want %d", got.n, len(b))
			}
			if tt.check != nil && !tt.check(got.req) {
				t.Errorf("unexpected request %+v", got.req)
			}
		})
	}
}

func TestHandshakeParseErrors(t *testing.T) {
	tests := []struct {
		name   string
		lines  []string
		raw    string // used instead of lines when set
		status int
	}{
		{name: "empty request line", raw: "\r\n\r\n", status: 400},
		{name: "request line without spaces", lines: withLine("GET"), status: 400},
		{name: "request line without protocol", lines: withLine("GET /"), status: 400},
		{name: "request line with two spaces", lines: withLine("GET  / HTTP/1.1"), status: 400},
		{name: "request line with trailing field", lines: withLine("GET / HTTP/1.1 extra"), status: 400},
		{name: "method not a token", lines: withLine("G(T / HTTP/1.1"), status: 400},
		{name: "control byte in target", lines: withLine("GET /a\x01b HTTP/1.1"), status: 400},
		{name: "non-ASCII in target", lines: withLine("GET /caf\xc3\xa9 HTTP/1.1"), status: 400},
		{name: "asterisk target", lines: withLine("GET * HTTP/1.1"), status: 400},
		{name: "absolute target", lines: withLine("GET http://a/ HTTP/1.1"), status: 400},
		{name: "HTTP/1.0", lines: withLine("GET / HTTP/1.0"), status: 400},
		{name: "HTTP/2.0", lines: withLine("GET / HTTP/2.0"), status: 400},
		{name: "lower case protocol", lines: withLine("GET / http/1.1"), status: 400},
		{name: "garbage protocol", lines: withLine("GET / FOO"), status: 400},
		{name: "header without colon", lines: edit("", "X-Broken"), status: 400},
		{name: "header with empty name", lines: edit("", ": value"), status: 400},
		{name: "space before colon", lines: edit("", "X-Space : value"), status: 400},
		{name: "obsolete line folding", lines: edit("", " folded"), status: 400},
		{name: "NUL in value", lines: edit("", "X-Nul: a\x00b"), status: 400},
		{name: "bare LF in value", lines: edit("", "X-LF: a\nb"), status: 400},
		{name: "bare CR in value", lines: edit("", "X-CR: a\rb"), status: 400},
		{name: "DEL in value", lines: edit("", "X-Del: a\x7fb"), status: 400},
		{name: "missing Host", lines: edit("Host", ""), status: 400},
		{name: "repeated Host", lines: edit("", "Host: other"), status: 400},
		{name: "repeated Origin", lines: edit("", "Origin: http://evil"), status: 400},
		{name: "content length", lines: edit("", "Content-Length: 5"), status: 400},
		{name: "content length not a number", lines: edit("", "Content-Length: 5x"), status: 400},
		{name: "content length empty", lines: edit("", "Content-Length:"), status: 400},
		{name: "content length negative", lines: edit("", "Content-Length: -1"), status: 400},
		{name: "repeated content length", lines: append(edit("", "Content-Length: 0"), "Content-Length: 0"), status: 400},
		{name: "transfer encoding", lines: edit("", "Transfer-Encoding: chunked"), status: 400},
		{name: "POST", lines: withLine("POST /app/app-key HTTP/1.1"), status: 405},
		{name: "lower case get", lines: withLine("get /app/app-key HTTP/1.1"), status: 405},
		{name: "HEAD", lines: withLine("HEAD / HTTP/1.1"), status: 405},
		{name: "missing Upgrade", lines: edit("Upgrade", ""), status: 426},
		{name: "Upgrade other protocol", lines: edit("Upgrade", "Upgrade: h2c"), status: 426},
		{name: "Upgrade token as substring", lines: edit("Upgrade", "Upgrade: websockets"), status: 426},
		{name: "missing Connection", lines: edit("Connection", ""), status: 426},
		{name: "Connection keep-alive only", lines: edit("Connection", "Connection: keep-alive"), status: 426},
		{name: "Connection token as substring", lines: edit("Connection", "Connection: upgraded"), status: 426},
		{name: "missing version", lines: edit("Sec-WebSocket-Version", ""), status: 426},
		{name: "version 8", lines: edit("Sec-WebSocket-Version", "Sec-WebSocket-Version: 8"), status: 426},
		{name: "version list", lines: edit("Sec-WebSocket-Version", "Sec-WebSocket-Version: 13, 8"), status: 426},
		{name: "repeated version", lines: edit("", "Sec-WebSocket-Version: 13"), status: 400},
		{name: "missing key", lines: edit("Sec-WebSocket-Key", ""), status: 400},
		{name: "empty key", lines: edit("Sec-WebSocket-Key", "Sec-WebSocket-Key:"), status: 400},
		{name: "key too short", lines: edit("Sec-WebSocket-Key", "Sec-WebSocket-Key: dGhlIHNhbXBsZQ=="), status: 400},
		{name: "key not base64", lines: edit("Sec-WebSocket-Key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ!!"), status: 400},
		{name: "key of 18 bytes", lines: edit("Sec-WebSocket-Key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZSEh"), status: 400},
		{name: "repeated key", lines: edit("", "Sec-WebSocket-Key: "+rfcKey), status: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := []byte(tt.raw)
			if tt.raw == "" {
				b = request(tt.lines...)
			}
			got := parseEveryWay(t, b)
			var he *HTTPError
			if !errors.As(got.err, &he) {
				t.Fatalf("Parse = %+v, %d, %v; want *HTTPError %d", got.req, got.n, got.err, tt.status)
			}
			if he.Status != tt.status {
				t.Errorf("status %d (%s), want %d", he.Status, he.Reason, tt.status)
			}
			if he.Reason == "" {
				t.Error("empty reason")
			}
			if got.n != 0 || got.req != (Request{}) {
				t.Errorf("error with n=%d req=%+v", got.n, got.req)
			}
		})
	}
}

func TestHandshakePipelinedFrame(t *testing.T) {
	req := request(pusherRequest...)
	frame := AppendMaskedFrame(nil, ws.OpText, true, [4]byte{1, 2, 3, 4}, []byte(`{"event":"pusher:ping","data":{}}`))
	b := append(append([]byte(nil), req...), frame...)

	var h Handshake
	_, n, err := h.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(req) {
		t.Fatalf("n = %d, want %d (the request only)", n, len(req))
	}
	var d Decoder
	m, fn, err := d.Decode(b[n:])
	if err != nil {
		t.Fatal(err)
	}
	if fn != len(frame) || string(m.Payload) != `{"event":"pusher:ping","data":{}}` {
		t.Errorf("pipelined frame decoded as %q, n=%d", m.Payload, fn)
	}

	// The frame may start arriving with the request's last bytes.
	for i := len(req) - 3; i <= len(b); i++ {
		var h Handshake
		_, n, err := h.Parse(b[:i])
		if i < len(req) {
			if err != ErrNeedMore {
				t.Fatalf("%d bytes: %v, want ErrNeedMore", i, err)
			}
			continue
		}
		if err != nil || n != len(req) {
			t.Fatalf("%d bytes: n=%d err=%v", i, n, err)
		}
	}
}

// sizedRequest returns a valid request of exactly size bytes.
func sizedRequest(t *testing.T, size int) []byte {
	t.Helper()
	base := len(request(edit("", "X-Pad: ")...))
	if size < base {
		t.Fatalf("size %d below the %d-byte minimum", size, base)
	}
	b := request(edit("", "X-Pad: "+strings.Repeat("p", size-base))...)
	if len(b) != size {
		t.Fatalf("built %d bytes, want %d", len(b), size)
	}
	return b
}

func TestHandshakeSizeCap(t *testing.T) {
	t.Run("exactly the cap is accepted", func(t *testing.T) {
		b := sizedRequest(t, MaxHandshakeSize)
		var h Handshake
		if _, n, err := h.Parse(b); err != nil || n != MaxHandshakeSize {
			t.Fatalf("Parse = %d, %v", n, err)
		}
	})
	t.Run("one byte over is refused", func(t *testing.T) {
		got := parseEveryWay(t, sizedRequest(t, MaxHandshakeSize+1))
		var he *HTTPError
		if !errors.As(got.err, &he) || he.Status != 431 {
			t.Fatalf("err = %v, want 431", got.err)
		}
	})
	t.Run("refused as soon as the cap is reached", func(t *testing.T) {
		b := bytes.Repeat([]byte("a"), MaxHandshakeSize)
		var h Handshake
		if _, _, err := h.Parse(b[:MaxHandshakeSize-1]); err != ErrNeedMore {
			t.Fatalf("below the cap: %v, want ErrNeedMore", err)
		}
		_, _, err := h.Parse(b)
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != 431 {
			t.Fatalf("at the cap: %v, want 431", err)
		}
	})
	t.Run("blank line beyond the cap is not looked for", func(t *testing.T) {
		b := append(sizedRequest(t, MaxHandshakeSize+100), "GET"...)
		var h Handshake
		_, _, err := h.Parse(b)
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != 431 {
			t.Fatalf("err = %v, want 431", err)
		}
	})
}

func TestHandshakeReset(t *testing.T) {
	var h Handshake
	first := request(pusherRequest...)
	if _, _, err := h.Parse(first[:len(first)-1]); err != ErrNeedMore {
		t.Fatalf("prefix: %v", err)
	}
	h.Reset()
	second := request(withLine("GET /other HTTP/1.1")...)
	req, n, err := h.Parse(second)
	if err != nil || n != len(second) || req.Path != "/other" {
		t.Fatalf("after Reset: %+v, %d, %v", req, n, err)
	}
}

func TestHandshakeShorterBuffer(t *testing.T) {
	var h Handshake
	long := bytes.Repeat([]byte("x"), 500)
	if _, _, err := h.Parse(long); err != ErrNeedMore {
		t.Fatalf("%v", err)
	}
	b := request(pusherRequest...)
	if _, n, err := h.Parse(b[:100]); err != ErrNeedMore || n != 0 {
		t.Fatalf("shorter buffer: %d %v", n, err)
	}
	if _, n, err := h.Parse(b); err != nil || n != len(b) {
		t.Fatalf("whole: %d %v", n, err)
	}
}

func FuzzHandshake(f *testing.F) {
	f.Add(request(pusherRequest...), uint16(10))
	f.Add(request(edit("Upgrade", "")...), uint16(100))
	f.Add(request(withLine("GET / HTTP/1.0")...), uint16(3))
	f.Add(append(request(pusherRequest...), 0x81, 0x80, 1, 2, 3, 4), uint16(400))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r"), uint16(5))
	f.Fuzz(func(t *testing.T, b []byte, split uint16) {
		var h Handshake
		req, n, err := h.Parse(b)
		whole := parseResult{req: req, n: n, err: err}

		switch e := err.(type) {
		case nil:
			if n <= 0 || n > len(b) || n > MaxHandshakeSize || !bytes.HasSuffix(b[:n], crlfcrlf) {
				t.Fatalf("n = %d of %d bytes", n, len(b))
			}
			if req.Method != "GET" || req.Version != "13" || !validKey(req.Key) || !strings.HasPrefix(req.Path, "/") {
				t.Fatalf("accepted %+v", req)
			}
		case *HTTPError:
			if statusText(e.Status) == "" {
				t.Fatalf("status %d has no reason phrase", e.Status)
			}
		default:
			if err != ErrNeedMore {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
		}

		i := int(split) % (len(b) + 1)
		var hs Handshake
		req, n, err = hs.Parse(b[:i])
		if err == ErrNeedMore {
			req, n, err = hs.Parse(b)
		}
		if got := (parseResult{req: req, n: n, err: err}); !reflect.DeepEqual(got, whole) {
			t.Fatalf("split at %d: got %+v, whole gave %+v", i, got, whole)
		}
	})
}
