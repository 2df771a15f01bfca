package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	randv2 "math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/gobwas/ws"

	"github.com/revurb/revurb/codec"
)

// maxServerFrame bounds the payload of one server frame the client accepts;
// Pusher messages are far smaller, so a larger one is a server bug.
const maxServerFrame = 1 << 20

// errFrame marks a server frame that breaks RFC 6455; its text says how.
type errFrame string

func (e errFrame) Error() string { return "frame: " + string(e) }

// wsConn is a hand-written WebSocket client connection: one TCP socket, a
// small read buffer and a write buffer reused under a mutex. Reads happen on
// one goroutine only; writes may come from several.
type wsConn struct {
	nc net.Conn
	br *bufio.Reader

	// pending is how many bytes of br the last returned payload still
	// occupies; the next readFrame discards them first (zero-copy reads).
	pending int
	frag    []byte // reassembly of a fragmented message
	fragOp  ws.OpCode
	big     []byte // payloads larger than br's buffer

	wmu  sync.Mutex
	wbuf []byte
}

// dialWS opens a TCP connection from local to addr (with noPort, the
// port left to connect), its TLS handshake with tc when tc is not nil
// (wss://), and performs the WebSocket upgrade for path, all before
// deadline; cancelling ctx stops the dial.
func dialWS(ctx context.Context, local *net.TCPAddr, addr, path string, readBuf int, tc *tls.Config, noPort bool, deadline time.Time) (*wsConn, error) {
	d := net.Dialer{LocalAddr: local, Deadline: deadline}
	if noPort {
		d.Control = bindNoPort
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		t := tls.Client(nc, tc)
		_ = t.SetDeadline(deadline)
		if err := t.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, tlsError{err}
		}
		nc = t
	}
	c := &wsConn{nc: nc, br: bufio.NewReaderSize(nc, readBuf)}
	if err := c.handshake(addr, path, deadline); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// handshake sends the opening handshake and checks the server's answer
