package codec

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"unsafe"
)

// ErrNeedMore reports incomplete input: nothing was consumed, and the caller
// should call again with the same bytes plus whatever arrives next.
var ErrNeedMore = errors.New("codec: need more data")

// MaxHandshakeSize is the largest upgrade request, request line and headers
// through the blank line, that Handshake accepts. Larger requests are refused
// with 431 Request Header Fields Too Large (RFC 6585 §5).
const MaxHandshakeSize = 8 << 10

// Request is the part of a WebSocket upgrade request (RFC 6455 §4.1) that a
// server needs after the handshake. Its strings alias the buffer they were
// parsed from (see Handshake.Parse): copy what must outlive it.
type Request struct {
	// Method is the request method; a successful Parse only returns "GET".
	Method string
	// Path is the request target up to "?", as sent (not percent-decoded).
	Path string
	// RawQuery is the request target after "?", without the "?"; use
	// QueryValue to read parameters from it.
	RawQuery string

	// Host is the Host header value (RFC 7230 §5.4).
	Host string
	// Origin is the Origin header value (RFC 6455 §10.2), "" when absent.
	Origin string
	// Key is the Sec-WebSocket-Key header value (RFC 6455 §4.2.1).
	Key string
	// Version is the Sec-WebSocket-Version header value; a successful Parse
	// only returns "13".
	Version string
}

// Handshake is an incremental HTTP/1.1 upgrade request parser (RFC 6455
// §4.2.1). The zero value is ready. It remembers how far it has scanned for
// the end of the header block, so repeated calls with a growing buffer do not
// rescan what they have already seen.
type Handshake struct {
	// scanned is how many bytes of the buffer have been searched for the
	// blank line without finding it.
	scanned int32
}

var crlfcrlf = []byte("\r\n\r\n")

// Parse looks at b, everything received on the connection so far, and parses
// the upgrade request at its start.
//
// It returns ErrNeedMore while the header block is incomplete, and a
// *HTTPError with status 431 as soon as b holds MaxHandshakeSize bytes without
// the blank line that ends it: the caller must check before buffering more.
// On success n is the length of the request through the blank line; the
// bytes after n (a frame the client pipelined behind its request) belong to
// the caller. The Request's strings alias b[:n]: they are valid until the caller discards or changes those bytes (as
// gnet's Reader hands out its buffer). Copy what must outlive that.
//
// Every other failure is a *HTTPError:
//   - 400 for a malformed request line or header (RFC 7230 §3), a protocol
//     other than HTTP/1.1, a missing or repeated Host (RFC 7230 §5.4), a
//     request body (Content-Length > 0 or any Transfer-Encoding), a repeated
//     Origin, Sec-WebSocket-Key or Sec-WebSocket-Version (RFC 6455 §11.3),
//     and a Sec-WebSocket-Key that does not base64-decode to 16 bytes
//     (RFC 6455 §4.2.1 item 5);
//   - 405 for a method other than GET (RFC 6455 §4.2.1 item 1);
//   - 426 when the Upgrade header lacks the "websocket" token, the
//     Connection header lacks the "upgrade" token (both case-insensitive,
//     comma lists, possibly over several lines), or Sec-WebSocket-Version
//     is not 13 (RFC 6455 §4.2.2 item 4).
//
// Header lines must end in CRLF; obsolete line folding is refused.
func (h *Handshake) Parse(b []byte) (req Request, n int, err error) {
	limit := min(len(b), MaxHandshakeSize)
	from := int(h.scanned) - (len(crlfcrlf) - 1)
	if from < 0 || int(h.scanned) > limit {
		// A buffer shorter than the one scanned before is not the same
		// stream grown; start over rather than trust the old offset.
		from = 0
	}
	i := bytes.Index(b[from:limit], crlfcrlf)
	if i < 0 {
		h.scanned = int32(limit)
		if len(b) >= MaxHandshakeSize {
			// The request cannot fit: the first MaxHandshakeSize bytes hold
			// no blank line, whatever follows.
			return Request{}, 0, &HTTPError{Status: 431, Reason: "request header block larger than " + strconv.Itoa(MaxHandshakeSize) + " bytes"}
		}
		return Request{}, 0, ErrNeedMore
	}
	h.scanned = int32(from + i)
	n = from + i + len(crlfcrlf)

	// The header block read in place: every Request field is a substring
	// of it, so parsing allocates nothing, and the request aliases b.
	req, err = parseRequest(unsafe.String(&b[0], n-2))
	if err != nil {
		return Request{}, 0, err
	}
	return req, n, nil
}

// Reset makes h ready for a new request.
func (h *Handshake) Reset() {
	h.scanned = 0
}

// singleHeaders are the headers a request may carry only once; parseRequest
// keeps all but Content-Length in Request.
var singleHeaders = [...]string{hostHeader: "Host", originHeader: "Origin", keyHeader: "Sec-WebSocket-Key",
	versionHeader: "Sec-WebSocket-Version", lengthHeader: "Content-Length"}

