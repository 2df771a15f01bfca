package main

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// fakeServer is a minimal Pusher server for the load generator's own
// tests: public channels, pusher:subscribe, and POST /apps/{id}/events
// (signature not checked) broadcast to the channel's sockets. Its hooks
// misbehave on purpose, so that the report can be checked against what the
// server really did.
type fakeServer struct {
	// wsAddr and apiAddr list every listener, comma-separated: a fake
	// cluster of n nodes shares one channel table, so a trigger on any
	// node's API reaches every node's sockets.
	wsAddr, apiAddr string
	fakeHooks
	accepted []atomic.Int64 // WebSocket connections per node
	triggers []atomic.Int64 // API requests per node

	mu   sync.Mutex
	subs map[string][]*fakeConn
	held map[string][]byte
}

// fakeHooks are the fake server's deliberate faults.
type fakeHooks struct {
	// answer returns the HTTP status for event id and whether to deliver
	// it anyway; nil: 200 and deliver.
	answer func(id int64) (status int, deliver bool)
	// twice delivers event id two times.
	twice func(id int64) bool
	// hold delays event id until after the next event on its channel.
	hold func(id int64) bool
	// refuse closes the n-th WebSocket connection (from 1) at once.
	refuse func(n int64) bool
}

type fakeConn struct {
	mu sync.Mutex
	nc net.Conn
}

func (c *fakeConn) send(p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = wsutil.WriteServerMessage(c.nc, ws.OpText, p)
}

func startFakeServer(t *testing.T, hooks fakeHooks) *fakeServer {
	t.Helper()
	return startFakeCluster(t, hooks, 1)
}

// startFakeCluster starts a fake server with n WebSocket and n API
// listeners (nodes) over one channel table.
func startFakeCluster(t *testing.T, hooks fakeHooks, n int) *fakeServer {
	t.Helper()
	return startFakeNodes(t, hooks, n, nil)
}

// startFakeNodes is startFakeCluster whose listeners speak TLS with
// serverTLS when it is not nil (wss:// and https://).
func startFakeNodes(t *testing.T, hooks fakeHooks, n int, serverTLS *tls.Config) *fakeServer {
	t.Helper()
	f := &fakeServer{fakeHooks: hooks, subs: map[string][]*fakeConn{}, held: map[string][]byte{},
		accepted: make([]atomic.Int64, n), triggers: make([]atomic.Int64, n)}
	var conns sync.WaitGroup
	var closers []func()
	var wsAddrs, apiAddrs []string
	for node := range n {
		wsLn, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		apiLn, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if serverTLS != nil {
			wsLn, apiLn = tls.NewListener(wsLn, serverTLS), tls.NewListener(apiLn, serverTLS)
		}
		wsAddrs, apiAddrs = append(wsAddrs, wsLn.Addr().String()), append(apiAddrs, apiLn.Addr().String())
		go func() {
			for {
				nc, err := wsLn.Accept()
				if err != nil {
					return
				}
				if n := f.accepted[node].Add(1); f.refuse != nil && f.refuse(n) {
					nc.Close()
					continue
				}
				conns.Add(1)
				go func() {
					defer conns.Done()
					f.serveWS(nc)
				}()
			}
		}()
		api := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.triggers[node].Add(1)
			f.serveAPI(w, r)
		})}
		go func() { _ = api.Serve(apiLn) }()
		closers = append(closers, func() { wsLn.Close(); api.Close() })
	}
	f.wsAddr, f.apiAddr = strings.Join(wsAddrs, ","), strings.Join(apiAddrs, ",")
	t.Cleanup(func() {
		for _, c := range closers {
			c()
		}
		f.mu.Lock()
		for _, cs := range f.subs {
			for _, c := range cs {
				c.nc.Close()
			}
		}
		f.mu.Unlock()
		conns.Wait()
	})
	return f
}

func (f *fakeServer) serveWS(nc net.Conn) {
	defer nc.Close()
	if _, err := ws.Upgrade(nc); err != nil {
		return
	}
	c := &fakeConn{nc: nc}
	c.send([]byte(`{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.1\",\"activity_timeout\":120}"}`))
	for {
		p, op, err := wsutil.ReadClientData(nc)
		if err != nil {
			return
		}
		if op != ws.OpText {
			continue
		}
		var m struct {
			Event string `json:"event"`
			Data  struct {
				Channel string `json:"channel"`
			} `json:"data"`
		}
		if json.Unmarshal(p, &m) != nil || m.Event != "pusher:subscribe" {
			continue
		}
		f.mu.Lock()
		f.subs[m.Data.Channel] = append(f.subs[m.Data.Channel], c)
		f.mu.Unlock()
		c.send([]byte(`{"event":"pusher_internal:subscription_succeeded","channel":"` + m.Data.Channel + `"}`))
	}
}

