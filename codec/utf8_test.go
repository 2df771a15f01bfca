package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// The UTF-8 of a text frame is checked as its bytes arrive (RFC 6455 §8.1):
// these tests feed frames in pieces and want the 1007 as soon as the text
// can no longer be UTF-8.

// errorOffset plays the caller, delivering stream one byte at a time (the
// caller appends, decodes until it needs more, discards what was consumed).
// It returns how many bytes of stream had been delivered when Decode first
// failed, and that error; -1 and nil if it never failed.
func errorOffset(t *testing.T, d *Decoder, stream []byte) (int, error) {
	t.Helper()
	var buf []byte
	for i, c := range stream {
		buf = append(buf, c)
		for len(buf) > 0 {
			_, n, err := d.Decode(buf)
			if err == ErrNeedMore {
				if n != 0 {
					t.Fatalf("ErrNeedMore with n = %d", n)
				}
				break
			}
			if err != nil {
				return i + 1, err
			}
			buf = buf[n:]
		}
	}
	return -1, nil
}

func isClose(err error, code ws.StatusCode) bool {
	var ce *CloseError
	return errors.As(err, &ce) && ce.Code == code
}

func TestDecodeUTF8FailsFast(t *testing.T) {
	// bad is the text, after the prefix of valid text pre, in which the
	// last byte makes UTF-8 impossible; the frame declares more payload
	// (valid ASCII) after it, which never needs to arrive.
	tests := []struct {
		name string
		pre  string
		bad  string
	}{
		{name: "0xff first", bad: "\xff"},
		{name: "0xff after ASCII", pre: "abc", bad: "\xff"},
		{name: "stray continuation byte", pre: "a", bad: "\x80"},
		{name: "0xc0 is never valid", bad: "\xc0"},
		{name: "0xf5 is never valid", pre: "€", bad: "\xf5"},
		{name: "3-byte code point cut by ASCII", pre: "ab", bad: "\xe2\x82A"},
		{name: "4-byte code point cut by ASCII", bad: "\xf0\x9f\x98A"},
		{name: "4-byte code point cut by a new start", bad: "\xf0\x9f\xe2"},
		{name: "surrogate, refused at its second byte", bad: "\xed\xa0"},
		{name: "overlong 3-byte, refused at its second byte", bad: "\xe0\x80"},
		{name: "overlong 4-byte, refused at its second byte", bad: "\xf0\x80"},
		{name: "above U+10FFFF, refused at its second byte", bad: "\xf4\x90"},
		{name: "third byte not a continuation", bad: "\xf0\x90\x41"},
		{name: "after 600 ASCII bytes, past one scratch buffer", pre: strings.Repeat("x", 600), bad: "\xff"},
		{name: "after 2-byte code points across scratch buffers", pre: strings.Repeat("é", 700), bad: "\xff"},
		{name: "code point straddling a scratch buffer then cut", pre: "a" + strings.Repeat("€", 170), bad: "\xe2\x82\x7f"},
		{name: "after 4-byte code points", pre: strings.Repeat("😀", 300), bad: "\xf0\x9f\x41"},
	}
	for _, tt := range tests {
		text := tt.pre + tt.bad
		const rest = 1000 // declared, never sent
		t.Run(tt.name, func(t *testing.T) {
			t.Run("one frame", func(t *testing.T) {
				b := frame(ws.OpText, true, text+strings.Repeat("x", rest))
				hs := len(b) - len(text) - rest
				wantFailFast(t, b, hs+len(text))
			})
			t.Run("continuation", func(t *testing.T) {
				// The first fragment ends inside a code point when pre
				// does, so the check goes across fragments too.
				cut := len(tt.pre) / 2
				first := frame(ws.OpText, false, text[:cut])
				second := frame(ws.OpContinuation, true, text[cut:]+strings.Repeat("x", rest))
				hs := len(second) - len(text[cut:]) - rest
				wantFailFast(t, join(first, second), len(first)+hs+len(text)-cut)
			})
			t.Run("first fragment", func(t *testing.T) {
				b := frame(ws.OpText, false, text+strings.Repeat("x", rest))
				hs := len(b) - len(text) - rest
				wantFailFast(t, b, hs+len(text))
			})
		})
	}
}

