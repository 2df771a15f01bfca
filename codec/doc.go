// Package codec turns the bytes of a WebSocket connection into requests and
// messages and back, with no sockets, goroutines or Pusher knowledge.
//
// It has two halves:
//
//   - Handshake parses the HTTP/1.1 upgrade request (RFC 6455 §4.2.1) from a
//     buffer that grows as bytes arrive; AppendUpgradeResponse and
//     AppendHTTPError write the answer (RFC 6455 §4.2.2).
//   - Decoder decodes client frames (RFC 6455 §5): unmasking, fragmentation,
//     control frames between fragments, close codes, UTF-8 and size limits;
//     AppendFrame, AppendFrameHeader and AppendCloseFrame write unmasked
//     server frames; FrameHeaderLen is the length of such a header, for a
//     caller that appends a payload first and writes its header before it.
//
// Parsers never block and never read: the caller peeks at what it has
// received, calls Parse or Decode, and discards exactly the n bytes they
// report as consumed. ErrNeedMore means "call again once more bytes have
// arrived"; every other error ends the connection, either with an HTTP
// status (*HTTPError, before the upgrade) or a close frame (*CloseError,
// after it). Limits are checked before anything is buffered: a request
// header block longer than MaxHandshakeSize and a message longer than
// Decoder.MaxMessage are refused as soon as their size is known.
//
// Ownership: the caller owns the input buffer. Decode unmasks a frame's
// payload in place inside it once the frame is whole (never while it
// returns ErrNeedMore) and returns slices that alias it (or the decoder's
// fragment buffer); they are valid only until the next Decode call or until
// the caller discards or reuses the buffer. A Request's strings alias the
// buffer too (Handshake.Parse).
//
// A Decoder checks the UTF-8 of a text frame as it arrives and remembers how
// far it got, so after ErrNeedMore its next call must start with the same
// frame (the same bytes, in the same or a fresh buffer, with more after
// them), or follow Reset.
//
// Files by concept: handshake.go (the upgrade request), syntax.go (HTTP/1.1
// and query syntax), response.go (the answers to it); frame.go (a frame's
// header and the frames a server writes), decoder.go (reading client frames:
// the header, then one step per opcode), utf8.go (text checked as it
// arrives), close.go (close frames and codes); json.go (JSON strings: the
// one encoder of them that pusher, api and loop use).
//
// Nothing here is safe for concurrent use; use one Handshake and one Decoder
// per connection, touched only by the goroutine or event loop that owns it.
// The Append functions are pure and may be called from anywhere.
package codec
