package redisbroker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/url"
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
	// callTimeout bounds one round trip of the heartbeat, a batch of the
	// worker or a step of a resync or reap: a Redis Cluster retries a
	// command while its slot migrates, and nothing may wait for that
	// without end.
	callTimeout = 5 * time.Second
	maxBackoff  = 2 * time.Second
)

// Config sets up a Broker.
type Config struct {
	// URL is where the nodes meet: redis://[[user]:password@]host:port/db
	// for one Redis (rediss:// for TLS); with addr=host:port parameters for
	// more addresses of a Redis Cluster (detected); with master_set=NAME
	// for Sentinels, the URL's addresses being theirs. See ParseURL.
	URL string
	// Prefix starts every key and pub/sub channel, so that deployments
	// sharing a Redis never cross-talk (DefaultPrefix).
	Prefix string
	// NodeTimeout is how long a node may miss its heartbeats before the
	// others take it for dead and remove its members (DefaultNodeTimeout).
	NodeTimeout time.Duration
	// Queue bounds the work waiting for Redis, in messages and membership
	// changes (DefaultQueue).
	Queue int
	// Apps are the apps the node serves: a node reads the bus of each, and
	// refuses a message past the app's limits (event data and name,
	// channels per event, user_info).
	Apps []pusher.AppConfig
	// Secret, if set, is the cluster secret every app's bus key is derived
	// from. Empty: each app's key is derived from its own id, key and
	// secret, so that nodes with the same apps agree.
	Secret string
	// Log receives one line per change of the connection to Redis.
	Log *slog.Logger
}

// Broker is the pusher.Broker on Redis. See the package doc.
type Broker struct {
	cfg    Config
	opt    rueidis.ClientOption // of the commands' client
	busOpt rueidis.ClientOption // of the bus's client
	p      string               // the key prefix
	apps   []*app
	byID   map[string]*app
	byBus  map[string]*app
	names  names

	client  atomic.Pointer[rueidis.Client] // commands; nil until the first connection
	bus     atomic.Pointer[rueidis.Client] // the bus's subscriptions, never a command
	sharded atomic.Bool                    // a Redis Cluster: sharded pub/sub
	cluster pusher.Cluster

	// cmu makes the calls into cluster one at a time, and guards what the
	// bus and the snapshots share. It is never held across a round trip.
	cmu      sync.Mutex
	snaps    map[uint64]*snapshot // snapshots whose marker or result is still to come
	waiting  []*snapshot          // marker seen, result not: the member events since are logged
	loaded   map[string]bool      // apps whose cluster view was loaded since start or rejoining
	partials map[string]*partial  // full counts arriving in parts, by node and app

	ops        chan op
	up         atomic.Bool
	since      atomic.Int64 // unix nanoseconds: connected since
	registered atomic.Bool  // this node's name is in P:nodes and every app's K:nodes
	ready      atomic.Bool  // every app's cluster view has been loaded once
	started    time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool

	seq     atomic.Uint64 // numbers this node's broadcasts
	gen     atomic.Uint64 // numbers this node's full counts sent in parts
	tokens  atomic.Uint64 // numbers snapshots
	skipMu  sync.Mutex
	pending map[uint64]bool     // this node's broadcasts whose Publish waits for Redis: true once the bus handed one back
	skipped map[uint64]struct{} // this node's broadcasts it delivered itself when Redis was slow

	view  nodeView
	maint maintenance

	lost    atomic.Uint64 // work that could not reach Redis
	logged  atomic.Bool   // the last transition logged was "down"
	refused [numReasons]atomic.Uint64
	topo    topology
}

var _ pusher.Broker = (*Broker)(nil)

// app is one app as the broker sees it.
type app struct {
	id  string
	k   string // P:{A}: every key of the app starts with it
	bus string // its pub/sub channel
	lim limits
	sig *signer
}

