package redisbroker

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/revurb/revurb/pusher"
)

// Defaults of Config.
const (
	DefaultPrefix      = "revurb"
	DefaultNodeTimeout = 30 * time.Second
	// DefaultQueue is how much work may wait for Redis.
	DefaultQueue = 16384
)

// Timings.
const (
	heartbeatEvery = time.Second
	reapEvery      = 2 * time.Second
	// publishWait is the longest Publish waits for room in the queue
	// before it gives up (the HTTP API then answers 503).
	publishWait = time.Second
	// reloadDelay is how long after Redis came back a node waits, for the
	// other nodes to tell Redis their state again, before it reloads the
	// cluster's members from it.
	reloadDelay = 3 * time.Second
	maxBackoff  = 2 * time.Second
)

// Config sets up a Broker.
type Config struct {
	// URL is redis://[[user]:password@]host:port/db, or rediss:// for TLS.
	URL string
	// Prefix starts every key and the pub/sub channel, so that deployments
	// sharing a Redis never cross-talk (DefaultPrefix).
	Prefix string
	// NodeTimeout is how long a node may miss its heartbeats before the
	// others take it for dead and remove its members (DefaultNodeTimeout).
	NodeTimeout time.Duration
	// Queue bounds the work waiting for Redis, in messages and membership
	// changes (DefaultQueue).
	Queue int
	// Log receives one line per change of the connection to Redis.
	Log *slog.Logger
}

// Broker is the pusher.Broker on Redis. See the package doc.
type Broker struct {
	cfg  Config
	opt  rueidis.ClientOption
	node string
	p    string // the key prefix
	bus  string

	client  atomic.Pointer[rueidis.Client] // nil until the first connection
	cluster pusher.Cluster
	cmu     sync.Mutex // one call into cluster at a time

	ops     chan op
	up      atomic.Bool
	since   atomic.Int64 // unix nanoseconds: connected since
	resyncs chan bool    // a resync to run; true: the first, at start

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool

	seq    atomic.Uint64 // numbers this node's broadcasts
	skipMu sync.Mutex
	// waiting holds this node's broadcasts whose Publish waits for Redis's
	// answer: true once the bus has handed one back.
	waiting map[uint64]bool
	skipped map[uint64]struct{} // this node's broadcasts it delivered itself when Redis was slow

	lost   atomic.Uint64 // work that could not reach Redis
	logged atomic.Bool   // the last transition logged was "down"
	ready  atomic.Bool   // the first resync is done: the node has the cluster's view
}

var _ pusher.Broker = (*Broker)(nil)

// op is one piece of work for Redis, done in order by one goroutine.
type op struct {
	cmd  rueidis.Completed
	done chan error // if not nil, gets the outcome, for a caller that waits
}

