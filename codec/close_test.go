package codec

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

func TestDecodeValidCloseCodes(t *testing.T) {
	var codes []uint16
	for c := uint16(1000); c <= 1003; c++ {
		codes = append(codes, c)
	}
	for c := uint16(1007); c <= 1014; c++ {
		codes = append(codes, c)
	}
	codes = append(codes, 3000, 3999, 4000, 4999)
	for _, code := range codes {
		t.Run(strconv.Itoa(int(code)), func(t *testing.T) {
			var d Decoder
			m, _, err := d.Decode(frame(ws.OpClose, true, closeBody(code, "r")))
			if err != nil {
				t.Fatal(err)
			}
			if m.Op != ws.OpClose || m.CloseCode != ws.StatusCode(code) || string(m.CloseReason) != "r" {
				t.Errorf("got %+v", m)
			}
		})
	}
}

func TestCloseErrorError(t *testing.T) {
	e := &CloseError{Code: ws.StatusProtocolError, Reason: "client frame not masked"}
	if got, want := e.Error(), "codec: client frame not masked (close 1002)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestAppendCloseFrame(t *testing.T) {
	tests := []struct {
		name   string
		code   ws.StatusCode
		reason string
		want   []byte
	}{
		{name: "code only", code: 1000, want: []byte{0x88, 2, 0x03, 0xe8}},
		{name: "code and reason", code: 4001, reason: "app", want: []byte{0x88, 5, 0x0f, 0xa1, 'a', 'p', 'p'}},
		{name: "no code", code: 0, reason: "ignored", want: []byte{0x88, 0}},
		{name: "1005 is never sent", code: ws.StatusNoStatusRcvd, reason: "ignored", want: []byte{0x88, 0}},
		{
			name:   "long reason truncated",
			code:   1008,
			reason: strings.Repeat("r", 200),
			want:   append([]byte{0x88, 125, 0x03, 0xf0}, strings.Repeat("r", 123)...),
		},
		{
			name:   "truncated on a code point boundary",
			code:   1008,
			reason: strings.Repeat("é", 100),
			want:   append([]byte{0x88, 124, 0x03, 0xf0}, strings.Repeat("é", 61)...),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendCloseFrame(nil, tt.code, tt.reason)
			if !bytes.Equal(got, tt.want) {
				t.Errorf("got  % x\nwant % x", got, tt.want)
			}
		})
	}
}
