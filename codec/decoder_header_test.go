package codec

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

func TestDecodeErrors(t *testing.T) {
	const fin = 0x80
	tests := []struct {
		name       string
		maxMessage int
		input      []byte
		before     int // events decoded before the error
		code       ws.StatusCode
	}{
		{name: "unmasked", input: AppendFrame(nil, ws.OpText, []byte("hi")), code: 1002},
		{name: "RSV1", input: join(header(fin|0x40|byte(ws.OpText), 0)), code: 1002},
		{name: "RSV2", input: join(header(fin|0x20|byte(ws.OpText), 0)), code: 1002},
		{name: "RSV3", input: join(header(fin|0x10|byte(ws.OpText), 0)), code: 1002},
		{name: "opcode 3", input: header(fin|0x3, 0), code: 1002},
		{name: "opcode 4", input: header(fin|0x4, 0), code: 1002},
		{name: "opcode 5", input: header(fin|0x5, 0), code: 1002},
		{name: "opcode 6", input: header(fin|0x6, 0), code: 1002},
		{name: "opcode 7", input: header(fin|0x7, 0), code: 1002},
		{name: "opcode 0xB", input: header(fin|0xb, 0), code: 1002},
		{name: "opcode 0xC", input: header(fin|0xc, 0), code: 1002},
		{name: "opcode 0xD", input: header(fin|0xd, 0), code: 1002},
		{name: "opcode 0xE", input: header(fin|0xe, 0), code: 1002},
		{name: "opcode 0xF", input: header(fin|0xf, 0), code: 1002},
		{name: "ping without FIN", input: frame(ws.OpPing, false, ""), code: 1002},
		{name: "close without FIN", input: frame(ws.OpClose, false, ""), code: 1002},
		{name: "ping of 126 bytes", input: frame(ws.OpPing, true, strings.Repeat("p", 126)), code: 1002},
		{name: "pong with 64-bit length", input: header(fin|byte(ws.OpPong), 1<<16), code: 1002},
		{name: "continuation with no message", input: frame(ws.OpContinuation, true, "x"), code: 1002},
		{name: "unfinished continuation with no message", input: frame(ws.OpContinuation, false, "x"), code: 1002},
		{name: "text inside fragmented message", input: join(frame(ws.OpText, false, "a"), frame(ws.OpText, true, "b")), before: 1, code: 1002},
		{name: "binary inside fragmented message", input: join(frame(ws.OpBinary, false, "a"), frame(ws.OpBinary, false, "b")), before: 1, code: 1002},
		{name: "64-bit length with top bit", input: header(fin|byte(ws.OpBinary), 1<<63), code: 1002},
		{name: "64-bit length all ones", input: header(fin|byte(ws.OpBinary), 1<<64-1), code: 1002},
		{name: "close body of 1 byte", input: frame(ws.OpClose, true, "\x03"), code: 1002},
		{name: "text not UTF-8", input: frame(ws.OpText, true, "a\xffb"), code: 1007},
		{name: "text with surrogate", input: frame(ws.OpText, true, "\xed\xa0\x80"), code: 1007},
		{name: "text with overlong encoding", input: frame(ws.OpText, true, "\xc0\xaf"), code: 1007},
		{name: "text ending in a partial code point", input: frame(ws.OpText, true, "ab\xe2\x82"), code: 1007},
		{name: "fragmented text invalid in first fragment", input: join(frame(ws.OpText, false, "\xff"), frame(ws.OpContinuation, true, "a")), code: 1007},
		{name: "fragmented text invalid prefix fails fast", input: join(frame(ws.OpText, false, "ok\xed\xa0"), frame(ws.OpContinuation, true, "\x80")), code: 1007},
		{name: "fragmented text invalid in last fragment", input: join(frame(ws.OpText, false, "a"), frame(ws.OpContinuation, true, "\xff")), before: 1, code: 1007},
		{name: "fragmented text ends in a partial code point", input: join(frame(ws.OpText, false, "a\xe2\x82"), frame(ws.OpContinuation, true, "")), before: 1, code: 1007},
		{name: "partial code point followed by ASCII", input: join(frame(ws.OpText, false, "\xe2"), frame(ws.OpContinuation, true, "ab")), before: 1, code: 1007},
		{name: "close reason not UTF-8", input: frame(ws.OpClose, true, closeBody(1000, "\xff")), code: 1007},
		{name: "text over MaxMessage", maxMessage: 4, input: frame(ws.OpText, true, "12345"), code: 1009},
		{name: "binary over MaxMessage", maxMessage: 4, input: frame(ws.OpBinary, true, "12345"), code: 1009},
		{name: "fragments over MaxMessage", maxMessage: 4, input: join(frame(ws.OpText, false, "12"), frame(ws.OpContinuation, false, "34"), frame(ws.OpContinuation, true, "5")), before: 2, code: 1009},
	}
	for _, code := range []uint16{0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		tests = append(tests, struct {
			name       string
			maxMessage int
			input      []byte
			before     int
			code       ws.StatusCode
		}{name: "close code " + strconv.Itoa(int(code)), input: frame(ws.OpClose, true, closeBody(code, "")), code: 1002})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decodeEveryWay(t, tt.maxMessage, tt.input)
			if len(got) != tt.before+1 {
				t.Fatalf("got %d events, want %d then an error: %+v", len(got), tt.before, got)
			}
			for _, e := range got[:tt.before] {
				if e.Err != nil {
					t.Fatalf("early error: %+v", got)
				}
			}
			last := got[tt.before]
			var ce *CloseError
			if !errors.As(last.Err, &ce) {
				t.Fatalf("last event %+v, want *CloseError %d", last, tt.code)
			}
			if ce.Code != tt.code {
				t.Errorf("close code %d (%s), want %d", ce.Code, ce.Reason, tt.code)
			}
			if last.N != 0 || last.Op != 0 || last.Payload != "" {
				t.Errorf("error with a message: %+v", last)
			}
			if len(ce.Reason) > ws.MaxControlFramePayloadSize-2 || !utf8.ValidString(ce.Reason) {
				t.Errorf("reason %q does not fit a close frame", ce.Reason)
			}
		})
	}
}

