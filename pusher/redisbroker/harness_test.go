package redisbroker

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/revurb/revurb/pusher"
	"github.com/revurb/revurb/pusher/redisbroker/redistest"
)

// loops are event loops for a test: one goroutine each, running tasks in
// order, as gnet's do.
type loops struct {
	ch []chan pusher.Task
}

func newLoops(t *testing.T, n int) *loops {
	l := &loops{ch: make([]chan pusher.Task, n)}
	for i := range l.ch {
		c := make(chan pusher.Task, 1<<16)
		l.ch[i] = c
		go func() {
			for task := range c {
				_ = task.Run(context.Background())
			}
		}()
	}
	t.Cleanup(func() {
		for _, c := range l.ch {
			close(c)
		}
	})
	return l
}

func (l *loops) Len() int { return len(l.ch) }

func (l *loops) Execute(i int, t pusher.Task) error {
	l.ch[i] <- t
	return nil
}

type taskFunc func()

func (f taskFunc) Run(context.Context) error { f(); return nil }

// on runs f on loop i and waits for it.
func (l *loops) on(i int, f func()) {
	done := make(chan struct{})
	l.ch[i] <- taskFunc(func() { f(); close(done) })
	<-done
}

// node is one revurb node of a test cluster: a pusher.Server on its own
// loops, with a Redis broker (or LocalBroker).
type node struct {
	t      *testing.T
	s      *pusher.Server
	app    *pusher.App
	loops  *loops
	broker *Broker // nil with LocalBroker
}

// nodeConfig tunes a test node.
type nodeConfig struct {
	redis       *redistest.Server // nil: url, or LocalBroker
	url         string            // a Sentinel's or Cluster's
	prefix      string
	nodeTimeout time.Duration
	secret      string
	app         func(*pusher.AppConfig)
	more        []pusher.AppConfig // apps beyond app-id
	observer    pusher.Observer
}

func newNode(t *testing.T, cfg nodeConfig) *node {
	t.Helper()
	n := &node{t: t, loops: newLoops(t, 2)}
	opts := pusher.Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	appCfg := pusher.DefaultApp("app-id", "app-key", "app-secret")
	appCfg.ClientEventRate, appCfg.MaxMessageRate = 0, 0
	if cfg.app != nil {
		cfg.app(&appCfg)
	}
	apps := append([]pusher.AppConfig{appCfg}, cfg.more...)
	url := cfg.url
	if cfg.redis != nil {
		url = cfg.redis.URL()
	}
	if url != "" {
		b, err := New(Config{URL: url, Prefix: cfg.prefix, NodeTimeout: cfg.nodeTimeout, Apps: apps, Secret: cfg.secret,
			Log: slog.New(slog.NewTextHandler(testLog{t}, nil))})
		if err != nil {
			t.Fatal(err)
		}
		n.broker, opts.Broker = b, b
	}
	opts.Observer = cfg.observer
	s, err := pusher.NewServer(apps, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Attach(n.loops); err != nil {
		t.Fatal(err)
	}
	n.s, n.app = s, s.AppByID("app-id")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	})
	if n.broker != nil {
		waitFor(t, "the node to join the cluster", func() bool { return n.broker.Up() && n.broker.Ready() })
	}
	return n
}

// testLog sends a broker's log lines to the test's.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) { l.t.Log(string(p)); return len(p), nil }

// client is one connection of a test node.
type client struct {
	n    *node
	loop int
	sess pusher.Session
	conn *recConn
}

// dial opens a connection on loop of n and checks it is established.
func (n *node) dial(loop int) *client {
	n.t.Helper()
	c := &client{n: n, loop: loop, conn: &recConn{}}
	ok := false
	n.loops.on(loop, func() { ok = n.s.Open(&c.sess, c.conn, loop, "app-key", "7", "") })
	if !ok {
		n.t.Fatal("open refused")
	}
	c.wait("pusher:connection_established", nil)
	return c
}

// send hands msg to the server as the client's next message.
func (c *client) send(msg string) {
	c.n.loops.on(c.loop, func() { c.n.s.Handle(&c.sess, []byte(msg)) })
}

func (c *client) id() string { return c.sess.ID().String() }

// subscribe subscribes to a public or private channel and waits for
// subscription_succeeded.
func (c *client) subscribe(channel string) {
	c.n.t.Helper()
	auth := ""
	if kind, _ := pusher.ChannelKind(channel); kind == pusher.Private {
		auth = "app-key:" + pusher.Sign("app-secret", c.id()+":"+channel)
	}
	c.send(`{"event":"pusher:subscribe","data":{"channel":"` + channel + `","auth":"` + auth + `"}}`)
	c.wait("pusher_internal:subscription_succeeded", func(m frame) bool { return m.Channel == channel })
}

// join subscribes to a presence channel as user and returns the member
// ids its subscription_succeeded listed.
func (c *client) join(channel, user string) []string {
	c.n.t.Helper()
	cd := `{"user_id":"` + user + `","user_info":{"name":"` + user + `"}}`
	auth := "app-key:" + pusher.Sign("app-secret", c.id()+":"+channel+":"+cd)
	msg, _ := json.Marshal(map[string]any{"event": "pusher:subscribe", "data": map[string]string{"channel": channel, "auth": auth, "channel_data": cd}})
	c.send(string(msg))
	m := c.wait("pusher_internal:subscription_succeeded", func(m frame) bool { return m.Channel == channel })
	var d struct {
		Presence struct {
			IDs []string `json:"ids"`
		} `json:"presence"`
	}
	if err := json.Unmarshal([]byte(m.dataString()), &d); err != nil {
		c.n.t.Fatalf("succeeded data %q: %v", m.Data, err)
	}
	return d.Presence.IDs
}