// wantFailFast wants stream refused with 1007 once exactly errAt bytes of it
// are in: one byte at a time, and split in two at every offset.
func wantFailFast(t *testing.T, stream []byte, errAt int) {
	t.Helper()
	at, err := errorOffset(t, &Decoder{}, stream)
	if at != errAt || !isClose(err, ws.StatusInvalidFramePayloadData) {
		t.Fatalf("one byte at a time: error %v after %d bytes, want close 1007 after %d of %d", err, at, errAt, len(stream))
	}
	for i := 0; i <= errAt; i++ {
		// The caller's pattern, two reads: the first piece, then with the
		// second piece appended. Stop at the first error.
		got := decodeStream(&Decoder{}, stream[:i], stream[i:errAt])
		last := got[len(got)-1]
		if !isClose(last.Err, ws.StatusInvalidFramePayloadData) {
			t.Fatalf("split at %d, %d bytes in: last event %+v, want close 1007", i, errAt, last)
		}
		// And nothing is refused before errAt bytes are in.
		if i < errAt {
			got = decodeStream(&Decoder{}, stream[:i], stream[i:errAt-1])
			if last := got[len(got)-1]; last.Err != ErrNeedMore && last.Err != nil {
				t.Fatalf("split at %d, %d bytes in: refused early: %+v", i, errAt-1, last)
			}
		}
	}
}

func TestDecodeUTF8SplitTextDecodes(t *testing.T) {
	// Every code point length, straddling the scratch buffer's size in
	// several places, and a 16-bit length.
	text := strings.Repeat("a é € 😀 ", 60)
	b := frame(ws.OpText, true, text)
	want := []event{{Op: ws.OpText, Payload: text, N: len(b)}}
	if got := decodeEveryWay(t, 0, b); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v", got)
	}
	// Fragments cut inside code points, and every way of reading them.
	f := join(frame(ws.OpText, false, text[:101]), frame(ws.OpPing, true, "p"), frame(ws.OpContinuation, false, text[101:599]), frame(ws.OpContinuation, true, text[599:]))
	got := decodeEveryWay(t, 0, f)
	if len(got) != 4 || got[3].Op != ws.OpText || got[3].Payload != text {
		t.Fatalf("fragmented: got %+v", got)
	}
}

// decodeCopying is decodeStream for a caller that hands Decode a fresh copy
// of what it holds on every call, as gnet's Peek does when the bytes span
// its buffers: nothing Decode writes into one call's input is seen by the
// next.
func decodeCopying(d *Decoder, chunks ...[]byte) []event {
	var buf []byte
	var events []event
	for _, c := range chunks {
		buf = append(buf, c...)
		for len(buf) > 0 {
			m, n, err := d.Decode(bytes.Clone(buf))
			if err == ErrNeedMore {
				break
			}
			events = append(events, event{Op: m.Op, Payload: string(m.Payload), CloseCode: m.CloseCode, CloseReason: string(m.CloseReason), N: n, Err: err})
			if err != nil {
				return events
			}
			buf = buf[n:]
		}
	}
	if len(buf) > 0 {
		events = append(events, event{N: len(buf), Err: ErrNeedMore})
	}
	return events
}

func TestDecodeUTF8InputCopiedEachCall(t *testing.T) {
	text := strings.Repeat("a é € 😀 ", 200)
	stream := join(frame(ws.OpText, true, text), frame(ws.OpText, false, text[:33]), frame(ws.OpContinuation, true, text[33:]))
	whole := decodeStream(&Decoder{}, stream)
	for _, size := range []int{1, 2, 3, 5, 7, 100, 511, 513, 4096} {
		var chunks [][]byte
		for i := 0; i < len(stream); i += size {
			chunks = append(chunks, stream[i:min(i+size, len(stream))])
		}
		if got := decodeCopying(&Decoder{}, chunks...); !reflect.DeepEqual(got, whole) {
			t.Fatalf("reads of %d bytes, copied each call:\n got %+v\nwhole %+v", size, got, whole)
		}
	}
}

func TestDecodeUTF8NeedMoreLeavesInputAlone(t *testing.T) {
	b := frame(ws.OpText, true, strings.Repeat("€uro ", 300))
	orig := bytes.Clone(b)
	var d Decoder
	for i := 0; i < len(b); i++ {
		if _, n, err := d.Decode(b[:i]); err != ErrNeedMore || n != 0 {
			t.Fatalf("%d bytes: n=%d err=%v", i, n, err)
		}
	}
	if !bytes.Equal(b, orig) {
		t.Fatal("ErrNeedMore modified the input")
	}
	if m, n, err := d.Decode(b); err != nil || n != len(b) || string(m.Payload) != strings.Repeat("€uro ", 300) {
		t.Fatalf("whole frame: %d, %v", n, err)
	}
	if d.view().partialChecked != 0 {
		t.Errorf("partialChecked = %d after the frame, want 0", d.view().partialChecked)
	}
}

func TestDecodeUTF8OtherFrameNotTakenForThePartialOne(t *testing.T) {
	// A caller that gives up on a partial frame without Reset and decodes
	// another one must not have the other's text skipped.
	var d Decoder
	good := frame(ws.OpText, true, strings.Repeat("ok", 100))
	if _, _, err := d.Decode(good[:150]); err != ErrNeedMore {
		t.Fatal(err)
	}
	if d.view().partialChecked == 0 {
		t.Fatal("nothing checked of the partial frame")
	}
	bad := AppendMaskedFrame(nil, ws.OpText, true, [4]byte{1, 2, 3, 4}, []byte("\xff"+strings.Repeat("ok", 100)[1:]))
	if _, _, err := d.Decode(bad); !isClose(err, ws.StatusInvalidFramePayloadData) {
		t.Errorf("another frame of the same length: err = %v, want close 1007", err)
	}

	d.Reset()
	if _, _, err := d.Decode(good[:150]); err != ErrNeedMore {
		t.Fatal(err)
	}
	d.Reset()
	if d.view().partialChecked != 0 {
		t.Error("Reset kept the partial frame's state")
	}
}

func TestDecodeUTF8StateReset(t *testing.T) {
	tests := []struct {
		name   string
		stream []byte
	}{
		{name: "after a frame completes", stream: frame(ws.OpText, true, "héllo")},
		{name: "after a refused frame", stream: frame(ws.OpText, true, "h\xffllo")},
		{name: "after fragments complete", stream: join(frame(ws.OpText, false, "h\xc3"), frame(ws.OpContinuation, true, "\xa9llo"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Decoder
			errorOffset(t, &d, tt.stream)
			if d.view().partialChecked != 0 {
				t.Errorf("partialChecked = %d, want 0", d.view().partialChecked)
			}
		})
	}
}

// validRunePrefixes holds every proper prefix of the UTF-8 encoding of
// every valid code point: the naive reference for "more bytes could still
// make this UTF-8", built from utf8.EncodeRune and nothing of the decoder.
var validRunePrefixes = sync.OnceValue(func() map[string]bool {
	set := map[string]bool{}
	var b [utf8.UTFMax]byte
	for r := rune(0x80); r <= utf8.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		n := utf8.EncodeRune(b[:], r)
		for k := 1; k < n; k++ {
			set[string(b[:k])] = true
		}
	}
	return set
})

// naiveCanBeUTF8 reports whether some bytes appended to t would make it
// valid UTF-8: complete code points, then at most a proper prefix of one.
func naiveCanBeUTF8(t []byte) bool {
	for k := 0; k < utf8.UTFMax && k <= len(t); k++ {
		if utf8.Valid(t[:len(t)-k]) && (k == 0 || validRunePrefixes()[string(t[len(t)-k:])]) {
			return true
		}
	}
	return false
}

