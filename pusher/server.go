package pusher

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Server is the protocol core: it holds the apps and their channels, takes
// the messages of every session, and publishes events. Its methods that take
// a *Session run on that session's event loop; the others (Publish and the
// queries) are safe for concurrent use.
type Server struct {
	table    atomic.Pointer[appTable] // the apps served now; SetApps swaps it whole
	reloadMu sync.Mutex               // one SetApps at a time
	loops    Loops
	log      *slog.Logger
	debug    bool
	opts     Config

	ids  *idSource
	gate *gate

	obs                 Observer
	broker              Broker
	clustered           bool          // the broker is not LocalBroker: other nodes exist
	stopCluster         chan struct{} // closed by Stop
	stopOnce            sync.Once
	broadcasts          atomic.Uint64 // events published through Publish
	overloadCloses      atomic.Uint64 // subscribers closed for being too far behind other nodes
	clientEventsDropped atomic.Uint64 // client events the broker could not take for other nodes

	loopCounters []loopCounters // index: event loop
}

// maxLoops is the most event loops a server fans out to: a broadcast keeps
// a bit per loop.
const maxLoops = 64

// loopCounters are the server's counters of one event loop, written by
// that loop alone and read by Stats from anywhere.
type loopCounters struct {
	clientEvents atomic.Uint64 // relayed from this loop; written by it alone
	_            [56]byte      // one 64-byte cache line per loop's state (TestLoopStateSize)
}

// Config tunes a Server. Zero values mean the defaults.
type Config struct {
	// Log receives errors and, with Debug, every protocol message (at
	// level Debug).
	Log *slog.Logger
	// Debug logs every message a client sends and every event published.
	Debug bool

	// PublishQueue bounds the delivery work waiting for the event loops, in
	// deliveries: frames times recipients (DefaultPublishQueue).
	PublishQueue int64
	// PublishWait is how long a publisher may wait for room in the queue
	// before Publish gives up with ErrBusy (DefaultPublishWait).
	PublishWait time.Duration
	// PublishWaiters caps the publishers waiting at once; one more is
	// refused at once (DefaultPublishWaiters). Keep it below the HTTP API's
	// concurrency, so that waiting triggers never stop it answering.
	PublishWaiters int

	// Broker joins the server to the other nodes of its cluster; nil is
	// LocalBroker, a cluster of one. Attach starts it.
	Broker Broker
	// Observer hears of the moments the apps' webhooks are made of; nil:
	// none.
	Observer Observer
}

// NewServer returns a server for apps. Attach must be called before the
// first session opens. The configurations are copied.
func NewServer(apps []AppConfig, opts Config) (*Server, error) {
	if len(apps) == 0 {
		return nil, errors.New("pusher: no apps")
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.PublishQueue <= 0 {
		opts.PublishQueue = DefaultPublishQueue
	}
	if opts.PublishWait <= 0 {
		opts.PublishWait = DefaultPublishWait
	}
	if opts.PublishWaiters <= 0 {
		opts.PublishWaiters = DefaultPublishWaiters
	}
	if opts.Broker == nil {
		opts.Broker = LocalBroker{}
	}
	s := &Server{
		log:   opts.Log,
		debug: opts.Debug,
		opts:  opts,
		ids:   newIDSource(),

		obs:         opts.Observer,
		broker:      opts.Broker,
		clustered:   opts.Broker.Node() != "",
		stopCluster: make(chan struct{}),
	}
	t, err := s.newTable(apps, nil)
	if err != nil {
		return nil, err
	}
	s.table.Store(t)
	return s, nil
}

// Attach gives the server the event loops it fans broadcasts out to.
// There may be at most 64.
func (s *Server) Attach(l Loops) error {
	if l.Len() < 1 || l.Len() > maxLoops {
		return errors.New("pusher: need 1..64 event loops")
	}
	s.loops = l
	for _, a := range s.Apps() {
		a.size(l.Len())
	}
	s.loopCounters = make([]loopCounters, l.Len())
	s.gate = newGate(l.Len(), s.opts.PublishQueue, s.opts.PublishWait, s.opts.PublishWaiters)
	if err := s.broker.Start(s); err != nil {
		return err
	}
	if s.clustered {
		go s.runCluster(s.stopCluster)
	}
	return nil
}

// Stop takes the server out of its cluster: the broker announces this
// node's members and users gone on the other nodes. Call it once the
// event loops have closed their connections.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stopCluster) })
	return s.broker.Close(ctx)
}

// AppByID returns the app with the given id, or nil.
func (s *Server) AppByID(id string) *App { return s.table.Load().byID[id] }

// AppByKey returns the app with the given key, or nil.
func (s *Server) AppByKey(key string) *App { return s.table.Load().byKey[key] }

// Apps returns the apps the server serves now, in the order it was given
// them. The slice is not changed afterwards: a reload makes another.
func (s *Server) Apps() []*App { return s.table.Load().list }
