package main

// End-to-end tests of a cluster: a real redis-server, three revurb
// processes meeting at it, and pusher-js clients and the pusher SDK
// (testdata/cluster.mjs, driven one command at a time) on all of them.

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/revurb/revurb/pusher/redisbroker/redistest"
)

// startCluster starts n revurb nodes meeting at r, under a prefix of the
// test's own, each with the extra config-file lines given and the app's
// extra settings (", max_connections: 2").
func startCluster(t *testing.T, r *redistest.Server, n int, config, app string) []*server {
	t.Helper()
	return startNodes(t, r.URL(), n, config, app)
}

// startNodes starts n revurb nodes meeting at the Redis of url, as
// startCluster, with the environment env.
func startNodes(t *testing.T, url string, n int, config, app string, env ...string) []*server {
	t.Helper()
	file := filepath.Join(t.TempDir(), "revurb.yaml")
	body := config + "\napps:\n  - {id: app-id, key: app-key, secret: app-secret" + app + "}\n"
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	prefix := "e2e-" + strings.ReplaceAll(t.Name(), "/", "-")
	nodes := make([]*server, n)
	for i := range nodes {
		nodes[i] = startServer(t, serverConfig{Args: []string{"--config", file, "--redis", url, "--redis-prefix", prefix}, Env: env})
	}
	for i, s := range nodes {
		waitOutput(t, s, "cluster: node", "node "+strconv.Itoa(i)+" to join")
	}
	return nodes
}

func waitOutput(t *testing.T, s *server, text, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.out.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("waited for %s:\n%s", what, s.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// driver is testdata/cluster.mjs, running.
type driver struct {
	t     *testing.T
	stdin io.Writer
	mu    sync.Mutex
	seq   int
	lines chan map[string]any
}

func startDriver(t *testing.T, nodes []*server) *driver {
	t.Helper()
	node := needNode(t)
	var list []map[string]int
	for _, s := range nodes {
		list = append(list, map[string]int{"ws": s.wsPort, "api": s.apiPort})
	}
	nj, _ := json.Marshal(list)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, node, "cluster.mjs")
	cmd.Dir = "testdata"
	cmd.Env = append(os.Environ(), "NODES="+string(nj), "WS_PORT="+strconv.Itoa(nodes[0].wsPort), "API_PORT="+strconv.Itoa(nodes[0].apiPort))
	cmd.SysProcAttr = childProcAttr()
	cmd.WaitDelay = time.Second
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("driver stderr:\n%s", stderr.String())
		}
	})
	d := &driver{t: t, stdin: stdin, lines: make(chan map[string]any, 64)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				d.lines <- m
			}
		}
		close(d.lines)
	}()
	return d
}

// do runs one command and returns its reply.
func (d *driver) do(op string, args map[string]any) map[string]any {
	d.t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq++
	cmd := map[string]any{"op": op, "seq": d.seq}
	for k, v := range args {
		cmd[k] = v
	}
	b, _ := json.Marshal(cmd)
	if _, err := d.stdin.Write(append(b, '\n')); err != nil {
		d.t.Fatalf("driver: %v", err)
	}
	select {
	case m, ok := <-d.lines:
		if !ok {
			d.t.Fatal("driver exited")
		}
		if m["seq"] != float64(d.seq) {
			d.t.Fatalf("driver replied %v to %d", m, d.seq)
		}
		if m["exception"] != nil {
			d.t.Fatalf("driver, %s: %v", op, m["exception"])
		}
		return m
	case <-time.After(30 * time.Second):
		d.t.Fatalf("driver did not answer %s", op)
		return nil
	}
}

// events is the named events a client got, on channel if not "".
func (d *driver) events(id, event, channel string, count int) []map[string]any {
	d.t.Helper()
	args := map[string]any{"id": id, "event": event, "count": count, "ms": 15000}
	if channel != "" {
		args["channel"] = channel
	}
	r := d.do("wait", args)
	var out []map[string]any
	for _, e := range r["events"].([]any) {
		out = append(out, e.(map[string]any))
	}
	if r["ok"] != true {
		d.t.Fatalf("%s got %d %s events, want %d", id, len(out), event, count)
	}
	return out
}

