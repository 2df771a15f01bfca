//go:build !race

package codec

import (
	"bytes"
	"testing"

	"github.com/gobwas/ws"
)

// The race detector allocates on its own, so these run without it.

func TestDecodeAllocs(t *testing.T) {
	frame := AppendMaskedFrame(nil, ws.OpText, true, asciiMask, []byte(`{"event":"pusher:ping","data":{}}`))
	var d Decoder
	allocs := testing.AllocsPerRun(1000, func() {
		if _, _, err := d.Decode(frame); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Decode of an unfragmented masked text frame: %v allocations, want 0", allocs)
	}
}

func TestDecodePartialTextAllocs(t *testing.T) {
	// A text frame checked for UTF-8 as it arrives, in 1 KiB reads: the
	// decoder's memory of the frame in progress comes from a pool for the
	// frame and goes back when it is in (an idle decoder holds none), so
	// nothing is allocated per read or per frame.
	frame := AppendMaskedFrame(nil, ws.OpText, true, asciiMask, bytes.Repeat([]byte("ünïcödé "), 1<<10))
	var d Decoder
	allocs := testing.AllocsPerRun(100, func() {
		for end := 1 << 10; end < len(frame); end += 1 << 10 {
			if _, _, err := d.Decode(frame[:end]); err != ErrNeedMore {
				t.Fatal(err)
			}
		}
		d.Reset()
	})
	if allocs != 0 {
		t.Errorf("Decode of a partial text frame in 1 KiB reads: %v allocations, want 0", allocs)
	}
}

func TestDecodeControlAllocs(t *testing.T) {
	ping := AppendMaskedFrame(nil, ws.OpPing, true, asciiMask, []byte("p"))
	var d Decoder
	allocs := testing.AllocsPerRun(1000, func() {
		if _, _, err := d.Decode(ping); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Decode of a ping: %v allocations, want 0", allocs)
	}
}

func TestAppendAllocs(t *testing.T) {
	payload := []byte(`{"event":"e","channel":"c","data":"{}"}`)
	dst := make([]byte, 0, 512)
	tests := []struct {
		name string
		f    func()
	}{
		{name: "AppendFrame", f: func() { dst = AppendFrame(dst[:0], ws.OpText, payload) }},
		{name: "AppendFrameHeader", f: func() { dst = AppendFrameHeader(dst[:0], ws.OpText, 70000) }},
		{name: "AppendCloseFrame", f: func() { dst = AppendCloseFrame(dst[:0], ws.StatusGoingAway, "shutting down") }},
		{name: "AppendUpgradeResponse", f: func() { dst = AppendUpgradeResponse(dst[:0], rfcKey) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if allocs := testing.AllocsPerRun(100, tt.f); allocs != 0 {
				t.Errorf("%v allocations, want 0", allocs)
			}
		})
	}
}

// TestHandshakeParseAllocs: an upgrade request is parsed in place, its
// fields aliasing the buffer, without allocating.
func TestHandshakeParseAllocs(t *testing.T) {
	b := request(pusherRequest...)
	allocs := testing.AllocsPerRun(100, func() {
		var h Handshake
		if _, _, err := h.Parse(b); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Parse of pusher-js's upgrade request: %v allocations, want 0", allocs)
	}
}
