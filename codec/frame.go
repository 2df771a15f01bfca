package codec

import (
	"encoding/binary"
	"math"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// CloseError is a protocol failure after the handshake: the caller sends a
// close frame with Code and Reason (AppendCloseFrame), then closes the
// connection (RFC 6455 §7.1.7).
type CloseError struct {
	// Code is the close status to send (RFC 6455 §7.4.1).
	Code ws.StatusCode
	// Reason says what was wrong; it fits in a close frame and is UTF-8.
	Reason string
}

// Error implements error.
func (e *CloseError) Error() string {
	return "codec: " + e.Reason + " (close " + strconv.Itoa(int(e.Code)) + ")"
}

// The fixed decoding failures, built once so that refusing a frame does not
// allocate.
var (
	errNotMasked              = &CloseError{Code: ws.StatusProtocolError, Reason: "client frame not masked"}
	errReservedBits           = &CloseError{Code: ws.StatusProtocolError, Reason: "reserved bits set with no extension negotiated"}
	errReservedOpCode         = &CloseError{Code: ws.StatusProtocolError, Reason: "reserved opcode"}
	errControlTooLong         = &CloseError{Code: ws.StatusProtocolError, Reason: "control frame payload longer than 125 bytes"}
	errControlFragmented      = &CloseError{Code: ws.StatusProtocolError, Reason: "fragmented control frame"}
	errUnexpectedContinuation = &CloseError{Code: ws.StatusProtocolError, Reason: "continuation frame with no message in progress"}
	errExpectedContinuation   = &CloseError{Code: ws.StatusProtocolError, Reason: "new data frame while a fragmented message is in progress"}
	errLengthTopBit           = &CloseError{Code: ws.StatusProtocolError, Reason: "64-bit payload length with the most significant bit set"}
	errCloseBodyOneByte       = &CloseError{Code: ws.StatusProtocolError, Reason: "close frame body of 1 byte"}
	errMessageTooBig          = &CloseError{Code: ws.StatusMessageTooBig, Reason: "message too big"}
	errTextNotUTF8            = &CloseError{Code: ws.StatusInvalidFramePayloadData, Reason: "text message is not valid UTF-8"}
	errCloseReasonNotUTF8     = &CloseError{Code: ws.StatusInvalidFramePayloadData, Reason: "close reason is not valid UTF-8"}
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

// Message is one complete decoded unit: a data message (ws.OpText or
// ws.OpBinary, reassembled if it was fragmented) or a control frame
// (ws.OpPing, ws.OpPong, ws.OpClose). Op == ws.OpContinuation (0) means a
// fragment was consumed and no message is complete yet.
type Message struct {
	// Op is the message opcode.
	Op ws.OpCode
	// Payload is the unmasked application data; for ws.OpClose it is the
	// whole close body, code included.
	Payload []byte
	// CloseCode is the status of a close frame (RFC 6455 §5.5.1), or
	// ws.StatusNoStatusRcvd (1005) when the close frame had no body.
	CloseCode ws.StatusCode
	// CloseReason is the UTF-8 reason of a close frame, nil when absent.
	CloseReason []byte
}

// Decoder decodes client-to-server frames incrementally (RFC 6455 §5). The
// zero value with MaxMessage set is ready.
type Decoder struct {
	// MaxMessage is the largest data message accepted, in bytes over all its
	// fragments; 0 means unlimited.
	MaxMessage int

	// s is what the decoder knows between calls: nil while no message is
	// fragmented and no text frame is partly in, so that an idle
	// connection holds nothing but this struct.
	s *decodeState
}

// decodeState is a Decoder's memory of a message in progress.
type decodeState struct {
	// fragOp is ws.OpText or ws.OpBinary while a fragmented message is being
	// reassembled, 0 otherwise.
	fragOp ws.OpCode
	// frag holds the fragments received so far.
	frag []byte
	// checked is how many bytes of a fragmented text message are known to
	// be valid UTF-8; it always ends on a code point boundary.
	checked int

	// The text frame at the start of the input while it is not all in yet
	// (see Decode): partialChecked bytes of its text are known to be valid
	// UTF-8, counted from the unchecked tail of frag (a code point begun in
	// the previous fragment) through the frame's payload, and ending on a
	// code point boundary. partialMask and partialLen are the frame's
	// masking key and length: a caller that breaks Decode's contract with
	// another frame (another key or length) has that one checked from its
	// start. partialChecked is 0 when no frame is in progress.
	partialChecked int
	partialLen     int
	partialMask    [4]byte
}

// none is the state of a decoder with nothing in progress; read only.
var none decodeState

// view returns the decoder's state for reading.
func (d *Decoder) view() *decodeState {
	if d.s == nil {
		return &none
	}
	return d.s
}

// statePool holds decodeStates between messages: a text frame split
// across reads, common under load, takes one and gives it back when it is
// in, so that neither an idle decoder holds one nor a busy one allocates.
var statePool = sync.Pool{New: func() any { return new(decodeState) }}

// state returns the decoder's state for writing, taking one if need be.
func (d *Decoder) state() *decodeState {
	if d.s == nil {
		d.s = statePool.Get().(*decodeState)
	}
	return d.s
}

// tidy gives the state back once nothing is in progress.
func (d *Decoder) tidy() {
	if s := d.s; s != nil && s.fragOp == 0 && s.partialChecked == 0 {
		d.release()
	}
}

// release gives the state back to statePool, empty.
func (d *Decoder) release() {
	*d.s = decodeState{}
	statePool.Put(d.s)
	d.s = nil
}

// Decode decodes at most one frame from the start of b and reports in n how
// many bytes it consumed; the caller discards them.
//
// It returns ErrNeedMore with n == 0 while b holds less than a whole frame;
// header errors are reported as soon as the header bytes are in, so a frame
// longer than MaxMessage is refused from its header, before its payload is
// waited for. The UTF-8 of a text frame is checked as its payload arrives:
// an invalid byte, or one that no code point can begin with what precedes
// it, is refused with 1007 as soon as it is in b, without waiting for the
// rest of the frame (RFC 6455 §8.1: fail fast). To check each byte once,
// the decoder remembers how far it got in a frame that is not all in: after
// ErrNeedMore the caller must call Decode again with the same frame at the
// start of b and more bytes after it, or call Reset. Every other error is a
// *CloseError (RFC 6455 §7.4.1):
//   - 1002 for an unmasked frame (§5.1), RSV bits set (§5.2), a reserved
//     opcode (§5.2), a 64-bit length with its top bit set (§5.2), a
//     fragmented control frame or one longer than 125 bytes (§5.5), a
//     continuation with no message in progress or a new data frame inside
//     one (§5.4), a 1-byte close body or a close code that may not be sent
//     (§5.5.1, §7.4);
//   - 1007 for a text message or close reason that is not UTF-8 (§8.1);
//   - 1009 for a data message longer than MaxMessage.
//
// Control frames between the fragments of a message are returned at once
// (§5.4). A fragment that completes no message returns Op == 0.
//
// Decode unmasks a frame's payload in place inside b once the whole frame
// is in; while it returns ErrNeedMore it does not write to b, so b may be
// a fresh copy of the same bytes on every call. Message.Payload and
// Message.CloseReason alias b or the decoder's fragment buffer: they are
// valid only until the next Decode call or until the caller discards or
// reuses b, whichever comes first. Copy what must outlive that.
func (d *Decoder) Decode(b []byte) (m Message, n int, err error) {
	if len(b) < 2 {
		return Message{}, 0, ErrNeedMore
	}
	b0, b1 := b[0], b[1]
	fin := b0&bitFin != 0
	op := ws.OpCode(b0 & maskOp)

	// Everything the first two bytes can refuse is refused before waiting
	// for the rest.
	switch {
	case b0&bitsRsv != 0:
		return Message{}, 0, errReservedBits
	case op.IsReserved():
		return Message{}, 0, errReservedOpCode
	case b1&bitMask == 0:
		return Message{}, 0, errNotMasked
	}
	length := uint64(b1 & mask7)
	st := d.view()
	switch {
	case op.IsControl():
		if !fin {
			return Message{}, 0, errControlFragmented
		}
		if length > ws.MaxControlFramePayloadSize {
			return Message{}, 0, errControlTooLong
		}
	case op == ws.OpContinuation:
		if st.fragOp == 0 {
			return Message{}, 0, errUnexpectedContinuation
		}
	case st.fragOp != 0:
		return Message{}, 0, errExpectedContinuation
	}

	hs := 2
	switch length {
	case len16:
		if len(b) < 4 {
			return Message{}, 0, ErrNeedMore
		}
		hs, length = 4, uint64(binary.BigEndian.Uint16(b[2:]))
	case len64:
		if len(b) < 10 {
			return Message{}, 0, ErrNeedMore
		}
		hs, length = 10, binary.BigEndian.Uint64(b[2:])
		if length>>63 != 0 {
			return Message{}, 0, errLengthTopBit
		}
	}
	if op.IsData() && d.MaxMessage > 0 {
		if room := d.MaxMessage - len(st.frag); room < 0 || length > uint64(room) {
			return Message{}, 0, errMessageTooBig
		}
	}
	hs += 4 // masking key
	if length > uint64(math.MaxInt-hs) {
		// Without a MaxMessage this frame could never be buffered: on a
		// 32-bit platform its end does not even fit in an int.
		return Message{}, 0, errMessageTooBig
	}
	end := hs + int(length)
	text := op == ws.OpText || op == ws.OpContinuation && st.fragOp == ws.OpText
	if len(b) < end {
		if text && len(b) > hs && !d.validArrived([4]byte(b[hs-4:hs]), int(length), b[hs:]) {
			return Message{}, 0, errTextNotUTF8
		}
		return Message{}, 0, ErrNeedMore
	}
	mask := [4]byte(b[hs-4 : hs])
	p := b[hs:end]
	ws.Cipher(p, mask, 0)
	// The text that validArrived checked while the frame came in.
	var done int
	if st.partialChecked != 0 {
		if text && st.partialMask == mask && st.partialLen == len(p) {
			done = st.partialChecked
		}
		st.partialChecked = 0
		d.tidy()
	}

	switch op {
	case ws.OpText, ws.OpBinary:
		if fin {
			if op == ws.OpText && !utf8.Valid(p[done:]) {
				return Message{}, 0, errTextNotUTF8
			}
			return Message{Op: op, Payload: p}, end, nil
		}
		st = d.state()
		st.fragOp, st.frag, st.checked = op, append([]byte(nil), p...), done
		if op == ws.OpText && !d.validText(false) {
			return Message{}, 0, errTextNotUTF8
		}
		return Message{}, end, nil

	case ws.OpContinuation:
		// frag[checked:] is the code point begun in the previous fragment;
		// with p appended it is the text validArrived counted from.
		st = d.state() // a message is in progress: st is the decoder's own
		st.frag = append(st.frag, p...)
		st.checked += done
		if st.fragOp == ws.OpText && !d.validText(fin) {
			return Message{}, 0, errTextNotUTF8
		}
		if !fin {
			return Message{}, end, nil
		}
		m = Message{Op: st.fragOp, Payload: st.frag}
		st.fragOp, st.frag, st.checked = 0, nil, 0
		d.tidy()
		return m, end, nil

	case ws.OpClose:
		m = Message{Op: ws.OpClose, Payload: p, CloseCode: ws.StatusNoStatusRcvd}
		switch len(p) {
		case 0:
			return m, end, nil
		case 1:
			return Message{}, 0, errCloseBodyOneByte
		}
		code := ws.StatusCode(binary.BigEndian.Uint16(p))
		if !validCloseCode(code) {
			return Message{}, 0, &CloseError{Code: ws.StatusProtocolError, Reason: "invalid close code " + strconv.Itoa(int(code))}
		}
		if !utf8.Valid(p[2:]) {
			return Message{}, 0, errCloseReasonNotUTF8
		}
		m.CloseCode, m.CloseReason = code, p[2:]
		return m, end, nil

	default: // ws.OpPing, ws.OpPong
		return Message{Op: op, Payload: p}, end, nil
	}
}

// Reset drops any fragment state and what is known of a frame not all in,
// making d ready for a new connection. MaxMessage is kept.
func (d *Decoder) Reset() {
	if d.s != nil {
		d.release()
	}
}

// scratchSize is how many payload bytes validArrived unmasks at a time: a
// small stack buffer, large enough that the work per chunk is lost in the
// copy and the check (with 512 bytes, a 64 KiB frame in 4 KiB reads took
// 1.6 times as long).
const scratchSize = 2048

// validArrived checks the UTF-8 of the text that has arrived of a frame not
// all in yet: masked is the part of its payload received, of length bytes
// in all, masked with mask. The text begins with frag's unchecked tail when
// the frame is a continuation. What was checked by an earlier call for the
// same frame is skipped; a code point that the next bytes could complete is
// left for the next call. It reports false as soon as the text can no
// longer be UTF-8, and then forgets the frame.
//
// The bytes are unmasked into a scratch buffer, not in place: the caller
// may hand over a fresh copy of its input on every call (gnet's Peek copies
// when the data spans its buffers), so a byte unmasked in place could be
// masked again next time, and nothing would tell.
func (d *Decoder) validArrived(mask [4]byte, length int, masked []byte) bool {
	st := d.view()
	var tail []byte
	if st.fragOp == ws.OpText {
		tail = st.frag[st.checked:]
	}
	pos := 0
	if st.partialChecked != 0 && st.partialMask == mask && st.partialLen == length {
		pos = st.partialChecked
	}
	total := len(tail) + len(masked)
	if pos > total {
		pos = 0 // not the frame seen before after all
	}
	var buf [scratchSize]byte
	for {
		n := 0
		if pos < len(tail) {
			n = copy(buf[:], tail[pos:])
		}
		off := pos + n - len(tail) // offset in the payload
		m := copy(buf[n:], masked[off:])
		ws.Cipher(buf[n:n+m], mask, off)
		n += m
		atEnd := pos+n == total
		q := buf[:n]
		q = q[:n-partialRune(q)]
		if !utf8.Valid(q) {
			if d.s != nil {
				d.s.partialChecked = 0
				d.tidy()
			}
			return false
		}
		pos += len(q)
		if atEnd {
			break
		}
	}
	if pos == 0 {
		// Nothing complete yet (a code point's first bytes): nothing to
		// remember, the next call starts over.
		if d.s != nil {
			d.s.partialChecked = 0
			d.tidy()
		}
		return true
	}
	st = d.state()
	st.partialChecked, st.partialLen, st.partialMask = pos, length, mask
	return true
}

// validText checks the fragment bytes not yet checked for UTF-8. Unless the
// message is complete, a trailing partial code point is left for the next
// fragment to finish, so a code point split across fragments is accepted
// while an invalid one fails as soon as it arrives.
func (d *Decoder) validText(final bool) bool {
	st := d.s
	p := st.frag[st.checked:]
	if !final {
		p = p[:len(p)-partialRune(p)]
	}
	if !utf8.Valid(p) {
		return false
	}
	st.checked += len(p)
	return true
}

// partialRune returns the length of the code point prefix at the end of p
// that more bytes could still complete, 0 if there is none.
func partialRune(p []byte) int {
	for i := len(p) - 1; i >= 0 && i >= len(p)-(utf8.UTFMax-1); i-- {
		if utf8.RuneStart(p[i]) {
			if utf8.FullRune(p[i:]) {
				return 0
			}
			return len(p) - i
		}
	}
	return 0
}

// validCloseCode reports whether an endpoint may send code in a close frame
// (RFC 6455 §7.4.1, §7.4.2): 1000–1003, 1007–1014 and 3000–4999.
func validCloseCode(code ws.StatusCode) bool {
	return (code >= 1000 && code <= 1003) ||
		(code >= 1007 && code <= 1014) ||
		(code >= 3000 && code <= 4999)
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

// AppendCloseFrame appends a server close frame with code and reason (RFC
// 6455 §5.5.1). The reason is cut at a code point boundary so the payload
// stays within 125 bytes. Code 0 or ws.StatusNoStatusRcvd (1005), which may
// not be sent (§7.4.1), gives a close frame with no body.
func AppendCloseFrame(dst []byte, code ws.StatusCode, reason string) []byte {
	if code == 0 || code == ws.StatusNoStatusRcvd {
		return AppendFrameHeader(dst, ws.OpClose, 0)
	}
	if limit := ws.MaxControlFramePayloadSize - 2; len(reason) > limit {
		i := limit
		for i > 0 && !utf8.RuneStart(reason[i]) {
			i--
		}
		reason = reason[:i]
	}
	dst = AppendFrameHeader(dst, ws.OpClose, 2+len(reason))
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	return append(dst, reason...)
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