func (a *app) reg() string                 { return a.k + ":nodes" }
func (a *app) kk(node string) string       { return a.k + ":k:" + node }
func (a *app) nk(node, ch string) string   { return a.k + ":n:" + node + ":" + ch }
func (a *app) ck(ch string) string         { return a.k + ":c:" + ch }
func (a *app) mk(ch string) string         { return a.k + ":m:" + ch }
func (a *app) chans() string               { return a.k + ":chans" }
func (a *app) cache(ch string) string      { return a.k + ":cache:" + ch }
func (a *app) cachex() string              { return a.k + ":cachex" }
func (a *app) reapLock(node string) string { return a.k + ":reap:" + node }

// memberKeys are the keys of the member scripts, in their order.
func (a *app) memberKeys(node, ch string) []string {
	return []string{a.reg(), a.kk(node), a.nk(node, ch), a.ck(ch), a.mk(ch), a.chans()}
}

// New returns a broker for the Redis at cfg.URL serving cfg.Apps. It does
// not connect: Start does, and keeps trying while Redis is away.
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
	b := &Broker{
		cfg: cfg, opt: opt, busOpt: opt, p: cfg.Prefix,
		byID: map[string]*app{}, byBus: map[string]*app{},
		snaps: map[uint64]*snapshot{}, loaded: map[string]bool{}, partials: map[string]*partial{},
		ops: make(chan op, cfg.Queue),
	}
	// The bus's client reports a lost connection instead of subscribing
	// again by itself: what was published meanwhile is lost, and the node
	// must resync.
	b.busOpt.DisableRetry = true
	for i := range cfg.Apps {
		ac := &cfg.Apps[i]
		if ac.ID == "" {
			return nil, errors.New("redisbroker: an app without an id")
		}
		if b.byID[ac.ID] != nil {
			continue
		}
		a := &app{id: ac.ID, k: cfg.Prefix + ":{" + ac.ID + "}", lim: newLimits(ac), sig: newSigner(busKey(cfg.Secret, ac))}
		a.bus = a.k + ":bus"
		b.apps = append(b.apps, a)
		b.byID[a.id], b.byBus[a.bus] = a, a
	}
	name, err := newName()
	if err != nil {
		return nil, err
	}
	b.names.set(name)
	b.view.init()
	b.maint.init()
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b, nil
}

// newName makes a node name: random, unique among the nodes at once.
func newName() (string, error) {
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(id[:]), nil
}

// ParseURL reads a Redis URL into client options, as rueidis reads it:
//
//	redis://[[user]:password@]host:port/db      one Redis (rediss:// for TLS)
//	redis://h1:7000?addr=h2:7001&addr=h3:7002   a Redis Cluster (detected)
//	redis://h1:26379?addr=h2:26379&master_set=mymaster
//	                                            Sentinels, and the master set they watch
//
// The user and password are the primaries' (an ACL user works); with
// Sentinels, sentinel_username and sentinel_password are the Sentinels'
// own, if they ask for one.
func ParseURL(raw string) (rueidis.ClientOption, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return rueidis.ClientOption{}, errors.New("redisbroker: bad Redis URL: " + err.Error())
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return rueidis.ClientOption{}, errors.New("redisbroker: a Redis URL is redis://[[user]:password@]host:port/db, or rediss:// for TLS")
	}
	if u.Hostname() == "" {
		return rueidis.ClientOption{}, errors.New("redisbroker: the Redis URL has no host")
	}
	opt, err := rueidis.ParseURL(raw)
	if err != nil {
		return opt, errors.New("redisbroker: bad Redis URL: " + strings.TrimPrefix(err.Error(), "redis: "))
	}
	q := u.Query()
	if opt.Sentinel.MasterSet != "" {
		opt.Sentinel.Username, opt.Sentinel.Password = q.Get("sentinel_username"), q.Get("sentinel_password")
		opt.Sentinel.Dialer = opt.Dialer
		// Sentinel follows +switch-master; this also mends a missed one.
		opt.Sentinel.TopologyRefreshInterval = 5 * time.Second
	}
	if opt.TLSConfig != nil && len(opt.InitAddress) > 1 {
		// Several servers (a Cluster's nodes, the primary a Sentinel
		// names): each certificate is checked against the address dialed.
		opt.TLSConfig.ServerName = ""
		if opt.Sentinel.MasterSet != "" {
			opt.Sentinel.TLSConfig = opt.TLSConfig.Clone()
		}
	}
	opt.DisableCache = true
	opt.ClusterOption.ShardsRefreshInterval = 5 * time.Second
	// Find out within seconds that Redis is gone (a refused or reset
	// connection is found at once; these bound a silent one), but not so
	// fast that a starved box — a node at full CPU, 100k sockets closing —
	// takes a slow answer for an outage: at 1 s and 2 s it did, once, in
	// the 100k-socket benchmark. Publish has its own deadline (publishWait),
	// so no trigger waits this long.
	if opt.Dialer.Timeout == 0 {
		opt.Dialer.Timeout = 3 * time.Second
	}
	if opt.ConnWriteTimeout == 0 {
		opt.ConnWriteTimeout = 5 * time.Second
	}
	return opt, nil
}

