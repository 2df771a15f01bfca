package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

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
