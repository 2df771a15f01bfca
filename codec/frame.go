package codec

import (
	"encoding/binary"
	"math"

	"github.com/gobwas/ws"
)

// Frame header bits, RFC 6455 §5.2.
const (
	bitFin  = 0x80
	bitsRsv = 0x70
	bitMask = 0x80
	maskOp  = 0x0f
	mask7   = 0x7f
	len16   = 126
	len64   = 127
)

// MaxFrameHeaderLen is the longest header of an unmasked server frame: two
// bytes and a 64-bit length (RFC 6455 §5.2). A buffer with this much room
// before a payload can take any frame's header there.
const MaxFrameHeaderLen = 10

// FrameHeaderLen returns the length of the header that AppendFrameHeader
// writes for a payload of length bytes: 2, 4 or 10, the shortest encoding
// of the length (RFC 6455 §5.2). length must not be negative.
func FrameHeaderLen(length int) int {
	return ws.HeaderSize(ws.Header{Length: int64(length)})
}

// AppendFrame appends one unmasked server frame with FIN set carrying
// payload (RFC 6455 §5.2).
func AppendFrame(dst []byte, op ws.OpCode, payload []byte) []byte {
	dst = AppendFrameHeader(dst, op, len(payload))
	return append(dst, payload...)
}

// AppendFrameHeader appends just the header of an unmasked server frame with
// FIN set and a payload of length bytes, for callers that append the payload
// themselves. It panics if length is negative.
func AppendFrameHeader(dst []byte, op ws.OpCode, length int) []byte {
	return appendHeader(dst, bitFin|byte(op), 0, length)
}

// appendHeader appends the first byte b0, the length with maskBit, and the
// extended length in its shortest form (RFC 6455 §5.2).
func appendHeader(dst []byte, b0, maskBit byte, length int) []byte {
	switch {
	case length < 0:
		panic("codec: negative frame length")
	case length < len16:
		return append(dst, b0, maskBit|byte(length))
	case length <= math.MaxUint16:
		dst = append(dst, b0, maskBit|len16)
		return binary.BigEndian.AppendUint16(dst, uint16(length))
	default:
		dst = append(dst, b0, maskBit|len64)
		return binary.BigEndian.AppendUint64(dst, uint64(length))
	}
}

// AppendMaskedFrame appends a client-style frame masked with mask (RFC 6455
// §5.3), for tests and load generators. Unlike the server functions it can
// leave FIN clear, to send fragments.
func AppendMaskedFrame(dst []byte, op ws.OpCode, fin bool, mask [4]byte, payload []byte) []byte {
	b0 := byte(op)
	if fin {
		b0 |= bitFin
	}
	dst = appendHeader(dst, b0, bitMask, len(payload))
	dst = append(dst, mask[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	ws.Cipher(dst[start:], mask, 0)
	return dst
}