// Node is this node's name: random, made at New, and made again when the
// node finds the others took it for dead.
func (b *Broker) Node() string { return b.names.get() }

// Ready reports whether the node has joined the cluster: it is subscribed
// to every app's bus and has loaded the cluster's members and cache.
func (b *Broker) Ready() bool { return b.ready.Load() }

// Up reports whether Redis is reachable now.
func (b *Broker) Up() bool { return b.up.Load() }

// Lost is how much work (broadcasts for other nodes, membership changes)
// could not reach Redis since start; a resync makes up for the membership
// changes, not for the broadcasts.
func (b *Broker) Lost() uint64 { return b.lost.Load() }

// Start connects to Redis (trying again while it is away) and hands what
// the buses carry to c.
func (b *Broker) Start(c pusher.Cluster) error {
	b.cluster = c
	b.started = time.Now()
	b.wg.Add(3)
	go b.runWorker()
	go b.runHeartbeat()
	go b.runMaintenance()
	return nil
}

// redis returns the commands' client, nil before the first connection.
func (b *Broker) redis() rueidis.Client {
	if c := b.client.Load(); c != nil {
		return *c
	}
	return nil
}

// header is the start of a message from this node, now, about a.
func (b *Broker) header(a *app) header {
	return header{origin: b.names.get(), time: time.Now().UnixMilli(), app: a.id}
}

// pubCmd is the command publishing on a bus: sharded on a Redis Cluster,
// so that each app's messages go through its own shard only.
func (b *Broker) pubCmd() string {
	if b.sharded.Load() {
		return "SPUBLISH"
	}
	return "PUBLISH"
}

// pub builds the command publishing msg on a's bus.
func (b *Broker) pub(c rueidis.Client, a *app, msg []byte) rueidis.Completed {
	if b.sharded.Load() {
		return c.B().Spublish().Channel(a.bus).Message(rueidis.BinaryString(msg)).Build()
	}
	return c.B().Publish().Channel(a.bus).Message(rueidis.BinaryString(msg)).Build()
}