// TestClusterDelivery: with three nodes (signing with a cluster secret of
// their own), an event triggered on any node
// reaches every subscriber on every node once, in order; socket_id
// exclusion works across nodes; client events reach the other members on
// every node and never echo.
func TestClusterDelivery(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	nodes := startCluster(t, r, 3, "cluster_secret: \"a secret of the cluster's own\"", "")
	d := startDriver(t, nodes)
	var ids []string
	for i := range nodes {
		id := "c" + strconv.Itoa(i)
		ids = append(ids, d.do("connect", map[string]any{"id": id, "node": i})["socket_id"].(string))
		d.do("subscribe", map[string]any{"id": id, "channel": "news"})
		d.do("subscribe", map[string]any{"id": id, "channel": "private-chat"})
	}
	const n = 40
	for i := 0; i < n; i++ {
		if r := d.do("trigger", map[string]any{"node": i % 3, "channel": "news", "event": "tick", "data": map[string]int{"n": i}}); r["status"] != float64(200) {
			t.Fatalf("trigger %d: %v", i, r)
		}
	}
	for i := range nodes {
		evs := d.events("c"+strconv.Itoa(i), "tick", "news", n)
		for k, e := range evs {
			if got := e["data"].(map[string]any)["n"]; got != float64(k) {
				t.Fatalf("c%d: event %d carries n=%v", i, k, got)
			}
		}
		if len(evs) != n {
			t.Fatalf("c%d got %d ticks", i, len(evs))
		}
	}
	d.do("trigger", map[string]any{"node": 0, "channel": "news", "event": "skip", "data": "x", "socket_id": ids[2]})
	d.do("trigger", map[string]any{"node": 0, "channel": "news", "event": "after", "data": "x"})
	d.events("c0", "skip", "news", 1)
	d.events("c1", "skip", "news", 1)
	d.events("c2", "after", "news", 1)
	if evs := d.do("wait", map[string]any{"id": "c2", "event": "skip", "ms": 0})["events"].([]any); len(evs) != 0 {
		t.Fatal("the socket excluded on another node got the event")
	}
	d.do("whisper", map[string]any{"id": "c0", "channel": "private-chat", "event": "client-typing", "data": map[string]string{"who": "c0"}})
	d.events("c1", "client-typing", "private-chat", 1)
	d.events("c2", "client-typing", "private-chat", 1)
	d.do("whisper", map[string]any{"id": "c1", "channel": "private-chat", "event": "client-done", "data": map[string]any{}})
	d.events("c0", "client-done", "private-chat", 1)
	if evs := d.do("wait", map[string]any{"id": "c0", "event": "client-typing", "ms": 0})["events"].([]any); len(evs) != 0 {
		t.Fatal("a client event echoed to its sender")
	}
}

