package main

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/revurb/revurb/codec"
)

// TestHistQuantile checks the histogram against exact percentiles of the
// same samples (the naive reference): within one bucket width (≤1.6%).
func TestHistQuantile(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h hist
	var us []float64
	for range 100_000 {
		v := time.Duration(r.ExpFloat64()*5e6) + time.Microsecond // mean 5 ms
		h.record(v)
		us = append(us, float64(v/time.Microsecond))
	}
	slices.Sort(us)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := us[int(q*float64(len(us)))-1]
		got := h.quantile(q)
		if d := (got - want) / want; d > 0.02 || d < -0.02 {
			t.Errorf("q%.3f = %.0f µs, want %.0f µs (%.1f%% off)", q, got, want, d*100)
		}
	}
	if got, want := float64(h.max.Load()), us[len(us)-1]; got != want {
		t.Errorf("max = %.0f, want %.0f", got, want)
	}
}

func TestHistBuckets(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1 << 20, 1<<63 - 1, 1<<64 - 1} {
		i := bucketOf(v)
		if i >= nBuckets || i < prev {
			t.Fatalf("bucketOf(%d) = %d (prev %d, n %d)", v, i, prev, nBuckets)
		}
		prev = i
		lo, w := bucketRange(i)
		if v < lo || v-lo >= w {
			t.Errorf("value %d outside its bucket %d [%d, +%d)", v, i, lo, w)
		}
	}
}

// TestHistJSONMerge checks that a histogram survives the children's JSON
// and merges exactly.
func TestHistJSONMerge(t *testing.T) {
	var a, b hist
	for i := range 1000 {
		a.record(time.Duration(i) * time.Millisecond)
		b.record(time.Duration(i) * time.Microsecond)
	}
	raw, err := json.Marshal(&a)
	if err != nil {
		t.Fatal(err)
	}
	var back hist
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	back.merge(&b)
	var want hist
	want.merge(&a)
	want.merge(&b)
	for _, q := range []float64{0, 0.5, 0.99, 1} {
		if g, w := back.quantile(q), want.quantile(q); g != w {
			t.Errorf("q%v: %v after JSON, %v direct", q, g, w)
		}
	}
	if back.count() != 2000 {
		t.Errorf("count %d", back.count())
	}
}

// TestSign checks the API signature with the worked example of the Pusher
// HTTP API reference.
func TestSign(t *testing.T) {
	body := `{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}`
	sum := md5.Sum([]byte(body))
	if got := hex.EncodeToString(sum[:]); got != "ec365a775a4cd0599faeb73354201b6f" {
		t.Fatalf("body_md5 %s", got)
	}
	q := signedQuery("278d425bdf160c739803", "7ad3773142a6692b25b8", "POST", "/apps/3/events", []byte(body), time.Unix(1353088179, 0))
	want := "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f" +
		"&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
	if q != want {
		t.Errorf("query\n got %s\nwant %s", q, want)
	}
}

// serverFrame builds an unmasked server frame.
func serverFrame(op ws.OpCode, fin bool, p []byte) []byte {
	var b bytes.Buffer
	if err := ws.WriteHeader(&b, ws.Header{Fin: fin, OpCode: op, Length: int64(len(p))}); err != nil {
		panic(err)
	}
	b.Write(p)
	return b.Bytes()
}

// oneByteReader hands out one byte per Read, the worst split of a stream.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) { return o.r.Read(p[:min(1, len(p))]) }

func TestReadMessage(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 70_000) // 64-bit length, over the read buffer
	mid := bytes.Repeat([]byte("y"), 300)    // 16-bit length
	var stream []byte
	stream = append(stream, serverFrame(ws.OpText, true, []byte(`{"event":"a"}`))...)
	stream = append(stream, serverFrame(ws.OpText, true, mid)...)
	stream = append(stream, serverFrame(ws.OpText, false, []byte("frag1-"))...)
	stream = append(stream, serverFrame(ws.OpPing, true, []byte("p"))...)
	stream = append(stream, serverFrame(ws.OpContinuation, true, []byte("frag2"))...)
	stream = append(stream, serverFrame(ws.OpBinary, true, big)...)
	stream = append(stream, serverFrame(ws.OpClose, true, []byte{0x0f, 0xa0})...)
	want := []struct {
		op ws.OpCode
		p  []byte
	}{
		{ws.OpText, []byte(`{"event":"a"}`)},
		{ws.OpText, mid},
		{ws.OpPing, []byte("p")},
		{ws.OpText, []byte("frag1-frag2")},
		{ws.OpBinary, big},
		{ws.OpClose, []byte{0x0f, 0xa0}},
	}
	for _, tc := range []struct {
		name string
		r    io.Reader
	}{
		{name: "whole", r: bytes.NewReader(stream)},
		{name: "byte by byte", r: oneByteReader{bytes.NewReader(stream)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &wsConn{br: bufio.NewReaderSize(tc.r, 256)}
			for i, w := range want {
				op, p, err := c.readMessage()
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if op != w.op || !bytes.Equal(p, w.p) {
					t.Fatalf("message %d: op %v len %d, want op %v len %d", i, op, len(p), w.op, len(w.p))
				}
			}
			if _, _, err := c.readMessage(); err != io.EOF {
				t.Fatalf("after the last frame: %v, want EOF", err)
			}
			if got := closeCode(want[len(want)-1].p); got != 4000 {
				t.Errorf("close code %d", got)
			}
		})
	}
}

func TestReadMessageRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{name: "masked", frame: codec.AppendMaskedFrame(nil, ws.OpText, true, [4]byte{1, 2, 3, 4}, []byte("hi"))},
		{name: "reserved bits", frame: []byte{0xc1, 0x00}},
		{name: "reserved opcode", frame: []byte{0x83, 0x00}},
		{name: "fragmented ping", frame: []byte{0x09, 0x00}},
		{name: "long control", frame: append([]byte{0x89, 126, 0, 126}, make([]byte, 126)...)},
		{name: "non-minimal 16-bit", frame: append([]byte{0x81, 126, 0, 5}, "hello"...)},
		{name: "orphan continuation", frame: []byte{0x80, 0x00}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &wsConn{br: bufio.NewReaderSize(bytes.NewReader(tc.frame), 256)}
			_, _, err := c.readMessage()
			var fe errFrame
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a frame error", err)
			}
		})
	}
}

// TestHandshake runs the client handshake against a minimal server that
// answers with the RFC 6455 accept key and then the first Pusher message.
func TestHandshake(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		if _, err := ws.Upgrade(nc); err != nil {
			return
		}
		nc.Write(serverFrame(ws.OpText, true, []byte(`{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.2\",\"activity_timeout\":120}"}`)))
		io.Copy(io.Discard, nc)
	}()
	c, err := dialWS(t.Context(), nil, ln.Addr().String(), "/app/k?protocol=7", 512, nil, false, time.Now().Add(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.abort()
	op, p, err := c.readMessage()
	if err != nil || op != ws.OpText || !strings.Contains(string(p), "1.2") {
		t.Fatalf("first message %v %q %v", op, p, err)
	}
}

func TestSourceAddr(t *testing.T) {
	for _, tc := range []struct {
		first, i int
		want     string
	}{
		{first: 2, i: 0, want: "127.0.0.2"},
		{first: 2, i: 252, want: "127.0.0.254"},
		{first: 2, i: 253, want: "127.0.1.1"},
		{first: 250, i: 10, want: "127.0.1.6"},
	} {
		if got := sourceAddr(tc.first, tc.i).IP.String(); got != tc.want {
			t.Errorf("sourceAddr(%d, %d) = %s, want %s", tc.first, tc.i, got, tc.want)
		}
	}
}

func TestEventData(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    eventData
		size int
		want string
	}{
		{name: "unpadded", d: eventData{t: 5, id: 7, pub: 2, seq: 3}, want: "t=5;i=7;pub=2;seq=3"},
		{name: "padded", d: eventData{t: 5, id: 7, pub: 2, seq: 3}, size: 30, want: "t=5;i=7;pub=2;seq=3;p=xxxxxxxx"},
		{name: "too short to pad", d: eventData{t: 5, id: 7, pub: 2, seq: 3}, size: 21, want: "t=5;i=7;pub=2;seq=3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(appendData(nil, tc.d, tc.size))
			if got != tc.want {
				t.Fatalf("appendData = %q, want %q", got, tc.want)
			}
			if tc.want[len(tc.want)-1] == 'x' && len(got) != tc.size {
				t.Errorf("len %d, want %d", len(got), tc.size)
			}
			// As the server sends it: inside a JSON string after "data".
			msg := []byte(`{"event":"perf-event","channel":"perf-3","data":"` + got + `"}`)
			back, ok := parseEventData(msg)
			if !ok || back != tc.d {
				t.Errorf("parseEventData = %+v %v, want %+v", back, ok, tc.d)
			}
		})
	}
	for _, bad := range []string{
		`{"event":"perf-event","channel":"perf"}`,
		`{"event":"perf-event","data":"t=1;i=2"}`,
		`{"event":"perf-event","data":"t=1;i=;pub=0;seq=0"}`,
		`{"event":"perf-event","data":"i=2;pub=0;seq=0"}`,
	} {
		if d, ok := parseEventData([]byte(bad)); ok {
			t.Errorf("parseEventData(%s) = %+v, want failure", bad, d)
		}
	}
	// 1700000000123456789 ns: a real send time survives.
	d := eventData{t: 1700000000123456789, id: 42, pub: 7, seq: 9}
	if back, ok := parseEventData(appendData([]byte(`"data":"`), d, 1024)); !ok || back != d {
		t.Errorf("1 KiB event: %+v %v", back, ok)
	}
}

