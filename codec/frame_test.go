package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

var testMask = [4]byte{0xa1, 0xb2, 0xc3, 0xd4}

// frame returns a masked client frame.
func frame(op ws.OpCode, fin bool, payload string) []byte {
	return AppendMaskedFrame(nil, op, fin, testMask, []byte(payload))
}

// join concatenates frames into one stream.
func join(frames ...[]byte) []byte {
	return bytes.Join(frames, nil)
}

// closeBody is a close frame body with code and reason.
func closeBody(code uint16, reason string) string {
	return string(binary.BigEndian.AppendUint16(nil, code)) + reason
}

// event is what one Decode call reported, with its slices copied out.
type event struct {
	Op          ws.OpCode
	Payload     string
	CloseCode   ws.StatusCode
	CloseReason string
	N           int
	Err         error
}

// decodeStream plays the caller: it appends each chunk to a buffer, decodes
// until it needs more, and discards what each call consumed. It stops at the
// first error. Decode must not touch the chunks themselves.
func decodeStream(d *Decoder, chunks ...[]byte) []event {
	var buf, copyOfChunk []byte
	var events []event
	for _, c := range chunks {
		copyOfChunk = append(copyOfChunk[:0], c...)
		buf = append(buf, copyOfChunk...)
		for {
			m, n, err := d.Decode(buf)
			if err == ErrNeedMore {
				if n != 0 {
					events = append(events, event{N: n, Err: errors.New("ErrNeedMore with n != 0")})
					return events
				}
				break
			}
			e := event{Op: m.Op, Payload: string(m.Payload), CloseCode: m.CloseCode, CloseReason: string(m.CloseReason), N: n, Err: err}
			events = append(events, e)
			if err != nil {
				return events
			}
			if n <= 0 || n > len(buf) {
				events = append(events, event{N: n, Err: errors.New("n out of range")})
				return events
			}
			buf = buf[n:]
		}
	}
	if len(buf) > 0 {
		events = append(events, event{N: len(buf), Err: ErrNeedMore})
	}
	return events
}

// splitOffsets is every offset of an input of length n, or a sample around
// the interesting places when n is large.
func splitOffsets(n int) []int {
	var out []int
	for i := 0; i <= n; i++ {
		if n <= 2048 || i < 64 || i > n-64 || i%997 == 0 {
			out = append(out, i)
		}
	}
	return out
}

// decodeEveryWay decodes b whole with a fresh Decoder, then checks that one
// byte at a time and every two-piece split report the same events.
func decodeEveryWay(t *testing.T, maxMessage int, b []byte) []event {
	t.Helper()
	whole := decodeStream(&Decoder{MaxMessage: maxMessage}, b)

	if len(b) <= 2048 {
		chunks := make([][]byte, len(b))
		for i := range b {
			chunks[i] = b[i : i+1]
		}
		if got := decodeStream(&Decoder{MaxMessage: maxMessage}, chunks...); !reflect.DeepEqual(got, whole) {
			t.Fatalf("byte at a time:\n got %+v\nwhole %+v", got, whole)
		}
	}
	for _, i := range splitOffsets(len(b)) {
		if got := decodeStream(&Decoder{MaxMessage: maxMessage}, b[:i], b[i:]); !reflect.DeepEqual(got, whole) {
			t.Fatalf("split at %d:\n got %+v\nwhole %+v", i, got, whole)
		}
	}
	return whole
}

