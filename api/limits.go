package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// What one request may be — its URL, its header block, its body, the time
// it takes to arrive — and how a request over a limit is answered: with
// its status (413, 414, 431, 408, or 400 for one that is not HTTP) and
// {"error": ...}, then a lingering close. A client still sending a body
// the server will not read would otherwise meet a reset connection (the
// kernel answers unread bytes with RST) before it reads the answer: the
// `pusher` SDK saw ECONNRESET instead of 413. So the server shuts its
// side down after the answer and reads and drops what the client still
// sends, until the client closes, lingerBytes arrived, lingerTime passed,
// or the slot is needed (conns.go).

// Request limits when Config leaves them 0.
const (
	DefaultMaxBodySize   = 1 << 20
	DefaultMaxURLSize    = 8 << 10
	DefaultMaxHeaderSize = 4 << 10
	// DefaultReadTimeout bounds the arrival of one request, headers and
	// body: from when the connection gets a slot for its first request,
	// from its first byte for the next ones.
	DefaultReadTimeout = 5 * time.Second
)

// lingerTime bounds a lingering close.
const lingerTime = 2 * time.Second

// requestLineSlack is what a request line holds besides its URL: the
// method, "HTTP/1.1" and the spaces and CRLF between.
const requestLineSlack = 32

// lingerBytes is what a lingering close reads at most: the rest of a
// body of a few times the limit.
func lingerBytes(maxBody int) int64 { return int64(max(4*maxBody, 4<<20)) }

// handleError answers a request fasthttp could not read, in JSON, and
// has its connection linger before the close (fasthttp closes it after
// this answer).
func (s *Server) handleError(ctx *fasthttp.RequestCtx, err error) {
	status, msg := s.readError(ctx, err)
	fail(ctx, status, msg)
	s.metrics.count(routeNone, status)
	if c, ok := ctx.Conn().(*conn); ok {
		c.linger.Store(s.lingerBytes)
	}
}

// readError is the status and message for a request fasthttp could not
// read. A request over the read buffer (ErrSmallBuffer) is a URL over its
// limit (414) when its request line did not end in the buffer or names a
// longer URL, else a header block over its own (431). fasthttp forgets
// the request line when it fails, so the connection measures it as it
// reads (conn.Read); off a listener of Listen's it is 431.
func (s *Server) readError(ctx *fasthttp.RequestCtx, err error) (int, string) {
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return fasthttp.StatusRequestEntityTooLarge, s.bodyTooLarge
	case errors.As(err, &small):
		if c, ok := ctx.Conn().(*conn); ok {
			if n := c.urlSize(); n < 0 || n > s.maxURL {
				return fasthttp.StatusRequestURITooLong, s.urlTooLong
			}
		}
		return fasthttp.StatusRequestHeaderFieldsTooLarge, s.headersTooLarge
	case errors.As(err, &netErr) && netErr.Timeout():
		return fasthttp.StatusRequestTimeout, "Request not received in " + s.readTimeout.String()
	default:
		return fasthttp.StatusBadRequest, "Malformed HTTP request"
	}
}

// overLimit answers 414 or 431 to a request read whole whose URL or
// header block is over its limit, and reports whether it did. (The read
// buffer holds both limits at once, so a request may fit it while one
// part is over its own.) The connection closes after the answer, as
// after those to requests not read whole.
func (s *Server) overLimit(ctx *fasthttp.RequestCtx) bool {
	switch {
	case len(ctx.Request.Header.RequestURI()) > s.maxURL:
		fail(ctx, fasthttp.StatusRequestURITooLong, s.urlTooLong)
	case len(ctx.Request.Header.RawHeaders()) > s.maxHeaders:
		fail(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, s.headersTooLarge)
	default:
		return false
	}
	ctx.SetConnectionClose()
	return true
}

// limitMessages words the answers to requests over a limit once.
func (s *Server) limitMessages() {
	s.bodyTooLarge = "Request body is larger than " + strconv.Itoa(s.maxBody) + " bytes"
	s.urlTooLong = "Request URL is longer than " + strconv.Itoa(s.maxURL) + " bytes"
	s.headersTooLarge = "Request headers are larger than " + strconv.Itoa(s.maxHeaders) + " bytes"
}

// drain shuts down the sending side of c, after the answer, and reads
// and drops what the client still sends until it closes, n bytes came,
// or c's read deadline passes (the caller sets it).
func drain(c net.Conn, n int64) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_, _ = io.CopyN(io.Discard, c, n)
}

// fasthttpLogger sends fasthttp's messages to revurb's log. What a client
// caused — a request over a limit, a reset, a timeout — goes at debug
// level, so that hostile clients cannot flood the log.
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	if strings.HasPrefix(format, "error when serving connection") {
		if f.l.Enabled(context.Background(), slog.LevelDebug) {
			f.l.Debug("fasthttp: " + fmt.Sprintf(format, args...))
		}
		return
	}
	f.l.Warn("fasthttp: " + fmt.Sprintf(format, args...))
}