// TestClusterPresenceAndUsers: a user connected to two nodes is one
// member — one member_added, one member_removed when its last connection
// anywhere leaves; the REST queries answer for the cluster from every
// node; watchlists, sendToUser and terminate_connections work across
// nodes.
func TestClusterPresenceAndUsers(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	nodes := startCluster(t, r, 3, "", "")
	d := startDriver(t, nodes)
	d.do("connect", map[string]any{"id": "watcher", "node": 2, "user": "watcher", "watch": []string{"ann"}})
	d.do("subscribe", map[string]any{"id": "watcher", "channel": "presence-room"})
	d.do("signin", map[string]any{"id": "watcher"})
	d.do("connect", map[string]any{"id": "ann0", "node": 0, "user": "ann", "info": map[string]string{"name": "Ann"}})
	d.do("subscribe", map[string]any{"id": "ann0", "channel": "presence-room"})
	d.do("signin", map[string]any{"id": "ann0"})
	// Each node reads the bus at its own pace: wait until node 1 knows of
	// both before ann's second connection joins there.
	waitFor(t, "node 1 to know watcher and ann", func() bool {
		r := d.do("get", map[string]any{"node": 1, "path": "/channels/presence-room/users"})
		return slices.Equal(userIDs(t, r), []any{"ann", "watcher"})
	})
	d.do("connect", map[string]any{"id": "ann1", "node": 1, "user": "ann", "info": map[string]string{"name": "Ann"}})
	sub := d.do("subscribe", map[string]any{"id": "ann1", "channel": "presence-room"})
	members := sub["data"].(map[string]any)["members"].(map[string]any)
	_, hasWatcher := members["watcher"]
	if len(members) != 2 || !hasWatcher || members["ann"] == nil {
		t.Fatalf("ann's second connection, on another node, sees members %v", members)
	}
	d.do("signin", map[string]any{"id": "ann1"})
	if added := d.events("watcher", "pusher:member_added", "presence-room", 1); len(added) != 1 {
		t.Fatalf("member_added %v", added)
	}
	// The REST queries, from every node.
	for i := range nodes {
		waitFor(t, "the cluster's counts on node "+strconv.Itoa(i), func() bool {
			r := d.do("get", map[string]any{"node": i, "path": "/channels/presence-room", "params": map[string]string{"info": "user_count,subscription_count"}})
			j, _ := r["json"].(map[string]any)
			return j["user_count"] == float64(2) && j["subscription_count"] == float64(3)
		})
		r := d.do("get", map[string]any{"node": i, "path": "/channels/presence-room/users"})
		if got := userIDs(t, r); !slices.Equal(got, []any{"ann", "watcher"}) {
			t.Fatalf("node %d users %v", i, got)
		}
		r = d.do("get", map[string]any{"node": i, "path": "/channels", "params": map[string]string{"filter_by_prefix": "presence-", "info": "user_count"}})
		if ch := r["json"].(map[string]any)["channels"].(map[string]any)["presence-room"]; ch == nil || ch.(map[string]any)["user_count"] != float64(2) {
			t.Fatalf("node %d channels %v", i, r["json"])
		}
	}
	// The watchlist heard of ann online once.
	waitFor(t, "the watchlist to hear of ann", func() bool {
		wl := d.do("seen", map[string]any{"id": "watcher"})["watchlist"].([]any)
		return len(wl) >= 1
	})
	// sendToUser from node 2 reaches both of ann's connections, on nodes 0
	// and 1.
	if r := d.do("sendToUser", map[string]any{"node": 2, "user": "ann", "event": "note", "data": map[string]int{"n": 1}}); r["status"] != float64(200) {
		t.Fatalf("sendToUser: %v", r)
	}
	for _, id := range []string{"ann0", "ann1"} {
		waitFor(t, id+" to get ann's note", func() bool {
			for _, e := range d.do("seen", map[string]any{"id": id})["user_events"].([]any) {
				if e.(map[string]any)["event"] == "note" {
					return true
				}
			}
			return false
		})
	}
	// One of ann's two connections leaves: she stays.
	d.do("disconnect", map[string]any{"id": "ann0"})
	d.do("trigger", map[string]any{"node": 1, "channel": "presence-room", "event": "mark", "data": "x"})
	d.events("watcher", "mark", "presence-room", 1)
	if removed := d.do("wait", map[string]any{"id": "watcher", "event": "pusher:member_removed", "ms": 0})["events"].([]any); len(removed) != 0 {
		t.Fatal("member_removed while ann still had a connection")
	}
	// terminate_connections from node 2 closes ann's connection on node 1.
	if r := d.do("terminate", map[string]any{"node": 2, "user": "ann"}); r["status"] != float64(200) {
		t.Fatalf("terminate: %v", r)
	}
	waitFor(t, "ann1 to be closed", func() bool {
		states := d.do("seen", map[string]any{"id": "ann1"})["states"].([]any)
		return slices.Contains(states, any("disconnected")) || slices.Contains(states, any("failed"))
	})
	if removed := d.events("watcher", "pusher:member_removed", "presence-room", 1); removed[0]["data"].(map[string]any)["id"] != "ann" {
		t.Fatalf("member_removed %v", removed)
	}
	waitFor(t, "the watchlist to hear ann went offline", func() bool {
		for _, e := range d.do("seen", map[string]any{"id": "watcher"})["watchlist"].([]any) {
			if e.(map[string]any)["name"] == "offline" {
				return true
			}
		}
		return false
	})
}

