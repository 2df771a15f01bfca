package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

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
