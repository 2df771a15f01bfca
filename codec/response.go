package codec

import (
	"crypto/sha1"
	"encoding/base64"
	"strconv"
)

// acceptGUID is the fixed string of RFC 6455 §1.3 appended to the client's key
// before hashing.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// HTTPError is a handshake failure answered with an HTTP status, then the
// connection is closed. Write it with AppendHTTPError(dst, e.Status, e.Reason).
type HTTPError struct {
	// Status is the HTTP status code to answer with.
	Status int
	// Reason says what was wrong, for the response body and logs; it may
	// quote a snippet of the offending bytes.
	Reason string
}

// Error implements error.
func (e *HTTPError) Error() string {
	return "codec: handshake: " + strconv.Itoa(e.Status) + " " + statusText(e.Status) + ": " + e.Reason
}

// AcceptKey returns the Sec-WebSocket-Accept value for key:
// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), RFC 6455 §4.2.2
// item 5.4.
func AcceptKey(key string) string {
	var buf [28]byte
	return string(appendAcceptKey(buf[:0], key))
}

// appendAcceptKey appends AcceptKey(key) to dst.
func appendAcceptKey(dst []byte, key string) []byte {
	// Keys are 24 bytes; the stack buffer holds them and the GUID without
	// touching the heap.
	var buf [24 + len(acceptGUID)]byte
	p := append(append(buf[:0], key...), acceptGUID...)
	sum := sha1.Sum(p)
	return base64.StdEncoding.AppendEncode(dst, sum[:])
}

// AppendUpgradeResponse appends the "HTTP/1.1 101 Switching Protocols"
// response that completes the handshake for key (RFC 6455 §4.2.2 item 5),
// with Upgrade, Connection and Sec-WebSocket-Accept headers.
func AppendUpgradeResponse(dst []byte, key string) []byte {
	dst = append(dst, "HTTP/1.1 101 Switching Protocols\r\n"+
		"Upgrade: websocket\r\n"+
		"Connection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: "...)
	dst = appendAcceptKey(dst, key)
	return append(dst, "\r\n\r\n"...)
}

// AppendHTTPError appends a complete HTTP/1.1 response with status and its
// reason phrase, "Content-Type: application/json", Content-Length and
// "Connection: close", and the body {"error":"<reason>"} with reason
// JSON-escaped. A 426 also carries "Sec-WebSocket-Version: 13" (RFC 6455
// §4.2.2 item 4). A status outside 100..599 is sent as 500.
func AppendHTTPError(dst []byte, status int, reason string) []byte {
	if status < 100 || status > 599 {
		status = 500
	}
	// The body is built first because Content-Length precedes it; the
	// stack buffer holds any reason this package produces.
	var buf [256]byte
	body := append(buf[:0], `{"error":`...)
	body = AppendJSONString(body, reason)
	body = append(body, '}')

	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, statusText(status)...)
	dst = append(dst, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\nConnection: close\r\n"...)
	if status == 426 {
		dst = append(dst, "Sec-WebSocket-Version: 13\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	return append(dst, body...)
}

// statusText returns the reason phrase for the statuses a WebSocket server
// answers with, and "" for others (an empty phrase is valid, RFC 7230 §3.1.2).
func statusText(status int) string {
	switch status {
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 413:
		return "Content Too Large"
	case 426:
		return "Upgrade Required"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	}
	return ""
}
