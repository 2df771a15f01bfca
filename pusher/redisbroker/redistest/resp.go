package redistest

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strconv"
	"time"
)

// Do runs one command on the Redis at addr over a connection of its own
// and returns the reply: a string, an int64, nil, a []any, or an error
// for an error reply. It is the tests' own client, so that what they
// check never goes through the client under test.
func Do(addr string, args ...string) (any, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(appendCommand(nil, args...)); err != nil {
		return nil, err
	}
	return readReply(bufio.NewReader(c))
}

// appendCommand appends args as a RESP array of bulk strings.
func appendCommand(dst []byte, args ...string) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(len(args)), 10)
	dst = append(dst, "\r\n"...)
	for _, a := range args {
		dst = append(dst, '$')
		dst = strconv.AppendInt(dst, int64(len(a)), 10)
		dst = append(dst, "\r\n"...)
		dst = append(dst, a...)
		dst = append(dst, "\r\n"...)
	}
	return dst
}

// Error is an error reply.
type Error string

func (e Error) Error() string { return string(e) }

func readReply(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 {
		return nil, errors.New("redistest: short reply line")
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, Error(body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		return string(b[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		out := make([]any, n)
		for i := range out {
			v, err := readReply(r)
			if err != nil {
				if _, ok := err.(Error); !ok {
					return nil, err
				}
				v = err
			}
			out[i] = v
		}
		return out, nil
	}
	return nil, errors.New("redistest: unknown reply " + strconv.Quote(line))
}

// DoAll runs commands on the Redis at addr, pipelined over one connection,
// and returns the first error.
func DoAll(addr string, cmds ...[]string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	var buf []byte
	for _, args := range cmds {
		buf = appendCommand(buf, args...)
	}
	if _, err := c.Write(buf); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	var first error
	for range cmds {
		if _, err := readReply(r); err != nil && first == nil {
			first = err
		}
	}
	return first
}
