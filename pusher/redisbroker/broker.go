package redisbroker

import (
	"context"
	"log/slog"
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

// Timings shared by the goroutines.
const (
	// callTimeout bounds one round trip of the heartbeat, a batch of the
	// worker or a step of a resync or reap: a Redis Cluster retries a
	// command while its slot migrates, and nothing may wait for that
	// without end.
	callTimeout = 5 * time.Second
	// maxBackoff is the longest a node waits between two tries to reach
	// Redis.
	maxBackoff = 2 * time.Second
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
	opt    rueidis.ClientOption   // of the commands' client
	busOpt rueidis.ClientOption   // of the bus's client
	p      string                 // the key prefix
	apps   atomic.Pointer[appSet] // the apps served now (apps.go)
	appsMu sync.Mutex             // SetApps and connect, one at a time
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
		snaps: map[uint64]*snapshot{}, loaded: map[string]bool{}, partials: map[string]*partial{},
		ops: make(chan op, cfg.Queue),
	}
	// The bus's client reports a lost connection instead of subscribing
	// again by itself: what was published meanwhile is lost, and the node
	// must resync.
	b.busOpt.DisableRetry = true
	set, _, err := b.newSet(cfg.Apps)
	if err != nil {
		return nil, err
	}
	b.apps.Store(set)
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

// Ready reports whether the node has joined the cluster: it is subscribed
// to every app's bus and has loaded the cluster's members and cache.
func (b *Broker) Ready() bool { return b.ready.Load() }

// Up reports whether Redis is reachable now.
func (b *Broker) Up() bool { return b.up.Load() }

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
	if c := b.busClient(); c != nil {
		c.Close()
	}
	return err
}
