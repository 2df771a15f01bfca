package main

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPusherJSManyChannels: a pusher-js client on 500 channels gets every
// one of them, on connecting and again after its socket drops and it
// resubscribes them all at once, and each of them delivers an event after.
// pusher-js never retries a subscription, so a limit that dropped any of
// those messages would leave channels silent for good.
func TestPusherJSManyChannels(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverConfig{})
	env := srv.nodeEnv()
	env["CHANNELS"] = "500"
	env["TIMEOUT_MS"] = "25000"
	obs := runNode(t, "many_channels.mjs", env)
	for _, k := range []string{"first", "second", "delivered"} {
		if got := at(t, obs, k); got != float64(500) {
			t.Errorf("%s: %v of 500 channels", k, got)
		}
	}
	if got := at(t, obs, "errors"); got != float64(0) {
		t.Errorf("%v subscription errors", got)
	}
	wantJSON(t, "connection errors", at(t, obs, "pusherErrors"), `[]`)
	wantJSON(t, "trigger statuses", at(t, obs, "triggers"), `[200,200,200,200,200]`)
	ids := at(t, obs, "ids").([]any)
	if len(ids) != 2 || ids[0] == ids[1] {
		t.Errorf("socket ids %v: want a second connection", ids)
	}
}

// TestPingBurst: 1,000 pusher:ping in one write get 1,000 pusher:pong, and
// a subscribe sent after them is answered after the last pong.
func TestPingBurst(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverConfig{})
	w := dialWS(t, srv, defaultPath)
	w.expectEstablished()
	var b []byte
	for range 1000 {
		b = appendFrame(b, true, opText, []byte(`{"event":"pusher:ping","data":{}}`), true)
	}
	b = appendFrame(b, true, opText, []byte(`{"event":"pusher:subscribe","data":{"channel":"after-pings"}}`), true)
	w.write(b)
	for i := range 1000 {
		if m := w.readMessage(); m["event"] != "pusher:pong" {
			t.Fatalf("reply %d: %v, want pusher:pong", i, m)
		}
	}
	w.wantMessage("the subscribe after the pings", `{"event":"pusher_internal:subscription_succeeded","channel":"after-pings","data":"{}"}`)
}

// TestFloodedConnection: one connection sends 100,000 pings as fast as it
// can. Another connection's pings are all answered meanwhile; the flooder
// is read at its budget, gets nothing but pongs while what it has sent
// unread stays under the cap, and is closed with 4100 past it; the
// server's memory stays bounded.
func TestFloodedConnection(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverConfig{})
	rss0 := rssOf(t, srv.cmd.Process.Pid)
	flood := dialWS(t, srv, defaultPath)
	flood.expectEstablished()
	by := dialWS(t, srv, defaultPath)
	by.expectEstablished()

	var msgs []byte
	for range 100_000 {
		msgs = appendFrame(msgs, true, opText, []byte(`{"event":"pusher:ping","data":{}}`), true)
	}
	go writeIgnoringErrors(flood.c, msgs)

	var (
		mu     sync.Mutex
		pongs  int
		others []string
		code   = -1
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			f, err := flood.readFrame()
			if err != nil {
				return
			}
			mu.Lock()
			switch {
			case f.op == opClose && len(f.payload) >= 2:
				code = int(f.payload[0])<<8 | int(f.payload[1])
			case strings.Contains(string(f.payload), `"pusher:pong"`):
				pongs++
			default:
				others = append(others, string(f.payload))
			}
			mu.Unlock()
			if f.op == opClose {
				return
			}
		}
	}()
	var took []time.Duration
	for range 50 {
		start := time.Now()
		by.expectAlive()
		took = append(took, time.Since(start))
		time.Sleep(10 * time.Millisecond)
	}
	peak := rssOf(t, srv.cmd.Process.Pid)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the flooder was neither served to the end nor closed")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(others) > 0 {
		t.Fatalf("the flooder got %d frames other than pongs, first %s", len(others), others[0])
	}
	// 3.4 MB of pings pass the 1 MiB of unread input a connection may hold.
	if code != 4100 {
		t.Fatalf("flooder closed with %d after %d pongs, want 4100", code, pongs)
	}
	if pongs < 2100 {
		t.Fatalf("flooder got %d pongs before its close, want its burst of 2,100 at least", pongs)
	}
	if grew := peak - rss0; grew > 32<<20 {
		t.Fatalf("server RSS grew by %d MiB during the flood", grew>>20)
	}
	by.expectAlive()
	slices.Sort(took)
	t.Logf("bystander ping round trip during the flood: p50 %v, max %v; flooder got %d pongs before 4100; RSS %d → %d KiB",
		took[len(took)/2], took[len(took)-1], pongs, rss0>>10, peak>>10)
}

// rssOf is the resident memory of process pid, in bytes.
func rssOf(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
