//go:build !race

package codec

import (
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
