package codec

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

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
			if n := FrameHeaderLen(tt.length); n != len(tt.header) {
				t.Errorf("FrameHeaderLen(%d) = %d, want %d", tt.length, n, len(tt.header))
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

// TestFrameHeaderLen checks FrameHeaderLen against the header written, at
// every length where the encoding changes and at the largest.
func TestFrameHeaderLen(t *testing.T) {
	for _, n := range []int{0, 1, 124, 125, 126, 127, 0xfffe, 0xffff, 0x10000, 0x10001, math.MaxInt32, math.MaxInt} {
		h := AppendFrameHeader(nil, ws.OpText, n)
		if got := FrameHeaderLen(n); got != len(h) || got > MaxFrameHeaderLen {
			t.Errorf("FrameHeaderLen(%d) = %d, header written % x (MaxFrameHeaderLen %d)", n, got, h, MaxFrameHeaderLen)
		}
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