func TestDecode(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name  string
		input []byte
		want  []event
	}{
		{
			name:  "small text",
			input: frame(ws.OpText, true, `{"event":"pusher:ping"}`),
			want:  []event{{Op: ws.OpText, Payload: `{"event":"pusher:ping"}`, N: 6 + 23}},
		},
		{
			name:  "empty text",
			input: frame(ws.OpText, true, ""),
			want:  []event{{Op: ws.OpText, N: 6}},
		},
		{
			name:  "binary not checked for UTF-8",
			input: frame(ws.OpBinary, true, "\xff\x00\xfe"),
			want:  []event{{Op: ws.OpBinary, Payload: "\xff\x00\xfe", N: 9}},
		},
		{
			name:  "125 bytes, 7-bit length",
			input: frame(ws.OpText, true, long(125)),
			want:  []event{{Op: ws.OpText, Payload: long(125), N: 6 + 125}},
		},
		{
			name:  "126 bytes, 16-bit length",
			input: frame(ws.OpText, true, long(126)),
			want:  []event{{Op: ws.OpText, Payload: long(126), N: 8 + 126}},
		},
		{
			name:  "65535 bytes, 16-bit length",
			input: frame(ws.OpBinary, true, long(65535)),
			want:  []event{{Op: ws.OpBinary, Payload: long(65535), N: 8 + 65535}},
		},
		{
			name:  "65536 bytes, 64-bit length",
			input: frame(ws.OpBinary, true, long(65536)),
			want:  []event{{Op: ws.OpBinary, Payload: long(65536), N: 14 + 65536}},
		},
		{
			name:  "ping",
			input: frame(ws.OpPing, true, "hello"),
			want:  []event{{Op: ws.OpPing, Payload: "hello", N: 11}},
		},
		{
			name:  "ping of 125 bytes",
			input: frame(ws.OpPing, true, long(125)),
			want:  []event{{Op: ws.OpPing, Payload: long(125), N: 131}},
		},
		{
			name:  "pong without payload",
			input: frame(ws.OpPong, true, ""),
			want:  []event{{Op: ws.OpPong, N: 6}},
		},
		{
			name:  "close without body",
			input: frame(ws.OpClose, true, ""),
			want:  []event{{Op: ws.OpClose, CloseCode: ws.StatusNoStatusRcvd, N: 6}},
		},
		{
			name:  "close with code",
			input: frame(ws.OpClose, true, closeBody(1000, "")),
			want:  []event{{Op: ws.OpClose, Payload: closeBody(1000, ""), CloseCode: 1000, N: 8}},
		},
		{
			name:  "close with code and reason",
			input: frame(ws.OpClose, true, closeBody(1001, "bye ☺")),
			want:  []event{{Op: ws.OpClose, Payload: closeBody(1001, "bye ☺"), CloseCode: 1001, CloseReason: "bye ☺", N: 6 + 2 + 7}},
		},
		{
			name:  "several frames in one buffer",
			input: join(frame(ws.OpText, true, "a"), frame(ws.OpPing, true, ""), frame(ws.OpBinary, true, "b")),
			want: []event{
				{Op: ws.OpText, Payload: "a", N: 7},
				{Op: ws.OpPing, N: 6},
				{Op: ws.OpBinary, Payload: "b", N: 7},
			},
		},
		{
			name:  "fragmented text",
			input: join(frame(ws.OpText, false, "Hel"), frame(ws.OpContinuation, false, "lo, "), frame(ws.OpContinuation, true, "world")),
			want: []event{
				{N: 9},
				{N: 10},
				{Op: ws.OpText, Payload: "Hello, world", N: 11},
			},
		},
		{
			name:  "fragmented binary",
			input: join(frame(ws.OpBinary, false, "\xff"), frame(ws.OpContinuation, true, "\xfe")),
			want: []event{
				{N: 7},
				{Op: ws.OpBinary, Payload: "\xff\xfe", N: 7},
			},
		},
		{
			name: "control frames between fragments",
			input: join(
				frame(ws.OpText, false, "ab"),
				frame(ws.OpPing, true, "p"),
				frame(ws.OpContinuation, false, "cd"),
				frame(ws.OpPong, true, ""),
				frame(ws.OpContinuation, true, "ef"),
			),
			want: []event{
				{N: 8},
				{Op: ws.OpPing, Payload: "p", N: 7},
				{N: 8},
				{Op: ws.OpPong, N: 6},
				{Op: ws.OpText, Payload: "abcdef", N: 8},
			},
		},
		{
			name:  "close between fragments",
			input: join(frame(ws.OpText, false, "ab"), frame(ws.OpClose, true, closeBody(1000, ""))),
			want: []event{
				{N: 8},
				{Op: ws.OpClose, Payload: closeBody(1000, ""), CloseCode: 1000, N: 8},
			},
		},
		{
			name:  "empty fragments",
			input: join(frame(ws.OpText, false, ""), frame(ws.OpContinuation, false, ""), frame(ws.OpContinuation, true, "")),
			want:  []event{{N: 6}, {N: 6}, {Op: ws.OpText, N: 6}},
		},
		{
			name:  "code point split across fragments",
			input: join(frame(ws.OpText, false, "price \xe2"), frame(ws.OpContinuation, false, "\x82"), frame(ws.OpContinuation, true, "\xac!")),
			want:  []event{{N: 13}, {N: 7}, {Op: ws.OpText, Payload: "price €!", N: 8}},
		},
		{
			name: "4-byte code point one byte per fragment",
			input: join(
				frame(ws.OpText, false, "\xf0"),
				frame(ws.OpContinuation, false, "\x9f"),
				frame(ws.OpContinuation, false, "\x98"),
				frame(ws.OpContinuation, true, "\x80"),
			),
			want: []event{{N: 7}, {N: 7}, {N: 7}, {Op: ws.OpText, Payload: "😀", N: 7}},
		},
		{
			name:  "next message after a fragmented one",
			input: join(frame(ws.OpText, false, "a"), frame(ws.OpContinuation, true, "b"), frame(ws.OpText, true, "c")),
			want:  []event{{N: 7}, {Op: ws.OpText, Payload: "ab", N: 7}, {Op: ws.OpText, Payload: "c", N: 7}},
		},
		{
			name:  "incomplete frame left over",
			input: join(frame(ws.OpText, true, "a"), frame(ws.OpText, true, "bc")[:5]),
			want:  []event{{Op: ws.OpText, Payload: "a", N: 7}, {N: 5, Err: ErrNeedMore}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decodeEveryWay(t, 0, tt.input)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// header builds a masked frame header by hand, for lengths and bits that
// AppendMaskedFrame would not produce.
func header(b0 byte, length uint64) []byte {
	switch {
	case length < 126:
		return append([]byte{b0, 0x80 | byte(length)}, testMask[:]...)
	case length <= 0xffff:
		b := binary.BigEndian.AppendUint16([]byte{b0, 0x80 | 126}, uint16(length))
		return append(b, testMask[:]...)
	default:
		b := binary.BigEndian.AppendUint64([]byte{b0, 0x80 | 127}, length)
		return append(b, testMask[:]...)
	}
}

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

func TestDecodeValidCloseCodes(t *testing.T) {
	var codes []uint16
	for c := uint16(1000); c <= 1003; c++ {
		codes = append(codes, c)
	}
	for c := uint16(1007); c <= 1014; c++ {
		codes = append(codes, c)
	}
	codes = append(codes, 3000, 3999, 4000, 4999)
	for _, code := range codes {
		t.Run(strconv.Itoa(int(code)), func(t *testing.T) {
			var d Decoder
			m, _, err := d.Decode(frame(ws.OpClose, true, closeBody(code, "r")))
			if err != nil {
				t.Fatal(err)
			}
			if m.Op != ws.OpClose || m.CloseCode != ws.StatusCode(code) || string(m.CloseReason) != "r" {
				t.Errorf("got %+v", m)
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

// cipherNaive is the obvious byte loop of RFC 6455 §5.3.
func cipherNaive(p []byte, mask [4]byte) []byte {
	out := append([]byte(nil), p...)
	for i := range out {
		out[i] ^= mask[i%4]
	}
	return out
}

// naiveMaskedFrame builds a masked binary frame without any code under test.
func naiveMaskedFrame(mask [4]byte, payload []byte) []byte {
	var b []byte
	switch n := len(payload); {
	case n < 126:
		b = []byte{0x82, 0x80 | byte(n)}
	case n <= 0xffff:
		b = []byte{0x82, 0x80 | 126, byte(n >> 8), byte(n)}
	default:
		b = []byte{0x82, 0x80 | 127, 0, 0, 0, 0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	}
	b = append(b, mask[:]...)
	return append(b, cipherNaive(payload, mask)...)
}

func TestDecodeUnmaskMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var lengths []int
	for n := 0; n <= 300; n++ {
		lengths = append(lengths, n)
	}
	lengths = append(lengths, 1000, 1023, 1024, 1025, 4095, 4096, 65535, 65536, 100003)
	for _, n := range lengths {
		payload := make([]byte, n)
		for i := range payload {
			payload[i] = byte(rng.Uint32())
		}
		var mask [4]byte
		binary.LittleEndian.PutUint32(mask[:], rng.Uint32())

		b := naiveMaskedFrame(mask, payload)
		if got := AppendMaskedFrame(nil, ws.OpBinary, true, mask, payload); !bytes.Equal(got, b) {
			t.Fatalf("len %d: AppendMaskedFrame differs from the naive frame", n)
		}
		var d Decoder
		m, consumed, err := d.Decode(b)
		if err != nil || consumed != len(b) {
			t.Fatalf("len %d: Decode = %d, %v", n, consumed, err)
		}
		if !bytes.Equal(m.Payload, payload) {
			t.Fatalf("len %d mask %x: unmasked payload differs from the naive reference", n, mask)
		}
	}
}

func TestDecodePayloadAliasesInput(t *testing.T) {
	b := frame(ws.OpText, true, "hello")
	var d Decoder
	m, _, err := d.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if &m.Payload[0] != &b[6] {
		t.Error("payload is a copy, want a slice of the input unmasked in place")
	}
	if string(b[6:]) != "hello" {
		t.Errorf("input not unmasked in place: %q", b[6:])
	}
}

func TestDecodeNeedMoreLeavesInputAlone(t *testing.T) {
	b := frame(ws.OpText, true, "hello")
	orig := append([]byte(nil), b...)
	var d Decoder
	for i := 0; i < len(b); i++ {
		if _, n, err := d.Decode(b[:i]); err != ErrNeedMore || n != 0 {
			t.Fatalf("%d bytes: n=%d err=%v", i, n, err)
		}
	}
	if !bytes.Equal(b, orig) {
		t.Error("ErrNeedMore modified the input")
	}
}

func TestDecodeFragmentBufferReleased(t *testing.T) {
	var d Decoder
	if _, _, err := d.Decode(frame(ws.OpText, true, "whole")); err != nil {
		t.Fatal(err)
	}
	if d.view().frag != nil {
		t.Fatal("unfragmented message allocated a fragment buffer")
	}
	got := decodeStream(&d, join(frame(ws.OpText, false, "ab"), frame(ws.OpContinuation, true, "cd")))
	if len(got) != 2 || got[1].Payload != "abcd" {
		t.Fatalf("got %+v", got)
	}
	if d.view().frag != nil || d.view().fragOp != 0 || d.view().checked != 0 {
		t.Errorf("fragment state kept after the message: op=%v len=%d checked=%d", d.view().fragOp, len(d.view().frag), d.view().checked)
	}
}

func TestDecoderReset(t *testing.T) {
	var d Decoder
	if _, _, err := d.Decode(frame(ws.OpText, false, "ab")); err != nil {
		t.Fatal(err)
	}
	d.Reset()
	if d.view().frag != nil {
		t.Error("Reset kept the fragment buffer")
	}
	if _, _, err := d.Decode(frame(ws.OpContinuation, true, "cd")); err == nil {
		t.Error("continuation accepted after Reset")
	}
	m, _, err := d.Decode(frame(ws.OpText, true, "new"))
	if err != nil || string(m.Payload) != "new" {
		t.Errorf("after Reset: %q, %v", m.Payload, err)
	}
}

func TestDecodeMaxMessageLoweredMidMessage(t *testing.T) {
	d := Decoder{MaxMessage: 100}
	if _, _, err := d.Decode(frame(ws.OpText, false, strings.Repeat("a", 50))); err != nil {
		t.Fatal(err)
	}
	d.MaxMessage = 10
	_, _, err := d.Decode(frame(ws.OpContinuation, true, ""))
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != ws.StatusMessageTooBig {
		t.Fatalf("err = %v, want close 1009", err)
	}
}

func TestCloseErrorError(t *testing.T) {
	e := &CloseError{Code: ws.StatusProtocolError, Reason: "client frame not masked"}
	if got, want := e.Error(), "codec: client frame not masked (close 1002)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestAppendFrame(t *testing.T) {
	tests := []struct {
		name   string
		op     ws.OpCode
		length int
		header []byte
	}{
		{name: "empty", op: ws.OpText, length: 0, header: []byte{0x81, 0}},
		{name: "125", op: ws.OpText, length: 125, header: []byte{0x81, 125}},
		{name: "126", op: ws.OpBinary, length: 126, header: []byte{0x82, 126, 0, 126}},
		{name: "65535", op: ws.OpBinary, length: 65535, header: []byte{0x82, 126, 0xff, 0xff}},
		{name: "65536", op: ws.OpText, length: 65536, header: []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
		{name: "pong", op: ws.OpPong, length: 3, header: []byte{0x8a, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload := bytes.Repeat([]byte("z"), tt.length)
			got := AppendFrame([]byte("kept"), tt.op, payload)
			want := append(append([]byte("kept"), tt.header...), payload...)
			if !bytes.Equal(got, want) {
				t.Fatalf("AppendFrame header % x, want % x", got[4:4+len(tt.header)], tt.header)
			}
			if h := AppendFrameHeader(nil, tt.op, tt.length); !bytes.Equal(h, tt.header) {
				t.Errorf("AppendFrameHeader = % x, want % x", h, tt.header)
			}

			// gobwas/ws reads the same header back.
			f, err := ws.ReadFrame(bytes.NewReader(got[4:])) //lint:ignore SA1019 gobwas/ws as a reference reader
			if err != nil {
				t.Fatal(err)
			}
			if !f.Header.Fin || f.Header.OpCode != tt.op || f.Header.Masked || f.Header.Length != int64(tt.length) || !bytes.Equal(f.Payload, payload) {
				t.Errorf("gobwas/ws reads %+v", f.Header)
			}
		})
	}
}

func TestAppendFrameHeaderNegativeLength(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for a negative length")
		}
	}()
	AppendFrameHeader(nil, ws.OpText, -1)
}

func TestAppendCloseFrame(t *testing.T) {
	tests := []struct {
		name   string
		code   ws.StatusCode
		reason string
		want   []byte
	}{
		{name: "code only", code: 1000, want: []byte{0x88, 2, 0x03, 0xe8}},
		{name: "code and reason", code: 4001, reason: "app", want: []byte{0x88, 5, 0x0f, 0xa1, 'a', 'p', 'p'}},
		{name: "no code", code: 0, reason: "ignored", want: []byte{0x88, 0}},
		{name: "1005 is never sent", code: ws.StatusNoStatusRcvd, reason: "ignored", want: []byte{0x88, 0}},
		{
			name:   "long reason truncated",
			code:   1008,
			reason: strings.Repeat("r", 200),
			want:   append([]byte{0x88, 125, 0x03, 0xf0}, strings.Repeat("r", 123)...),
		},
		{
			name:   "truncated on a code point boundary",
			code:   1008,
			reason: strings.Repeat("é", 100),
			want:   append([]byte{0x88, 124, 0x03, 0xf0}, strings.Repeat("é", 61)...),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendCloseFrame(nil, tt.code, tt.reason)
			if !bytes.Equal(got, tt.want) {
				t.Errorf("got  % x\nwant % x", got, tt.want)
			}
		})
	}
}

func TestAppendMaskedFrameRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		op      ws.OpCode
		fin     bool
		payload string
	}{
		{name: "text", op: ws.OpText, fin: true, payload: "hello"},
		{name: "empty binary", op: ws.OpBinary, fin: true},
		{name: "first fragment", op: ws.OpText, fin: false, payload: "part"},
		{name: "16-bit length", op: ws.OpBinary, fin: true, payload: strings.Repeat("b", 300)},
		{name: "64-bit length", op: ws.OpBinary, fin: true, payload: strings.Repeat("b", 70000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mask := [4]byte{9, 8, 7, 6}
			b := AppendMaskedFrame(nil, tt.op, tt.fin, mask, []byte(tt.payload))
			f, err := ws.ReadFrame(bytes.NewReader(b)) //lint:ignore SA1019 gobwas/ws as a reference reader
			if err != nil {
				t.Fatal(err)
			}
			if f.Header.Fin != tt.fin || f.Header.OpCode != tt.op || !f.Header.Masked || f.Header.Mask != mask {
				t.Errorf("gobwas/ws reads %+v", f.Header)
			}
			if got := cipherNaive(f.Payload, mask); string(got) != tt.payload {
				t.Errorf("payload does not unmask to the input")
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(frame(ws.OpText, true, "hello"), uint16(3), uint16(0))
	f.Add(join(frame(ws.OpText, false, "he\xe2"), frame(ws.OpPing, true, "p"), frame(ws.OpContinuation, true, "\x82\xacllo")), uint16(9), uint16(0))
	f.Add(join(frame(ws.OpBinary, false, "12"), frame(ws.OpContinuation, true, "345")), uint16(8), uint16(4))
	f.Add(frame(ws.OpClose, true, closeBody(1000, "bye")), uint16(1), uint16(0))
	f.Add(frame(ws.OpBinary, true, strings.Repeat("x", 300)), uint16(4), uint16(0))
	f.Add(header(0x82, 1<<20), uint16(5), uint16(100))
	f.Add(AppendFrame(nil, ws.OpText, []byte("unmasked")), uint16(1), uint16(0))
	f.Fuzz(func(t *testing.T, b []byte, split, maxMessage uint16) {
		whole := decodeStream(&Decoder{MaxMessage: int(maxMessage)}, b)
		for _, e := range whole {
			if e.Err == nil && e.Op == ws.OpText && !utf8.ValidString(e.Payload) {
				t.Fatalf("text message %q is not UTF-8", e.Payload)
			}
			if e.Err == nil && e.Op.IsData() && e.Op != 0 && maxMessage > 0 && len(e.Payload) > int(maxMessage) {
				t.Fatalf("message of %d bytes over MaxMessage %d", len(e.Payload), maxMessage)
			}
			var ce *CloseError
			if e.Err != nil && e.Err != ErrNeedMore && !errors.As(e.Err, &ce) {
				t.Fatalf("unexpected error %v", e.Err)
			}
		}
		i := int(split) % (len(b) + 1)
		if got := decodeStream(&Decoder{MaxMessage: int(maxMessage)}, b[:i], b[i:]); !reflect.DeepEqual(got, whole) {
			t.Fatalf("split at %d:\n got %+v\nwhole %+v", i, got, whole)
		}
	})
}