// New returns a broker for the Redis at cfg.URL. It does not connect:
// Start does, and keeps trying while Redis is away.
func New(cfg Config) (*Broker, error) {
	opt, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.NodeTimeout <= 0 {
		cfg.NodeTimeout = DefaultNodeTimeout
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	b := &Broker{
		cfg: cfg, opt: opt, node: hex.EncodeToString(id[:]),
		p: cfg.Prefix, bus: cfg.Prefix + ":bus",
		ops: make(chan op, cfg.Queue), resyncs: make(chan bool, 1),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b, nil
}

// ParseURL reads redis://[[user]:password@]host:port/db (rediss:// for TLS)
// into client options.
func ParseURL(raw string) (rueidis.ClientOption, error) {
	var opt rueidis.ClientOption
	u, err := url.Parse(raw)
	if err != nil {
		return opt, errors.New("redisbroker: bad Redis URL: " + err.Error())
	}
	switch u.Scheme {
	case "redis":
	case "rediss":
		opt.TLSConfig = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	default:
		return opt, errors.New("redisbroker: a Redis URL is redis://[[user]:password@]host:port/db, or rediss:// for TLS")
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "6379")
	}
	if u.Hostname() == "" {
		return opt, errors.New("redisbroker: the Redis URL has no host")
	}
	opt.InitAddress = []string{host}
	if u.User != nil {
		opt.Username = u.User.Username()
		opt.Password, _ = u.User.Password()
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 {
			return opt, errors.New("redisbroker: the Redis URL's database must be a number")
		}
		opt.SelectDB = n
	}
	opt.ForceSingleClient = true
	opt.DisableCache = true
	// Find out within seconds that Redis is gone (a refused or reset
	// connection is found at once; these bound a silent one), but not so
	// fast that a starved box — a node at full CPU, 100k sockets closing —
	// takes a slow answer for an outage: at 1 s and 2 s it did, once, in
	// the 100k-socket benchmark. Publish has its own deadline (publishWait),
	// so no trigger waits this long.
	opt.Dialer.Timeout = 3 * time.Second
	opt.ConnWriteTimeout = 5 * time.Second
	return opt, nil
}

// Node is this node's name: random, made at New.
func (b *Broker) Node() string { return b.node }

// Ready reports whether the node has joined the cluster: it is subscribed
// to the bus and has loaded the cluster's members and cache.
func (b *Broker) Ready() bool { return b.ready.Load() }

// Up reports whether Redis is reachable now.
func (b *Broker) Up() bool { return b.up.Load() }

// Lost is how much work (broadcasts for other nodes, membership changes)
// could not reach Redis since start; a resync makes up for the membership
// changes, not for the broadcasts.
func (b *Broker) Lost() uint64 { return b.lost.Load() }

// Start connects to Redis (trying again while it is away) and hands what
// the bus carries to c.
func (b *Broker) Start(c pusher.Cluster) error {
	b.cluster = c
	b.wg.Add(3)
	go b.runWorker()
	go b.runHeartbeat()
	go b.runBus()
	return nil
}

// redis returns the client, nil before the first connection.
func (b *Broker) redis() rueidis.Client {
	if c := b.client.Load(); c != nil {
		return *c
	}
	return nil
}

// queue hands o to the worker: at once, or, if wait, for up to publishWait
// while the queue is full; it reports whether o was taken.
func (b *Broker) queue(o op, wait bool) bool {
	if b.closed.Load() {
		return false
	}
	select {
	case b.ops <- o:
		return true
	default:
	}
	if !wait {
		b.lost.Add(1)
		return false
	}
	t := time.NewTimer(publishWait)
	defer t.Stop()
	select {
	case b.ops <- o:
		return true
	case <-t.C:
	case <-b.ctx.Done():
	}
	b.lost.Add(1)
	return false
}

// Publish sends bc on the bus and, for a broadcast from the HTTP API
// (ctx not done), waits until Redis has taken it — the order of those
// answers is the order every node delivers in. While Redis is away it
// returns pusher.ErrBrokerDown at once: the caller delivers bc here, and
// the other nodes miss it.
func (b *Broker) Publish(ctx context.Context, bc *pusher.Broadcast) error {
	c := b.redis()
	if c == nil || !b.up.Load() {
		b.lost.Add(1)
		return pusher.ErrBrokerDown
	}
	seq := b.seq.Add(1)
	payload := appendBroadcast(nil, bc, seq)
	o := op{cmd: b.pub(c, payload)}
	wait := ctx.Err() == nil
	if wait {
		o.done = make(chan error, 1)
		b.await(seq)
	}
	if !b.queue(o, wait) {
		b.settle(seq, false)
		return pusher.ErrBrokerFull
	}
	if bc.CacheUntil > 0 {
		ttl := time.Until(time.UnixMilli(bc.CacheUntil)).Milliseconds()
		for _, ch := range bc.Channels {
			if _, cache := pusher.ChannelKind(ch); !cache || ttl <= 0 {
				continue
			}
			one := *bc
			one.Channels = []string{ch}
			key := b.p + ":cache:" + bc.App + ":" + ch
			b.queue(op{cmd: c.B().Set().Key(key).Value(rueidis.BinaryString(appendBroadcast(nil, &one, 0))).PxMilliseconds(ttl).Build()}, false)
		}
	}
	if !wait {
		return nil
	}
	t := time.NewTimer(publishWait)
	defer t.Stop()
	select {
	case err := <-o.done:
		if err == nil {
			b.settle(seq, false)
			return nil
		}
	case <-t.C:
	case <-ctx.Done():
	}
	// Redis stuck rather than gone, or the connection or the caller gone:
	// the broadcast may still go out, late. Unless the bus has handed it
	// back already, this node's subscribers get it now, from the caller
	// (ErrBrokerDown), and not again from the bus.
	if b.settle(seq, true) {
		return nil
	}
	return pusher.ErrBrokerDown
}

// await records that Publish waits for Redis's answer to broadcast seq.
func (b *Broker) await(seq uint64) {
	b.skipMu.Lock()
	if b.waiting == nil {
		b.waiting = make(map[uint64]bool)
	}
	b.waiting[seq] = false
	b.skipMu.Unlock()
}

// settle ends the wait for broadcast seq and reports whether the bus has
// handed it back meanwhile. If it has not and skip is set, the bus's copy,
// should it still come, is skipped: the caller delivers it here. The marks
// are bounded: those of broadcasts that never reached Redis are dropped
// when it goes down, and all of them past maxSkipped.
func (b *Broker) settle(seq uint64, skip bool) (seen bool) {
	b.skipMu.Lock()
	defer b.skipMu.Unlock()
	seen = b.waiting[seq]
	delete(b.waiting, seq)
	if seen || !skip {
		return seen
	}
	if b.skipped == nil || len(b.skipped) >= maxSkipped {
		b.skipped = make(map[uint64]struct{})
	}
	b.skipped[seq] = struct{}{}
	return false
}

// skippedOwn reports, once, whether this node's broadcast seq, handed
// back by the bus, was delivered here already (settle); it notes for a
// Publish still waiting that its broadcast has come back.
func (b *Broker) skippedOwn(seq uint64) bool {
	b.skipMu.Lock()
	defer b.skipMu.Unlock()
	if _, ok := b.waiting[seq]; ok {
		b.waiting[seq] = true
	}
	if _, ok := b.skipped[seq]; ok {
		delete(b.skipped, seq)
		return true
	}
	return false
}

// maxSkipped bounds the broadcasts skip remembers.
const maxSkipped = 4096

// pub builds the command publishing msg on the bus.
func (b *Broker) pub(c rueidis.Client, msg []byte) rueidis.Completed {
	return c.B().Publish().Channel(b.bus).Message(rueidis.BinaryString(msg)).Build()
}

// publishCounts queues st's counts, app by app, for the bus.
func (b *Broker) publishCounts(c rueidis.Client, st *pusher.NodeState) {
	for i := range st.Apps {
		b.queue(op{cmd: b.pub(c, appendCounts(nil, &st.Apps[i].Counts))}, true)
	}
}

// eval builds a command running one of the scripts with args.
func (b *Broker) eval(c rueidis.Client, script string, args ...string) rueidis.Completed {
	return c.B().Eval().Script(script).Numkeys(0).Arg(args...).Build()
}

// Join queues m's first connection here for the Lua script that decides
// whether it is the user's first anywhere.
func (b *Broker) Join(m *pusher.Membership) {
	if c := b.redis(); c != nil && b.up.Load() {
		b.membership(b.eval(c, luaJoin, b.p, b.node, m.App, m.Channel, m.User, string(m.Info), m.Except))
	} else {
		b.lost.Add(1) // made up for by the resync when Redis is back
	}
}

// Leave queues m's last connection here leaving.
func (b *Broker) Leave(m *pusher.Membership) {
	if c := b.redis(); c != nil && b.up.Load() {
		b.membership(b.eval(c, luaLeave, b.p, b.node, m.App, m.Channel, m.User))
	} else {
		b.lost.Add(1)
	}
}

// membership queues a join or leave; if the queue is full, a resync makes
// up for it.
func (b *Broker) membership(cmd rueidis.Completed) {
	if !b.queue(op{cmd: cmd}, false) {
		b.askResync(false)
	}
}

// Counts queues this node's counts for the bus.
func (b *Broker) Counts(ct *pusher.Counts) {
	if c := b.redis(); c != nil && b.up.Load() {
		b.queue(op{cmd: b.pub(c, appendCounts(nil, ct))}, false)
	}
}

// Terminate asks the other nodes to close user's connections.
func (b *Broker) Terminate(ctx context.Context, app, user string) error {
	c := b.redis()
	if c == nil || !b.up.Load() {
		return errors.New("redisbroker: Redis is unreachable")
	}
	if !b.queue(op{cmd: b.pub(c, appendTerminate(nil, b.node, app, user))}, ctx.Err() == nil) {
		return pusher.ErrBrokerFull
	}
	return nil
}

// Close takes this node out of the cluster: what is queued is sent, its
// members and users are removed (with their member_removed) and its counts
// forgotten by the other nodes; then it disconnects.
func (b *Broker) Close(ctx context.Context) error {
	if b.closed.Swap(true) {
		return nil
	}
	var err error
	if c := b.redis(); c != nil && b.up.Load() {
		done := make(chan error, 1)
		select {
		case b.ops <- op{cmd: b.eval(c, luaReap, b.p, b.node, b.node), done: done}:
			select {
			case err = <-done:
			case <-ctx.Done():
				err = ctx.Err()
			}
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	b.cancel()
	b.wg.Wait()
	if c := b.redis(); c != nil {
		c.Close()
	}
	return err
}

// runWorker does the queued work in order, in batches: one round trip for
// everything waiting.
func (b *Broker) runWorker() {
	defer b.wg.Done()
	batch := make([]op, 0, 512)
	cmds := make(rueidis.Commands, 0, 512)
	for {
		batch, cmds = batch[:0], cmds[:0]
		select {
		case o := <-b.ops:
			batch = append(batch, o)
		case <-b.ctx.Done():
			return
		}
	more:
		for len(batch) < cap(batch) {
			select {
			case o := <-b.ops:
				batch = append(batch, o)
			default:
				break more
			}
		}
		c := b.redis()
		if c == nil {
			b.lost.Add(uint64(len(batch)))
			b.finish(batch, nil, pusher.ErrBrokerDown)
			continue
		}
		for _, o := range batch {
			cmds = append(cmds, o.cmd)
		}
		results := c.DoMulti(b.ctx, cmds...)
		failed := 0
		for _, r := range results {
			if err := r.Error(); err != nil && !rueidis.IsRedisNil(err) {
				if _, isRedis := rueidis.IsRedisErr(err); !isRedis {
					failed++
					b.down(err)
				} else {
					b.cfg.Log.Warn("redisbroker: Redis refused a command", "error", err)
				}
			}
		}
		b.lost.Add(uint64(failed))
		b.finish(batch, results, nil)
	}
}

// finish gives the callers that wait the outcome of their op.
func (b *Broker) finish(batch []op, results []rueidis.RedisResult, all error) {
	for i, o := range batch {
		if o.done == nil {
			continue
		}
		err := all
		if err == nil && i < len(results) {
			err = results[i].Error()
		}
		o.done <- err
	}
}

// down records that Redis is away, logging it once.
func (b *Broker) down(err error) {
	b.up.Store(false)
	b.skipMu.Lock()
	b.skipped = nil // what was waiting on the lost connection is lost with it
	b.skipMu.Unlock()
	if !b.logged.Swap(true) {
		b.cfg.Log.Warn("redisbroker: Redis is unreachable: serving this node's clients alone until it is back", "error", err)
	}
}

// upAgain records that Redis answers, logging it once; after an outage it
// asks for a resync of what Redis may have lost. (The first resync, at
// start, is asked for by runBus once the bus is subscribed.)
func (b *Broker) upAgain() {
	if b.up.Swap(true) {
		return
	}
	b.since.Store(time.Now().UnixNano())
	if b.logged.Swap(false) {
		b.cfg.Log.Info("redisbroker: Redis is back: telling it this node's state again")
		b.askResync(false)
	}
}

// askResync asks runHeartbeat for a resync; first is the one at start.
func (b *Broker) askResync(first bool) {
	select {
	case b.resyncs <- first:
	default:
	}
}

// runHeartbeat connects, keeps this node's heartbeat, resyncs after Redis
// comes back, and reaps nodes that stopped beating.
func (b *Broker) runHeartbeat() {
	defer b.wg.Done()
	backoff := 50 * time.Millisecond
	beaten := false // a beat has been recorded
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	lastReap := time.Now()
	for {
		c := b.redis()
		if c == nil {
			nc, err := rueidis.NewClient(b.opt)
			if err != nil {
				b.down(err)
				if !b.sleep(backoff) {
					return
				}
				backoff = min(2*backoff, maxBackoff)
				continue
			}
			b.client.Store(&nc)
			c = nc
		}
		added, err := c.Do(b.ctx, c.B().Zadd().Key(b.p+":nodes").ScoreMember().ScoreMember(float64(time.Now().UnixMilli()), b.node).Build()).AsInt64()
		if b.ctx.Err() != nil {
			return
		}
		if err == nil && added == 1 && beaten {
			// This node's beat was gone: Redis restarted empty (or the
			// others took this node for dead) without this node seeing
			// it away. Tell it everything again.
			b.cfg.Log.Warn("redisbroker: Redis lost this node's state (restarted?): telling it this node's state again")
			b.askResync(false)
		}
		if err != nil {
			b.down(err)
			if !b.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = 50 * time.Millisecond
		beaten = true
		b.upAgain()
		select {
		case f := <-b.resyncs:
			b.resync(c, f)
		default:
		}
		if time.Since(lastReap) >= reapEvery {
			lastReap = time.Now()
			b.reap(c)
		}
		select {
		case <-t.C:
		case f := <-b.resyncs:
			b.resync(c, f)
		case <-b.ctx.Done():
			return
		}
	}
}

func (b *Broker) sleep(d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-b.ctx.Done():
		return false
	}
}

// reap removes the members of nodes whose heartbeat is older than the
// node timeout, one node at a time under a lock so that one node does it.
// A node that came back to Redis less than a timeout ago waits: the
// others may not have beaten since either.
func (b *Broker) reap(c rueidis.Client) {
	if time.Since(time.Unix(0, b.since.Load())) < b.cfg.NodeTimeout {
		return
	}
	cutoff := time.Now().Add(-b.cfg.NodeTimeout).UnixMilli()
	dead, err := c.Do(b.ctx, c.B().Zrangebyscore().Key(b.p+":nodes").Min("-inf").Max(strconv.FormatInt(cutoff, 10)).Build()).AsStrSlice()
	if err != nil {
		return
	}
	for _, node := range dead {
		if node == b.node {
			continue
		}
		lock := c.B().Set().Key(b.p + ":reap:" + node).Value(b.node).Nx().PxMilliseconds(int64(b.cfg.NodeTimeout / time.Millisecond)).Build()
		if ok, err := c.Do(b.ctx, lock).AsBool(); err != nil || !ok {
			continue
		}
		n, err := c.Do(b.ctx, b.eval(c, luaReap, b.p, node, b.node)).AsInt64()
		if err == nil {
			b.cfg.Log.Warn("redisbroker: a node stopped beating: removed it and the members only it had", "node", node, "timeout", b.cfg.NodeTimeout.String(), "members", n)
		}
	}
}

// resync tells Redis this node's state again — its presence members and
// signed-in users, through the idempotent resync script, and its counts —
// and, a moment later, reloads the cluster's members from Redis. At
// start (first) it also asks the other nodes for their counts and loads
// the cache channels' last events.
func (b *Broker) resync(c rueidis.Client, first bool) {
	b.cmu.Lock()
	st := b.cluster.State()
	b.cmu.Unlock()
	// What Redis has of this node that its state no longer holds — a
	// channel whose last member here left while Redis was away, or whose
	// leave a full queue dropped — is emptied.
	if known, err := c.Do(b.ctx, c.B().Smembers().Key(b.p+":k:"+b.node).Build()).AsStrSlice(); err == nil {
		for _, key := range known {
			if app, ch, ok := strings.Cut(key, "\n"); ok && ch != "" && !holds(st, app, ch) {
				b.sync(c, app, ch, nil)
			}
		}
	}
	for _, as := range st.Apps {
		for ch, members := range as.Presence {
			b.sync(c, as.App, ch, members)
		}
		users := make([]pusher.Member, len(as.Users))
		for i, u := range as.Users {
			users[i] = pusher.Member{User: u}
		}
		b.sync(c, as.App, "", users)
	}
	b.publishCounts(c, st)
	if first {
		b.queue(op{cmd: b.pub(c, appendHello(nil, b.node))}, true)
		b.loadCache(c, st)
		b.reload(c, st)
		b.ready.Store(true)
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if b.sleep(reloadDelay) && b.up.Load() {
			b.reload(c, st)
		}
	}()
}

// holds reports whether st has members in channel ch of app.
func holds(st *pusher.NodeState, app, ch string) bool {
	for _, as := range st.Apps {
		if as.App == app {
			_, ok := as.Presence[ch]
			return ok
		}
	}
	return false
}

// sync queues the resync script for one channel (or the users, "") of app.
func (b *Broker) sync(c rueidis.Client, app, ch string, members []pusher.Member) {
	args := []string{b.p, b.node, app, ch}
	for _, m := range members {
		args = append(args, m.User, string(m.Info))
	}
	b.queue(op{cmd: b.eval(c, luaResync, args...)}, true)
}

// reload replaces what this node knows of the cluster's members and
// signed-in users with what Redis holds. It holds off the bus meanwhile:
// the bus is subscribed, so a change Redis made after a read here comes
// after the reload, and one made before it is applied twice, which
// changes nothing.
func (b *Broker) reload(c rueidis.Client, st *pusher.NodeState) {
	b.cmu.Lock()
	defer b.cmu.Unlock()
	for _, as := range st.Apps {
		prefix := b.p + ":m:" + as.App + ":"
		presence := map[string][]pusher.Member{}
		var users []pusher.Member
		keys, err := b.scan(c, globEscape(prefix)+"*")
		if err != nil {
			return // Redis went away again: the next resync reloads
		}
		for _, key := range keys {
			h, err := c.Do(b.ctx, c.B().Hgetall().Key(key).Build()).AsStrMap()
			if err != nil {
				return // Redis went away again: the next resync reloads
			}
			ch := strings.TrimPrefix(key, prefix)
			list := make([]pusher.Member, 0, len(h))
			for u, info := range h {
				m := pusher.Member{User: u}
				if info != "" {
					m.Info = []byte(info)
				}
				list = append(list, m)
			}
			if ch == "" {
				users = list
			} else {
				presence[ch] = list
			}
		}
		b.cluster.Reload(as.App, presence, users)
	}
}

// loadCache gives this node, just started, the cache channels' last events.
func (b *Broker) loadCache(c rueidis.Client, st *pusher.NodeState) {
	for _, as := range st.Apps {
		keys, _ := b.scan(c, globEscape(b.p+":cache:"+as.App+":")+"*") // none if Redis went away: they come as they are published
		for _, key := range keys {
			v, err := c.Do(b.ctx, c.B().Get().Key(key).Build()).AsBytes()
			var m message
			if err != nil || decode(v, &m) != nil || m.kind != kindBroadcast {
				continue
			}
			b.cmu.Lock()
			b.cluster.Broadcast(&m.broadcast)
			b.cmu.Unlock()
		}
	}
}

// scan returns the keys matching pattern, or an error if Redis did not
// answer every step.
func (b *Broker) scan(c rueidis.Client, pattern string) ([]string, error) {
	var keys []string
	var cursor uint64
	for {
		e, err := c.Do(b.ctx, c.B().Scan().Cursor(cursor).Match(pattern).Count(1000).Build()).AsScanEntry()
		if err != nil {
			return nil, err
		}
		keys = append(keys, e.Elements...)
		if cursor = e.Cursor; cursor == 0 {
			return keys, nil
		}
	}
}

// globEscape escapes the characters Redis's MATCH patterns give a meaning.
func globEscape(s string) string {
	var sb strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			sb.WriteByte('\\')
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// runBus subscribes to the bus and hands each message to the cluster, in
// order, subscribing again after Redis comes back.
func (b *Broker) runBus() {
	defer b.wg.Done()
	backoff := 50 * time.Millisecond
	var resubscribed atomic.Bool // false until the first subscription
	for b.ctx.Err() == nil {
		c := b.redis()
		if c == nil {
			if !b.sleep(50 * time.Millisecond) {
				return
			}
			continue
		}
		var subscribed atomic.Bool
		ctx := rueidis.WithOnSubscriptionHook(b.ctx, func(rueidis.PubSubSubscription) {
			if !subscribed.Swap(true) {
				b.askResync(!resubscribed.Swap(true))
			}
		})
		err := c.Receive(ctx, c.B().Subscribe().Channel(b.bus).Build(), b.handle)
		if b.ctx.Err() != nil {
			return
		}
		if subscribed.Load() {
			backoff = 50 * time.Millisecond
			// Messages published while away are lost: resync, then reload
			// the members that changed meanwhile.
			b.down(err)
		}
		if !b.sleep(backoff) {
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// handle hands one bus message to the cluster.
func (b *Broker) handle(msg rueidis.PubSubMessage) {
	var m message
	if decode([]byte(msg.Message), &m) != nil {
		return
	}
	// What this node published itself it has delivered already — all but
	// the HTTP API's broadcasts, which every node delivers from the bus.
	if m.origin == b.node && m.kind != kindMember && (m.kind != kindBroadcast || m.broadcast.ClientEvent) {
		return
	}
	b.cmu.Lock()
	defer b.cmu.Unlock()
	switch m.kind {
	case kindBroadcast:
		if m.origin == b.node && b.skippedOwn(m.seq) {
			return
		}
		b.cluster.Broadcast(&m.broadcast)
	case kindCounts:
		b.cluster.Counts(&m.counts)
	case kindTerminate:
		b.cluster.Terminate(m.app, m.user)
	case kindHello:
		// A new node: tell it our counts now rather than in fullCountsEvery
		// (off the bus, which holds cmu, as the queue may make it wait).
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			c := b.redis()
			if c == nil {
				return
			}
			b.cmu.Lock()
			st := b.cluster.State()
			b.cmu.Unlock()
			b.publishCounts(c, st)
		}()
	case kindMember:
		b.cluster.Member(&m.member)
	case kindGone:
		if m.node == b.node {
			// Taken for dead while alive (cut off longer than the node
			// timeout): tell Redis everything again.
			b.askResync(false)
			return
		}
		b.cluster.Forget(m.node)
	}
}