func (f *fakeServer) serveAPI(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var ev struct {
		Name, Channel, Data string
	}
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/events") || json.Unmarshal(body, &ev) != nil {
		http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
		return
	}
	d, _ := parseEventData([]byte(`"data":"` + ev.Data + `"`))
	status, deliver := http.StatusOK, true
	if f.answer != nil {
		status, deliver = f.answer(d.id)
	}
	frame, _ := json.Marshal(map[string]string{"event": ev.Name, "channel": ev.Channel, "data": ev.Data})
	f.mu.Lock()
	subs := f.subs[ev.Channel]
	var frames [][]byte
	switch {
	case !deliver:
	case f.hold != nil && f.hold(d.id):
		f.held[ev.Channel] = frame
	default:
		frames = append(frames, frame)
		if f.twice != nil && f.twice(d.id) {
			frames = append(frames, frame)
		}
		if h := f.held[ev.Channel]; h != nil {
			frames = append(frames, h)
			delete(f.held, ev.Channel)
		}
	}
	f.mu.Unlock()
	for _, p := range frames {
		for _, c := range subs {
			c.send(p)
		}
	}
	w.WriteHeader(status)
	io.WriteString(w, "{}")
}

// TestFanout runs the whole fanout mode in process against the fake
// server: 12 sockets on 3 channels (4 each), 40 events, closed loop. Event
// k goes to channel k mod 3, so channel 0 gets 14 events, 1 and 2 get 13.
func TestFanout(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		fake fakeHooks
		// what the report must say
		expected, delivered, lost, dups, reordered, deliveredFailed int64
		status                                                      map[string]int
	}{
		{
			name:     "clean, two publishers",
			args:     []string{"-publishers", "2"},
			expected: 160, delivered: 160,
			status: map[string]int{"200": 40},
		},
		{
			// 503 for ids 0, 10, 20, 30 (channels 0, 1, 2, 0), and 20 is
			// delivered in spite of it.
			name: "503s, one delivered anyway",
			args: []string{"-publishers", "2"},
			fake: fakeHooks{answer: func(id int64) (int, bool) {
				if id%10 == 0 {
					return http.StatusServiceUnavailable, id == 20
				}
				return http.StatusOK, true
			}},
			expected: 4 * 36, delivered: 4 * 36, deliveredFailed: 4,
			status: map[string]int{"200": 36, "503": 4},
		},
		{
			// ids 3, 10, 17, 24, 31, 38 twice, to 4 sockets each.
			name:     "duplicates",
			args:     []string{"-publishers", "2"},
			fake:     fakeHooks{twice: func(id int64) bool { return id%7 == 3 }},
			expected: 160, delivered: 160, dups: 24,
			status: map[string]int{"200": 40},
		},
		{
			// Event 5 (channel 2) arrives after event 8 of the same
			// publisher, at its 4 sockets.
			name:     "one publisher reordered",
			args:     []string{"-publishers", "1"},
			fake:     fakeHooks{hold: func(id int64) bool { return id == 5 }},
			expected: 160, delivered: 160, reordered: 4,
			status: map[string]int{"200": 40},
		},
		{
			// Event 39, the last (channel 0), is held and never sent: lost
			// at its 4 sockets.
			name:     "lost",
			args:     []string{"-publishers", "1"},
			fake:     fakeHooks{hold: func(id int64) bool { return id == 39 }},
			expected: 160, delivered: 156, lost: 4,
			status: map[string]int{"200": 40},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startFakeServer(t, tc.fake)
			args := append([]string{"-ws", srv.wsAddr, "-api", srv.apiAddr, "-conns", "12", "-channels", "3",
				"-closed", "-events", "40", "-quiet", "-duration", "20s", "-drain", "1s"}, tc.args...)
			cfg, err := parseFlags(args)
			if err != nil {
				t.Fatal(err)
			}
			rep := coordinate(cfg)
			for _, c := range []struct {
				name      string
				got, want int64
			}{
				{"subscribed", rep.Subscribed, 12},
				{"expected", rep.Expected, tc.expected},
				{"delivered", rep.Delivered, tc.delivered},
				{"lost", rep.Lost, tc.lost},
				{"duplicates", rep.Duplicates, tc.dups},
				{"out of order", rep.OutOfOrder, tc.reordered},
				{"delivered of failed triggers", rep.DeliveredFailed, tc.deliveredFailed},
				{"unexpected", rep.Unexpected, 0},
				{"wrong channel", rep.WrongChannel, 0},
				{"latency samples", int64(rep.Latency.count()), tc.delivered + tc.deliveredFailed},
			} {
				if c.got != c.want {
					t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
				}
			}
			if len(rep.PublishStatus) != len(tc.status) {
				t.Errorf("trigger status %v, want %v", rep.PublishStatus, tc.status)
			}
			for k, v := range tc.status {
				if rep.PublishStatus[k] != v {
					t.Errorf("trigger status %v, want %v", rep.PublishStatus, tc.status)
				}
			}
			if t.Failed() {
				var b strings.Builder
				rep.writeTable(&b)
				t.Log("\n" + b.String())
			}
		})
	}
}

