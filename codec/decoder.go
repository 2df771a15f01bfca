package codec

import (
	"encoding/binary"
	"math"
	"sync"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

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
	var h ws.Header
	hs, err := d.parseHeader(b, &h)
	if err != nil {
		return Message{}, 0, err
	}
	end := hs + int(h.Length)
	text := h.OpCode == ws.OpText || h.OpCode == ws.OpContinuation && d.view().fragOp == ws.OpText
	if len(b) < end {
		if text && len(b) > hs && !d.validArrived(h.Mask, int(h.Length), b[hs:]) {
			return Message{}, 0, errTextNotUTF8
		}
		return Message{}, 0, ErrNeedMore
	}
	p := b[hs:end]
	ws.Cipher(p, h.Mask, 0)
	done := d.checkedArrived(&h, text)

	switch h.OpCode {
	case ws.OpText, ws.OpBinary:
		err = d.decodeData(&m, &h, p, done)
	case ws.OpContinuation:
		err = d.decodeContinuation(&m, &h, p, done)
	case ws.OpClose:
		err = decodeClose(&m, p)
	default: // ws.OpPing, ws.OpPong
		m = Message{Op: h.OpCode, Payload: p}
	}
	if err != nil {
		return Message{}, 0, err
	}
	return m, end, nil
}

// parseHeader reads the header of the client frame at the start of b (RFC
// 6455 §5.2) into h and returns its length in bytes, masking key
// included. It returns ErrNeedMore while the header is not all in b, but
// refuses what the first two bytes can tell is wrong (checkStart) as soon
// as they are in, and what the length can tell (checkLength) as soon as it
// is.
func (d *Decoder) parseHeader(b []byte, h *ws.Header) (hs int, err error) {
	if len(b) < 2 {
		return 0, ErrNeedMore
	}
	// Field by field: a composite literal is built on the stack and
	// copied, and that copy of bytes just stored cost a third of Decode.
	h.Fin = b[0]&bitFin != 0
	h.Rsv = (b[0] & bitsRsv) >> 4
	h.OpCode = ws.OpCode(b[0] & maskOp)
	h.Masked = b[1]&bitMask != 0
	h.Length = int64(b[1] & mask7)
	if err := d.checkStart(h); err != nil {
		return 0, err
	}
	hs = 2
	switch h.Length {
	case len16:
		if len(b) < 4 {
			return 0, ErrNeedMore
		}
		hs, h.Length = 4, int64(binary.BigEndian.Uint16(b[2:]))
	case len64:
		if len(b) < 10 {
			return 0, ErrNeedMore
		}
		length := binary.BigEndian.Uint64(b[2:])
		if length>>63 != 0 {
			return 0, errLengthTopBit
		}
		hs, h.Length = 10, int64(length)
	}
	hs += 4 // masking key
	if err := d.checkLength(h, hs); err != nil {
		return 0, err
	}
	if len(b) < hs {
		return 0, ErrNeedMore
	}
	h.Mask = [4]byte(b[hs-4 : hs])
	return hs, nil
}

// checkStart refuses what the first two bytes of a frame tell is wrong:
// RSV bits set (RFC 6455 §5.2), a reserved opcode (§5.2), no mask (§5.1), a
// fragmented control frame or one longer than 125 bytes (§5.5), a
// continuation with no message in progress or a new data frame inside one
// (§5.4). h.Length is still the 7-bit length.
func (d *Decoder) checkStart(h *ws.Header) error {
	switch {
	case h.Rsv != 0:
		return errReservedBits
	case h.OpCode.IsReserved():
		return errReservedOpCode
	case !h.Masked:
		return errNotMasked
	}
	fragOp := d.view().fragOp
	switch {
	case h.OpCode.IsControl():
		if !h.Fin {
			return errControlFragmented
		}
		if h.Length > ws.MaxControlFramePayloadSize {
			return errControlTooLong
		}
	case h.OpCode == ws.OpContinuation:
		if fragOp == 0 {
			return errUnexpectedContinuation
		}
	case fragOp != 0:
		return errExpectedContinuation
	}
	return nil
}

// checkLength refuses a data frame that would take its message over
// MaxMessage, and a frame whose end, after a header of hs bytes, does not
// fit in an int.
func (d *Decoder) checkLength(h *ws.Header, hs int) error {
	if h.OpCode.IsData() && d.MaxMessage > 0 {
		if room := d.MaxMessage - len(d.view().frag); room < 0 || h.Length > int64(room) {
			return errMessageTooBig
		}
	}
	if h.Length > int64(math.MaxInt-hs) {
		// Without a MaxMessage this frame could never be buffered: on a
		// 32-bit platform its end does not even fit in an int.
		return errMessageTooBig
	}
	return nil
}

// checkedArrived returns how many bytes of the text of the frame with
// header h, now all in, validArrived checked while it came in, and forgets
// the frame. A frame other than the one it saw (another masking key or
// length: the caller broke Decode's contract) is checked from its start.
func (d *Decoder) checkedArrived(h *ws.Header, text bool) int {
	if d.s == nil || d.s.partialChecked == 0 {
		return 0 // the common case, inlined
	}
	return d.forgetArrived(h, text)
}

// forgetArrived is checkedArrived for a frame that validArrived saw.
func (d *Decoder) forgetArrived(h *ws.Header, text bool) int {
	st := d.s
	done := 0
	if text && st.partialMask == h.Mask && st.partialLen == int(h.Length) {
		done = st.partialChecked
	}
	st.partialChecked = 0
	d.tidy()
	return done
}

// decodeData is Decode's step for a text or binary frame whose payload p
// is in and unmasked: a whole message, set in m, when FIN is set, else the
// first fragment of one (RFC 6455 §5.4). done bytes of its text are known
// to be UTF-8 already.
func (d *Decoder) decodeData(m *Message, h *ws.Header, p []byte, done int) error {
	if h.Fin {
		if h.OpCode == ws.OpText && !utf8.Valid(p[done:]) {
			return errTextNotUTF8
		}
		m.Op, m.Payload = h.OpCode, p
		return nil
	}
	st := d.state()
	st.fragOp, st.frag, st.checked = h.OpCode, append([]byte(nil), p...), done
	if h.OpCode == ws.OpText && !d.validText(false) {
		return errTextNotUTF8
	}
	return nil
}

// decodeContinuation is Decode's step for a continuation frame whose
// payload p is in and unmasked: it adds to the message in progress and
// completes it, in m, when FIN is set (RFC 6455 §5.4). done bytes of its text,
// counted from the code point begun in the previous fragment, are known
// to be UTF-8 already.
func (d *Decoder) decodeContinuation(m *Message, h *ws.Header, p []byte, done int) error {
	// frag[checked:] is the code point begun in the previous fragment;
	// with p appended it is the text validArrived counted from.
	st := d.state() // a message is in progress: st is the decoder's own
	st.frag = append(st.frag, p...)
	st.checked += done
	if st.fragOp == ws.OpText && !d.validText(h.Fin) {
		return errTextNotUTF8
	}
	if !h.Fin {
		return nil
	}
	m.Op, m.Payload = st.fragOp, st.frag
	st.fragOp, st.frag, st.checked = 0, nil, 0
	d.tidy()
	return nil
}

// Reset drops any fragment state and what is known of a frame not all in,
// making d ready for a new connection. MaxMessage is kept.
func (d *Decoder) Reset() {
	if d.s != nil {
		d.release()
	}
}