// FuzzDecodeUTF8 checks when a text message is refused against the naive
// reference: the message (text, split into two fragments at cut unless cut
// is 0) is delivered one byte at a time, and must be refused with 1007
// exactly when its text so far can no longer become UTF-8, or, if it ends
// inside a code point, when its last frame is in.
func FuzzDecodeUTF8(f *testing.F) {
	f.Add([]byte("hello"), uint16(0), uint32(0))
	f.Add([]byte("price \xe2\x82\xac!"), uint16(7), uint32(0xa1b2c3d4))
	f.Add([]byte("ab\xe2\x82A"), uint16(3), uint32(1))
	f.Add([]byte("\xf0\x9f\x98\x80\xf0\x9f"), uint16(2), uint32(7))
	f.Add([]byte("\xed\xa0\x80"), uint16(0), uint32(9))
	f.Add([]byte(strings.Repeat("é", 400)+"\xff"), uint16(301), uint32(42))
	f.Fuzz(func(t *testing.T, text []byte, cut uint16, maskBits uint32) {
		var mask [4]byte
		binary.LittleEndian.PutUint32(mask[:], maskBits)
		c := int(cut) % (len(text) + 1)
		var stream []byte
		var textAt []int // stream offset of each text byte
		add := func(op ws.OpCode, fin bool, p []byte) {
			fr := AppendMaskedFrame(nil, op, fin, mask, p)
			hs := len(fr) - len(p)
			for i := range p {
				textAt = append(textAt, len(stream)+hs+i)
			}
			stream = append(stream, fr...)
		}
		if c == 0 {
			add(ws.OpText, true, text)
		} else {
			add(ws.OpText, false, text[:c])
			add(ws.OpContinuation, true, text[c:])
		}

		want := -1
		if !naiveCanBeUTF8(text) {
			// The first text byte after which the text cannot become
			// UTF-8: text[:lo] can, text[:hi+1] cannot. The property is
			// monotone, so a binary search finds it.
			lo, hi := 0, len(text)-1
			for lo < hi {
				mid := (lo + hi) / 2
				if naiveCanBeUTF8(text[:mid+1]) {
					lo = mid + 1
				} else {
					hi = mid
				}
			}
			want = textAt[lo] + 1
		} else if !utf8.Valid(text) {
			want = len(stream)
		}

		at, err := errorOffset(t, &Decoder{}, stream)
		if at != want || (want >= 0 && !isClose(err, ws.StatusInvalidFramePayloadData)) {
			t.Fatalf("text %q cut at %d: error %v after %d of %d bytes, want 1007 after %d", text, c, err, at, len(stream), want)
		}
	})
}

// FuzzDecodeSplits checks that a stream read in arbitrary pieces (sizes
// from sizes, cycled; one byte each when sizes is empty) decodes exactly as
// it does whole, whether the caller keeps one buffer or hands Decode a fresh
// copy on every call.
func FuzzDecodeSplits(f *testing.F) {
	f.Add(frame(ws.OpText, true, "héllo wörld"), []byte{1, 2, 3}, uint16(0))
	f.Add(join(frame(ws.OpText, false, "he\xe2"), frame(ws.OpPing, true, "p"), frame(ws.OpContinuation, true, "\x82\xacllo")), []byte{5}, uint16(0))
	f.Add(frame(ws.OpText, true, strings.Repeat("😀", 200)), []byte{200, 7, 100}, uint16(0))
	f.Add(frame(ws.OpText, true, "ok\xf0\x9f\x41 and more"), []byte{9}, uint16(0))
	f.Add(join(frame(ws.OpBinary, false, "12"), frame(ws.OpContinuation, true, "345")), []byte{8, 1}, uint16(4))
	f.Fuzz(func(t *testing.T, b []byte, sizes []byte, maxMessage uint16) {
		whole := decodeStream(&Decoder{MaxMessage: int(maxMessage)}, b)
		// At most about 256 pieces: copying the buffer on every call costs
		// the square of their number.
		least := max(1, len(b)/256)
		var chunks [][]byte
		for i, k := 0, 0; i < len(b); k++ {
			size := least
			if len(sizes) > 0 {
				size = max(least, int(sizes[k%len(sizes)]))
			}
			chunks = append(chunks, b[i:min(i+size, len(b))])
			i += size
		}
		if got := decodeStream(&Decoder{MaxMessage: int(maxMessage)}, chunks...); !reflect.DeepEqual(got, whole) {
			t.Fatalf("in pieces %v:\n got %+v\nwhole %+v", sizes, got, whole)
		}
		if got := decodeCopying(&Decoder{MaxMessage: int(maxMessage)}, chunks...); !reflect.DeepEqual(got, whole) {
			t.Fatalf("in pieces %v, copied each call:\n got %+v\nwhole %+v", sizes, got, whole)
		}
	})
}
