package main

// Raw WebSocket tests of UTF-8 in text frames that arrive in pieces: an
// invalid byte closes the connection with 1007 as soon as it is in, without
// waiting for the rest of a large frame (RFC 6455 §8.1 fail fast), and valid
// text survives any split.

import (
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// maskedHeader is the header of a masked client frame of length bytes with
// appendFrame's masking key, for sending a frame's payload in pieces.
func maskedHeader(fin bool, op byte, length int) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	var h []byte
	switch {
	case length < 126:
		h = []byte{b0, 0x80 | byte(length)}
	case length <= 0xFFFF:
		h = binary.BigEndian.AppendUint16([]byte{b0, 0x80 | 126}, uint16(length))
	default:
		h = binary.BigEndian.AppendUint64([]byte{b0, 0x80 | 127}, uint64(length))
	}
	return append(h, maskKey[:]...)
}

// maskKey is the masking key appendFrame uses.
var maskKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// maskFrom masks p as the payload bytes from offset at of a frame masked
// with maskKey (RFC 6455 §5.3).
func maskFrom(p []byte, at int) []byte {
	out := make([]byte, len(p))
	for i, c := range p {
		out[i] = c ^ maskKey[(at+i)%4]
	}
	return out
}

// expectQuiet wants the server to send nothing for d.
func (w *wsConn) expectQuiet(d time.Duration) {
	w.t.Helper()
	_ = w.c.SetReadDeadline(time.Now().Add(d))
	b, err := w.br.Peek(1)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		w.t.Fatalf("server sent %q (%v), want nothing yet", b, err)
	}
}

// TestRawUTF8 sends text frames in pieces to an app that accepts 2 MiB
// messages, so only the UTF-8 check can refuse them.
func TestRawUTF8(t *testing.T) {
	t.Parallel()
	app := defaultRawApp
	srv := startWithApps(t, app.config(map[string]any{"max_message_size": 2 << 20}))
	const big = 1 << 20

	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{name: "1 MiB frame invalid in its first chunk closes 1007 before the rest", run: func(t *testing.T) {
			w, _ := joinApp(t, srv, app)
			chunk := []byte(`{"event":"pusher:ping","data":{"pad":"` + strings.Repeat("x", 4<<10))
			chunk[1000] = 0xff
			w.write(append(maskedHeader(true, opText, big), maskFrom(chunk, 0)...))
			// The other 1 MiB - 4 KiB are never sent.
			w.expectClose(1007)
		}},
		{name: "code point split across writes, then impossible", run: func(t *testing.T) {
			w, _ := joinApp(t, srv, app)
			first := []byte(`{"event":"pusher:ping","data":"price ` + "\xe2\x82")
			w.write(append(maskedHeader(true, opText, big), maskFrom(first, 0)...))
			// A prefix of € could still be completed: nothing is wrong yet.
			w.expectQuiet(300 * time.Millisecond)
			w.write(maskFrom([]byte("A"), len(first)))
			w.expectClose(1007)
		}},
		{name: "code point split across writes and completed stays open", run: func(t *testing.T) {
			w, _ := joinApp(t, srv, app)
			msg := []byte(`{"event":"pusher:ping","data":"price €€€ 😀"}`)
			cut := strings.Index(string(msg), "€") + 1
			w.write(append(maskedHeader(true, opText, len(msg)), maskFrom(msg[:cut], 0)...))
			w.expectQuiet(100 * time.Millisecond)
			w.write(maskFrom(msg[cut:], cut))
			w.wantMessage("pong to a ping whose € was split", pongJSON)
		}},
		{name: "1 MiB continuation invalid in its first chunk closes 1007 before the rest", run: func(t *testing.T) {
			w, _ := joinApp(t, srv, app)
			w.write(appendFrame(nil, false, opText, []byte(`{"event":"pusher:ping",`), true))
			w.expectQuiet(100 * time.Millisecond)
			chunk := []byte(`"data":"` + strings.Repeat("ü", 2<<10) + "\xc0\xaf")
			w.write(append(maskedHeader(true, opCont, big), maskFrom(chunk, 0)...))
			w.expectClose(1007)
		}},
		{name: "code point split across fragments, then impossible", run: func(t *testing.T) {
			w, _ := joinApp(t, srv, app)
			w.write(appendFrame(nil, false, opText, []byte(`{"event":"pusher:ping","data":"`+"\xf0\x9f"), true))
			w.write(append(maskedHeader(true, opCont, big), maskFrom([]byte("\x98"), 0)...))
			w.expectQuiet(300 * time.Millisecond)
			w.write(maskFrom([]byte("\x7f"), 1))
			w.expectClose(1007)
		}},
		{name: "multi-byte text one byte per write", run: func(t *testing.T) {
			w, _ := joinApp(t, srv, app)
			_ = w.c.(*net.TCPConn).SetNoDelay(true)
			ping := appendFrame(nil, true, opText, []byte(`{"event":"pusher:ping","data":{"m":"héllo € 😀 ünïcödé"}}`), true)
			for i := range ping {
				w.write(ping[i : i+1])
				time.Sleep(time.Millisecond)
			}
			w.wantMessage("pong to a multi-byte ping sent byte by byte", pongJSON)
		}},
		{name: "multi-byte client event relayed intact when written in pieces", run: func(t *testing.T) {
			s, sid := joinApp(t, srv, app)
			r, rid := joinApp(t, srv, app)
			s.subscribePrivate(app, sid, "private-utf8")
			r.subscribePrivate(app, rid, "private-utf8")
			_ = s.c.(*net.TCPConn).SetNoDelay(true)
			// Every code point length, split at every place by pieces of a
			// size prime to all of them; under the 10 KB client-event limit.
			text := strings.Repeat("a é € 😀 ", 400)
			msg := `{"event":"client-utf8","channel":"private-utf8","data":"` + text + `"}`
			b := appendFrame(nil, true, opText, []byte(msg), true)
			for i := 0; i < len(b); i += 13 {
				s.write(b[i:min(i+13, len(b))])
				if i%(13*20) == 0 {
					time.Sleep(time.Millisecond)
				}
			}
			s.expectAlive()
			r.wantFrame("client event relayed byte for byte", msg)
			// Fragmented, with fragments cut inside code points, one byte
			// per write for the first fragment.
			fr := appendFrame(nil, false, opText, []byte(msg[:59]), true)
			for i := range fr {
				s.write(fr[i : i+1])
				time.Sleep(time.Millisecond)
			}
			cut := strings.Index(msg, "€") + 1
			s.write(appendFrame(nil, false, opCont, []byte(msg[59:cut]), true))
			s.write(appendFrame(nil, true, opCont, []byte(msg[cut:]), true))
			s.expectAlive()
			r.wantFrame("fragmented client event relayed byte for byte", msg)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t)
		})
	}
}
