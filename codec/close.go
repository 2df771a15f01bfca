package codec

import (
	"encoding/binary"
	"strconv"
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

// decodeClose is Decode's step for a close frame whose payload p is in and
// unmasked: the message, in m, with its status code and reason (RFC 6455
// §5.5.1). A body of 1 byte
// or a code that may not be sent is refused with 1002, a reason that is not
// UTF-8 with 1007.
func decodeClose(m *Message, p []byte) error {
	*m = Message{Op: ws.OpClose, Payload: p, CloseCode: ws.StatusNoStatusRcvd}
	switch len(p) {
	case 0:
		return nil
	case 1:
		return errCloseBodyOneByte
	}
	code := ws.StatusCode(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) {
		return &CloseError{Code: ws.StatusProtocolError, Reason: "invalid close code " + strconv.Itoa(int(code))}
	}
	if !utf8.Valid(p[2:]) {
		return errCloseReasonNotUTF8
	}
	m.CloseCode, m.CloseReason = code, p[2:]
	return nil
}

// validCloseCode reports whether an endpoint may send code in a close frame
// (RFC 6455 §7.4.1, §7.4.2): 1000–1003, 1007–1014 and 3000–4999.
func validCloseCode(code ws.StatusCode) bool {
	return (code >= 1000 && code <= 1003) ||
		(code >= 1007 && code <= 1014) ||
		(code >= 3000 && code <= 4999)
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
