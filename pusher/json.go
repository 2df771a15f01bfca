package pusher

import (
	"bytes"
	"errors"
	"unsafe"

	json "github.com/goccy/go-json"

	"github.com/revurb/revurb/codec"
)

// This file holds the small JSON scanner of the hot path. Client messages are
// envelopes {"event":..., "channel":..., "data":...}; the scanner finds those
// three fields without allocating, checks the whole message is valid JSON, and
// hands out slices of the input. Anything it cannot take apart cheaply (an
// event or channel name with escapes) is unquoted with go-json, off the hot
// path.

var (
	errBadJSON    = errors.New("pusher: invalid JSON")
	errNotObject  = errors.New("pusher: message is not a JSON object")
	errNoEvent    = errors.New("pusher: message has no string event")
	errDeepJSON   = errors.New("pusher: JSON nested too deeply")
	errFieldType  = errors.New("pusher: field has the wrong type")
	maxJSONDepth  = 64
	errBadChannel = errors.New("pusher: channel must be a string")
)

// envelope is the top level of a client message. Every slice aliases the
// message and lives only as long as it.
type envelope struct {
	event   []byte // unquoted
	channel []byte // unquoted; nil when absent
	data    []byte // raw JSON value; nil when absent
}

// parseEnvelope fills e from msg, which is valid UTF-8 (the codec refuses
// text frames that are not). Names containing escapes are unquoted into
// fresh memory.
func parseEnvelope(msg []byte, e *envelope) error {
	*e = envelope{}
	i := skipSpace(msg, 0)
	if i >= len(msg) || msg[i] != '{' {
		if _, err := skipValue(msg, i, 0); err != nil {
			return errBadJSON
		}
		return errNotObject
	}
	i = skipSpace(msg, i+1)
	if i < len(msg) && msg[i] == '}' {
		i++
	} else {
		for {
			if i >= len(msg) || msg[i] != '"' {
				return errBadJSON
			}
			kEnd, err := skipString(msg, i)
			if err != nil {
				return err
			}
			key := msg[i+1 : kEnd-1]
			i = skipSpace(msg, kEnd)
			if i >= len(msg) || msg[i] != ':' {
				return errBadJSON
			}
			i = skipSpace(msg, i+1)
			vEnd, err := skipValue(msg, i, 1)
			if err != nil {
				return err
			}
			val := msg[i:vEnd]
			switch string(key) {
			case "event":
				if val[0] != '"' {
					return errNoEvent
				}
				e.event = unquote(val)
			case "channel":
				if val[0] != '"' {
					return errBadChannel
				}
				e.channel = unquote(val)
			case "data":
				e.data = val
			}
			i = skipSpace(msg, vEnd)
			if i < len(msg) && msg[i] == ',' {
				i = skipSpace(msg, i+1)
				continue
			}
			if i < len(msg) && msg[i] == '}' {
				i++
				break
			}
			return errBadJSON
		}
	}
	if skipSpace(msg, i) != len(msg) {
		return errBadJSON
	}
	if e.event == nil {
		return errNoEvent
	}
	return nil
}

// unquote returns the contents of the JSON string s. Without escapes it is a
// sub-slice of s; with them, a new slice.
func unquote(s []byte) []byte {
	inner := s[1 : len(s)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner
	}
	var out string
	if json.Unmarshal(s, &out) != nil {
		return inner
	}
	return []byte(out)
}

// jsonSpace and stringPlain are byte classes looked up in one load each:
// the scanner's inner loops run once per byte of every client message.
var jsonSpace, stringPlain [256]bool

func init() {
	for _, c := range " \t\n\r" {
		jsonSpace[c] = true
	}
	for c := 0x20; c < 256; c++ {
		stringPlain[c] = c != '"' && c != '\\'
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && jsonSpace[b[i]] {
		i++
	}
	return i
}

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return 0, errBadJSON
	}
	if depth > maxJSONDepth {
		return 0, errDeepJSON
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{':
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == '}' {
			return i + 1, nil
		}
		for {
			if i >= len(b) || b[i] != '"' {
				return 0, errBadJSON
			}
			end, err := skipString(b, i)
			if err != nil {
				return 0, err
			}
			i = skipSpace(b, end)
			if i >= len(b) || b[i] != ':' {
				return 0, errBadJSON
			}
			if i, err = skipValue(b, skipSpace(b, i+1), depth+1); err != nil {
				return 0, err
			}
			i = skipSpace(b, i)
			if i < len(b) && b[i] == ',' {
				i = skipSpace(b, i+1)
				continue
			}
			if i < len(b) && b[i] == '}' {
				return i + 1, nil
			}
			return 0, errBadJSON
		}
	case c == '[':
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, nil
		}
		for {
			var err error
			if i, err = skipValue(b, i, depth+1); err != nil {
				return 0, err
			}
			i = skipSpace(b, i)
			if i < len(b) && b[i] == ',' {
				i = skipSpace(b, i+1)
				continue
			}
			if i < len(b) && b[i] == ']' {
				return i + 1, nil
			}
			return 0, errBadJSON
		}
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(b, i)
	}
	return 0, errBadJSON
}

func skipLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, errBadJSON
	}
	return i + len(lit), nil
}

// skipString returns the index just past the JSON string starting at b[i]
// (which is '"'), checking escapes and rejecting raw control characters.
func skipString(b []byte, i int) (int, error) {
	for i++; i < len(b); i++ {
		for i < len(b) && stringPlain[b[i]] {
			i++
		}
		if i == len(b) {
			break
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			i++
			if i >= len(b) {
				return 0, errBadJSON
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i < 5 {
					return 0, errBadJSON
				}
				for _, h := range b[i+1 : i+5] {
					if !isHex(h) {
						return 0, errBadJSON
					}
				}
				i += 4
			default:
				return 0, errBadJSON
			}
		case c < 0x20:
			return 0, errBadJSON
		}
	}
	return 0, errBadJSON
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func skipNumber(b []byte, i int) (int, error) {
	start := i
	if b[i] == '-' {
		i++
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if j := skipDigits(b, i); j == i {
		return 0, errBadJSON
	} else {
		i = j
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return 0, errBadJSON
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return 0, errBadJSON
		}
		i = j
	}
	if i == start {
		return 0, errBadJSON
	}
	return i, nil
}

// appendJSONBytes is codec.AppendJSONString for a byte slice, without a
// copy.
func appendJSONBytes(dst, b []byte) []byte {
	return codec.AppendJSONString(dst, unsafe.String(unsafe.SliceData(b), len(b)))
}