// TestIdle runs idle mode against the fake server, with this test process
// standing in for the server's pid.
func TestIdle(t *testing.T) {
	srv := startFakeServer(t, fakeHooks{})
	cfg, err := parseFlags([]string{"-mode", "idle", "-ws", srv.wsAddr, "-api", srv.apiAddr, "-conns", "20",
		"-settle", "200ms", "-samples", "4", "-pid", strconv.Itoa(os.Getpid()), "-quiet", "-duration", "20s"})
	if err != nil {
		t.Fatal(err)
	}
	rep := coordinate(cfg)
	if rep.Subscribed != 20 || rep.Expected != 0 || rep.Delivered != 0 {
		t.Errorf("subscribed %d, expected %d, delivered %d", rep.Subscribed, rep.Expected, rep.Delivered)
	}
	if len(rep.Settle) != 4 || rep.Settle[3].AfterSec < 0.2 || rep.Settle[0].RSS == 0 {
		t.Errorf("settle samples %+v", rep.Settle)
	}
	if rep.BytesPerConnIdle != max(rep.BytesPerConn, rep.BytesPerConnSettled) || rep.RSSPeak == 0 {
		t.Errorf("headline %v from %v and %v, peak %d", rep.BytesPerConnIdle, rep.BytesPerConn, rep.BytesPerConnSettled, rep.RSSPeak)
	}
}

// TestFanoutCluster spreads 12 sockets over a fake cluster of 3 nodes and
// 3 publishers over their APIs: 4 sockets per node, one publisher per
// API, every event to every socket whichever node it was triggered on;
// the per-target figures add up to the totals.
func TestFanoutCluster(t *testing.T) {
	srv := startFakeCluster(t, fakeHooks{}, 3)
	cfg, err := parseFlags([]string{"-ws", srv.wsAddr, "-api", srv.apiAddr, "-conns", "12",
		"-closed", "-publishers", "3", "-events", "30", "-quiet", "-duration", "20s", "-drain", "2s"})
	if err != nil {
		t.Fatal(err)
	}
	rep := coordinate(cfg)
	if rep.Subscribed != 12 || rep.Expected != 360 || rep.Delivered != 360 || rep.Lost != 0 || rep.SocketsExact != 12 {
		t.Errorf("subscribed %d, expected %d, delivered %d, lost %d, exact sockets %d; want 12, 360, 360, 0, 12",
			rep.Subscribed, rep.Expected, rep.Delivered, rep.Lost, rep.SocketsExact)
	}
	if len(rep.Targets) != 3 {
		t.Fatalf("%d targets, want 3", len(rep.Targets))
	}
	var triggers int64
	for i, tg := range rep.Targets {
		if want := strings.Split(srv.wsAddr, ",")[i]; tg.Addr != want {
			t.Errorf("target %d is %s, want %s", i, tg.Addr, want)
		}
		if tg.Conns != 4 || tg.Subscribed != 4 || tg.Expected != 120 || tg.Delivered != 120 || tg.SocketsExact != 4 ||
			tg.Latency.count() != 120 {
			t.Errorf("target %s: %d conns, %d subscribed, %d of %d delivered, %d exact, %d latencies; want 4, 4, 120 of 120, 4, 120",
				tg.Addr, tg.Conns, tg.Subscribed, tg.Delivered, tg.Expected, tg.SocketsExact, tg.Latency.count())
		}
		if n := srv.accepted[i].Load(); n != 4 {
			t.Errorf("node %d accepted %d sockets, want 4", i, n)
		}
		// Publishers take the next event as they go, so each
		// sends about 10; each has its own API.
		triggers += srv.triggers[i].Load()
		if srv.triggers[i].Load() == 0 {
			t.Errorf("node %d got no trigger", i)
		}
	}
	if triggers != 30 {
		t.Errorf("%d triggers in all, want 30", triggers)
	}
	if t.Failed() {
		var b strings.Builder
		rep.writeTable(&b)
		t.Log("\n" + b.String())
	}
}
