package main

import (
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRestartWithoutDowntime is a rolling restart: a second revurb starts
// on the first one's ports (SO_REUSEPORT; its metrics and profile ports
// too) and says it shares them, then the
// first gets SIGTERM while a backend triggers back to back over keep-alive
// and pusher-js clients listen. No trigger fails; every event acknowledged
// before the signal reaches every client; every client reconnects, to the
// second process, and gets what is published there; the first exits within
// its grace period. Over ws:// and, both processes serving one certificate,
// over wss://.
func TestRestartWithoutDowntime(t *testing.T) {
	t.Parallel()
	for _, scheme := range []string{"ws", "wss"} {
		t.Run(scheme, func(t *testing.T) {
			t.Parallel()
			testRestart(t, scheme)
		})
	}
}

func testRestart(t *testing.T, scheme string) {
	// The metrics and profile listeners are shared too, or the second
	// process could not start.
	extra := []string{"--metrics-addr", "127.0.0.1:" + strconv.Itoa(freePort(t)), "--pprof", "127.0.0.1:" + strconv.Itoa(freePort(t))}
	nodeEnv := map[string]string{"TIMEOUT_MS": "40000", "AFTER_MS": "3000"}
	if scheme == "wss" {
		p := newTestPKI(t)
		extra = append(extra, "--tls-cert", p.cert, "--tls-key", p.key)
		nodeEnv["TLS"], nodeEnv["NODE_EXTRA_CA_CERTS"] = "1", p.ca
	}
	first := startServer(t, serverConfig{Args: extra})
	ports := [2]int{first.wsPort, first.apiPort}

	nodeEnv["WS_PORT"], nodeEnv["API_PORT"] = strconv.Itoa(first.wsPort), strconv.Itoa(first.apiPort)
	sc := startScenario(t, "restart.mjs", nodeEnv, 50*time.Second)
	sc.await("ready")
	// acked reads lines until n acks have come, and returns the highest n
	// acknowledged 200 so far.
	highest := 0
	acked := func(n int) {
		t.Helper()
		for seen := 0; seen < n; {
			f := strings.Fields(sc.next())
			if len(f) == 3 && f[0] == "ack" {
				seen++
				if f[2] == "200" {
					highest, _ = strconv.Atoi(f[1])
				}
			}
		}
	}
	acked(30)

	second := startServer(t, serverConfig{Ports: &ports, Args: extra})
	if !strings.Contains(second.out.String(), sharedWarning) {
		t.Errorf("the second server did not say it shares the ports:\n%s", second.out.String())
	}
	acked(30)
	signalled := time.Now()
	first.terminated = true
	if err := first.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	before := highest // acknowledged before the signal
	sc.say("signalled")
	select {
	case <-first.exited:
		if took := time.Since(signalled); took > 10*time.Second {
			t.Errorf("the first server took %s to exit, over its 10 s grace", took)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the first server did not exit within 15 s of SIGTERM")
	}
	var obs struct {
		Clients []struct {
			IDs []string `json:"ids"`
			Got []int    `json:"got"`
		} `json:"clients"`
		Acks []struct {
			N      int     `json:"n"`
			Status int     `json:"status"`
			Error  *string `json:"error"`
		} `json:"acks"`
	}
	sc.result(&obs)
	for _, a := range obs.Acks {
		if a.Status != 200 {
			t.Fatalf("trigger %d failed during the restart: status %d, error %v", a.N, a.Status, a.Error)
		}
	}
	lastN := obs.Acks[len(obs.Acks)-1].N
	for i, c := range obs.Clients {
		for n := 1; n <= before; n++ {
			if !slices.Contains(c.Got, n) {
				t.Errorf("client %d: event %d, acknowledged before the signal, never arrived", i, n)
				break
			}
		}
		if len(c.IDs) < 2 || c.IDs[len(c.IDs)-1] == c.IDs[0] {
			t.Errorf("client %d did not reconnect: socket ids %v", i, c.IDs)
		}
		// The last 50 events were published a second or more after the
		// first server had gone: the client, on the second, got them all.
		for n := lastN - 50; n <= lastN; n++ {
			if !slices.Contains(c.Got, n) {
				t.Errorf("client %d: event %d, published after it reconnected, never arrived", i, n)
				break
			}
		}
		if !slices.IsSorted(c.Got) {
			t.Errorf("client %d got events out of order", i)
		}
	}
	t.Logf("%d triggers, %d acknowledged before the signal, all 200", len(obs.Acks), before)
}