// Publish sends bc on the app's bus and, for a broadcast from the HTTP API
// (ctx not done), waits until Redis has taken it — the order of those
// answers is the order every node delivers in. While Redis is away it
// returns pusher.ErrBrokerDown at once: the caller delivers bc here, and
// the other nodes miss it.
func (b *Broker) Publish(ctx context.Context, bc *pusher.Broadcast) error {
	a := b.byID[bc.App]
	c := b.redis()
	if a == nil || c == nil || !b.up.Load() || !b.registered.Load() {
		// Away, or not in the cluster yet (the others would refuse a
		// node they do not know).
		b.lost.Add(1)
		return pusher.ErrBrokerDown
	}
	seq := b.seq.Add(1)
	h := b.header(a)
	o := op{cmd: b.pub(c, a, a.sig.sign(appendBroadcast(nil, h, bc, seq)))}
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
		b.keepCached(c, a, h, bc)
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

// keepCached stores bc as the last event of its cache channels, expiring
// with it, indexed by when it expires (K:cachex, whose expired entries
// every store drops).
func (b *Broker) keepCached(c rueidis.Client, a *app, h header, bc *pusher.Broadcast) {
	now := time.Now().UnixMilli()
	ttl := bc.CacheUntil - now
	if ttl <= 0 {
		return
	}
	for _, ch := range bc.Channels {
		if _, cache := pusher.ChannelKind(ch); !cache {
			continue
		}
		one := *bc
		one.Channels = []string{ch}
		msg := a.sig.sign(appendBroadcast(nil, h, &one, 0))
		b.queue(op{cmd: c.B().Set().Key(a.cache(ch)).Value(rueidis.BinaryString(msg)).PxMilliseconds(ttl).Build()}, false)
		b.queue(op{cmd: c.B().Zadd().Key(a.cachex()).ScoreMember().ScoreMember(float64(bc.CacheUntil), ch).Build()}, false)
		b.queue(op{cmd: c.B().Zremrangebyscore().Key(a.cachex()).Min("-inf").Max(itoa(now)).Build()}, false)
	}
}

// await records that Publish waits for Redis's answer to broadcast seq.
func (b *Broker) await(seq uint64) {
	b.skipMu.Lock()
	if b.pending == nil {
		b.pending = make(map[uint64]bool)
	}
	b.pending[seq] = false
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
	seen = b.pending[seq]
	delete(b.pending, seq)
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
	if _, ok := b.pending[seq]; ok {
		b.pending[seq] = true
	}
	if _, ok := b.skipped[seq]; ok {
		delete(b.skipped, seq)
		return true
	}
	return false
}

// maxSkipped bounds the broadcasts skip remembers.
const maxSkipped = 4096

// Join queues m's first connection here for the Lua script that decides
// whether it is the user's first anywhere.
func (b *Broker) Join(m *pusher.Membership) { b.member(m, true) }

// Leave queues m's last connection here leaving.
func (b *Broker) Leave(m *pusher.Membership) { b.member(m, false) }

// member queues a join or leave; if it cannot reach Redis now, or the
// queue is full, a resync of the app makes up for it.
func (b *Broker) member(m *pusher.Membership, join bool) {
	a := b.byID[m.App]
	if a == nil {
		return
	}
	c := b.redis()
	if c == nil || !b.up.Load() || !b.registered.Load() {
		b.lost.Add(1) // the resync when Redis is back, or at joining, tells it
		return
	}
	node := b.names.get()
	mm := *m
	mm.Added = join
	msg := string(a.sig.sign(appendMember(nil, header{origin: node, time: time.Now().UnixMilli(), app: a.id}, &mm)))
	o := op{app: a, node: node, keys: a.memberKeys(node, m.Channel)}
	if join {
		o.script = luaJoin
		o.args = []string{b.pubCmd(), a.bus, node, m.Channel, m.User, string(m.Info), indexed(m.Channel), msg}
	} else {
		o.script = luaLeave
		o.args = []string{b.pubCmd(), a.bus, node, m.Channel, m.User, indexed(m.Channel), msg}
	}
	o.cmd = evalsha(c, o.script, o.keys, o.args)
	if !b.queue(o, false) {
		b.askResync(a)
	}
}

// Counts queues this node's counts of an app for its bus.
func (b *Broker) Counts(ct *pusher.Counts) {
	a := b.byID[ct.App]
	if c := b.redis(); a != nil && c != nil && b.up.Load() && b.registered.Load() {
		for _, cmd := range b.countsCmds(c, a, ct) {
			b.queue(op{cmd: cmd}, false)
		}
	}
}

// countsCmds publish ct on a's bus, in parts of maxCountsPerMessage
// channels; a full count in parts is numbered, so that the other nodes
// take it as one.
func (b *Broker) countsCmds(c rueidis.Client, a *app, ct *pusher.Counts) []rueidis.Completed {
	h := b.header(a)
	chs := ct.Channels
	if len(chs) <= maxCountsPerMessage {
		return []rueidis.Completed{b.pub(c, a, a.sig.sign(appendCounts(nil, h, ct.Connections, ct.Full, 0, true, chs)))}
	}
	var gen uint64
	if ct.Full {
		gen = b.gen.Add(1)
	}
	var out []rueidis.Completed
	for len(chs) > 0 {
		n := min(len(chs), maxCountsPerMessage)
		out = append(out, b.pub(c, a, a.sig.sign(appendCounts(nil, h, ct.Connections, ct.Full, gen, n == len(chs), chs[:n]))))
		chs = chs[n:]
	}
	return out
}

// Terminate asks the other nodes to close user's connections.
func (b *Broker) Terminate(ctx context.Context, appID, user string) error {
	a := b.byID[appID]
	c := b.redis()
	if a == nil || c == nil || !b.up.Load() || !b.registered.Load() {
		return errors.New("redisbroker: Redis is unreachable")
	}
	if !b.queue(op{cmd: b.pub(c, a, a.sig.sign(appendTerminate(nil, b.header(a), user)))}, ctx.Err() == nil) {
		return pusher.ErrBrokerFull
	}
	return nil
}

// Close takes this node out of the cluster: what is queued is sent, its
// members and users are removed (with their member_removed, a few hundred
// per script) and its counts forgotten by the other nodes; then it
// disconnects.
func (b *Broker) Close(ctx context.Context) error {
	if b.closed.Swap(true) {
		return nil
	}
	var err error
	if c := b.redis(); c != nil && b.up.Load() {
		done := make(chan error, 1)
		select {
		case b.ops <- op{fn: func(rueidis.Client) error { return nil }, done: done}:
			select {
			case <-done:
			case <-ctx.Done():
			}
		case <-ctx.Done():
		}
		if b.registered.Load() && ctx.Err() == nil {
			err = b.leave(ctx, c)
		}
	}
	b.cancel()
	b.wg.Wait()
	if c := b.redis(); c != nil {
		c.Close()
	}
	if c := b.bus.Load(); c != nil {
		(*c).Close()
	}
	return err
}

// leave removes this node's state from every app and its name from the
// cluster.
func (b *Broker) leave(ctx context.Context, c rueidis.Client) error {
	node := b.names.get()
	if _, err := b.reapApps(ctx, c, node, b.apps); err != nil {
		return err
	}
	return firstErr(c.DoMulti(ctx,
		c.B().Zrem().Key(b.p+":nodes").Member(node).Build(),
		c.B().Del().Key(b.p+":apps:"+node).Build()))
}

// names is this node's name, and the names it had before.
type names struct {
	cur atomic.Pointer[string]
	mu  sync.Mutex
	old []string // newest last, at most maxOldNames
}

const maxOldNames = 8

func (n *names) get() string { return *n.cur.Load() }

func (n *names) set(s string) { n.cur.Store(&s) }

// own reports whether s is this node's name, now or before.
func (n *names) own(s string) bool {
	if s == n.get() {
		return true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, o := range n.old {
		if o == s {
			return true
		}
	}
	return false
}

// rename gives the node a new name, keeping the old one as its own.
func (n *names) rename() (old, cur string, err error) {
	cur, err = newName()
	if err != nil {
		return "", "", err
	}
	old = n.get()
	n.mu.Lock()
	n.old = append(n.old, old)
	if len(n.old) > maxOldNames {
		n.old = n.old[1:]
	}
	n.mu.Unlock()
	n.set(cur)
	return old, cur, nil
}

// ClusterStats reports, for metrics, the primaries in use, the failovers
// and redirections seen, the bus messages refused and the resyncs.
func (b *Broker) ClusterStats() pusher.ClusterStats {
	var cs pusher.ClusterStats
	b.topo.mu.Lock()
	cs.Masters = append(cs.Masters, b.topo.masters...)
	cs.Failovers, cs.Redirections = b.topo.failovers, b.topo.redirections
	b.topo.mu.Unlock()
	cs.Refused = make(map[string]uint64, numReasons)
	for i := range b.refused {
		cs.Refused[reasonNames[i]] = b.refused[i].Load()
	}
	b.maint.mu.Lock()
	cs.Resyncs, cs.ResyncSeconds = b.maint.stats.resyncs, b.maint.stats.took.Seconds()
	b.maint.mu.Unlock()
	return cs
}
