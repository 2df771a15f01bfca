package codec

import (
	"unicode/utf8"

	"github.com/gobwas/ws"
)

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