// signin signs the client in as user watching watchlist.
func (c *client) signin(user string, watchlist ...string) {
	c.n.t.Helper()
	wl, _ := json.Marshal(watchlist)
	ud := `{"id":"` + user + `","watchlist":` + string(wl) + `}`
	auth := "app-key:" + pusher.Sign("app-secret", c.id()+"::user::"+ud)
	msg, _ := json.Marshal(map[string]any{"event": "pusher:signin", "data": map[string]string{"auth": auth, "user_data": ud}})
	c.send(string(msg))
	c.wait("pusher:signin_success", nil)
}

// close ends the session, as a closed socket does.
func (c *client) close() {
	c.n.loops.on(c.loop, func() { c.n.s.Close(&c.sess) })
}

// frame is one message the server wrote to a client.
type frame struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// dataString is the frame's data when it is a JSON string (server events).
func (f frame) dataString() string {
	var s string
	if json.Unmarshal(f.Data, &s) == nil {
		return s
	}
	return string(f.Data)
}

// recConn records what the server writes to one connection; the loop
// writes while the test reads.
type recConn struct {
	mu     sync.Mutex
	frames []frame
	next   int // frames before it have been consumed by wait
	closed int
}

func (r *recConn) Write(b []byte) {
	var f frame
	p := b[2:]
	switch b[1] & 0x7f {
	case 126:
		p = b[4:]
	case 127:
		p = b[10:]
	}
	_ = json.Unmarshal(p, &f)
	r.mu.Lock()
	r.frames = append(r.frames, f)
	r.mu.Unlock()
}

// all returns every frame received so far.
func (r *recConn) all() []frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.frames)
}

func (r *recConn) Close(code int, _ string) {
	r.mu.Lock()
	r.closed = code
	r.mu.Unlock()
}

// wait consumes frames until one named event that match accepts (nil:
// any), and returns it; the frames skipped are kept for none.
func (c *client) wait(event string, match func(frame) bool) frame {
	c.n.t.Helper()
	var got frame
	waitFor(c.n.t, "event "+event, func() bool {
		c.conn.mu.Lock()
		defer c.conn.mu.Unlock()
		for i := c.conn.next; i < len(c.conn.frames); i++ {
			f := c.conn.frames[i]
			if f.Event == event && (match == nil || match(f)) {
				got = f
				c.conn.next = i + 1
				return true
			}
		}
		return false
	})
	return got
}

// events returns the frames named event received so far, consumed or not.
func (c *client) events(event string) []frame {
	c.conn.mu.Lock()
	defer c.conn.mu.Unlock()
	var out []frame
	for _, f := range c.conn.frames {
		if f.Event == event {
			out = append(out, f)
		}
	}
	return out
}

func (c *client) closeCode() int {
	c.conn.mu.Lock()
	defer c.conn.mu.Unlock()
	return c.conn.closed
}

// waitFor polls cond until it holds, failing the test after 15 s: the
// outcome is asserted, not how long it took.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 15 s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// publish publishes one event on n.
func (n *node) publish(channel, event, data, except string) error {
	return n.s.Publish(context.Background(), n.app, []pusher.Event{{Channels: []string{channel}, Name: event, Data: []byte(data), Except: except}})
}

// die stops b as a killed process would: no goodbye, no more heartbeats.
func (b *Broker) die() {
	b.closed.Store(true)
	b.cancel()
	b.wg.Wait()
	if c := b.redis(); c != nil {
		c.Close()
	}
	if c := b.busClient(); c != nil {
		c.Close()
	}
}

// quietConn is a connection that reads nothing the server writes.
type quietConn struct{}

func (quietConn) Write([]byte)      {}
func (quietConn) Close(int, string) {}

// quietJoin opens a connection that reads nothing on loop of n and joins
// the presence channel as user; close closes it.
func (n *node) quietJoin(loop int, channel, user string) (close func()) {
	n.t.Helper()
	sess := new(pusher.Session)
	ok := false
	n.loops.on(loop, func() {
		if ok = n.s.Open(sess, quietConn{}, loop, "app-key", "7", ""); !ok {
			return
		}
		cd := `{"user_id":"` + user + `"}`
		auth := "app-key:" + pusher.Sign("app-secret", sess.ID().String()+":"+channel+":"+cd)
		msg, _ := json.Marshal(map[string]any{"event": "pusher:subscribe", "data": map[string]string{"channel": channel, "auth": auth, "channel_data": cd}})
		n.s.Handle(sess, msg)
	})
	if !ok {
		n.t.Fatal("open refused")
	}
	return func() { n.loops.on(loop, func() { n.s.Close(sess) }) }
}

// commandStats reads INFO commandstats: calls by command.
func commandStats(t *testing.T, r *redistest.Server) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, line := range strings.Split(r.Do("INFO", "commandstats").(string), "\r\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
		if !ok {
			continue
		}
		calls, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
		out[name] = calls
	}
	return out
}

// keys lists the keys matching pattern (the test may scan; revurb never
// does).
func keys(t *testing.T, r *redistest.Server, pattern string) []string {
	t.Helper()
	var out []string
	for _, k := range r.Do("KEYS", pattern).([]any) {
		out = append(out, k.(string))
	}
	slices.Sort(out)
	return out
}

// cluster starts n nodes meeting at r, under a prefix of the test's own.
func cluster(t *testing.T, r *redistest.Server, n int, cfg nodeConfig) []*node {
	t.Helper()
	cfg.redis = r
	if cfg.prefix == "" {
		cfg.prefix = "test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	nodes := make([]*node, n)
	for i := range nodes {
		nodes[i] = newNode(t, cfg)
	}
	return nodes
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }
