package main

// End-to-end tests of the HTTP API under slow and greedy clients: while
// they flood the API from other loopback addresses (127.0.0.2 and up, as
// other machines would), a bystander app's signed triggers, through the
// pusher SDK, and GET /up are all answered.

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// floodAddrs are the loopback addresses the floods come from: ten, more
// than enough for their connections, api_connections_per_address (16 by
// default) from each, to want more than all of the API's 128 slots.
func floodAddrs() []string {
	var out []string
	for i := 2; i < 12; i++ {
		out = append(out, "127.0.0."+strconv.Itoa(i))
	}
	return out
}

// flood is one kind of greedy client, run n times over floodAddrs until
// ctx ends; progress counts what shows that it is at work, and ready is
// the progress after which the bystander goes.
type flood struct {
	name  string
	n     int
	run   func(ctx context.Context, srv *server, local string, progress *atomic.Int64)
	ready int64 // progress that says the flood is in full swing
}

// TestAPIUnderGreedyClients: 1,000 slowloris connections (headers a byte
// at a time), 130 silent connections, and 200 keep-alive publishers
// flooding another app — each from other addresses than the bystander,
// each reconnecting when closed — do not keep the bystander app's
// triggers or GET /up from being answered 200, every one of them, nor its
// events from being delivered. It runs on its own, not in parallel with
// other tests: the floods are meant to load the server, not the others.
func TestAPIUnderGreedyClients(t *testing.T) {
	needNode(t)
	floods := []flood{
		{name: "slowloris", n: 1000, run: slowloris, ready: 1000},
		{name: "silent", n: 130, run: silent, ready: 130},
		{name: "keep-alive publishers", n: 200, run: publisher, ready: 500},
	}
	for _, f := range floods {
		t.Run(f.name, func(t *testing.T) {
			srv := startServer(t, serverConfig{Args: []string{"--config", twoApps(t)}})
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var progress atomic.Int64
			addrs := floodAddrs()
			for i := range f.n {
				wg.Go(func() { f.run(ctx, srv, addrs[i%len(addrs)], &progress) })
			}
			stop := func() {
				cancel()
				wg.Wait()
			}
			defer stop()
			deadline := time.Now().Add(10 * time.Second)
			for progress.Load() < f.ready {
				if time.Now().After(deadline) {
					t.Fatalf("the flood did not get going: %d of %d", progress.Load(), f.ready)
				}
				time.Sleep(10 * time.Millisecond)
			}
			env := srv.nodeEnv()
			env["TIMEOUT_MS"] = "25000"
			obs := runNode(t, "bystander.mjs", env)
			wantJSON(t, "subscribed", at(t, obs, "subscribed"), `"pusher:subscription_succeeded"`)
			wantJSON(t, "triggers", at(t, obs, "triggers"), `{"200":20}`)
			wantJSON(t, "GET /up", at(t, obs, "ups"), `{"200":20}`)
			wantJSON(t, "failures", at(t, obs, "failures"), `[]`)
			wantJSON(t, "events received", at(t, obs, "received"), `20`)
			t.Logf("the bystander's slowest request took %v ms", at(t, obs, "slowest_ms"))
			// The flood did fill the API: the server had to make room or
			// refuse.
			stop()
			m := scrape(t, "http://"+srv.apiAddr()+"/metrics")
			var pushed float64
			for _, name := range []string{"revurb_api_connections_ended_total", "revurb_api_connections_refused_total"} {
				for _, metric := range m[name].GetMetric() {
					pushed += metric.GetCounter().GetValue()
				}
			}
			if pushed == 0 {
				t.Errorf("no API connection was ended or refused: the flood never filled the API")
			}
		})
	}
}

// twoApps writes a config file with the bystander app (app-id, the one
// nodeEnv names) and the flooded one (flood).
func twoApps(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "revurb.yaml")
	body := "apps:\n  - {id: app-id, key: app-key, secret: app-secret}\n  - {id: flood, key: flood-key, secret: flood-secret}\n"
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// dialFrom dials the API from local, or returns nil when ctx ends first.
func dialFrom(ctx context.Context, srv *server, local string) net.Conn {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 2 * time.Second}
	for ctx.Err() == nil {
		if c, err := d.DialContext(ctx, "tcp", srv.apiAddr()); err == nil {
			return c
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// reconnecting runs hold on a connection to the API from local until the
// connection ends, and again on a new one a second later, until ctx ends.
// progress counts connections made.
func reconnecting(ctx context.Context, srv *server, local string, progress *atomic.Int64, hold func(net.Conn)) {
	for ctx.Err() == nil {
		c := dialFrom(ctx, srv, local)
		if c == nil {
			return
		}
		progress.Add(1)
		stop := context.AfterFunc(ctx, func() { c.Close() })
		hold(c)
		stop()
		c.Close()
		sleepCtx(ctx, time.Second)
	}
}

// slowloris sends a request's headers a byte at a time, every 100-300 ms,
// never ending them, on connections made again when closed.
func slowloris(ctx context.Context, srv *server, local string, progress *atomic.Int64) {
	line := "POST /apps/flood/events HTTP/1.1\r\nHost: x\r\n"
	reconnecting(ctx, srv, local, progress, func(c net.Conn) {
		for i := 0; ctx.Err() == nil; i++ {
			b := byte('x')
			if i < len(line) {
				b = line[i]
			}
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
			sleepCtx(ctx, time.Duration(100+rand.IntN(200))*time.Millisecond)
		}
	})
}

// silent sends nothing, on connections made again when closed.
func silent(ctx context.Context, srv *server, local string, progress *atomic.Int64) {
	reconnecting(ctx, srv, local, progress, func(c net.Conn) {
		_, _ = io.Copy(io.Discard, c) // until the server closes it
	})
}

// publisher triggers events on the flood app back to back on one
// keep-alive connection, reconnecting as needed, 50 ms after a failure or
// a 503. progress counts triggers answered 200.
func publisher(ctx context.Context, srv *server, local string, progress *atomic.Int64) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 2 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	body := `{"name":"e","channel":"flooded","data":"x"}`
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, "POST", signedURL(srv, "flood-key", "flood-secret", "POST", "/apps/flood/events", "", body), strings.NewReader(body))
		if err != nil {
			panic(err)
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		if err == nil && res.StatusCode == 200 {
			progress.Add(1)
			continue
		}
		sleepCtx(ctx, 50*time.Millisecond)
	}
}