// TestDeliveryLog checks the per-publisher ordering rule: events of
// different publishers may interleave in any way, but one publisher's
// events must arrive in the order it numbered them.
func TestDeliveryLog(t *testing.T) {
	ev := func(id, pub, seq int64) eventData { return eventData{id: id, pub: pub, seq: seq} }
	for _, tc := range []struct {
		name                              string
		deliveries                        []eventData
		delivered, dups, reordered, unexp int64
	}{
		{
			name:       "two publishers interleaved, each in order",
			deliveries: []eventData{ev(1, 1, 0), ev(0, 0, 0), ev(3, 1, 1), ev(2, 0, 1), ev(4, 0, 2)},
			delivered:  5,
		},
		{
			name:       "global ids out of order across publishers is fine",
			deliveries: []eventData{ev(5, 1, 2), ev(0, 0, 0), ev(1, 0, 1)},
			delivered:  3,
		},
		{
			name:       "one publisher reordered",
			deliveries: []eventData{ev(0, 0, 0), ev(2, 0, 2), ev(1, 0, 1), ev(3, 0, 3)},
			delivered:  4, reordered: 1,
		},
		{
			name:       "a late event after two later ones counts once; later ones are not reordered",
			deliveries: []eventData{ev(1, 0, 1), ev(2, 0, 2), ev(0, 0, 0)},
			delivered:  3, reordered: 1,
		},
		{
			name:       "duplicate",
			deliveries: []eventData{ev(0, 0, 0), ev(0, 0, 0), ev(1, 0, 1)},
			delivered:  2, dups: 1,
		},
		{
			name:       "id or publisher outside the run",
			deliveries: []eventData{ev(10, 0, 0), ev(-1, 0, 0), ev(1, 2, 0), ev(1, -1, 0), ev(1, 1, 0)},
			delivered:  1, unexp: 4,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l deliveryLog
			var n int64
			for _, d := range tc.deliveries {
				if l.observe(d, 10, 2) == delivered {
					n++
				}
			}
			if n != tc.delivered || l.duplicates != tc.dups || l.outOfOrder != tc.reordered || l.unexpected != tc.unexp {
				t.Errorf("delivered %d dup %d reordered %d unexpected %d, want %d %d %d %d",
					n, l.duplicates, l.outOfOrder, l.unexpected, tc.delivered, tc.dups, tc.reordered, tc.unexp)
			}
		})
	}
}

// TestDeliveryLogFailed checks the bitset arithmetic that separates
// deliveries of events whose trigger failed.
func TestDeliveryLogFailed(t *testing.T) {
	var l deliveryLog
	for _, id := range []int64{0, 3, 63, 64, 130} {
		l.observe(eventData{id: id}, 200, 1)
	}
	set := bitsetOf([]int{3, 64, 65, 199, 500, -1}, 200)
	if got := l.countIn(set); got != 2 {
		t.Errorf("countIn = %d, want 2 (ids 3 and 64)", got)
	}
	if bitsetOf(nil, 200) != nil {
		t.Error("bitsetOf(nil) is not nil")
	}
	if !l.has(130) || l.has(131) || l.has(-1) || l.has(10_000) {
		t.Error("has")
	}
}

func TestChannels(t *testing.T) {
	if got := channelName("perf", 0, 1); got != "perf" {
		t.Errorf("one channel: %q", got)
	}
	if got := channelName("perf", 7, 10); got != "perf-7" {
		t.Errorf("channel 7 of 10: %q", got)
	}
	// Publishers cycle: each channel gets every K-th event.
	per := make([]int, 3)
	for id := range int64(10) {
		per[channelOf(id, 3)]++
	}
	if !slices.Equal(per, []int{4, 3, 3}) {
		t.Errorf("events per channel %v", per)
	}
	// 4 sockets on channel 0, 3 on 1, none on 2.
	if got := expectedDeliveries([]int64{4, 3, 0}, []int{4, 3, 3}); got != 4*4+3*3 {
		t.Errorf("expected %d", got)
	}
	if got := expectedDeliveries([]int64{4, 3}, nil); got != 0 {
		t.Errorf("nothing published: expected %d", got)
	}
}