// TestClusterNodeDeath: a node killed with SIGKILL has its members removed
// by the others within the node timeout, with member_removed, and its
// counts dropped.
func TestClusterNodeDeath(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	nodes := startCluster(t, r, 3, "node_timeout: 3s", "")
	d := startDriver(t, nodes)
	d.do("connect", map[string]any{"id": "watcher", "node": 0, "user": "watcher"})
	d.do("subscribe", map[string]any{"id": "watcher", "channel": "presence-room"})
	d.do("connect", map[string]any{"id": "ghost", "node": 1, "user": "ghost"})
	d.do("subscribe", map[string]any{"id": "ghost", "channel": "presence-room"})
	d.events("watcher", "pusher:member_added", "presence-room", 1)
	nodes[1].terminated = true
	_ = nodes[1].cmd.Process.Signal(syscall.SIGKILL)
	<-nodes[1].exited
	killed := time.Now()
	removed := d.events("watcher", "pusher:member_removed", "presence-room", 1)
	if removed[0]["data"].(map[string]any)["id"] != "ghost" {
		t.Fatalf("member_removed %v", removed)
	}
	t.Logf("member_removed %s after the kill", time.Since(killed).Round(100*time.Millisecond))
	waitFor(t, "the dead node's counts dropped", func() bool {
		r := d.do("get", map[string]any{"node": 2, "path": "/channels/presence-room", "params": map[string]string{"info": "user_count,subscription_count"}})
		j, _ := r["json"].(map[string]any)
		return j["user_count"] == float64(1) && j["subscription_count"] == float64(1)
	})
}

// TestClusterMaxConnections: an app's max_connections counts every node's
// connections: with one open on each of two nodes and a cap of 2, a third
// is refused with 4004 on either node, and once one closes a new one is
// taken on the other node.
func TestClusterMaxConnections(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	nodes := startCluster(t, r, 2, "", ", max_connections: 2")
	count := func(node int) string {
		_, body := signedGet(t, nodes[node], "/apps/app-id/connections", "")
		return body
	}
	first, _ := joinApp(t, nodes[0], defaultRawApp)
	second, _ := joinApp(t, nodes[1], defaultRawApp)
	for i := range nodes {
		waitFor(t, "both connections counted on node "+strconv.Itoa(i), func() bool { return count(i) == `{"connections":2}` })
		dialWS(t, nodes[i], defaultRawApp.path()).expectErrorThenClose(4004)
	}
	first.expectAlive()
	second.c.Close()
	waitFor(t, "node 0 to learn node 1's connection closed", func() bool { return count(0) == `{"connections":1}` })
	joinApp(t, nodes[0], defaultRawApp)
}