const (
	hostHeader = iota
	originHeader
	keyHeader
	versionHeader
	lengthHeader
)

// singleHeader returns the index of name in singleHeaders, or -1.
func singleHeader(name string) int {
	for i, h := range singleHeaders {
		if strings.EqualFold(name, h) {
			return i
		}
	}
	return -1
}

// parseRequest parses a header block that ends in exactly one CRLF.
func parseRequest(block string) (Request, error) {
	var req Request
	line, rest, _ := strings.Cut(block, "\r\n")
	if err := parseRequestLine(line, &req); err != nil {
		return Request{}, err
	}

	var (
		fields     = [...]*string{hostHeader: &req.Host, originHeader: &req.Origin, keyHeader: &req.Key, versionHeader: &req.Version, lengthHeader: nil}
		seen       [len(singleHeaders)]bool
		upgrade    bool
		connection bool
	)
	for rest != "" {
		line, rest, _ = strings.Cut(rest, "\r\n")
		if line == "" {
			return Request{}, badRequest("malformed header block", rest)
		}
		if line[0] == ' ' || line[0] == '\t' {
			return Request{}, badRequest("obsolete header line folding", line)
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return Request{}, badRequest("malformed header line", line)
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		if !isFieldValue(value) {
			return Request{}, badRequest("malformed header value", line)
		}
		if k := singleHeader(name); k >= 0 {
			// RFC 7230 §5.4, RFC 6455 §11.3: these may appear only once.
			if seen[k] {
				return Request{}, badRequest("repeated "+singleHeaders[k]+" header", line)
			}
			seen[k] = true
			if fields[k] != nil {
				*fields[k] = value
			}
		}
		switch {
		case strings.EqualFold(name, "Upgrade"):
			upgrade = upgrade || hasToken(value, "websocket")
		case strings.EqualFold(name, "Connection"):
			connection = connection || hasToken(value, "upgrade")
		case strings.EqualFold(name, "Content-Length"):
			if value == "" || strings.Trim(value, "0123456789") != "" {
				return Request{}, badRequest("malformed Content-Length", line)
			}
			if strings.Trim(value, "0") != "" {
				return Request{}, &HTTPError{Status: 400, Reason: "upgrade request must not have a body"}
			}
		case strings.EqualFold(name, "Transfer-Encoding"):
			return Request{}, &HTTPError{Status: 400, Reason: "upgrade request must not have a body"}
		}
	}

	switch {
	case req.Method != "GET":
		return Request{}, &HTTPError{Status: 405, Reason: "method " + strconv.Quote(req.Method) + " not allowed, use GET"}
	case !seen[hostHeader]:
		return Request{}, &HTTPError{Status: 400, Reason: "missing Host header"}
	case !upgrade:
		return Request{}, &HTTPError{Status: 426, Reason: `missing "Upgrade: websocket" header`}
	case !connection:
		return Request{}, &HTTPError{Status: 426, Reason: `missing "Connection: Upgrade" header`}
	case req.Version != "13":
		return Request{}, &HTTPError{Status: 426, Reason: "unsupported Sec-WebSocket-Version " + strconv.Quote(snippet(req.Version)) + ", use 13"}
	case !validKey(req.Key):
		if !seen[keyHeader] {
			return Request{}, &HTTPError{Status: 400, Reason: "missing Sec-WebSocket-Key header"}
		}
		return Request{}, badRequest("invalid Sec-WebSocket-Key", req.Key)
	}
	return req, nil
}

// parseRequestLine parses "GET /path?query HTTP/1.1" (RFC 7230 §3.1.1).
// Only origin-form targets (RFC 7230 §5.3.1) are accepted: WebSocket clients
// send the resource name and nothing else (RFC 6455 §4.1).
func parseRequestLine(line string, req *Request) error {
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !isToken(method) || target == "" || !isTarget(target) {
		return badRequest("malformed request line", line)
	}
	if proto != "HTTP/1.1" {
		if strings.HasPrefix(proto, "HTTP/") && !strings.Contains(proto, " ") {
			return badRequest("unsupported protocol version, use HTTP/1.1", proto)
		}
		return badRequest("malformed request line", line)
	}
	if target[0] != '/' {
		return badRequest("request target must be a path", target)
	}
	req.Method = method
	req.Path, req.RawQuery, _ = strings.Cut(target, "?")
	return nil
}

// badRequest is a 400 whose reason quotes the start of the offending bytes.
func badRequest(what, bad string) *HTTPError {
	return &HTTPError{Status: 400, Reason: what + " " + strconv.Quote(snippet(bad))}
}

// snippet shortens s for quoting in an error.
func snippet(s string) string {
	const limit = 40
	if len(s) > limit {
		return s[:limit] + "..."
	}
	return s
}

// validKey reports whether key is base64 for 16 bytes (RFC 6455 §4.2.1 item 5).
func validKey(key string) bool {
	if len(key) != 24 {
		return false
	}
	var buf [18]byte
	n, err := base64.StdEncoding.Decode(buf[:], []byte(key))
	return err == nil && n == 16
}
