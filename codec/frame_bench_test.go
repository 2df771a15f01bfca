package codec

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// asciiMask keeps an ASCII payload ASCII when masked, so decoding the same
// buffer over and over, which toggles its masking in place, always sees
// valid UTF-8 and never needs a fresh copy inside the timed loop.
var asciiMask = [4]byte{0x11, 0x22, 0x33, 0x44}

func benchmarkDecode(b *testing.B, payload string) {
	frame := AppendMaskedFrame(nil, ws.OpText, true, asciiMask, []byte(payload))
	var d Decoder
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		m, n, err := d.Decode(frame)
		if err != nil || n != len(frame) || m.Op != ws.OpText {
			b.Fatalf("Decode = %v, %d, %v", m.Op, n, err)
		}
	}
}

func BenchmarkDecode_SmallText(b *testing.B) {
	benchmarkDecode(b, `{"event":"pusher:ping","data":{}}`)
}

func BenchmarkDecode_1KiBText(b *testing.B) {
	benchmarkDecode(b, strings.Repeat("x", 1<<10))
}

func BenchmarkDecode_64KiBText(b *testing.B) {
	benchmarkDecode(b, strings.Repeat("x", 64<<10))
}

// BenchmarkDecode_64KiBTextIn4KiBReads is the caller's pattern for a large
// frame arriving in pieces: Decode is called again with the same bytes plus
// the next read until the frame is whole.
func BenchmarkDecode_64KiBTextIn4KiBReads(b *testing.B) {
	const read = 4 << 10
	frame := AppendMaskedFrame(nil, ws.OpText, true, asciiMask, []byte(strings.Repeat("x", 64<<10)))
	var d Decoder
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		for end := read; end < len(frame); end += read {
			if _, _, err := d.Decode(frame[:end]); err != ErrNeedMore {
				b.Fatalf("Decode of %d bytes = %v, want ErrNeedMore", end, err)
			}
		}
		if _, n, err := d.Decode(frame); err != nil || n != len(frame) {
			b.Fatalf("Decode = %d, %v", n, err)
		}
	}
}

func BenchmarkDecode_Fragmented(b *testing.B) {
	stream := join(
		AppendMaskedFrame(nil, ws.OpText, false, asciiMask, []byte(strings.Repeat("a", 100))),
		AppendMaskedFrame(nil, ws.OpContinuation, true, asciiMask, []byte(strings.Repeat("b", 100))),
	)
	var d Decoder
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		_, n, err := d.Decode(stream)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := d.Decode(stream[n:]); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkAppendFrame(b *testing.B, payload []byte) {
	dst := make([]byte, 0, len(payload)+16)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendFrame(dst[:0], ws.OpText, payload)
	}
}

func BenchmarkAppendFrame_Small(b *testing.B) {
	benchmarkAppendFrame(b, []byte(`{"event":"e","channel":"c","data":"{}"}`))
}

func BenchmarkAppendFrame_1KiB(b *testing.B) {
	benchmarkAppendFrame(b, []byte(strings.Repeat("x", 1<<10)))
}

func BenchmarkHandshakeParse(b *testing.B) {
	req := request(pusherRequest...)
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		var h Handshake
		if _, _, err := h.Parse(req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendUpgradeResponse(b *testing.B) {
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendUpgradeResponse(dst[:0], rfcKey)
	}
}

// BenchmarkGobwasReadFrame_SmallText is the reference for
// BenchmarkDecode_SmallText: gobwas/ws's blocking ReadFrame over the same
// bytes, then unmasking and the UTF-8 check that Decode also does. Compare
// the two as a ratio from one run.
func BenchmarkGobwasReadFrame_SmallText(b *testing.B) {
	frame := AppendMaskedFrame(nil, ws.OpText, true, asciiMask, []byte(`{"event":"pusher:ping","data":{}}`))
	var r bytes.Reader
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(frame)
		f, err := ws.ReadFrame(&r) //lint:ignore SA1019 the reference this decoder is measured against
		if err != nil || f.Header.OpCode != ws.OpText {
			b.Fatalf("ReadFrame = %v, %v", f.Header.OpCode, err)
		}
		ws.Cipher(f.Payload, f.Header.Mask, 0)
		if !utf8.Valid(f.Payload) {
			b.Fatal("not UTF-8")
		}
	}
}