// (RFC 6455 §4.1): status 101, Upgrade, Connection and the accept key.
func (c *wsConn) handshake(host, path string, deadline time.Time) error {
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	key := base64.StdEncoding.EncodeToString(raw[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if err := c.nc.SetDeadline(deadline); err != nil {
		return err
	}
	if _, err := io.WriteString(c.nc, req); err != nil {
		return err
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	status := strings.TrimSpace(string(line))
	if f := strings.Fields(status); len(f) < 2 || f[1] != "101" {
		return fmt.Errorf("handshake: status %q", status)
	}
	wantAccept := codec.AcceptKey(key)
	var upgrade, connection, accept bool
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("handshake: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return fmt.Errorf("handshake: bad header line %q", line)
		}
		v = bytes.TrimSpace(v)
		switch strings.ToLower(string(bytes.TrimSpace(k))) {
		case "upgrade":
			upgrade = strings.EqualFold(string(v), "websocket")
		case "connection":
			connection = strings.Contains(strings.ToLower(string(v)), "upgrade")
		case "sec-websocket-accept":
			accept = string(v) == wantAccept
		}
	}
	switch {
	case !upgrade:
		return errors.New("handshake: no Upgrade: websocket")
	case !connection:
		return errors.New("handshake: no Connection: Upgrade")
	case !accept:
		return errors.New("handshake: wrong Sec-WebSocket-Accept")
	}
	return c.nc.SetDeadline(time.Time{})
}

// writeText sends payload as one masked text frame.
func (c *wsConn) writeText(payload []byte) error {
	return c.write(ws.OpText, payload)
}

// write sends one masked frame with a fresh mask (RFC 6455 §5.3).
func (c *wsConn) write(op ws.OpCode, payload []byte) error {
	var mask [4]byte
	binary.LittleEndian.PutUint32(mask[:], randv2.Uint32())
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = codec.AppendMaskedFrame(c.wbuf[:0], op, true, mask, payload)
	if err := c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	_, err := c.nc.Write(c.wbuf)
	if cap(c.wbuf) > 4096 {
		c.wbuf = nil // a rare big frame should not stay pinned per connection
	}
	return err
}

// readMessage returns the next complete message: a data message
// (reassembled if fragmented) or a control frame. The payload is valid only
// until the next call. Frames that break RFC 6455 give an errFrame.
func (c *wsConn) readMessage() (ws.OpCode, []byte, error) {
	for {
		fin, op, p, err := c.readFrame()
		if err != nil {
			return 0, nil, err
		}
		switch op {
		case ws.OpText, ws.OpBinary:
			if c.fragOp != 0 {
				return 0, nil, errFrame("new data frame inside a fragmented message")
			}
			if fin {
				return op, p, nil
			}
			c.fragOp = op
			c.frag = append(c.frag[:0], p...)
		case ws.OpContinuation:
			if c.fragOp == 0 {
				return 0, nil, errFrame("continuation with no message in progress")
			}
			c.frag = append(c.frag, p...)
			if len(c.frag) > maxServerFrame {
				return 0, nil, errFrame("fragmented message too large")
			}
			if fin {
				op := c.fragOp
				c.fragOp = 0
				return op, c.frag, nil
			}
		default:
			return op, p, nil
		}
	}
}

// readFrame reads one frame header and its payload. Payloads that fit the
// read buffer are returned in place (Peek) and discarded on the next call.
func (c *wsConn) readFrame() (fin bool, op ws.OpCode, payload []byte, err error) {
	if c.pending > 0 {
		if _, err := c.br.Discard(c.pending); err != nil {
			return false, 0, nil, err
		}
		c.pending = 0
	}
	var hdr [8]byte
	if _, err := io.ReadFull(c.br, hdr[:2]); err != nil {
		return false, 0, nil, err
	}
	b0, b1 := hdr[0], hdr[1]
	fin = b0&0x80 != 0
	op = ws.OpCode(b0 & 0x0f)
	if b0&0x70 != 0 {
		return false, 0, nil, errFrame("reserved bits set")
	}
	if b1&0x80 != 0 {
		return false, 0, nil, errFrame("server frame masked")
	}
	control := op&0x8 != 0
	switch op {
	case ws.OpContinuation, ws.OpText, ws.OpBinary, ws.OpClose, ws.OpPing, ws.OpPong:
	default:
		return false, 0, nil, errFrame(fmt.Sprintf("reserved opcode %#x", byte(op)))
	}
	n := uint64(b1 & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(c.br, hdr[:2]); err != nil {
			return false, 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(hdr[:2]))
		if n < 126 {
			return false, 0, nil, errFrame("16-bit length not minimal")
		}
	case 127:
		if _, err := io.ReadFull(c.br, hdr[:8]); err != nil {
			return false, 0, nil, err
		}
		n = binary.BigEndian.Uint64(hdr[:8])
		if n>>63 != 0 {
			return false, 0, nil, errFrame("64-bit length with top bit set")
		}
		if n <= 0xffff {
			return false, 0, nil, errFrame("64-bit length not minimal")
		}
	}
	if control && (n > 125 || !fin) {
		return false, 0, nil, errFrame("control frame fragmented or over 125 bytes")
	}
	if n > maxServerFrame {
		return false, 0, nil, errFrame(fmt.Sprintf("payload of %d bytes", n))
	}
	if int(n) <= c.br.Size() {
		p, err := c.br.Peek(int(n))
		if err != nil {
			return false, 0, nil, err
		}
		c.pending = int(n)
		return fin, op, p, nil
	}
	if cap(c.big) < int(n) {
		c.big = make([]byte, n)
	}
	p := c.big[:n]
	if _, err := io.ReadFull(c.br, p); err != nil {
		return false, 0, nil, err
	}
	return fin, op, p, nil
}

// closeCode returns the status code of a close frame payload, or 1005
// when it has none (RFC 6455 §7.1.5).
func closeCode(p []byte) int {
	if len(p) < 2 {
		return 1005
	}
	return int(binary.BigEndian.Uint16(p))
}

// abort closes the socket with RST (SO_LINGER 0), so that the client side
// keeps no TIME_WAIT entry: back-to-back runs would otherwise exhaust the
// ports of their source addresses.
// Over TLS the TCP socket under it is reset the same way, with no
// close_notify.
func (c *wsConn) abort() {
	nc := c.nc
	if t, ok := nc.(*tls.Conn); ok {
		nc = t.NetConn()
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = nc.Close()
}

// tlsState is what c's TLS handshake settled on (tlsSession), or "" for a
// plain socket.
func (c *wsConn) tlsState() string {
	if t, ok := c.nc.(*tls.Conn); ok {
		return tlsSession(t.ConnectionState())
	}
	return ""
}