func TestDecodeMessageTooBigFromHeader(t *testing.T) {
	tests := []struct {
		name  string
		setup []byte // frames decoded first
		input []byte // a header only: no masking key, no payload
	}{
		{name: "64-bit length of 1 MiB", input: header(0x80|byte(ws.OpText), 1<<20)[:10]},
		{name: "16-bit length", input: header(0x80|byte(ws.OpBinary), 2000)[:4]},
		{name: "7-bit length", input: []byte{0x80 | byte(ws.OpText), 0x80 | 125}},
		{name: "unfinished first fragment", input: header(byte(ws.OpText), 1<<20)[:10]},
		{
			name:  "running total of fragments",
			setup: frame(ws.OpText, false, strings.Repeat("a", 60)),
			input: header(byte(ws.OpContinuation), 41)[:2],
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decoder{MaxMessage: 100}
			if tt.setup != nil {
				if _, _, err := d.Decode(tt.setup); err != nil {
					t.Fatal(err)
				}
			}
			_, n, err := d.Decode(tt.input)
			var ce *CloseError
			if !errors.As(err, &ce) || ce.Code != ws.StatusMessageTooBig || n != 0 {
				t.Fatalf("Decode(header) = %d, %v; want close 1009", n, err)
			}
		})
	}

	t.Run("exactly MaxMessage is accepted", func(t *testing.T) {
		d := Decoder{MaxMessage: 100}
		stream := join(frame(ws.OpText, false, strings.Repeat("a", 60)), frame(ws.OpContinuation, true, strings.Repeat("b", 40)))
		got := decodeStream(&d, stream)
		if len(got) != 2 || got[1].Err != nil || len(got[1].Payload) != 100 {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("control frames are not counted", func(t *testing.T) {
		d := Decoder{MaxMessage: 1}
		got := decodeStream(&d, frame(ws.OpPing, true, strings.Repeat("p", 125)))
		if len(got) != 1 || got[0].Err != nil {
			t.Fatalf("got %+v", got)
		}
	})
}