// TestClusterRedisRestart: Redis killed while triggers flow: each node
// keeps delivering to its own clients and answers every trigger promptly;
// /up stays 200; once Redis is back (empty), delivery crosses nodes again
// and the members Redis lost are back for new subscribers.
func TestClusterRedisRestart(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	nodes := startCluster(t, r, 2, "", "")
	d := startDriver(t, nodes)
	d.do("connect", map[string]any{"id": "a", "node": 0, "user": "ann"})
	d.do("subscribe", map[string]any{"id": "a", "channel": "feed"})
	d.do("subscribe", map[string]any{"id": "a", "channel": "presence-room"})
	d.do("connect", map[string]any{"id": "b", "node": 1, "user": "bob"})
	d.do("subscribe", map[string]any{"id": "b", "channel": "feed"})

	r.Kill()
	waitOutput(t, nodes[0], "Redis is unreachable", "node 0 to see Redis gone")
	start := time.Now()
	if res := d.do("trigger", map[string]any{"node": 0, "channel": "feed", "event": "local", "data": "1"}); res["status"] != float64(200) {
		t.Fatalf("trigger with Redis gone: %v", res)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("a trigger took %s with Redis gone", took)
	}
	d.events("a", "local", "feed", 1)
	for _, s := range nodes {
		if res, err := statusOf("http://" + s.apiAddr() + "/up"); err != nil || res != 200 {
			t.Fatalf("/up with Redis gone: %d %v", res, err)
		}
	}

	r.Restart()
	for i, s := range nodes {
		waitOutput(t, s, "telling it this node's state again", "node "+strconv.Itoa(i)+" to tell Redis its state again")
	}
	waitFor(t, "delivery across nodes again", func() bool {
		d.do("trigger", map[string]any{"node": 0, "channel": "feed", "event": "again", "data": "1"})
		return d.do("wait", map[string]any{"id": "b", "event": "again", "ms": 300})["ok"] == true
	})
	waitFor(t, "ann, on node 0, back in node 1's view", func() bool {
		return slices.Equal(userIDs(t, d.do("get", map[string]any{"node": 1, "path": "/channels/presence-room/users"})), []any{"ann"})
	})
	d.do("subscribe", map[string]any{"id": "b", "channel": "presence-room"})
	seen := d.do("seen", map[string]any{"id": "b"})["events"].([]any)
	var members map[string]any
	for _, e := range seen {
		if m := e.(map[string]any); m["event"] == "pusher:subscription_succeeded" && m["channel"] == "presence-room" {
			members = m["data"].(map[string]any)["members"].(map[string]any)
		}
	}
	if _, ok := members["ann"]; !ok {
		t.Fatalf("bob, subscribing after Redis came back, sees %v", members)
	}
}

// statusOf returns the status of GET url.
func statusOf(url string) (int, error) {
	res, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// waitFor polls cond until it holds, failing the test after 20 s: the
// outcome is asserted, not how long it took.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20 s for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClusterWebhooks: in a cluster, channel_occupied, channel_vacated and
// member events are sent once for the cluster, not once per node; and the
// nodes' metrics say Redis is up.
func TestClusterWebhooks(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	h := newHookReceiver(t, 0)
	file := filepath.Join(t.TempDir(), "revurb.yaml")
	body := "webhook_delay: 300ms\napps:\n  - {id: app-id, key: app-key, secret: app-secret, webhooks: [{url: \"" + h.srv.URL + "/hook\", event_types: " + allHooks + "}]}\n"
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	var nodes []*server
	for range 2 {
		nodes = append(nodes, startServer(t, serverConfig{Args: []string{"--config", file, "--redis", r.URL(), "--redis-prefix", "hooks"}}))
	}
	for i, s := range nodes {
		waitOutput(t, s, "cluster: node", "node "+strconv.Itoa(i)+" to join")
	}
	d := startDriver(t, nodes)
	for i := range nodes {
		id := "ann" + strconv.Itoa(i)
		d.do("connect", map[string]any{"id": id, "node": i, "user": "ann"})
		d.do("subscribe", map[string]any{"id": id, "channel": "presence-room"})
	}
	d.do("connect", map[string]any{"id": "bob", "node": 1, "user": "bob"})
	d.do("subscribe", map[string]any{"id": "bob", "channel": "presence-room"})
	waitFor(t, "bob's member_added", func() bool { return len(h.named("member_added", "presence-room")) == 2 })
	d.do("disconnect", map[string]any{"id": "bob"})
	waitFor(t, "bob's member_removed", func() bool { return len(h.named("member_removed", "presence-room")) == 1 })
	d.do("disconnect", map[string]any{"id": "ann0"})
	d.do("disconnect", map[string]any{"id": "ann1"})
	waitFor(t, "the channel vacated", func() bool { return len(h.named("channel_vacated", "presence-room")) == 1 })
	if got := h.named("member_added", "presence-room"); len(got) != 2 {
		t.Errorf("member_added %v: want ann once and bob once", got)
	}
	if got := h.named("member_removed", "presence-room"); len(got) != 2 {
		t.Errorf("member_removed %v: want bob once and ann once", got)
	}
	if got := h.named("channel_occupied", "presence-room"); len(got) != 1 {
		t.Errorf("channel_occupied %v: want once for the cluster", got)
	}
	m := scrape(t, "http://"+nodes[0].apiAddr()+"/metrics")
	if f := m["revurb_cluster_redis_up"]; f == nil || f.Metric[0].Gauge.GetValue() != 1 {
		t.Errorf("revurb_cluster_redis_up %v", f)
	}
	if f := m["revurb_cluster_client_events_dropped_total"]; f == nil || f.Metric[0].Counter.GetValue() != 0 {
		t.Errorf("revurb_cluster_client_events_dropped_total %v on a quiet cluster", f)
	}
	if f := m["revurb_cluster_lost_total"]; f == nil || f.GetType() != dto.MetricType_COUNTER {
		t.Errorf("revurb_cluster_lost_total %v", f)
	}
}

// TestClusterTopologies: the binary runs a cluster on each kind of Redis
// it is given by URL, over TLS — a Sentinel set (rediss://s1?addr=s2&
// addr=s3&master_set=NAME), a Redis Cluster (rediss://n1?addr=n2&addr=n3,
// detected) and one Redis — each as an ACL user that may touch only the
// cluster's prefix (the failover tests of redisbroker run both without
// TLS): a trigger reaches pusher-js on
// every node, presence crosses nodes, and the metrics name the primaries.
func TestClusterTopologies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		start func(t *testing.T, prefix string) (url string, env []string)
	}{
		{"sentinel over TLS", func(t *testing.T, prefix string) (string, []string) {
			s := redistest.StartSentinelTLS(t)
			s.AddUser("revurb", "revurb-pass", prefix)
			return s.URLAs("revurb", "revurb-pass"), []string{"SSL_CERT_FILE=" + s.CAFile}
		}},
		{"cluster over TLS", func(t *testing.T, prefix string) (string, []string) {
			c := redistest.StartClusterTLS(t)
			c.AddUser("revurb", "revurb-pass", prefix)
			return c.URLAs("revurb", "revurb-pass"), []string{"SSL_CERT_FILE=" + c.CAFile}
		}},
		{"tls", func(t *testing.T, prefix string) (string, []string) {
			s := redistest.StartTLS(t)
			s.AddUser("revurb", "revurb-pass", prefix)
			return s.URLAs("revurb", "revurb-pass"), []string{"SSL_CERT_FILE=" + s.CAFile}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url, env := tc.start(t, "e2e-"+strings.ReplaceAll(t.Name(), "/", "-"))
			nodes := startNodes(t, url, 2, "", "", env...)
			d := startDriver(t, nodes)
			for i := range nodes {
				id := "c" + strconv.Itoa(i)
				d.do("connect", map[string]any{"id": id, "node": i, "user": "user-" + strconv.Itoa(i)})
				d.do("subscribe", map[string]any{"id": id, "channel": "news"})
			}
			d.do("subscribe", map[string]any{"id": "c0", "channel": "presence-room"})
			d.do("subscribe", map[string]any{"id": "c1", "channel": "presence-room"})
			if added := d.events("c0", "pusher:member_added", "presence-room", 1); added[0]["data"].(map[string]any)["id"] != "user-1" {
				t.Fatalf("member_added %v", added)
			}
			for i := range nodes {
				if r := d.do("trigger", map[string]any{"node": i, "channel": "news", "event": "tick", "data": map[string]int{"n": i}}); r["status"] != float64(200) {
					t.Fatalf("trigger on node %d: %v", i, r)
				}
			}
			for i := range nodes {
				d.events("c"+strconv.Itoa(i), "tick", "news", 2)
			}
			m := scrape(t, "http://"+nodes[0].apiAddr()+"/metrics")
			if f := m["revurb_cluster_redis_master"]; f == nil || len(f.Metric) == 0 {
				t.Errorf("revurb_cluster_redis_master %v", f)
			}
			if f := m["revurb_cluster_bus_refused_total"]; f == nil || len(f.Metric) != 5 {
				t.Errorf("revurb_cluster_bus_refused_total %v", f)
			}
		})
	}
}
